/*
 * sig.h — the engine's one owner of signature work: the per-thread key
 * cache (x-only keys parsed once), verifying a signature through it and
 * through the shared signature cache (sigcache.h), and verifying a
 * transaction's signatures once per distinct (key, signature) pair. The
 * pipeline's workers and the commit stage both verify through here; which
 * keys a transaction's signatures need is the caller's (the workers
 * resolve owners from the UTXO table and the batches, the commit stage
 * from the state), and pm_sigcheck carries the workers' verdict to the
 * commit stage.
 */
#ifndef PM_ENGINE_SIG_H
#define PM_ENGINE_SIG_H

#include "hash.h"
#include "postmark.h"
#include "sigcache.h"

#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <stdint.h>

/* A key cache: x-only keys parsed once (collectors own many outputs, and
 * parsing costs a field square root). Two-way set associative, one per
 * thread: a few thousand active owners fit without the conflict misses a
 * direct-mapped cache of the same size would have. */
#define PM_KEYCACHE_SETS 16384
typedef struct {
    uint8_t key[32];
    uint8_t state; /* 0 empty, 1 valid key, 2 not a valid x-only key */
    secp256k1_xonly_pubkey parsed;
} pm_keycache_slot;
typedef struct {
    pm_keycache_slot way[PM_KEYCACHE_SETS][2];
    uint8_t recent[PM_KEYCACHE_SETS]; /* the way used last */
    uint64_t verified;                /* signatures verified through it */
    /* The engine's signature cache (shared, sigcache.h), or NULL: the
     * thread that owns this key cache looks signatures up there first.
     * sigcache_store: 1 while admitting transactions (check_tx, submit:
     * signatures that verify are inserted), 0 while connecting blocks
     * (lookups only; a hit marks the entry for eviction). */
    pm_sigcache *sigcache;
    pm_hasher *hasher;                /* this thread's, for fingerprints */
    uint8_t sigcache_store;
    uint64_t sigcache_hits, sigcache_misses, sigcache_inserts;
} pm_keycache;

/* A new, empty key cache, or NULL. Its memory is written through once at
 * creation: left to calloc's lazily mapped zero pages, the first use of
 * each page would take a copy-on-write fault and a TLB shootdown across
 * the process's threads on the verify path. Free with free(). */
pm_keycache *pm_keycache_create(void);

/* Verify one BIP-340 signature over msg32 under the 32-byte x-only key,
 * through the cache (and the signature cache, when the key cache has one:
 * a hit is not verified again and not counted in `verified`). Returns 1
 * valid, 0 invalid (bad key included). */
int pm_verify_sig(const secp256k1_context *secp, pm_keycache *cache, const uint8_t key[32],
                  const uint8_t msg32[32], const uint8_t sig64[64]);

/* Verify every signature of tx over msg32, signature i under key i of
 * `keys` (tx->n_sigs x 32 bytes), once per distinct (key, signature) pair:
 * a TRANSFER spending several outputs of one owner may repeat both.
 * Returns 1 when all are valid. */
int pm_verify_tx_sigs(const secp256k1_context *secp, pm_keycache *cache, const pm_tx *tx,
                      const uint8_t *keys, const uint8_t msg32[32]);

/* What the parallel stage learned about one transaction's signatures.
 * `keys` holds the key each signature was verified under (n_sigs x 32
 * bytes) when `resolved`; the commit stage trusts `sig_ok` only when the
 * keys it derives from the state are the same bytes. */
typedef struct {
    uint8_t resolved; /* every signature's key was found */
    uint8_t sig_ok;   /* all signatures verified under `keys` */
    const uint8_t *keys;
} pm_sigcheck;

#endif
