/*
 * cmd_replay.c — `postmark replay CHAIN [--threads N] [--assume-valid HASH]
 * [--json] [--quiet]`: verify a chain file from height 0 (cli.md).
 */
#include "chainfile.h"
#include "cliutil.h"
#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/file.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char replay_usage[] =
    "usage: postmark replay CHAIN.pmbk [--threads N] [--assume-valid BLOCKHASH] [--json] [--quiet]\n"
    "\n"
    "Verify every block of CHAIN from height 0 and report the final state.\n"
    "  --threads N            signature workers (default: online CPUs)\n"
    "  --assume-valid HASH    skip signature checks in the block with this hash and\n"
    "                         every block before it, when the chain has such a block\n"
    "  --json                 one JSON object on stdout\n"
    "  --quiet                no summary on stderr\n"
    "Exit status: 0 valid, 1 invalid chain or unreadable file, 2 usage error.\n";

static void print_invalid_json(const pm_chain_result *r, int bad_header)
{
    char hex[65];
    printf("{\"valid\": false, \"height\": %llu, ",
           bad_header ? 0ULL : (unsigned long long)r->verdict.block);
    if (r->verdict.tx >= 0)
        printf("\"tx\": %lld, ", (long long)r->verdict.tx);
    else
        printf("\"tx\": null, ");
    printf("\"txid\": \"%s\", ", r->verdict.has_txid ? pm_cli_hex(hex, r->verdict.txid, 32) : "");
    printf("\"reason\": \"%s\"}\n",
           pm_reason_name(bad_header ? PM_REASON_BAD_HEADER : r->verdict.reason));
}

int pm_cmd_replay(int argc, char **argv)
{
    static const struct option options[] = {
        {"threads", required_argument, NULL, 't'},
        {"assume-valid", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t threads = 0;
    int json = 0, quiet = 0, have_av = 0;
    uint8_t assume_valid[32];
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 't':
            if (!pm_cli_parse_u64(optarg, 1, 1024, &threads)) {
                pm_cli_error("replay", "--threads: expected 1..1024, got '%s'", optarg);
                return PM_EXIT_USAGE;
            }
            break;
        case 'a':
            if (!pm_cli_unhex(assume_valid, 32, optarg)) {
                pm_cli_error("replay", "--assume-valid: expected 64 hex digits");
                return PM_EXIT_USAGE;
            }
            have_av = 1;
            break;
        case 'j': json = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(replay_usage, stdout); return PM_EXIT_OK;
        default:
            pm_cli_error("replay", "unknown option or missing argument: %s", argv[optind - 1]);
            fputs(replay_usage, stderr);
            return PM_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        pm_cli_error("replay", "expected one chain file");
        fputs(replay_usage, stderr);
        return PM_EXIT_USAGE;
    }
    const char *path = argv[optind];
    /* A pack appending to this chain holds an exclusive lock: then a
     * partial last record is a block being written, not damage, and the
     * whole blocks before it are a consistent prefix to verify. */
    int appending = 0;
    int lock_fd = strncmp(path, "unix:", 5) == 0 || strcmp(path, "-") == 0
                      ? -1
                      : open(path, O_RDONLY | O_CLOEXEC);
    if (lock_fd >= 0 && flock(lock_fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK)
        appending = 1;
    if (lock_fd >= 0)
        close(lock_fd);
    char err[512];
    uint64_t assume_upto = 0;
    if (have_av) {
        if (strcmp(path, "-") == 0 || strncmp(path, "unix:", 5) == 0) {
            pm_cli_error("replay", "--assume-valid needs a chain file (it is read twice)");
            return PM_EXIT_USAGE;
        }
        int64_t found = pm_chain_find_block(path, assume_valid, err, sizeof err);
        if (found < 0) {
            pm_cli_error("replay", "%s", err);
            return PM_EXIT_INVALID;
        }
        assume_upto = (uint64_t)found;
    }
    pm_input f;
    if (pm_input_open(&f, path, quiet, err, sizeof err) != 0) {
        pm_cli_error("replay", "%s", err);
        return PM_EXIT_INVALID;
    }
    pm_chain_result r;
    memset(&r, 0, sizeof r);
    if (!f.header_ok || f.kind != PM_FILE_CHAIN) {
        if (!quiet)
            pm_input_refuse_header(&f, "replay", PM_FILE_CHAIN);
        if (json)
            print_invalid_json(&r, 1);
        pm_input_close(&f);
        return PM_EXIT_INVALID;
    }
    pm_context *ctx = pm_context_create();
    pm_config cfg;
    pm_config_default(&cfg);
    cfg.threads = (unsigned)threads;
    pm_engine *engine = NULL;
    if (!ctx || pm_engine_create(&engine, ctx, &f.params, &cfg) != PM_OK) {
        pm_cli_error("replay", "cannot create the engine (out of memory)");
        pm_context_destroy(ctx);
        pm_input_close(&f);
        return PM_EXIT_INVALID;
    }
    int rc = PM_EXIT_OK;
    pm_status st = pm_chain_verify(engine, &f, assume_upto, NULL, NULL, quiet ? NULL : "replay",
                                   &r, err, sizeof err);
    if (st == PM_OK && appending && r.truncated) {
        if (!quiet)
            fprintf(stderr, "postmark replay: %s: a pack is appending to it; verified the %llu whole blocks written so far\n",
                    path, (unsigned long long)r.blocks);
        r.truncated = 0;
        r.valid = 1;
    }
    if (st != PM_OK) {
        pm_cli_error("replay", "%s: %s", path, st == PM_ERR_IO ? err : pm_engine_last_error(engine));
        rc = PM_EXIT_INVALID;
    } else if (!r.valid) {
        rc = PM_EXIT_INVALID;
        if (!quiet) {
            char hex[65];
            if (r.verdict.tx >= 0)
                pm_cli_error("replay", "%s: block %llu at byte %llu: tx %lld%s%s: %s", path,
                             (unsigned long long)r.verdict.block, (unsigned long long)r.offset,
                             (long long)r.verdict.tx, r.verdict.has_txid ? " " : "",
                             r.verdict.has_txid ? pm_cli_hex(hex, r.verdict.txid, 32) : "",
                             pm_reason_name(r.verdict.reason));
            else
                pm_cli_error("replay", "%s: block %llu at byte %llu: %s", path,
                             (unsigned long long)r.verdict.block, (unsigned long long)r.offset,
                             pm_reason_name(r.verdict.reason));
        }
        if (json)
            print_invalid_json(&r, 0);
    } else {
        if (json) {
            printf("{\"valid\": true, \"blocks\": %llu, \"txs\": %llu, ",
                   (unsigned long long)r.blocks, (unsigned long long)r.txs);
            if (pm_print_state_json(engine, stdout) != PM_OK)
                rc = PM_EXIT_INVALID;
            printf(", \"seconds\": %.6f, \"tx_per_s\": %.1f}\n", r.seconds,
                   r.seconds > 0 ? (double)r.txs / r.seconds : 0.0);
        }
        if (!quiet)
            fprintf(stderr, "postmark replay: %s: valid, %llu blocks, %llu transactions, %.3f s (%.0f tx/s, %s)\n",
                    path, (unsigned long long)r.blocks, (unsigned long long)r.txs, r.seconds,
                    r.seconds > 0 ? (double)r.txs / r.seconds : 0.0, pm_ingest_backend(f.in));
    }
    pm_engine_destroy(engine);
    pm_context_destroy(ctx);
    pm_input_close(&f);
    return rc;
}
