/*
 * bench_snapshot.c — how fast a node restarts from a snapshot, beside the
 * full replay of the same chain and beside the limits a load chases, all
 * measured in this run.
 *
 * The workload is a real chain made here: one operator registered by the
 * governance key, then ISSUE transactions of 1,024 CREDIT outputs each to
 * random owners, packed by the engine, until the UTXO set holds --utxos
 * entries. Then:
 *   replay  a fresh engine connects every block (every signature checked);
 *   save    pm_engine_save_snapshot of the packed state;
 *   load    pm_engine_create_from_snapshot (checksums, order, UTXO digest
 *           recomputed, parallel inserts), at 1 thread and at --threads;
 * and the limits of a load, measured on the same file and table:
 *   read+hash  reading the file and SHA-256 of the UTXO section (what the
 *              digest check alone costs, one core);
 *   insert     inserting the same entries into a fresh pre-sized table from
 *              --threads threads (what the table alone costs).
 * This chain is replay's best case (one signature per 1,024 outputs); a
 * real history spends far more per live UTXO. Each figure is the median of
 * --reps runs. Nothing asserts on time.
 *
 * usage: bench_snapshot [--utxos N] [--threads T] [--reps R] [--dir DIR]
 *   defaults: 2,000,000 UTXOs, threads = online CPUs, 3 reps, $TMPDIR.
 */
#include "pipeline.h"
#include "snapshot.h"
#include "postmark.h"

#include <fcntl.h>
#include <pthread.h>
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>
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

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
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
    (void)data;
    (void)txid;
    fprintf(stderr, "bench_snapshot: transaction %llu rejected: %s\n", (unsigned long long)index,
            pm_reason_name(reason));
    exit(1);
}

/* Sign a serialized transaction in place (its one signature is last). */
static void sign_tx(const pm_context *ctx, const secp256k1_context *secp,
                    const secp256k1_keypair *kp, const uint8_t chain_id[32], uint8_t *bytes,
                    size_t size)
{
    pm_tx tx;
    uint8_t txid[32], sighash[32];
    if (!pm_tx_parse(&tx, NULL, bytes, size) || !pm_tx_txid(ctx, txid, &tx) ||
        !pm_tx_sighash(ctx, sighash, chain_id, txid) ||
        !secp256k1_schnorrsig_sign32(secp, bytes + size - 64, sighash, kp, NULL))
        die("cannot make a transaction");
}

/* Pack a chain whose UTXO set has n entries; the packing engine is kept
 * (its state is what gets saved). */
static pm_engine *make_chain(const pm_context *ctx, const pm_chain_params *params,
                             const secp256k1_keypair *gov, const secp256k1_keypair *op_kp,
                             const uint8_t op_key[32], unsigned threads, uint64_t n, chain *c)
{
    pm_config cfg;
    pm_config_default(&cfg);
    cfg.threads = threads;
    cfg.utxo_capacity_hint = (size_t)n;
    pm_engine *e;
    if (pm_engine_create(&e, ctx, params, &cfg) != PM_OK)
        die("cannot create an engine");
    pm_engine_set_callbacks(e, on_block, on_reject, c);
    secp256k1_context *secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    uint8_t chain_id[32];
    pm_chain_id(ctx, chain_id, params);

    uint8_t buf[PM_TX_MAX_SIZE];
    uint8_t zero_sig[64] = {0};
    pm_tx tx;
    memset(&tx, 0, sizeof tx);
    tx.type = PM_TX_REGISTER;
    tx.seq = 1;
    tx.operator_id = 1;
    tx.key = op_key;
    tx.text = (const uint8_t *)"Bench Post";
    tx.text_len = 10;
    tx.n_sigs = 1;
    tx.sigs = zero_sig;
    size_t size = pm_tx_serialize(buf, sizeof buf, &tx);
    sign_tx(ctx, secp, gov, chain_id, buf, size);
    if (pm_engine_submit(e, buf, size) != PM_OK)
        die("submit failed");

    uint8_t *outs = malloc(1024 * PM_OUTPUT_SIZE);
    uint64_t seed = 1, made = 0;
    for (uint64_t seq = 1; made < n; seq++) {
        size_t k = n - made < 1024 ? (size_t)(n - made) : 1024;
        for (size_t i = 0; i < k; i++) {
            pm_output o;
            memset(&o, 0, sizeof o);
            for (int w = 0; w < 4; w++) {
                uint64_t v = rng_next(&seed);
                memcpy(o.owner + 8 * w, &v, 8);
            }
            o.kind = PM_OUTPUT_CREDIT;
            o.operator_id = 1;
            o.amount = 1 + (rng_next(&seed) >> 20);
            pm_output_encode(outs + PM_OUTPUT_SIZE * i, &o);
        }
        memset(&tx, 0, sizeof tx);
        tx.type = PM_TX_ISSUE;
        tx.seq = seq;
        tx.operator_id = 1;
        tx.n_out = k;
        tx.outputs = outs;
        tx.n_sigs = 1;
        tx.sigs = zero_sig;
        size = pm_tx_serialize(buf, sizeof buf, &tx);
        sign_tx(ctx, secp, op_kp, chain_id, buf, size);
        if (pm_engine_submit(e, buf, size) != PM_OK)
            die("submit failed");
        made += k;
    }
    if (pm_engine_flush(e) != PM_OK)
        die("flush failed");
    free(outs);
    secp256k1_context_destroy(secp);
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
    uint64_t n = 2000000;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = cpus > 0 ? (unsigned)cpus : 1;
    int reps = 3;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--utxos") && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: bench_snapshot [--utxos N] [--threads T] [--reps R] [--dir DIR]\n");
            return 2;
        }
    }
    if (n == 0 || threads == 0 || reps < 1 || reps > 99) {
        fprintf(stderr, "bench_snapshot: --utxos, --threads and --reps must be positive\n");
        return 2;
    }

    pm_context *ctx = pm_context_create();
    secp256k1_context *secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    uint8_t seckey[32];
    secp256k1_keypair gov, op;
    secp256k1_xonly_pubkey xgov, xop;
    pm_chain_params params;
    memset(&params, 0, sizeof params);
    memcpy(params.network, "bench-snapshot", 14);
    memset(seckey, 0x11, 32);
    if (!secp256k1_keypair_create(secp, &gov, seckey))
        die("keypair");
    memset(seckey, 0x22, 32);
    if (!secp256k1_keypair_create(secp, &op, seckey))
        die("keypair");
    uint8_t op_key[32];
    if (!secp256k1_keypair_xonly_pub(secp, &xgov, NULL, &gov) ||
        !secp256k1_keypair_xonly_pub(secp, &xop, NULL, &op) ||
        !secp256k1_xonly_pubkey_serialize(secp, params.governance_key, &xgov) ||
        !secp256k1_xonly_pubkey_serialize(secp, op_key, &xop))
        die("keys");

    char path[1024];
    snprintf(path, sizeof path, "%s/bench_snapshot.%d.snap", dir, (int)getpid());

    double t0 = now();
    chain c = {0};
    pm_engine *packer = make_chain(ctx, &params, &gov, &op, op_key, threads, n, &c);
    double t_pack = now() - t0;
    printf("chain: %llu UTXOs, %zu blocks, %.1f MB (packed in %.2f s with %u threads)\n",
           (unsigned long long)n, c.n, (double)c.bytes / 1e6, t_pack, threads);

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
    pm_config_default(&cfg);
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
            pm_config_default(&lc);
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
    secp256k1_context_destroy(secp);
    pm_context_destroy(ctx);
    return 0;
}
