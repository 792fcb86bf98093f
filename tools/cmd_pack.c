/*
 * cmd_pack.c — `postmark pack STREAM --chain CHAIN [--threads N]
 * [--block-txs N] [--rejects FILE.csv] [--json] [--quiet]` (cli.md): validate
 * CHAIN, pack STREAM on top of its state, append the new blocks.
 *
 * Durability: each block is appended and fdatasync'ed as the engine emits
 * it, after the rejects reported before it (so a crash never leaves a
 * durable block whose earlier rejects are lost). The chain is locked
 * (flock) for the whole run so two packs never append at once; `replay`
 * takes a shared lock to know whether a partial last block is one being
 * written. A partial last record left by a crash is cut off before
 * packing, and re-running the same command resumes where the durable
 * blocks end (resume.h). SIGINT and SIGTERM stop reading, finish and sync
 * the open block, and exit 1 with a message.
 */
#include "chainfile.h"
#include "cliutil.h"
#include "commands.h"
#include "resume.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char pack_usage[] =
    "usage: postmark pack STREAM.pmtx --chain CHAIN.pmbk [--threads N] [--block-txs N]\n"
    "                     [--rejects FILE.csv] [--block-interval MS] [--from-snapshot STATE]\n"
    "                     [--save-snapshot STATE --snapshot-every N] [--json] [--quiet]\n"
    "\n"
    "Validate CHAIN (created when missing or empty, with STREAM's header), pack the\n"
    "transactions of STREAM on top of its state and append the new blocks. STREAM is\n"
    "a file, \"-\" for stdin, or unix:PATH to accept one connection from a node that\n"
    "writes a stream. Rejected transactions are normal: the exit status is 0 however\n"
    "many. Each block is synced to disk as it is appended; re-running the same\n"
    "command after a crash resumes after the last durable block (CHAIN.runs records\n"
    "which stream each run packs).\n"
    "  --threads N          signature workers (default: online CPUs)\n"
    "  --block-txs N        block transaction limit, 1..65536 (default 4096)\n"
    "  --rejects FILE       write index,txid,reason for every rejected transaction\n"
    "  --from-snapshot STATE  start from a snapshot's state; CHAIN must hold its tip\n"
    "                       block, and only the blocks after it are verified\n"
    "  --save-snapshot STATE --snapshot-every N\n"
    "                       write the state to STATE (atomically) every N blocks added\n"
    "  --block-interval MS  also close the open block when it is MS milliseconds old\n"
    "                       (for live feeds; the one option that makes block\n"
    "                       boundaries depend on timing; verdicts never do)\n"
    "  --json               one JSON summary object on stdout\n"
    "  --quiet              no summary or progress on stderr\n"
    "SIGINT/SIGTERM: the open block is finished and synced, then pack exits 1.\n"
    "Exit status: 0 packed, 1 bad header, invalid chain, other network, I/O failure\n"
    "or interrupted, 2 usage error.\n";

typedef struct {
    int chain_fd;
    FILE *rejects;
    int io_error;
    uint64_t blocks_added;
    double last_block_time;
    pm_engine *engine;
    int journal_fd;              /* CHAIN.runs */
    const char *snapshot_path;   /* --save-snapshot */
    uint64_t snapshot_every;
    int snapshot_failed;
} pack_sink;

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void on_block(void *data, const uint8_t *block, size_t size, uint64_t height,
                     const uint8_t hash[32])
{
    pack_sink *s = data;
    if (s->io_error)
        return;
    /* Durable before the block: the rejects reported before it, and the
     * journal line saying how far into the stream it reaches. */
    if (s->rejects && (fflush(s->rejects) != 0 || fdatasync(fileno(s->rejects)) != 0))
        s->io_error = errno ? errno : EIO;
    if (!s->io_error && pm_journal_append_block(s->journal_fd, height, hash,
                                                pm_engine_block_last_index(s->engine)) != 0)
        s->io_error = errno ? errno : EIO;
    if (s->io_error)
        return;
    uint8_t len[4] = {(uint8_t)size, (uint8_t)(size >> 8), (uint8_t)(size >> 16),
                      (uint8_t)(size >> 24)};
    if (write_all(s->chain_fd, len, 4) != 0 || write_all(s->chain_fd, block, size) != 0 ||
        fdatasync(s->chain_fd) != 0)
        s->io_error = errno ? errno : EIO;
    s->blocks_added++;
    s->last_block_time = pm_cli_now();
    /* The state now is exactly this block's: a restart can begin here. */
    if (s->snapshot_path && !s->io_error && s->blocks_added % s->snapshot_every == 0 &&
        pm_engine_save_snapshot(s->engine, s->snapshot_path) != PM_OK && !s->snapshot_failed) {
        s->snapshot_failed = 1;
        pm_cli_error("pack", "%s: %s", s->snapshot_path, pm_engine_last_error(s->engine));
    }
}

