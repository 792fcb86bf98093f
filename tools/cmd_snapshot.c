/*
 * cmd_snapshot.c — `postmark snapshot CHAIN -o STATE [--threads N]
 * [--assume-valid HASH] [--json] [--quiet]`: verify a chain file from
 * height 0 as `replay` does, then save the state at its tip to STATE
 * (pm_engine_save_snapshot: STATE.tmp, fsync, rename, fsync of the
 * directory), so that a later run starts from STATE instead of height 0.
 *
 * An invalid chain is reported exactly as replay reports it (the same
 * one-line message and, with --json, the same object) and no snapshot is
 * written: an existing STATE is left as it was.
 */
#include "chainfile.h"
#include "cliutil.h"
#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char snapshot_usage[] =
    "usage: postmark snapshot CHAIN.pmbk -o STATE [--threads N] [--assume-valid BLOCKHASH]\n"
    "                         [--json] [--quiet]\n"
    "\n"
    "Verify every block of CHAIN from height 0 (as replay does), then save the state\n"
    "at its tip to STATE: the UTXO set, operators, series, minted stamps, the tip and\n"
    "the undo data of the last blocks. STATE is replaced atomically (written to\n"
    "STATE.tmp, synced, renamed); an invalid chain leaves it untouched.\n"
    "  -o, --output STATE     the snapshot file to write\n"
    "  --threads N            signature workers (default: online CPUs)\n"
    "  --assume-valid HASH    skip signature checks up to the block with this hash\n"
    "  --json                 one JSON object on stdout\n"
    "  --quiet                no summary on stderr\n"
    "Exit status: 0 saved, 1 invalid chain, unreadable chain or failed write,\n"
    "2 usage error.\n";

static void print_invalid_json(const pm_chain_result *r, int bad_header)
{
    char hex[65];
    printf("{\"valid\": false, \"height\": %llu, ",
           bad_header ? 0ULL : (unsigned long long)r->verdict.block);
    if (!bad_header && r->verdict.tx >= 0)
        printf("\"tx\": %lld, ", (long long)r->verdict.tx);
    else
        printf("\"tx\": null, ");
    printf("\"txid\": \"%s\", ",
           !bad_header && r->verdict.has_txid ? pm_cli_hex(hex, r->verdict.txid, 32) : "");
    printf("\"reason\": \"%s\"}\n",
           pm_reason_name(bad_header ? PM_REASON_BAD_HEADER : r->verdict.reason));
}

