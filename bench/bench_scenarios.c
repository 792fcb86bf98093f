/*
 * bench_scenarios.c — the end-to-end scenarios of the benchmark harness
 * (bench/run.sh): the `postmark` program on generated chains, each figure
 * beside the limit it chases, measured in the same run on the same cores.
 *
 *   signatures    TRANSFERS chain (one signature per transaction), replayed
 *                 with the process restricted to N cores (sched_setaffinity,
 *                 as taskset does) for N = 1 .. the cores we may use; beside
 *                 it, on the same N cores, libsecp256k1's
 *                 secp256k1_schnorrsig_verify rate with pre-parsed keys.
 *                 Also `postmark pack` of the same stream on N cores.
 *   assume-valid  the same chain with --assume-valid <tip>: no signature is
 *                 checked, so hashing and the table bound it; beside it,
 *                 single-thread SHA-256 (OpenSSL EVP, as the engine) over the
 *                 same file bytes.
 *   large-state   a LARGE_STATE chain (>= 20M unspent outputs at full size):
 *                 replay rate and the peak resident memory of the process
 *                 (wait4's ru_maxrss), against a replay of the same chain
 *                 cut to its header (the fixed cost).
 *   conflict      a MARKET stream with 10% double spends and 10% in-block
 *                 chains: pack (rejects included) and replay of the chain it
 *                 makes, per N (the ratio to `signatures` is made by
 *                 bench/report.py).
 *
 * The engine is the real command: a child pinned to the cores execs
 * `postmark ... --json` and its own `seconds` is read back (the wall time
 * of the child and its CPU time are kept too). Each figure is the median of
 * --reps runs, with min and max and every run. A probe (the engine run in
 * a forked child through the library, same cores) adds what the command
 * does not print: the pipeline's stage times (pm_stats), the UTXO table's
 * own memory and the minted set's size.
 *
 * Streams and chains are made once in --data (`postmark gen`, `postmark
 * pack`) and reused by a later run when their marker file says they were
 * made by the same program with the same options.
 *
 * Output: one JSON file per scenario in --out (scenario-NAME.json), with
 * "ok": false and an "error" when it could not run. Exit status 0 when
 * every scenario ran, 1 when one failed, 2 on a usage error. Slow figures
 * never fail: goals are ratios, reported, not asserted.
 *
 * usage: bench_scenarios [--postmark PATH] --data DIR --out DIR [--reps R]
 *          [--txs N] [--conflict-txs N] [--large-records N]
 *          [--limit-seconds S] [--max-cores N] [SCENARIO...]
 */
#include "postmark_internal.h"
#include "postmark.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sched.h>
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPS 25
#define MAX_CORES 256
#define TRIPLES 4096
#define CHILD_OUT (1u << 16)

/* ---- options and the cores we may use --------------------------------- */

typedef struct {
    const char *postmark;
    const char *data;
    const char *out;
    int reps;
    uint64_t txs;
    uint64_t conflict_txs;
    uint64_t large_records;
    double limit_seconds;
    int max_cores;
} options;

static options opt;
static int cpus[MAX_CORES]; /* CPU numbers of our affinity mask */
static int n_cpus;
static char errlog[4096];   /* children's stderr, kept for failures */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the calling thread. */
static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Restrict the calling process to the first n CPUs of our mask. */
static void pin_to_cores(int n)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < n && i < n_cpus; i++)
        CPU_SET(cpus[i], &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        perror("bench_scenarios: sched_setaffinity");
}

static void load_cpus(void)
{
    cpu_set_t set;
    n_cpus = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE && n_cpus < MAX_CORES; c++)
            if (CPU_ISSET(c, &set))
                cpus[n_cpus++] = c;
    if (n_cpus == 0) {
        n_cpus = 1;
        cpus[0] = 0;
    }
}

/* ---- samples: median, min, max ---------------------------------------- */

typedef struct {
    double v[MAX_REPS];
    int n;
} samples;

static void add(samples *s, double x)
{
    if (s->n < MAX_REPS)
        s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const samples *s)
{
    if (s->n == 0)
        return 0;
    double v[MAX_REPS];
    memcpy(v, s->v, (size_t)s->n * sizeof *v);
    qsort(v, (size_t)s->n, sizeof *v, cmp_double);
    return s->n % 2 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
}

static double smin(const samples *s)
{
    double m = s->n ? s->v[0] : 0;
    for (int i = 1; i < s->n; i++)
        m = s->v[i] < m ? s->v[i] : m;
    return m;
}

static double smax(const samples *s)
{
    double m = s->n ? s->v[0] : 0;
    for (int i = 1; i < s->n; i++)
        m = s->v[i] > m ? s->v[i] : m;
    return m;
}

static void json_samples(FILE *f, const char *name, const samples *s)
{
    fprintf(f, "\"%s\": {\"median\": %.6g, \"min\": %.6g, \"max\": %.6g, \"runs\": [", name,
            median(s), smin(s), smax(s));
    for (int i = 0; i < s->n; i++)
        fprintf(f, "%s%.6g", i ? ", " : "", s->v[i]);
    fprintf(f, "]}");
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

/* ---- reading the children's JSON -------------------------------------- */

/* The number after "key": in a flat JSON object; NAN-free: 0 and *found 0
 * when absent. */
static double json_number(const char *buf, const char *key, int *found)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(buf, pat);
    if (found)
        *found = p != NULL;
    if (!p)
        return 0;
    p += strlen(pat);
    while (*p == ' ' || *p == ':')
        p++;
    return strtod(p, NULL);
}

/* The string after "key": into out (at most cap - 1 characters). */
static int json_string(const char *buf, const char *key, char *out, size_t cap)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(buf, pat);
    out[0] = 0;
    if (!p)
        return 0;
    p += strlen(pat);
    while (*p == ' ' || *p == ':')
        p++;
    if (*p++ != '"')
        return 0;
    size_t n = 0;
    while (*p && *p != '"' && n + 1 < cap)
        out[n++] = *p++;
    out[n] = 0;
    return 1;
}

/* ---- scenario bookkeeping ---------------------------------------------- */

typedef struct {
    const char *name;
    char error[1024];
    int failed;
} scenario;

static void fail(scenario *sc, const char *fmt, ...)
{
    if (sc->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sc->error, sizeof sc->error, fmt, ap);
    va_end(ap);
    sc->failed = 1;
    fprintf(stderr, "bench_scenarios: %s: %s\n", sc->name, sc->error);
}

