/*
 * embed_pack.c — embed the verifier: validate a transaction stream and
 * pack the valid transactions into blocks, as a node producing blocks
 * would. The engine calls back with each sealed block and each rejected
 * transaction; a real node would append the block to its chain file (as
 * `postmark pack` does) and report the rejects to their senders.
 *
 * Usage: embed_pack STREAM.pmtx [BLOCK_TXS]
 * Prints: accepted N rejected N blocks N tip HASH
 */
#include "records.h"

#include <postmark.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    uint64_t blocks, rejected;
} tally;

static void on_block(void *data, const uint8_t *block, size_t size, uint64_t height,
                     const uint8_t hash[PM_HASH_SIZE])
{
    (void)block, (void)size, (void)height, (void)hash; /* valid during the call only */
    ((tally *)data)->blocks++;
}

static void on_reject(void *data, uint64_t index, const uint8_t *txid, pm_reason reason)
{
    (void)index, (void)txid, (void)reason; /* pm_reason_name(reason) says why */
    ((tally *)data)->rejected++;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: embed_pack STREAM.pmtx [BLOCK_TXS]\n");
        return 2;
    }
    records in;
    if (records_load(&in, argv[1], PM_FILE_STREAM) != 0)
        return 1;

    /* One context per program: it holds the precomputed hash tags and the
     * misuse callback, and is shared by every engine. */
    pm_context *ctx = pm_context_create();
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    if (argc > 2)
        cfg.block_max_txs = (uint32_t)strtoul(argv[2], NULL, 10);

    /* The engine starts at the empty state of the stream's chain. */
    pm_engine *engine = NULL;
    if (!ctx || pm_engine_create(&engine, ctx, &in.params, &cfg) != PM_OK) {
        fprintf(stderr, "embed_pack: cannot create the engine\n");
        return 1;
    }
    tally t = {0, 0};
    pm_engine_set_callbacks(engine, on_block, on_reject, &t);

    /* Submit everything, then flush: the last block is sealed and every
     * verdict delivered before flush returns. */
    int ok = pm_engine_submit_batch(engine, in.rec, in.size, in.n) == PM_OK &&
             pm_engine_flush(engine) == PM_OK;
    if (!ok) {
        fprintf(stderr, "embed_pack: %s\n", pm_engine_last_error(engine));
    } else {
        pm_stats st;
        pm_engine_stats(engine, &st);
        uint8_t tip[PM_HASH_SIZE];
        char hex[65];
        pm_engine_tip(engine, tip, NULL);
        printf("accepted %llu rejected %llu blocks %llu tip %s\n",
               (unsigned long long)st.txs_accepted, (unsigned long long)t.rejected,
               (unsigned long long)t.blocks, hash_hex(hex, tip));
    }
    pm_engine_destroy(engine);
    pm_context_destroy(ctx);
    records_free(&in);
    return ok ? 0 : 1;
}
