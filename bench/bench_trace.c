/*
 * bench_trace.c — how fast `trace` and `holdings` answer on a large chain,
 * beside the limit of any scan of that chain: reading the file, and
 * reading plus parsing every block and transaction (measured in the same
 * run, on the same file, page cache warm).
 *
 * The chain is synthesized here, shaped like a busy market: one operator,
 * 100,000 stamps in 10 series issued to --collectors collectors with
 * credits, then transfers (trades when the buyer has credits, gifts
 * otherwise) of random stamps, one in every 500 moving the same "hot"
 * stamp so that its trace has thousands of events. Signatures are zero
 * bytes: trace and holdings assume a valid chain and never verify them
 * (the chain is well framed, well formed, merkle roots and links right, but
 * `replay` would reject its signatures). Output owners are random 32-byte
 * strings.
 *
 * usage: bench_trace [--txs N] [--collectors N] [--reps R] [--keep PATH]
 * Prints one line per figure: median seconds of R runs, and the ratio to
 * the read+parse limit.
 */
#include "postmark_internal.h"
#include "postmark.h"
#include "provenance.h"
#include "recfile.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

typedef struct {
    uint8_t txid[32];
    uint16_t index;
} op_t;

/* ---- the synthetic chain ------------------------------------------------ */

enum { STAMPS = 100000, SERIES_N = 10, BLOCK_TXS = 4096, OPERATOR = 1 };

typedef struct {
    pm_hasher *h;
    FILE *out;
    uint8_t chain_id[32];
    uint8_t prev[32];
    uint64_t height;
    /* the open block */
    uint8_t *txbuf;
    size_t txlen, txcap;
    uint8_t (*leaves)[32];
    size_t ntx;
} writer;

static void flush_block(writer *w)
{
    if (!w->ntx)
        return;
    pm_block_header bh;
    memset(&bh, 0, sizeof bh);
    bh.version = 1;
    bh.height = w->height;
    memcpy(bh.prev_hash, w->height ? w->prev : w->chain_id, 32);
    pm_hash_merkle(w->h, bh.merkle_root, (const uint8_t(*)[32])w->leaves, w->ntx);
    bh.tx_count = (uint32_t)w->ntx;
    uint8_t hdr[80], len[4];
    pm_block_header_encode(pm_context_static, hdr, &bh);
    pm_hash_block(w->h, w->prev, hdr);
    pm_write_u32le(len, (uint32_t)(80 + w->txlen));
    fwrite(len, 1, 4, w->out);
    fwrite(hdr, 1, 80, w->out);
    fwrite(w->txbuf, 1, w->txlen, w->out);
    w->height++;
    w->ntx = 0;
    w->txlen = 0;
}

/* Append a transaction (serialized from desc, zero signatures); its txid
 * to `txid`. */
static void add_tx(writer *w, const pm_tx *desc, uint8_t txid[32])
{
    size_t n = pm_tx_serialize(pm_context_static, NULL, 0, desc);
    if (80 + w->txlen + 4 + n > PM_BLOCK_MAX_SIZE)
        flush_block(w);
    if (w->txlen + 4 + n > w->txcap) {
        w->txcap = (w->txlen + 4 + n) * 2;
        w->txbuf = realloc(w->txbuf, w->txcap);
    }
    uint8_t *p = w->txbuf + w->txlen;
    pm_write_u32le(p, (uint32_t)n);
    pm_tx_serialize(pm_context_static, p + 4, n, desc);
    pm_tx v;
    if (!pm_tx_parse(pm_context_static, &v, NULL, p + 4, n)) {
        fprintf(stderr, "bench_trace: built a transaction that does not parse\n");
        exit(1);
    }
    pm_hash_txid(w->h, txid, &v);
    pm_hash_leaf(w->h, w->leaves[w->ntx], &v, txid);
    w->txlen += 4 + n;
    if (++w->ntx == BLOCK_TXS)
        flush_block(w);
}

static void put_out(uint8_t *raw, int kind, const uint8_t *owner, uint32_t a, uint32_t b,
                    uint32_t c, uint64_t amount)
{
    pm_output o = {(uint8_t)kind, {0}, a, b, c, amount};
    memcpy(o.owner, owner, 32);
    pm_output_encode(pm_context_static, raw, &o);
}

typedef struct {
    uint64_t txs;
    uint32_t hot_serial, hot_series;
    uint8_t busy_key[32];
} made;

