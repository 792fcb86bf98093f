/*
 * test_conc_commit.c — connect mode's partitioned commit (commit_par.c)
 * against the sequential reference validator on conflict-heavy generated
 * markets: in-block chains, double spends in a block and across blocks,
 * REGISTERs rotating a key mid-block. The valid chain must be applied by
 * the partitioned path (every block) with the reference's state; chains
 * with one bad transaction placed deep inside a block must give the
 * reference's verdict (block, transaction, reason, txid) and state, at 1,
 * 2 and 8 threads.
 *
 * Runs under ThreadSanitizer in CI (test_conc_*). PM_TEST_TXS scales it.
 */
#include "gen.h"
#include "postmark.h"
#include "postmark_internal.h"
#include "refval.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_BLOCKS 4096

static uint8_t *generate(const pm_context *ctx, uint64_t seed, uint64_t txs, size_t *size)
{
    pm_gen_config cfg;
    pm_gen_config_default(&cfg, PM_GEN_MARKET);
    cfg.seed = seed;
    cfg.txs = txs;
    cfg.operators = 3;
    cfg.series_per_operator = 2;
    cfg.collectors = 30; /* few owners: many conflicts */
    cfg.double_spend_ppm = 40000;
    cfg.conflict_ppm = 80000;
    cfg.chain_ppm = 250000;
    cfg.bad_signature_ppm = 10000;
    cfg.other_ppm = 20000;
    return pm_test_gen_stream(ctx, &cfg, NULL, size);
}

/* The blocks of a chain file (header + records). */
typedef struct {
    const uint8_t *rec[MAX_BLOCKS];
    size_t len[MAX_BLOCKS];
    size_t n;
} blocks;

static void split(blocks *b, const uint8_t *chain, size_t size)
{
    size_t pos = PM_FILE_HEADER_SIZE;
    b->n = 0;
    while (b->n < MAX_BLOCKS && pm_record_next(chain, size, &pos, &b->rec[b->n], &b->len[b->n]) == 1)
        b->n++;
}

/* The transactions of a block (views into it). */
static size_t block_txs(const uint8_t *block, size_t size, const uint8_t **tx, size_t *len,
                        size_t max)
{
    pm_block blk;
    CHECK(pm_block_parse(pm_context_static, &blk, NULL, block, size));
    size_t n = 0, cursor = 0;
    while (n < max && pm_block_next_tx(pm_context_static, &tx[n], &len[n], &blk, &cursor))
        n++;
    return n;
}

/* Replay with the engine: verdict in refval's shape, the digest, and how
 * many blocks the partitioned path applied. */
static void replay(const pm_context *ctx, const uint8_t *chain, size_t size, unsigned threads,
                   refval_verdict *v, uint8_t digest[32], uint64_t *parallel)
{
    memset(v, 0, sizeof *v);
    pm_chain_params params;
    pm_file_kind kind;
    CHECK(pm_file_header_parse(pm_context_static, &kind, &params, NULL, chain, size));
    blocks *b = malloc(sizeof *b);
    split(b, chain, size);
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = threads;
    pm_engine *e = NULL;
    CHECK(pm_engine_create(&e, ctx, &params, &cfg) == PM_OK);
    if (e) {
        pm_verdict pv;
        pm_status st = pm_engine_connect_blocks(e, &pv, b->rec, b->len, b->n, 0);
        CHECK(st == PM_OK || st == PM_ERR_INVALID);
        v->valid = st == PM_OK;
        v->reason = pv.reason;
        v->height = st == PM_OK ? b->n : pv.block;
        v->tx = pv.tx;
        v->has_txid = pv.has_txid;
        memcpy(v->txid, pv.txid, 32);
        CHECK(pm_engine_utxo_digest(e, digest) == PM_OK);
        *parallel = e->stage.blocks_parallel;
        pm_engine_destroy(e);
    }
    free(b);
}

/* Chain = header + blocks[0..k) + one block of `n` transactions at height
 * k on top of blocks[k-1] (prev hash taken from the original block k). */
