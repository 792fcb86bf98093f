/*
 * utxo.c — the lock-free UTXO table (contract in utxo.h).
 *
 * Design
 * ------
 * Entries. Each live outpoint has an entry: index (u16), output[45], a pad
 * byte and a 32-bit word, and either its txid (a head: 84 bytes) or a
 * 32-bit link used only once the entry is retired, with the word naming
 * the head that holds its txid (56 bytes). A head's word counts the
 * entries that use its txid (itself included while live); once the count
 * is 0 the head is retired and its word serves as its link (a head ref or
 * 0, never mistaken for a count: heads are never counted up again). An
 * ISSUE makes up to 1,024 outputs, so outputs of large transactions name
 * a head and cost 56 bytes instead of 84. The first SHARE_FROM_INDEX
 * outputs of every transaction are heads of their own, so small
 * transactions cost what an inline txid did and their lookups stay two
 * dependent loads (cell, entry); for the others the head is a third, which
 * the batch lookup pipelines as one more stage, and a head serving many
 * outputs mostly stays cached. An insert finds the head of its txid
 * through a small cache of recent heads (1,024 slots by a keyed mix of
 * the txid, filled as heads are made): outputs of one transaction are
 * inserted close together (in one block, or in order by a snapshot
 * load). A miss only costs memory (another head for the txid): keys are
 * always compared by bytes, never by head. A spent head whose
 * transaction still has live outputs stays, unreachable from the index,
 * until they go. Owner keys are stored inline: interning them would put
 * a third load on every lookup (the verifier needs the key).
 *
 * Entries and heads live in chunks (large blocks from the table's own
 * jemalloc arena), one slab of chunks for each size, and are named by a
 * 32-bit ref = head bit << 31 | chunk << 21 | slot; slot 0 of a chunk holds
 * the chunk's header, so ref 0 never names an entry. Each slab's chunk
 * directory has a fixed 1,024 slots inside the table, written once per
 * chunk, so ref -> entry is one load from an L1-resident array and a
 * multiply-add.
 *
 * Index. An open-addressing array of 64-bit cells, linear probing, indexed
 * by the TOP bits of the 64-bit XXH3 hash (keyed with a per-table random
 * secret from getrandom, so ground txids cannot aim at a bucket). A cell
 * holds the top 30 hash bits, two state bits and the entry's ref:
 *
 *     63 ........ 34 | 33 FROZEN | 32 TOMB | 31 ........ 0
 *     hash bits      |           |         | ref
 *
 *     EMPTY        0                     nothing here yet
 *     LIVE         ref, hash             the entry is present
 *     TOMB         TOMB + ref, hash      spent (the probe goes on past it)
 *     FROZEN_LIVE  FROZEN + ref, hash    present, being copied to the next array
 *     MOVED        FROZEN|TOMB (+ref)    migrated: the truth is in the next array
 *     MOVED_EMPTY  FROZEN|TOMB, ref 0    was EMPTY when migrated: ends a probe
 *
 * A cell only moves forward through these states (EMPTY -> LIVE -> TOMB,
 * any -> frozen -> MOVED), so a CAS on it can never suffer ABA, and no cell
 * ever becomes EMPTY again: an entry is always found by probing from its
 * home cell to the first EMPTY (or MOVED_EMPTY) cell. Tombstones are never
 * reused in place (that would let two racing inserts of one key land in
 * two cells); they disappear when the array is migrated. The stored hash
 * bits filter candidates, but a hit is always confirmed on the full 34-byte
 * key in the entry: never a fingerprint-only match.
 *
 * Operations.
 *  - lookup: probe; a LIVE or FROZEN_LIVE cell whose hash bits match and
 *    whose entry key matches is a hit (the acquire load of the cell makes
 *    the entry's bytes visible). At the end of the probe, if the array has
 *    a successor (it is being migrated), probe the successor too. Readers
 *    never write and never wait.
 *  - insert: probe to the end (a LIVE/FROZEN_LIVE copy of the key means
 *    PM_ERR_STATE); at the first EMPTY cell of the final array, take a slot
 *    in the array's counters, fill a fresh entry and CAS the cell
 *    EMPTY -> LIVE (release). If the CAS fails, re-examine the same cell.
 *    Fresh entries come from per-stripe runs of 64 slots (stripe = low
 *    hash bits; for heads, bits of the txid), so concurrent inserts
 *    neither share an allocation cursor nor write entries in one cache
 *    line.
 *  - spend: find the LIVE cell and CAS it LIVE -> TOMB. Exactly one of
 *    racing spenders wins the CAS; the others re-read TOMB and go on (0).
 *    The winner copies the output (the entry stays intact until reclaim)
 *    and pushes the entry on a retired list (a head: counts its own use
 *    down, see "Entries").
 *
 * Growth without stopping the world (incremental cooperative migration).
 * When an array passes 3/4 occupancy (tombstones included) a successor is
 * allocated, sized so the live entries fill at most 60% of it (so it may
 * also be the same size, a rehash that drops tombstones, or smaller), and
 * published in `next` (also when few entries remain: below 10% it
 * rehashes smaller). From then on every insert and spend first migrates
 * one chunk of 256 cells, claimed with fetch_add (claims go round the
 * chunks until each is marked done, so a chunk whose claimer stalled is
 * redone by another thread); the thread that marks the last chunk done
 * swings the table's `cur` to the successor and retires the old array.
 * A doubling of a 2^26-cell array is thus spread over 2^18 operations of
 * a few microseconds each. Migrating a cell: EMPTY -> MOVED_EMPTY; TOMB ->
 * MOVED; LIVE -> FROZEN_LIVE, then its ref is inserted in the successor
 * (idempotent: a cell already holding that ref in any state means
 * "done"), then FROZEN_LIVE -> MOVED. Entries themselves never move, only
 * cells. Any thread meeting a FROZEN_LIVE cell it wants to
 * write completes those steps itself, so no writer ever waits for a
 * migrator. With top-bit indexing cell i of the old array maps near cell
 * 2i of a doubled one, so migration streams through both arrays; the hash
 * bits in the cell are enough to place it (entries are not read).
 *
 * What a reader sees meanwhile: it probes the old array, then the new one.
 * A LIVE or FROZEN_LIVE cell is current (nothing can spend a frozen entry
 * until its copy is complete and the old cell is MOVED), a MOVED cell says
 * "look in the successor", where the copy was placed before the old cell
 * changed. An entry present during a whole lookup is therefore found:
 * either in the old array at a cell the reader reaches (cells before it on
 * the probe path are never EMPTY), or in the successor.
 *
 * The rule that keeps a key from existing twice: a writer (insert or
 * spend) that reaches the end of its probe in an array that has a
 * successor first seals that EMPTY cell (CAS EMPTY -> MOVED_EMPTY) and only
 * then continues in the successor. An insert that had read `next == NULL`
 * earlier and is about to CAS that same cell loses the race and follows,
 * so the key can no longer appear behind a writer that moved on. This is
 * also why MOVED_EMPTY may end a probe: nothing is ever inserted past it.
 *
 * Reclamation. Spent entries and old arrays are only pushed on lists
 * (spend and the migration never free). pm_utxo_table_reclaim, called
 * when no operation is in flight on any thread (a quiescent point, e.g.
 * after a block is committed and the workers are parked), frees the old
 * arrays and moves retired entries to per-stripe free lists; inserts pop
 * from those lists. A popped list is never pushed to again before the
 * next quiescent point, so the pop-only Treiber stacks cannot suffer ABA,
 * and a ref is never reused while some thread may still hold it. No
 * reader ever touches freed memory: the only memory freed is freed at a
 * quiescent point. When heads were moved to the free lists, reclaim also
 * empties the head cache, so an insert never compares a txid that is
 * being overwritten by the head's reuse.
 *
 * Out of memory. An insert that needs memory it cannot get (a new entry
 * chunk, or room when the array is full and no successor can be
 * allocated) returns PM_ERR_NOMEM before it has published anything.
 * Failing to allocate a successor at 3/4 occupancy is not an error: the
 * array keeps taking inserts up to 15/16 and the allocation is retried.
 * pm_utxo_table_reserve(n) allocates the chunks for n entries and n heads
 * (any insert may need either) and, if needed, the successor array before
 * it returns, so n inserts can then complete without allocating.
 *
 * Memory (per live entry): 84 bytes for the first four outputs of a
 * transaction, 56 for the others (~57 on average for 1,000-output
 * ISSUEs), plus 8 / load bytes of cells with the load between 0.3 and
 * 0.75 (10.7 to 26.7 bytes), plus the unfilled part of the last chunk
 * (chunks grow by 1/16 of the total, so at most ~5 bytes), plus spent
 * entries waiting for reuse: ~70-85 bytes for a large state of ISSUE
 * outputs, ~100-115 for small transactions. During a migration both
 * arrays exist for a while.
 *
 * Counters: each array keeps used cells and live entries in one 64-bit
 * word (one atomic add per insert or spend). A migrator takes room for a
 * whole chunk in the successor first and settles both arrays' counts once
 * per chunk, so used(successor) + live(old), which bounds what the
 * successor must still hold, is never underestimated.
 *
 * Locks: none of the table's own. The rare allocations (a chunk of
 * entries, a successor array) go to the allocator, whose arena may lock
 * internally; lookups never allocate.
 *
 * Limits: 2^30 cells per array and 1,024 chunks per slab (over 600
 * million heads and 900 million other entries); beyond that inserts
 * return PM_ERR_NOMEM.
 */