static void json_escape(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", (unsigned)(unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_loadavg(FILE *f, const char *name)
{
    double l[3] = {0, 0, 0};
    if (getloadavg(l, 3) < 0)
        l[0] = l[1] = l[2] = -1;
    fprintf(f, "\"%s\": [%.2f, %.2f, %.2f]", name, l[0], l[1], l[2]);
}

/* ---- children: the `postmark` program ---------------------------------- */

typedef struct {
    int ok;          /* exited with status 0 */
    double wall;     /* fork to exit */
    double cpu;      /* user + system seconds of the child */
    long maxrss_kb;  /* peak resident set */
    char out[CHILD_OUT];
} child_run;

/* Print the last lines of the children's stderr log. */
static void show_errlog(void)
{
    FILE *f = fopen(errlog, "r");
    if (!f)
        return;
    char line[1024];
    char tail[8][1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        snprintf(tail[n++ % 8], sizeof tail[0], "%s", line);
    fclose(f);
    for (int i = n > 8 ? n - 8 : 0; i < n; i++)
        fprintf(stderr, "  | %s", tail[i % 8]);
}

/* Run argv (argv[0] a path) on the first `cores` CPUs, its stdout read
 * into r->out, its stderr into errlog. Returns r->ok. */
static int run_child(child_run *r, int cores, char *const argv[])
{
    memset(r, 0, sizeof *r);
    int fds[2];
    if (pipe(fds) != 0)
        return 0;
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    if (pid == 0) {
        pin_to_cores(cores);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        int e = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (e >= 0) {
            dup2(e, 2);
            close(e);
        }
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t got;
    while ((got = read(fds[0], r->out + len, CHILD_OUT - 1 - len)) > 0 || (got < 0 && errno == EINTR))
        if (got > 0)
            len += (size_t)got;
    r->out[len] = 0;
    close(fds[0]);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
        ;
    r->wall = now() - t0;
    r->cpu = tv_seconds(ru.ru_utime) + tv_seconds(ru.ru_stime);
    r->maxrss_kb = ru.ru_maxrss;
    r->ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!r->ok) {
        fprintf(stderr, "bench_scenarios: failed (%s %d):", WIFEXITED(status) ? "exit" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        for (int i = 0; argv[i]; i++)
            fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, "\n");
        show_errlog();
    }
    return r->ok;
}

/* ---- the limits, each in a child pinned like the engine ---------------- */

typedef struct {
    secp256k1_xonly_pubkey key;
    uint8_t msg[32];
    uint8_t sig[64];
} triple;

static triple *triples;

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int make_triples(void)
{
    secp256k1_context *secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    triples = calloc(TRIPLES, sizeof *triples);
    if (!secp || !triples)
        return 0;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < TRIPLES; i++) {
        uint8_t seckey[32];
        secp256k1_keypair kp;
        do {
            for (int j = 0; j < 32; j += 8) {
                uint64_t w = xorshift(&x);
                memcpy(seckey + j, &w, 8);
            }
        } while (!secp256k1_keypair_create(secp, &kp, seckey));
        for (int j = 0; j < 32; j += 8) {
            uint64_t w = xorshift(&x);
            memcpy(triples[i].msg + j, &w, 8);
        }
        if (!secp256k1_schnorrsig_sign32(secp, triples[i].sig, triples[i].msg, &kp, NULL) ||
            !secp256k1_keypair_xonly_pub(secp, &triples[i].key, NULL, &kp))
            return 0;
    }
    secp256k1_context_destroy(secp);
    return 1;
}

typedef struct {
    const secp256k1_context *secp;
    double until;
    int first;
    uint64_t done;
    int bad;
} verify_arg;

static void *verify_loop(void *p)
{
    verify_arg *a = p;
    uint64_t n = 0;
    int i = a->first;
    do {
        for (int k = 0; k < 64; k++, n++, i = (i + 1) % TRIPLES)
            if (!secp256k1_schnorrsig_verify(a->secp, triples[i].sig, triples[i].msg, 32,
                                             &triples[i].key))
                a->bad = 1;
    } while (now() < a->until);
    a->done = n;
    return NULL;
}

typedef struct {
    double rate;  /* per second of wall time */
    double count; /* operations done */
    double cpu;   /* CPU seconds of the child */
    double wall;
    int ok;
} limit_run;

/* What a limit child sends back. */
typedef struct {
    double rate;
    double count; /* operations done */
    int ok;
} limit_msg;

typedef limit_msg (*limit_fn)(int cores, const void *arg);

/* Run fn in a child pinned to the first `cores` CPUs. */
static limit_run run_limit(limit_fn fn, int cores, const void *arg)
{
    limit_run r = {0, 0, 0, 0, 0};
    int fds[2];
    if (pipe(fds) != 0)
        return r;
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return r;
    }
    if (pid == 0) {
        close(fds[0]);
        pin_to_cores(cores);
        limit_msg m = fn(cores, arg);
        _exit(write(fds[1], &m, sizeof m) == (ssize_t)sizeof m ? 0 : 1);
    }
    close(fds[1]);
    limit_msg m = {0, 0, 0};
    if (read(fds[0], &m, sizeof m) != (ssize_t)sizeof m)
        m.ok = 0;
    close(fds[0]);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
        ;
    r.wall = now() - t0;
    r.cpu = tv_seconds(ru.ru_utime) + tv_seconds(ru.ru_stime);
    r.rate = m.rate;
    r.count = m.count;
    r.ok = m.ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return r;
}

/* schnorrsig_verify with pre-parsed keys, `cores` threads, for *seconds. */
static limit_msg verify_limit(int cores, const void *arg)
{
    double seconds = *(const double *)arg;
    limit_msg m = {0, 0, 0};
    secp256k1_context *secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    pthread_t th[MAX_CORES];
    verify_arg a[MAX_CORES];
    double start = now();
    int started = 0;
    for (int i = 0; i < cores; i++) {
        a[i] = (verify_arg){secp, start + seconds, i * (TRIPLES / cores), 0, 0};
        if (pthread_create(&th[i], NULL, verify_loop, &a[i]) != 0)
            break;
        started++;
    }
    uint64_t total = 0;
    int bad = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        total += a[i].done;
        bad |= a[i].bad;
    }
    m.count = (double)total;
    m.rate = (double)total / (now() - start);
    m.ok = started == cores && !bad;
    secp256k1_context_destroy(secp);
    return m;
}

typedef struct {
    const char *path;
    double seconds;
} sha_arg;

/* SHA-256 (OpenSSL EVP, one thread) over the file's bytes held in memory,
 * repeated for at least a->seconds: bytes per second. */
