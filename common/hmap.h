/*
 * hmap.h — the one open-addressing hash map of the engine and the tools.
 *
 * It maps keys to item numbers: a slot holds an item number of the
 * caller's (the key itself lives in the caller's array: operators, a
 * batch's transactions, holdings, a transaction's inputs) beside 32 bits of
 * the key's hash. The caller hashes its keys (it knows them: seeded XXH3
 * for bytes an attacker chooses, a multiply for small ids) and compares
 * them; the map owns the rest: linear probing, the load limit, growth
 * (rehashing from the stored hash bits, never touching a key) and removal
 * by backward shift (no tombstones, so probe runs never rot).
 *
 * Why item numbers and not keys: the same 8-byte slot then serves 4-byte
 * ids and 36-byte outpoints, callers keep their items dense (iteration and
 * snapshots walk an array, not a sparse table), and the hash bits in the
 * slot mean a key is compared only when 32 bits of its hash match, so a
 * miss almost never touches the caller's memory.
 *
 * Lookups are a cursor, not a callback, so the caller's comparison is
 * ordinary inline code:
 *
 *     hmap_cursor c = hmap_probe(&m, hash);
 *     for (uint32_t it; (it = hmap_next(&m, &c)) != HMAP_NONE;)
 *         if (key_equals(it)) return it;       // found: c.at is its slot
 *     hmap_put(&m, &c, new_item);              // absent: c rests where it goes
 *
 * Memory: the map's own (hmap_init; hmap_reserve grows it) or the
 * caller's (hmap_init_in over a fixed buffer, e.g. on the stack: no
 * allocation). The load stays at most 3/4: hmap_reserve before probing for
 * an insert (growing moves every slot, so a cursor does not survive it).
 *
 * Threads: one writer at a time, except hmap_claim, which many threads may
 * run at once on a reserved map (each slot is taken by compare-and-swap);
 * lookups may run beside hmap_claim. Everything else needs the caller's
 * synchronisation.
 */
#ifndef POSTMARK_COMMON_HMAP_H
#define POSTMARK_COMMON_HMAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* "No item": what hmap_next returns at the end of a probe run. Item
 * numbers are 0 .. HMAP_NONE - 1. */
#define HMAP_NONE UINT32_MAX

/* A slot: 0 when empty, else hash bits << 32 | (item + 1). Atomic only so
 * that hmap_claim can share the map; single-threaded use compiles to plain
 * loads and stores. */
typedef _Atomic uint64_t hmap_slot;

/* The slots a map needs for n entries: a power of two, load <= 3/4. */
#define HMAP_SLOTS_FOR(n) hmap_slots_for_(n)

/* A constant bound on HMAP_SLOTS_FOR(n), for sizing an array (it is under
 * 8n/3 + 16). */
#define HMAP_BUF_SLOTS(n) (3 * (size_t)(n) + 16)

typedef struct {
    hmap_slot *slot;
    size_t mask;  /* slots - 1; slots a power of two, at most 2^32 */
    size_t count; /* entries (hmap_claim does not count) */
    int owned;    /* slots allocated by the map: it may grow them */
} hmap;

typedef struct {
    size_t pos;   /* the next slot to look at */
    size_t at;    /* the slot of the item hmap_next returned last */
    uint32_t tag; /* the key's hash bits */
} hmap_cursor;

static inline size_t hmap_slots_for_(size_t n)
{
    size_t cap = 16;
    while (cap / 4 * 3 < n)
        cap *= 2;
    return cap;
}

/* An empty map with room for n entries. Returns 1, or 0 when out of memory
 * (m is then an empty map that hmap_free accepts). */
int hmap_init(hmap *m, size_t n);

/* An empty map over the caller's buffer of `slots` slots (a power of two,
 * e.g. HMAP_SLOTS_FOR(n)); it never grows and is never freed by the map. */
void hmap_init_in(hmap *m, hmap_slot *buf, size_t slots);

/* Free the map's slots (not a caller's buffer); m is left empty. */
void hmap_free(hmap *m);

/* Remove every entry, keeping the slots. */
void hmap_clear(hmap *m);

/* Grow, if need be, so that n entries fit. Returns 1, or 0 when out of
 * memory or the map is over a caller's buffer too small (map unchanged). */
int hmap_grow_(hmap *m, size_t n);
static inline int hmap_reserve(hmap *m, size_t n)
{
    return n <= (m->mask + 1) / 4 * 3 || hmap_grow_(m, n);
}

/* Start a lookup of the key whose 64-bit hash is `hash` (its high 32 bits
 * are used: they are the well-mixed ones of a multiplicative hash). */
static inline hmap_cursor hmap_probe(const hmap *m, uint64_t hash)
{
    uint32_t tag = (uint32_t)(hash >> 32);
    hmap_cursor c = {(size_t)tag & m->mask, 0, tag};
    return c;
}

/* The next item on the probe run whose hash bits match the key's, or
 * HMAP_NONE at the run's end (the cursor then rests on the empty slot where
 * the key would go). The caller compares the item's key. */
static inline uint32_t hmap_next(const hmap *m, hmap_cursor *c)
{
    for (;;) {
        /* acquire: an item claimed by another thread is fully written. */
        uint64_t v = atomic_load_explicit(&m->slot[c->pos], memory_order_acquire);
        if (v == 0)
            return HMAP_NONE;
        size_t at = c->pos;
        c->pos = (c->pos + 1) & m->mask;
        if ((uint32_t)(v >> 32) == c->tag) {
            c->at = at;
            return (uint32_t)v - 1;
        }
    }
}

/* Insert item where the cursor rests (hmap_next returned HMAP_NONE). The
 * map must have room for it (hmap_reserve before hmap_probe). */
static inline void hmap_put(hmap *m, const hmap_cursor *c, uint32_t item)
{
    atomic_store_explicit(&m->slot[c->pos], (uint64_t)c->tag << 32 | ((uint64_t)item + 1),
                          memory_order_relaxed);
    m->count++;
}

/* hmap_put for many threads at once. Returns 1 when item took the slot, 0
 * when another thread took it first: call hmap_next again (the cursor has
 * not moved) to see whether that one has the same key. */
static inline int hmap_claim(hmap *m, hmap_cursor *c, uint32_t item)
{
    uint64_t expected = 0;
    return atomic_compare_exchange_strong_explicit(
        &m->slot[c->pos], &expected, (uint64_t)c->tag << 32 | ((uint64_t)item + 1),
        memory_order_acq_rel, memory_order_acquire);
}

/* Make the slot of the item hmap_next returned last hold `item` instead
 * (same key): how a caller that swap-removes from its array repoints the
 * item it moved. */
static inline void hmap_set(hmap *m, const hmap_cursor *c, uint32_t item)
{
    uint64_t v = atomic_load_explicit(&m->slot[c->at], memory_order_relaxed);
    atomic_store_explicit(&m->slot[c->at], (v & ~(uint64_t)UINT32_MAX) | ((uint64_t)item + 1),
                          memory_order_relaxed);
}

/* Remove the entry hmap_next returned last. The cursor is spent. */
void hmap_erase(hmap *m, const hmap_cursor *c);

#endif
