/*
 * arena_impl.h — the layout of pm_arena, shared by arena.c and the test
 * hooks (internal/test_hooks.c), which read its counters without the
 * library carrying accessors nothing in it calls.
 */
#ifndef PM_ENGINE_ARENA_IMPL_H
#define PM_ENGINE_ARENA_IMPL_H

#include "arena.h"

#include <stdatomic.h>
#include <stddef.h>

typedef void *(*mallocx_fn)(size_t, int);
typedef void (*dallocx_fn)(void *, int);
typedef size_t (*sallocx_fn)(const void *, int);
typedef size_t (*nallocx_fn)(size_t, int);
typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

struct pm_arena {
    _Atomic size_t held;
    _Atomic size_t limit;
    int jemalloc;      /* 1 when the je_* pointers below are usable */
    unsigned arena_ix; /* jemalloc arena index */
    mallocx_fn je_mallocx;
    dallocx_fn je_dallocx;
    sallocx_fn je_sallocx;
    nallocx_fn je_nallocx;
    mallctl_fn je_mallctl;
};

#endif