int pm_cmd_snapshot(int argc, char **argv)
{
    static const struct option options[] = {
        {"output", required_argument, NULL, 'o'},
        {"threads", required_argument, NULL, 't'},
        {"assume-valid", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out_path = NULL;
    uint64_t threads = 0;
    int json = 0, quiet = 0, have_av = 0, c;
    uint8_t assume_valid[32];
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:", options, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case 't':
            if (!pm_cli_parse_u64(optarg, 1, 1024, &threads)) {
                pm_cli_error("snapshot", "--threads: expected 1..1024, got '%s'", optarg);
                return PM_EXIT_USAGE;
            }
            break;
        case 'a':
            if (!pm_cli_unhex(assume_valid, 32, optarg)) {
                pm_cli_error("snapshot", "--assume-valid: expected 64 hex digits");
                return PM_EXIT_USAGE;
            }
            have_av = 1;
            break;
        case 'j': json = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(snapshot_usage, stdout); return PM_EXIT_OK;
        default:
            pm_cli_error("snapshot", "unknown option or missing argument: %s", argv[optind - 1]);
            fputs(snapshot_usage, stderr);
            return PM_EXIT_USAGE;
        }
    }
    if (argc - optind != 1 || !out_path || !*out_path) {
        pm_cli_error("snapshot", "expected one chain file and -o STATE");
        fputs(snapshot_usage, stderr);
        return PM_EXIT_USAGE;
    }
    const char *path = argv[optind];
    /* As replay: a chain a pack is appending to is taken up to its last
     * whole block (the partial one is being written). */
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
            pm_cli_error("snapshot", "--assume-valid needs a chain file (it is read twice)");
            return PM_EXIT_USAGE;
        }
        int64_t found = pm_chain_find_block(path, assume_valid, err, sizeof err);
        if (found < 0) {
            pm_cli_error("snapshot", "%s", err);
            return PM_EXIT_INVALID;
        }
        assume_upto = (uint64_t)found;
    }
    pm_input f;
    if (pm_input_open(&f, path, quiet, err, sizeof err) != 0) {
        pm_cli_error("snapshot", "%s", err);
        return PM_EXIT_INVALID;
    }
    pm_chain_result r;
    memset(&r, 0, sizeof r);
    if (!f.header_ok || f.kind != PM_FILE_CHAIN) {
        if (!quiet)
            pm_input_refuse_header(&f, "snapshot", PM_FILE_CHAIN);
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
        pm_cli_error("snapshot", "cannot create the engine (out of memory)");
        pm_context_destroy(ctx);
        pm_input_close(&f);
        return PM_EXIT_INVALID;
    }
    int rc = PM_EXIT_INVALID;
    pm_status st = pm_chain_verify(engine, &f, assume_upto, NULL, NULL,
                                   quiet ? NULL : "snapshot", &r, err, sizeof err);
    if (st == PM_OK && appending && r.truncated) {
        if (!quiet)
            fprintf(stderr, "postmark snapshot: %s: a pack is appending to it; using the %llu whole blocks written so far\n",
                    path, (unsigned long long)r.blocks);
        r.truncated = 0;
        r.valid = 1;
    }
    if (st != PM_OK) {
        pm_cli_error("snapshot", "%s: %s", path, st == PM_ERR_IO ? err : pm_engine_last_error(engine));
    } else if (!r.valid) {
        if (!quiet) {
            char hex[65];
            if (r.verdict.tx >= 0)
                pm_cli_error("snapshot", "%s: block %llu at byte %llu: tx %lld%s%s: %s", path,
                             (unsigned long long)r.verdict.block, (unsigned long long)r.offset,
                             (long long)r.verdict.tx, r.verdict.has_txid ? " " : "",
                             r.verdict.has_txid ? pm_cli_hex(hex, r.verdict.txid, 32) : "",
                             pm_reason_name(r.verdict.reason));
            else
                pm_cli_error("snapshot", "%s: block %llu at byte %llu: %s", path,
                             (unsigned long long)r.verdict.block, (unsigned long long)r.offset,
                             pm_reason_name(r.verdict.reason));
        }
        if (json)
            print_invalid_json(&r, 0);
    } else {
        double started = pm_cli_now();
        st = pm_engine_save_snapshot(engine, out_path);
        double seconds = pm_cli_now() - started;
        struct stat sb;
        if (st != PM_OK) {
            /* The engine's message names the file ("snapshot: cannot
             * create STATE.tmp: ..."). */
            const char *msg = pm_engine_last_error(engine);
            pm_cli_error("snapshot", "%s", strncmp(msg, "snapshot: ", 10) == 0 ? msg + 10 : msg);
        } else if (stat(out_path, &sb) != 0) {
            pm_cli_error("snapshot", "%s: %s", out_path, strerror(errno));
        } else {
            rc = PM_EXIT_OK;
            if (json) {
                printf("{\"valid\": true, \"blocks\": %llu, \"txs\": %llu, ",
                       (unsigned long long)r.blocks, (unsigned long long)r.txs);
                if (pm_print_state_json(engine, stdout) != PM_OK)
                    rc = PM_EXIT_INVALID;
                printf(", \"snapshot\": ");
                pm_cli_json_string(stdout, out_path, strlen(out_path));
                printf(", \"bytes\": %llu, \"seconds_replay\": %.6f, \"seconds_save\": %.6f}\n",
                       (unsigned long long)sb.st_size, r.seconds, seconds);
            }
            if (!quiet) {
                int64_t height;
                pm_engine_tip(engine, NULL, &height);
                fprintf(stderr, "postmark snapshot: %s: valid, %llu blocks; state at height %lld (%llu UTXOs) saved to %s, %llu bytes, in %.3f s\n",
                        path, (unsigned long long)r.blocks, (long long)height,
                        (unsigned long long)pm_engine_utxo_count(engine), out_path,
                        (unsigned long long)sb.st_size, seconds);
            }
        }
    }
    pm_engine_destroy(engine);
    pm_context_destroy(ctx);
    pm_input_close(&f);
    return rc;
}
