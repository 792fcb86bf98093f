/*
 * test_sigcache.c — the signature cache of the node path (engine/sigcache.h
 * and its use by pm_engine_check_tx / pm_engine_connect_blocks):
 *  - a fingerprint binds chain, key, message, signature and the salt: a
 *    change of any one is a miss;
 *  - eviction: FIFO within a set, blocks' entries first; under churn the
 *    memory stays fixed and nothing never inserted is ever found;
 *  - on the vectors: a block whose transactions all passed check_tx
 *    connects with one hit per signature check and no verification, to
 *    the same state as a cold connect; a tampered signature, another
 *    engine, a disabled or tiny cache change nothing in the results.
 * The concurrent side is test_conc_sigcache.c.
 */
#include "postmark.h"
#include "postmark_internal.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t SALT_A[64] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t SALT_B[64] = {9, 9, 9};

/* A distinct fake fingerprint input per n: not real signatures (the cache
 * never verifies; the engine tests below use real ones). */
static void make_sig(uint8_t key[32], uint8_t msg[32], uint8_t sig[64], uint32_t n)
{
    memset(key, 0x11, 32);
    memset(msg, 0x22, 32);
    memset(sig, 0x33, 64);
    memcpy(sig, &n, sizeof n);
}

static void fingerprint(const pm_sigcache *c, pm_hasher *h, uint8_t fp[32], const uint8_t chain[32],
                        const uint8_t key[32], const uint8_t msg[32], const uint8_t sig[64])
{
    CHECK(pm_sigcache_fingerprint(c, h, fp, chain, key, msg, sig));
}

/* Only the very same (chain, key, message, signature) under the same salt
 * is found. */
