/* snapshot_cli.c — see snapshot_cli.h. */
#include "snapshot_cli.h"
#include "cliutil.h"

#include <stdio.h>
#include <string.h>

#define SKIP_BATCH 1024

pm_status pm_snapshot_open_for_chain(pm_engine **engine, uint64_t *first, const pm_context *ctx,
                                     const pm_config *cfg, const char *state_path,
                                     pm_input *chain, pm_block_visit_fn visit, void *visit_data,
                                     char *msg, size_t msglen)
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
    uint8_t tip[32];
    int64_t height;
    pm_engine_tip(e, tip, &height);
    /* Read blocks 0 .. height without verifying them; hash the last. */
    uint64_t want = (uint64_t)(height + 1), seen = 0;
    int found = height < 0;
    pm_record recs[SKIP_BATCH];
    while (seen < want) {
        size_t n = 0, max = want - seen < SKIP_BATCH ? (size_t)(want - seen) : SKIP_BATCH;
        if (pm_ingest_next(chain->in, recs, max, &n) != PM_OK) {
            snprintf(msg, msglen, "%s: %s", chain->path, pm_ingest_error(chain->in));
            pm_engine_destroy(e);
            return PM_ERR_IO;
        }
        if (n == 0)
            break;
        if (visit)
            for (size_t i = 0; i < n; i++)
                visit(visit_data, seen + i, recs[i].bytes, recs[i].size);
        seen += n;
        if (seen == want) {
            const pm_record *last = &recs[n - 1];
            uint8_t hash[32];
            found = last->size >= PM_BLOCK_HEADER_SIZE && pm_block_hash(ctx, hash, last->bytes) &&
                    memcmp(hash, tip, 32) == 0;
        }
    }
    if (!found) {
        char hex[65];
        if (seen < want)
            snprintf(msg, msglen,
                     "%s: snapshot tip is not in this chain: %s has %llu whole blocks, the snapshot is at height %lld (block %s)",
                     state_path, chain->path, (unsigned long long)seen, (long long)height,
                     pm_cli_hex(hex, tip, 32));
        else
            snprintf(msg, msglen,
                     "%s: snapshot tip is not in this chain: block %lld of %s is not %s",
                     state_path, (long long)height, chain->path, pm_cli_hex(hex, tip, 32));
        pm_engine_destroy(e);
        return PM_ERR_STATE;
    }
    *engine = e;
    *first = want;
    if (msglen)
        msg[0] = 0;
    return PM_OK;
}

typedef struct {
    pm_block_visit_fn visit;
    void *data;
    uint64_t first;
} shifted_visit;

static void visit_shifted(void *data, uint64_t position, const uint8_t *block, size_t size)
{
    shifted_visit *s = data;
    s->visit(s->data, s->first + position, block, size);
}

pm_status pm_chain_verify_from(pm_engine *engine, pm_input *f, uint64_t first,
                               uint64_t assume_valid_upto, pm_block_visit_fn visit,
                               void *visit_data, const char *progress, pm_chain_result *res,
                               char *err, size_t errlen)
{
    shifted_visit sv = {visit, visit_data, first};
    pm_status st = pm_chain_verify(engine, f, assume_valid_upto > first ? assume_valid_upto - first : 0,
                                   visit ? visit_shifted : NULL, visit ? &sv : NULL, progress, res,
                                   err, errlen);
    res->blocks += first;
    if (!res->valid)
        res->verdict.block += first;
    return st;
}
