/*
 * sigcache.h — the signature cache of the node path: a signature that
 * verified when a transaction was admitted (pm_engine_check_tx, submit) is
 * not verified again when a block holding it is connected, as Bitcoin
 * Core's sigcache does for a node that saw a block's transactions in its
 * mempool.
 *
 * Contract (the design that meets it opens sigcache.c):
 *  - It holds fingerprints: a keyed SHA-256, under a secret salt drawn at
 *    creation, of (chain id, key, message, signature). Only signatures
 *    that verified are inserted, and a lookup matches all 256 bits, so a
 *    hit needs the same chain, key, message and signature: it never makes
 *    an invalid signature pass.
 *  - Bounded: the memory is fixed at creation (at most the bytes asked
 *    for) and never grows; an insert into a full set evicts one entry.
 *  - Threads: lookup and insert may run from any number of threads at
 *    once; neither locks or waits. A lookup racing an insert into the
 *    same set may miss (the signature is then verified: slower, never
 *    wrong); an insert racing another into the same set is dropped.
 */
#ifndef PM_ENGINE_SIGCACHE_H
#define PM_ENGINE_SIGCACHE_H

#include "hash.h"
#include "postmark.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pm_sigcache pm_sigcache;

/* Entries per set. */
#define PM_SIGCACHE_WAYS 8

/* Create a cache of at most max_bytes (rounded down to whole sets of
 * PM_SIGCACHE_WAYS entries, at least one set) for the chain chain_id.
 * salt: 64 secret bytes, or NULL to draw them from getrandom (tests pass
 * one to compare caches that differ in nothing else).
 * Returns PM_OK (*cache NULL when max_bytes is 0: no cache) or
 * PM_ERR_NOMEM. */
pm_status pm_sigcache_create(pm_sigcache **cache, size_t max_bytes, const uint8_t chain_id[32],
                             const uint8_t *salt);
void pm_sigcache_destroy(pm_sigcache *c);

/* The chain the cache was created for. */
const uint8_t *pm_sigcache_chain_id(const pm_sigcache *c);

/* fp = the fingerprint of (chain_id, key, msg32, sig64) under the cache's
 * salt, computed in the caller's hasher. Returns 1, or 0 when hashing
 * failed (treat as a miss). */
int pm_sigcache_fingerprint(const pm_sigcache *c, pm_hasher *h, uint8_t fp[32],
                            const uint8_t chain_id[32], const uint8_t key[32],
                            const uint8_t msg32[32], const uint8_t sig64[64]);

/* Returns 1 when fp is in the cache. `collect` marks the entry as the
 * first to evict from its set (a block used it: it will not be needed
 * again, as Core erases entries a block used). */
int pm_sigcache_lookup(pm_sigcache *c, const uint8_t fp[32], int collect);

/* Insert the fingerprint of a signature that VERIFIED. Returns 1 when it
 * was written, 0 when it was present already or the set was busy. */
int pm_sigcache_insert(pm_sigcache *c, const uint8_t fp[32]);

/* 1 until the first insert: a lookup in a cache never written cannot
 * hit, so callers that only look up (connecting blocks) skip the hash. */
int pm_sigcache_is_empty(const pm_sigcache *c);

/* Entries it can hold, and the bytes it takes (fixed at creation). */
size_t pm_sigcache_capacity(const pm_sigcache *c);
size_t pm_sigcache_bytes(const pm_sigcache *c);

/* Entries held now (a scan of the whole table; exact when no insert is
 * in flight). For tests and reports. */
size_t pm_sigcache_count(const pm_sigcache *c);

#endif
