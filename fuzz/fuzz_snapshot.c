/*
 * fuzz_snapshot.c — libFuzzer target for the snapshot loader
 * (pm_engine_create_from_snapshot, engine/snapshot.c).
 *
 * The input is a whole snapshot file. It is loaded twice through a memfd
 * (/proc/self/fd/N, so the real file path is exercised): as it stands, and
 * with every section checksum recomputed (pm_snapshot_reseal), so that
 * mutations reach the checks behind the checksums — field ranges, order,
 * duplicates, the UTXO digest, the undo logs. Whatever the bytes:
 *  - a refusal is PM_ERR_INVALID (never a crash, a hang or a leak) with no
 *    engine and a message naming the preamble or a section;
 *  - an accepted snapshot gives a usable engine: its counts and digest can
 *    be read, and every block of undo data it holds can be disconnected
 *    (the logs were checked, so applying them must not crash).
 *
 * Seeds: fuzz/corpus/fuzz_snapshot/ (snapshots of short s1 chains).
 */
#include "postmark_internal.h"
#include "postmark.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void require(int cond)
{
    if (!cond)
        abort();
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k <= 0)
            return 0;
        p += k;
        n -= (size_t)k;
    }
    return 1;
}

static void load_and_use(const pm_context *ctx, const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_snapshot", MFD_CLOEXEC);
    require(fd >= 0);
    require(write_all(fd, data, size));
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = 1;
    cfg.undo_depth = 8;
    pm_engine *e = (pm_engine *)(uintptr_t)1;
    char err[256];
    pm_status st = pm_engine_create_from_snapshot(&e, ctx, NULL, &cfg, path, err, sizeof err);
    close(fd);
    if (st != PM_OK) {
        require(st == PM_ERR_INVALID || st == PM_ERR_NOMEM);
        require(e == NULL);
        require(strncmp(err, "preamble at byte ", 17) == 0 || strstr(err, " section at byte ") != NULL);
        return;
    }
    require(e != NULL);
    uint8_t digest[32];
    require(pm_engine_utxo_digest(e, digest) == PM_OK);
    (void)pm_engine_utxo_count(e);
    /* The ledger's own disconnect: the part that applies the undo logs
     * (the engine's adds only the mempool re-check around it). */
    size_t blocks = pm_ledger_history_count(e->ledger);
    for (size_t i = 0; i < blocks; i++)
        require(pm_ledger_disconnect_tip(e->ledger) == PM_OK);
    require(pm_ledger_disconnect_tip(e->ledger) == PM_ERR_STATE);
    pm_engine_destroy(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pm_context *ctx;
    if (!ctx) {
        ctx = pm_context_create();
        require(ctx != NULL);
    }
    load_and_use(ctx, data, size);
    uint8_t *copy = malloc(size ? size : 1);
    require(copy != NULL);
    memcpy(copy, data, size);
    if (pm_snapshot_reseal(copy, size) > 0 && memcmp(copy, data, size) != 0)
        load_and_use(ctx, copy, size);
    free(copy);
    return 0;
}
