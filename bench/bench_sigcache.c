/*
 * bench_sigcache.c — the node path with the signature cache: a block
 * connected after every one of its transactions passed pm_engine_check_tx,
 * beside the same block connected cold (nothing admitted before), in the
 * same run, on the same engine configuration and state.
 *
 *   bench_sigcache [--txs N] [--reps R] [--threads T]
 *
 * Defaults: a block of 4,096 one-input transfers (a TRANSFERS stream from
 * the generator, packed into blocks of N), 3 repetitions, online CPUs.
 * Each repetition builds two engines at the state before the block; one
 * admits the block's transactions as a node's mempool does (check_tx, then
 * submit: pending in the open block, so a transaction spending another of
 * the block passes too; timed apart, the cost a node pays as transactions
 * arrive), then both connect the block. The warm connect includes what
 * connect_blocks does around a mempool: taking the pending transactions
 * out and re-checking them on the new state (all now conflict). Prints
 * each figure's median (min-max) and the ratio cold / warm connect time
 * (the goal: at least 5). Nothing asserts on time; it exits 1 only
 * when something fails to run or the two connects disagree.
 */
#include "gen.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    uint8_t **block;
    size_t *size;
    size_t n, cap;
} chain;

static void on_block(void *data, const uint8_t *block, size_t size, uint64_t height,
                     const uint8_t hash[32])
{
    chain *c = data;
    (void)height, (void)hash;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->block = realloc(c->block, c->cap * sizeof *c->block);
        c->size = realloc(c->size, c->cap * sizeof *c->size);
        if (!c->block || !c->size)
            abort();
    }
    c->block[c->n] = malloc(size);
    if (!c->block[c->n])
        abort();
    memcpy(c->block[c->n], block, size);
    c->size[c->n++] = size;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Generate a TRANSFERS stream of `records` and pack it into blocks of
 * block_txs: the chain a peer would send. */