static uint8_t *make_chain(const pm_context *ctx, const uint8_t header[PM_FILE_HEADER_SIZE],
                           const blocks *b, size_t k, const uint8_t *const *tx,
                           const size_t *len, size_t n, size_t *size)
{
    pm_block orig;
    CHECK(pm_block_parse(pm_context_static, &orig, NULL, b->rec[k], b->len[k]));
    pm_hasher *h = pm_hasher_create(ctx->tags);
    pm_block_builder bb;
    pm_block_builder_init(&bb);
    for (size_t i = 0; i < n; i++) {
        pm_tx t;
        uint8_t txid[32], leaf[32];
        CHECK(pm_tx_parse(pm_context_static, &t, NULL, tx[i], len[i]));
        CHECK(pm_hash_txid(h, txid, &t) && pm_hash_leaf(h, leaf, &t, txid));
        CHECK(pm_block_builder_add(&bb, tx[i], len[i], leaf) == PM_OK);
    }
    uint8_t hash[32];
    CHECK(pm_block_builder_seal(&bb, h, k, orig.header.prev_hash, hash));
    size_t prefix = (size_t)(b->rec[k] - 4 - (const uint8_t *)b->rec[0]) + 4;
    *size = PM_FILE_HEADER_SIZE + prefix + 4 + bb.size;
    uint8_t *c = malloc(*size), *p = c;
    memcpy(p, header, PM_FILE_HEADER_SIZE);
    p += PM_FILE_HEADER_SIZE;
    memcpy(p, b->rec[0] - 4, prefix);
    p += prefix;
    uint32_t l32 = (uint32_t)bb.size;
    uint8_t l[4] = {(uint8_t)l32, (uint8_t)(l32 >> 8), (uint8_t)(l32 >> 16), (uint8_t)(l32 >> 24)};
    memcpy(p, l, 4);
    memcpy(p + 4, bb.bytes, bb.size);
    pm_block_builder_free(&bb);
    pm_hasher_destroy(h);
    return c;
}

static const unsigned thread_counts[] = {1, 2, 8};

/* The engine at every thread count against the reference on one chain. */
static void compare(const pm_context *ctx, const uint8_t *chain, size_t size, const char *what,
                    int expect_valid)
{
    refval *rv = NULL;
    refval_verdict want;
    CHECK(refval_replay(&rv, &want, chain, size, NULL) == PM_OK);
    uint8_t want_digest[32];
    CHECK(rv && refval_utxo_digest(rv, want_digest));
    CHECKF(want.valid == expect_valid, "%s: the reference says %s", what,
           pm_reason_name(want.reason));
    for (size_t ti = 0; ti < 3; ti++) {
        refval_verdict got;
        uint8_t digest[32];
        uint64_t parallel = 0;
        replay(ctx, chain, size, thread_counts[ti], &got, digest, &parallel);
        CHECKF(want.valid == got.valid && want.reason == got.reason &&
                   want.height == got.height && want.tx == got.tx &&
                   want.has_txid == got.has_txid &&
                   (!want.has_txid || memcmp(want.txid, got.txid, 32) == 0),
               "%s, %u threads: reference %s block %llu tx %lld, engine %s block %llu tx %lld",
               what, thread_counts[ti], pm_reason_name(want.reason),
               (unsigned long long)want.height, (long long)want.tx, pm_reason_name(got.reason),
               (unsigned long long)got.height, (long long)got.tx);
        CHECKF(memcmp(digest, want_digest, 32) == 0, "%s, %u threads: state differs", what,
               thread_counts[ti]);
        /* Every block before the bad one (all of them when valid) went
         * through the partitioned path. */
        CHECKF(parallel == want.height, "%s, %u threads: %llu of %llu blocks in parallel", what,
               thread_counts[ti], (unsigned long long)parallel,
               (unsigned long long)want.height);
    }
    refval_destroy(rv);
}

