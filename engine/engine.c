/*
 * engine.c — the public pm_engine API (postmark.h): argument checks,
 * error messages, and the mempool choreography around changes of tip; the
 * work itself is in pipeline.c and state.c.
 *
 * Misuse goes to the engine's context (e->ctx); only the check of the
 * engine itself passes NULL, because a NULL engine has no context to
 * take a callback from (the default one runs).
 */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void pm_config_default(const pm_context *ctx, pm_config *cfg)
{
    PM_ARG_CHECK(ctx, ctx != NULL, );
    PM_ARG_CHECK(ctx, cfg != NULL, );
    memset(cfg, 0, sizeof *cfg);
    cfg->threads = 0;
    cfg->utxo_capacity_hint = 1 << 16;
    cfg->block_max_txs = PM_DEFAULT_BLOCK_TXS;
    cfg->block_max_bytes = PM_BLOCK_MAX_SIZE;
    cfg->undo_depth = 100;
    cfg->sigcache_bytes = PM_DEFAULT_SIGCACHE_BYTES;
}

const char *pm_config_invalid(const pm_config *cfg)
{
    if (cfg->threads > PM_CONFIG_MAX_THREADS)
        return "cfg->threads <= PM_CONFIG_MAX_THREADS";
    if (cfg->block_max_txs < 1 || cfg->block_max_txs > PM_BLOCK_MAX_TXS)
        return "cfg->block_max_txs in 1..PM_BLOCK_MAX_TXS";
    if (cfg->block_max_bytes < PM_CONFIG_MIN_BLOCK_BYTES ||
        cfg->block_max_bytes > PM_BLOCK_MAX_SIZE)
        return "cfg->block_max_bytes in PM_CONFIG_MIN_BLOCK_BYTES..PM_BLOCK_MAX_SIZE";
    return NULL;
}

pm_status pm_engine_create(pm_engine **out, const pm_context *ctx, const pm_chain_params *params,
                           const pm_config *cfg)
{
    PM_ARG_CHECK(ctx, out != NULL, PM_ERR_ARG);
    *out = NULL;
    PM_ARG_CHECK_PROPER(ctx, PM_ERR_ARG);
    PM_ARG_CHECK(ctx, params != NULL, PM_ERR_ARG);
    pm_config c;
    if (cfg)
        c = *cfg;
    else
        pm_config_default(ctx, &c);
    const char *bad = pm_config_invalid(&c);
    if (bad) {
        pm_illegal(ctx, __func__, bad);
        return PM_ERR_ARG;
    }
    if (c.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c.threads = n > 0 ? (unsigned)n : 1;
    }
    if (c.undo_depth == 0)
        c.undo_depth = 100;
    pm_engine *e = calloc(1, sizeof *e);
    if (!e)
        return PM_ERR_NOMEM;
    e->ctx = ctx;
    e->cfg = c;
    e->params = *params;
    pm_status st = PM_ERR_NOMEM;
    if (pm_chain_id(ctx, e->chain_id, params) &&
        (st = pm_ledger_create(&e->ledger, params, e->chain_id, c.utxo_capacity_hint,
                               c.undo_depth)) == PM_OK)
        st = pm_pipeline_init(e);
    if (st != PM_OK) {
        pm_engine_destroy(e);
        return st;
    }
    *out = e;
    return PM_OK;
}

void pm_engine_destroy(pm_engine *e)
{
    if (!e)
        return;
    pm_pipeline_free(e);
    pm_ledger_destroy(e->ledger);
    free(e);
}

const char *pm_engine_last_error(const pm_engine *e)
{
    PM_ARG_CHECK(NULL, e != NULL, "");
    return e->error;
}

void pm_engine_set_callbacks(pm_engine *e, pm_block_fn on_block, pm_reject_fn on_reject,
                             void *data)
{
    PM_ARG_CHECK(NULL, e != NULL, );
    e->on_block = on_block;
    e->on_reject = on_reject;
    e->cb_data = data;
}

uint64_t pm_engine_block_last_index(const pm_engine *e)
{
    PM_ARG_CHECK(NULL, e != NULL, 0);
    return e->emitting_last_index;
}

