/*
 * cmd_demo.c — `postmark demo [--dir DIR] [--txs N]`: the whole job on a
 * built-in market, end to end, in a few seconds.
 *
 *   1. gen     a small stamp market with some invalid transactions mixed in
 *   2. pack    it into a new chain (rejects to a CSV)
 *   3. replay  the chain from height 0
 *   4. trace   a stamp that changed hands (one sold, when there is one)
 *
 * Each step runs the subcommand itself (pm_cmd_gen, pm_cmd_pack,
 * pm_cmd_replay, with the argv a user would type), so the demo exercises
 * exactly what a user runs and leaves the same files behind: its --json
 * output is captured into DIR/STEP.json by pointing stdout at the file for
 * the call, and its stderr goes to DIR/demo.log. The figures of the report
 * (accepted, rejected by reason, blocks, tx/s) are read back from those
 * JSON files and the rejects CSV; the trace uses the provenance scan
 * directly (engine/provenance.h) to choose and follow the stamp.
 *
 * The report is a human summary, so it goes to stderr (cli.md); --json
 * prints the same figures as one JSON object on stdout.
 */
#include "cliutil.h"
#include "commands.h"

#include "provenance.h"
#include "recfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char demo_usage[] =
    "usage: postmark demo [--dir DIR] [--txs N] [--seed S] [--block-txs N] [--threads N]\n"
    "                     [--json]\n"
    "\n"
    "Run the whole job on a built-in demo market: generate a stamp market of N\n"
    "transactions with some invalid ones (double spends, bad signatures, conflicts,\n"
    "replays, malformed records), pack it into a new chain, replay the chain from\n"
    "height 0, trace a stamp that changed hands, and report: transactions accepted\n"
    "and rejected by reason, blocks, throughput of pack and replay, the stamp's\n"
    "history.\n"
    "\n"
    "  --dir DIR        keep the files there (market.pmtx, market.pmbk,\n"
    "                   rejects.csv, the JSON of each step, demo.log); default: a\n"
    "                   temporary folder, removed at the end\n"
    "  --txs N          transactions to generate, 100..10000000 (default 5000)\n"
    "  --seed S         generator seed (default 1)\n"
    "  --block-txs N    block transaction limit, 1..65536 (default 1000)\n"
    "  --threads N      signature workers, 1..1024 (default: online CPUs)\n"
    "  --json           the figures as one JSON object on stdout\n"
    "  --help           this text\n"
    "\n"
    "Exit status: 0 the demo ran and the chain replayed valid; 1 a step failed\n"
    "(its messages are shown); 2 usage error.\n";

typedef struct {
    char dir[4096];
    int temporary;
    char stream[4200], chain[4200], rejects[4200], log[4200];
    char gen_json[4200], pack_json[4200], replay_json[4200];
} demo_paths;

/* ---------------------------------------------------------------------- */
/* Running a subcommand with its stdout captured.                          */
/* ---------------------------------------------------------------------- */

/* Run fn(argc, argv) with stdout written to out_path and stderr appended
 * to log_path. Returns its exit status, or -1 if the redirection failed. */
static int run_captured(int (*fn)(int, char **), int argc, char **argv, const char *out_path,
                        const char *log_path)
{
    fflush(stdout);
    fflush(stderr);
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
    int rc = -1;
    if (out >= 0 && log >= 0 && saved_out >= 0 && saved_err >= 0 &&
        dup2(out, STDOUT_FILENO) >= 0 && dup2(log, STDERR_FILENO) >= 0) {
        rc = fn(argc, argv);
        fflush(stdout);
        fflush(stderr);
    }
    if (saved_out >= 0) {
        dup2(saved_out, STDOUT_FILENO);
        close(saved_out);
    }
    if (saved_err >= 0) {
        dup2(saved_err, STDERR_FILENO);
        close(saved_err);
    }
    if (out >= 0)
        close(out);
    if (log >= 0)
        close(log);
    return rc;
}

