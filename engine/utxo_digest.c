/*
 * utxo_digest.c — the UTXO table in §8 order: the one sorted walk over
 * every live entry (the digest and the snapshot writer both use it) and
 * the §8 digest over it. Apart from the table core (utxo.c) because it is
 * a reader of the table's layout (utxo_impl.h), not part of its lock-free
 * protocol: it runs only while no thread writes the table.
 *
 * Memory: the walk never holds a reference to every entry at once. The
 * §8 order is txid first, so the entries whose txids start with one byte
 * form an independent, ordered range. A first pass notes each cell's
 * leading txid byte (one byte per cell) and counts the 256 ranges; then
 * consecutive ranges are taken as groups of about 1/16 of the entries,
 * and each group is gathered, sorted and emitted in turn. So the walk
 * needs one byte per cell plus the references of two groups (one emitted
 * while a helper thread gathers and sorts the next, on another core):
 * ~2 + 3 bytes per entry instead of 16. The records themselves are
 * emitted, and hashed, strictly in order on the calling thread: §8 is one
 * hash over all of them.
 */
#include "utxo.h"

#include "arena.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "utxo_impl.h"

/* ---------------------------------------------------------------------- */
/* Sorting one group.                                                      */
/* ---------------------------------------------------------------------- */

typedef struct {
    uint64_t k0;    /* txid[0..8] as a big-endian integer */
    uint32_t ref;   /* the entry */
    uint32_t tx;    /* its head (the entry that holds its txid) */
    uint16_t index; /* its index */
} sort_item;

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | p[i];
    return x;
}

/* txid || index_be16 order: k0 first, the rest of the txid (not read when
 * both share one head: outputs of one transaction), then index. */