#include "utxo.h"

#include "arena.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "utxo_impl.h"

_Static_assert(SECRET_SIZE >= XXH3_SECRET_SIZE_MIN, "XXH3 secret size");

static uint64_t key_hash(const pm_utxo_table *t, const uint8_t txid[32], uint16_t index)
{
    uint8_t key[34];
    memcpy(key, txid, 32);
    key[32] = (uint8_t)index;
    key[33] = (uint8_t)(index >> 8);
    return XXH3_64bits_withSecret(key, sizeof key, t->secret, sizeof t->secret);
}

/* Keys are compared in full: the index in the entry, the txid in its
 * head (the index first, which rules out most candidates without touching
 * the head). */
static int key_eq(const pm_utxo_table *t, uint64_t cell, const uint8_t txid[32], uint16_t index)
{
    const pm_entry *e = entry_of(t, cell);
    uint16_t i;
    memcpy(&i, e->index, 2);
    return i == index && memcmp(entry_txid(t, (uint32_t)cell, e), txid, 32) == 0;
}

/* A LIVE or FROZEN_LIVE cell whose hash bits are h's. */
static int cell_candidate(uint64_t v, uint64_t h)
{
    return v != 0 && (v & C_TOMB) == 0 && ((v ^ h) & C_HASH) == 0;
}

static uint64_t live_of(uint64_t counts)
{
    return counts & 0xffffffffu;
}

static uint64_t used_of(uint64_t counts)
{
    return counts >> 32;
}

/* ---------------------------------------------------------------------- */
/* Entry storage: two slabs, heads and the entries that name one.         */
/* ---------------------------------------------------------------------- */

static _Atomic uint32_t *slab_link(const slab *s, uint32_t ref)
{
    uint8_t *chunk = atomic_load_explicit(&((slab *)s)->dir[(ref >> CHUNK_SHIFT) & (MAX_CHUNKS - 1)],
                                          memory_order_acquire);
    return (_Atomic uint32_t *)(chunk + (size_t)(ref & SLOT_MASK) * s->size + s->link_off);
}

static void slab_init(slab *s, size_t size, size_t link_off, uint32_t tag, size_t hint)
{
    s->size = size;
    s->link_off = link_off;
    s->tag = tag;
    s->hint = hint;
    atomic_store_explicit(&s->fresh, 1, memory_order_relaxed); /* chunk 0, slot 1 */
}

static size_t chunk_slots_for(const pm_utxo_table *t, const slab *s, uint32_t n, size_t want)
{
    size_t max_slots = MAX_CHUNK_BYTES / s->size;
    size_t slots = want;
    if (n == 0 && s->hint >= slots)
        slots = s->hint < max_slots ? s->hint + 1 : max_slots;
    else if (n > 0) {
        size_t total = atomic_load_explicit(&((slab *)s)->chunk_slots, memory_order_relaxed);
        if (total / 16 > slots)
            slots = total / 16;
    }
    if (slots < MIN_CHUNK_SLOTS)
        slots = MIN_CHUNK_SLOTS;
    if (slots > max_slots)
        slots = max_slots;
    /* Fill the allocator's size class exactly. */
    size_t bytes = pm_arena_good_size(t->arena, slots * s->size);
    slots = bytes / s->size;
    return slots > max_slots ? max_slots : slots;
}

/* Make chunk n exist (n = the chunk count the caller saw). Returns 0 when
 * out of memory or out of chunk numbers. */