/* Show the log of a failed step. */
static void show_log(const char *log_path)
{
    FILE *f = fopen(log_path, "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f))
        fprintf(stderr, "  | %s", line);
    fclose(f);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    size_t got;
    while (s && (got = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *p = realloc(s, cap * 2);
            if (!p) {
                free(s);
                s = NULL;
                break;
            }
            s = p;
            cap *= 2;
        }
    }
    fclose(f);
    if (s)
        s[n] = 0;
    return s;
}

/* ---------------------------------------------------------------------- */
/* The parts of the step outputs the report needs.                         */
/* ---------------------------------------------------------------------- */

typedef struct {
    uint64_t records, bytes, planned_rejects;
    uint64_t planned[PM_REASON_COUNT];
    double seconds;
    int have_planned;
} gen_figures;

typedef struct {
    uint64_t accepted, rejected, blocks, utxo_count;
    uint64_t by_reason[PM_REASON_COUNT];
    double seconds;
} pack_figures;

typedef struct {
    int valid;
    uint64_t blocks, txs, utxo_count;
    double seconds, tx_per_s;
    char tip[65], digest[65];
} replay_figures;

/* Reason names as gen reports them; the ones the protocol has map to
 * protocol codes, the others are not counted per reason. */
static void parse_planned(gen_figures *g, const char *json)
{
    const char *p = strstr(json, "\"planned_rejects\"");
    if (!p || !(p = strchr(p, '{')))
        return;
    g->have_planned = 1;
    p++;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\n')
            p++;
        if (*p != '"')
            break;
        const char *name = ++p;
        const char *end = strchr(name, '"');
        if (!end)
            break;
        char buf[64];
        size_t len = (size_t)(end - name) < sizeof buf - 1 ? (size_t)(end - name) : sizeof buf - 1;
        memcpy(buf, name, len);
        buf[len] = 0;
        p = strchr(end, ':');
        if (!p)
            break;
        uint64_t n = strtoull(p + 1, (char **)&p, 10);
        pm_reason r;
        if (pm_reason_from_name(pm_context_static, &r, buf))
            g->planned[r] += n;
    }
}

static int read_rejects(pack_figures *pf, const char *csv)
{
    FILE *f = fopen(csv, "r");
    if (!f)
        return 0;
    char line[512];
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        if (first) {
            first = 0;
            continue;
        }
        char *reason = strrchr(line, ',');
        if (!reason)
            continue;
        reason++;
        reason[strcspn(reason, "\r\n")] = 0;
        pm_reason r;
        if (pm_reason_from_name(pm_context_static, &r, reason))
            pf->by_reason[r]++;
    }
    fclose(f);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Choosing the stamp to trace.                                            */
/* ---------------------------------------------------------------------- */

typedef struct {
    uint32_t v[3];
} stamp_id;

static int cmp_stamp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(stamp_id)) < 0 ? -1 : memcmp(a, b, sizeof(stamp_id)) > 0;
}

/* Stamps carried by TRANSFERs, most transferred first (up to max). */
static size_t busiest_stamps(const char *chain, stamp_id *best, size_t max)
{
    pm_recfile *rf = NULL;
    pm_recfile_header h;
    tool_fault fault;
    if (recfile_open(&rf, &h, &fault, chain, PM_BLOCK_MAX_SIZE) != PM_OK)
        return 0;
    size_t n = 0, cap = 0;
    stamp_id *all = NULL;
    pm_recfile_record r;
    while (h.valid && recfile_next(rf, &r, &fault) == 1 && r.bytes && !r.truncated) {
        pm_block blk;
        if (!pm_block_parse(pm_context_static, &blk, NULL, r.bytes, r.size))
            break;
        const uint8_t *txb;
        size_t txsize, cursor = 0;
        while (pm_block_next_tx(pm_context_static, &txb, &txsize, &blk, &cursor)) {
            pm_tx tx;
            if (!pm_tx_parse(pm_context_static, &tx, NULL, txb, txsize) ||
                tx.type != PM_TX_TRANSFER)
                continue;
            for (size_t i = 0; i < tx.n_out; i++) {
                pm_output o;
                pm_tx_output(pm_context_static, &o, &tx, i);
                if (o.kind != PM_OUTPUT_STAMP)
                    continue;
                if (n == cap) {
                    cap = cap ? 2 * cap : 1024;
                    stamp_id *p = realloc(all, cap * sizeof *p);
                    if (!p)
                        goto done;
                    all = p;
                }
                /* Compared with memcmp: the order does not matter, only
                 * that equal stamps sort together. */
                all[n].v[0] = o.operator_id;
                all[n].v[1] = o.series;
                all[n].v[2] = o.serial;
                n++;
            }
        }
    }
done:
    pm_recfile_close(rf);
    if (!n) {
        free(all);
        return 0;
    }
    qsort(all, n, sizeof *all, cmp_stamp);
    /* Keep the `max` longest runs (ties: first in sort order). */
    size_t kept = 0;
    size_t counts[16];
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && !memcmp(&all[j], &all[i], sizeof *all))
            j++;
        size_t c = j - i, k = kept;
        while (k > 0 && counts[k - 1] < c)
            k--;
        if (k < max) {
            size_t last = kept < max ? kept : max - 1;
            for (size_t m = last; m > k; m--) {
                best[m] = best[m - 1];
                counts[m] = counts[m - 1];
            }
            best[k] = all[i];
            counts[k] = c;
            if (kept < max)
                kept++;
        }
        i = j;
    }
    free(all);
    return kept;
}