static int make_chain(pm_context *ctx, uint64_t records, uint32_t block_txs, chain *out,
                      pm_chain_params *params)
{
    pm_gen_config g;
    pm_gen_config_default(&g, PM_GEN_TRANSFERS);
    g.txs = records;
    char path[4200];
    tool_fault fault;
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/bench_sigcache.%d.pmtx", dir && *dir ? dir : "/tmp",
             (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 0;
    unlink(path);
    pm_gen_report rep;
    if (pm_gen_write(ctx, &g, fd, &rep, &fault) != PM_OK) {
        fprintf(stderr, "bench_sigcache: gen: %s\n", fault.message);
        return 0;
    }
    struct stat sb;
    fstat(fd, &sb);
    size_t size = (size_t)sb.st_size;
    uint8_t *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    pm_file_kind kind;
    if (map == MAP_FAILED || !pm_file_header_parse(ctx, &kind, params, NULL, map, size))
        return 0;
    pm_config cfg;
    pm_config_default(ctx, &cfg);
    cfg.block_max_txs = block_txs;
    cfg.sigcache_bytes = 0;
    pm_engine *e = NULL;
    if (pm_engine_create(&e, ctx, params, &cfg) != PM_OK)
        return 0;
    pm_engine_set_callbacks(e, on_block, NULL, out);
    size_t pos = PM_FILE_HEADER_SIZE;
    int ok = 1;
    while (ok && size - pos >= 4 && size - pos - 4 >= le32(map + pos)) {
        uint32_t len = le32(map + pos);
        ok = pm_engine_submit(e, map + pos + 4, len) == PM_OK;
        pos += 4 + len;
    }
    ok = ok && pm_engine_flush(e) == PM_OK;
    pm_engine_destroy(e);
    munmap(map, size);
    return ok;
}

/* An engine at the state after blocks [0, upto). Its open block (the
 * mempool) takes the largest block, so that admitting a whole block's
 * transactions never seals a block of its own. */
static pm_engine *engine_at(pm_context *ctx, const pm_chain_params *params, unsigned threads,
                            const chain *c, size_t upto)
{
    pm_config cfg;
    pm_config_default(ctx, &cfg);
    cfg.threads = threads;
    cfg.block_max_txs = PM_BLOCK_MAX_TXS;
    pm_engine *e = NULL;
    pm_verdict v;
    if (pm_engine_create(&e, ctx, params, &cfg) != PM_OK)
        return NULL;
    if (pm_engine_connect_blocks(e, &v, (const uint8_t *const *)c->block, c->size, upto, 0) !=
        PM_OK) {
        pm_engine_destroy(e);
        return NULL;
    }
    return e;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void print_figure(const char *name, double *v, int n, double scale, const char *unit)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    printf("%-34s %10.2f %s (%.2f-%.2f)\n", name, v[n / 2] * scale, unit, v[0] * scale,
           v[n - 1] * scale);
}

int main(int argc, char **argv)
{
    uint32_t txs = 4096;
    int reps = 3;
    unsigned threads = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--txs") == 0)
            txs = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = (unsigned)atoi(argv[i + 1]);
    }
    if (txs < 1 || txs > PM_BLOCK_MAX_TXS || reps < 1 || reps > 25 || threads < 1) {
        fprintf(stderr, "usage: bench_sigcache [--txs 1..65536] [--reps 1..25] [--threads N]\n");
        return 2;
    }
    pm_context *ctx = pm_context_create();
    chain c = {0};
    pm_chain_params params;
    /* The setup (operator, series, a stamp per collector) fills the first
     * blocks; two blocks of transfers follow it, the last one measured. */
    if (!ctx || !make_chain(ctx, 3000 + 2 * (uint64_t)txs, txs, &c, &params) || c.n < 2) {
        fprintf(stderr, "bench_sigcache: could not make the chain\n");
        return 1;
    }
    size_t k = c.n - 1;
    while (k > 0 && pm_block_parse(ctx, &(pm_block){0}, NULL, c.block[k], c.size[k]) &&
           le32(c.block[k] + 76) != txs)
        k--;
    uint32_t block_n = le32(c.block[k] + 76);

    double cold[25], warm[25], admit[25];
    uint64_t hits = 0, checks = 0, verified_warm = 0, failed_check = 0;
    int status = 0;
    for (int r = 0; r < reps; r++) {
        pm_engine *ce = engine_at(ctx, &params, threads, &c, k);
        pm_engine *we = engine_at(ctx, &params, threads, &c, k);
        if (!ce || !we) {
            fprintf(stderr, "bench_sigcache: could not connect the blocks before the measured one\n");
            return 1;
        }
        /* Admission: every transaction of the block through check_tx,
         * then into the mempool. */
        pm_block blk;
        if (!pm_block_parse(ctx, &blk, NULL, c.block[k], c.size[k]))
            return 1;
        const uint8_t *tx;
        size_t len, cursor = 0;
        failed_check = 0;
        double t0 = now();
        while (pm_block_next_tx(ctx, &tx, &len, &blk, &cursor)) {
            pm_reason reason;
            if (pm_engine_check_tx(we, &reason, tx, len) != PM_OK ||
                pm_engine_submit(we, tx, len) != PM_OK)
                return 1;
            failed_check += reason != PM_REASON_NONE;
        }
        admit[r] = now() - t0;

        pm_verdict vc, vw;
        pm_stats before, after, cs;
        const uint8_t *b = c.block[k];
        size_t bs = c.size[k];
        t0 = now();
        pm_status sc = pm_engine_connect_blocks(ce, &vc, &b, &bs, 1, 0);
        cold[r] = now() - t0;
        pm_engine_stats(we, &before);
        t0 = now();
        pm_status sw = pm_engine_connect_blocks(we, &vw, &b, &bs, 1, 0);
        warm[r] = now() - t0;
        pm_engine_stats(we, &after);
        pm_engine_stats(ce, &cs);
        uint8_t dc[32], dw[32];
        if (sc != PM_OK || sw != PM_OK || pm_engine_utxo_digest(ce, dc) != PM_OK ||
            pm_engine_utxo_digest(we, dw) != PM_OK || memcmp(dc, dw, 32) != 0) {
            fprintf(stderr,
                    "bench_sigcache: the cold and warm connects disagree (%s, %s %s; %llu and "
                    "%llu UTXOs; %llu re-checked transactions rejected)\n",
                    pm_status_text(sc), pm_status_text(sw), pm_reason_name(vw.reason),
                    (unsigned long long)pm_engine_utxo_count(ce),
                    (unsigned long long)pm_engine_utxo_count(we),
                    (unsigned long long)(after.txs_rejected - before.txs_rejected));
            status = 1;
        }
        hits = after.sigcache_hits - before.sigcache_hits;
        checks = hits + after.sigcache_misses - before.sigcache_misses;
        verified_warm = after.signatures_verified - before.signatures_verified;
        pm_engine_destroy(ce);
        pm_engine_destroy(we);
    }
    double load[3] = {0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = load[1] = load[2] = 0;
        fclose(la);
    }
    printf("block of %u one-input transfers at height %zu, %u threads, %d repetitions, "
           "load average %.2f %.2f %.2f\n",
           block_n, k, threads, reps, load[0], load[1], load[2]);
    printf("check_tx refused %llu of them\n", (unsigned long long)failed_check);
    printf("warm connect: %llu sigcache hits of %llu checks, %llu verified\n",
           (unsigned long long)hits, (unsigned long long)checks, (unsigned long long)verified_warm);
    double ratio[25];
    for (int r = 0; r < reps; r++)
        ratio[r] = cold[r] / warm[r];
    print_figure("admission (check_tx + submit)", admit, reps, 1e3, "ms");
    print_figure("connect cold", cold, reps, 1e3, "ms");
    print_figure("connect after admission", warm, reps, 1e3, "ms");
    for (int r = 0; r < reps; r++)
        cold[r] = block_n / cold[r], warm[r] = block_n / warm[r];
    print_figure("connect cold", cold, reps, 1e-3, "k tx/s");
    print_figure("connect after admission", warm, reps, 1e-3, "k tx/s");
    print_figure("ratio cold/warm (goal >= 5)", ratio, reps, 1, "x");
    for (size_t i = 0; i < c.n; i++)
        free(c.block[i]);
    free(c.block);
    free(c.size);
    pm_context_destroy(ctx);
    return status;
}