static void on_reject(void *data, uint64_t index, const uint8_t *txid, pm_reason reason)
{
    pack_sink *s = data;
    if (!s->rejects)
        return;
    char hex[65];
    fprintf(s->rejects, "%llu,%s,%s\n", (unsigned long long)index,
            txid ? pm_cli_hex(hex, txid, 32) : "", pm_reason_name(reason));
}

/* Open the rejects file once the resume point is known. */
static int open_rejects(pack_sink *sink, const char *path, uint64_t resume_at)
{
    if (!path)
        return 0;
    if (resume_at > 0 && pm_rejects_truncate(path, resume_at) != 0)
        return -1;
    sink->rejects = fopen(path, resume_at > 0 ? "a" : "w");
    if (!sink->rejects)
        return -1;
    if (resume_at == 0 || ftell(sink->rejects) == 0)
        fputs("index,txid,reason\n", sink->rejects);
    return 0;
}

int pm_cmd_pack(int argc, char **argv)
{
    static const struct option options[] = {
        {"chain", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"block-txs", required_argument, NULL, 'b'},
        {"rejects", required_argument, NULL, 'r'},
        {"block-interval", required_argument, NULL, 'i'},
        {"from-snapshot", required_argument, NULL, 'f'},
        {"save-snapshot", required_argument, NULL, 's'},
        {"snapshot-every", required_argument, NULL, 'e'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *chain_path = NULL, *rejects_path = NULL, *from_snapshot = NULL;
    const char *save_snapshot = NULL;
    uint64_t threads = 0, block_txs = PM_DEFAULT_BLOCK_TXS, interval_ms = 0, snapshot_every = 0;
    int json = 0, quiet = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'c': chain_path = optarg; break;
        case 'r': rejects_path = optarg; break;
        case 't':
            if (!pm_cli_parse_u64(optarg, 1, 1024, &threads)) {
                pm_cli_error("pack", "--threads: expected 1..1024, got '%s'", optarg);
                return PM_EXIT_USAGE;
            }
            break;
        case 'b':
            if (!pm_cli_parse_u64(optarg, 1, PM_BLOCK_MAX_TXS, &block_txs)) {
                pm_cli_error("pack", "--block-txs: expected 1..65536, got '%s'", optarg);
                return PM_EXIT_USAGE;
            }
            break;
        case 'i':
            if (!pm_cli_parse_u64(optarg, 1, 86400000, &interval_ms)) {
                pm_cli_error("pack", "--block-interval: expected 1..86400000 ms, got '%s'", optarg);
                return PM_EXIT_USAGE;
            }
            break;
        case 'f': from_snapshot = optarg; break;
        case 's': save_snapshot = optarg; break;
        case 'e':
            if (!pm_cli_parse_u64(optarg, 1, UINT32_MAX, &snapshot_every)) {
                pm_cli_error("pack", "--snapshot-every: expected a number of blocks >= 1, got '%s'", optarg);
                return PM_EXIT_USAGE;
            }
            break;
        case 'j': json = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(pack_usage, stdout); return PM_EXIT_OK;
        default:
            pm_cli_error("pack", "unknown option or missing argument: %s", argv[optind - 1]);
            fputs(pack_usage, stderr);
            return PM_EXIT_USAGE;
        }
    }
    if (argc - optind != 1 || !chain_path) {
        pm_cli_error("pack", "expected one stream and --chain CHAIN");
        fputs(pack_usage, stderr);
        return PM_EXIT_USAGE;
    }
    if ((save_snapshot != NULL) != (snapshot_every != 0)) {
        pm_cli_error("pack", "--save-snapshot and --snapshot-every go together");
        return PM_EXIT_USAGE;
    }
    const char *stream_path = argv[optind];
    char err[512];
    int rc = PM_EXIT_INVALID;
    pm_context *ctx = NULL;
    pm_engine *engine = NULL;
    pm_input stream = {0}, chain = {0};
    pack_sink sink = {.chain_fd = -1, .journal_fd = -1, .snapshot_path = save_snapshot,
                      .snapshot_every = snapshot_every};
    pm_record *recs = malloc(4096 * sizeof *recs);
    if (!recs) {
        pm_cli_error("pack", "out of memory");
        return PM_EXIT_INVALID;
    }

    if (pm_input_open(&stream, stream_path, PM_INPUT_STREAM, (unsigned)interval_ms, quiet, err,
                      sizeof err) != 0) {
        pm_cli_error("pack", "%s", err);
        goto out;
    }
    if (pm_input_refuse_header(&stream, "pack", PM_FILE_STREAM))
        goto out;

    sink.chain_fd = open(chain_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (sink.chain_fd < 0) {
        pm_cli_error("pack", "%s: %s", chain_path, strerror(errno));
        goto out;
    }
    if (flock(sink.chain_fd, LOCK_EX | LOCK_NB) != 0) {
        pm_cli_error("pack", "%s: another pack is appending to this chain (locked)", chain_path);
        goto out;
    }
    struct stat st;
    if (fstat(sink.chain_fd, &st) != 0) {
        pm_cli_error("pack", "%s: %s", chain_path, strerror(errno));
        goto out;
    }
    ctx = pm_context_create();
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = (unsigned)threads;
    cfg.block_max_txs = (uint32_t)block_txs;
    pm_verify_opts verify = {0};
    uint8_t snapshot_tip[32];
    if (!ctx) {
        pm_cli_error("pack", "out of memory");
        goto out;
    }
    if (from_snapshot) {
        char why[400];
        pm_status cs = pm_engine_create_from_snapshot(&engine, ctx, &stream.params, &cfg,
                                                      from_snapshot, why, sizeof why);
        if (cs == PM_ERR_MISMATCH) {
            pm_cli_error("pack", "%s: a snapshot of another chain than %s (network or governance key differs)",
                         from_snapshot, stream_path);
            goto out;
        }
        if (cs != PM_OK) {
            pm_cli_error("pack", "%s: %s", from_snapshot, why);
            goto out;
        }
        int64_t height;
        pm_engine_tip(engine, snapshot_tip, &height);
        verify.start = (uint64_t)(height + 1);
        verify.start_parent = height >= 0 ? snapshot_tip : NULL;
        if (height >= 0 && st.st_size == 0) {
            pm_cli_error("pack", "%s: %s: snapshot tip is not in this chain (it is empty)",
                         from_snapshot, chain_path);
            goto out;
        }
    } else if (pm_engine_create(&engine, ctx, &stream.params, &cfg) != PM_OK) {
        pm_cli_error("pack", "cannot create the engine (out of memory)");
        goto out;
    }
    sink.engine = engine;

    /* The stream's identity needs its first record: read the first batch
     * now (it stays valid until the next read). */
    size_t n = 0, at = 0;
    do {
        if (pm_ingest_next(stream.in, recs, 4096, &n) != PM_OK) {
            pm_cli_error("pack", "%s", pm_ingest_error(stream.in));
            goto out;
        }
    } while (n == 0 && pm_ingest_idle(stream.in) && !stop_signal);
    uint8_t stream_id[32];
    if (!pm_stream_identity(ctx, stream_id, stream.header, n ? recs[0].bytes : NULL,
                            n ? recs[0].size : 0)) {
        pm_cli_error("pack", "out of memory");
        goto out;
    }

    if (st.st_size == 0) {
        uint8_t header[PM_FILE_HEADER_SIZE];
        pm_file_header_encode(pm_context_static, header, PM_FILE_CHAIN, &stream.params);
        if (write_all(sink.chain_fd, header, sizeof header) != 0 || fsync(sink.chain_fd) != 0) {
            pm_cli_error("pack", "%s: %s", chain_path, strerror(errno));
            goto out;
        }
    } else {
        if (pm_input_open(&chain, chain_path, PM_INPUT_CHAIN, 0, quiet, err, sizeof err) != 0) {
            pm_cli_error("pack", "%s", err);
            goto out;
        }
        if (pm_input_refuse_header(&chain, "pack", PM_FILE_CHAIN))
            goto out;
        if (memcmp(&chain.params, &stream.params, sizeof chain.params) != 0) {
            pm_cli_error("pack", "%s and %s belong to different chains (header bytes 8..59 differ)",
                         stream_path, chain_path);
            goto out;
        }
        pm_chain_result r;
        verify.progress = quiet ? NULL : "pack (validating the chain)";
        pm_status vs = pm_chain_verify(engine, &chain, &verify, &r, err, sizeof err);
        if (vs == PM_ERR_STATE) {
            pm_cli_error("pack", "%s: %s: %s", from_snapshot, chain_path, err);
            goto out;
        }
        if (vs != PM_OK) {
            pm_cli_error("pack", "%s: %s", chain_path, vs == PM_ERR_IO ? err : pm_status_text(vs));
            goto out;
        }
        if (!r.valid && !r.truncated) {
            pm_cli_error("pack", "%s: block %llu at byte %llu: invalid chain: %s", chain_path,
                         (unsigned long long)r.verdict.block, (unsigned long long)r.offset,
                         pm_reason_name(r.verdict.reason));
            goto out;
        }
        if (r.truncated) {
            /* A crash cut the last block: cut the partial record. */
            if (ftruncate(sink.chain_fd, (off_t)r.truncated_offset) != 0 ||
                fsync(sink.chain_fd) != 0) {
                pm_cli_error("pack", "%s: cannot cut the partial block: %s", chain_path,
                             strerror(errno));
                goto out;
            }
            fprintf(stderr, "postmark pack: %s: cut a partial block at byte %llu (%llu bytes) left by an interrupted run\n",
                    chain_path, (unsigned long long)r.truncated_offset,
                    (unsigned long long)((uint64_t)st.st_size - r.truncated_offset));
        }
        pm_input_close(&chain);
    }
    /* Resume a crashed run of the same stream, or start a new run. */
    uint8_t tip_hash[32];
    int64_t tip_height;
    uint64_t resume_at = 0;
    pm_engine_tip(engine, tip_hash, &tip_height);
    switch (pm_journal_resume(chain_path, stream_id, tip_height, tip_hash, &resume_at)) {
    case PM_RESUME_NEW_RUN:
        if (pm_journal_append_run(chain_path, stream_id, (uint64_t)(tip_height + 1)) != 0) {
            pm_cli_error("pack", "%s.runs: %s", chain_path, strerror(errno));
            goto out;
        }
        break;
    case PM_RESUME_CONTINUE:
        if (resume_at > 0 && !quiet)
            fprintf(stderr, "postmark pack: %s: resuming at record %llu (the chain holds the records before it)\n",
                    stream_path, (unsigned long long)resume_at);
        break;
    case PM_RESUME_UNKNOWN:
        pm_cli_error("pack", "%s: cannot tell how far %s was packed: %s.runs has no line for the tip block %lld",
                     chain_path, stream_path, chain_path, (long long)tip_height);
        goto out;
    }
    sink.journal_fd = pm_journal_open(chain_path);
    if (sink.journal_fd < 0) {
        pm_cli_error("pack", "%s.runs: %s", chain_path, strerror(errno));
        goto out;
    }
    if (lseek(sink.chain_fd, 0, SEEK_END) < 0) {
        pm_cli_error("pack", "%s: %s", chain_path, strerror(errno));
        goto out;
    }

    pm_engine_set_callbacks(engine, on_block, on_reject, &sink);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pm_stats before;
    pm_engine_stats(engine, &before);
    pm_progress prog;
    pm_progress_start(&prog, "pack", quiet);
    double started = pm_cli_now();
    sink.last_block_time = started;
    uint64_t index = 0;
    if (open_rejects(&sink, rejects_path, resume_at) != 0) {
        pm_cli_error("pack", "%s: %s", rejects_path, strerror(errno));
        goto out;
    }
    pm_status ps = pm_engine_skip_records(engine, resume_at);
    /* n == 0 ends the stream, unless the read only went idle (a live feed
     * with --block-interval): then the block timer runs and reading goes
     * on. */
    while ((n > 0 || pm_ingest_idle(stream.in)) && ps == PM_OK && !stop_signal) {
        for (at = 0; at < n && ps == PM_OK; at++, index++)
            if (index >= resume_at)
                ps = pm_engine_submit(engine, recs[at].bytes, recs[at].size);
        if (ps == PM_OK && interval_ms &&
            (pm_cli_now() - sink.last_block_time) * 1000.0 >= (double)interval_ms) {
            ps = pm_engine_flush(engine);
            sink.last_block_time = pm_cli_now();
        }
        pm_progress_update(&prog, stream.in, index, sink.blocks_added);
        if (ps == PM_OK && !stop_signal && pm_ingest_next(stream.in, recs, 4096, &n) != PM_OK) {
            pm_cli_error("pack", "%s", pm_ingest_error(stream.in));
            goto out;
        }
    }
    pm_progress_end(&prog);
    if (ps == PM_OK && !stop_signal && pm_ingest_truncated(stream.in, NULL, NULL))
        ps = pm_engine_submit_truncated(engine);
    if (ps == PM_OK)
        ps = pm_engine_flush(engine);
    double seconds = pm_cli_now() - started;
    if (ps != PM_OK) {
        pm_cli_error("pack", "%s: %s", stream_path, pm_engine_last_error(engine));
        goto out;
    }
    if (sink.snapshot_failed)
        goto out;
    if (sink.io_error || fsync(sink.chain_fd) != 0) {
        pm_cli_error("pack", "%s: cannot write: %s", chain_path,
                     strerror(sink.io_error ? sink.io_error : errno));
        goto out;
    }
    if (sink.rejects && (fflush(sink.rejects) != 0 || ferror(sink.rejects))) {
        pm_cli_error("pack", "%s: cannot write", rejects_path);
        goto out;
    }
    pm_stats after;
    pm_engine_stats(engine, &after);
    uint64_t accepted = after.txs_accepted - before.txs_accepted;
    uint64_t rejected = after.txs_rejected - before.txs_rejected;
    int64_t height;
    pm_engine_tip(engine, NULL, &height);
    if (json) {
        printf("{\"block_txs\": %llu, \"accepted\": %llu, \"rejected\": %llu, "
               "\"blocks_added\": %llu, \"blocks\": %lld, ",
               (unsigned long long)block_txs, (unsigned long long)accepted,
               (unsigned long long)rejected, (unsigned long long)sink.blocks_added,
               (long long)(height + 1));
        if (pm_print_state_json(engine, stdout) != PM_OK)
            goto out;
        printf(", \"resumed_at\": %llu, \"seconds\": %.6f}\n", (unsigned long long)resume_at,
               seconds);
    }
    if (!quiet)
        fprintf(stderr, "postmark pack: %s: %llu accepted, %llu rejected, %llu blocks added (%.0f tx/s, %s)\n",
                stream_path, (unsigned long long)accepted, (unsigned long long)rejected,
                (unsigned long long)sink.blocks_added,
                seconds > 0 ? (double)(accepted + rejected) / seconds : 0.0,
                pm_ingest_backend(stream.in));
    rc = PM_EXIT_OK;
    if (stop_signal) {
        fprintf(stderr, "postmark pack: stopped by %s after record %llu; the open block was closed and synced; run the same command to continue\n",
                stop_signal == SIGINT ? "SIGINT" : "SIGTERM", (unsigned long long)index);
        rc = PM_EXIT_INVALID;
    }
out:
    if (sink.rejects && fclose(sink.rejects) != 0 && rc == PM_EXIT_OK) {
        pm_cli_error("pack", "%s: cannot write", rejects_path);
        rc = PM_EXIT_INVALID;
    }
    if (sink.chain_fd >= 0)
        close(sink.chain_fd);
    if (sink.journal_fd >= 0)
        close(sink.journal_fd);
    pm_engine_destroy(engine);
    pm_context_destroy(ctx);
    pm_input_close(&chain);
    pm_input_close(&stream);
    free(recs);
    return rc;
}
