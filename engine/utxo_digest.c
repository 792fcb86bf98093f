/*
 * utxo_digest.c — the UTXO table in §8 order: the one sorted walk over
 * every live entry (the digest and the snapshot writer both use it) and
 * the §8 digest over it. Apart from the table core (utxo.c) because it is
 * a reader of the table's layout (utxo_impl.h), not part of its lock-free
 * protocol: it runs only while no thread writes the table.
 */
#include "utxo.h"

#include "arena.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "utxo_impl.h"

/* ---------------------------------------------------------------------- */
/* The §8 order: the one sorted walk (digest and snapshot both use it).    */
/* ---------------------------------------------------------------------- */

typedef struct {
    uint64_t k0; /* txid[0..8] as a big-endian integer */
    uint32_t ref;
    uint32_t pad;
} sort_item;

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | p[i];
    return x;
}

/* txid || index_be16 order: k0 first, the rest of the txid, then index. */
static int item_cmp(const void *a, const void *b, void *arg)
{
    const sort_item *x = a, *y = b;
    if (x->k0 != y->k0)
        return x->k0 < y->k0 ? -1 : 1;
    const pm_utxo_table *t = arg;
    const pm_entry *ex = entry_of(t, x->ref), *ey = entry_of(t, y->ref);
    int c = memcmp(ex->txid + 8, ey->txid + 8, 24);
    if (c)
        return c;
    uint16_t ix, iy;
    memcpy(&ix, ex->index, 2);
    memcpy(&iy, ey->index, 2);
    return ix < iy ? -1 : ix > iy;
}

/* Sort in §8 order, in place: an MSD radix pass on the top bits of k0
 * (txids are hashes, so the buckets come out nearly even: ~16 items each),
 * cycling each item to its bucket (American flag sort), then each bucket
 * sorted on the full key. Needs only the bucket tables, never a second
 * array: a snapshot of 20M UTXOs must not double its sort memory. Only
 * outpoints whose txids share their top bits reach the comparison sort.
 * Returns 0 when memory is short. */
static int sort_items(sort_item *a, size_t n, const pm_utxo_table *t)
{
    unsigned bits = 0;
    while (bits < 20 && ((uint64_t)16 << bits) < n)
        bits++;
    size_t nb = (size_t)1 << bits;
    size_t *next = malloc(nb * sizeof *next), *end = calloc(nb, sizeof *end);
    if (!next || !end) {
        free(next);
        free(end);
        return 0;
    }
    unsigned shift = 64 - bits;
#define BUCKET(r) (bits ? (size_t)((r).k0 >> shift) : 0)
    for (size_t i = 0; i < n; i++)
        end[BUCKET(a[i])]++;
    size_t sum = 0;
    for (size_t b = 0; b < nb; b++) {
        next[b] = sum;
        sum += end[b];
        end[b] = sum;
    }
    for (size_t b = 0; b < nb; b++) {
        while (next[b] < end[b]) {
            sort_item item = a[next[b]];
            size_t d = BUCKET(item);
            while (d != b) {
                sort_item displaced = a[next[d]];
                a[next[d]++] = item;
                item = displaced;
                d = BUCKET(item);
            }
            a[next[b]++] = item;
        }
    }
#undef BUCKET
    size_t lo = 0;
    for (size_t b = 0; b < nb; b++) {
        if (end[b] - lo > 1)
            qsort_r(a + lo, end[b] - lo, sizeof *a, item_cmp, (void *)t);
        lo = end[b];
    }
    free(next);
    free(end);
    return 1;
}

pm_status pm_utxo_table_walk_sorted(const pm_utxo_table *ct, pm_utxo_records_fn fn, void *data)
{
    pm_utxo_table *t = mut(ct);
    uint64_t n = pm_utxo_table_count(t);
    size_t bytes = (size_t)n * sizeof(sort_item);
    sort_item *items = n ? pm_arena_alloc(t->arena, bytes, 64, 0) : NULL;
    if (n && !items)
        return PM_ERR_NOMEM;
    /* Collect (k0, ref) of every live cell. The entries are read a block
     * of cells at a time, all of a block's entries prefetched first. */
    size_t m = 0;
    cells *x = atomic_load_explicit(&t->cur, memory_order_acquire);
    for (; x; x = atomic_load_explicit(&x->next, memory_order_acquire)) {
        for (uint64_t base = 0; base <= x->mask && m < n; base += 64) {
            size_t first = m;
            for (uint64_t i = base; i < base + 64 && m < n; i++) {
                uint64_t v = atomic_load_explicit(&x->slot[i], memory_order_relaxed);
                if (v == 0 || (v & C_TOMB))
                    continue;
                items[m].ref = (uint32_t)v;
                items[m].pad = 0;
                __builtin_prefetch(entry_of(t, v));
                m++;
            }
            for (size_t j = first; j < m; j++)
                items[j].k0 = load_be64(entry_of(t, items[j].ref)->txid);
        }
    }
    pm_status st = sort_items(items, m, t) ? PM_OK : PM_ERR_NOMEM;
    enum { PER_BUF = 256 };
    uint8_t buf[PM_UTXO_RECORD_SIZE * PER_BUF];
    size_t fill = 0;
    for (size_t i = 0; st == PM_OK && i < m; i++) {
        if (i + 32 < m) { /* entries in key order are scattered: fetch ahead */
            const uint8_t *p = (const uint8_t *)entry_of(t, items[i + 32].ref);
            __builtin_prefetch(p);
            __builtin_prefetch(p + sizeof(pm_entry) - 1);
        }
        const pm_entry *e = entry_of(t, items[i].ref);
        uint8_t *r = buf + fill * PM_UTXO_RECORD_SIZE;
        uint16_t index;
        memcpy(&index, e->index, 2);
        memcpy(r, e->txid, 32);
        r[32] = (uint8_t)(index >> 8);
        r[33] = (uint8_t)index;
        memcpy(r + 34, e->output, PM_OUTPUT_SIZE);
        if (++fill == PER_BUF || i + 1 == m) {
            st = fn(data, buf, fill);
            fill = 0;
        }
    }
    pm_arena_free(t->arena, items, bytes);
    return st;
}

static pm_status hash_records(void *h, const uint8_t *records, size_t n)
{
    return pm_hash_update(h, records, n * PM_UTXO_RECORD_SIZE) ? PM_OK : PM_ERR_NOMEM;
}

pm_status pm_utxo_table_digest(const pm_utxo_table *t, pm_hasher *h, uint8_t out[32])
{
    if (!pm_hash_begin(h, PM_TAG_UTXO))
        return PM_ERR_NOMEM;
    pm_status st = pm_utxo_table_walk_sorted(t, hash_records, h);
    if (st == PM_OK && !pm_hash_final(h, out))
        st = PM_ERR_NOMEM;
    return st;
}

