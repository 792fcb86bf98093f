/*
 * test_conc_differential.c — the parallel engine against the sequential
 * reference validator (tests/support/refval.c, which shares no code with
 * the engine's state or pipeline), on generated markets rich in double
 * spends, conflicts, in-block chains, bad signatures, replays and
 * malformed records: at several thread counts and block limits, pack must
 * give the same blocks byte for byte, the same rejects and the same state;
 * replay of tampered chains the same verdicts.
 *
 * Runs under ThreadSanitizer in CI (test_conc_*). PM_TEST_TXS scales it.
 */
#include "gen.h"
#include "postmark.h"
#include "refval.h"
#include "testutil.h"
#include "postmark_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
    uint8_t *chain;
    size_t size, cap;
    refval_reject rejects[100000];
    size_t n_rejects;
} collected;

static void on_block(void *data, const uint8_t *block, size_t size, uint64_t height,
                     const uint8_t hash[32])
{
    (void)height;
    (void)hash;
    collected *c = data;
    if (c->size + size + 4 > c->cap) {
        c->cap = (c->size + size + 4) * 2;
        c->chain = realloc(c->chain, c->cap);
    }
    uint8_t len[4] = {(uint8_t)size, (uint8_t)(size >> 8), (uint8_t)(size >> 16), (uint8_t)(size >> 24)};
    memcpy(c->chain + c->size, len, 4);
    memcpy(c->chain + c->size + 4, block, size);
    c->size += size + 4;
}

static void on_reject(void *data, uint64_t index, const uint8_t *txid, pm_reason reason)
{
    collected *c = data;
    if (c->n_rejects < sizeof c->rejects / sizeof c->rejects[0]) {
        refval_reject *r = &c->rejects[c->n_rejects];
        r->index = index;
        r->reason = reason;
        r->has_txid = txid != NULL;
        if (txid)
            memcpy(r->txid, txid, 32);
    }
    c->n_rejects++;
}

/* Generate a market stream into memory. */
static uint8_t *generate(const pm_context *ctx, uint64_t seed, uint64_t txs, size_t *size,
                         pm_gen_report *report)
{
    pm_gen_config cfg;
    pm_gen_config_default(&cfg, PM_GEN_MARKET);
    cfg.seed = seed;
    cfg.txs = txs;
    cfg.operators = 4;
    cfg.series_per_operator = 3;
    cfg.collectors = 60; /* few owners: many conflicts */
    cfg.double_spend_ppm = 30000;
    cfg.bad_signature_ppm = 20000;
    cfg.conflict_ppm = 60000;
    cfg.replay_ppm = 20000;
    cfg.malformed_ppm = 10000;
    cfg.chain_ppm = 150000;
    cfg.other_ppm = 30000;
    return pm_test_gen_stream(ctx, &cfg, report, size);
}

static void pack_with_engine(const pm_context *ctx, const uint8_t *stream, size_t size,
                             unsigned threads, uint32_t block_txs, collected *out,
                             uint8_t digest[32])
{
    pm_chain_params params;
    pm_file_kind kind;
    CHECK(pm_file_header_parse(pm_context_static, &kind, &params, NULL, stream, size));
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = threads;
    cfg.block_max_txs = block_txs;
    pm_engine *e = NULL;
    CHECK(pm_engine_create(&e, ctx, &params, &cfg) == PM_OK);
    if (!e)
        return;
    pm_engine_set_callbacks(e, on_block, on_reject, out);
    size_t pos = PM_FILE_HEADER_SIZE, len;
    const uint8_t *rec;
    int r;
    while ((r = pm_record_next(stream, size, &pos, &rec, &len)) == 1)
        CHECK(pm_engine_submit(e, rec, len) == PM_OK);
    if (r < 0)
        CHECK(pm_engine_submit_truncated(e) == PM_OK);
    CHECK(pm_engine_flush(e) == PM_OK);
    CHECK(pm_engine_utxo_digest(e, digest) == PM_OK);
    pm_engine_destroy(e);
}

static int same_rejects(const collected *c, const refval_pack_result *r)
{
    if (c->n_rejects != r->n_rejects)
        return 0;
    for (size_t i = 0; i < r->n_rejects; i++) {
        const refval_reject *a = &c->rejects[i], *b = &r->rejects[i];
        if (a->index != b->index || a->reason != b->reason || a->has_txid != b->has_txid ||
            (a->has_txid && memcmp(a->txid, b->txid, 32) != 0))
            return 0;
    }
    return 1;
}

/* Replay a chain (header + blocks) with the engine; the verdict in the
 * shape of refval's. */
