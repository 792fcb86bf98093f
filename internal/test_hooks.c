/*
 * test_hooks.c — engine functions that only tests, benchmarks and fuzzers
 * call: table statistics, memory limits, stalled migrators, resealing a
 * damaged snapshot image. They are declared in the engine's headers beside
 * what they inspect, but compiled here, into postmark_internal, so that
 * libpostmark holds nothing its exported functions cannot reach
 * (tests/boundary.sh links it with --gc-sections to check).
 */
#include "arena_impl.h"
#include "sigcache_impl.h"
#include "snapshot.h"
#include "utxo_impl.h"
#include "wire.h"

#include <string.h>

/* ---- arena.h ------------------------------------------------------------ */

size_t pm_arena_held(const pm_arena *a)
{
    return atomic_load_explicit(&((pm_arena *)a)->held, memory_order_relaxed);
}

void pm_arena_set_limit(pm_arena *a, size_t limit)
{
    atomic_store_explicit(&a->limit, limit, memory_order_relaxed);
}

const char *pm_arena_backend(const pm_arena *a)
{
    return a->jemalloc ? "jemalloc" : "malloc";
}

/* ---- utxo.h ------------------------------------------------------------- */

size_t pm_utxo_table_memory(const pm_utxo_table *t)
{
    return pm_arena_held(t->arena);
}

void pm_utxo_table_stats(const pm_utxo_table *ct, pm_utxo_stats *out)
{
    pm_utxo_table *t = mut(ct);
    memset(out, 0, sizeof *out);
    out->live = pm_utxo_table_count(t);
    cells *x = atomic_load_explicit(&t->cur, memory_order_acquire);
    out->cells = (size_t)x->mask + 1;
    cells *f = atomic_load_explicit(&x->next, memory_order_acquire);
    out->cells_next = f ? (size_t)f->mask + 1 : 0;
    out->migrations = atomic_load_explicit(&t->migrations, memory_order_relaxed);
    out->chunks = atomic_load_explicit(&t->slab[0].nchunks, memory_order_acquire) +
                  atomic_load_explicit(&t->slab[1].nchunks, memory_order_acquire);
    out->entry_slots = atomic_load_explicit(&t->slab[0].chunk_slots, memory_order_relaxed) +
                       atomic_load_explicit(&t->slab[1].chunk_slots, memory_order_relaxed);
    out->memory = pm_arena_held(t->arena);
    out->backend = pm_arena_backend(t->arena);
}

void pm_utxo_table_set_memory_limit(pm_utxo_table *t, size_t bytes)
{
    pm_arena_set_limit(t->arena, bytes);
}

size_t pm_utxo_table_test_stall(pm_utxo_table *t, size_t n, int lose_chunk)
{
    cells *x = atomic_load_explicit(&t->cur, memory_order_acquire);
    if (atomic_load_explicit(&x->next, memory_order_acquire) == NULL)
        return 0;
    if (lose_chunk) /* claimed, never done: a later round of claims does it */
        atomic_fetch_add_explicit(&x->mig_claim, 1, memory_order_relaxed);
    /* From the top: chunks are claimed bottom up, so these cells are the
     * last a helper reaches. */
    size_t frozen = 0;
    for (uint64_t i = x->mask + 1; i-- > 0 && frozen < n;) {
        uint64_t v = atomic_load_explicit(&x->slot[i], memory_order_acquire);
        if (v != 0 && (v & C_STATE) == 0 &&
            atomic_compare_exchange_strong_explicit(&x->slot[i], &v, v | C_FROZEN,
                                                    memory_order_acq_rel, memory_order_acquire))
            frozen++;
    }
    return frozen;
}

int pm_utxo_table_foreach(const pm_utxo_table *t, pm_utxo_visit_fn fn, void *data)
{
    cells *x = atomic_load_explicit(&mut(t)->cur, memory_order_acquire);
    for (; x; x = atomic_load_explicit(&x->next, memory_order_acquire)) {
        for (uint64_t i = 0; i <= x->mask; i++) {
            uint64_t v = atomic_load_explicit(&x->slot[i], memory_order_relaxed);
            if (v == 0 || (v & C_TOMB))
                continue;
            const pm_entry *e = entry_of(t, v);
            uint16_t index;
            memcpy(&index, e->index, 2);
            int r = fn(data, entry_txid(t, (uint32_t)v, e), index, e->output);
            if (r)
                return r;
        }
    }
    return 0;
}

/* ---- snapshot.h --------------------------------------------------------- */

size_t pm_snapshot_reseal(uint8_t *image, size_t size)
{
    size_t off = PM_SNAP_PREAMBLE_SIZE, sections = 0;
    while (off <= size && size - off >= PM_SNAP_SECTION_HEADER_SIZE) {
        uint64_t len = pm_read_u64le(image + off + 16);
        size_t left = size - off - PM_SNAP_SECTION_HEADER_SIZE;
        if (len > left || left - len < PM_SNAP_CHECKSUM_SIZE)
            break;
        size_t framed = PM_SNAP_SECTION_HEADER_SIZE + (size_t)len;
        pm_snapshot_section_checksum(image + off + framed, image + off, framed);
        sections++;
        int end = memcmp(image + off, "ENDM", 4) == 0 /* docs/snapshot.md */;
        off += framed + PM_SNAP_CHECKSUM_SIZE;
        if (end)
            break;
    }
    return sections;
}

/* ---- sigcache.h ---------------------------------------------------------- */

size_t pm_sigcache_capacity(const pm_sigcache *c)
{
    return c->nsets * WAYS;
}

size_t pm_sigcache_bytes(const pm_sigcache *c)
{
    return c->map_size;
}

size_t pm_sigcache_count(const pm_sigcache *c)
{
    size_t n = 0;
    for (size_t s = 0; s < c->nsets; s++)
        for (int way = 0; way < WAYS; way++)
            n += !way_empty(&c->fps[s], way);
    return n;
}