int main(void)
{
    const char *scale = getenv("PM_TEST_TXS");
    uint64_t txs = scale ? strtoull(scale, NULL, 10) : 4000;
    pm_context *ctx = pm_context_create();
    CHECK(ctx != NULL);
    size_t ssize = 0;
    uint8_t *stream = ctx ? generate(ctx, 21, txs, &ssize) : NULL;
    if (!stream)
        return pm_test_finish();
    pm_chain_params params;
    pm_file_kind kind;
    CHECK(pm_file_header_parse(pm_context_static, &kind, &params, NULL, stream, ssize));
    refval *rv = refval_create(&params);
    refval_pack_result packed;
    CHECK(refval_pack(rv, &packed, stream, ssize, 300, PM_BLOCK_MAX_SIZE) == PM_OK);
    uint8_t header[PM_FILE_HEADER_SIZE];
    refval_file_header(rv, header, PM_FILE_CHAIN);
    size_t csize = PM_FILE_HEADER_SIZE + packed.blocks_size;
    uint8_t *chain = malloc(csize);
    memcpy(chain, header, PM_FILE_HEADER_SIZE);
    memcpy(chain + PM_FILE_HEADER_SIZE, packed.blocks, packed.blocks_size);
    blocks *b = malloc(sizeof *b);
    split(b, chain, csize);
    CHECK(b->n >= 6);

    /* What the market holds: in-block chains (a spend of an output made
     * earlier in the same block) and key rotations inside a block. */
    enum { MAXTX = 4096 };
    const uint8_t **tx = malloc(MAXTX * sizeof *tx), **mod = malloc((MAXTX + 1) * sizeof *mod);
    size_t *len = malloc(MAXTX * sizeof *len), *mlen = malloc((MAXTX + 1) * sizeof *mlen);
    size_t in_block_chains = 0, rotations = 0;
    for (size_t k = 1; k < b->n; k++) {
        size_t n = block_txs(b->rec[k], b->len[k], tx, len, MAXTX);
        for (size_t i = 0; i < n; i++) {
            pm_tx t;
            CHECK(pm_tx_parse(pm_context_static, &t, NULL, tx[i], len[i]));
            if (t.type == PM_TX_REGISTER && i > 0 && i + 1 < n)
                rotations++;
            for (size_t in = 0; t.type == PM_TX_TRANSFER && in < t.n_in; in++) {
                pm_outpoint op;
                pm_tx_input(pm_context_static, &op, &t, in);
                for (size_t j = 0; j < i; j++) {
                    uint8_t id[32];
                    if (refval_txid(id, tx[j], len[j]) && memcmp(id, op.txid, 32) == 0)
                        in_block_chains++;
                }
            }
        }
    }
    printf("%zu blocks, %zu in-block chains, %zu key rotations inside a block\n", b->n,
           in_block_chains, rotations);
    CHECKF(in_block_chains > 20, "only %zu in-block chains", in_block_chains);
    CHECKF(rotations > 0 || txs < 4000, "no key rotation inside a block");

    compare(ctx, chain, csize, "the valid chain", 1);

    /* Bad transactions deep in a block: k from the middle on. */
    for (size_t trial = 0; trial < 4; trial++) {
        size_t k = b->n / 2 + trial;
        if (k >= b->n)
            break;
        size_t n = block_txs(b->rec[k], b->len[k], tx, len, MAXTX);
        size_t at = n * 3 / 4;
        size_t m = 0;
        char what[128];
        /* A TRANSFER of this block (before `at`), or of the block before. */
        const uint8_t *dup = NULL;
        size_t dup_len = 0;
        if (trial % 2 == 0) {
            for (size_t i = 0; i < at && !dup; i++) {
                pm_tx t;
                if (pm_tx_parse(pm_context_static, &t, NULL, tx[i], len[i]) &&
                    t.type == PM_TX_TRANSFER)
                    dup = tx[i], dup_len = len[i];
            }
            snprintf(what, sizeof what, "a double spend in block %zu at %zu of %zu", k, at, n);
        } else {
            const uint8_t *ptx[MAXTX / 8];
            size_t plen[MAXTX / 8];
            size_t pn = block_txs(b->rec[k - 1], b->len[k - 1], ptx, plen, MAXTX / 8);
            for (size_t i = pn; i-- > 0 && !dup;) {
                pm_tx t;
                if (pm_tx_parse(pm_context_static, &t, NULL, ptx[i], plen[i]) &&
                    t.type == PM_TX_TRANSFER)
                    dup = ptx[i], dup_len = plen[i];
            }
            snprintf(what, sizeof what, "a spend from block %zu again in block %zu at %zu of %zu",
                     k - 1, k, at, n);
        }
        CHECK(dup != NULL);
        if (!dup)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (i == at)
                mod[m] = dup, mlen[m++] = dup_len;
            mod[m] = tx[i], mlen[m++] = len[i];
        }
        size_t size;
        uint8_t *bad = make_chain(ctx, header, b, k, mod, mlen, m, &size);
        compare(ctx, bad, size, what, 0);
        free(bad);

        /* A spender moved before the transaction it spends from. */
        size_t spender = 0, creator = 0;
        for (size_t i = n / 2; i < n && !spender; i++) {
            pm_tx t;
            if (!pm_tx_parse(pm_context_static, &t, NULL, tx[i], len[i]) ||
                t.type != PM_TX_TRANSFER)
                continue;
            for (size_t in = 0; in < t.n_in && !spender; in++) {
                pm_outpoint op;
                pm_tx_input(pm_context_static, &op, &t, in);
                for (size_t j = 0; j < i && !spender; j++) {
                    uint8_t id[32];
                    if (refval_txid(id, tx[j], len[j]) && memcmp(id, op.txid, 32) == 0)
                        spender = i, creator = j;
                }
            }
        }
        if (spender) {
            m = 0;
            for (size_t i = 0; i < n; i++) {
                if (i == creator)
                    mod[m] = tx[spender], mlen[m++] = len[spender];
                if (i != spender)
                    mod[m] = tx[i], mlen[m++] = len[i];
            }
            bad = make_chain(ctx, header, b, k, mod, mlen, m, &size);
            snprintf(what, sizeof what, "block %zu: tx %zu moved before tx %zu it spends from", k,
                     spender, creator);
            compare(ctx, bad, size, what, 0);
            free(bad);
        }
    }
    free(tx);
    free(len);
    free(mod);
    free(mlen);
    free(b);
    free(chain);
    refval_pack_result_free(&packed);
    refval_destroy(rv);
    free(stream);
    pm_context_destroy(ctx);
    return pm_test_finish();
}
