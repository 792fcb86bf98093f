/*
 * snapshot_roundtrip.c — save and load a snapshot: replay a chain, save
 * the state at its tip, then start a second engine from the file, as a
 * node restarting in seconds instead of replaying history would. The
 * loaded engine must be at the same tip with the same UTXO set (its
 * digest is recomputed while loading).
 *
 * Usage: snapshot_roundtrip CHAIN.pmbk SNAPSHOT_PATH
 * Prints: saved height H tip HASH, then loaded height H tip HASH digest
 *         HASH same
 */
#include "records.h"

#include <postmark.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Tip and UTXO digest of an engine. */
static int describe(pm_engine *e, uint8_t tip[PM_HASH_SIZE], int64_t *height,
                    uint8_t digest[PM_HASH_SIZE])
{
    pm_engine_tip(e, tip, height);
    return pm_engine_utxo_digest(e, digest) == PM_OK;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: snapshot_roundtrip CHAIN.pmbk SNAPSHOT_PATH\n");
        return 2;
    }
    records chain;
    if (records_load(&chain, argv[1], PM_FILE_CHAIN) != 0)
        return 1;
    pm_context *ctx = pm_context_create();
    pm_engine *a = NULL, *b = NULL;
    if (!ctx || pm_engine_create(&a, ctx, &chain.params, NULL) != PM_OK) {
        fprintf(stderr, "snapshot_roundtrip: cannot create the engine\n");
        return 1;
    }

    pm_verdict v;
    uint8_t tip_a[PM_HASH_SIZE], tip_b[PM_HASH_SIZE], dig_a[PM_HASH_SIZE], dig_b[PM_HASH_SIZE];
    int64_t h_a, h_b;
    char x[65], y[65];
    int rc = 1;
    if (pm_engine_connect_blocks(a, &v, chain.rec, chain.size, chain.n, 0) != PM_OK ||
        !describe(a, tip_a, &h_a, dig_a)) {
        fprintf(stderr, "snapshot_roundtrip: replay: %s\n", pm_engine_last_error(a));
        goto out;
    }
    /* Written to a temporary file, synced and renamed into place: the path
     * holds either the old snapshot or the new one, never a torn file. */
    if (pm_engine_save_snapshot(a, argv[2]) != PM_OK) {
        fprintf(stderr, "snapshot_roundtrip: save: %s\n", pm_engine_last_error(a));
        goto out;
    }
    printf("saved height %" PRId64 " tip %s\n", h_a, hash_hex(x, tip_a));

    /* Passing the chain we expect makes a snapshot of another chain fail
     * with PM_ERR_MISMATCH instead of being taken. */
    char err[256];
    pm_status st = pm_engine_create_from_snapshot(&b, ctx, &chain.params, NULL, argv[2], err,
                                                  sizeof err);
    if (st != PM_OK) {
        fprintf(stderr, "snapshot_roundtrip: load: %s: %s\n", pm_status_text(st), err);
        goto out;
    }
    if (!describe(b, tip_b, &h_b, dig_b)) {
        fprintf(stderr, "snapshot_roundtrip: %s\n", pm_engine_last_error(b));
        goto out;
    }
    int same = h_a == h_b && memcmp(tip_a, tip_b, PM_HASH_SIZE) == 0 &&
               memcmp(dig_a, dig_b, PM_HASH_SIZE) == 0 &&
               pm_engine_utxo_count(a) == pm_engine_utxo_count(b);
    printf("loaded height %" PRId64 " tip %s digest %s %s\n", h_b, hash_hex(x, tip_b),
           hash_hex(y, dig_b), same ? "same" : "DIFFERENT");
    rc = same ? 0 : 1;
out:
    pm_engine_destroy(b);
    pm_engine_destroy(a);
    pm_context_destroy(ctx);
    records_free(&chain);
    return rc;
}