static int make_chain(pm_hasher *h, const char *path, uint64_t txs, uint32_t collectors, made *m)
{
    writer w;
    memset(&w, 0, sizeof w);
    w.h = h;
    w.out = fopen(path, "wb");
    if (!w.out)
        return 0;
    w.leaves = malloc(BLOCK_TXS * sizeof *w.leaves);
    pm_chain_params params;
    memset(&params, 0, sizeof params);
    memcpy(params.network, "bench-trace", 11);
    memset(params.governance_key, 7, 32);
    uint8_t fh[60];
    pm_file_header_encode(pm_context_static, fh, PM_FILE_CHAIN, &params);
    fwrite(fh, 1, 60, w.out);
    pm_hash_chain_id(h, w.chain_id, &params);

    uint8_t(*keys)[32] = malloc((size_t)collectors * 32);
    for (uint32_t i = 0; i < collectors; i++)
        for (int k = 0; k < 32; k += 8) {
            uint64_t r = rnd();
            memcpy(keys[i] + k, &r, 8);
        }
    op_t *stamp_op = malloc(STAMPS * sizeof *stamp_op);
    uint32_t *stamp_owner = malloc(STAMPS * sizeof *stamp_owner);
    op_t *credit_op = malloc((size_t)collectors * sizeof *credit_op);
    uint64_t *credit_amt = malloc((size_t)collectors * sizeof *credit_amt);

    uint64_t count = 0;
    pm_tx d;
    uint8_t txid[32];
    static const uint8_t meta[32];
    uint8_t opkey[32];
    memset(opkey, 9, 32);
    memset(&d, 0, sizeof d);
    d.type = PM_TX_REGISTER;
    d.seq = 1;
    d.operator_id = OPERATOR;
    d.key = opkey;
    d.text = (const uint8_t *)"Bench Post";
    d.text_len = 10;
    add_tx(&w, &d, txid);
    count++;
    uint64_t op_seq = 0;
    for (uint32_t s = 1; s <= SERIES_N; s++) {
        char title[32];
        int tl = snprintf(title, sizeof title, "Bench series %u", s);
        memset(&d, 0, sizeof d);
        d.type = PM_TX_SERIES;
        d.seq = ++op_seq;
        d.operator_id = OPERATOR;
        d.series = s;
        d.max_supply = STAMPS / SERIES_N;
        d.face_value = 100;
        d.metadata = meta;
        d.text = (const uint8_t *)title;
        d.text_len = (size_t)tl;
        add_tx(&w, &d, txid);
        count++;
    }
    /* Issues of 1000 outputs: all stamps, then one credit per collector. */
    uint8_t(*outs)[PM_OUTPUT_SIZE] = malloc(1000 * PM_OUTPUT_SIZE);
    uint64_t total_outputs = STAMPS + (uint64_t)collectors;
    for (uint64_t first = 0; first < total_outputs; first += 1000) {
        size_t n = total_outputs - first < 1000 ? (size_t)(total_outputs - first) : 1000;
        for (size_t i = 0; i < n; i++) {
            uint64_t k = first + i;
            if (k < STAMPS) {
                uint32_t owner = (uint32_t)(k % collectors);
                stamp_owner[k] = owner;
                put_out(outs[i], PM_OUTPUT_STAMP, keys[owner], OPERATOR,
                        (uint32_t)(k / (STAMPS / SERIES_N)) + 1,
                        (uint32_t)(k % (STAMPS / SERIES_N)) + 1, 0);
            } else {
                uint32_t c = (uint32_t)(k - STAMPS);
                credit_amt[c] = 1000000000;
                put_out(outs[i], PM_OUTPUT_CREDIT, keys[c], OPERATOR, 0, 0, credit_amt[c]);
            }
        }
        memset(&d, 0, sizeof d);
        d.type = PM_TX_ISSUE;
        d.seq = ++op_seq;
        d.operator_id = OPERATOR;
        d.n_out = n;
        d.outputs = &outs[0][0];
        add_tx(&w, &d, txid);
        count++;
        for (size_t i = 0; i < n; i++) {
            uint64_t k = first + i;
            op_t *o = k < STAMPS ? &stamp_op[k] : &credit_op[k - STAMPS];
            memcpy(o->txid, txid, 32);
            o->index = (uint16_t)i;
        }
    }
    /* Transfers. */
    uint8_t ins[2][PM_INPUT_SIZE];
    while (count < txs) {
        uint64_t s = count % 500 == 0 ? 0 : rnd() % STAMPS;
        uint32_t a = stamp_owner[s];
        uint32_t b = (uint32_t)(rnd() % collectors);
        if (b == a)
            b = (b + 1) % collectors;
        uint64_t price = 1 + rnd() % 1000;
        memcpy(ins[0], stamp_op[s].txid, 32);
        pm_write_u16le(ins[0] + 32, stamp_op[s].index);
        put_out(outs[0], PM_OUTPUT_STAMP, keys[b], OPERATOR,
                (uint32_t)(s / (STAMPS / SERIES_N)) + 1, (uint32_t)(s % (STAMPS / SERIES_N)) + 1, 0);
        memset(&d, 0, sizeof d);
        d.type = PM_TX_TRANSFER;
        d.inputs = &ins[0][0];
        d.outputs = &outs[0][0];
        int trade = credit_amt[b] > price;
        if (trade) {
            memcpy(ins[1], credit_op[b].txid, 32);
            pm_write_u16le(ins[1] + 32, credit_op[b].index);
            put_out(outs[1], PM_OUTPUT_CREDIT, keys[a], OPERATOR, 0, 0, price);
            put_out(outs[2], PM_OUTPUT_CREDIT, keys[b], OPERATOR, 0, 0, credit_amt[b] - price);
            d.n_in = 2;
            d.n_out = 3;
        } else {
            d.n_in = 1;
            d.n_out = 1;
        }
        add_tx(&w, &d, txid);
        count++;
        memcpy(stamp_op[s].txid, txid, 32);
        stamp_op[s].index = 0;
        stamp_owner[s] = b;
        if (trade) {
            memcpy(credit_op[b].txid, txid, 32);
            credit_op[b].index = 2;
            credit_amt[b] -= price;
        }
    }
    flush_block(&w);
    m->txs = count;
    m->hot_series = 1;
    m->hot_serial = 1;
    memcpy(m->busy_key, keys[stamp_owner[0]], 32);
    int ok = fclose(w.out) == 0;
    free(w.txbuf);
    free(w.leaves);
    free(keys);
    free(stamp_op);
    free(stamp_owner);
    free(credit_op);
    free(credit_amt);
    free(outs);
    return ok;
}

