/* snapshot_cli.c — see snapshot_cli.h. */
#include "snapshot_cli.h"
#include "cliutil.h"

#include <stdio.h>
#include <string.h>

pm_status pm_snapshot_open_for_chain(pm_engine **engine, size_t *first, const pm_context *ctx,
                                     const pm_config *cfg, const char *state_path,
                                     const pm_file *chain, char *msg, size_t msglen)
{
    char why[256];
    *engine = NULL;
    *first = 0;
    pm_engine *e = NULL;
    pm_status st = pm_engine_create_from_snapshot(&e, ctx, &chain->params, cfg, state_path, why,
                                                  sizeof why);
    if (st != PM_OK) {
        if (st == PM_ERR_MISMATCH)
            snprintf(msg, msglen, "%s: a snapshot of another chain than %s (network or governance key differs)",
                     state_path, chain->path);
        else
            snprintf(msg, msglen, "%s: %s", state_path, why);
        return st;
    }
    uint8_t tip[32], hash[32];
    int64_t height;
    pm_engine_tip(e, tip, &height);
    if (height >= 0) {
        size_t h = (size_t)height;
        int found = (uint64_t)height < chain->n_records && chain->sizes[h] >= PM_BLOCK_HEADER_SIZE &&
                    pm_block_hash(ctx, hash, chain->records[h]) && memcmp(hash, tip, 32) == 0;
        if (!found) {
            char hex[65];
            snprintf(msg, msglen,
                     "%s: snapshot tip is not in this chain: %s has no block %s at height %lld (%zu whole blocks)",
                     state_path, chain->path, pm_cli_hex(hex, tip, 32), (long long)height,
                     chain->n_records);
            pm_engine_destroy(e);
            return PM_ERR_STATE;
        }
    }
    *engine = e;
    *first = (size_t)(height + 1);
    if (msglen)
        msg[0] = 0;
    return PM_OK;
}

pm_status pm_chain_verify_from(pm_engine *engine, const pm_file *f, size_t first,
                               const uint8_t *assume_valid, pm_chain_result *res)
{
    memset(res, 0, sizeof *res);
    if (first > f->n_records)
        first = f->n_records;
    double started = pm_cli_now();
    size_t upto = 0;
    if (assume_valid) {
        pm_context *ctx = pm_context_create();
        if (!ctx)
            return PM_ERR_NOMEM;
        for (size_t i = 0; i < f->n_records; i++) {
            uint8_t hash[32];
            if (f->sizes[i] >= PM_BLOCK_HEADER_SIZE && pm_block_hash(ctx, hash, f->records[i]) &&
                memcmp(hash, assume_valid, 32) == 0) {
                upto = i + 1 > first ? i + 1 - first : 0;
                break;
            }
        }
        pm_context_destroy(ctx);
    }
    pm_stats before, after;
    pm_engine_stats(engine, &before);
    pm_status st = pm_engine_connect_blocks(engine, &res->verdict, f->records + first,
                                            f->sizes + first, f->n_records - first, upto);
    res->seconds = pm_cli_now() - started;
    if (st != PM_OK && st != PM_ERR_INVALID)
        return st;
    pm_engine_stats(engine, &after);
    res->blocks = first + (after.blocks_connected - before.blocks_connected);
    res->txs = after.txs_accepted - before.txs_accepted;
    if (st == PM_ERR_INVALID) {
        res->valid = 0;
        res->verdict.block += first;
        return PM_OK;
    }
    if (f->truncated) {
        res->valid = 0;
        res->verdict.reason = PM_REASON_TRUNCATED;
        res->verdict.block = f->n_records;
        res->verdict.tx = -1;
        res->verdict.has_txid = 0;
        return PM_OK;
    }
    res->valid = 1;
    return PM_OK;
}