static int add_chunk(pm_utxo_table *t, slab *s, uint32_t n, size_t want)
{
    if (n >= MAX_CHUNKS)
        return 0;
    if (atomic_load_explicit(&s->dir[n], memory_order_acquire) == NULL) {
        size_t slots = chunk_slots_for(t, s, n, want);
        size_t bytes = slots * s->size;
        uint8_t *p = pm_arena_alloc(t->arena, bytes, 64, PM_ARENA_HUGE);
        if (!p)
            return 0;
        ((chunk_hdr *)p)->slots = (uint32_t)slots;
        uint8_t *expected = NULL;
        if (atomic_compare_exchange_strong_explicit(&s->dir[n], &expected, p,
                                                    memory_order_acq_rel, memory_order_acquire))
            atomic_fetch_add_explicit(&s->chunk_slots, slots, memory_order_relaxed);
        else
            pm_arena_free(t->arena, p, bytes);
    }
    uint32_t expected_n = n;
    atomic_compare_exchange_strong_explicit(&s->nchunks, &expected_n, n + 1,
                                            memory_order_acq_rel, memory_order_relaxed);
    return 1;
}

static uint32_t chunk_slots_at(const slab *s, uint32_t c)
{
    const uint8_t *p = atomic_load_explicit(&((slab *)s)->dir[c], memory_order_acquire);
    return ((const chunk_hdr *)p)->slots;
}

/* Push a released (or never published) element; it is reused after the
 * next quiescent point. */
static void slab_retire(slab *s, uint32_t ref, unsigned stripe)
{
    ref_list *l = &s->retired[stripe];
    _Atomic uint32_t *link = slab_link(s, ref);
    uint32_t head = atomic_load_explicit(&l->head, memory_order_relaxed);
    do {
        atomic_store_explicit(link, head, memory_order_relaxed);
    } while (!atomic_compare_exchange_weak_explicit(&l->head, &head, ref, memory_order_release,
                                                    memory_order_relaxed));
    if (head == 0) /* first on an empty list: the tail, unique per epoch */
        atomic_store_explicit(&l->tail, ref, memory_order_relaxed);
}

/* A run of never-used slots [first, first + *len) inside one chunk,
 * *len <= want, from the slab-wide cursor. Returns 0 when out of memory. */
static uint32_t alloc_fresh_run(pm_utxo_table *t, slab *s, uint32_t want, uint32_t *len)
{
    for (;;) {
        uint64_t f = atomic_load_explicit(&s->fresh, memory_order_acquire);
        uint32_t c = (uint32_t)(f >> 32), slot = (uint32_t)f;
        uint32_t n = atomic_load_explicit(&s->nchunks, memory_order_acquire);
        if (c < n) {
            uint32_t slots = chunk_slots_at(s, c);
            if (slot < slots) {
                uint32_t k = slots - slot < want ? slots - slot : want;
                if (atomic_compare_exchange_weak_explicit(&s->fresh, &f, f + k,
                                                          memory_order_acq_rel,
                                                          memory_order_relaxed)) {
                    *len = k;
                    return s->tag | c << CHUNK_SHIFT | slot;
                }
                continue;
            }
            if (c + 1 < n) {
                atomic_compare_exchange_weak_explicit(&s->fresh, &f,
                                                      ((uint64_t)(c + 1) << 32) | 1,
                                                      memory_order_acq_rel,
                                                      memory_order_relaxed);
                continue;
            }
        }
        if (!add_chunk(t, s, n, 0))
            return 0;
    }
}

/* A never-used slot, or 0 when out of memory. Each stripe hands out a run
 * of FRESH_RUN slots taken at once from the slab-wide cursor, so threads
 * inserting together neither fight over that cursor nor write elements
 * that share a cache line. */
static uint32_t alloc_fresh(pm_utxo_table *t, slab *s, unsigned stripe)
{
    _Atomic uint64_t *run = &s->fresh_runs[stripe].run; /* next << 32 | end */
    for (;;) {
        uint64_t w = atomic_load_explicit(run, memory_order_acquire);
        uint32_t next = (uint32_t)(w >> 32), end = (uint32_t)w;
        if (next < end) {
            if (atomic_compare_exchange_weak_explicit(run, &w, w + ((uint64_t)1 << 32),
                                                      memory_order_acq_rel, memory_order_relaxed))
                return next;
            continue;
        }
        uint32_t len = 0, first = alloc_fresh_run(t, s, FRESH_RUN, &len);
        if (!first)
            return 0;
        uint64_t fresh = (uint64_t)(first + 1) << 32 | (first + len);
        if (atomic_compare_exchange_strong_explicit(run, &w, fresh, memory_order_acq_rel,
                                                    memory_order_relaxed))
            return first;
        /* Another thread refilled this stripe meanwhile: keep one slot, and
         * the rest become free after the next quiescent point. */
        for (uint32_t r = first + 1; r < first + len; r++)
            slab_retire(s, r, stripe);
        return first;
    }
}

/* Free slots in the chunks already allocated (not counting free lists). */
static size_t fresh_available(const slab *s)
{
    uint64_t f = atomic_load_explicit(&((slab *)s)->fresh, memory_order_acquire);
    uint32_t c = (uint32_t)(f >> 32), slot = (uint32_t)f;
    uint32_t n = atomic_load_explicit(&((slab *)s)->nchunks, memory_order_acquire);
    size_t avail = 0;
    for (uint32_t i = c; i < n; i++) {
        uint32_t slots = chunk_slots_at(s, i);
        uint32_t first = i == c ? slot : 1;
        if (slots > first)
            avail += slots - first;
    }
    return avail;
}

/* Chunks allocated ahead so that `need` slots can be taken without
 * allocating. */
static int slab_reserve(pm_utxo_table *t, slab *s, size_t need)
{
    while (fresh_available(s) < need) {
        uint32_t c = atomic_load_explicit(&s->nchunks, memory_order_acquire);
        if (!add_chunk(t, s, c, need - fresh_available(s)))
            return 0;
    }
    return 1;
}

static uint32_t pop_recycled(slab *s, unsigned stripe)
{
    ref_list *l = &s->recycled[stripe];
    uint32_t head = atomic_load_explicit(&l->head, memory_order_acquire);
    while (head) {
        uint32_t next = atomic_load_explicit(slab_link(s, head), memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&l->head, &head, next, memory_order_acquire,
                                                  memory_order_acquire))
            return head;
    }
    return 0;
}

/* A free element: from this stripe, else from any stripe while the free
 * lists may hold something, else a fresh slot. 0 when out of memory. */
static uint32_t slab_alloc(pm_utxo_table *t, slab *s, unsigned stripe)
{
    uint32_t ref = pop_recycled(s, stripe);
    if (ref)
        return ref;
    if (atomic_load_explicit(&s->recycled_any, memory_order_relaxed)) {
        for (unsigned k = 1; k < STRIPES; k++) {
            ref = pop_recycled(s, (stripe + k) & (STRIPES - 1));
            if (ref)
                return ref;
        }
        atomic_store_explicit(&s->recycled_any, 0, memory_order_relaxed);
    }
    return alloc_fresh(t, s, stripe);
}

