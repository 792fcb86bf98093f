/*
 * sig.c — signature verification (sig.h): the key cache, the signature
 * cache in front of it, and the (key, signature) dedup of a transaction.
 */
#include "sig.h"

#include <secp256k1_schnorrsig.h>
#include <stdlib.h>
#include <string.h>

pm_keycache *pm_keycache_create(void)
{
    pm_keycache *c = malloc(sizeof *c);
    if (c)
        memset(c, 0, sizeof *c);
    return c;
}

static int verify_uncached(const secp256k1_context *secp, pm_keycache *cache,
                           const uint8_t key[32], const uint8_t msg32[32], const uint8_t sig64[64])
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    size_t set = (size_t)((h ^ (h >> 29)) & (PM_KEYCACHE_SETS - 1));
    pm_keycache_slot *ways = cache->way[set], *s = NULL;
    for (int w = 0; w < 2 && !s; w++)
        if (ways[w].state != 0 && memcmp(ways[w].key, key, 32) == 0) {
            s = &ways[w];
            cache->recent[set] = (uint8_t)w;
        }
    if (!s) {
        /* Replace the way not used last. */
        int w = cache->recent[set] ^ 1;
        s = &ways[w];
        cache->recent[set] = (uint8_t)w;
        memcpy(s->key, key, 32);
        s->state = secp256k1_xonly_pubkey_parse(secp, &s->parsed, key) ? 1 : 2;
    }
    cache->verified++;
    if (s->state != 1)
        return 0;
    return secp256k1_schnorrsig_verify(secp, sig64, msg32, 32, &s->parsed);
}

int pm_verify_sig(const secp256k1_context *secp, pm_keycache *cache, const uint8_t key[32],
                  const uint8_t msg32[32], const uint8_t sig64[64])
{
    pm_sigcache *sc = cache->sigcache;
    if (!sc)
        return verify_uncached(secp, cache, key, msg32, sig64);
    uint8_t fp[32];
    /* Connecting blocks only looks up: a cache never written cannot hit,
     * and a replay then pays no hash per signature. */
    int have_fp = (cache->sigcache_store || !pm_sigcache_is_empty(sc)) &&
                  pm_sigcache_fingerprint(sc, cache->hasher, fp, pm_sigcache_chain_id(sc), key,
                                          msg32, sig64);
    if (have_fp && pm_sigcache_lookup(sc, fp, !cache->sigcache_store)) {
        cache->sigcache_hits++;
        return 1;
    }
    cache->sigcache_misses++;
    int ok = verify_uncached(secp, cache, key, msg32, sig64);
    /* Only a signature that verified goes in. */
    if (ok && have_fp && cache->sigcache_store && pm_sigcache_insert(sc, fp))
        cache->sigcache_inserts++;
    return ok;
}

int pm_verify_tx_sigs(const secp256k1_context *secp, pm_keycache *cache, const pm_tx *tx,
                      const uint8_t *keys, const uint8_t msg32[32])
{
    for (size_t i = 0; i < tx->n_sigs; i++) {
        const uint8_t *key = keys + 32 * i, *sig = tx->sigs + 64 * i;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = memcmp(keys + 32 * j, key, 32) == 0 && memcmp(tx->sigs + 64 * j, sig, 64) == 0;
        if (!seen && !pm_verify_sig(secp, cache, key, msg32, sig))
            return 0;
    }
    return 1;
}
