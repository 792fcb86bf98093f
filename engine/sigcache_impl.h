/*
 * sigcache_impl.h — the signature cache's layout, for sigcache.c and the
 * test hooks (internal/test_hooks.c) that count its entries. Nothing else
 * includes it.
 */
#ifndef PM_ENGINE_SIGCACHE_IMPL_H
#define PM_ENGINE_SIGCACHE_IMPL_H

#include "sigcache.h"

#include <stdatomic.h>

#define WAYS PM_SIGCACHE_WAYS

typedef struct {
    _Atomic uint64_t word[4][WAYS]; /* word k of the fingerprint in each way */
} set_fps;

typedef struct {
    _Atomic uint32_t seq;     /* even: stable; odd: an insert is writing */
    _Atomic uint32_t collect; /* bit w: way w is evicted first */
    _Atomic uint32_t hand;    /* the oldest way, evicted when none is free */
    uint32_t unused;
} set_head;

#define SET_BYTES (sizeof(set_fps) + sizeof(set_head))

struct pm_sigcache {
    size_t nsets;
    set_fps *fps;     /* nsets, then the heads, in one mapping */
    set_head *heads;
    void *map;
    size_t map_size;
    pm_hash_prefix *salt;
    uint8_t chain_id[32];
    _Atomic int used; /* something was inserted once */
};

static inline int way_empty(const set_fps *f, int way)
{
    for (int k = 0; k < 4; k++)
        if (atomic_load_explicit(&f->word[k][way], memory_order_relaxed) != 0)
            return 0;
    return 1;
}

#endif
