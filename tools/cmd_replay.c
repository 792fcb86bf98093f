/*
 * cmd_replay.c — `postmark replay` and `postmark snapshot`, one code path:
 *
 *   postmark replay CHAIN [--threads N] [--assume-valid HASH]
 *                         [--from-snapshot STATE] [--json] [--quiet]
 *   postmark snapshot CHAIN -o STATE [the same options]
 *
 * Both verify the chain from height 0 — or from the tip of a snapshot,
 * whose block the chain must hold at that height — as cli.md's replay
 * says; snapshot then saves the state at the tip (pm_engine_save_snapshot:
 * STATE.tmp, fsync, rename, fsync of the directory). An invalid chain is
 * reported the same way by both, and snapshot then writes nothing.
 */
#include "chainfile.h"
#include "cliutil.h"
#include "fsutil.h"
#include "outfile.h"
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

static const char replay_usage[] =
    "usage: postmark replay CHAIN.pmbk [--threads N] [--assume-valid BLOCKHASH]\n"
    "                       [--from-snapshot STATE] [--json] [--quiet]\n"
    "\n"
    "Verify every block of CHAIN (a file, or \"-\" for stdin) from height 0 and report\n"
    "the final state. A partial last block is TRUNCATED, unless a pack is appending\n"
    "to CHAIN right now: then the whole blocks written so far are verified.\n"
    "  --threads N            signature workers (default: online CPUs)\n"
    "  --assume-valid HASH    skip signature checks in the block with this hash and\n"
    "                         every block before it, when the chain has such a block\n"
    "  --from-snapshot STATE  start from a snapshot's state (postmark snapshot) and\n"
    "                         verify only the blocks after its tip, which CHAIN must\n"
    "                         hold at that height\n"
    "  --json                 one JSON object on stdout\n"
    "  --quiet                no summary or progress on stderr\n"
    "Exit status: 0 valid, 1 invalid chain or unreadable file, 2 usage error.\n";

static const char snapshot_usage[] =
    "usage: postmark snapshot CHAIN.pmbk -o STATE [--threads N] [--assume-valid BLOCKHASH]\n"
    "                         [--from-snapshot STATE] [--json] [--quiet]\n"
    "\n"
    "Verify CHAIN as replay does, then save the state at its tip to STATE: the UTXO\n"
    "set, operators, series, minted stamps, the tip and the undo data of the last\n"
    "blocks. STATE is replaced atomically (written to STATE.tmp, synced, renamed);\n"
    "an invalid chain leaves it untouched.\n"
    "  -o, --output STATE     the snapshot file to write\n"
    "  (other options as for replay)\n"
    "Exit status: 0 saved, 1 invalid chain, unreadable chain or failed write,\n"
    "2 usage error.\n";

static void print_invalid_json(const pm_chain_result *r, int bad_header)
{
    json_t *o = json_pack("{s:b,s:I}", "valid", 0, "height",
                          bad_header ? (json_int_t)0 : (json_int_t)r->verdict.block);
    if (!o)
        return;
    json_object_set_new(o, "tx", !bad_header && r->verdict.tx >= 0 ? json_integer(r->verdict.tx)
                                                                  : json_null());
    json_object_set_new(o, "txid", !bad_header && r->verdict.has_txid
                                       ? pm_cli_json_hex(r->verdict.txid, 32)
                                       : json_string(""));
    json_object_set_new(o, "reason", json_string(pm_reason_name(
                                         bad_header ? PM_REASON_BAD_HEADER : r->verdict.reason)));
    pm_cli_json_print(stdout, o, 0);
}