/* At a quiescent point: what was retired becomes free for reuse. Returns
 * whether anything was. */
static int slab_reclaim(slab *s)
{
    int any = 0;
    for (unsigned k = 0; k < STRIPES; k++) {
        ref_list *r = &s->retired[k], *f = &s->recycled[k];
        uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        if (!head)
            continue;
        uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        atomic_store_explicit(slab_link(s, tail),
                              atomic_load_explicit(&f->head, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&f->head, head, memory_order_relaxed);
        atomic_store_explicit(&s->recycled_any, 1, memory_order_relaxed);
        atomic_store_explicit(&r->head, 0, memory_order_relaxed);
        atomic_store_explicit(&r->tail, 0, memory_order_relaxed);
        any = 1;
    }
    return any;
}

static void slab_destroy(pm_utxo_table *t, slab *s)
{
    for (uint32_t c = 0; c < MAX_CHUNKS; c++) {
        uint8_t *p = atomic_load_explicit(&s->dir[c], memory_order_relaxed);
        if (p)
            pm_arena_free(t->arena, p, (size_t)((chunk_hdr *)p)->slots * s->size);
    }
}

/* ---- heads ---- */

/* The cache slot of a txid: a mix keyed with the table's secret, so that
 * txids ground to share a slot cannot be made offline (they would only
 * cost memory: every output a head, 32 bytes more each). */
static unsigned txcache_slot(const pm_utxo_table *t, const uint8_t txid[32])
{
    uint64_t a, k;
    memcpy(&a, txid, 8);
    memcpy(&k, t->secret, 8);
    return (unsigned)(((a ^ k) * 0x9e3779b97f4a7c15ull) >> 54) & (TXCACHE_SLOTS - 1);
}

/* The head's stripe: from the txid alone, so that a transaction's head is
 * retired to the same list whichever output lets it go. */
static unsigned head_stripe(const uint8_t txid[32])
{
    return txid[31] & (STRIPES - 1);
}

/* An entry no longer uses its head's txid. The head stays readable until
 * the next quiescent point (a lookup may still be comparing it). */
static void head_release(pm_utxo_table *t, uint32_t head)
{
    pm_head *h = head_of(t, head);
    if (atomic_fetch_sub_explicit(&h->word, 1, memory_order_relaxed) == 1)
        slab_retire(&t->slab[1], head, head_stripe(h->txid));
}

/* Outputs with a lower index always get a head of their own: sharing
 * saves 28 bytes an output but makes the head a third dependent load on
 * lookups, which pays where a head serves many outputs (and so stays
 * cached): a transaction with more outputs than this. Transfers (a
 * payment and its change) keep the two-load lookups and 84-byte entries
 * of an inline txid. */
#define SHARE_FROM_INDEX 4

/* A free entry for (txid, index), its key written, or 0 when out of memory
 * (nothing taken then). From SHARE_FROM_INDEX on, it names the cached head
 * of txid while that head is in use (a count > 0); else it is a new head,
 * and cached. Two threads missing together make two heads of one txid,
 * which only costs memory: keys are compared by bytes, never by head. */
static uint32_t alloc_entry(pm_utxo_table *t, unsigned stripe, const uint8_t txid[32],
                            uint16_t index)
{
    _Atomic uint32_t *slot = &t->txcache[txcache_slot(t, txid)];
    uint32_t c = index >= SHARE_FROM_INDEX ? atomic_load_explicit(slot, memory_order_acquire) : 0;
    if (c) {
        pm_head *h = head_of(t, c);
        if (memcmp(h->txid, txid, 32) == 0) {
            uint32_t n = atomic_load_explicit(&h->word, memory_order_relaxed);
            while (n != 0 && (n & REF_HEAD) == 0) { /* a count, not a link */
                if (!atomic_compare_exchange_weak_explicit(&h->word, &n, n + 1,
                                                           memory_order_relaxed,
                                                           memory_order_relaxed))
                    continue;
                uint32_t ref = slab_alloc(t, &t->slab[0], stripe);
                if (!ref) {
                    head_release(t, c);
                    return 0;
                }
                pm_entry *e = entry_of(t, ref);
                atomic_store_explicit(&e->word, c, memory_order_relaxed);
                memcpy(e->index, &index, 2);
                return ref;
            }
        }
    }
    uint32_t ref = slab_alloc(t, &t->slab[1], head_stripe(txid));
    if (!ref)
        return 0;
    pm_head *h = head_of(t, ref);
    atomic_store_explicit(&h->word, 1, memory_order_relaxed);
    memcpy(h->index, &index, 2);
    memcpy(h->txid, txid, 32);
    atomic_store_explicit(slot, ref, memory_order_release);
    return ref;
}

/* An entry that was never published, or was spent: a head only drops its
 * own use of its txid (it is retired once no entry names it), another
 * entry is retired and lets its head go. */
static void retire_entry(pm_utxo_table *t, uint32_t ref, unsigned stripe)
{
    if (ref_is_head(ref)) {
        head_release(t, ref);
        return;
    }
    uint32_t head = atomic_load_explicit(&entry_of(t, ref)->word, memory_order_relaxed);
    slab_retire(&t->slab[0], ref, stripe);
    head_release(t, head);
}

/* ---------------------------------------------------------------------- */
/* Arrays.                                                                 */
/* ---------------------------------------------------------------------- */

/* log2 of the cells for `need` live entries at <= 60% load, or 0 when too
 * many. */
static unsigned cells_log_for(uint64_t need)
{
    if (need > ((uint64_t)1 << MAX_CELLS_LOG))
        return 0;
    unsigned lg = MIN_CELLS_LOG;
    while (need * 5 > ((uint64_t)3 << lg)) {
        if (++lg > MAX_CELLS_LOG)
            return 0;
    }
    return lg;
}

/* The cells get a block of their own, a power of two in size, so the
 * allocator adds no rounding to it (one header block with the cells would
 * round 2^k + a few bytes up to the next size class). */
static cells *array_create(pm_utxo_table *t, unsigned lg)
{
    uint64_t n = (uint64_t)1 << lg;
    uint64_t nchunks = n / MIG_CHUNK;
    size_t bytes = sizeof(cells) + (nchunks + 63) / 64 * sizeof(uint64_t);
    cells *a = pm_arena_alloc(t->arena, bytes, 64, PM_ARENA_ZERO);
    if (!a)
        return NULL;
    a->slot = pm_arena_alloc(t->arena, n * sizeof(uint64_t), 64, PM_ARENA_ZERO | PM_ARENA_HUGE);
    if (!a->slot) {
        pm_arena_free(t->arena, a, bytes);
        return NULL;
    }
    /* Zero-filled: counts, cursors, next, prev and every cell start at 0. */
    a->shift = 64 - lg;
    a->mask = n - 1;
    a->soft = n / 4 * 3;
    a->hard = n - n / 16;
    a->shrink = lg > MIN_CELLS_LOG ? n / 10 : 0;
    a->nchunks = nchunks;
    a->chunk_done = (_Atomic uint64_t *)(a + 1);
    a->bytes = bytes;
    return a;
}

static void array_free(pm_utxo_table *t, cells *a)
{
    if (a) {
        pm_arena_free(t->arena, (void *)a->slot, (size_t)(a->mask + 1) * sizeof(uint64_t));
        pm_arena_free(t->arena, a, a->bytes);
    }
}

static void retire_array(pm_utxo_table *t, cells *a)
{
    cells *head = atomic_load_explicit(&t->retired_arrays, memory_order_relaxed);
    do {
        a->retired_next = head;
    } while (!atomic_compare_exchange_weak_explicit(&t->retired_arrays, &head, a,
                                                    memory_order_release, memory_order_relaxed));
}

/* Place ref (with hash bits) in array f or its successors, unless a cell on
 * its probe path already holds that ref (in any state): the copy is then
 * already done. Never needs memory: the successor was sized for it.
 * Returns the array the copy was placed in (NULL: it was already there);
 * the caller accounts for it (see help_migrate). */
static cells *copy_into(cells *f, uint64_t v)
{
    uint64_t hbits = v & C_HASH, ref = v & C_REF;
    for (;;) {
        uint64_t i = hbits >> f->shift;
        for (;;) {
            uint64_t w = atomic_load_explicit(&f->slot[i], memory_order_acquire);
            if ((w & C_REF) == ref)
                return NULL;
            if (w == 0) {
                cells *nx = atomic_load_explicit(&f->next, memory_order_acquire);
                if (nx) {
                    if (atomic_compare_exchange_strong_explicit(&f->slot[i], &w, MOVED_EMPTY,
                                                                memory_order_acq_rel,
                                                                memory_order_acquire)) {
                        f = nx;
                        break;
                    }
                    continue;
                }
                if (atomic_compare_exchange_strong_explicit(&f->slot[i], &w, hbits | ref,
                                                            memory_order_acq_rel,
                                                            memory_order_acquire))
                    return f;
                continue;
            }
            if (w == MOVED_EMPTY) {
                f = atomic_load_explicit(&f->next, memory_order_acquire);
                break;
            }
            i = (i + 1) & f->mask;
        }
    }
}

enum { MIG_COPIED = 1, MIG_MOVED = 2 };

/* Complete the migration of a FROZEN_LIVE cell (any thread may). Returns
 * MIG_COPIED if this call placed the copy in x->next (not yet counted
 * there) and MIG_MOVED if it turned the cell MOVED (x's live count not yet
 * lowered). */
static int finish_copy_uncounted(cells *x, uint64_t i, uint64_t v)
{
    cells *f = atomic_load_explicit(&x->next, memory_order_acquire);
    cells *at = copy_into(f, v);
    int r = 0;
    if (at == f)
        r |= MIG_COPIED;
    else if (at) /* placed further down the chain (see copy_into): count it there */
        atomic_fetch_add_explicit(&at->counts, ONE_CELL, memory_order_relaxed);
    if (atomic_compare_exchange_strong_explicit(&x->slot[i], &v, v | C_TOMB, memory_order_acq_rel,
                                                memory_order_acquire))
        r |= MIG_MOVED;
    return r;
}

/* The same with the counts settled at once (a writer helping one cell). */
static void finish_copy(cells *x, uint64_t i, uint64_t v)
{
    int r = finish_copy_uncounted(x, i, v);
    if (r & MIG_COPIED)
        atomic_fetch_add_explicit(&atomic_load_explicit(&x->next, memory_order_acquire)->counts,
                                  ONE_CELL, memory_order_relaxed);
    if (r & MIG_MOVED)
        atomic_fetch_sub_explicit(&x->counts, ONE_LIVE, memory_order_relaxed);
}

/* Bring cell i of a migrating array to MOVED / MOVED_EMPTY. Idempotent.
 * Returns the MIG_* flags of finish_copy_uncounted. */
static int migrate_cell(cells *x, uint64_t i)
{
    for (;;) {
        uint64_t v = atomic_load_explicit(&x->slot[i], memory_order_acquire);
        uint64_t state = v & C_STATE;
        if (state == C_STATE)
            return 0;
        if (state == C_FROZEN)
            return finish_copy_uncounted(x, i, v);
        /* EMPTY -> MOVED_EMPTY, TOMB -> MOVED, LIVE -> FROZEN_LIVE. */
        uint64_t to = v == 0 ? MOVED_EMPTY : v | C_FROZEN;
        atomic_compare_exchange_strong_explicit(&x->slot[i], &v, to, memory_order_acq_rel,
                                                memory_order_acquire);
    }
}

/* Migrate cells [lo, hi) of x. The counts are settled once for the range:
 * room for every cell is taken in the successor first and the unused part
 * handed back after, and the old array's live count is lowered after, so
 * used(next) + live(x), which bounds what the successor must hold, is
 * never underestimated meanwhile. */
static void migrate_range(cells *x, uint64_t lo, uint64_t hi)
{
    cells *f = atomic_load_explicit(&x->next, memory_order_acquire);
    atomic_fetch_add_explicit(&f->counts, (hi - lo) * ONE_CELL, memory_order_relaxed);
    uint64_t copied = 0, moved = 0;
    for (uint64_t i = lo; i < hi; i++) {
        int r = migrate_cell(x, i);
        copied += r & MIG_COPIED ? 1 : 0;
        moved += r & MIG_MOVED ? 1 : 0;
    }
    atomic_fetch_sub_explicit(&f->counts, (hi - lo - copied) * ONE_CELL, memory_order_relaxed);
    if (moved)
        atomic_fetch_sub_explicit(&x->counts, moved * ONE_LIVE, memory_order_relaxed);
}

/* Swing cur from x to its successor once every cell of x is migrated. */
static void complete_switch(pm_utxo_table *t, cells *x)
{
    cells *f = atomic_load_explicit(&x->next, memory_order_acquire);
    cells *expected = x;
    if (atomic_compare_exchange_strong_explicit(&t->cur, &expected, f, memory_order_acq_rel,
                                                memory_order_acquire)) {
        atomic_store_explicit(&f->prev, NULL, memory_order_release);
        atomic_fetch_add_explicit(&t->migrations, 1, memory_order_relaxed);
        retire_array(t, x);
    }
}

/* One chunk of migration work, if x is migrating. Claims go round the
 * chunks again and again until every chunk is marked done, so a chunk
 * whose claimer stalled is simply done again by someone else (migrating
 * a cell is idempotent): completing a migration never waits for a thread. */
static void help_migrate(pm_utxo_table *t, cells *x)
{
    if (atomic_load_explicit(&x->next, memory_order_acquire) == NULL)
        return;
    uint64_t c = atomic_fetch_add_explicit(&x->mig_claim, 1, memory_order_relaxed) % x->nchunks;
    uint64_t bit = (uint64_t)1 << (c % 64);
    _Atomic uint64_t *word = &x->chunk_done[c / 64];
    if (atomic_load_explicit(word, memory_order_acquire) & bit)
        return;
    migrate_range(x, c * MIG_CHUNK, (c + 1) * MIG_CHUNK);
    if (atomic_fetch_or_explicit(word, bit, memory_order_acq_rel) & bit)
        return;
    if (atomic_fetch_add_explicit(&x->mig_done, 1, memory_order_acq_rel) + 1 == x->nchunks)
        complete_switch(t, x);
}

/* Migrate every cell of x now (whoever else is working on it) and switch.
 * Used when the successor must be complete: reserve, or a full array. */
static void finish_migration(pm_utxo_table *t, cells *x)
{
    for (uint64_t i = 0; i <= x->mask; i += MIG_CHUNK)
        migrate_range(x, i, i + MIG_CHUNK);
    complete_switch(t, x);
}

/* Publish a successor of the final array x, sized for its live entries
 * plus `extra`. Without `force`, gives way to a thread already doing it.
 * Returns 1 when x has a successor on return. */
static int start_migration(pm_utxo_table *t, cells *x, uint64_t extra, int force)
{
    if (atomic_load_explicit(&x->next, memory_order_acquire))
        return 1;
    if (atomic_exchange_explicit(&x->starting, 1, memory_order_acq_rel) && !force)
        return 0;
    /* Room for the live entries, for `extra` (reserve), for the last
     * reservation (its inserts may be the ones that trigger this), and for
     * the inserts made while the migration runs (each one migrates a
     * chunk). */
    uint64_t promised = atomic_load_explicit(&t->promised, memory_order_relaxed);
    if (promised > extra)
        extra = promised;
    uint64_t need = live_of(atomic_load_explicit(&x->counts, memory_order_relaxed)) + extra +
                    x->nchunks;
    unsigned lg = cells_log_for(need + 1);
    cells *f = lg ? array_create(t, lg) : NULL;
    if (!f) {
        atomic_store_explicit(&x->starting, 0, memory_order_release);
        return atomic_load_explicit(&x->next, memory_order_acquire) != NULL;
    }
    atomic_store_explicit(&f->prev, x, memory_order_relaxed);
    cells *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&x->next, &expected, f, memory_order_acq_rel,
                                                 memory_order_acquire))
        array_free(t, f);
    return 1;
}

