/*
 * cmd_cluster.c — `postmark cluster init|status|export` (serve.md,
 * "cluster"): the front door of tools/cluster/. Without libnats at build
 * time the command exists and says so.
 */
#include "cliutil.h"
#include "commands.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char cluster_usage[] =
    "usage: postmark cluster init   --nats URLS --stream NAME --init STREAM.pmtx\n"
    "                               [--replicas R] [--dup-window MS]\n"
    "       postmark cluster status --nats URLS --stream NAME [--json]\n"
    "       postmark cluster export --nats URLS --stream NAME -o STREAM.pmtx\n"
    "\n"
    "Postmark nodes on a NATS JetStream stream (docs/cluster.md). URLS is a\n"
    "comma-separated list of nats://HOST:PORT.\n"
    "  init     create the stream NAME (R replicas, default 3; no limits; delete and\n"
    "           purge denied; duplicate window MS, default 120000) and its KV bucket,\n"
    "           and publish STREAM's 60-byte header as its first message (only into an\n"
    "           empty stream; again with the same header: nothing to do)\n"
    "  status   each node's height, tip and last applied sequence, and whether their\n"
    "           blocks agree (--json: {\"nodes\": [...], \"agree\": BOOL, \"stream\": {...}})\n"
    "  export   write the stream's transaction records, in stream order, as a stream\n"
    "           file: `pack` of it with the same --block-txs accepts and rejects what\n"
    "           every node did\n"
    "Exit status: 0 success, 1 failure (unreachable cluster, another chain's stream),\n"
    "2 usage error.\n";

#ifndef PM_HAVE_NATS
int pm_cmd_cluster(int argc, char **argv)
{
    (void)argc, (void)argv;
    pm_cli_error("cluster", "this postmark was built without libnats (no cluster mode)");
    return PM_EXIT_INVALID;
}
#else

#include "cluster/cluster.h"
#include "cluster/cluster_kv.h"
#include "outfile.h"

typedef struct {
    const char *nats, *stream, *init, *out;
    int replicas, json;
    int64_t dup_ms;
} cluster_args;

static int cluster_init(const cluster_args *a)
{
    char err[512];
    uint8_t h[PM_FILE_HEADER_SIZE];
    pm_file_kind kind;
    pm_chain_params params;
    FILE *f = fopen(a->init, "rb");
    size_t got = f ? fread(h, 1, sizeof h, f) : 0;
    if (f)
        fclose(f);
    if (!f || !pm_file_header_parse(pm_context_static, &kind, &params, NULL, h, got) ||
        kind != PM_FILE_STREAM) {
        pm_cli_error("cluster", "%s: not a transaction stream (bad header)", a->init);
        return PM_EXIT_INVALID;
    }
    cluster_conn c;
    if (cluster_connect(&c, a->nats, a->stream, err, sizeof err) != 0) {
        pm_cli_error("cluster", "%s", err);
        return PM_EXIT_INVALID;
    }
    int rc = cluster_stream_create(&c, h, a->replicas, a->dup_ms, err, sizeof err);
    cluster_close(&c);
    if (rc != 0) {
        pm_cli_error("cluster", "%s", err);
        return PM_EXIT_INVALID;
    }
    fprintf(stderr, "postmark cluster: stream %s ready (R%d)\n", a->stream, a->replicas);
    return PM_EXIT_OK;
}

static int cluster_status(const cluster_args *a)
{
    char err[512], leader[128];
    int lagging = 0;
    cluster_conn c;
    uint64_t last = 0;
    json_t *nodes = NULL;
    int agree = 1;
    if (cluster_connect(&c, a->nats, a->stream, err, sizeof err) != 0 ||
        cluster_stream_state(&c, &last, leader, sizeof leader, &lagging, err, sizeof err) != 0 ||
        cluster_kv_open(&c, err, sizeof err) != 0 ||
        cluster_kv_status(&c, &nodes, &agree, err, sizeof err) != 0) {
        pm_cli_error("cluster", "%s", err);
        cluster_close(&c);
        return PM_EXIT_INVALID;
    }
    cluster_close(&c);
    if (a->json) {
        json_t *o = json_object();
        json_object_set_new(o, "nodes", nodes);
        json_object_set_new(o, "agree", json_boolean(agree));
        json_object_set_new(o, "stream", json_pack("{s:s, s:I, s:s, s:I}", "name", a->stream,
                                                   "last_seq", (json_int_t)last, "leader", leader,
                                                   "lagging", (json_int_t)lagging));
        return pm_cli_json_print(stdout, o, 1) == 0 ? PM_EXIT_OK : PM_EXIT_INVALID;
    }
    printf("stream %s: last sequence %llu, leader %s\n", a->stream, (unsigned long long)last,
           *leader ? leader : "(none)");
    for (size_t i = 0; i < json_array_size(nodes); i++) {
        json_t *n = json_array_get(nodes, i);
        printf("  %-16s height %-8lld seq %-10lld tip %s\n",
               json_string_value(json_object_get(n, "node")),
               (long long)json_integer_value(json_object_get(n, "height")),
               (long long)json_integer_value(json_object_get(n, "seq")),
               json_string_value(json_object_get(n, "tip")));
    }
    printf("agree: %s\n", agree ? "yes" : "NO");
    json_decref(nodes);
    return PM_EXIT_OK;
}