static limit_msg sha256_limit(int cores, const void *arg)
{
    (void)cores;
    const sha_arg *a = arg;
    limit_msg m = {0, 0, 0};
    int fd = open(a->path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0)
        return m;
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size);
    size_t have = 0;
    while (buf && have < size) {
        ssize_t got = read(fd, buf + have, size - have);
        if (got <= 0)
            break;
        have += (size_t)got;
    }
    close(fd);
    if (!buf || have != size) {
        free(buf);
        return m;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const EVP_MD *md = EVP_sha256();
    uint8_t out[32];
    uint64_t bytes = 0;
    double start = now();
    m.ok = ctx != NULL;
    do {
        /* Updates of 64 KiB: the engine hashes records, not whole files,
         * but no sensible chunk size changes SHA-256's rate. */
        m.ok &= EVP_DigestInit_ex(ctx, md, NULL);
        for (size_t off = 0; off < size && m.ok; off += 65536)
            m.ok &= EVP_DigestUpdate(ctx, buf + off, size - off < 65536 ? size - off : 65536);
        m.ok &= EVP_DigestFinal_ex(ctx, out, NULL);
        bytes += size;
    } while (m.ok && now() - start < a->seconds);
    m.count = (double)bytes;
    m.rate = (double)bytes / (now() - start);
    EVP_MD_CTX_free(ctx);
    free(buf);
    return m;
}

/* ---- the probe: the engine through the library, stage times and memory - */

typedef struct {
    int ok;
    double seconds;         /* inside pm_engine_connect_blocks, all calls */
    double seconds_verify;  /* pm_stats: wall time of the parallel steps */
    double seconds_commit;  /* pm_stats: the committing thread's time */
    /* The stage table: CPU seconds. */
    double seconds_hash;    /* pm_stats: parse and hash, summed over workers */
    double cpu_total;       /* the whole process while connecting and reading */
    double cpu_read;        /* the probe's thread reading the file */
    double cpu_caller;      /* the probe's thread inside pm_engine_connect_blocks */
    pm_stage_seconds stage; /* the committing thread's split (engine internal) */
    uint64_t txs, blocks, signatures;
    uint64_t utxos, minted;
    uint64_t table_bytes;   /* pm_utxo_table_memory */
    uint64_t table_cells;   /* slots of the bucket array */
    char table_backend[16]; /* "jemalloc" or "malloc" */
    long maxrss_kb;
    char error[256];
} probe_msg;

typedef struct {
    const char *chain;
    uint64_t assume_valid_upto; /* blocks whose signatures are skipped */
} probe_arg;

#define PROBE_BUFFER (8u << 20) /* as `postmark replay` reads: 8 MiB */

static probe_msg probe_engine(int cores, const probe_arg *a)
{
    probe_msg m;
    memset(&m, 0, sizeof m);
    int fd = open(a->chain, O_RDONLY);
    uint8_t header[PM_FILE_HEADER_SIZE];
    pm_file_kind kind;
    pm_chain_params params;
    if (fd < 0 || read(fd, header, sizeof header) != (ssize_t)sizeof header ||
        !pm_file_header_parse(pm_context_static, &kind, &params, NULL, header, sizeof header) ||
        kind != PM_FILE_CHAIN) {
        snprintf(m.error, sizeof m.error, "%s: not a chain file", a->chain);
        if (fd >= 0)
            close(fd);
        return m;
    }
    pm_context *ctx = pm_context_create();
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = (unsigned)cores;
    pm_engine *engine = NULL;
    uint8_t *buf = malloc(PROBE_BUFFER);
    enum { MAXREC = 1 << 14 };
    const uint8_t **blocks = malloc(MAXREC * sizeof *blocks);
    size_t *sizes = malloc(MAXREC * sizeof *sizes);
    if (!ctx || !buf || !blocks || !sizes || pm_engine_create(&engine, ctx, &params, &cfg) != PM_OK) {
        snprintf(m.error, sizeof m.error, "out of memory");
        goto out;
    }
    size_t have = 0;
    uint64_t position = 0;
    int eof = 0;
    m.ok = 1;
    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    while (m.ok) {
        double r0 = thread_cpu();
        while (!eof && have < PROBE_BUFFER) {
            ssize_t got = read(fd, buf + have, PROBE_BUFFER - have);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                eof = 1;
                break;
            }
            have += (size_t)got;
        }
        m.cpu_read += thread_cpu() - r0;
        size_t pos = 0, n = 0, len;
        const uint8_t *rec;
        int r;
        while (n < MAXREC && (r = pm_record_next(buf, have, &pos, &rec, &len)) == 1) {
            blocks[n] = rec;
            sizes[n++] = len;
        }
        if (n == 0) {
            if (have != 0) {
                snprintf(m.error, sizeof m.error, "a truncated or oversized record");
                m.ok = 0;
            }
            break;
        }
        size_t skip = a->assume_valid_upto > position ? (size_t)(a->assume_valid_upto - position) : 0;
        pm_verdict v;
        double t0 = now(), c0 = thread_cpu();
        pm_status st = pm_engine_connect_blocks(engine, &v, blocks, sizes, n, skip);
        m.seconds += now() - t0;
        m.cpu_caller += thread_cpu() - c0;
        if (st != PM_OK) {
            snprintf(m.error, sizeof m.error, "block %llu: %s",
                     (unsigned long long)(position + v.block),
                     st == PM_ERR_INVALID ? pm_reason_name(v.reason) : pm_engine_last_error(engine));
            m.ok = 0;
            break;
        }
        position += n;
        memmove(buf, buf + pos, have - pos);
        have -= pos;
    }
    if (m.ok) {
        pm_stats s;
        pm_engine_stats(engine, &s);
        m.seconds_verify = s.seconds_verify;
        m.seconds_commit = s.seconds_commit;
        m.seconds_hash = s.seconds_hash;
        m.stage = engine->stage;
        struct rusage ru1;
        getrusage(RUSAGE_SELF, &ru1);
        m.cpu_total = tv_seconds(ru1.ru_utime) + tv_seconds(ru1.ru_stime) -
                      tv_seconds(ru0.ru_utime) - tv_seconds(ru0.ru_stime);
        m.txs = s.txs_accepted;
        m.blocks = s.blocks_connected;
        m.signatures = s.signatures_verified;
        m.utxos = pm_engine_utxo_count(engine);
        /* Internal views (the bench links the static library): the table's
         * own bytes and the minted set, to say what the RSS holds. */
        pm_utxo_stats us;
        pm_utxo_table_stats(pm_ledger_utxo(engine->ledger), &us);
        m.table_bytes = us.memory;
        m.table_cells = us.cells;
        snprintf(m.table_backend, sizeof m.table_backend, "%s", us.backend);
        m.minted = pm_ledger_minted_count(engine->ledger);
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0)
            m.maxrss_kb = ru.ru_maxrss;
    }
out:
    pm_engine_destroy(engine);
    pm_context_destroy(ctx);
    free(buf);
    free(blocks);
    free(sizes);
    close(fd);
    return m;
}