/* ---------------------------------------------------------------------- */
/* The command.                                                            */
/* ---------------------------------------------------------------------- */

/* Remove the temporary folder the demo made (mkdtemp: nobody else's files
 * are in it), whatever files the steps left there (pack's run journal...). */
static void remove_tree(const demo_paths *p)
{
    DIR *d = opendir(p->dir);
    if (d) {
        struct dirent *e;
        char path[8192];
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(path, sizeof path, "%s/%s", p->dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(p->dir);
}

static void short_key(char out[20], const uint8_t key[32])
{
    char hex[65];
    pm_cli_hex(hex, key, 32);
    memcpy(out, hex, 12);
    memcpy(out + 12, "...", 4);
}

int pm_cmd_demo(int argc, char **argv)
{
    const char *dir = NULL;
    uint64_t txs = 5000, seed = 1, block_txs = 1000, threads = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(demo_usage, stdout);
            return PM_EXIT_OK;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--dir") || !strcmp(a, "--txs") || !strcmp(a, "--seed") ||
                   !strcmp(a, "--block-txs") || !strcmp(a, "--threads")) {
            if (!val) {
                pm_cli_error("demo", "%s needs a value (see postmark demo --help)", a);
                return PM_EXIT_USAGE;
            }
            i++;
            int ok = 1;
            if (!strcmp(a, "--dir"))
                dir = val;
            else if (!strcmp(a, "--txs"))
                ok = pm_cli_parse_u64(val, 100, 10000000, &txs);
            else if (!strcmp(a, "--seed"))
                ok = pm_cli_parse_u64(val, 0, UINT64_MAX, &seed);
            else if (!strcmp(a, "--block-txs"))
                ok = pm_cli_parse_u64(val, 1, PM_BLOCK_MAX_TXS, &block_txs);
            else
                ok = pm_cli_parse_u64(val, 1, 1024, &threads);
            if (!ok) {
                pm_cli_error("demo", "%s: '%s' is not a number in range (see postmark demo --help)",
                             a, val);
                return PM_EXIT_USAGE;
            }
        } else {
            pm_cli_error("demo", "unknown argument '%s' (see postmark demo --help)", a);
            return PM_EXIT_USAGE;
        }
    }

    demo_paths p;
    memset(&p, 0, sizeof p);
    if (dir) {
        if (strlen(dir) >= sizeof p.dir - 32) {
            pm_cli_error("demo", "--dir: path too long");
            return PM_EXIT_USAGE;
        }
        strcpy(p.dir, dir);
        if (mkdir(p.dir, 0755) != 0 && errno != EEXIST) {
            pm_cli_error("demo", "%s: %s", p.dir, strerror(errno));
            return PM_EXIT_INVALID;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(p.dir, sizeof p.dir, "%s/postmark-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(p.dir)) {
            pm_cli_error("demo", "cannot create a temporary folder: %s", strerror(errno));
            return PM_EXIT_INVALID;
        }
        p.temporary = 1;
    }
    snprintf(p.stream, sizeof p.stream, "%s/market.pmtx", p.dir);
    snprintf(p.chain, sizeof p.chain, "%s/market.pmbk", p.dir);
    snprintf(p.rejects, sizeof p.rejects, "%s/rejects.csv", p.dir);
    snprintf(p.log, sizeof p.log, "%s/demo.log", p.dir);
    snprintf(p.gen_json, sizeof p.gen_json, "%s/gen.json", p.dir);
    snprintf(p.pack_json, sizeof p.pack_json, "%s/pack.json", p.dir);
    snprintf(p.replay_json, sizeof p.replay_json, "%s/replay.json", p.dir);
    /* A fresh chain every run: pack would append to an old one (and its
     * run journal would describe the old one). */
    unlink(p.chain);
    {
        char journal[4300];
        snprintf(journal, sizeof journal, "%s.runs", p.chain);
        unlink(journal);
    }
    unlink(p.log);

    int rc = PM_EXIT_INVALID;
    char *text = NULL;
    pm_context *ctx = NULL;
    pm_stamp_trace trace;
    memset(&trace, 0, sizeof trace);
    gen_figures g;
    pack_figures pf;
    replay_figures rp;
    memset(&g, 0, sizeof g);
    memset(&pf, 0, sizeof pf);
    memset(&rp, 0, sizeof rp);
    char n_txs[32], n_seed[32], n_block[32], n_threads[32];
    snprintf(n_txs, sizeof n_txs, "%" PRIu64, txs);
    snprintf(n_seed, sizeof n_seed, "%" PRIu64, seed);
    snprintf(n_block, sizeof n_block, "%" PRIu64, block_txs);
    snprintf(n_threads, sizeof n_threads, "%" PRIu64, threads);

    fprintf(stderr, "postmark demo: working in %s\n", p.dir);

    /* 1. gen */
    {
        char *args[] = {"gen", "--shape", "market", "--txs", n_txs, "--seed", n_seed,
                        "-o", p.stream,
                        "--double-spend-ppm", "8000", "--bad-signature-ppm", "6000",
                        "--conflict-ppm", "4000", "--replay-ppm", "3000",
                        "--malformed-ppm", "2000", "--json", NULL};
        int n = (int)(sizeof args / sizeof args[0]) - 1;
        double t0 = pm_cli_now();
        int r = run_captured(pm_cmd_gen, n, args, p.gen_json, p.log);
        g.seconds = pm_cli_now() - t0;
        if (r != 0) {
            pm_cli_error("demo", "gen failed (exit %d):", r);
            show_log(p.log);
            goto out;
        }
        text = read_text(p.gen_json);
        double v;
        if (text && pm_cli_json_number(text, "records", &v))
            g.records = (uint64_t)v;
        if (text && pm_cli_json_number(text, "planned_rejected", &v))
            g.planned_rejects = (uint64_t)v;
        if (text)
            parse_planned(&g, text);
        free(text);
        text = NULL;
        struct stat st;
        if (stat(p.stream, &st) == 0)
            g.bytes = (uint64_t)st.st_size;
        fprintf(stderr, "  gen     %s transactions (market, seed %s), %" PRIu64
                        " of them planned invalid, %.1f MB, %.2f s\n",
                n_txs, n_seed, g.planned_rejects, (double)g.bytes / 1e6, g.seconds);
    }

    /* 2. pack */
    {
        char *args[] = {"pack", p.stream, "--chain", p.chain, "--rejects", p.rejects,
                        "--block-txs", n_block, "--json", "--quiet",
                        threads ? "--threads" : NULL, n_threads, NULL};
        int n = threads ? 12 : 10;
        int r = run_captured(pm_cmd_pack, n, args, p.pack_json, p.log);
        if (r != 0) {
            pm_cli_error("demo", "pack failed (exit %d):", r);
            show_log(p.log);
            goto out;
        }
        text = read_text(p.pack_json);
        double v;
        if (!text || !pm_cli_json_number(text, "accepted", &v)) {
            pm_cli_error("demo", "%s: no \"accepted\" in pack's output", p.pack_json);
            goto out;
        }
        pf.accepted = (uint64_t)v;
        if (pm_cli_json_number(text, "rejected", &v))
            pf.rejected = (uint64_t)v;
        if (pm_cli_json_number(text, "blocks", &v))
            pf.blocks = (uint64_t)v;
        if (pm_cli_json_number(text, "utxo_count", &v))
            pf.utxo_count = (uint64_t)v;
        if (pm_cli_json_number(text, "seconds", &v))
            pf.seconds = v;
        free(text);
        text = NULL;
        read_rejects(&pf, p.rejects);
        double tps = pf.seconds > 0 ? (double)(pf.accepted + pf.rejected) / pf.seconds : 0;
        fprintf(stderr, "  pack    %" PRIu64 " accepted, %" PRIu64 " rejected, %" PRIu64
                        " blocks (at most %s transactions each), %.0f tx/s\n",
                pf.accepted, pf.rejected, pf.blocks, n_block, tps);
        for (int r2 = 1; r2 < PM_REASON_COUNT; r2++) {
            if (!pf.by_reason[r2] && !(g.have_planned && g.planned[r2]))
                continue;
            fprintf(stderr, "          %-20s %6" PRIu64, pm_reason_name((pm_reason)r2),
                    pf.by_reason[r2]);
            if (g.have_planned)
                fprintf(stderr, "   (planned by gen: %" PRIu64 ")", g.planned[r2]);
            fputc('\n', stderr);
        }
    }

    /* 3. replay */
    {
        char *args[] = {"replay", p.chain, "--json", "--quiet",
                        threads ? "--threads" : NULL, n_threads, NULL};
        int n = threads ? 6 : 4;
        int r = run_captured(pm_cmd_replay, n, args, p.replay_json, p.log);
        text = read_text(p.replay_json);
        double v;
        rp.valid = r == 0 && text && strstr(text, "\"valid\": true") != NULL;
        if (text && pm_cli_json_number(text, "blocks", &v))
            rp.blocks = (uint64_t)v;
        if (text && pm_cli_json_number(text, "txs", &v))
            rp.txs = (uint64_t)v;
        if (text && pm_cli_json_number(text, "utxo_count", &v))
            rp.utxo_count = (uint64_t)v;
        if (text && pm_cli_json_number(text, "seconds", &v))
            rp.seconds = v;
        if (text && pm_cli_json_number(text, "tx_per_s", &v))
            rp.tx_per_s = v;
        free(text);
        text = NULL;
        if (!rp.valid) {
            pm_cli_error("demo", "replay of the packed chain failed (exit %d):", r);
            show_log(p.log);
            goto out;
        }
        fprintf(stderr, "  replay  valid: %" PRIu64 " blocks, %" PRIu64 " transactions, %" PRIu64
                        " unspent outputs, %.3f s, %.0f tx/s\n",
                rp.blocks, rp.txs, rp.utxo_count, rp.seconds, rp.tx_per_s);
        if (rp.txs != pf.accepted || rp.blocks != pf.blocks || rp.utxo_count != pf.utxo_count) {
            pm_cli_error("demo", "replay disagrees with pack (%" PRIu64 " vs %" PRIu64
                                 " transactions, %" PRIu64 " vs %" PRIu64 " blocks)",
                         rp.txs, pf.accepted, rp.blocks, pf.blocks);
            goto out;
        }
    }

    /* 4. trace: the most transferred stamp, preferring one that was sold. */
    ctx = pm_context_create();
    if (!ctx) {
        pm_cli_error("demo", "out of memory");
        goto out;
    }
    {
        stamp_id cand[8];
        size_t nc = busiest_stamps(p.chain, cand, 8);
        int chosen = 0;
        double t0 = pm_cli_now();
        for (size_t i = 0; i < nc; i++) {
            pm_stamp_trace t;
            tool_fault e;
            if (pm_trace_stamp(ctx, &t, &e, p.chain, cand[i].v[0], cand[i].v[1], cand[i].v[2]) !=
                    PM_OK ||
                !t.issued) {
                pm_stamp_trace_free(&t);
                continue;
            }
            size_t trades = 0;
            for (size_t k = 0; k < t.n_events; k++)
                trades += t.events[k].n_price != 0;
            if (!chosen || trades) {
                pm_stamp_trace_free(&trace);
                trace = t;
                chosen = 1;
            } else {
                pm_stamp_trace_free(&t);
            }
            if (trades)
                break;
        }
        double seconds = pm_cli_now() - t0;
        if (!chosen) {
            fprintf(stderr, "  trace   no stamp changed hands in this market\n");
        } else {
            fprintf(stderr, "  trace   stamp %" PRIu32 ":%" PRIu32 ":%" PRIu32, trace.operator_id,
                    trace.series, trace.serial);
            if (trace.operator_known)
                fprintf(stderr, " of %s", trace.operator_name);
            if (trace.series_known)
                fprintf(stderr, ", \"%s\" (edition of %" PRIu32 ")", trace.series_title,
                        trace.max_supply);
            fprintf(stderr, "  [%.3f s]\n", seconds);
            for (size_t k = 0; k < trace.n_events; k++) {
                const pm_stamp_event *ev = &trace.events[k];
                char from[20], to[20];
                short_key(from, ev->from);
                short_key(to, ev->to);
                if (ev->is_issue) {
                    fprintf(stderr, "          height %-4" PRIu64 " issued to %s\n", ev->height,
                            to);
                    continue;
                }
                fprintf(stderr, "          height %-4" PRIu64 " %s -> %s", ev->height, from, to);
                if (!memcmp(ev->from, ev->to, 32))
                    fputs("  (same owner)", stderr);
                else if (!ev->n_price)
                    fputs("  (gift)", stderr);
                for (size_t q = 0; q < ev->n_price; q++)
                    fprintf(stderr, "%s%" PRIu64 " credits of issuer %" PRIu32,
                            q ? " + " : "  sold for ", ev->price[q].amount, ev->price[q].issuer);
                fputc('\n', stderr);
            }
            char hex[65];
            fprintf(stderr, "          owner now %s\n", pm_cli_hex(hex, trace.owner, 32));
        }
    }

    if (json) {
        json_t *rejects = json_object();
        for (int r2 = 1; r2 < PM_REASON_COUNT; r2++)
            if (pf.by_reason[r2])
                json_object_set_new(rejects, pm_reason_name((pm_reason)r2),
                                    json_integer((json_int_t)pf.by_reason[r2]));
        json_t *o = json_pack(
            "{s:o,s:b,s:I,s:I,s:I,s:I,s:o,s:I,s:f,s:f,s:b,s:f,s:f,s:I}", "dir",
            pm_cli_json_text(p.dir, strlen(p.dir)), "kept", !p.temporary, "generated",
            (json_int_t)txs, "planned_rejected", (json_int_t)g.planned_rejects, "accepted",
            (json_int_t)pf.accepted, "rejected", (json_int_t)pf.rejected, "rejects", rejects,
            "blocks", (json_int_t)pf.blocks, "pack_seconds", pf.seconds, "pack_tx_per_s",
            pf.seconds > 0 ? (double)(pf.accepted + pf.rejected) / pf.seconds : 0.0,
            "replay_valid", 1, "replay_seconds", rp.seconds, "replay_tx_per_s", rp.tx_per_s,
            "utxo_count", (json_int_t)rp.utxo_count);
        if (o && trace.issued) {
            char stamp[48];
            snprintf(stamp, sizeof stamp, "%" PRIu32 ":%" PRIu32 ":%" PRIu32, trace.operator_id,
                     trace.series, trace.serial);
            json_object_set_new(o, "traced", json_pack("{s:s,s:I,s:o}", "stamp", stamp, "events",
                                                       (json_int_t)trace.n_events, "owner",
                                                       pm_cli_json_hex(trace.owner, 32)));
        }
        if (pm_cli_json_print(stdout, o, 1) != 0)
            goto out;
    }
    rc = PM_EXIT_OK;
    if (p.temporary)
        fprintf(stderr, "  (files removed; keep them with --dir DIR)\n");
    else
        fprintf(stderr, "  files in %s: market.pmtx market.pmbk rejects.csv gen.json pack.json "
                        "replay.json demo.log\n",
                p.dir);

out:
    free(text);
    pm_stamp_trace_free(&trace);
    pm_context_destroy(ctx);
    if (p.temporary && rc == PM_EXIT_OK)
        remove_tree(&p);
    else if (p.temporary)
        fprintf(stderr, "postmark demo: files kept in %s for inspection\n", p.dir);
    if (fflush(stdout) != 0)
        rc = PM_EXIT_INVALID;
    return rc;
}
