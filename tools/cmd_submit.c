/*
 * cmd_submit.c — `postmark submit nats://HOST:PORT[,...] FILE|- --stream
 * NAME`: publish a stream file's records to a cluster's stream in bulk
 * (tools/cluster/submit.c: message id = SHA-256 of the record, so running
 * it again inside the duplicate window adds nothing).
 */
#include "cliutil.h"
#include "commands.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char submit_usage[] =
    "usage: postmark submit URLS FILE|- --stream NAME [--batch N] [--sync] [--json] [--quiet]\n"
    "\n"
    "Publish every record of a transaction stream file (its header must be the\n"
    "cluster's) to the cluster stream NAME, in file order. Each record's message id\n"
    "is the hex SHA-256 of its bytes: a record already in the stream (inside its\n"
    "duplicate window) is not added again.\n"
    "  --batch N   records published asynchronously before waiting for their\n"
    "              acknowledgements (default 1024; failures are resent, 30 s at most)\n"
    "  --sync      one synchronous publish at a time (to measure against)\n"
    "  --json      {\"records\", \"published\", \"duplicates\", \"seconds\", \"rate\"} on stdout\n"
    "Exit status: 0 all published, 1 failure, 2 usage error.\n";

#ifndef PM_HAVE_NATS
int pm_cmd_submit(int argc, char **argv)
{
    (void)argc, (void)argv;
    pm_cli_error("submit", "this postmark was built without libnats (no cluster mode)");
    return PM_EXIT_INVALID;
}
#else

#include "cluster/cluster.h"
#include "recfile.h"

int pm_cmd_submit(int argc, char **argv)
{
    static const struct option options[] = {
        {"stream", required_argument, NULL, 's'},
        {"batch", required_argument, NULL, 'b'},
        {"sync", no_argument, NULL, 'S'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *stream = NULL;
    uint64_t batch = 1024, v;
    int sync = 0, json = 0, quiet = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 's': stream = optarg; break;
        case 'S': sync = 1; break;
        case 'j': json = 1; break;
        case 'q': quiet = 1; break;
        case 'b':
            if (!pm_cli_parse_u64(optarg, 1, 65536, &v)) {
                pm_cli_error("submit", "--batch: expected 1..65536, got '%s'", optarg);
                return PM_EXIT_USAGE;
            }
            batch = v;
            break;
        case 'h': fputs(submit_usage, stdout); return PM_EXIT_OK;
        default:
            pm_cli_error("submit", "unknown option or missing argument: %s", argv[optind - 1]);
            fputs(submit_usage, stderr);
            return PM_EXIT_USAGE;
        }
    }
    if (optind != argc - 2 || !stream) {
        pm_cli_error("submit", "expected URLS FILE|- and --stream NAME");
        fputs(submit_usage, stderr);
        return PM_EXIT_USAGE;
    }
    const char *urls = argv[optind], *path = argv[optind + 1];
    if (!strcmp(path, "-"))
        path = "/dev/stdin";
    char err[512];
    pm_recfile *rf = NULL;
    pm_recfile_header hdr;
    if (pm_recfile_open(&rf, &hdr, err, sizeof err, path, PM_TX_MAX_SIZE) != PM_OK) {
        pm_cli_error("submit", "%s", err);
        return PM_EXIT_INVALID;
    }
    if (!hdr.valid || hdr.kind != PM_FILE_STREAM) {
        pm_cli_error("submit", "%s: not a transaction stream (bad header)", argv[optind + 1]);
        pm_recfile_close(rf);
        return PM_EXIT_INVALID;
    }
    cluster_conn conn;
    if (cluster_connect(&conn, urls, stream, err, sizeof err) != 0) {
        pm_cli_error("submit", "%s", err);
        pm_recfile_close(rf);
        return PM_EXIT_INVALID;
    }
    int rc = PM_EXIT_OK;
    /* The stream must be this chain's: its first message is our header. */
    cluster_msg first;
    int got = cluster_get(&conn, 1, &first, err, sizeof err);
    if (got <= 0 || first.kind != CLUSTER_MSG_HEADER ||
        memcmp(first.data + 8, hdr.raw + 8, PM_FILE_HEADER_SIZE - 8) != 0) {
        pm_cli_error("submit", "%s", got < 0 ? err : "the stream is not initialised with this "
                     "file's chain (header bytes 8..59 differ, or no header)");
        if (got > 0)
            cluster_msg_free(&first);
        cluster_close(&conn);
        pm_recfile_close(rf);
        return PM_EXIT_INVALID;
    }
    cluster_msg_free(&first);
    cluster_publisher *pub = cluster_publisher_new(&conn, 5000, 30000, err, sizeof err);
    cluster_pub *recs = calloc(batch, sizeof *recs);
    uint8_t **copies = calloc(batch, sizeof *copies);
    if (!pub || !recs || !copies) {
        pm_cli_error("submit", "%s", pub ? "out of memory" : err);
        rc = PM_EXIT_INVALID;
        goto out;
    }
    uint64_t total = 0, published = 0, dups = 0;
    double t0 = pm_cli_now();
    for (;;) {
        size_t n = 0;
        pm_recfile_record rec;
        int r = 0;
        while (n < batch && (r = pm_recfile_next(rf, &rec, err, sizeof err)) == 1) {
            if (rec.truncated || !rec.bytes)
                continue; /* a cut record cannot be framed: pack rejects it anyway */
            copies[n] = malloc(rec.size ? rec.size : 1);
            if (!copies[n]) {
                r = -1;
                snprintf(err, sizeof err, "out of memory");
                break;
            }
            memcpy(copies[n], rec.bytes, rec.size);
            recs[n].bytes = copies[n];
            recs[n].size = rec.size;
            n++;
        }
        if (r < 0) {
            pm_cli_error("submit", "%s", err);
            rc = PM_EXIT_INVALID;
        }
        size_t ok = 0;
        if (sync) {
            /* The measure: one round trip per record. */
            for (size_t i = 0; i < n; i++)
                ok += cluster_publish(pub, &recs[i], 1);
        } else if (n) {
            ok = cluster_publish(pub, recs, n);
        }
        for (size_t i = 0; i < n; i++) {
            dups += recs[i].ok && recs[i].duplicate;
            free(copies[i]);
        }
        total += n;
        published += ok;
        if (ok != n) {
            pm_cli_error("submit", "%zu of %zu records not acknowledged within 30 s",
                         n - ok, n);
            rc = PM_EXIT_INVALID;
        }
        if (rc != PM_EXIT_OK || n < batch)
            break;
    }
    double secs = pm_cli_now() - t0;
    if (json)
        printf("{\"records\": %llu, \"published\": %llu, \"duplicates\": %llu, \"seconds\": %.3f, "
               "\"rate\": %.0f}\n", (unsigned long long)total, (unsigned long long)published,
               (unsigned long long)dups, secs, secs > 0 ? (double)published / secs : 0.0);
    if (!quiet)
        fprintf(stderr, "postmark submit: %llu records, %llu acknowledged (%llu already in the "
                "stream) in %.2f s: %.0f records/s\n", (unsigned long long)total,
                (unsigned long long)published, (unsigned long long)dups, secs,
                secs > 0 ? (double)published / secs : 0.0);
out:
    free(recs);
    free(copies);
    cluster_publisher_free(pub);
    cluster_close(&conn);
    pm_recfile_close(rf);
    return rc;
}
#endif