/* Run the probe in a child pinned to `cores` CPUs. */
static int run_probe(probe_msg *m, int cores, const probe_arg *a)
{
    memset(m, 0, sizeof *m);
    int fds[2];
    if (pipe(fds) != 0)
        return 0;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    if (pid == 0) {
        close(fds[0]);
        pin_to_cores(cores);
        probe_msg r = probe_engine(cores, a);
        _exit(write(fds[1], &r, sizeof r) == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fds[1]);
    size_t have = 0;
    ssize_t got;
    while (have < sizeof *m && ((got = read(fds[0], (char *)m + have, sizeof *m - have)) > 0 ||
                                (got < 0 && errno == EINTR)))
        if (got > 0)
            have += (size_t)got;
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (have != sizeof *m || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        memset(m, 0, sizeof *m);
        snprintf(m->error, sizeof m->error, "the probe died");
    }
    return m->ok;
}

/* The stage table: CPU ns per transaction in each stage, the serial
 * fraction and Amdahl's projection. Serial: what one thread does in order
 * whatever the cores (reading the file, the caller's framing and batch
 * filling, the committer's state changes, merkle roots, block hashes);
 * parallel: parsing and hashing, signatures, and the partitioned state
 * changes, which spread over the workers. `other` (process CPU not in any
 * stage: waiting workers spinning, page faults off the stages) is shown
 * but not projected. Projection at N cores: txs / (serial + parallel / N). */
static void json_stages(FILE *f, const probe_msg *m)
{
    double tx = m->txs ? (double)m->txs : 1.0, ns = 1e9 / tx;
    double commit_serial = m->stage.commit_cpu - m->stage.commit_hashing;
    double caller_other = m->cpu_caller - m->stage.commit_cpu;
    if (caller_other < 0)
        caller_other = 0; /* commit ran on the caller's thread: it is inside */
    double serial = m->cpu_read + caller_other + m->stage.commit_cpu;
    double parallel = m->seconds_hash + m->seconds_verify + m->stage.apply_parallel;
    double other = m->cpu_total - serial - parallel;
    if (other < 0)
        other = 0;
    double frac = ratio(serial, serial + parallel);
    fprintf(f,
            ", \"stages\": {\"ns_per_tx\": {\"read\": %.1f, \"dispatch\": %.1f, "
            "\"parse_hash\": %.1f, \"verify\": %.1f, \"commit_apply\": %.1f, "
            "\"commit_hashing\": %.1f, \"apply_parallel\": %.1f, \"other\": %.1f}, "
            "\"cpu_total_s\": %.6f, \"serial_s\": %.6f, \"parallel_s\": %.6f, "
            "\"serial_fraction\": %.4f, \"blocks_parallel\": %llu, \"blocks_sequential\": %llu, "
            "\"amdahl_tx_s\": {",
            m->cpu_read * ns, caller_other * ns, m->seconds_hash * ns, m->seconds_verify * ns,
            commit_serial * ns, m->stage.commit_hashing * ns, m->stage.apply_parallel * ns,
            other * ns, m->cpu_total, serial, parallel, frac,
            (unsigned long long)m->stage.blocks_parallel,
            (unsigned long long)m->stage.blocks_sequential);
    const int cores[] = {1, 2, 8, 16, 64};
    for (size_t i = 0; i < sizeof cores / sizeof cores[0]; i++)
        fprintf(f, "%s\"%d\": %.1f", i ? ", " : "", cores[i],
                ratio(tx, serial + parallel / cores[i]));
    fprintf(f, "}}");
}

static void json_probe(FILE *f, const probe_msg *m, int cores)
{
    fprintf(f, "\"probe\": {\"cores\": %d, \"ok\": %s", cores, m->ok ? "true" : "false");
    if (!m->ok) {
        fprintf(f, ", \"error\": ");
        json_escape(f, m->error);
        fprintf(f, "}");
        return;
    }
    fprintf(f,
            ", \"seconds\": %.6f, \"seconds_verify\": %.6f, \"seconds_commit\": %.6f, "
            "\"commit_share\": %.4f, \"txs\": %llu, \"blocks\": %llu, "
            "\"signatures_verified\": %llu, \"tx_per_s\": %.1f, \"commit_ceiling_tx_per_s\": %.1f, "
            "\"utxo_count\": %llu, \"minted\": %llu, \"table_bytes\": %llu, "
            "\"table_bytes_per_utxo\": %.2f, \"table_cells\": %llu, \"table_backend\": \"%s\", "
            "\"maxrss_bytes\": %lld",
            m->seconds, m->seconds_verify, m->seconds_commit, ratio(m->seconds_commit, m->seconds),
            (unsigned long long)m->txs, (unsigned long long)m->blocks,
            (unsigned long long)m->signatures, ratio((double)m->txs, m->seconds),
            ratio((double)m->txs, m->seconds_commit), (unsigned long long)m->utxos,
            (unsigned long long)m->minted, (unsigned long long)m->table_bytes,
            ratio((double)m->table_bytes, (double)m->utxos), (unsigned long long)m->table_cells,
            m->table_backend, (long long)m->maxrss_kb * 1024);
    json_stages(f, m);
    fprintf(f, "}");
}

/* ---- workloads: made once, reused ------------------------------------- */

typedef struct {
    char name[64];
    char stream[4096];
    char chain[4096];
    char tip[80];
    uint64_t records;    /* in the stream */
    uint64_t accepted;   /* by pack */
    uint64_t rejected;
    uint64_t utxo_count;
    double gen_seconds, pack_seconds;
    /* counted in the chain file */
    uint64_t blocks, txs, sigs, bytes;
} workload;

/* What identifies the program that made a workload: size and mtime. */
static void program_stamp(char *out, size_t cap)
{
    struct stat st;
    if (stat(opt.postmark, &st) != 0)
        memset(&st, 0, sizeof st);
    snprintf(out, cap, "%s %lld %lld", opt.postmark, (long long)st.st_size,
             (long long)st.st_mtime);
}

/* Count blocks, transactions, signatures and bytes of a chain file. */
static int count_chain(workload *w)
{
    FILE *f = fopen(w->chain, "rb");
    if (!f)
        return 0;
    uint8_t header[PM_FILE_HEADER_SIZE];
    uint8_t *block = malloc(PM_BLOCK_MAX_SIZE);
    int ok = block && fread(header, 1, sizeof header, f) == sizeof header;
    w->blocks = w->txs = w->sigs = 0;
    w->bytes = sizeof header;
    while (ok) {
        uint8_t len4[4];
        size_t got = fread(len4, 1, 4, f);
        if (got == 0)
            break;
        uint32_t len = got == 4 ? pm_read_u32le(len4) : 0;
        if (got != 4 || len > PM_BLOCK_MAX_SIZE || fread(block, 1, len, f) != len) {
            ok = 0;
            break;
        }
        pm_block blk;
        if (!pm_block_parse(pm_context_static, &blk, NULL, block, len)) {
            ok = 0;
            break;
        }
        const uint8_t *tx;
        size_t size, cursor = 0;
        while (pm_block_next_tx(pm_context_static, &tx, &size, &blk, &cursor)) {
            pm_tx t;
            if (pm_tx_parse(pm_context_static, &t, NULL, tx, size))
                w->sigs += t.n_sigs;
            w->txs++;
        }
        w->blocks++;
        w->bytes += 4 + (uint64_t)len;
    }
    free(block);
    fclose(f);
    return ok;
}

static void remove_chain(const char *chain)
{
    char runs[4300];
    unlink(chain);
    snprintf(runs, sizeof runs, "%s.runs", chain);
    unlink(runs);
}

/* Make (or reuse) the stream `name`.pmtx with `postmark gen ARGS...` and
 * its chain `name`.pmbk with `postmark pack`. gen_args ends with NULL. */
static int prepare(scenario *sc, workload *w, const char *name, const char *const *gen_args)
{
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    snprintf(w->stream, sizeof w->stream, "%s/%s.pmtx", opt.data, name);
    snprintf(w->chain, sizeof w->chain, "%s/%s.pmbk", opt.data, name);
    char marker[4200], key[8192], stamp[4400];
    snprintf(marker, sizeof marker, "%s/%s.made", opt.data, name);
    program_stamp(stamp, sizeof stamp);
    size_t kl = (size_t)snprintf(key, sizeof key, "%s |", stamp);
    for (int i = 0; gen_args[i] && kl < sizeof key; i++)
        kl += (size_t)snprintf(key + kl, sizeof key - kl, " %s", gen_args[i]);

    /* Reuse: the marker holds the key line, then gen's and pack's JSON. */
    static char text[3 * CHILD_OUT];
    FILE *f = fopen(marker, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
        fclose(f);
        char *nl = strchr(text, '\n');
        struct stat st;
        if (nl && (size_t)(nl - text) == strlen(key) && memcmp(text, key, strlen(key)) == 0 &&
            stat(w->chain, &st) == 0 && stat(w->stream, &st) == 0) {
            char *pack_json = strchr(nl + 1, '\n');
            if (pack_json) {
                w->records = (uint64_t)json_number(nl + 1, "records", NULL);
                w->gen_seconds = json_number(nl + 1, "seconds", NULL);
                w->accepted = (uint64_t)json_number(pack_json, "accepted", NULL);
                w->rejected = (uint64_t)json_number(pack_json, "rejected", NULL);
                w->utxo_count = (uint64_t)json_number(pack_json, "utxo_count", NULL);
                w->pack_seconds = json_number(pack_json, "seconds", NULL);
                json_string(pack_json, "tip", w->tip, sizeof w->tip);
                if (count_chain(w)) {
                    fprintf(stderr, "bench_scenarios: reusing %s (%s)\n", w->chain, marker);
                    return 1;
                }
            }
        }
        unlink(marker);
    }

    static child_run gen, pack;
    char *argv[64];
    int a = 0;
    argv[a++] = (char *)opt.postmark;
    argv[a++] = "gen";
    for (int i = 0; gen_args[i] && a < 56; i++)
        argv[a++] = (char *)gen_args[i];
    argv[a++] = "-o";
    argv[a++] = w->stream;
    argv[a++] = "--json";
    argv[a] = NULL;
    fprintf(stderr, "bench_scenarios: %s: generating %s\n", sc->name, w->stream);
    if (!run_child(&gen, n_cpus, argv)) {
        fail(sc, "postmark gen failed (%s)", name);
        return 0;
    }
    w->records = (uint64_t)json_number(gen.out, "records", NULL);
    w->gen_seconds = json_number(gen.out, "seconds", NULL);

    remove_chain(w->chain);
    char *pargv[] = {(char *)opt.postmark, "pack", w->stream, "--chain", w->chain, "--json",
                     "--quiet", NULL};
    fprintf(stderr, "bench_scenarios: %s: packing %s\n", sc->name, w->chain);
    if (!run_child(&pack, n_cpus, pargv)) {
        fail(sc, "postmark pack failed (%s)", name);
        return 0;
    }
    w->accepted = (uint64_t)json_number(pack.out, "accepted", NULL);
    w->rejected = (uint64_t)json_number(pack.out, "rejected", NULL);
    w->utxo_count = (uint64_t)json_number(pack.out, "utxo_count", NULL);
    w->pack_seconds = json_number(pack.out, "seconds", NULL);
    if (!json_string(pack.out, "tip", w->tip, sizeof w->tip) || !count_chain(w)) {
        fail(sc, "cannot read the chain %s", w->chain);
        return 0;
    }
    /* The pack's journal is no part of the workload. */
    char runs[4200];
    snprintf(runs, sizeof runs, "%s.runs", w->chain);
    unlink(runs);
    f = fopen(marker, "w");
    if (f) {
        char *g = strchr(gen.out, '\n'), *p = strchr(pack.out, '\n');
        if (g)
            *g = 0;
        if (p)
            *p = 0;
        fprintf(f, "%s\n%s\n%s\n", key, gen.out, pack.out);
        fclose(f);
    }
    return 1;
}

static void json_workload(FILE *f, const workload *w, const char *shape)
{
    fprintf(f,
            "\"workload\": {\"name\": \"%s\", \"shape\": \"%s\", \"records\": %llu, "
            "\"accepted\": %llu, \"rejected\": %llu, \"blocks\": %llu, \"txs\": %llu, "
            "\"signatures\": %llu, \"chain_bytes\": %llu, \"utxo_count\": %llu, \"tip\": \"%s\", "
            "\"gen_seconds\": %.3f, \"pack_seconds\": %.3f}",
            w->name, shape, (unsigned long long)w->records, (unsigned long long)w->accepted,
            (unsigned long long)w->rejected, (unsigned long long)w->blocks,
            (unsigned long long)w->txs, (unsigned long long)w->sigs,
            (unsigned long long)w->bytes, (unsigned long long)w->utxo_count, w->tip,
            w->gen_seconds, w->pack_seconds);
}

/* ---- one measured run of the engine ------------------------------------ */

typedef struct {
    samples tx_s;      /* transactions per second (the command's seconds) */
    samples sig_s;     /* signatures per second */
    samples bytes_s;   /* chain bytes per second */
    samples wall_tx_s; /* transactions per second of the whole command */
    samples cpu;       /* CPU seconds of the process */
    samples sig_cpu;   /* signatures per CPU second */
    samples rss;       /* peak RSS, bytes */
} engine_samples;

/* `postmark replay CHAIN --threads N --json [--assume-valid TIP]` on N
 * cores. */
static int replay_once(scenario *sc, engine_samples *s, const workload *w, const char *chain,
                       int cores, const char *assume_valid)
{
    static child_run r;
    char threads[16];
    snprintf(threads, sizeof threads, "%d", cores);
    char *argv[] = {(char *)opt.postmark, "replay", (char *)chain, "--threads", threads,
                    "--json", "--quiet", assume_valid ? "--assume-valid" : NULL,
                    (char *)assume_valid, NULL};
    if (!run_child(&r, cores, argv)) {
        fail(sc, "postmark replay failed on %d cores (%s)", cores, chain);
        return 0;
    }
    int found;
    double seconds = json_number(r.out, "seconds", &found);
    uint64_t txs = (uint64_t)json_number(r.out, "txs", NULL);
    if (!found || seconds <= 0 || !strstr(r.out, "\"valid\": true")) {
        fail(sc, "postmark replay printed no figure: %.200s", r.out);
        return 0;
    }
    if (w && txs != w->txs) {
        fail(sc, "replay verified %llu transactions, the chain holds %llu",
             (unsigned long long)txs, (unsigned long long)w->txs);
        return 0;
    }
    add(&s->tx_s, (double)txs / seconds);
    if (w) {
        add(&s->sig_s, (double)w->sigs / seconds);
        add(&s->bytes_s, (double)w->bytes / seconds);
        add(&s->sig_cpu, ratio((double)w->sigs, r.cpu));
    }
    add(&s->wall_tx_s, (double)txs / r.wall);
    add(&s->cpu, r.cpu);
    add(&s->rss, (double)r.maxrss_kb * 1024);
    return 1;
}

/* `postmark pack STREAM --chain TMP --threads N --json` on N cores, into a
 * fresh chain each time: records (accepted and rejected) per second. */
static int pack_once(scenario *sc, samples *rec_s, samples *cpu, const workload *w, int cores)
{
    static child_run r;
    char chain[4200], threads[16];
    snprintf(chain, sizeof chain, "%s/%s.packrun.pmbk", opt.data, w->name);
    snprintf(threads, sizeof threads, "%d", cores);
    remove_chain(chain);
    char *argv[] = {(char *)opt.postmark, "pack", (char *)w->stream, "--chain", chain,
                    "--threads", threads, "--json", "--quiet", NULL};
    int ok = run_child(&r, cores, argv);
    remove_chain(chain);
    if (!ok) {
        fail(sc, "postmark pack failed on %d cores (%s)", cores, w->stream);
        return 0;
    }
    double seconds = json_number(r.out, "seconds", NULL);
    uint64_t acc = (uint64_t)json_number(r.out, "accepted", NULL);
    uint64_t rej = (uint64_t)json_number(r.out, "rejected", NULL);
    if (seconds <= 0 || acc != w->accepted || rej != w->rejected) {
        fail(sc, "pack on %d cores: %llu accepted, %llu rejected (expected %llu, %llu)", cores,
             (unsigned long long)acc, (unsigned long long)rej, (unsigned long long)w->accepted,
             (unsigned long long)w->rejected);
        return 0;
    }
    add(rec_s, (double)(acc + rej) / seconds);
    add(cpu, r.cpu);
    return 1;
}

static double limit_duration(double engine_seconds)
{
    double d = engine_seconds;
    if (d < opt.limit_seconds)
        d = opt.limit_seconds;
    if (d > 3 * opt.limit_seconds)
        d = 3 * opt.limit_seconds;
    return d;
}

/* ---- the scenarios ------------------------------------------------------ */

static FILE *open_result(scenario *sc)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/scenario-%s.json", opt.out, sc->name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_scenarios: cannot write %s: %s\n", path, strerror(errno));
        return NULL;
    }
    fprintf(f, "{\"scenario\": \"%s\", \"reps\": %d, \"cpus\": %d, ", sc->name, opt.reps, n_cpus);
    json_loadavg(f, "loadavg_before");
    fprintf(f, ", ");
    return f;
}