pm_status pm_engine_submit(pm_engine *e, const uint8_t *tx, size_t size)
{
    PM_ARG_CHECK(NULL, e != NULL, PM_ERR_ARG);
    PM_ARG_CHECK(e->ctx, tx != NULL || size == 0, PM_ERR_ARG);
    return pm_pipeline_submit(e, tx, size);
}

pm_status pm_engine_submit_batch(pm_engine *e, const uint8_t *const *txs, const size_t *sizes,
                                 size_t n)
{
    PM_ARG_CHECK(NULL, e != NULL, PM_ERR_ARG);
    PM_ARG_CHECK(e->ctx, txs != NULL || n == 0, PM_ERR_ARG);
    PM_ARG_CHECK(e->ctx, sizes != NULL || n == 0, PM_ERR_ARG);
    /* All checked before any is taken: misuse leaves the engine as it was. */
    for (size_t i = 0; i < n; i++)
        PM_ARG_CHECK(e->ctx, txs[i] != NULL || sizes[i] == 0, PM_ERR_ARG);
    for (size_t i = 0; i < n; i++) {
        pm_status st = pm_pipeline_submit(e, txs[i], sizes[i]);
        if (st != PM_OK)
            return st;
    }
    return PM_OK;
}

pm_status pm_engine_submit_truncated(pm_engine *e)
{
    PM_ARG_CHECK(NULL, e != NULL, PM_ERR_ARG);
    return pm_pipeline_submit_truncated(e);
}

pm_status pm_engine_skip_records(pm_engine *e, uint64_t n)
{
    PM_ARG_CHECK(NULL, e != NULL, PM_ERR_ARG);
    e->next_index += n;
    return PM_OK;
}

pm_status pm_engine_flush(pm_engine *e)
{
    PM_ARG_CHECK(NULL, e != NULL, PM_ERR_ARG);
    return pm_pipeline_drain(e, 1);
}

pm_status pm_engine_step(pm_engine *e, uint64_t *settled)
{
    PM_ARG_CHECK(NULL, e != NULL, PM_ERR_ARG);
    PM_ARG_CHECK(e->ctx, settled != NULL, PM_ERR_ARG);
    return pm_pipeline_step(e, settled);
}

/* Runs `change` with the open block's transactions taken out of the state,
 * then checks them again on the new state (the mempool re-check). */
static pm_status around_open_block(pm_engine *e, pm_status (*change)(pm_engine *, void *),
                                   void *arg)
{
    pm_status st = pm_pipeline_drain(e, 0);
    if (st != PM_OK)
        return st;
    pm_open_block saved;
    pm_pipeline_suspend_open_block(e, &saved);
    st = change(e, arg);
    pm_status rst = pm_pipeline_recheck(e, &saved);
    return st != PM_OK ? st : rst;
}

typedef struct {
    pm_verdict *verdict;
    const uint8_t *const *blocks;
    const size_t *sizes;
    size_t n, assume_valid_upto;
} connect_args;

static pm_status do_connect(pm_engine *e, void *arg)
{
    connect_args *a = arg;
    pm_status st = pm_pipeline_connect(e, a->verdict, a->blocks, a->sizes, a->n,
                                       a->assume_valid_upto);
    if (st == PM_ERR_INVALID) {
        pm_verdict *v = a->verdict;
        if (v->tx >= 0)
            snprintf(e->error, sizeof e->error, "block %zu tx %lld: %s", (size_t)v->block,
                     (long long)v->tx, pm_reason_name(v->reason));
        else
            snprintf(e->error, sizeof e->error, "block %zu: %s", (size_t)v->block,
                     pm_reason_name(v->reason));
    }
    return st;
}

