/*
 * test_conc_snapshot.c — the concurrent parts of snapshots, for
 * ThreadSanitizer: a load whose reader thread hands chunks of UTXO records
 * to several inserter threads (the engine's workers) filling the lock-free
 * table, and saves from the on_block callback while the workers verify the
 * next batch (they read the UTXO table as the save scans it).
 */
#include "postmark_internal.h"
#include "postmark.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void test_parallel_load(const pm_context *ctx, const pm_chain_params *params)
{
    const size_t n = 40000;
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = 2;
    pm_engine *a = NULL;
    CHECK(pm_engine_create(&a, ctx, params, &cfg) == PM_OK);
    if (!a)
        return;
    uint64_t seed = 3;
    for (size_t i = 0; i < n; i++) {
        uint8_t txid[32], out[PM_OUTPUT_SIZE];
        for (int k = 0; k < 4; k++) {
            uint64_t v = rng_next(&seed);
            memcpy(txid + 8 * k, &v, 8);
        }
        pm_output o;
        memset(&o, 0, sizeof o);
        o.kind = PM_OUTPUT_CREDIT;
        o.operator_id = 1;
        o.amount = 1 + i;
        pm_output_encode(pm_context_static, out, &o);
        CHECK(pm_utxo_table_insert(pm_ledger_utxo(a->ledger), txid, 0, out) == PM_OK);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/conc.snap", pm_test_tmpdir());
    CHECK(pm_engine_save_snapshot(a, path) == PM_OK);
    uint8_t want[32];
    CHECK(pm_engine_utxo_digest(a, want) == PM_OK);
    for (unsigned threads = 2; threads <= 8; threads *= 2) {
        pm_config lc;
        pm_config_default(pm_context_static, &lc);
        lc.threads = threads;
        pm_engine *b = NULL;
        char err[256];
        CHECKF(pm_engine_create_from_snapshot(&b, ctx, NULL, &lc, path, err, sizeof err) == PM_OK,
               "threads %u: %s", threads, err);
        if (!b)
            continue;
        uint8_t got[32];
        CHECK(pm_engine_utxo_count(b) == n);
        CHECK(pm_engine_utxo_digest(b, got) == PM_OK && memcmp(got, want, 32) == 0);
        pm_engine_destroy(b);
    }
    pm_engine_destroy(a);
}

typedef struct {
    pm_engine *engine;
    char path[512];
    uint64_t saved, failed;
    int64_t last_height;
} saver;

static void on_block(void *data, const uint8_t *block, size_t size, uint64_t height,
                     const uint8_t hash[32])
{
    (void)block;
    (void)size;
    (void)hash;
    saver *s = data;
    if (pm_engine_save_snapshot(s->engine, s->path) == PM_OK) {
        s->saved++;
        s->last_height = (int64_t)height;
    } else {
        s->failed++;
    }
}

static void test_save_while_verifying(const pm_context *ctx)
{
    size_t size;
    uint8_t *data = pm_read_file(pm_vector_path("s1.pmtx"), &size);
    if (!data)
        return;
    pm_file_kind kind;
    pm_chain_params params;
    CHECK(pm_file_header_parse(pm_context_static, &kind, &params, NULL, data, size));
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = 4;
    cfg.block_max_txs = 16;
    pm_engine *e = NULL;
    CHECK(pm_engine_create(&e, ctx, &params, &cfg) == PM_OK);
    if (!e) {
        free(data);
        return;
    }
    saver s = {.engine = e, .last_height = -1};
    snprintf(s.path, sizeof s.path, "%s/conc-cb.snap", pm_test_tmpdir());
    pm_engine_set_callbacks(e, on_block, NULL, &s);
    size_t off = PM_FILE_HEADER_SIZE;
    while (off + 4 <= size) {
        size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8 |
                     (size_t)data[off + 2] << 16 | (size_t)data[off + 3] << 24;
        if (off + 4 + len > size)
            break;
        CHECK(pm_engine_submit(e, data + off + 4, len) == PM_OK);
        off += 4 + len;
    }
    CHECK(pm_engine_flush(e) == PM_OK);
    CHECK(s.failed == 0 && s.saved > 10);
    /* The last snapshot is the final state. */
    pm_engine *b = NULL;
    char err[256];
    pm_config lc;
    pm_config_default(pm_context_static, &lc);
    lc.threads = 3;
    CHECKF(pm_engine_create_from_snapshot(&b, ctx, &params, &lc, s.path, err, sizeof err) == PM_OK,
           "%s", err);
    if (b) {
        uint8_t x[32], y[32], tx[32], ty[32];
        int64_t hx, hy;
        pm_engine_tip(e, tx, &hx);
        pm_engine_tip(b, ty, &hy);
        CHECK(hx == hy && hy == s.last_height && memcmp(tx, ty, 32) == 0);
        CHECK(pm_engine_utxo_digest(e, x) == PM_OK && pm_engine_utxo_digest(b, y) == PM_OK &&
              memcmp(x, y, 32) == 0);
        pm_engine_destroy(b);
    }
    pm_engine_destroy(e);
    free(data);
}

int main(void)
{
    pm_context *ctx = pm_context_create();
    CHECK(ctx != NULL);
    if (!ctx)
        return pm_test_finish();
    pm_chain_params params;
    memset(&params, 0, sizeof params);
    memcpy(params.network, "conc-snapshot", 13);
    test_parallel_load(ctx, &params);
    test_save_while_verifying(ctx);
    pm_context_destroy(ctx);
    return pm_test_finish();
}