/* Far fewer live entries than cells: rehash into a smaller array (memory
 * back at the next quiescent point). */
static void maybe_shrink(pm_utxo_table *t, cells *x)
{
    if (atomic_load_explicit(&x->next, memory_order_acquire) == NULL &&
        atomic_load_explicit(&x->prev, memory_order_acquire) == NULL)
        start_migration(t, x, 0, 0);
}

enum { ROOM_OK, ROOM_RETRY, ROOM_NOMEM };

/* Take a cell's worth of room in the final array x for an insert. */
static int reserve_cell(pm_utxo_table *t, cells *x)
{
    uint64_t used = used_of(atomic_fetch_add_explicit(&x->counts, ONE_CELL,
                                                      memory_order_relaxed)) + 1;
    cells *p = atomic_load_explicit(&x->prev, memory_order_acquire);
    uint64_t pending = p ? live_of(atomic_load_explicit(&p->counts, memory_order_relaxed)) : 0;
    if (used + pending <= x->soft)
        return ROOM_OK;
    if (used + pending <= x->hard) {
        /* Grow in the background; on failure retry every 64 inserts. */
        if (!p && (used == x->soft + 1 || (used & 63) == 0))
            start_migration(t, x, 0, 0);
        return ROOM_OK;
    }
    atomic_fetch_sub_explicit(&x->counts, ONE_CELL, memory_order_relaxed);
    if (p) {
        finish_migration(t, p);
        return ROOM_RETRY;
    }
    return start_migration(t, x, 0, 1) ? ROOM_RETRY : ROOM_NOMEM;
}