pm_status pm_engine_connect_blocks(pm_engine *e, pm_verdict *verdict, const uint8_t *const *blocks,
                                   const size_t *sizes, size_t n, size_t assume_valid_upto)
{
    PM_ARG_CHECK(NULL, e != NULL, PM_ERR_ARG);
    PM_ARG_CHECK(e->ctx, verdict != NULL, PM_ERR_ARG);
    PM_ARG_CHECK(e->ctx, blocks != NULL || n == 0, PM_ERR_ARG);
    PM_ARG_CHECK(e->ctx, sizes != NULL || n == 0, PM_ERR_ARG);
    for (size_t i = 0; i < n; i++)
        PM_ARG_CHECK(e->ctx, blocks[i] != NULL || sizes[i] == 0, PM_ERR_ARG);
    connect_args a = {verdict, blocks, sizes, n, assume_valid_upto};
    if (e->open.builder.count == 0 && e->filling->n == 0 && !e->committing)
        return do_connect(e, &a);
    return around_open_block(e, do_connect, &a);
}

static pm_status do_disconnect(pm_engine *e, void *arg)
{
    (void)arg;
    pm_status st = pm_ledger_disconnect_tip(e->ledger);
    if (st == PM_ERR_STATE)
        snprintf(e->error, sizeof e->error, "disconnect: no block with undo data left");
    /* No worker runs now: the operator keys the workers read can follow
     * the undone registrations at once. */
    if (st == PM_OK)
        st = pm_ledger_publish_opkeys(e->ledger);
    return st;
}

pm_status pm_engine_disconnect_tip(pm_engine *e)
{
    PM_ARG_CHECK(NULL, e != NULL, PM_ERR_ARG);
    return around_open_block(e, do_disconnect, NULL);
}

pm_status pm_engine_check_tx(pm_engine *e, pm_reason *reason, const uint8_t *tx, size_t size)
{
    PM_ARG_CHECK(NULL, e != NULL, PM_ERR_ARG);
    PM_ARG_CHECK(e->ctx, reason != NULL, PM_ERR_ARG);
    PM_ARG_CHECK(e->ctx, tx != NULL || size == 0, PM_ERR_ARG);
    return pm_pipeline_check_tx(e, reason, tx, size);
}

void pm_engine_tip(const pm_engine *e, uint8_t hash[32], int64_t *height)
{
    PM_ARG_CHECK(NULL, e != NULL, );
    pm_ledger_tip(e->ledger, hash, height);
}

int pm_engine_get_utxo(const pm_engine *e, pm_output *out, const pm_outpoint *op)
{
    PM_ARG_CHECK(NULL, e != NULL, 0);
    PM_ARG_CHECK(e->ctx, out != NULL, 0);
    PM_ARG_CHECK(e->ctx, op != NULL, 0);
    uint8_t raw[PM_OUTPUT_SIZE];
    if (!pm_utxo_table_lookup(pm_ledger_utxo(e->ledger), op->txid, op->index, raw))
        return 0;
    pm_output_decode(pm_context_static, out, raw);
    return 1;
}

uint64_t pm_engine_utxo_count(const pm_engine *e)
{
    PM_ARG_CHECK(NULL, e != NULL, 0);
    return pm_utxo_table_count(pm_ledger_utxo(e->ledger));
}

pm_status pm_engine_utxo_digest(pm_engine *e, uint8_t out[32])
{
    PM_ARG_CHECK(NULL, e != NULL, PM_ERR_ARG);
    PM_ARG_CHECK(e->ctx, out != NULL, PM_ERR_ARG);
    return pm_utxo_table_digest(pm_ledger_utxo(e->ledger), e->hasher, out);
}

void pm_engine_stats(const pm_engine *e, pm_stats *stats)
{
    PM_ARG_CHECK(NULL, e != NULL, );
    PM_ARG_CHECK(e->ctx, stats != NULL, );
    *stats = e->stats;
    stats->signatures_verified = pm_pool_signatures(e->pool) + e->keys->verified;
    pm_pool_sigcache_counts(e->pool, &stats->sigcache_hits, &stats->sigcache_misses,
                            &stats->sigcache_inserts);
    stats->sigcache_hits += e->keys->sigcache_hits;
    stats->sigcache_misses += e->keys->sigcache_misses;
    stats->sigcache_inserts += e->keys->sigcache_inserts;
    pm_pool_seconds(e->pool, &stats->seconds_hash, &stats->seconds_verify);
}
