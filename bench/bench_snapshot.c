/*
 * bench_snapshot.c — how fast a node restarts from a snapshot, beside the
 * full replay of the same chain and beside the limits a load chases, all
 * measured in this run.
 *
 * The workload is a real chain: the generator's LARGE_STATE stream
 * (engine/gen.h: mostly ISSUEs of 512 stamps and 512 credits, a transfer
 * now and then) sized for about --utxos unspent outputs, packed by the
 * engine. Then:
 *   replay  a fresh engine connects every block (every signature checked);
 *   save    pm_engine_save_snapshot of the packed state;
 *   load    pm_engine_create_from_snapshot (checksums, order, UTXO digest
 *           recomputed, parallel inserts), at 1 thread and at --threads;
 * and the limits of a load, measured on the same file and table:
 *   read+hash  reading the file and SHA-256 of the UTXO section (what the
 *              digest check alone costs, one core);
 *   insert     inserting the same entries into a fresh pre-sized table from
 *              --threads threads (what the table alone costs).
 * This chain is replay's best case (one signature per ~1,000 outputs); a
 * real history spends far more per live UTXO. Each figure is the median of
 * --reps runs. Nothing asserts on time.
 *
 * usage: bench_snapshot [--utxos N] [--market TXS] [--threads T] [--reps R]
 *                       [--dir DIR] [--keep FILE]
 *   defaults: 2,000,000 UTXOs, threads = online CPUs, 3 reps, $TMPDIR;
 *   --market TXS uses the generator's MARKET stream of TXS records instead
 *   (a signature-heavy history: replay's usual case, a small state);
 *   --keep leaves the snapshot in FILE (for profiling a load alone).
 */
#include "gen.h"
#include "postmark_internal.h"
#include "postmark.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the whole process (every thread): on a shared machine
 * the wall time depends on the neighbours, the CPU time much less. */
static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 +
           (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static void die(const char *what)
{
    fprintf(stderr, "bench_snapshot: %s\n", what);
    exit(1);
}

/* ---- making the chain --------------------------------------------------- */

typedef struct {
    uint8_t **blocks;
    size_t *sizes;
    size_t n, cap;
    size_t bytes;
    uint64_t rejects;
} chain;

static void on_block(void *data, const uint8_t *block, size_t size, uint64_t height,
                     const uint8_t hash[32])
{
    (void)height;
    (void)hash;
    chain *c = data;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->blocks = realloc(c->blocks, c->cap * sizeof *c->blocks);
        c->sizes = realloc(c->sizes, c->cap * sizeof *c->sizes);
        if (!c->blocks || !c->sizes)
            die("out of memory");
    }
    c->blocks[c->n] = malloc(size);
    if (!c->blocks[c->n])
        die("out of memory");
    memcpy(c->blocks[c->n], block, size);
    c->sizes[c->n++] = size;
    c->bytes += size;
}

static void on_reject(void *data, uint64_t index, const uint8_t *txid, pm_reason reason)
{
    (void)index;
    (void)txid;
    (void)reason;
    chain *c = data;
    c->rejects++; /* MARKET plans some; LARGE_STATE none */
}

/* Pack a generated stream of `txs` records of `shape` into a chain; the
 * packing engine is kept (its state is what gets saved). */