/* {"valid": true, "blocks", "txs", and the state's members}, or NULL. */
static json_t *valid_json(pm_engine *engine, const pm_chain_result *r)
{
    json_t *o = json_pack("{s:b,s:I,s:I}", "valid", 1, "blocks", (json_int_t)r->blocks, "txs",
                          (json_int_t)r->txs);
    if (o && pm_state_json(engine, o) != PM_OK) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void print_invalid_line(const char *cmd, const char *path, const pm_chain_result *r)
{
    char hex[65];
    if (r->verdict.tx >= 0)
        pm_cli_error(cmd, "%s: block %llu at byte %llu: tx %lld%s%s: %s", path,
                     (unsigned long long)r->verdict.block, (unsigned long long)r->offset,
                     (long long)r->verdict.tx, r->verdict.has_txid ? " " : "",
                     r->verdict.has_txid ? pm_cli_hex(hex, r->verdict.txid, 32) : "",
                     pm_reason_name(r->verdict.reason));
    else
        pm_cli_error(cmd, "%s: block %llu at byte %llu: %s", path,
                     (unsigned long long)r->verdict.block, (unsigned long long)r->offset,
                     pm_reason_name(r->verdict.reason));
}

/* Save the snapshot and report it. Returns the exit status. */
static int save_snapshot(pm_engine *engine, const char *chain, const char *state,
                         const pm_chain_result *r, int json, int quiet)
{
    double started = pm_cli_now();
    pm_status st = pm_engine_save_snapshot(engine, state);
    double seconds = pm_cli_now() - started;
    struct stat sb;
    if (st != PM_OK) {
        pm_cli_error("snapshot", "%s: %s", state, pm_engine_last_error(engine));
        return PM_EXIT_INVALID;
    }
    if (stat(state, &sb) != 0) {
        pm_cli_error("snapshot", "%s: %s", state, strerror(errno));
        return PM_EXIT_INVALID;
    }
    int rc = PM_EXIT_OK;
    if (json) {
        json_t *o = valid_json(engine, r);
        if (o) {
            json_object_set_new(o, "snapshot", pm_cli_json_text(state, strlen(state)));
            json_object_set_new(o, "bytes", json_integer((json_int_t)sb.st_size));
            json_object_set_new(o, "seconds_replay", json_real(r->seconds));
            json_object_set_new(o, "seconds_save", json_real(seconds));
        }
        if (pm_cli_json_print(stdout, o, 0) != 0)
            rc = PM_EXIT_INVALID;
    }
    if (!quiet) {
        int64_t height;
        pm_engine_tip(engine, NULL, &height);
        pm_cli_note("snapshot", "%s: valid, %llu blocks; state at height %lld (%llu UTXOs) saved to %s, %llu bytes, in %.3f s",
                chain, (unsigned long long)r->blocks, (long long)height,
                (unsigned long long)pm_engine_utxo_count(engine), state,
                (unsigned long long)sb.st_size, seconds);
    }
    return rc;
}

static int run(const char *cmd, int argc, char **argv)
{
    static const struct option options[] = {
        {"threads", required_argument, NULL, 't'},
        {"assume-valid", required_argument, NULL, 'a'},
        {"from-snapshot", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int snapshot = strcmp(cmd, "snapshot") == 0;
    const char *usage = snapshot ? snapshot_usage : replay_usage;
    const char *from_snapshot = NULL, *output = NULL;
    uint64_t threads = 0;
    int json = 0, quiet = 0, have_av = 0;
    uint8_t assume_valid[32];
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, snapshot ? "o:" : "", options, NULL)) != -1) {
        switch (c) {
        case 't':
            if (!pm_cli_parse_u64(optarg, 1, 1024, &threads)) {
                pm_cli_error(cmd, "--threads: expected 1..1024, got '%s'", optarg);
                return PM_EXIT_USAGE;
            }
            break;
        case 'a':
            if (!pm_cli_unhex(assume_valid, 32, optarg)) {
                pm_cli_error(cmd, "--assume-valid: expected 64 hex digits");
                return PM_EXIT_USAGE;
            }
            have_av = 1;
            break;
        case 'f': from_snapshot = optarg; break;
        case 'o':
            if (!snapshot) {
                pm_cli_error(cmd, "unknown option: %s", argv[optind - 1]);
                return PM_EXIT_USAGE;
            }
            output = optarg;
            break;
        case 'j': json = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return PM_EXIT_OK;
        default:
            pm_cli_error(cmd, "unknown option or missing argument: %s", argv[optind - 1]);
            fputs(usage, stderr);
            return PM_EXIT_USAGE;
        }
    }
    if (argc - optind != 1 || (snapshot && !output)) {
        pm_cli_error(cmd, snapshot ? "expected one chain file and -o STATE" : "expected one chain file");
        fputs(usage, stderr);
        return PM_EXIT_USAGE;
    }
    const char *path = argv[optind];
    if (snapshot) {
        const char *inputs[] = {path, from_snapshot, NULL};
        if (outfile_is_input(cmd, "-o", output, inputs))
            return PM_EXIT_INVALID;
    }
    int is_file = strcmp(path, "-") != 0 && strncmp(path, "unix:", 5) != 0;
    /* A pack appending to this chain holds an exclusive lock: then a
     * partial last record is a block being written, not damage, and the
     * whole blocks before it are a consistent prefix to verify. */
    int appending = 0;
    int lock_fd = is_file ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (lock_fd >= 0 && flock(lock_fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK)
        appending = 1;
    if (lock_fd >= 0)
        close(lock_fd);
    tool_fault fault;
    pm_verify_opts opts = {.progress = quiet ? NULL : cmd};
    if (have_av) {
        /* The block is searched for first; the verifying read then checks
         * that the same block is at that place (its hash commits to every
         * block before it), so no verdict rests on bytes read once for the
         * search and once more for the checks. A FIFO or a pipe cannot be
         * searched ahead at all. */
        if (!is_file || pm_path_is_special(path)) {
            pm_cli_error(cmd, "--assume-valid needs a regular chain file (the block is searched for before the signatures are skipped)");
            return PM_EXIT_USAGE;
        }
        int64_t found = pm_chain_find_block(path, assume_valid, &fault);
        if (found < 0) {
            pm_cli_error(cmd, "%s", fault.message);
            return PM_EXIT_INVALID;
        }
        opts.assume_valid_upto = (uint64_t)found;
        opts.assume_valid_hash = found > 0 ? assume_valid : NULL;
    }
    pm_input f;
    if (input_open(&f, path, PM_INPUT_CHAIN, 0, quiet, NULL, &fault) != 0) {
        pm_cli_error(cmd, "%s", fault.message);
        return PM_EXIT_INVALID;
    }
    pm_chain_result r;
    memset(&r, 0, sizeof r);
    if (appending && pm_ingest_bytes(f.in) < PM_FILE_HEADER_SIZE) {
        /* A pack holds the lock and has not written the header yet. */
        pm_cli_error(cmd, "%s: a pack is creating this chain: it has no block yet", path);
        pm_input_close(&f);
        return PM_EXIT_INVALID;
    }
    if (!f.header_ok || f.kind != PM_FILE_CHAIN) {
        if (!quiet)
            pm_input_refuse_header(&f, cmd, PM_FILE_CHAIN);
        if (json)
            print_invalid_json(&r, 1);
        pm_input_close(&f);
        return PM_EXIT_INVALID;
    }
    int rc = PM_EXIT_INVALID;
    pm_context *ctx = pm_context_create();
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = (unsigned)threads;
    pm_engine *engine = NULL;
    uint8_t snapshot_tip[32];
    if (!ctx) {
        pm_cli_error(cmd, "out of memory");
        goto out;
    }
    if (from_snapshot) {
        char why[400];
        pm_status st = pm_engine_create_from_snapshot(&engine, ctx, &f.params, &cfg, from_snapshot,
                                                      why, sizeof why);
        if (st == PM_ERR_MISMATCH) {
            pm_cli_error(cmd, "%s: a snapshot of another chain than %s (network or governance key differs)",
                         from_snapshot, path);
            goto out;
        }
        if (st != PM_OK) {
            pm_cli_error(cmd, "%s: %s", from_snapshot, why);
            goto out;
        }
        int64_t height;
        pm_engine_tip(engine, snapshot_tip, &height);
        opts.start = (uint64_t)(height + 1);
        opts.start_parent = height >= 0 ? snapshot_tip : NULL;
    } else if (pm_engine_create(&engine, ctx, &f.params, &cfg) != PM_OK) {
        pm_cli_error(cmd, "cannot create the engine (out of memory)");
        goto out;
    }
    pm_status st = chain_verify(engine, &f, &opts, &r, &fault);
    if (st == PM_OK && appending && r.truncated) {
        if (!quiet)
            pm_cli_note(cmd, "%s: a pack is appending to it; verified the %llu whole blocks written so far",
                    path, (unsigned long long)r.blocks);
        r.truncated = 0;
        r.valid = 1;
    }
    if (st != PM_OK) {
        if (st == PM_ERR_STATE)
            pm_cli_error(cmd, "%s: %s: %s", from_snapshot, path, fault.message);
        else
            pm_cli_error(cmd, "%s: %s", path, st == PM_ERR_IO ? fault.message : pm_engine_last_error(engine));
    } else if (!r.valid) {
        if (!quiet)
            print_invalid_line(cmd, path, &r);
        if (json)
            print_invalid_json(&r, 0);
    } else if (snapshot) {
        rc = save_snapshot(engine, path, output, &r, json, quiet);
    } else {
        rc = PM_EXIT_OK;
        if (json) {
            json_t *o = valid_json(engine, &r);
            if (o) {
                json_object_set_new(o, "seconds", json_real(r.seconds));
                json_object_set_new(o, "tx_per_s",
                                    json_real(r.seconds > 0 ? (double)r.txs / r.seconds : 0.0));
            }
            if (pm_cli_json_print(stdout, o, 0) != 0)
                rc = PM_EXIT_INVALID;
        }
        if (!quiet)
            pm_cli_note("replay", "%s: valid, %llu blocks, %llu transactions, %.3f s (%.0f tx/s, %s)",
                    path, (unsigned long long)r.blocks, (unsigned long long)r.txs, r.seconds,
                    r.seconds > 0 ? (double)r.txs / r.seconds : 0.0, pm_ingest_backend(f.in));
    }
out:
    pm_engine_destroy(engine);
    pm_context_destroy(ctx);
    pm_input_close(&f);
    return rc;
}

int pm_cmd_replay(int argc, char **argv)
{
    return run("replay", argc, argv);
}

int pm_cmd_snapshot(int argc, char **argv)
{
    return run("snapshot", argc, argv);
}
