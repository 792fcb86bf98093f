/*
 * test_conc_sigcache.c — the signature cache under threads (run under
 * TSan by CI, label concurrency):
 *  - writers churn one set while readers look up fingerprints that agree
 *    with stored ones word by word but were never inserted: a torn read
 *    (half an old entry, half a new one) would be taken for a hit without
 *    the set's sequence check, so none may ever hit;
 *  - the engine's workers insert (pack mode) and look up (connect)
 *    concurrently: a node that admitted every transaction of the vector
 *    chain connects it without verifying any of its signatures again, at
 *    1, 2 and 4 threads, to the cold state.
 */
#include "postmark.h"
#include "postmark_internal.h"
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

/* One more than the ways of the one set: inserting them in turn, each
 * insert evicts the oldest, the value after it (mod VALID). */
#define VALID (PM_SIGCACHE_WAYS + 1)
#define ITERATIONS 1000000

typedef struct {
    pm_sigcache *cache;
    unsigned id;
    _Atomic int *stop;
    _Atomic uint64_t *current; /* the value being inserted now */
    unsigned long hits, false_hits, inserts, lookups;
} churn_arg;

/* A synthetic fingerprint (x, a, b, c): every one shares word 0, so all
 * land in the same set and a reader compares every way word by word. */
static void fp_words(uint8_t fp[32], uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t w[4] = {0x5157a7e5ca11ab1eull, a, b, c};
    memcpy(fp, w, 32);
}

static void *writer(void *p)
{
    churn_arg *a = p;
    uint8_t fp[32];
    for (unsigned i = 0; i < ITERATIONS; i++) {
        uint64_t v = 1 + i % VALID;
        atomic_store_explicit(a->current, v, memory_order_relaxed);
        fp_words(fp, v, v, v);
        a->inserts += (unsigned long)pm_sigcache_insert(a->cache, fp);
    }
    atomic_store_explicit(a->stop, 1, memory_order_release);
    return NULL;
}

/* Inserting v overwrites the way of o = v + 1 (mod VALID) word by word,
 * in order: a reader that reads each word just after the writer wrote it
 * sees the new words first, (x, v, o, o) or (x, v, v, o). */
static void *reader(void *p)
{
    churn_arg *a = p;
    uint8_t fp[32];
    for (unsigned i = 0; !atomic_load_explicit(a->stop, memory_order_acquire) || i < 1000; i++) {
        /* The transition in flight, to be caught in the middle. */
        uint64_t v = atomic_load_explicit(a->current, memory_order_relaxed), o = 1 + v % VALID;
        /* The one inserted before v: there until 7 more inserts (a miss
         * only while the set is being written). */
        uint64_t u = 1 + (v + VALID - 2) % VALID;
        fp_words(fp, u, u, u);
        a->hits += (unsigned long)pm_sigcache_lookup(a->cache, fp, 0);
        fp_words(fp, v, o, o);
        a->false_hits += (unsigned long)pm_sigcache_lookup(a->cache, fp, 0);
        fp_words(fp, v, v, o);
        a->false_hits += (unsigned long)pm_sigcache_lookup(a->cache, fp, 0);
        a->lookups += 3;
    }
    return NULL;
}

static void test_no_torn_hit(void)
{
    static const uint8_t chain[32] = {1}, salt[64] = {7};
    pm_sigcache *c = NULL;
    CHECK(pm_sigcache_create(&c, 1, chain, salt) == PM_OK); /* one set */
    if (!c)
        return;
    _Atomic int stop = 0;
    _Atomic uint64_t current = 1;
    pthread_t t[2];
    churn_arg args[2];
    for (unsigned i = 0; i < 2; i++) {
        args[i] = (churn_arg){.cache = c, .id = i, .stop = &stop, .current = &current};
        CHECK(pthread_create(&t[i], NULL, i == 0 ? writer : reader, &args[i]) == 0);
    }
    unsigned long hits = 0, false_hits = 0, inserts = 0, lookups = 0;
    for (unsigned i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        hits += args[i].hits;
        false_hits += args[i].false_hits;
        inserts += args[i].inserts;
        lookups += args[i].lookups;
    }
    CHECKF(false_hits == 0, "%lu of %lu lookups of never-inserted mixes hit", false_hits, lookups);
    CHECK(inserts == ITERATIONS); /* one writer: never busy, always evicting */
    CHECK(hits > 0);
    CHECK(pm_sigcache_count(c) <= PM_SIGCACHE_WAYS);
    /* What is left is whole: each stored entry is found. */
    size_t found = 0;
    uint8_t fp[32];
    for (uint64_t j = 1; j <= VALID; j++) {
        fp_words(fp, j, j, j);
        found += (size_t)pm_sigcache_lookup(c, fp, 0);
    }
    CHECK(found == pm_sigcache_count(c));
    pm_sigcache_destroy(c);
}