static int cluster_export(const cluster_args *a)
{
    char err[512];
    cluster_conn c;
    uint64_t last = 0, expect = 1, txs = 0;
    natsSubscription *sub = NULL;
    outfile out;
    int opened = 0, rc = PM_EXIT_INVALID;
    if (cluster_connect(&c, a->nats, a->stream, err, sizeof err) != 0 ||
        cluster_stream_state(&c, &last, NULL, 0, NULL, err, sizeof err) != 0)
        goto fail;
    if (last == 0) {
        snprintf(err, sizeof err, "stream %s is empty (no header: run cluster init)", a->stream);
        goto fail;
    }
    if (outfile_open_replace(&out, a->out) != 0) {
        pm_cli_error("cluster", "%s", outfile_error(&out, err, sizeof err));
        cluster_close(&c);
        return PM_EXIT_INVALID;
    }
    opened = 1;
    if (cluster_consume(&c, &sub, 1, err, sizeof err) != 0)
        goto fail;
    /* Everything up to the last sequence when we started: a stream that
     * grows meanwhile is exported as of that moment. */
    while (expect <= last) {
        cluster_msg m;
        int r = cluster_next(sub, &m, 10000, err, sizeof err);
        if (r == 0)
            snprintf(err, sizeof err, "stream %s: no message %llu within 10 s", a->stream,
                     (unsigned long long)expect);
        if (r <= 0)
            goto fail;
        if (m.seq != expect) {
            snprintf(err, sizeof err, "stream %s: sequence %llu where %llu was expected (a gap)",
                     a->stream, (unsigned long long)m.seq, (unsigned long long)expect);
            cluster_msg_free(&m);
            goto fail;
        }
        if (expect == 1 && m.kind != CLUSTER_MSG_HEADER) {
            snprintf(err, sizeof err, "stream %s: its first message is not a chain header",
                     a->stream);
            cluster_msg_free(&m);
            goto fail;
        }
        if (m.kind == CLUSTER_MSG_HEADER && expect == 1) {
            outfile_write(&out, m.data, m.size);
        } else if (m.kind == CLUSTER_MSG_TX) {
            uint8_t len[4] = {(uint8_t)m.size, (uint8_t)(m.size >> 8), (uint8_t)(m.size >> 16),
                              (uint8_t)(m.size >> 24)};
            outfile_write(&out, len, 4);
            outfile_write(&out, m.data, m.size);
            txs++;
        } else if (m.kind != CLUSTER_MSG_CUT) {
            snprintf(err, sizeof err, "stream %s: message %llu is not a record or a cut",
                     a->stream, (unsigned long long)m.seq);
            cluster_msg_free(&m);
            goto fail;
        }
        cluster_msg_free(&m);
        expect++;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    sub = NULL;
    if (outfile_commit(&out) != 0) {
        pm_cli_error("cluster", "%s", outfile_error(&out, err, sizeof err));
        outfile_close(&out);
        cluster_close(&c);
        return PM_EXIT_INVALID;
    }
    outfile_close(&out);
    cluster_close(&c);
    fprintf(stderr, "postmark cluster: exported %llu records (sequences 1..%llu) to %s\n",
            (unsigned long long)txs, (unsigned long long)last, a->out);
    return PM_EXIT_OK;
fail:
    pm_cli_error("cluster", "%s", err);
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    if (opened)
        outfile_close(&out);
    cluster_close(&c);
    return rc;
}

int pm_cmd_cluster(int argc, char **argv)
{
    static const struct option options[] = {
        {"nats", required_argument, NULL, 'n'},
        {"stream", required_argument, NULL, 's'},
        {"init", required_argument, NULL, 'I'},
        {"replicas", required_argument, NULL, 'r'},
        {"dup-window", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(cluster_usage, stdout);
        return PM_EXIT_OK;
    }
    if (argc < 2) {
        fputs(cluster_usage, stderr);
        return PM_EXIT_USAGE;
    }
    const char *verb = argv[1];
    cluster_args a = {.replicas = 3, .dup_ms = 120000};
    uint64_t v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "o:", options, NULL)) != -1) {
        switch (c) {
        case 'n': a.nats = optarg; break;
        case 's': a.stream = optarg; break;
        case 'I': a.init = optarg; break;
        case 'o': a.out = optarg; break;
        case 'j': a.json = 1; break;
        case 'r':
        case 'd':
            if (!pm_cli_parse_u64(optarg, 1, c == 'r' ? 5 : 86400000, &v)) {
                pm_cli_error("cluster", "%s: bad value '%s'", c == 'r' ? "--replicas" : "--dup-window",
                             optarg);
                return PM_EXIT_USAGE;
            }
            if (c == 'r')
                a.replicas = (int)v;
            else
                a.dup_ms = (int64_t)v;
            break;
        case 'h': fputs(cluster_usage, stdout); return PM_EXIT_OK;
        default:
            pm_cli_error("cluster", "unknown option or missing argument: %s", argv[optind]);
            fputs(cluster_usage, stderr);
            return PM_EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || !a.nats || !a.stream) {
        pm_cli_error("cluster", "expected --nats URLS --stream NAME and no other argument");
        return PM_EXIT_USAGE;
    }
    if (!strcmp(verb, "init")) {
        if (!a.init) {
            pm_cli_error("cluster", "init needs --init STREAM.pmtx");
            return PM_EXIT_USAGE;
        }
        return cluster_init(&a);
    }
    if (!strcmp(verb, "status"))
        return cluster_status(&a);
    if (!strcmp(verb, "export")) {
        if (!a.out) {
            pm_cli_error("cluster", "export needs -o STREAM.pmtx");
            return PM_EXIT_USAGE;
        }
        return cluster_export(&a);
    }
    pm_cli_error("cluster", "unknown verb '%s' (init, status, export)", verb);
    return PM_EXIT_USAGE;
}
#endif
