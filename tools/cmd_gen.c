/*
 * cmd_gen.c — `postmark gen`: write a seeded synthetic transaction stream
 * (engine/gen.h) and say what a validator will make of it: the records
 * the generator planned as rejects, by reason.
 *
 * The stream is written to FILE.tmp.PID and renamed onto FILE only when
 * complete, so an interrupted or refused run never leaves a partial stream
 * under the name asked for (nor truncates one that was there). A symlink is
 * followed to the file it names; a FIFO or a device is written in place
 * (tools/outfile.h).
 */
#include "cliutil.h"
#include "outfile.h"
#include "commands.h"

#include "gen.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char gen_usage[] =
    "usage: postmark gen --shape market|transfers|large-state --txs N --seed S -o FILE.pmtx\n"
    "                    [--operators N] [--series N] [--collectors N]\n"
    "                    [--double-spend-ppm N] [--bad-signature-ppm N] [--conflict-ppm N]\n"
    "                    [--replay-ppm N] [--malformed-ppm N] [--chain-ppm N] [--other-ppm N]\n"
    "                    [--threads N] [--network NAME] [--chunk N] [--json]\n"
    "\n"
    "Write a synthetic, signed transaction stream: the same options give the same\n"
    "bytes (whatever --threads). The generator models the ledger, so it knows the\n"
    "verdict of every record; the planned rejects by reason are printed on stderr.\n"
    "\n"
    "  --shape S              market: a stamp market with invalid records mixed in;\n"
    "                         transfers: setup then one-input transfers, all valid;\n"
    "                         large-state: mostly 1024-output issues (a large UTXO set)\n"
    "  --txs N                records to write, 1..10000000000 (default 100000)\n"
    "  --seed S               0..2^64-1 (default 1)\n"
    "  -o, --output FILE      the stream to write (replaced when complete)\n"
    "  --operators N          postal operators (shape default)\n"
    "  --series N             series per operator (shape default)\n"
    "  --collectors N         collectors / owners (shape default)\n"
    "  --double-spend-ppm N   rates, in parts per million of the records after the\n"
    "  --bad-signature-ppm N  setup, 0..1000000, of: spends of a spent outpoint;\n"
    "  --conflict-ppm N       wrong signatures; second spends of a recent transfer's\n"
    "  --replay-ppm N         input; repeated earlier records; malformed bytes;\n"
    "  --malformed-ppm N      valid transfers spending the record just before\n"
    "  --chain-ppm N          (in-block chains); the other reject reasons\n"
    "  --other-ppm N          (DUPLICATE_INPUT, NOT_CONSERVED, ...)\n"
    "  --threads N            signing threads, 1..1024 (default: online CPUs)\n"
    "  --network NAME         network name, 1..16 ASCII characters (upu-dpg-test)\n"
    "  --chunk N              records planned and signed at a time, 1..65536\n"
    "                         (default 65536; the bytes depend on it)\n"
    "  --json                 one JSON object on stdout: records, bytes,\n"
    "                         planned_accepted, planned_rejected, planned_rejects\n"
    "                         {REASON: count}, governance_key, seconds\n"
    "  --help                 this text\n"
    "\n"
    "Exit status: 0 written; 1 the file could not be written; 2 usage error.\n";

enum {
    OPT_SHAPE = 256,
    OPT_TXS,
    OPT_SEED,
    OPT_OPERATORS,
    OPT_SERIES,
    OPT_COLLECTORS,
    OPT_DOUBLE_SPEND,
    OPT_BAD_SIG,
    OPT_CONFLICT,
    OPT_REPLAY,
    OPT_MALFORMED,
    OPT_CHAIN,
    OPT_OTHER,
    OPT_THREADS,
    OPT_NETWORK,
    OPT_CHUNK,
    OPT_JSON,
    OPT_HELP
};

static const char *shape_name(pm_gen_shape s)
{
    switch (s) {
    case PM_GEN_MARKET: return "market";
    case PM_GEN_TRANSFERS: return "transfers";
    case PM_GEN_LARGE_STATE: return "large-state";
    }
    return "?";
}

/* A numeric option in [min, max] into *out. Returns 0 (and says why) when
 * the value is not a number in range. */
static int number(const char *opt, const char *val, uint64_t min, uint64_t max, uint64_t *out)
{
    if (pm_cli_parse_u64(val, min, max, out))
        return 1;
    pm_cli_error("gen", "--%s: expected %" PRIu64 "..%" PRIu64 ", got '%s'", opt, min, max, val);
    return 0;
}