static int close_result(scenario *sc, FILE *f, double started)
{
    fprintf(f, ", \"seconds\": %.1f, ", now() - started);
    json_loadavg(f, "loadavg_after");
    fprintf(f, ", \"ok\": %s, \"error\": ", sc->failed ? "false" : "true");
    if (sc->failed)
        json_escape(f, sc->error);
    else
        fprintf(f, "null");
    fprintf(f, "}\n");
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "bench_scenarios: %s: cannot write the result\n", sc->name);
        return 0;
    }
    fprintf(stderr, "bench_scenarios: %s: %s (%.0f s)\n", sc->name, sc->failed ? "FAILED" : "done",
            now() - started);
    return !sc->failed;
}

static int gen_arg_txs(char *buf, size_t cap, uint64_t n)
{
    return snprintf(buf, cap, "%llu", (unsigned long long)n);
}

static int scenario_signatures(void)
{
    scenario sc = {.name = "signatures"};
    double started = now();
    FILE *f = open_result(&sc);
    if (!f)
        return 0;
    workload w;
    char txs[32], name[64];
    gen_arg_txs(txs, sizeof txs, opt.txs);
    snprintf(name, sizeof name, "transfers-%s", txs);
    const char *gen[] = {"--shape", "transfers", "--txs", txs, "--seed", "1", NULL};
    int have = prepare(&sc, &w, name, gen);
    if (have) {
        json_workload(f, &w, "transfers");
        fprintf(f, ", ");
    }
    fprintf(f, "\"rows\": [");
    for (int n = 1; have && n <= n_cpus && !sc.failed; n++) {
        engine_samples e;
        samples lim, lim_cpu, pack, pack_cpu;
        memset(&e, 0, sizeof e);
        memset(&lim, 0, sizeof lim);
        memset(&lim_cpu, 0, sizeof lim_cpu);
        memset(&pack, 0, sizeof pack);
        memset(&pack_cpu, 0, sizeof pack_cpu);
        for (int r = 0; r < opt.reps && !sc.failed; r++) {
            if (!replay_once(&sc, &e, &w, w.chain, n, NULL))
                break;
            /* The limit as long as the replay took (bounded), same cores. */
            double d = limit_duration((double)w.txs / e.tx_s.v[e.tx_s.n - 1]);
            limit_run l = run_limit(verify_limit, n, &d);
            if (!l.ok) {
                fail(&sc, "the schnorrsig_verify limit failed on %d cores", n);
                break;
            }
            add(&lim, l.rate);
            add(&lim_cpu, ratio(l.count, l.cpu));
            if (!pack_once(&sc, &pack, &pack_cpu, &w, n))
                break;
            fprintf(stderr, "bench_scenarios: signatures: %d cores, rep %d: replay %.0f tx/s, "
                            "limit %.0f sig/s, pack %.0f tx/s\n",
                    n, r + 1, e.tx_s.v[e.tx_s.n - 1], l.rate, pack.v[pack.n - 1]);
        }
        if (sc.failed)
            break;
        fprintf(f, "%s{\"cores\": %d, ", n > 1 ? ", " : "", n);
        json_samples(f, "replay_tx_s", &e.tx_s);
        fprintf(f, ", ");
        json_samples(f, "replay_sig_s", &e.sig_s);
        fprintf(f, ", ");
        json_samples(f, "replay_wall_tx_s", &e.wall_tx_s);
        fprintf(f, ", ");
        json_samples(f, "replay_sig_per_cpu_s", &e.sig_cpu);
        fprintf(f, ", ");
        json_samples(f, "limit_sig_s", &lim);
        fprintf(f, ", ");
        json_samples(f, "limit_sig_per_cpu_s", &lim_cpu);
        fprintf(f, ", ");
        json_samples(f, "pack_tx_s", &pack);
        fprintf(f, ", \"ratio\": %.4f, \"ratio_cpu\": %.4f}",
                ratio(median(&e.sig_s), median(&lim)),
                ratio(median(&e.sig_cpu), median(&lim_cpu)));
    }
    fprintf(f, "]");
    if (have && !sc.failed) {
        probe_msg m;
        probe_arg pa = {w.chain, 0};
        run_probe(&m, n_cpus, &pa);
        fprintf(f, ", ");
        json_probe(f, &m, n_cpus);
    }
    return close_result(&sc, f, started);
}

