/*
 * arena.c — see arena.h: a dedicated jemalloc arena loaded at run time, or
 * the C library's allocator.
 *
 * Invariant: `held` is the sum of the usable sizes of the live blocks plus
 * the size of the pm_arena object. It is raised *before* a block is taken
 * (and lowered again if the allocator fails) so a limit is never exceeded,
 * also with many threads allocating at once.
 */
#include "arena.h"
#include "arena_impl.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifdef PM_USE_JEMALLOC
#include <dlfcn.h>
/* Only the MALLOCX_* flag macros are taken from jemalloc's header; the
 * functions are looked up with dlsym. */
#include <jemalloc/jemalloc.h>
#endif


/* The large blocks worth backing with 2 MiB pages. */
#define HUGE_MIN ((size_t)4 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

#ifdef PM_USE_JEMALLOC
static void try_jemalloc(pm_arena *a)
{
    void *lib = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return;
    /* POSIX guarantees dlsym's object pointer converts to a function
     * pointer; the memcpy keeps -Wpedantic quiet about it. */
    void *sym;
    sym = dlsym(lib, "mallocx");
    memcpy(&a->je_mallocx, &sym, sizeof sym);
    sym = dlsym(lib, "dallocx");
    memcpy(&a->je_dallocx, &sym, sizeof sym);
    sym = dlsym(lib, "sallocx");
    memcpy(&a->je_sallocx, &sym, sizeof sym);
    sym = dlsym(lib, "nallocx");
    memcpy(&a->je_nallocx, &sym, sizeof sym);
    sym = dlsym(lib, "mallctl");
    memcpy(&a->je_mallctl, &sym, sizeof sym);
    if (!a->je_mallocx || !a->je_dallocx || !a->je_sallocx || !a->je_nallocx || !a->je_mallctl)
        return; /* the handle stays open: see arena.h */
    unsigned ix = 0;
    size_t len = sizeof ix;
    if (a->je_mallctl("arenas.create", &ix, &len, NULL, 0) != 0)
        return;
    a->arena_ix = ix;
    a->jemalloc = 1;
}
#endif

pm_arena *pm_arena_create(void)
{
    pm_arena *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
#ifdef PM_USE_JEMALLOC
    try_jemalloc(a);
#endif
    atomic_init(&a->held, malloc_usable_size(a));
    atomic_init(&a->limit, 0);
    return a;
}

void pm_arena_destroy(pm_arena *a)
{
    if (!a)
        return;
    if (a->jemalloc) {
        char name[64];
        snprintf(name, sizeof name, "arena.%u.destroy", a->arena_ix);
        a->je_mallctl(name, NULL, NULL, NULL, 0);
    }
    free(a);
}

static int je_flags(const pm_arena *a, size_t align, unsigned flags)
{
#ifdef PM_USE_JEMALLOC
    int f = MALLOCX_ARENA(a->arena_ix) | MALLOCX_TCACHE_NONE;
    if (align > 1)
        f |= MALLOCX_ALIGN(align);
    if (flags & PM_ARENA_ZERO)
        f |= MALLOCX_ZERO;
    return f;
#else
    (void)a, (void)align, (void)flags;
    return 0;
#endif
}

/* The C library path: over-allocate by `align` bytes, align by hand and
 * keep the raw pointer in the 8 bytes below the block, so that calloc (whose
 * large blocks are fresh zero pages from mmap, never touched) can serve
 * zeroed aligned blocks. */
static size_t libc_align(size_t align)
{
    return align < 16 ? 16 : align;
}

size_t pm_arena_good_size(const pm_arena *a, size_t size)
{
    if (a->jemalloc)
        return a->je_nallocx(size ? size : 1, je_flags(a, 1, 0));
    return size;
}

static void advise_huge(void *p, size_t size)
{
    if (size < HUGE_MIN)
        return;
    uintptr_t lo = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    uintptr_t hi = ((uintptr_t)p + size) & ~(uintptr_t)(HUGE_PAGE - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* a hint only */
}

/* Raise `held` by n unless that passes the limit. */
static int charge(pm_arena *a, size_t n)
{
    size_t before = atomic_fetch_add_explicit(&a->held, n, memory_order_relaxed);
    size_t limit = atomic_load_explicit(&a->limit, memory_order_relaxed);
    if (limit && before + n > limit) {
        atomic_fetch_sub_explicit(&a->held, n, memory_order_relaxed);
        return 0;
    }
    return 1;
}

void *pm_arena_alloc(pm_arena *a, size_t size, size_t align, unsigned flags)
{
    if (size == 0)
        size = 1;
    if (a->jemalloc) {
        int f = je_flags(a, align, flags);
        size_t usable = a->je_nallocx(size, f);
        if (usable == 0 || !charge(a, usable))
            return NULL;
        void *p = a->je_mallocx(size, f);
        if (!p) {
            atomic_fetch_sub_explicit(&a->held, usable, memory_order_relaxed);
            return NULL;
        }
        if (flags & PM_ARENA_HUGE)
            advise_huge(p, size);
        return p;
    }
    align = libc_align(align);
    if (size > SIZE_MAX - align)
        return NULL;
    size_t total = size + align;
    /* The charge is the request; corrected to the usable size below. */
    if (!charge(a, total))
        return NULL;
    uint8_t *raw = (flags & PM_ARENA_ZERO) ? calloc(1, total) : malloc(total);
    if (!raw) {
        atomic_fetch_sub_explicit(&a->held, total, memory_order_relaxed);
        return NULL;
    }
    size_t usable = malloc_usable_size(raw);
    if (usable > total)
        atomic_fetch_add_explicit(&a->held, usable - total, memory_order_relaxed);
    uintptr_t p = ((uintptr_t)raw + 8 + align - 1) & ~(uintptr_t)(align - 1);
    memcpy((uint8_t *)p - 8, &raw, sizeof raw);
    if (flags & PM_ARENA_HUGE)
        advise_huge((void *)p, size);
    return (void *)p;
}

void pm_arena_free(pm_arena *a, void *p, size_t size)
{
    (void)size;
    if (!p)
        return;
    if (a->jemalloc) {
        size_t usable = a->je_sallocx(p, 0);
        a->je_dallocx(p, je_flags(a, 1, 0));
        atomic_fetch_sub_explicit(&a->held, usable, memory_order_relaxed);
        return;
    }
    void *raw;
    memcpy(&raw, (uint8_t *)p - 8, sizeof raw);
    size_t usable = malloc_usable_size(raw);
    free(raw);
    atomic_fetch_sub_explicit(&a->held, usable, memory_order_relaxed);
}