static pm_engine *make_chain(const pm_context *ctx, const char *dir, unsigned threads,
                             pm_gen_shape shape, uint64_t txs, uint64_t size_hint,
                             pm_chain_params *params, chain *c)
{
    pm_gen_config g;
    pm_gen_config_default(&g, shape);
    g.txs = txs;
    g.threads = threads;
    char path[1024];
    tool_fault fault;
    snprintf(path, sizeof path, "%s/bench_snapshot.%d.pmtx", dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die("cannot create the stream file");
    unlink(path);
    pm_gen_report report;
    if (pm_gen_write(ctx, &g, fd, &report, &fault) != PM_OK)
        die(fault.message);
    struct stat st;
    if (fstat(fd, &st) != 0)
        die("cannot stat the stream");
    uint8_t *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (data == MAP_FAILED)
        die("cannot map the stream");
    pm_file_kind kind;
    if (!pm_file_header_parse(pm_context_static, &kind, params, NULL, data, (size_t)st.st_size))
        die("the generated stream has a bad header");

    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = threads;
    if (size_hint)
        cfg.utxo_capacity_hint = (size_t)size_hint;
    pm_engine *e;
    if (pm_engine_create(&e, ctx, params, &cfg) != PM_OK)
        die("cannot create an engine");
    pm_engine_set_callbacks(e, on_block, on_reject, c);
    size_t off = PM_FILE_HEADER_SIZE;
    while (off + 4 <= (size_t)st.st_size) {
        size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8 |
                     (size_t)data[off + 2] << 16 | (size_t)data[off + 3] << 24;
        if (off + 4 + len > (size_t)st.st_size)
            die("the generated stream is truncated");
        if (pm_engine_submit(e, data + off + 4, len) != PM_OK)
            die("submit failed");
        off += 4 + len;
    }
    if (pm_engine_flush(e) != PM_OK)
        die("flush failed");
    munmap(data, (size_t)st.st_size);
    return e;
}

/* ---- the limits ---------------------------------------------------------- */

/* Read the file and hash its UTXO section, as a load's reader must. */
static double read_and_hash(const pm_context *ctx, const char *path, uint64_t n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die("cannot open the snapshot");
    double t0 = now();
    pm_hasher *h = pm_hasher_create(ctx->tags);
    size_t cap = 8u << 20;
    uint8_t *buf = malloc(cap);
    uint64_t skip = 0, left = n * PM_SNAP_UTXO_SIZE;
    /* The UTXO payload starts after the front and three sections whose
     * sizes the file states; reading everything is the honest floor. */
    pm_hash_begin(h, PM_TAG_UTXO);
    ssize_t k;
    while ((k = read(fd, buf, cap)) > 0) {
        size_t take = (size_t)k < left ? (size_t)k : (size_t)left;
        pm_hash_update(h, buf, take);
        left -= take;
        skip += (uint64_t)k;
    }
    uint8_t out[32];
    pm_hash_final(h, out);
    double t = now() - t0;
    pm_hasher_destroy(h);
    free(buf);
    close(fd);
    (void)skip;
    return t;
}

typedef struct {
    pm_utxo_table *t;
    const uint8_t *recs;
    size_t from, to;
} insert_arg;

static void *insert_range(void *p)
{
    insert_arg *a = p;
    for (size_t i = a->from; i < a->to; i++) {
        const uint8_t *r = a->recs + (size_t)PM_SNAP_UTXO_SIZE * i;
        if (pm_utxo_table_insert(a->t, r, (uint16_t)(r[32] << 8 | r[33]), r + 34) != PM_OK)
            die("insert failed");
    }
    return NULL;
}

/* Insert n entries (the snapshot's, from memory) into a fresh pre-sized
 * table from `threads` threads, as a load's inserters do. */
static double insert_only(const uint8_t *recs, uint64_t n, unsigned threads)
{
    pm_utxo_table *t;
    if (pm_utxo_table_create(&t, (size_t)n) != PM_OK)
        die("cannot create a table");
    pthread_t tid[64];
    insert_arg arg[64];
    if (threads > 64)
        threads = 64;
    double t0 = now();
    for (unsigned i = 0; i < threads; i++) {
        arg[i] = (insert_arg){t, recs, (size_t)(n * i / threads), (size_t)(n * (i + 1) / threads)};
        pthread_create(&tid[i], NULL, insert_range, &arg[i]);
    }
    for (unsigned i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    double secs = now() - t0;
    if (pm_utxo_table_count(t) != n)
        die("insert-only table lost entries");
    pm_utxo_table_destroy(t);
    return secs;
}

/* The UTXO section of a snapshot file, read into memory. */
static uint8_t *utxo_section(const char *path, uint64_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open the snapshot");
    uint64_t off = PM_SNAP_PREAMBLE_SIZE;
    for (int sec = 0; sec < 4; sec++) {
        uint8_t h[PM_SNAP_SECTION_HEADER_SIZE];
        if (fseeko(f, (off_t)off, SEEK_SET) != 0 || fread(h, 1, sizeof h, f) != sizeof h)
            die("cannot read the snapshot");
        uint64_t len = 0;
        for (int i = 0; i < 8; i++)
            len |= (uint64_t)h[16 + i] << (8 * i);
        off += PM_SNAP_SECTION_HEADER_SIZE + len + PM_SNAP_CHECKSUM_SIZE;
    }
    uint8_t *recs = malloc((size_t)n * PM_SNAP_UTXO_SIZE + 1);
    if (!recs || fseeko(f, (off_t)(off + PM_SNAP_SECTION_HEADER_SIZE), SEEK_SET) != 0 ||
        fread(recs, PM_SNAP_UTXO_SIZE, (size_t)n, f) != n)
        die("cannot read the UTXO section");
    fclose(f);
    return recs;
}

int main(int argc, char **argv)
{
    uint64_t n = 2000000, market = 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = cpus > 0 ? (unsigned)cpus : 1;
    int reps = 3;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    const char *keep = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--utxos") && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--market") && i + 1 < argc)
            market = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--keep") && i + 1 < argc)
            keep = argv[++i];
        else {
            fprintf(stderr, "usage: bench_snapshot [--utxos N] [--market TXS] [--threads T] [--reps R] [--dir DIR] [--keep FILE]\n");
            return 2;
        }
    }
    if (n == 0 || threads == 0 || reps < 1 || reps > 99) {
        fprintf(stderr, "bench_snapshot: --utxos, --threads and --reps must be positive\n");
        return 2;
    }

    pm_context *ctx = pm_context_create();
    pm_chain_params params;
    char path[1024];
    if (keep)
        snprintf(path, sizeof path, "%s", keep);
    else
        snprintf(path, sizeof path, "%s/bench_snapshot.%d.snap", dir, (int)getpid());

    double t0 = now();
    chain c = {0};
    pm_engine *packer = market ? make_chain(ctx, dir, threads, PM_GEN_MARKET, market, 0, &params, &c)
                               : make_chain(ctx, dir, threads, PM_GEN_LARGE_STATE, n / 960 + 1, n,
                                            &params, &c);
    double t_pack = now() - t0;
    n = pm_engine_utxo_count(packer);
    pm_stats ps;
    pm_engine_stats(packer, &ps);
    printf("chain: %zu blocks, %llu transactions (%llu rejected), %.1f MB; state: %llu UTXOs, "
           "%zu minted stamps, %zu series, %zu operators (generated and packed in %.2f s with %u "
           "threads)\n",
           c.n, (unsigned long long)ps.txs_accepted, (unsigned long long)c.rejects,
           (double)c.bytes / 1e6, (unsigned long long)n,
           pm_ledger_minted_count(packer->ledger), pm_ledger_series_count(packer->ledger),
           pm_ledger_operator_count(packer->ledger), t_pack, threads);

    double *t_replay = calloc((size_t)reps, sizeof(double));
    double *t_save = calloc((size_t)reps, sizeof(double));
    double *t_load1 = calloc((size_t)reps, sizeof(double));
    double *t_loadn = calloc((size_t)reps, sizeof(double));
    double *t_read = calloc((size_t)reps, sizeof(double));
    double *t_insert = calloc((size_t)reps, sizeof(double));
    double *c_save = calloc((size_t)reps, sizeof(double));
    double *c_loadn = calloc((size_t)reps, sizeof(double));
    uint8_t want[32];
    if (pm_engine_utxo_digest(packer, want) != PM_OK)
        die("digest failed");
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.utxo_capacity_hint = (size_t)n;
    for (int r = 0; r < reps; r++) {
        cfg.threads = threads;
        pm_engine *e;
        if (pm_engine_create(&e, ctx, &params, &cfg) != PM_OK)
            die("cannot create an engine");
        pm_verdict v;
        t0 = now();
        if (pm_engine_connect_blocks(e, &v, (const uint8_t *const *)c.blocks, c.sizes, c.n, 0) !=
            PM_OK)
            die("replay failed");
        t_replay[r] = now() - t0;
        pm_engine_destroy(e);

        double c0 = cpu_seconds();
        t0 = now();
        if (pm_engine_save_snapshot(packer, path) != PM_OK)
            die(pm_engine_last_error(packer));
        t_save[r] = now() - t0;
        c_save[r] = cpu_seconds() - c0;

        for (int pass = 0; pass < 2; pass++) {
            pm_config lc;
            pm_config_default(pm_context_static, &lc);
            lc.threads = pass == 0 ? 1 : threads;
            char err[256];
            c0 = cpu_seconds();
            t0 = now();
            if (pm_engine_create_from_snapshot(&e, ctx, &params, &lc, path, err, sizeof err) !=
                PM_OK)
                die(err);
            double t = now() - t0;
            (pass == 0 ? t_load1 : t_loadn)[r] = t;
            if (pass == 1)
                c_loadn[r] = cpu_seconds() - c0;
            if (r == 0 && pass == 1) {
                uint8_t got[32];
                if (pm_engine_utxo_digest(e, got) != PM_OK || memcmp(got, want, 32) != 0 ||
                    pm_engine_utxo_count(e) != n)
                    die("the loaded state differs from the saved one");
            }
            pm_engine_destroy(e);
        }
        t_read[r] = read_and_hash(ctx, path, n);
        uint8_t *recs = utxo_section(path, n);
        t_insert[r] = insert_only(recs, n, threads);
        free(recs);
    }
    struct stat st;
    stat(path, &st);
    if (!keep)
        unlink(path);

    double replay = median(t_replay, reps), save = median(t_save, reps);
    double load1 = median(t_load1, reps), loadn = median(t_loadn, reps);
    double rd = median(t_read, reps), ins = median(t_insert, reps);
    double csave = median(c_save, reps), cload = median(c_loadn, reps);
    printf("snapshot file: %.1f MB\n", (double)st.st_size / 1e6);
    printf("save:            %8.3f s   (%.2f M UTXO/s; CPU %.3f s, the rest is fsync)\n", save,
           (double)n / save / 1e6, csave);
    printf("load, 1 thread:  %8.3f s   (%.2f M UTXO/s)\n", load1, (double)n / load1 / 1e6);
    printf("load, %u threads: %8.3f s   (%.2f M UTXO/s; target >= 5 M/s on 2 cores)\n", threads,
           loadn, (double)n / loadn / 1e6);
    printf("load CPU:        %8.3f s   (%.0f ns per UTXO over all threads: %.2f M UTXO/s "
           "if %u idle cores are kept busy)\n",
           cload, cload / (double)n * 1e9, (double)n * threads / cload / 1e6, threads);
    printf("full replay:     %8.3f s   (%u threads; load is %.1fx faster)\n", replay, threads,
           replay / loadn);
    printf("limits: read + SHA-256 of the file %.3f s (one core: load/limit %.2f), "
           "table inserts alone from %u threads %.3f s (load/limit %.2f)\n",
           rd, loadn / rd, threads, ins, loadn / ins);
    printf("median of %d runs\n", reps);

    for (size_t i = 0; i < c.n; i++)
        free(c.blocks[i]);
    free(c.blocks);
    free(c.sizes);
    free(t_replay);
    free(t_save);
    free(t_load1);
    free(t_loadn);
    free(t_read);
    free(t_insert);
    free(c_save);
    free(c_loadn);
    pm_engine_destroy(packer);
    pm_context_destroy(ctx);
    return 0;
}