/* ---------------------------------------------------------------------- */
/* Public operations.                                                      */
/* ---------------------------------------------------------------------- */

static void fill_secret(pm_utxo_table *t)
{
    size_t got = 0;
    while (got < sizeof t->secret) {
        ssize_t r = getrandom(t->secret + got, sizeof t->secret - got, 0);
        if (r > 0)
            got += (size_t)r;
        else if (r < 0 && errno != EINTR)
            break;
    }
    if (got == sizeof t->secret)
        return;
    /* No getrandom (a very old kernel): a weaker secret from the clock and
     * addresses, still unknown to whoever grinds txids offline. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t seed[4] = {(uint64_t)ts.tv_sec, (uint64_t)ts.tv_nsec, (uint64_t)(uintptr_t)t,
                        (uint64_t)getpid()};
    for (size_t i = got; i < sizeof t->secret; i += 8) {
        uint64_t x = XXH3_64bits_withSeed(seed, sizeof seed, i);
        memcpy(t->secret + i, &x, sizeof t->secret - i < 8 ? sizeof t->secret - i : 8);
    }
}

pm_status pm_utxo_table_create(pm_utxo_table **table, size_t capacity_hint)
{
    *table = NULL;
    pm_arena *arena = pm_arena_create();
    if (!arena)
        return PM_ERR_NOMEM;
    pm_utxo_table *t = pm_arena_alloc(arena, sizeof *t, alignof(pm_utxo_table), PM_ARENA_ZERO);
    if (!t) {
        pm_arena_destroy(arena);
        return PM_ERR_NOMEM;
    }
    t->arena = arena;
    t->hint = capacity_hint;
    fill_secret(t);
    /* How the hint splits between heads and other entries depends on the
     * outputs per transaction, unknown here: the first chunk of heads is
     * sized for all of it (a table of small transactions is all heads, and
     * a chunk sized for entries it never makes would be waste), the other
     * entries' chunks grow from the smallest, by 1/16 of their total. */
    slab_init(&t->slab[0], sizeof(pm_entry), offsetof(pm_entry, link), 0, 0);
    slab_init(&t->slab[1], sizeof(pm_head), offsetof(pm_head, word), REF_HEAD, capacity_hint);
    /* A hint beyond what one array can index is sized down to that. */
    uint64_t hint = capacity_hint;
    if (hint > ((uint64_t)1 << MAX_CELLS_LOG) / 2)
        hint = ((uint64_t)1 << MAX_CELLS_LOG) / 2;
    unsigned lg = cells_log_for(hint + 1);
    cells *a = lg ? array_create(t, lg) : NULL;
    if (!a || !add_chunk(t, &t->slab[0], 0, 0) || !add_chunk(t, &t->slab[1], 0, 0)) {
        array_free(t, a);
        slab_destroy(t, &t->slab[0]);
        pm_arena_free(arena, t, sizeof *t);
        pm_arena_destroy(arena);
        return PM_ERR_NOMEM;
    }
    atomic_store_explicit(&t->cur, a, memory_order_release);
    *table = t;
    return PM_OK;
}