/* ---------------------------------------------------------------------- */

static pm_engine *new_engine(const pm_context *ctx, const pm_chain_params *params, unsigned threads)
{
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = threads;
    pm_engine *e = NULL;
    CHECK(pm_engine_create(&e, ctx, params, &cfg) == PM_OK);
    return e;
}

/* Pack mode: the workers verify the whole stream s1.pmtx and insert
 * concurrently; then the chain it makes (s1.b32) is connected as a peer's:
 * every check of the cold connect is a hit, made concurrently by the
 * workers, and the state is the cold one. */
static void test_pack_then_connect(const pm_context *ctx, const pm_vfile *stream,
                                   const pm_vfile *chain)
{
    pm_engine *cold = new_engine(ctx, &chain->params, 2);
    pm_verdict v;
    CHECK(pm_engine_connect_blocks(cold, &v, chain->rec, chain->len, chain->n, 0) == PM_OK);
    pm_stats c;
    pm_engine_stats(cold, &c);
    uint8_t want[32], got[32];
    CHECK(pm_engine_utxo_digest(cold, want) == PM_OK);
    for (unsigned threads = 1; threads <= 4; threads *= 2) {
        pm_engine *node = new_engine(ctx, &stream->params, threads);
        CHECK(pm_engine_submit_batch(node, stream->rec, stream->len, stream->n) == PM_OK);
        pm_reason r; /* drains the pipeline: every record judged */
        CHECK(pm_engine_check_tx(node, &r, stream->rec[0], stream->len[0]) == PM_OK);
        pm_stats before, after;
        pm_engine_stats(node, &before);
        CHECK(before.sigcache_inserts > 0 && before.txs_accepted == 257);
        CHECK(pm_engine_connect_blocks(node, &v, chain->rec, chain->len, chain->n, 0) == PM_OK);
        pm_engine_stats(node, &after);
        uint64_t hits = after.sigcache_hits - before.sigcache_hits;
        CHECKF(hits >= c.signatures_verified, "%u threads: %llu hits for %llu checks", threads,
               (unsigned long long)hits, (unsigned long long)c.signatures_verified);
        CHECK(after.sigcache_misses - before.sigcache_misses ==
              after.signatures_verified - before.signatures_verified);
        CHECK(pm_engine_utxo_digest(node, got) == PM_OK && memcmp(got, want, 32) == 0);
        int64_t h;
        pm_engine_tip(node, NULL, &h);
        CHECK(h == (int64_t)chain->n - 1);
        pm_engine_destroy(node);
    }
    pm_engine_destroy(cold);
}

/* The plain node path, threaded: every transaction of one block passes
 * check_tx, then the block connects with hits only. */
static void test_check_then_connect(const pm_context *ctx, const pm_vfile *chain)
{
    for (unsigned threads = 1; threads <= 4; threads *= 2) {
        size_t checked_blocks = 0;
        for (size_t k = 0; k < chain->n; k++) {
            pm_engine *e = new_engine(ctx, &chain->params, threads);
            pm_verdict v;
            CHECK(pm_engine_connect_blocks(e, &v, chain->rec, chain->len, k, 0) == PM_OK);
            const uint8_t *tx[64];
            size_t len[64], ok = 0;
            size_t n = pm_block_records(chain->rec[k], chain->len[k], tx, len, 64);
            for (size_t i = 0; i < n; i++) {
                pm_reason r;
                CHECK(pm_engine_check_tx(e, &r, tx[i], len[i]) == PM_OK);
                ok += r == PM_REASON_NONE;
            }
            if (ok == n) { /* no transaction spends one of the same block */
                pm_stats before, after;
                pm_engine_stats(e, &before);
                CHECK(pm_engine_connect_blocks(e, &v, &chain->rec[k], &chain->len[k], 1, 0) ==
                      PM_OK);
                pm_engine_stats(e, &after);
                CHECK(after.signatures_verified == before.signatures_verified);
                CHECK(after.sigcache_hits - before.sigcache_hits >= n);
                CHECK(after.sigcache_misses == before.sigcache_misses);
                checked_blocks++;
            }
            pm_engine_destroy(e);
        }
        CHECK(checked_blocks >= 1);
    }
}

int main(void)
{
    test_no_torn_hit();
    pm_context *ctx = pm_context_create();
    CHECK(ctx != NULL);
    pm_vfile stream, chain;
    if (ctx && pm_vfile_load(&stream, "s1.pmtx")) {
        if (pm_vfile_load(&chain, "s1.b32.pmbk")) {
            test_pack_then_connect(ctx, &stream, &chain);
            test_check_then_connect(ctx, &chain);
            pm_vfile_free(&chain);
        }
        pm_vfile_free(&stream);
    }
    pm_context_destroy(ctx);
    return pm_test_finish();
}