static void replay_with_engine(const pm_context *ctx, const uint8_t *chain, size_t size,
                               unsigned threads, refval_verdict *v, uint8_t digest[32])
{
    memset(v, 0, sizeof *v);
    pm_chain_params params;
    pm_file_kind kind;
    CHECK(pm_file_header_parse(pm_context_static, &kind, &params, NULL, chain, size));
    const uint8_t *blocks[4096];
    size_t sizes[4096], n = 0, pos = PM_FILE_HEADER_SIZE;
    while (n < 4096 && pm_record_next(chain, size, &pos, &blocks[n], &sizes[n]) == 1)
        n++;
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = threads;
    pm_engine *e = NULL;
    CHECK(pm_engine_create(&e, ctx, &params, &cfg) == PM_OK);
    if (!e)
        return;
    pm_verdict pv;
    pm_status st = pm_engine_connect_blocks(e, &pv, blocks, sizes, n, 0);
    CHECK(st == PM_OK || st == PM_ERR_INVALID);
    v->valid = st == PM_OK;
    v->reason = pv.reason;
    v->height = st == PM_OK ? n : pv.block;
    v->tx = pv.tx;
    v->has_txid = pv.has_txid;
    memcpy(v->txid, pv.txid, 32);
    CHECK(pm_engine_utxo_digest(e, digest) == PM_OK);
    pm_engine_destroy(e);
}

static const unsigned thread_counts[] = {1, 2, 8};

int main(void)
{
    const char *scale = getenv("PM_TEST_TXS");
    uint64_t txs = scale ? strtoull(scale, NULL, 10) : 3000;
    pm_context *ctx = pm_context_create();
    CHECK(ctx != NULL);
    for (uint64_t seed = 11; seed <= 12 && ctx; seed++) {
        size_t size = 0;
        pm_gen_report report;
        uint8_t *stream = generate(ctx, seed, txs, &size, &report);
        if (!stream)
            break;
        pm_chain_params params;
        pm_file_kind kind;
        CHECK(pm_file_header_parse(pm_context_static, &kind, &params, NULL, stream, size));
        const uint32_t limits[] = {7, 4096};
        for (size_t li = 0; li < 2; li++) {
            refval *rv = refval_create(&params);
            refval_pack_result expect;
            CHECK(refval_pack(rv, &expect, stream, size, limits[li], PM_BLOCK_MAX_SIZE) == PM_OK);
            uint8_t want_digest[32];
            CHECK(refval_utxo_digest(rv, want_digest));
            /* The generator planned every verdict; the reference agrees. */
            CHECKF(expect.n_rejects + expect.accepted == report.records,
                   "seed %llu: %zu rejects + %llu accepted != %llu records",
                   (unsigned long long)seed, expect.n_rejects,
                   (unsigned long long)expect.accepted, (unsigned long long)report.records);
            CHECK(expect.n_rejects > txs / 20); /* rich in rejects */
            for (size_t ti = 0; ti < 3; ti++) {
                collected *got = calloc(1, sizeof *got);
                uint8_t digest[32];
                pack_with_engine(ctx, stream, size, thread_counts[ti], limits[li], got, digest);
                CHECKF(got->size == expect.blocks_size &&
                           memcmp(got->chain, expect.blocks, got->size) == 0,
                       "seed %llu limit %u threads %u: blocks differ", (unsigned long long)seed,
                       limits[li], thread_counts[ti]);
                CHECKF(same_rejects(got, &expect), "seed %llu limit %u threads %u: rejects differ",
                       (unsigned long long)seed, limits[li], thread_counts[ti]);
                CHECK(memcmp(digest, want_digest, 32) == 0);
                free(got->chain);
                free(got);
            }
            /* Replay: the chain as packed, then with one byte flipped in
             * a sample of places; the verdicts must agree. */
            size_t csize = PM_FILE_HEADER_SIZE + expect.blocks_size;
            uint8_t *chain = malloc(csize);
            refval_file_header(rv, chain, PM_FILE_CHAIN);
            memcpy(chain + PM_FILE_HEADER_SIZE, expect.blocks, expect.blocks_size);
            for (int trial = 0; trial < 6; trial++) {
                if (trial > 0) {
                    size_t at = PM_FILE_HEADER_SIZE + (size_t)(seed * 7919 + trial * 104729) %
                                                          expect.blocks_size;
                    chain[at] ^= (uint8_t)(1u << trial);
                }
                refval *rv2 = NULL;
                refval_verdict want, got;
                CHECK(refval_replay(&rv2, &want, chain, csize, NULL) == PM_OK);
                uint8_t d1[32], d2[32];
                if (rv2)
                    CHECK(refval_utxo_digest(rv2, d1));
                /* Connect mode commits in parallel: every thread count
                 * must give the reference's verdict and state. */
                for (size_t ti = 0; ti < 3; ti++) {
                    replay_with_engine(ctx, chain, csize, thread_counts[ti], &got, d2);
                    CHECKF(want.valid == got.valid && want.reason == got.reason &&
                               want.height == got.height && want.tx == got.tx &&
                               want.has_txid == got.has_txid &&
                               (!want.has_txid || memcmp(want.txid, got.txid, 32) == 0),
                           "trial %d, %u threads: reference %s block %llu tx %lld, engine %s "
                           "block %llu tx %lld",
                           trial, thread_counts[ti], pm_reason_name(want.reason),
                           (unsigned long long)want.height, (long long)want.tx,
                           pm_reason_name(got.reason), (unsigned long long)got.height,
                           (long long)got.tx);
                    if (rv2)
                        CHECK(memcmp(d1, d2, 32) == 0);
                }
                if (rv2)
                    refval_destroy(rv2);
            }
            free(chain);
            refval_pack_result_free(&expect);
            refval_destroy(rv);
        }
        free(stream);
    }
    pm_context_destroy(ctx);
    return pm_test_finish();
}
