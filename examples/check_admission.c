/*
 * check_admission.c — check transactions for admission, as a mempool
 * does: pm_engine_check_tx says whether a transaction would be accepted
 * on the current state (pending transactions included) without applying
 * it. Each admitted transaction is then submitted, so the next check sees
 * it; the verdicts are those pack mode gives the same stream.
 *
 * Usage: check_admission STREAM.pmtx
 * Prints: one line per refused transaction (index and reason), then
 *         admitted N refused N
 */
#include "records.h"

#include <postmark.h>

#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: check_admission STREAM.pmtx\n");
        return 2;
    }
    records in;
    if (records_load(&in, argv[1], PM_FILE_STREAM) != 0)
        return 1;

    pm_context *ctx = pm_context_create();
    pm_engine *engine = NULL;
    if (!ctx || pm_engine_create(&engine, ctx, &in.params, NULL) != PM_OK) {
        fprintf(stderr, "check_admission: cannot create the engine\n");
        return 1;
    }

    size_t admitted = 0, refused = 0;
    int rc = 0;
    for (size_t i = 0; i < in.n && rc == 0; i++) {
        pm_reason why;
        /* A malformed or invalid transaction is a verdict, not an error:
         * only running out of memory fails the call. */
        if (pm_engine_check_tx(engine, &why, in.rec[i], in.size[i]) != PM_OK) {
            rc = 1;
        } else if (why != PM_REASON_NONE) {
            printf("%zu %s\n", i, pm_reason_name(why));
            refused++;
        } else if (pm_engine_submit(engine, in.rec[i], in.size[i]) != PM_OK) {
            rc = 1;
        } else {
            admitted++;
        }
    }
    if (rc != 0)
        fprintf(stderr, "check_admission: %s\n", pm_engine_last_error(engine));
    else
        printf("admitted %zu refused %zu\n", admitted, refused);
    pm_engine_destroy(engine);
    pm_context_destroy(ctx);
    records_free(&in);
    return rc;
}