static int scenario_assume_valid(void)
{
    scenario sc = {.name = "assume-valid"};
    double started = now();
    FILE *f = open_result(&sc);
    if (!f)
        return 0;
    workload w;
    char txs[32], name[64];
    gen_arg_txs(txs, sizeof txs, opt.txs);
    snprintf(name, sizeof name, "transfers-%s", txs);
    const char *gen[] = {"--shape", "transfers", "--txs", txs, "--seed", "1", NULL};
    int have = prepare(&sc, &w, name, gen);
    if (have) {
        json_workload(f, &w, "transfers");
        fprintf(f, ", ");
    }
    /* The limit: one thread (CPU 0 of ours), the same bytes. */
    samples sha;
    memset(&sha, 0, sizeof sha);
    for (int r = 0; have && r < opt.reps; r++) {
        sha_arg sa = {w.chain, opt.limit_seconds};
        limit_run l = run_limit(sha256_limit, 1, &sa);
        if (!l.ok) {
            fail(&sc, "the SHA-256 limit failed");
            break;
        }
        add(&sha, l.rate);
    }
    if (have && !sc.failed) {
        json_samples(f, "sha256_bytes_s", &sha);
        fprintf(f, ", ");
    }
    fprintf(f, "\"rows\": [");
    for (int n = 1; have && n <= n_cpus && !sc.failed; n++) {
        engine_samples e;
        memset(&e, 0, sizeof e);
        for (int r = 0; r < opt.reps && !sc.failed; r++) {
            if (!replay_once(&sc, &e, &w, w.chain, n, w.tip))
                break;
            fprintf(stderr, "bench_scenarios: assume-valid: %d cores, rep %d: %.0f tx/s, %.1f MB/s\n",
                    n, r + 1, e.tx_s.v[e.tx_s.n - 1], e.bytes_s.v[e.bytes_s.n - 1] / 1e6);
        }
        if (sc.failed)
            break;
        fprintf(f, "%s{\"cores\": %d, ", n > 1 ? ", " : "", n);
        json_samples(f, "replay_tx_s", &e.tx_s);
        fprintf(f, ", ");
        json_samples(f, "replay_bytes_s", &e.bytes_s);
        fprintf(f, ", ");
        json_samples(f, "replay_wall_tx_s", &e.wall_tx_s);
        fprintf(f, ", \"ratio\": %.4f}", ratio(median(&e.bytes_s), median(&sha)));
    }
    fprintf(f, "]");
    if (have && !sc.failed) {
        probe_msg m;
        probe_arg pa = {w.chain, w.blocks};
        run_probe(&m, n_cpus, &pa);
        fprintf(f, ", ");
        json_probe(f, &m, n_cpus);
    }
    return close_result(&sc, f, started);
}