static void test_fingerprint_binds_every_part(pm_hasher *h)
{
    uint8_t chain[32], other_chain[32], key[32], msg[32], sig[64], fp[32], fp2[32];
    memset(chain, 0xc1, 32);
    memset(other_chain, 0xc2, 32);
    make_sig(key, msg, sig, 7);
    pm_sigcache *c = NULL, *d = NULL;
    CHECK(pm_sigcache_create(&c, 1 << 16, chain, SALT_A) == PM_OK && c);
    CHECK(pm_sigcache_create(&d, 1 << 16, chain, SALT_B) == PM_OK && d);
    if (!c || !d)
        return;
    CHECK(pm_sigcache_is_empty(c));
    fingerprint(c, h, fp, chain, key, msg, sig);
    CHECK(!pm_sigcache_lookup(c, fp, 0));
    CHECK(pm_sigcache_insert(c, fp) == 1);
    CHECK(pm_sigcache_insert(c, fp) == 0); /* present already */
    CHECK(!pm_sigcache_is_empty(c));
    CHECK(pm_sigcache_lookup(c, fp, 0));
    fingerprint(c, h, fp2, chain, key, msg, sig);
    CHECK(memcmp(fp, fp2, 32) == 0 && pm_sigcache_lookup(c, fp2, 0));

    /* Each part changed alone: another fingerprint, not in the cache. */
    uint8_t t[64];
    for (int part = 0; part < 4; part++) {
        for (size_t bit = 0; bit < (part == 3 ? 512u : 256u); bit += 37) {
            const uint8_t *src = part == 0 ? chain : part == 1 ? key : part == 2 ? msg : sig;
            size_t len = part == 3 ? 64 : 32;
            memcpy(t, src, len);
            t[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            pm_sigcache_fingerprint(c, h, fp2, part == 0 ? t : chain, part == 1 ? t : key,
                                    part == 2 ? t : msg, part == 3 ? t : sig);
            CHECKF(memcmp(fp, fp2, 32) != 0 && !pm_sigcache_lookup(c, fp2, 0),
                   "part %d bit %zu flipped: still a hit", part, bit);
        }
    }
    fingerprint(c, h, fp2, other_chain, key, msg, sig);
    CHECK(!pm_sigcache_lookup(c, fp2, 0));
    /* Another salt (another engine): another fingerprint for the same
     * signature; the second cache has not seen it. */
    fingerprint(d, h, fp2, chain, key, msg, sig);
    CHECK(memcmp(fp, fp2, 32) != 0 && !pm_sigcache_lookup(d, fp2, 0));
    /* An all-zero fingerprint is never stored (it reads as empty). */
    uint8_t zero[32] = {0};
    CHECK(pm_sigcache_insert(c, zero) == 0 && !pm_sigcache_lookup(c, zero, 0));
    pm_sigcache_destroy(c);
    pm_sigcache_destroy(d);
    /* 0 bytes: no cache. */
    CHECK(pm_sigcache_create(&c, 0, chain, NULL) == PM_OK && c == NULL);
}

/* One set: the oldest entry goes first, an entry a block used before it. */
static void test_eviction_order(pm_hasher *h)
{
    uint8_t chain[32], key[32], msg[32], sig[64], fp[12][32];
    memset(chain, 0xc1, 32);
    pm_sigcache *c = NULL;
    CHECK(pm_sigcache_create(&c, 1, chain, SALT_A) == PM_OK && c);
    if (!c)
        return;
    CHECK(pm_sigcache_capacity(c) == PM_SIGCACHE_WAYS);
    for (uint32_t i = 0; i < 12; i++) {
        make_sig(key, msg, sig, i);
        fingerprint(c, h, fp[i], chain, key, msg, sig);
    }
    for (int i = 0; i < 8; i++)
        CHECK(pm_sigcache_insert(c, fp[i]) == 1);
    for (int i = 0; i < 8; i++)
        CHECK(pm_sigcache_lookup(c, fp[i], 0));
    CHECK(pm_sigcache_count(c) == 8);
    CHECK(pm_sigcache_insert(c, fp[8]) == 1); /* full: the oldest, 0, goes */
    CHECK(!pm_sigcache_lookup(c, fp[0], 0));
    for (int i = 1; i <= 8; i++)
        CHECK(pm_sigcache_lookup(c, fp[i], 0));
    /* A block used 5: it goes next, before the older 1. */
    CHECK(pm_sigcache_lookup(c, fp[5], 1));
    CHECK(pm_sigcache_insert(c, fp[9]) == 1);
    CHECK(!pm_sigcache_lookup(c, fp[5], 0));
    CHECK(pm_sigcache_lookup(c, fp[1], 0) && pm_sigcache_lookup(c, fp[9], 0));
    /* Then FIFO again: 1 is the oldest. */
    CHECK(pm_sigcache_insert(c, fp[10]) == 1);
    CHECK(!pm_sigcache_lookup(c, fp[1], 0) && pm_sigcache_lookup(c, fp[2], 0));
    CHECK(pm_sigcache_count(c) == 8);
    pm_sigcache_destroy(c);
}

/* Far more inserts than capacity: the bytes never change, the count stays
 * within capacity, recent entries are found, never-inserted ones never. */
static void test_bound_under_churn(pm_hasher *h)
{
    uint8_t chain[32], key[32], msg[32], sig[64], fp[32];
    memset(chain, 0xc1, 32);
    pm_sigcache *c = NULL;
    const size_t budget = 64 * 1024;
    CHECK(pm_sigcache_create(&c, budget, chain, SALT_A) == PM_OK && c);
    if (!c)
        return;
    size_t bytes = pm_sigcache_bytes(c), cap = pm_sigcache_capacity(c);
    CHECK(bytes <= budget && bytes > budget / 2);
    CHECK(cap == bytes / 34 / PM_SIGCACHE_WAYS * PM_SIGCACHE_WAYS);
    const uint32_t n = (uint32_t)cap * 20;
    size_t written = 0;
    for (uint32_t i = 0; i < n; i++) {
        make_sig(key, msg, sig, i);
        fingerprint(c, h, fp, chain, key, msg, sig);
        written += (size_t)pm_sigcache_insert(c, fp);
    }
    CHECK(written == n); /* one thread: no insert is dropped */
    CHECK(pm_sigcache_bytes(c) == bytes && pm_sigcache_capacity(c) == cap);
    size_t count = pm_sigcache_count(c);
    CHECKF(count <= cap && count > cap * 9 / 10, "count %zu of %zu", count, cap);
    /* The last one is in; of the early ones, at most what still fits. */
    CHECK(pm_sigcache_lookup(c, fp, 0));
    size_t old_hits = 0, false_hits = 0;
    for (uint32_t i = 0; i < (uint32_t)cap; i++) {
        make_sig(key, msg, sig, i);
        fingerprint(c, h, fp, chain, key, msg, sig);
        old_hits += (size_t)pm_sigcache_lookup(c, fp, 0);
        make_sig(key, msg, sig, n + i); /* never inserted */
        fingerprint(c, h, fp, chain, key, msg, sig);
        false_hits += (size_t)pm_sigcache_lookup(c, fp, 0);
    }
    CHECKF(old_hits < cap / 100, "%zu of the oldest entries survived", old_hits);
    CHECK(false_hits == 0);
    pm_sigcache_destroy(c);
}

/* ---------------------------------------------------------------------- */
/* The engine on the vectors                                               */
/* ---------------------------------------------------------------------- */

static pm_engine *new_engine(const pm_context *ctx, const pm_chain_params *params, unsigned threads,
                             size_t sigcache_bytes)
{
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    CHECK(cfg.sigcache_bytes == PM_DEFAULT_SIGCACHE_BYTES);
    cfg.threads = threads;
    cfg.sigcache_bytes = sigcache_bytes;
    pm_engine *e = NULL;
    CHECK(pm_engine_create(&e, ctx, params, &cfg) == PM_OK);
    return e;
}

/* check_tx every transaction of block `b`; returns how many passed. */
static size_t check_all(pm_engine *e, const uint8_t *block, size_t size)
{
    const uint8_t *tx[4096];
    size_t len[4096], ok = 0;
    size_t n = pm_block_records(block, size, tx, len, 4096);
    for (size_t i = 0; i < n; i++) {
        pm_reason r;
        CHECK(pm_engine_check_tx(e, &r, tx[i], len[i]) == PM_OK);
        ok += r == PM_REASON_NONE;
    }
    return n == ok ? ok : 0;
}

typedef struct {
    pm_stats st;
    pm_status status;
    pm_verdict v;
    uint8_t digest[32], tip[32];
    int64_t height;
} connect_result;

/* Connect one block and record the counters it moved and what it left. */
static void connect_one(pm_engine *e, const uint8_t *block, size_t size, connect_result *out)
{
    pm_stats before, after;
    pm_engine_stats(e, &before);
    out->status = pm_engine_connect_blocks(e, &out->v, &block, &size, 1, 0);
    pm_engine_stats(e, &after);
    out->st = after;
    out->st.signatures_verified -= before.signatures_verified;
    out->st.sigcache_hits -= before.sigcache_hits;
    out->st.sigcache_misses -= before.sigcache_misses;
    out->st.sigcache_inserts -= before.sigcache_inserts;
    CHECK(pm_engine_utxo_digest(e, out->digest) == PM_OK);
    pm_engine_tip(e, out->tip, &out->height);
}

static int same_outcome(const connect_result *a, const connect_result *b)
{
    return a->status == b->status && a->v.reason == b->v.reason && a->v.tx == b->v.tx &&
           a->v.block == b->v.block && memcmp(a->digest, b->digest, 32) == 0 &&
           memcmp(a->tip, b->tip, 32) == 0 && a->height == b->height;
}

static void connect_prefix(pm_engine *e, const pm_vfile *chain, size_t upto)
{
    pm_verdict v;
    CHECK(pm_engine_connect_blocks(e, &v, chain->rec, chain->len, upto, 0) == PM_OK);
}

/* The blocks of s1.b32 whose transactions all pass check_tx on the state
 * before them (no transaction spends an output made in the same block):
 * the node path in its plain form. */
static size_t independent_blocks(const pm_context *ctx, const pm_vfile *chain, size_t *out)
{
    size_t n = 0;
    for (size_t k = 0; k < chain->n; k++) {
        pm_engine *e = new_engine(ctx, &chain->params, 1, 0);
        connect_prefix(e, chain, k);
        if (check_all(e, chain->rec[k], chain->len[k]) > 0)
            out[n++] = k;
        pm_engine_destroy(e);
    }
    return n;
}

/* Block k connected on two engines at the state before it: `cold` as is,
 * `warm` (a cache of warm_bytes) after check_tx of every one of its
 * transactions. Returns how many passed check_tx (all, or 0). */
static size_t cold_and_warm(const pm_context *ctx, const pm_vfile *chain, size_t k,
                            unsigned threads, size_t warm_bytes, connect_result *c,
                            connect_result *w)
{
    pm_engine *cold = new_engine(ctx, &chain->params, threads, PM_DEFAULT_SIGCACHE_BYTES);
    pm_engine *warm = new_engine(ctx, &chain->params, threads, warm_bytes);
    connect_prefix(cold, chain, k);
    connect_prefix(warm, chain, k);
    pm_stats s;
    pm_engine_stats(warm, &s);
    CHECK(s.sigcache_hits == 0 && s.sigcache_inserts == 0); /* connect never inserts */
    size_t ntx = check_all(warm, chain->rec[k], chain->len[k]);
    pm_engine_stats(warm, &s);
    CHECK(ntx > 0 && s.sigcache_inserts >= ntx);
    connect_one(cold, chain->rec[k], chain->len[k], c);
    connect_one(warm, chain->rec[k], chain->len[k], w);
    CHECK(c->status == PM_OK && same_outcome(c, w));
    CHECK(c->st.sigcache_hits == 0 && c->st.signatures_verified >= ntx);
    pm_engine_destroy(cold);
    pm_engine_destroy(warm);
    return ntx;
}

/* The node path: every transaction of the block passed check_tx, then the
 * block connects with a hit per signature check and nothing verified, to
 * exactly the state a cold connect reaches. */
static void test_node_path_hits(const pm_context *ctx, const pm_vfile *chain, const size_t *blocks,
                                size_t nblocks)
{
    for (size_t i = 0; i < nblocks; i++) {
        for (unsigned threads = 1; threads <= 2; threads++) {
            connect_result c, w;
            cold_and_warm(ctx, chain, blocks[i], threads, PM_DEFAULT_SIGCACHE_BYTES, &c, &w);
            CHECKF(w.st.sigcache_hits == c.st.signatures_verified && w.st.signatures_verified == 0 &&
                       w.st.sigcache_misses == 0 && w.st.sigcache_inserts == 0,
                   "block %zu, %u threads: %llu hits, %llu verified; cold verified %llu",
                   blocks[i], threads, (unsigned long long)w.st.sigcache_hits,
                   (unsigned long long)w.st.signatures_verified,
                   (unsigned long long)c.st.signatures_verified);
        }
    }
}

/* A node's mempool: every transaction of the whole chain checked and
 * submitted (pending in the open block), then the peer's chain arrives.
 * Every signature check an engine without a cache makes there is a hit
 * or a miss; the hits cover every check of the cold connect. What is
 * still verified is part of the mempool re-check after it (pending
 * transactions checked on the new state, some under a key rotated since:
 * signatures that fail there, so never cached). The state is the cold
 * one. */
static void admit_chain(pm_engine *e, const pm_vfile *chain, size_t *total)
{
    *total = 0;
    for (size_t k = 0; k < chain->n; k++) {
        const uint8_t *tx[64];
        size_t len[64];
        size_t n = pm_block_records(chain->rec[k], chain->len[k], tx, len, 64);
        for (size_t i = 0; i < n; i++) {
            pm_reason r;
            CHECK(pm_engine_check_tx(e, &r, tx[i], len[i]) == PM_OK && r == PM_REASON_NONE);
            CHECK(pm_engine_submit(e, tx[i], len[i]) == PM_OK);
        }
        *total += n;
    }
}

static void test_mempool_then_chain(const pm_context *ctx, const pm_vfile *chain)
{
    pm_engine *cold = new_engine(ctx, &chain->params, 2, PM_DEFAULT_SIGCACHE_BYTES);
    pm_engine *node = new_engine(ctx, &chain->params, 2, PM_DEFAULT_SIGCACHE_BYTES);
    pm_engine *plain = new_engine(ctx, &chain->params, 2, 0);
    size_t total, total2;
    admit_chain(node, chain, &total);
    admit_chain(plain, chain, &total2);
    pm_stats before, after, pbefore, pafter, c;
    pm_engine_stats(node, &before);
    pm_engine_stats(plain, &pbefore);
    pm_verdict v;
    CHECK(pm_engine_connect_blocks(cold, &v, chain->rec, chain->len, chain->n, 0) == PM_OK);
    CHECK(pm_engine_connect_blocks(node, &v, chain->rec, chain->len, chain->n, 0) == PM_OK);
    CHECK(pm_engine_connect_blocks(plain, &v, chain->rec, chain->len, chain->n, 0) == PM_OK);
    pm_engine_stats(node, &after);
    pm_engine_stats(plain, &pafter);
    pm_engine_stats(cold, &c);
    uint64_t again = after.signatures_verified - before.signatures_verified;
    uint64_t recheck = pafter.signatures_verified - pbefore.signatures_verified - c.signatures_verified;
    uint64_t hits = after.sigcache_hits - before.sigcache_hits;
    uint64_t misses = after.sigcache_misses - before.sigcache_misses;
    CHECK(hits + misses == pafter.signatures_verified - pbefore.signatures_verified);
    /* The misses failed verification: nothing new went in. */
    CHECK(again == misses && after.sigcache_inserts == before.sigcache_inserts);
    CHECKF(hits >= c.signatures_verified && again < recheck,
           "%llu hits for %llu checks of the chain; %llu verified again, the re-check alone "
           "verifies %llu", (unsigned long long)hits, (unsigned long long)c.signatures_verified,
           (unsigned long long)again, (unsigned long long)recheck);
    CHECK(after.blocks_connected == chain->n && after.txs_rejected == total); /* all re-checked */
    uint8_t d1[32], d2[32];
    CHECK(pm_engine_utxo_digest(cold, d1) == PM_OK && pm_engine_utxo_digest(node, d2) == PM_OK);
    CHECK(memcmp(d1, d2, 32) == 0);
    pm_engine_destroy(cold);
    pm_engine_destroy(node);
    pm_engine_destroy(plain);
}

/* Rebuild a block with one signature byte of transaction `t` flipped:
 * leaves, merkle root and header follow, so only the signature is bad. */
static uint8_t *tamper_signature(const pm_context *ctx, const uint8_t *block, size_t size, size_t t)
{
    uint8_t *copy = malloc(size);
    memcpy(copy, block, size);
    const uint8_t *tx[4096];
    size_t len[4096];
    size_t n = pm_block_records(copy, size, tx, len, 4096);
    uint8_t(*leaves)[32] = malloc(n * 32);
    for (size_t i = 0; i < n; i++) {
        pm_tx p;
        uint8_t txid[32];
        CHECK(pm_tx_parse(pm_context_static, &p, NULL, tx[i], len[i]));
        if (i == t)
            ((uint8_t *)p.sigs)[5] ^= 0x40; /* a byte of the copy */
        CHECK(pm_tx_txid(ctx, txid, &p) && pm_tx_leaf(ctx, leaves[i], &p, txid));
    }
    pm_block_header h;
    pm_block_header_decode(pm_context_static, &h, copy);
    CHECK(pm_merkle_root(ctx, h.merkle_root, (const uint8_t(*)[32])leaves, n));
    pm_block_header_encode(pm_context_static, copy, &h);
    free(leaves);
    return copy;
}

/* A signature tampered after its transaction passed check_tx: a miss, and
 * the verdict and state of a cold engine (BAD_SIGNATURE at that tx). */
static void test_tampered_signature_misses(const pm_context *ctx, const pm_vfile *chain, size_t k)
{
    const uint8_t *tx[64];
    size_t len[64];
    size_t n = pm_block_records(chain->rec[k], chain->len[k], tx, len, 64);
    for (size_t t = 0; t < n; t += n / 3 ? n / 3 : 1) {
        uint8_t *bad = tamper_signature(ctx, chain->rec[k], chain->len[k], t);
        pm_engine *cold = new_engine(ctx, &chain->params, 2, PM_DEFAULT_SIGCACHE_BYTES);
        pm_engine *warm = new_engine(ctx, &chain->params, 2, PM_DEFAULT_SIGCACHE_BYTES);
        connect_prefix(cold, chain, k);
        connect_prefix(warm, chain, k);
        CHECK(check_all(warm, chain->rec[k], chain->len[k]) == n);
        connect_result c, w;
        connect_one(cold, bad, chain->len[k], &c);
        connect_one(warm, bad, chain->len[k], &w);
        CHECKF(c.status == PM_ERR_INVALID && c.v.reason == PM_REASON_BAD_SIGNATURE &&
                   c.v.tx == (int64_t)t,
               "tx %zu: cold verdict %s at %lld", t, pm_reason_name(c.v.reason),
               (long long)c.v.tx);
        CHECK(same_outcome(&c, &w));
        CHECK(w.st.sigcache_misses >= 1 && w.st.signatures_verified == w.st.sigcache_misses);
        /* The untouched block still connects from the cache alone. */
        connect_one(warm, chain->rec[k], chain->len[k], &w);
        CHECK(w.status == PM_OK && w.st.signatures_verified == 0 && w.st.sigcache_hits > 0);
        pm_engine_destroy(cold);
        pm_engine_destroy(warm);
        free(bad);
    }
}

/* The vector chain whose block 4 holds a bad signature at tx 16 (sealed
 * into the merkle root): its good twin's transactions passed check_tx, and
 * the verdict is still the vector's. */
static void test_sealed_bad_signature_vector(const pm_context *ctx, const pm_vfile *good)
{
    pm_vfile bad;
    if (!pm_vfile_load(&bad, "s1.bad.sealed_bad_signature.pmbk"))
        return;
    pm_engine *e = new_engine(ctx, &bad.params, 2, PM_DEFAULT_SIGCACHE_BYTES);
    pm_verdict v;
    CHECK(pm_engine_connect_blocks(e, &v, bad.rec, bad.len, 4, 0) == PM_OK);
    /* The good block 4's transactions, admitted (in order, as a mempool). */
    const uint8_t *tx[64];
    size_t len[64];
    size_t n = pm_block_records(good->rec[4], good->len[4], tx, len, 64);
    for (size_t i = 0; i < n; i++) {
        pm_reason r;
        CHECK(pm_engine_check_tx(e, &r, tx[i], len[i]) == PM_OK);
        CHECK(pm_engine_submit(e, tx[i], len[i]) == PM_OK);
    }
    pm_stats s;
    pm_engine_stats(e, &s);
    CHECK(s.sigcache_inserts > 0);
    CHECK(pm_engine_connect_blocks(e, &v, &bad.rec[4], &bad.len[4], 1, 0) == PM_ERR_INVALID);
    CHECK(v.reason == PM_REASON_BAD_SIGNATURE && v.block == 0 && v.tx == 16);
    int64_t height;
    pm_engine_tip(e, NULL, &height);
    CHECK(height == 3);
    pm_engine_destroy(e);
    pm_vfile_free(&bad);
}

/* Another engine (its own salt, its own cache) on the same chain gains
 * nothing from what the first admitted; nor does a disabled cache. */
static void test_other_engine_and_disabled(const pm_context *ctx, const pm_vfile *chain, size_t k)
{
    pm_engine *a = new_engine(ctx, &chain->params, 2, PM_DEFAULT_SIGCACHE_BYTES);
    pm_engine *b = new_engine(ctx, &chain->params, 2, PM_DEFAULT_SIGCACHE_BYTES);
    pm_engine *off = new_engine(ctx, &chain->params, 2, 0);
    connect_prefix(a, chain, k);
    connect_prefix(b, chain, k);
    connect_prefix(off, chain, k);
    size_t n = check_all(a, chain->rec[k], chain->len[k]);
    CHECK(n > 0 && check_all(off, chain->rec[k], chain->len[k]) == n);
    connect_result rb, roff;
    connect_one(b, chain->rec[k], chain->len[k], &rb);
    connect_one(off, chain->rec[k], chain->len[k], &roff);
    CHECK(rb.status == PM_OK && same_outcome(&rb, &roff));
    CHECK(rb.st.sigcache_hits == 0 && rb.st.signatures_verified >= n);
    CHECK(rb.st.sigcache_misses == rb.st.signatures_verified);
    CHECK(roff.st.signatures_verified == rb.st.signatures_verified);
    CHECK(roff.st.sigcache_hits == 0 && roff.st.sigcache_misses == 0 &&
          roff.st.sigcache_inserts == 0);
    pm_engine_destroy(a);
    pm_engine_destroy(b);
    pm_engine_destroy(off);
}

/* A cache of one set (8 entries), far fewer than a block's signatures:
 * every check is a hit or a verification, at most 8 hit, and the results
 * are the cold ones. */
static void test_tiny_cache_engine(const pm_context *ctx, const pm_vfile *chain,
                                   const size_t *blocks, size_t nblocks)
{
    for (size_t i = 0; i < nblocks; i++) {
        connect_result c, t;
        cold_and_warm(ctx, chain, blocks[i], 2, 1, &c, &t);
        CHECKF(t.st.sigcache_hits <= PM_SIGCACHE_WAYS &&
                   t.st.sigcache_hits + t.st.sigcache_misses == c.st.signatures_verified &&
                   t.st.signatures_verified == t.st.sigcache_misses,
               "block %zu: %llu hits, %llu misses, %llu verified cold", blocks[i],
               (unsigned long long)t.st.sigcache_hits, (unsigned long long)t.st.sigcache_misses,
               (unsigned long long)c.st.signatures_verified);
    }
}

int main(void)
{
    pm_context *ctx = pm_context_create();
    CHECK(ctx != NULL);
    if (!ctx)
        return pm_test_finish();
    pm_hasher *h = pm_hasher_create(ctx->tags);
    CHECK(h != NULL);
    test_fingerprint_binds_every_part(h);
    test_eviction_order(h);
    test_bound_under_churn(h);
    pm_hasher_destroy(h);

    pm_vfile chain;
    if (pm_vfile_load(&chain, "s1.b32.pmbk")) {
        size_t blocks[64];
        size_t n = independent_blocks(ctx, &chain, blocks);
        CHECKF(n >= 1, "only %zu blocks of s1.b32 pass check_tx whole", n);
        test_node_path_hits(ctx, &chain, blocks, n);
        test_mempool_then_chain(ctx, &chain);
        if (n > 0) {
            test_tampered_signature_misses(ctx, &chain, blocks[n - 1]);
            test_other_engine_and_disabled(ctx, &chain, blocks[0]);
        }
        test_tiny_cache_engine(ctx, &chain, blocks, n);
        test_sealed_bad_signature_vector(ctx, &chain);
        pm_vfile_free(&chain);
    }
    pm_context_destroy(ctx);
    return pm_test_finish();
}