/* ---- the limits ------------------------------------------------------- */

static double read_only(const char *path)
{
    double t0 = now();
    int fd = open(path, O_RDONLY);
    static uint8_t buf[1 << 20];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
    return now() - t0;
}

/* Read, frame and parse every block and transaction: what any scan does. */
static double read_parse(const char *path, uint64_t *txs)
{
    double t0 = now();
    pm_recfile *rf;
    pm_recfile_header h;
    tool_fault fault;
    *txs = 0;
    if (recfile_open(&rf, &h, &fault, path, PM_BLOCK_MAX_SIZE) != PM_OK)
        return -1;
    pm_recfile_record r;
    while (recfile_next(rf, &r, &fault) == 1 && r.bytes) {
        pm_block b;
        if (!pm_block_parse(pm_context_static, &b, NULL, r.bytes, r.size))
            break;
        const uint8_t *t;
        size_t n, cur = 0;
        while (pm_block_next_tx(pm_context_static, &t, &n, &b, &cur)) {
            pm_tx tx;
            *txs += pm_tx_parse(pm_context_static, &tx, NULL, t, n);
        }
    }
    pm_recfile_close(rf);
    return now() - t0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    uint64_t txs = 1000000;
    uint32_t collectors = 10000;
    int reps = 3;
    const char *keep = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--txs") && i + 1 < argc)
            txs = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--collectors") && i + 1 < argc)
            collectors = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep") && i + 1 < argc)
            keep = argv[++i];
        else {
            fprintf(stderr, "usage: bench_trace [--txs N] [--collectors N] [--reps R] [--keep PATH]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 99 || collectors < 2 || txs < 1000) {
        fprintf(stderr, "--reps 1..99, --collectors >= 2, --txs >= 1000\n");
        return 2;
    }
    char path[256];
    if (keep)
        snprintf(path, sizeof path, "%s", keep);
    else
        snprintf(path, sizeof path, "/tmp/bench_trace_%d.pmbk", (int)getpid());

    pm_context *ctx = pm_context_create();
    pm_hasher *h = pm_hasher_create(ctx->tags);
    made m;
    double t0 = now();
    if (!make_chain(h, path, txs, collectors, &m)) {
        fprintf(stderr, "cannot write %s\n", path);
        return 1;
    }
    fprintf(stderr, "synthesized %llu transactions in %.1f s: %s\n", (unsigned long long)m.txs,
            now() - t0, path);

    double rd[99], rp[99], tr[99], ho[99];
    uint64_t parsed = 0;
    size_t events = 0, held = 0;
    read_only(path); /* warm the page cache */
    for (int r = 0; r < reps; r++) {
        rd[r] = read_only(path);
        rp[r] = read_parse(path, &parsed);
        pm_stamp_trace t;
        tool_fault e;
        double s = now();
        if (pm_trace_stamp(ctx, &t, &e, path, OPERATOR, m.hot_series, m.hot_serial) != PM_OK) {
            fprintf(stderr, "trace failed: %s\n", e.message);
            return 1;
        }
        tr[r] = now() - s;
        events = t.n_events;
        pm_stamp_trace_free(&t);
        pm_holdings hd;
        s = now();
        if (pm_holdings_scan(ctx, &hd, &e, path, m.busy_key) != PM_OK) {
            fprintf(stderr, "holdings failed: %s\n", e.message);
            return 1;
        }
        ho[r] = now() - s;
        held = hd.n;
        pm_holdings_free(&hd);
    }
    double lim = median(rp, reps);
    printf("chain: %llu transactions (%llu parsed)\n", (unsigned long long)m.txs,
           (unsigned long long)parsed);
    printf("read file           %.3f s\n", median(rd, reps));
    printf("read+parse (limit)  %.3f s\n", lim);
    printf("trace %u:%u:%u       %.3f s  (%zu events)  ratio to limit %.2f\n", OPERATOR,
           m.hot_series, m.hot_serial, median(tr, reps), events, median(tr, reps) / lim);
    printf("holdings            %.3f s  (%zu outputs)  ratio to limit %.2f\n", median(ho, reps),
           held, median(ho, reps) / lim);
    if (!keep)
        unlink(path);
    pm_hasher_destroy(h);
    pm_context_destroy(ctx);
    return 0;
}