static int scenario_large_state(void)
{
    scenario sc = {.name = "large-state"};
    double started = now();
    FILE *f = open_result(&sc);
    if (!f)
        return 0;
    workload w;
    char recs[32], name[64];
    gen_arg_txs(recs, sizeof recs, opt.large_records);
    snprintf(name, sizeof name, "large-state-%s", recs);
    const char *gen[] = {"--shape", "large-state", "--txs", recs, "--seed", "1", NULL};
    int have = prepare(&sc, &w, name, gen);
    if (have) {
        json_workload(f, &w, "large-state");
        fprintf(f, ", ");
    }
    /* The fixed cost: the same chain cut to its 60-byte header. */
    char empty[4200];
    snprintf(empty, sizeof empty, "%s/%s.header-only.pmbk", opt.data, name);
    if (have) {
        uint8_t header[PM_FILE_HEADER_SIZE];
        int in = open(w.chain, O_RDONLY), out = open(empty, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || read(in, header, sizeof header) != (ssize_t)sizeof header ||
            write(out, header, sizeof header) != (ssize_t)sizeof header)
            fail(&sc, "cannot make %s", empty);
        if (in >= 0)
            close(in);
        if (out >= 0)
            close(out);
    }
    int n = n_cpus;
    engine_samples e, base;
    samples utxo_s;
    memset(&e, 0, sizeof e);
    memset(&base, 0, sizeof base);
    memset(&utxo_s, 0, sizeof utxo_s);
    for (int r = 0; have && r < opt.reps && !sc.failed; r++) {
        if (!replay_once(&sc, &base, NULL, empty, n, NULL) ||
            !replay_once(&sc, &e, &w, w.chain, n, NULL))
            break;
        /* Unspent outputs made per second (the set is built from empty). */
        add(&utxo_s, (double)w.utxo_count * e.tx_s.v[e.tx_s.n - 1] / (double)w.txs);
        fprintf(stderr, "bench_scenarios: large-state: %d cores, rep %d: %.0f tx/s, peak RSS %.0f MB\n",
                n, r + 1, e.tx_s.v[e.tx_s.n - 1], e.rss.v[e.rss.n - 1] / 1e6);
    }
    if (have && !sc.failed) {
        double rss = median(&e.rss), fixed = median(&base.rss);
        fprintf(f, "\"cores\": %d, ", n);
        json_samples(f, "replay_tx_s", &e.tx_s);
        fprintf(f, ", ");
        json_samples(f, "replay_utxo_s", &utxo_s);
        fprintf(f, ", ");
        json_samples(f, "replay_bytes_s", &e.bytes_s);
        fprintf(f, ", ");
        json_samples(f, "replay_wall_tx_s", &e.wall_tx_s);
        fprintf(f, ", ");
        json_samples(f, "peak_rss_bytes", &e.rss);
        fprintf(f, ", ");
        json_samples(f, "header_only_rss_bytes", &base.rss);
        fprintf(f, ", \"bytes_per_utxo\": %.2f, \"bytes_per_utxo_above_fixed\": %.2f",
                ratio(rss, (double)w.utxo_count), ratio(rss - fixed, (double)w.utxo_count));
        probe_msg m;
        probe_arg pa = {w.chain, 0};
        run_probe(&m, n, &pa);
        fprintf(f, ", ");
        json_probe(f, &m, n);
    }
    unlink(empty);
    return close_result(&sc, f, started);
}