static int item_cmp(const void *a, const void *b, void *arg)
{
    const sort_item *x = a, *y = b;
    if (x->k0 != y->k0)
        return x->k0 < y->k0 ? -1 : 1;
    if (x->tx != y->tx) {
        const pm_utxo_table *t = arg;
        int c = memcmp(head_of(t, x->tx)->txid + 8, head_of(t, y->tx)->txid + 8, 24);
        if (c)
            return c;
    }
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Sort a group in §8 order, in place. Every k0 lies in
 * [base, base + 2^span_log): an MSD radix pass on the top bits of k0 - base
 * (txids are hashes, so the buckets come out nearly even: ~16 items each),
 * cycling each item to its bucket (American flag sort), then each bucket
 * sorted on the full key. Needs only the bucket tables, never a second
 * array. Returns 0 when memory is short. */
static int sort_items(sort_item *a, size_t n, const pm_utxo_table *t, uint64_t base,
                      unsigned span_log)
{
    unsigned bits = 0;
    while (bits < 20 && bits < span_log && ((uint64_t)16 << bits) < n)
        bits++;
    size_t nb = (size_t)1 << bits;
    size_t *next = malloc(nb * sizeof *next), *end = calloc(nb, sizeof *end);
    if (!next || !end) {
        free(next);
        free(end);
        return 0;
    }
    unsigned shift = span_log - bits;
#define BUCKET(r) (bits ? (size_t)(((r).k0 - base) >> shift) : 0)
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

/* ---------------------------------------------------------------------- */
/* Partitions and groups.                                                  */
/* ---------------------------------------------------------------------- */

/* The live cells of the table: the current array, then its successor when
 * a migration is under way (at a quiescent point both may hold entries;
 * a migrated cell is MOVED in the old one, so nothing is seen twice). */
#define MAX_ARRAYS 8 /* a migration chain is 2 arrays deep, rarely 3 */

typedef struct {
    cells *arr[MAX_ARRAYS];
    size_t narr;
} cell_set;

/* The lines of an entry: a head's txid is after the common part. */
static void prefetch_entry(const pm_utxo_table *t, uint64_t v)
{
    const uint8_t *e = (const uint8_t *)entry_of(t, v);
    __builtin_prefetch(e);
    __builtin_prefetch(e + (ref_is_head((uint32_t)v) ? sizeof(pm_head) : sizeof(pm_entry)) - 1);
}

static int cell_live(uint64_t v)
{
    return v != 0 && (v & C_TOMB) == 0;
}

typedef struct {
    const pm_utxo_table *t;
    cell_set cs;
    uint8_t *tag;          /* leading txid byte of each live cell, arrays in turn */
    size_t count[256];     /* live entries per leading byte */
    unsigned group_lo[257]; /* group g: leading bytes [group_lo[g], group_lo[g + 1]) */
    size_t ngroups;
    size_t max_group;      /* entries in the largest group */
} walk_plan;

/* The first pass: every live cell's leading txid byte, and the counts.
 * The entries and records are read a block of cells at a time, a block's
 * entries prefetched first, then its records. */
static void plan_tags(walk_plan *p)
{
    const pm_utxo_table *t = p->t;
    size_t pos = 0;
    for (size_t a = 0; a < p->cs.narr; a++) {
        const cells *x = p->cs.arr[a];
        for (uint64_t base = 0; base <= x->mask; base += 64, pos += 64) {
            for (uint64_t i = base; i < base + 64; i++) {
                uint64_t v = atomic_load_explicit(&x->slot[i], memory_order_relaxed);
                if (cell_live(v))
                    prefetch_entry(t, v);
            }
            for (uint64_t i = base; i < base + 64; i++) {
                uint64_t v = atomic_load_explicit(&x->slot[i], memory_order_relaxed);
                if (cell_live(v) && !ref_is_head((uint32_t)v))
                    __builtin_prefetch(head_of(t, head_ref((uint32_t)v, entry_of(t, v)))->txid);
            }
            for (uint64_t i = base; i < base + 64; i++) {
                uint64_t v = atomic_load_explicit(&x->slot[i], memory_order_relaxed);
                uint8_t tag = 0;
                if (cell_live(v)) {
                    tag = entry_txid(t, (uint32_t)v, entry_of(t, v))[0];
                    p->count[tag]++;
                }
                p->tag[pos + (i - base)] = tag;
            }
        }
    }
}

/* Consecutive leading bytes in groups of about n/16 entries (at least
 * 64k; one byte's range is never split, so a group is at least as large
 * as its largest range). */
static void plan_groups(walk_plan *p, uint64_t n)
{
    size_t budget = (size_t)(n / 16);
    if (budget < 65536)
        budget = 65536;
    p->ngroups = 0;
    p->max_group = 0;
    size_t in_group = 0;
    for (unsigned b = 0; b < 256; b++) {
        if (b == 0 || (in_group && in_group + p->count[b] > budget)) {
            if (b)
                p->max_group = in_group > p->max_group ? in_group : p->max_group;
            p->group_lo[p->ngroups++] = b;
            in_group = 0;
        }
        in_group += p->count[b];
    }
    p->max_group = in_group > p->max_group ? in_group : p->max_group;
    p->group_lo[p->ngroups] = 256;
}

/* Gather group g's entries into items (room for max_group) and sort them.
 * Returns the number of items, or SIZE_MAX when memory is short. */
static size_t prepare_group(const walk_plan *p, size_t g, sort_item *items)
{
    const pm_utxo_table *t = p->t;
    unsigned lo = p->group_lo[g], hi = p->group_lo[g + 1];
    size_t m = 0, pos = 0;
    for (size_t a = 0; a < p->cs.narr; a++) {
        const cells *x = p->cs.arr[a];
        for (uint64_t base = 0; base <= x->mask; base += 64, pos += 64) {
            size_t first = m;
            for (uint64_t i = base; i < base + 64; i++) {
                uint8_t tag = p->tag[pos + (i - base)];
                if (tag < lo || tag >= hi)
                    continue;
                uint64_t v = atomic_load_explicit(&x->slot[i], memory_order_relaxed);
                if (!cell_live(v))
                    continue; /* tag 0 also marks cells without an entry */
                items[m].ref = (uint32_t)v;
                prefetch_entry(t, v);
                m++;
            }
            for (size_t j = first; j < m; j++) {
                const pm_entry *e = entry_of(t, items[j].ref);
                items[j].tx = head_ref(items[j].ref, e);
                memcpy(&items[j].index, e->index, 2);
                __builtin_prefetch(head_of(t, items[j].tx)->txid);
            }
            for (size_t j = first; j < m; j++)
                items[j].k0 = load_be64(head_of(t, items[j].tx)->txid);
        }
    }
    unsigned span = hi - lo, span_log = 56;
    while (((unsigned)1 << (span_log - 56)) < span)
        span_log++;
    return sort_items(items, m, t, (uint64_t)lo << 56, span_log) ? m : SIZE_MAX;
}

/* Emit sorted items as §8 records, in batches. */
static pm_status emit_group(const pm_utxo_table *t, const sort_item *items, size_t m,
                            pm_utxo_records_fn fn, void *data)
{
    enum { PER_BUF = 256 };
    uint8_t buf[PM_UTXO_RECORD_SIZE * PER_BUF];
    size_t fill = 0;
    for (size_t i = 0; i < m; i++) {
        if (i + 32 < m) { /* entries in key order are scattered: fetch ahead */
            prefetch_entry(t, items[i + 32].ref);
            __builtin_prefetch(head_of(t, items[i + 32].tx)->txid);
        }
        const pm_entry *e = entry_of(t, items[i].ref);
        uint8_t *r = buf + fill * PM_UTXO_RECORD_SIZE;
        memcpy(r, head_of(t, items[i].tx)->txid, 32);
        r[32] = (uint8_t)(items[i].index >> 8);
        r[33] = (uint8_t)items[i].index;
        memcpy(r + 34, e->output, PM_OUTPUT_SIZE);
        if (++fill == PER_BUF || i + 1 == m) {
            pm_status st = fn(data, buf, fill);
            if (st != PM_OK)
                return st;
            fill = 0;
        }
    }
    return PM_OK;
}

/* ---------------------------------------------------------------------- */
/* The walk: a helper thread prepares group g + 1 while group g is emitted. */
/* ---------------------------------------------------------------------- */

typedef struct {
    const walk_plan *plan;
    sort_item *buf[2];   /* group g uses buf[g % 2] */
    size_t len[2];       /* its item count, SIZE_MAX: out of memory */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t prepared;     /* groups [0, prepared) are ready */
    size_t consumed;     /* groups [0, consumed) are emitted: their buffer is free */
    int stop;            /* the consumer gave up: prepare no more */
} pipeline;

static void *prepare_main(void *arg)
{
    pipeline *q = arg;
    for (size_t g = 0; g < q->plan->ngroups; g++) {
        pthread_mutex_lock(&q->mu);
        while (!q->stop && g >= q->consumed + 2)
            pthread_cond_wait(&q->cv, &q->mu);
        int stop = q->stop;
        pthread_mutex_unlock(&q->mu);
        if (stop)
            break;
        size_t len = prepare_group(q->plan, g, q->buf[g % 2]);
        pthread_mutex_lock(&q->mu);
        q->len[g % 2] = len;
        q->prepared = g + 1;
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
        if (len == SIZE_MAX)
            break;
    }
    return NULL;
}

pm_status pm_utxo_table_walk_sorted(const pm_utxo_table *ct, pm_utxo_records_fn fn, void *data)
{
    pm_utxo_table *t = mut(ct);
    uint64_t n = pm_utxo_table_count(t);
    if (n == 0)
        return PM_OK;
    walk_plan *p = calloc(1, sizeof *p);
    if (!p)
        return PM_ERR_NOMEM;
    p->t = t;
    size_t ncells = 0;
    cells *x = atomic_load_explicit(&t->cur, memory_order_acquire);
    for (; x && p->cs.narr < MAX_ARRAYS; x = atomic_load_explicit(&x->next, memory_order_acquire)) {
        p->cs.arr[p->cs.narr++] = x;
        ncells += (size_t)x->mask + 1;
    }
    p->tag = x ? NULL : malloc(ncells); /* x: a longer chain than can be (refused) */
    if (!p->tag) {
        free(p);
        return PM_ERR_NOMEM;
    }
    plan_tags(p);
    plan_groups(p, n);
    pipeline q = {.plan = p};
    size_t bytes = p->max_group * sizeof(sort_item);
    /* One buffer when there is one group (nothing to overlap). */
    int nbuf = p->ngroups > 1 ? 2 : 1;
    pm_status st = PM_OK;
    for (int i = 0; i < nbuf && st == PM_OK; i++) {
        q.buf[i] = pm_arena_alloc(t->arena, bytes ? bytes : 1, 64, 0);
        if (!q.buf[i])
            st = PM_ERR_NOMEM;
    }
    pthread_t helper;
    int threaded = 0;
    if (st == PM_OK && nbuf == 2) {
        pthread_mutex_init(&q.mu, NULL);
        pthread_cond_init(&q.cv, NULL);
        threaded = pthread_create(&helper, NULL, prepare_main, &q) == 0;
        if (!threaded) {
            pthread_mutex_destroy(&q.mu);
            pthread_cond_destroy(&q.cv);
        }
    }
    for (size_t g = 0; st == PM_OK && g < p->ngroups; g++) {
        size_t len;
        if (threaded) {
            pthread_mutex_lock(&q.mu);
            while (q.prepared <= g)
                pthread_cond_wait(&q.cv, &q.mu);
            len = q.len[g % 2];
            pthread_mutex_unlock(&q.mu);
        } else { /* no second thread: prepare each group in turn */
            len = prepare_group(p, g, q.buf[g % 2]);
        }
        st = len == SIZE_MAX ? PM_ERR_NOMEM : emit_group(t, q.buf[g % 2], len, fn, data);
        if (threaded) {
            pthread_mutex_lock(&q.mu);
            q.consumed = g + 1;
            q.stop = st != PM_OK;
            pthread_cond_broadcast(&q.cv);
            pthread_mutex_unlock(&q.mu);
        }
    }
    if (threaded) {
        pthread_join(helper, NULL);
        pthread_mutex_destroy(&q.mu);
        pthread_cond_destroy(&q.cv);
    }
    for (int i = 0; i < 2; i++)
        if (q.buf[i])
            pm_arena_free(t->arena, q.buf[i], bytes ? bytes : 1);
    free(p->tag);
    free(p);
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