int pm_cmd_gen(int argc, char **argv)
{
    static const struct option options[] = {
        {"shape", required_argument, NULL, OPT_SHAPE},
        {"txs", required_argument, NULL, OPT_TXS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"output", required_argument, NULL, 'o'},
        {"operators", required_argument, NULL, OPT_OPERATORS},
        {"series", required_argument, NULL, OPT_SERIES},
        {"collectors", required_argument, NULL, OPT_COLLECTORS},
        {"double-spend-ppm", required_argument, NULL, OPT_DOUBLE_SPEND},
        {"bad-signature-ppm", required_argument, NULL, OPT_BAD_SIG},
        {"conflict-ppm", required_argument, NULL, OPT_CONFLICT},
        {"replay-ppm", required_argument, NULL, OPT_REPLAY},
        {"malformed-ppm", required_argument, NULL, OPT_MALFORMED},
        {"chain-ppm", required_argument, NULL, OPT_CHAIN},
        {"other-ppm", required_argument, NULL, OPT_OTHER},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"network", required_argument, NULL, OPT_NETWORK},
        {"chunk", required_argument, NULL, OPT_CHUNK},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };

    /* Options are collected first: --shape chooses the defaults the other
     * options then override, wherever it stands on the line. */
    int have_shape = 0, json = 0;
    pm_gen_shape shape = PM_GEN_MARKET;
    const char *out_path = NULL, *network = NULL;
    const char *val[OPT_HELP + 1];
    memset(val, 0, sizeof val);
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        switch (c) {
        case OPT_SHAPE:
            have_shape = 1;
            if (!strcmp(optarg, "market"))
                shape = PM_GEN_MARKET;
            else if (!strcmp(optarg, "transfers"))
                shape = PM_GEN_TRANSFERS;
            else if (!strcmp(optarg, "large-state") || !strcmp(optarg, "large_state"))
                shape = PM_GEN_LARGE_STATE;
            else {
                pm_cli_error("gen", "--shape: market, transfers or large-state, not '%s'", optarg);
                return PM_EXIT_USAGE;
            }
            break;
        case 'o': out_path = optarg; break;
        case OPT_NETWORK: network = optarg; break;
        case OPT_JSON: json = 1; break;
        case OPT_HELP:
        case 'h': fputs(gen_usage, stdout); return PM_EXIT_OK;
        case '?':
        case ':':
            if (optopt && optopt < 256)
                pm_cli_error("gen", "unknown option or missing argument: -%c", optopt);
            else
                pm_cli_error("gen", "unknown option or missing argument: %s",
                             argv[optind - 1]);
            fputs("(see postmark gen --help)\n", stderr);
            return PM_EXIT_USAGE;
        default:
            val[c] = optarg;
            break;
        }
    }
    if (optind < argc) {
        pm_cli_error("gen", "unexpected argument '%s' (see postmark gen --help)", argv[optind]);
        return PM_EXIT_USAGE;
    }
    if (!have_shape || !out_path) {
        pm_cli_error("gen", "--shape and -o FILE are required (see postmark gen --help)");
        return PM_EXIT_USAGE;
    }

    pm_gen_config cfg;
    pm_gen_config_default(&cfg, shape);
    uint64_t v;
    static const struct {
        int opt;
        const char *name;
        uint64_t min, max;
    } ranges[] = {
        {OPT_TXS, "txs", 1, 10000000000ull},
        {OPT_SEED, "seed", 0, UINT64_MAX},
        {OPT_OPERATORS, "operators", 1, UINT32_MAX},
        {OPT_SERIES, "series", 1, UINT32_MAX},
        {OPT_COLLECTORS, "collectors", 1, UINT32_MAX},
        {OPT_DOUBLE_SPEND, "double-spend-ppm", 0, 1000000},
        {OPT_BAD_SIG, "bad-signature-ppm", 0, 1000000},
        {OPT_CONFLICT, "conflict-ppm", 0, 1000000},
        {OPT_REPLAY, "replay-ppm", 0, 1000000},
        {OPT_MALFORMED, "malformed-ppm", 0, 1000000},
        {OPT_CHAIN, "chain-ppm", 0, 1000000},
        {OPT_OTHER, "other-ppm", 0, 1000000},
        {OPT_THREADS, "threads", 1, 1024},
        {OPT_CHUNK, "chunk", 1, 65536},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        const char *s = val[ranges[i].opt];
        if (!s)
            continue;
        if (!number(ranges[i].name, s, ranges[i].min, ranges[i].max, &v))
            return PM_EXIT_USAGE;
        switch (ranges[i].opt) {
        case OPT_TXS: cfg.txs = v; break;
        case OPT_SEED: cfg.seed = v; break;
        case OPT_OPERATORS: cfg.operators = (uint32_t)v; break;
        case OPT_SERIES: cfg.series_per_operator = (uint32_t)v; break;
        case OPT_COLLECTORS: cfg.collectors = (uint32_t)v; break;
        case OPT_DOUBLE_SPEND: cfg.double_spend_ppm = (uint32_t)v; break;
        case OPT_BAD_SIG: cfg.bad_signature_ppm = (uint32_t)v; break;
        case OPT_CONFLICT: cfg.conflict_ppm = (uint32_t)v; break;
        case OPT_REPLAY: cfg.replay_ppm = (uint32_t)v; break;
        case OPT_MALFORMED: cfg.malformed_ppm = (uint32_t)v; break;
        case OPT_CHAIN: cfg.chain_ppm = (uint32_t)v; break;
        case OPT_OTHER: cfg.other_ppm = (uint32_t)v; break;
        case OPT_THREADS: cfg.threads = (unsigned)v; break;
        case OPT_CHUNK: cfg.chunk_records = (uint32_t)v; break;
        }
    }
    if (network) {
        size_t n = strlen(network);
        int ascii = n >= 1 && n <= PM_NETWORK_SIZE;
        for (size_t i = 0; ascii && i < n; i++)
            ascii = network[i] > 0x20 && network[i] < 0x7f;
        if (!ascii) {
            pm_cli_error("gen", "--network: 1..16 printable ASCII characters, got '%s'", network);
            return PM_EXIT_USAGE;
        }
        memset(cfg.network, 0, sizeof cfg.network);
        memcpy(cfg.network, network, n);
    }

    pm_context *ctx = pm_context_create();
    if (!ctx) {
        pm_cli_error("gen", "cannot create the context (out of memory)");
        return PM_EXIT_INVALID;
    }
    /* PATH.tmp.PID renamed into place for a file (or a link to one); a
     * FIFO or a device is written in place. */
    outfile out;
    if (outfile_open_replace(&out, out_path) != 0) {
        char msg[600];
        pm_cli_error("gen", "%s", outfile_error(&out, msg, sizeof msg));
        outfile_close(&out);
        pm_context_destroy(ctx);
        return PM_EXIT_INVALID;
    }

    pm_gen_report rep;
    memset(&rep, 0, sizeof rep);
    tool_fault fault;
    double t0 = pm_cli_now();
    pm_status st = pm_gen_write(ctx, &cfg, out.fd, &rep, &fault);
    if (st == PM_OK && outfile_commit(&out) != 0) {
        st = PM_ERR_IO;
        char text[sizeof fault.message];
        tool_fault_msg(&fault, out.err, "%s",
                       outfile_error(&out, text, sizeof text));
    }
    double seconds = pm_cli_now() - t0;
    int special = !out.regular;
    outfile_close(&out);
    int rc = PM_EXIT_OK;
    if (st != PM_OK) {
        if (st == PM_ERR_ARG) {
            pm_cli_error("gen", "%s (see postmark gen --help)", fault.message[0] ? fault.message : "bad configuration");
            rc = PM_EXIT_USAGE;
        } else {
            pm_cli_error("gen", "%s: %s", out_path,
                         fault.message[0] ? fault.message : pm_status_text(st));
            rc = PM_EXIT_INVALID;
        }
        goto out;
    }

    struct stat sb;
    uint64_t bytes = !special && stat(out_path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    uint64_t rejected = 0;
    for (int r = 1; r < PM_REASON_COUNT; r++)
        rejected += rep.planned[r];
    size_t nlen = strnlen(cfg.network, PM_NETWORK_SIZE);

    pm_cli_note("gen", "%s: %" PRIu64 " records (%s, seed %" PRIu64 "), %.1f MB in %.2f s"
                    "; planned: %" PRIu64 " accepted, %" PRIu64 " rejected",
            out_path, rep.records, shape_name(shape), cfg.seed, (double)bytes / 1e6, seconds,
            rep.planned_accepted, rejected);
    for (int r = 1; r < PM_REASON_COUNT; r++)
        if (rep.planned[r])
            fprintf(stderr, "  %-20s %" PRIu64 "\n", pm_reason_name((pm_reason)r), rep.planned[r]);

    if (json) {
        json_t *planned = json_object();
        for (int r = 1; r < PM_REASON_COUNT; r++)
            if (rep.planned[r])
                json_object_set_new(planned, pm_reason_name((pm_reason)r),
                                    json_integer((json_int_t)rep.planned[r]));
        json_t *o = json_pack("{s:s,s:I,s:I,s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:o,s:f}", "shape",
                              shape_name(shape), "seed", (json_int_t)cfg.seed, "txs", (json_int_t)cfg.txs,
                              "file", pm_cli_json_text(out_path, strlen(out_path)), "network",
                              pm_cli_json_text(cfg.network, nlen), "governance_key",
                              pm_cli_json_hex(rep.governance_key, 32), "records",
                              (json_int_t)rep.records, "bytes", (json_int_t)bytes,
                              "planned_accepted", (json_int_t)rep.planned_accepted,
                              "planned_rejected", (json_int_t)rejected, "planned_rejects", planned,
                              "seconds", seconds);
        if (pm_cli_json_print(stdout, o, 1) != 0)
            rc = PM_EXIT_INVALID;
        if (fflush(stdout) != 0) {
            pm_cli_error("gen", "cannot write the output");
            rc = PM_EXIT_INVALID;
        }
    }
out:
    pm_context_destroy(ctx);
    return rc;
}