void pm_utxo_table_destroy(pm_utxo_table *t)
{
    if (!t)
        return;
    pm_utxo_table_reclaim(t);
    cells *a = atomic_load_explicit(&t->cur, memory_order_relaxed);
    array_free(t, atomic_load_explicit(&a->next, memory_order_relaxed));
    array_free(t, a);
    slab_destroy(t, &t->slab[0]);
    slab_destroy(t, &t->slab[1]);
    pm_arena *arena = t->arena;
    pm_arena_free(arena, t, sizeof *t);
    pm_arena_destroy(arena);
}

pm_status pm_utxo_table_insert(pm_utxo_table *t, const uint8_t txid[32], uint16_t index,
                               const uint8_t output[PM_OUTPUT_SIZE])
{
    uint64_t h = key_hash(t, txid, index);
    unsigned stripe = (unsigned)h & (STRIPES - 1);
    uint32_t ref = 0;
    cells *x = atomic_load_explicit(&t->cur, memory_order_acquire);
    if (atomic_load_explicit(&x->next, memory_order_relaxed)) {
        help_migrate(t, x);
        x = atomic_load_explicit(&t->cur, memory_order_acquire);
    }
    for (;;) {
        uint64_t i = h >> x->shift;
        for (;;) {
            uint64_t v = atomic_load_explicit(&x->slot[i], memory_order_acquire);
            if (v == MOVED_EMPTY) {
                x = atomic_load_explicit(&x->next, memory_order_acquire);
                break;
            }
            if (v == 0) {
                cells *nx = atomic_load_explicit(&x->next, memory_order_acquire);
                if (nx) {
                    /* Seal the end of the probe before moving on. */
                    if (atomic_compare_exchange_strong_explicit(&x->slot[i], &v, MOVED_EMPTY,
                                                                memory_order_acq_rel,
                                                                memory_order_acquire)) {
                        x = nx;
                        break;
                    }
                    continue;
                }
                int room = reserve_cell(t, x);
                if (room == ROOM_RETRY)
                    continue;
                if (room == ROOM_NOMEM) {
                    if (ref)
                        retire_entry(t, ref, stripe);
                    return PM_ERR_NOMEM;
                }
                if (!ref) {
                    ref = alloc_entry(t, stripe, txid, index);
                    if (!ref) {
                        atomic_fetch_sub_explicit(&x->counts, ONE_CELL, memory_order_relaxed);
                        return PM_ERR_NOMEM;
                    }
                    memcpy(entry_of(t, ref)->output, output, PM_OUTPUT_SIZE);
                }
                if (atomic_compare_exchange_strong_explicit(&x->slot[i], &v, (h & C_HASH) | ref,
                                                            memory_order_acq_rel,
                                                            memory_order_acquire))
                    return PM_OK;
                atomic_fetch_sub_explicit(&x->counts, ONE_CELL, memory_order_relaxed);
                continue;
            }
            if (cell_candidate(v, h) && key_eq(t, v, txid, index)) {
                if (ref)
                    retire_entry(t, ref, stripe);
                return PM_ERR_STATE;
            }
            i = (i + 1) & x->mask;
        }
    }
}

int pm_utxo_table_spend(pm_utxo_table *t, const uint8_t txid[32], uint16_t index,
                        uint8_t output[PM_OUTPUT_SIZE])
{
    uint64_t h = key_hash(t, txid, index);
    cells *x = atomic_load_explicit(&t->cur, memory_order_acquire);
    if (atomic_load_explicit(&x->next, memory_order_relaxed)) {
        help_migrate(t, x);
        x = atomic_load_explicit(&t->cur, memory_order_acquire);
    }
    for (;;) {
        uint64_t i = h >> x->shift;
        for (;;) {
            uint64_t v = atomic_load_explicit(&x->slot[i], memory_order_acquire);
            if (v == MOVED_EMPTY) {
                x = atomic_load_explicit(&x->next, memory_order_acquire);
                break;
            }
            if (v == 0) {
                cells *nx = atomic_load_explicit(&x->next, memory_order_acquire);
                if (!nx)
                    return 0;
                if (atomic_compare_exchange_strong_explicit(&x->slot[i], &v, MOVED_EMPTY,
                                                            memory_order_acq_rel,
                                                            memory_order_acquire)) {
                    x = nx;
                    break;
                }
                continue;
            }
            if (cell_candidate(v, h)) {
                pm_entry *e = entry_of(t, v);
                if (key_eq(t, v, txid, index)) {
                    if (v & C_FROZEN) {
                        /* Being copied: finish it, then spend the copy. */
                        finish_copy(x, i, v);
                        x = atomic_load_explicit(&x->next, memory_order_acquire);
                        break;
                    }
                    if (atomic_compare_exchange_strong_explicit(&x->slot[i], &v, v | C_TOMB,
                                                                memory_order_acq_rel,
                                                                memory_order_acquire)) {
                        uint64_t live = live_of(atomic_fetch_sub_explicit(
                                            &x->counts, ONE_LIVE, memory_order_relaxed)) - 1;
                        if (live < x->shrink && (live & 63) == 0)
                            maybe_shrink(t, x);
                        if (output)
                            memcpy(output, e->output, PM_OUTPUT_SIZE);
                        retire_entry(t, (uint32_t)v, (unsigned)h & (STRIPES - 1));
                        return 1;
                    }
                    continue; /* spent or frozen meanwhile: look again */
                }
            }
            i = (i + 1) & x->mask;
        }
    }
}

int pm_utxo_table_lookup(const pm_utxo_table *t, const uint8_t txid[32], uint16_t index,
                         uint8_t output[PM_OUTPUT_SIZE])
{
    uint64_t h = key_hash(t, txid, index);
    cells *x = atomic_load_explicit(&mut(t)->cur, memory_order_acquire);
    do {
        for (uint64_t i = h >> x->shift;; i = (i + 1) & x->mask) {
            uint64_t v = atomic_load_explicit(&x->slot[i], memory_order_acquire);
            if (v == 0 || v == MOVED_EMPTY)
                break;
            if (cell_candidate(v, h)) {
                if (key_eq(t, v, txid, index)) {
                    const pm_entry *e = entry_of(t, v);
                    if (output)
                        memcpy(output, e->output, PM_OUTPUT_SIZE);
                    return 1;
                }
            }
        }
        x = atomic_load_explicit(&x->next, memory_order_acquire);
    } while (x);
    return 0;
}

