/*
 * utxo.h — the lock-free UTXO table: outpoint (txid, index) -> 45-byte
 * output.
 *
 * Contract (the implementation file opens with the design that meets it):
 *  - Keyed by the full outpoint: a lookup never matches on a fingerprint
 *    alone. Hashing is XXH3 with a per-table random secret (hash flooding).
 *  - lookup / lookup_batch never lock and never wait for a writer.
 *    insert and spend use compare-and-swap and may run from any number of
 *    threads at once, concurrently with lookups.
 *  - Memory ordering: an insert publishes the entry with a release store;
 *    a lookup that observes it (acquire) sees the whole entry. An entry
 *    present during the whole of a lookup is found, also while the table
 *    grows. Of several threads spending the same outpoint exactly one gets
 *    1.
 *  - Reclamation: memory of spent entries (and of the old bucket array
 *    after growth) is only retired by spend/insert; it is freed by
 *    pm_utxo_table_reclaim, which the owner calls at a quiescent point
 *    (no lookup, insert or spend in flight on any thread), e.g. at block
 *    commit. So a reader never touches freed memory.
 *  - Running out of memory: insert returns PM_ERR_NOMEM and changes
 *    nothing. After pm_utxo_table_reserve(t, n) returns PM_OK the next n
 *    inserts cannot fail for lack of memory (undo relies on this).
 *  - count, foreach, digest and memory are exact only at a quiescent
 *    point.
 */
#ifndef PM_ENGINE_UTXO_H
#define PM_ENGINE_UTXO_H

#include "hash.h"
#include "postmark.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pm_utxo_table pm_utxo_table;

/* Create a table sized for about capacity_hint live entries (it grows past
 * that). Returns PM_OK or PM_ERR_NOMEM. */
pm_status pm_utxo_table_create(pm_utxo_table **table, size_t capacity_hint);
void pm_utxo_table_destroy(pm_utxo_table *t);

/* Insert. Returns PM_OK; PM_ERR_STATE when the outpoint is already present
 * (table unchanged); PM_ERR_NOMEM (table unchanged). */
pm_status pm_utxo_table_insert(pm_utxo_table *t, const uint8_t txid[32], uint16_t index,
                               const uint8_t output[PM_OUTPUT_SIZE]);

/* Remove. Returns 1 when this call removed the entry (its output copied to
 * `output` if not NULL), 0 when it was absent or another thread removed it
 * first. */
int pm_utxo_table_spend(pm_utxo_table *t, const uint8_t txid[32], uint16_t index,
                        uint8_t output[PM_OUTPUT_SIZE]);

/* Returns 1 and copies the output (if `output` is not NULL) when present. */
int pm_utxo_table_lookup(const pm_utxo_table *t, const uint8_t txid[32], uint16_t index,
                         uint8_t output[PM_OUTPUT_SIZE]);

/* n lookups with software prefetch (several cache misses in flight).
 * found[i] is 1 or 0; outputs[i] is set when found. */
void pm_utxo_table_lookup_batch(const pm_utxo_table *t, size_t n, const pm_outpoint *keys,
                                uint8_t (*outputs)[PM_OUTPUT_SIZE], uint8_t *found);

/* Make sure the next n inserts cannot fail with PM_ERR_NOMEM. */
pm_status pm_utxo_table_reserve(pm_utxo_table *t, size_t n);

/* Free retired memory. Only at a quiescent point (see above). */
void pm_utxo_table_reclaim(pm_utxo_table *t);

uint64_t pm_utxo_table_count(const pm_utxo_table *t);

/* Bytes of memory the table holds (buckets, entries, interned keys,
 * allocator rounding included). This, pm_utxo_table_stats and the two
 * testing functions below are internal/test_hooks.c: tests and
 * benchmarks link them (postmark_internal); the library never calls them. */
size_t pm_utxo_table_memory(const pm_utxo_table *t);

/* Visit every entry (any order) at a quiescent point. Stops early and
 * returns the callback's value when it returns non-zero; 0 otherwise.
 * (Tests only: internal/test_hooks.c. The library walks the table in §8
 * order, pm_utxo_table_walk_sorted.) */
typedef int (*pm_utxo_visit_fn)(void *data, const uint8_t txid[32], uint16_t index,
                                const uint8_t output[PM_OUTPUT_SIZE]);
int pm_utxo_table_foreach(const pm_utxo_table *t, pm_utxo_visit_fn fn, void *data);

/* One entry in the §8 record form: txid || index (big-endian) || output. */
#define PM_UTXO_RECORD_SIZE (32 + 2 + PM_OUTPUT_SIZE)

/* Called with n consecutive records (n * PM_UTXO_RECORD_SIZE bytes, valid
 * during the call); anything but PM_OK stops the walk and is returned. */
typedef pm_status (*pm_utxo_records_fn)(void *data, const uint8_t *records, size_t n);

/* Visit every entry in protocol §8 order (txid, then index), at a
 * quiescent point, in batches of records. The order both the UTXO digest
 * and a snapshot's UTXO section follow. fn is called on the calling
 * thread, in order; a helper thread may read the table meanwhile (it
 * sorts the next range of txids). Memory: a byte per cell plus
 * references to about 1/8 of the entries (utxo_digest.c). Returns PM_OK,
 * PM_ERR_NOMEM, or what fn returned. */
pm_status pm_utxo_table_walk_sorted(const pm_utxo_table *t, pm_utxo_records_fn fn, void *data);

/* The UTXO digest of protocol §8 at a quiescent point: the tagged hash of
 * the sorted walk's records. Returns PM_OK or PM_ERR_NOMEM. */
pm_status pm_utxo_table_digest(const pm_utxo_table *t, pm_hasher *h, uint8_t out[32]);

/* ---- additions (introspection and testing) ---------------------------- */

/* A snapshot of the table's shape, exact at a quiescent point. */
typedef struct {
    uint64_t live;            /* entries present (pm_utxo_table_count) */
    size_t cells;             /* slots of the current bucket array */
    size_t cells_next;        /* slots of the array being migrated into, 0 if none */
    uint64_t migrations;      /* completed migrations (growth or rehash) */
    size_t chunks;            /* entry storage blocks */
    size_t entry_slots;       /* entry slots in those blocks */
    size_t memory;            /* pm_utxo_table_memory */
    const char *backend;      /* "jemalloc" or "malloc" */
} pm_utxo_stats;

void pm_utxo_table_stats(const pm_utxo_table *t, pm_utxo_stats *out);

/* Testing: make every allocation that would take pm_utxo_table_memory
 * above `bytes` fail as if memory had run out (0: no limit). Any thread,
 * any time. */
void pm_utxo_table_set_memory_limit(pm_utxo_table *t, size_t bytes);

/* Testing: act as migrator threads that stalled. While a migration is in
 * progress, freeze up to n live cells of the old array (LIVE ->
 * FROZEN_LIVE) without copying them, as a migrator preempted between its
 * two steps leaves them; with lose_chunk also claim one chunk of
 * migration work and never do it (a later round of claims must). The
 * other threads have to finish that work themselves.
 * Returns the number of cells frozen. Safe at any time, from any thread. */
size_t pm_utxo_table_test_stall(pm_utxo_table *t, size_t n, int lose_chunk);

#endif