static int scenario_conflict(void)
{
    scenario sc = {.name = "conflict"};
    double started = now();
    FILE *f = open_result(&sc);
    if (!f)
        return 0;
    workload w;
    char txs[32], name[64];
    gen_arg_txs(txs, sizeof txs, opt.conflict_txs);
    snprintf(name, sizeof name, "conflict-%s", txs);
    /* 10% double spends, 10% in-block chains, no other invalid record. */
    const char *gen[] = {"--shape", "market", "--txs", txs, "--seed", "1",
                         "--double-spend-ppm", "100000", "--chain-ppm", "100000",
                         "--bad-signature-ppm", "0", "--conflict-ppm", "0",
                         "--replay-ppm", "0", "--malformed-ppm", "0", "--other-ppm", "0", NULL};
    int have = prepare(&sc, &w, name, gen);
    if (have) {
        json_workload(f, &w, "market");
        fprintf(f, ", ");
    }
    fprintf(f, "\"rows\": [");
    for (int n = 1; have && n <= n_cpus && !sc.failed; n++) {
        engine_samples e;
        samples pack, pack_cpu;
        memset(&e, 0, sizeof e);
        memset(&pack, 0, sizeof pack);
        memset(&pack_cpu, 0, sizeof pack_cpu);
        for (int r = 0; r < opt.reps && !sc.failed; r++) {
            if (!pack_once(&sc, &pack, &pack_cpu, &w, n) ||
                !replay_once(&sc, &e, &w, w.chain, n, NULL))
                break;
            fprintf(stderr, "bench_scenarios: conflict: %d cores, rep %d: pack %.0f records/s, "
                            "replay %.0f tx/s\n",
                    n, r + 1, pack.v[pack.n - 1], e.tx_s.v[e.tx_s.n - 1]);
        }
        if (sc.failed)
            break;
        fprintf(f, "%s{\"cores\": %d, ", n > 1 ? ", " : "", n);
        json_samples(f, "pack_tx_s", &pack);
        fprintf(f, ", ");
        json_samples(f, "replay_tx_s", &e.tx_s);
        fprintf(f, ", ");
        json_samples(f, "replay_sig_s", &e.sig_s);
        fprintf(f, ", ");
        json_samples(f, "replay_wall_tx_s", &e.wall_tx_s);
        fprintf(f, "}");
    }
    fprintf(f, "]");
    if (have && !sc.failed) {
        probe_msg m;
        probe_arg pa = {w.chain, 0};
        run_probe(&m, n_cpus, &pa);
        fprintf(f, ", ");
        json_probe(f, &m, n_cpus);
    }
    return close_result(&sc, f, started);
}

/* ---- main --------------------------------------------------------------- */

/* mkdir -p: returns 1 when `path` is a directory at the end. */
static int make_dirs(const char *path)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    mkdir(p, 0755);
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--postmark PATH] --data DIR --out DIR [--reps R] [--txs N]\n"
            "         [--conflict-txs N] [--large-records N] [--limit-seconds S]\n"
            "         [--max-cores N] [signatures|assume-valid|large-state|conflict ...]\n",
            argv0);
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

int main(int argc, char **argv)
{
    opt = (options){NULL, NULL, NULL, 3, 200000, 200000, 21500, 2.0, 0};
    const char *which[8];
    int n_which = 0;
    for (int i = 1; i < argc; i++) {
        uint64_t v;
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--postmark") && val)
            opt.postmark = argv[++i];
        else if (!strcmp(a, "--data") && val)
            opt.data = argv[++i];
        else if (!strcmp(a, "--out") && val)
            opt.out = argv[++i];
        else if (!strcmp(a, "--reps") && val && parse_u64(val, 1, MAX_REPS, &v))
            opt.reps = (int)v, i++;
        else if (!strcmp(a, "--txs") && val && parse_u64(val, 1000, 100000000, &v))
            opt.txs = v, i++;
        else if (!strcmp(a, "--conflict-txs") && val && parse_u64(val, 1000, 100000000, &v))
            opt.conflict_txs = v, i++;
        else if (!strcmp(a, "--large-records") && val && parse_u64(val, 10, 10000000, &v))
            opt.large_records = v, i++;
        else if (!strcmp(a, "--limit-seconds") && val && strtod(val, NULL) > 0)
            opt.limit_seconds = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--max-cores") && val && parse_u64(val, 1, MAX_CORES, &v))
            opt.max_cores = (int)v, i++;
        else if (a[0] != '-' && n_which < 8 &&
                 (!strcmp(a, "signatures") || !strcmp(a, "assume-valid") ||
                  !strcmp(a, "large-state") || !strcmp(a, "conflict")))
            which[n_which++] = a;
        else {
            usage(argv[0]);
            return 2;
        }
    }
    if (!opt.data || !opt.out) {
        usage(argv[0]);
        return 2;
    }
    char default_pm[4096];
    if (!opt.postmark) {
        /* bench/ sits beside the program in the build tree. */
        ssize_t n = readlink("/proc/self/exe", default_pm, sizeof default_pm - 32);
        char *slash = n > 0 ? (default_pm[n] = 0, strrchr(default_pm, '/')) : NULL;
        if (!slash) {
            fprintf(stderr, "bench_scenarios: where is postmark? (--postmark PATH)\n");
            return 2;
        }
        strcpy(slash, "/../postmark");
        opt.postmark = default_pm;
    }
    if (access(opt.postmark, X_OK) != 0) {
        fprintf(stderr, "bench_scenarios: %s: not an executable\n", opt.postmark);
        return 2;
    }
    if (!make_dirs(opt.data) || !make_dirs(opt.out)) {
        fprintf(stderr, "bench_scenarios: cannot make %s and %s\n", opt.data, opt.out);
        return 1;
    }
    snprintf(errlog, sizeof errlog, "%s/child-stderr.log", opt.data);
    load_cpus();
    if (opt.max_cores > 0 && opt.max_cores < n_cpus)
        n_cpus = opt.max_cores;
    if (!make_triples()) {
        fprintf(stderr, "bench_scenarios: cannot make signatures\n");
        return 1;
    }
    if (n_which == 0) {
        which[n_which++] = "signatures";
        which[n_which++] = "assume-valid";
        which[n_which++] = "large-state";
        which[n_which++] = "conflict";
    }
    int failed = 0;
    for (int i = 0; i < n_which; i++) {
        int ok = !strcmp(which[i], "signatures")     ? scenario_signatures()
                 : !strcmp(which[i], "assume-valid") ? scenario_assume_valid()
                 : !strcmp(which[i], "large-state")  ? scenario_large_state()
                                                     : scenario_conflict();
        failed += !ok;
    }
    free(triples);
    return failed ? 1 : 0;
}