/* Group prefetching: hash a group of keys and prefetch their home cells,
 * then scan the (now cached) cells and prefetch the candidate entries, then
 * prefetch the heads of those that are not heads themselves, then compare.
 * Every stage issues a whole group's misses before waiting on any, so a
 * head (a third dependent load, for outputs after their transaction's
 * first) costs a stage, not a miss per key.
 * Anything unusual (a migration, a fingerprint collision) falls back to
 * the plain lookup, which finds everything in cache by then. */
#define BATCH_GROUP 16

void pm_utxo_table_lookup_batch(const pm_utxo_table *t, size_t n, const pm_outpoint *keys,
                                uint8_t (*outputs)[PM_OUTPUT_SIZE], uint8_t *found)
{
    enum { ABSENT, CANDIDATE, SLOW };
    uint64_t hs[BATCH_GROUP];
    uint64_t cand[BATCH_GROUP];
    const uint8_t *txid[BATCH_GROUP];
    uint8_t state[BATCH_GROUP];
    for (size_t base = 0; base < n; base += BATCH_GROUP) {
        size_t m = n - base < BATCH_GROUP ? n - base : BATCH_GROUP;
        const pm_outpoint *k = keys + base;
        cells *x = atomic_load_explicit(&mut(t)->cur, memory_order_acquire);
        for (size_t j = 0; j < m; j++) {
            hs[j] = key_hash(t, k[j].txid, k[j].index);
            __builtin_prefetch(&x->slot[hs[j] >> x->shift]);
        }
        for (size_t j = 0; j < m; j++) {
            state[j] = SLOW;
            uint64_t i = hs[j] >> x->shift;
            for (unsigned step = 0; step < 16; step++, i = (i + 1) & x->mask) {
                uint64_t v = atomic_load_explicit(&x->slot[i], memory_order_acquire);
                if (v == 0) {
                    if (atomic_load_explicit(&x->next, memory_order_acquire) == NULL)
                        state[j] = ABSENT;
                    break;
                }
                if (v == MOVED_EMPTY)
                    break;
                if (cell_candidate(v, hs[j])) {
                    const uint8_t *e = (const uint8_t *)entry_of(t, v);
                    __builtin_prefetch(e);
                    __builtin_prefetch(e + sizeof(pm_entry) - 1);
                    if (ref_is_head((uint32_t)v))
                        __builtin_prefetch(e + sizeof(pm_head) - 1);
                    cand[j] = v;
                    state[j] = CANDIDATE;
                    break;
                }
            }
        }
        for (size_t j = 0; j < m; j++) {
            if (state[j] != CANDIDATE)
                continue;
            const pm_entry *e = entry_of(t, cand[j]);
            uint16_t index;
            memcpy(&index, e->index, 2);
            if (index != k[j].index) {
                state[j] = SLOW;
                continue;
            }
            txid[j] = entry_txid(t, (uint32_t)cand[j], e);
            __builtin_prefetch(txid[j]);
            __builtin_prefetch(txid[j] + 31);
        }
        for (size_t j = 0; j < m; j++) {
            if (state[j] == CANDIDATE) {
                if (memcmp(txid[j], k[j].txid, 32) == 0) {
                    memcpy(outputs[base + j], entry_of(t, cand[j])->output, PM_OUTPUT_SIZE);
                    found[base + j] = 1;
                    continue;
                }
            } else if (state[j] == ABSENT) {
                found[base + j] = 0;
                continue;
            }
            found[base + j] = (uint8_t)pm_utxo_table_lookup(t, k[j].txid, k[j].index,
                                                            outputs[base + j]);
        }
    }
}

pm_status pm_utxo_table_reserve(pm_utxo_table *t, size_t n)
{
    if (n > ((size_t)1 << MAX_CELLS_LOG))
        return PM_ERR_NOMEM; /* more than the table can ever hold */
    atomic_store_explicit(&t->promised, n, memory_order_relaxed);
    /* Slots for n entries, and for n heads in case no insert finds one to
     * share: chunks allocated ahead (free lists and the stripes' runs
     * are not counted), with room for every stripe to take two runs (one
     * may be lost to a race). */
    size_t need = n + 2 * STRIPES * FRESH_RUN;
    if (!slab_reserve(t, &t->slab[0], need) || !slab_reserve(t, &t->slab[1], need))
        return PM_ERR_NOMEM;
    /* Cells: the final array must take n more on top of what it holds and
     * what is still to be copied into it. */
    for (;;) {
        cells *x = atomic_load_explicit(&t->cur, memory_order_acquire);
        cells *f = atomic_load_explicit(&x->next, memory_order_acquire);
        if (!f) {
            if (used_of(atomic_load_explicit(&x->counts, memory_order_relaxed)) + n <= x->hard)
                return PM_OK;
            if (!start_migration(t, x, n, 1))
                return PM_ERR_NOMEM;
            continue;
        }
        uint64_t used = used_of(atomic_load_explicit(&f->counts, memory_order_relaxed));
        uint64_t pending = live_of(atomic_load_explicit(&x->counts, memory_order_relaxed));
        if (used + pending + n <= f->hard)
            return PM_OK;
        finish_migration(t, x);
    }
}

void pm_utxo_table_reclaim(pm_utxo_table *t)
{
    slab_reclaim(&t->slab[0]);
    /* Heads about to be reused must not stay reachable from the cache (an
     * insert would compare a txid being overwritten). */
    if (slab_reclaim(&t->slab[1]))
        for (unsigned i = 0; i < TXCACHE_SLOTS; i++)
            atomic_store_explicit(&t->txcache[i], 0, memory_order_relaxed);
    cells *a = atomic_exchange_explicit(&t->retired_arrays, NULL, memory_order_acquire);
    while (a) {
        cells *next = a->retired_next;
        array_free(t, a);
        a = next;
    }
}

uint64_t pm_utxo_table_count(const pm_utxo_table *t)
{
    cells *x = atomic_load_explicit(&mut(t)->cur, memory_order_acquire);
    uint64_t n = 0;
    for (; x; x = atomic_load_explicit(&x->next, memory_order_acquire))
        n += live_of(atomic_load_explicit(&x->counts, memory_order_relaxed));
    return n;
}

/* The §8 sorted walk and the digest over it are utxo_digest.c. */
/* Statistics and the test hooks (utxo.h) are internal/test_hooks.c. */
