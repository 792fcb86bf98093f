/*
 * test_snapshot.c — state snapshots (pm_engine_save_snapshot,
 * pm_engine_create_from_snapshot): the round trip on the vectors (every
 * registry, the UTXO set, the undo data), packing on from a loaded
 * snapshot against the vectors and against a full replay, disconnecting
 * after a restart, saving from the on_block callback and with an open
 * block, the multi-pass UTXO writer, parallel loading of a larger set, and
 * refusal of every damaged, truncated, foreign or garbage file.
 */
#include "gen.h"
#include "postmark_internal.h"
#include "postmark.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */
/* ---------------------------------------------------------------------- */

/* What pack mode emits: the blocks (copies) and the rejects. */
typedef struct {
    uint8_t **blocks;
    size_t *sizes;
    size_t n, cap;
    uint64_t *rej_index;
    pm_reason *rej_reason;
    uint8_t (*rej_txid)[32];
    size_t rejects, rej_cap;
    /* Optional: save a snapshot from the callback every `every` blocks. */
    pm_engine *engine;
    unsigned every;
    char paths[64][512];
    int64_t heights[64];
    size_t saved;
    int save_failed;
} sink;

static void on_block(void *data, const uint8_t *block, size_t size, uint64_t height,
                     const uint8_t hash[32])
{
    sink *s = data;
    (void)hash;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->blocks = realloc(s->blocks, s->cap * sizeof *s->blocks);
        s->sizes = realloc(s->sizes, s->cap * sizeof *s->sizes);
    }
    s->blocks[s->n] = malloc(size);
    memcpy(s->blocks[s->n], block, size);
    s->sizes[s->n++] = size;
    if (s->every && (height + 1) % s->every == 0 && s->saved < 64) {
        snprintf(s->paths[s->saved], sizeof s->paths[0], "%s/cb-%llu.snap", pm_test_tmpdir(),
                 (unsigned long long)height);
        s->heights[s->saved] = (int64_t)height;
        if (pm_engine_save_snapshot(s->engine, s->paths[s->saved]) != PM_OK)
            s->save_failed = 1;
        s->saved++;
    }
}

static void on_reject(void *data, uint64_t index, const uint8_t *txid, pm_reason reason)
{
    sink *s = data;
    if (s->rejects == s->rej_cap) {
        s->rej_cap = s->rej_cap ? 2 * s->rej_cap : 64;
        s->rej_index = realloc(s->rej_index, s->rej_cap * sizeof *s->rej_index);
        s->rej_reason = realloc(s->rej_reason, s->rej_cap * sizeof *s->rej_reason);
        s->rej_txid = realloc(s->rej_txid, s->rej_cap * sizeof *s->rej_txid);
    }
    s->rej_index[s->rejects] = index;
    s->rej_reason[s->rejects] = reason;
    memset(s->rej_txid[s->rejects], 0, 32);
    if (txid)
        memcpy(s->rej_txid[s->rejects], txid, 32);
    s->rejects++;
}

static void sink_free(sink *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->blocks[i]);
    free(s->blocks);
    free(s->sizes);
    free(s->rej_index);
    free(s->rej_reason);
    free(s->rej_txid);
    memset(s, 0, sizeof *s);
}

static pm_engine *new_engine(const pm_context *ctx, const pm_chain_params *params,
                             unsigned threads, uint32_t block_txs)
{
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = threads;
    cfg.block_max_txs = block_txs;
    pm_engine *e = NULL;
    CHECK(pm_engine_create(&e, ctx, params, &cfg) == PM_OK);
    return e;
}

static pm_engine *load_snapshot(const pm_context *ctx, const char *path, unsigned threads,
                                pm_status *status, char *err, size_t errlen)
{
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = threads;
    pm_engine *e = (pm_engine *)(uintptr_t)1; /* must be reset to NULL on failure */
    *status = pm_engine_create_from_snapshot(&e, ctx, NULL, &cfg, path, err, errlen);
    return e;
}

static int connect_all(pm_engine *e, uint8_t *const *blocks, const size_t *sizes, size_t n)
{
    pm_verdict v;
    return pm_engine_connect_blocks(e, &v, (const uint8_t *const *)blocks, sizes, n, 0) == PM_OK;
}

/* Registries as sorted arrays of triples, for comparison. */
typedef struct {
    uint32_t (*t)[3];
    size_t n, cap;
} triples;

static int add_triple(void *data, uint32_t a, uint32_t b, uint32_t c)
{
    triples *x = data;
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 64;
        x->t = realloc(x->t, x->cap * sizeof *x->t);
    }
    x->t[x->n][0] = a;
    x->t[x->n][1] = b;
    x->t[x->n][2] = c;
    x->n++;
    return 0;
}

static int cmp_triple(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(uint32_t[3])) < 0 ? -1 : memcmp(a, b, sizeof(uint32_t[3])) > 0;
}

static void sorted_triples(const pm_ledger *l, int minted, triples *out)
{
    memset(out, 0, sizeof *out);
    if (minted)
        pm_ledger_foreach_minted(l, add_triple, out);
    else
        pm_ledger_foreach_series(l, add_triple, out);
    if (out->n > 1)
        qsort(out->t, out->n, sizeof *out->t, cmp_triple);
}

/* Every UTXO of a is in b with the same output (with equal counts: the
 * same set). */
typedef struct {
    pm_engine *other;
    size_t missing;
} utxo_cmp;

static int check_in_other(void *data, const uint8_t txid[32], uint16_t index,
                          const uint8_t output[PM_OUTPUT_SIZE])
{
    utxo_cmp *c = data;
    uint8_t o[PM_OUTPUT_SIZE];
    if (!pm_utxo_table_lookup(pm_ledger_utxo(c->other->ledger), txid, index, o) ||
        memcmp(o, output, PM_OUTPUT_SIZE) != 0)
        c->missing++;
    return 0;
}

/* The whole state of two engines is the same: tip, UTXO set (count,
 * digest, entry by entry), gov_seq, operators (in order, every field),
 * series, minted set, and the undo data of every block kept: the same
 * blocks, log lengths and spent counts, and the same bytes when one
 * engine's logs are copies of the other's (`copies`: the logs hold struct
 * padding, whose bytes differ between engines that built them apart). */
static int same_state_logs(pm_engine *a, pm_engine *b, const char *what, int copies)
{
    unsigned long failed = pm_test_failed;
    uint8_t ha[32], hb[32], da[32], db[32];
    int64_t heighta, heightb;
    pm_engine_tip(a, ha, &heighta);
    pm_engine_tip(b, hb, &heightb);
    CHECKF(heighta == heightb && memcmp(ha, hb, 32) == 0, "%s: tip", what);
    CHECKF(pm_engine_utxo_count(a) == pm_engine_utxo_count(b), "%s: utxo count %llu vs %llu",
           what, (unsigned long long)pm_engine_utxo_count(a),
           (unsigned long long)pm_engine_utxo_count(b));
    CHECK(pm_engine_utxo_digest(a, da) == PM_OK && pm_engine_utxo_digest(b, db) == PM_OK);
    CHECKF(memcmp(da, db, 32) == 0, "%s: utxo digest", what);
    utxo_cmp c = {b, 0};
    pm_utxo_table_foreach(pm_ledger_utxo(a->ledger), check_in_other, &c);
    CHECKF(c.missing == 0, "%s: %zu entries differ", what, c.missing);

    pm_ledger *la = a->ledger, *lb = b->ledger;
    CHECKF(pm_ledger_gov_seq(la) == pm_ledger_gov_seq(lb), "%s: gov_seq", what);
    CHECKF(pm_ledger_operator_count(la) == pm_ledger_operator_count(lb), "%s: operators", what);
    for (size_t i = 0; i < pm_ledger_operator_count(la) && i < pm_ledger_operator_count(lb); i++) {
        pm_operator_info x, y;
        pm_ledger_operator_at(la, i, &x);
        pm_ledger_operator_at(lb, i, &y);
        CHECKF(x.id == y.id && memcmp(x.key, y.key, 32) == 0 && x.name_len == y.name_len &&
                   memcmp(x.name, y.name, x.name_len) == 0 && x.op_seq == y.op_seq,
               "%s: operator %zu", what, i);
    }
    for (int minted = 0; minted <= 1; minted++) {
        triples ta, tb;
        sorted_triples(la, minted, &ta);
        sorted_triples(lb, minted, &tb);
        CHECKF(ta.n == tb.n && (ta.n == 0 || memcmp(ta.t, tb.t, ta.n * sizeof *ta.t) == 0),
               "%s: %s (%zu vs %zu)", what, minted ? "minted set" : "series", ta.n, tb.n);
        free(ta.t);
        free(tb.t);
    }
    size_t n = pm_ledger_history_count(la);
    CHECKF(n == pm_ledger_history_count(lb), "%s: undo blocks %zu vs %zu", what, n,
           pm_ledger_history_count(lb));
    for (size_t i = 0; i < n && i < pm_ledger_history_count(lb); i++) {
        uint8_t h1[32], p1[32], h2[32], p2[32];
        const uint8_t *g1, *g2;
        size_t n1, n2, s1, s2;
        pm_ledger_history_at(la, i, h1, p1, &g1, &n1, &s1);
        pm_ledger_history_at(lb, i, h2, p2, &g2, &n2, &s2);
        CHECKF(memcmp(h1, h2, 32) == 0 && memcmp(p1, p2, 32) == 0 && n1 == n2 && s1 == s2 &&
                   (!copies || memcmp(g1, g2, n1) == 0),
               "%s: undo block %zu", what, i);
    }
    return pm_test_failed == failed;
}

/* A loaded engine's published operator keys (what the workers read) are
 * its registry's. */
static void check_published_keys(pm_engine *e)
{
    const pm_ledger *l = e->ledger;
    for (size_t i = 0; i < pm_ledger_operator_count(l); i++) {
        pm_operator_info op;
        pm_ledger_operator_at(l, i, &op);
        const uint8_t *k = pm_opkeys_find(pm_ledger_opkeys(l), op.id);
        CHECKF(k && memcmp(k, op.key, 32) == 0, "published key of operator %u", op.id);
    }
}

static int same_state(pm_engine *a, pm_engine *b, const char *what)
{
    return same_state_logs(a, b, what, 0);
}

/* b was loaded from a snapshot of a. */
static int same_loaded(pm_engine *a, pm_engine *b, const char *what)
{
    check_published_keys(b);
    return same_state_logs(a, b, what, 1);
}

static const char *tmp_path(const char *name)
{
    static char path[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(path[k], sizeof path[k], "%s/%s", pm_test_tmpdir(), name);
    return path[k];
}

/* ---------------------------------------------------------------------- */
/* Round trip                                                              */
/* ---------------------------------------------------------------------- */

static void test_round_trip(const pm_context *ctx, const pm_vfile *chain)
{
    pm_engine *a = new_engine(ctx, &chain->params, 2, 4096);
    CHECK(connect_all(a, (uint8_t *const *)chain->rec, chain->len, chain->n));
    const char *path = tmp_path("s1.snap");
    CHECK(pm_engine_save_snapshot(a, path) == PM_OK);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size > 0);
    CHECK(access(tmp_path("s1.snap.tmp"), F_OK) != 0); /* renamed away */

    /* The state is the vector's (independent figures). */
    uint8_t digest[32], expect[32];
    CHECK(pm_unhex(expect, 32, "ca4123871244dd8c98e9b0376464cbf6ee5044549d3e2aaac4930b4fc730e6a9"));
    for (unsigned threads = 1; threads <= 4; threads *= 2) {
        char err[256];
        pm_status status;
        pm_engine *b = load_snapshot(ctx, path, threads, &status, err, sizeof err);
        CHECKF(status == PM_OK, "threads %u: %s", threads, err);
        if (status != PM_OK)
            continue;
        CHECK(err[0] == 0);
        same_loaded(a, b, "round trip");
        int64_t height;
        uint8_t tip[32], tip_expect[32];
        pm_engine_tip(b, tip, &height);
        CHECK(pm_unhex(tip_expect, 32,
                       "ef2363e60d40737a6913ff62ec8719b442b4edb85311df86312f2f49b4cb1413"));
        CHECK(height == 8 && memcmp(tip, tip_expect, 32) == 0);
        CHECK(pm_engine_utxo_count(b) == 1150);
        CHECK(pm_engine_utxo_digest(b, digest) == PM_OK && memcmp(digest, expect, 32) == 0);
        CHECK(pm_ledger_history_count(b->ledger) == 9);
        /* Saved again, the loaded state gives the same file (the same
         * sections; series and minted sets may come in another order). */
        const char *again = tmp_path("s1-again.snap");
        CHECK(pm_engine_save_snapshot(b, again) == PM_OK);
        pm_engine *c = load_snapshot(ctx, again, 1, &status, err, sizeof err);
        CHECKF(status == PM_OK, "%s", err);
        if (c)
            same_loaded(a, c, "saved twice");
        pm_engine_destroy(c);
        pm_engine_destroy(b);
    }

    /* With the expected parameters: accepted; another chain: refused. */
    pm_engine *b = NULL;
    char err[256];
    CHECK(pm_engine_create_from_snapshot(&b, ctx, &chain->params, NULL, path, err, sizeof err) ==
          PM_OK);
    pm_engine_destroy(b);
    pm_chain_params other = chain->params;
    other.network[0] ^= 1;
    b = (pm_engine *)(uintptr_t)1;
    CHECK(pm_engine_create_from_snapshot(&b, ctx, &other, NULL, path, err, sizeof err) ==
          PM_ERR_MISMATCH);
    CHECK(b == NULL);
    CHECKF(strstr(err, "another chain") != NULL, "%s", err);
    other = chain->params;
    other.governance_key[31] ^= 0x80;
    CHECK(pm_engine_create_from_snapshot(&b, ctx, &other, NULL, path, err, sizeof err) ==
          PM_ERR_MISMATCH);
    CHECK(b == NULL);
    /* No message buffer at all. */
    CHECK(pm_engine_create_from_snapshot(&b, ctx, &other, NULL, path, NULL, 0) == PM_ERR_MISMATCH);

    /* A small undo depth keeps the newest blocks only. */
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = 1;
    cfg.undo_depth = 3;
    CHECK(pm_engine_create_from_snapshot(&b, ctx, NULL, &cfg, path, err, sizeof err) == PM_OK);
    if (b) {
        CHECK(pm_ledger_history_count(b->ledger) == 3);
        for (int i = 0; i < 3; i++)
            CHECK(pm_engine_disconnect_tip(b) == PM_OK);
        CHECK(pm_engine_disconnect_tip(b) == PM_ERR_STATE);
        int64_t height;
        pm_engine_tip(b, NULL, &height);
        CHECK(height == 5);
        pm_engine_destroy(b);
    }
    pm_engine_destroy(a);
}

/* The empty state (no block): height -1, the chain id as tip, the empty
 * set's digest (chain.txt). */
static void test_empty_state(const pm_context *ctx, const pm_vfile *chain)
{
    pm_engine *a = new_engine(ctx, &chain->params, 1, 4096);
    const char *path = tmp_path("empty.snap");
    CHECK(pm_engine_save_snapshot(a, path) == PM_OK);
    pm_status status;
    char err[256];
    pm_engine *b = load_snapshot(ctx, path, 2, &status, err, sizeof err);
    CHECKF(status == PM_OK, "%s", err);
    if (b) {
        same_loaded(a, b, "empty state");
        uint8_t tip[32], id[32], digest[32], expect[32];
        int64_t height;
        pm_engine_tip(b, tip, &height);
        CHECK(pm_unhex(id, 32, "74801713de9759e22bfb4a8734a7aa04f3a05b4d197af055deae67a1b4965323"));
        CHECK(pm_unhex(expect, 32,
                       "dec58653fbd3e2341d395f7adc87020dddcab8af18bb25a1d5eb782b609ed46e"));
        CHECK(height == -1 && memcmp(tip, id, 32) == 0);
        CHECK(pm_engine_utxo_count(b) == 0);
        CHECK(pm_engine_utxo_digest(b, digest) == PM_OK && memcmp(digest, expect, 32) == 0);
        CHECK(pm_engine_disconnect_tip(b) == PM_ERR_STATE);
        /* And the chain connects on top of it. */
        CHECK(connect_all(b, (uint8_t *const *)chain->rec, chain->len, chain->n));
        pm_engine_tip(b, NULL, &height);
        CHECK(height == 8);
        pm_engine_destroy(b);
    }
    pm_engine_destroy(a);
}

/* ---------------------------------------------------------------------- */
/* Packing on from a snapshot; disconnecting after a restart               */
/* ---------------------------------------------------------------------- */

static void pack_stream(pm_engine *e, sink *s, const pm_vfile *stream)
{
    pm_engine_set_callbacks(e, on_block, on_reject, s);
    for (size_t i = 0; i < stream->n; i++)
        CHECK(pm_engine_submit(e, stream->rec[i], stream->len[i]) == PM_OK);
    CHECK(pm_engine_flush(e) == PM_OK);
}

/* The rejects of a vector CSV (index,txid,reason) equal the sink's. */
static int rejects_match_csv(const sink *s, const char *csv_name, uint64_t index_base)
{
    pm_vreject *want = NULL;
    size_t n = 0;
    if (!pm_vrejects_load(&want, &n, csv_name))
        return 0;
    int ok = n == s->rejects;
    static const uint8_t no_txid[32];
    for (size_t k = 0; ok && k < n; k++)
        ok = s->rej_index[k] == want[k].index + index_base && s->rej_reason[k] == want[k].reason &&
             memcmp(s->rej_txid[k], want[k].has_txid ? want[k].txid : no_txid, 32) == 0;
    free(want);
    return ok;
}

static void test_pack_on(const pm_context *ctx)
{
    pm_vfile half1, half2, halves;
    CHECK(pm_vfile_load(&half1, "s1.half1.pmtx"));
    CHECK(pm_vfile_load(&half2, "s1.half2.pmtx"));
    CHECK(pm_vfile_load(&halves, "s1.halves.b32.pmbk"));

    /* A packs half1; its snapshot is loaded into B; C replays A's blocks. */
    pm_engine *a = new_engine(ctx, &half1.params, 2, 32);
    sink sa = {0};
    pack_stream(a, &sa, &half1);
    CHECK(sa.n > 0 && sa.n < halves.n);
    const char *path = tmp_path("half1.snap");
    CHECK(pm_engine_save_snapshot(a, path) == PM_OK);
    pm_status status;
    char err[256];
    pm_engine *b = load_snapshot(ctx, path, 2, &status, err, sizeof err);
    CHECKF(status == PM_OK, "%s", err);
    pm_engine *c = new_engine(ctx, &half1.params, 2, 32);
    CHECK(connect_all(c, sa.blocks, sa.sizes, sa.n));
    if (!b) {
        pm_engine_destroy(a);
        pm_engine_destroy(c);
        return;
    }
    b->cfg.block_max_txs = 32; /* a restart's own setting */
    same_loaded(a, b, "after half1");

    sink s[3] = {{0}};
    pm_engine *e[3] = {a, b, c};
    for (int i = 0; i < 3; i++)
        pack_stream(e[i], &s[i], &half2);
    /* The blocks after half1's are the vector's, byte for byte; the rejects
     * are rejects2.csv; the same from all three engines. */
    size_t base = sa.n;
    for (int i = 0; i < 3; i++) {
        int same = base + s[i].n == halves.n;
        for (size_t k = 0; same && k < s[i].n; k++)
            same = s[i].sizes[k] == halves.len[base + k] &&
                   memcmp(s[i].blocks[k], halves.rec[base + k], s[i].sizes[k]) == 0;
        CHECKF(same, "engine %d: blocks after half1 differ from s1.halves.b32.pmbk", i);
        /* A's submission indexes go on from half1's. */
        CHECKF(rejects_match_csv(&s[i], "s1.halves.b32.rejects2.csv", i == 0 ? half1.n : 0),
               "engine %d: rejects differ from rejects2.csv", i);
    }
    same_state(b, c, "after half2 (snapshot vs replay)");
    same_state(a, b, "after half2 (snapshot vs original)");
    for (int i = 0; i < 3; i++)
        sink_free(&s[i]);
    sink_free(&sa);
    pm_engine_destroy(a);
    pm_engine_destroy(b);
    pm_engine_destroy(c);
    pm_vfile_free(&half1);
    pm_vfile_free(&half2);
    pm_vfile_free(&halves);
}

static void test_disconnect_after_load(const pm_context *ctx, const pm_vfile *chain)
{
    pm_engine *a = new_engine(ctx, &chain->params, 2, 4096);
    CHECK(connect_all(a, (uint8_t *const *)chain->rec, chain->len, chain->n));
    const char *path = tmp_path("disc.snap");
    CHECK(pm_engine_save_snapshot(a, path) == PM_OK);
    pm_status status;
    char err[256];
    pm_engine *b = load_snapshot(ctx, path, 2, &status, err, sizeof err);
    CHECKF(status == PM_OK, "%s", err);
    if (!b) {
        pm_engine_destroy(a);
        return;
    }
    for (size_t k = 0; k < chain->n; k++) {
        CHECK(pm_engine_disconnect_tip(a) == PM_OK);
        CHECK(pm_engine_disconnect_tip(b) == PM_OK);
        char what[64];
        snprintf(what, sizeof what, "after %zu disconnects", k + 1);
        if (!same_state_logs(a, b, what, 1))
            break;
    }
    CHECK(pm_engine_disconnect_tip(a) == PM_ERR_STATE);
    CHECK(pm_engine_disconnect_tip(b) == PM_ERR_STATE);
    /* Back at genesis: the chain connects again to the same tip. */
    CHECK(connect_all(b, (uint8_t *const *)chain->rec, chain->len, chain->n));
    CHECK(connect_all(a, (uint8_t *const *)chain->rec, chain->len, chain->n));
    same_state(a, b, "reconnected");
    /* And a snapshot taken after a partial disconnect loads as that state. */
    CHECK(pm_engine_disconnect_tip(b) == PM_OK && pm_engine_disconnect_tip(b) == PM_OK);
    CHECK(pm_engine_save_snapshot(b, path) == PM_OK);
    pm_engine *c = load_snapshot(ctx, path, 1, &status, err, sizeof err);
    CHECKF(status == PM_OK, "%s", err);
    if (c) {
        same_loaded(b, c, "snapshot at height 6");
        CHECK(connect_all(c, (uint8_t *const *)chain->rec + 7, chain->len + 7, 2));
        same_state(a, c, "height 6 snapshot + 2 blocks");
    }
    pm_engine_destroy(c);
    pm_engine_destroy(a);
    pm_engine_destroy(b);
}

/* A generated market (engine/gen.h: key rotations, many series, stamps and
 * credits, every kind of invalid record): the first half packed, saved,
 * loaded; the second half packed by the original, the loaded engine and a
 * replay of the first half's blocks gives the same blocks and rejects, and
 * the undo data of the loaded engine takes the chain back as the
 * original's does. */
static void test_generated_market(const pm_context *ctx)
{
    pm_gen_config g;
    pm_gen_config_default(&g, PM_GEN_MARKET);
    g.seed = 7;
    g.txs = 3000;
    g.operators = 5;
    g.series_per_operator = 4;
    g.collectors = 200;
    g.threads = 2;
    int fd = memfd_create("market", MFD_CLOEXEC);
    tool_fault fault;
    char err[256];
    CHECK(fd >= 0 && pm_gen_write(ctx, &g, fd, NULL, &fault) == PM_OK);
    struct stat st;
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size > PM_FILE_HEADER_SIZE);
    if (fd < 0 || st.st_size <= PM_FILE_HEADER_SIZE)
        return;
    size_t size = (size_t)st.st_size;
    uint8_t *data = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    CHECK(data != MAP_FAILED);
    if (data == MAP_FAILED)
        return;
    pm_vfile first = {0}, second = {0};
    pm_file_kind kind;
    CHECK(pm_file_header_parse(pm_context_static, &kind, &first.params, NULL, data, size));
    second.params = first.params;
    first.rec = malloc(g.txs * sizeof *first.rec);
    first.len = malloc(g.txs * sizeof *first.len);
    second.rec = malloc(g.txs * sizeof *second.rec);
    second.len = malloc(g.txs * sizeof *second.len);
    size_t off = PM_FILE_HEADER_SIZE, k = 0;
    while (off + 4 <= size) {
        size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8 |
                     (size_t)data[off + 2] << 16 | (size_t)data[off + 3] << 24;
        if (off + 4 + len > size)
            break;
        pm_vfile *f = k < g.txs / 2 ? &first : &second;
        f->rec[f->n] = data + off + 4;
        f->len[f->n++] = len;
        off += 4 + len;
        k++;
    }
    CHECK(k == g.txs);

    pm_engine *a = new_engine(ctx, &first.params, 2, 64);
    sink sa = {0};
    pack_stream(a, &sa, &first);
    CHECK(sa.n >= 8 && sa.rejects > 0);
    const char *path = tmp_path("market.snap");
    CHECK(pm_engine_save_snapshot(a, path) == PM_OK);
    pm_status status;
    pm_engine *b = load_snapshot(ctx, path, 2, &status, err, sizeof err);
    CHECKF(status == PM_OK, "%s", err);
    pm_engine *c = new_engine(ctx, &first.params, 2, 64);
    CHECK(connect_all(c, sa.blocks, sa.sizes, sa.n));
    if (b) {
        b->cfg.block_max_txs = 64;
        same_loaded(a, b, "market after the first half");
        CHECK(pm_ledger_operator_count(b->ledger) == 5 && pm_ledger_series_count(b->ledger) > 0 &&
              pm_ledger_minted_count(b->ledger) > 0);
        sink s[3] = {{0}};
        pm_engine *e[3] = {a, b, c};
        for (int i = 0; i < 3; i++)
            pack_stream(e[i], &s[i], &second);
        for (int i = 1; i < 3; i++) {
            int same = s[i].n == s[0].n && s[i].rejects == s[0].rejects;
            for (size_t j = 0; same && j < s[0].n; j++)
                same = s[i].sizes[j] == s[0].sizes[j] &&
                       memcmp(s[i].blocks[j], s[0].blocks[j], s[0].sizes[j]) == 0;
            for (size_t j = 0; same && j < s[0].rejects; j++)
                same = s[i].rej_index[j] == s[0].rej_index[j] - first.n &&
                       s[i].rej_reason[j] == s[0].rej_reason[j] &&
                       memcmp(s[i].rej_txid[j], s[0].rej_txid[j], 32) == 0;
            CHECKF(same, "market second half: engine %d differs from the original", i);
        }
        CHECK(s[0].n > 0 && s[0].rejects > 0);
        same_state(a, b, "market after the second half");
        /* Back to the snapshot's height and beyond, on both. */
        size_t back = pm_ledger_history_count(b->ledger);
        CHECK(back == pm_ledger_history_count(a->ledger) && back > s[0].n);
        for (size_t j = 0; j < back; j++) {
            CHECK(pm_engine_disconnect_tip(a) == PM_OK);
            CHECK(pm_engine_disconnect_tip(b) == PM_OK);
        }
        same_state(a, b, "market disconnected");
        for (int i = 0; i < 3; i++)
            sink_free(&s[i]);
    }
    sink_free(&sa);
    pm_engine_destroy(a);
    pm_engine_destroy(b);
    pm_engine_destroy(c);
    free(first.rec);
    free(first.len);
    free(second.rec);
    free(second.len);
    munmap(data, size);
}

/* ---------------------------------------------------------------------- */
/* Saving during pack                                                      */
/* ---------------------------------------------------------------------- */

/* Snapshots saved from the on_block callback (workers busy) are exactly
 * the states after each block: equal to a replay up to it. */
static void test_save_from_callback(const pm_context *ctx, const pm_vfile *stream,
                                    const pm_vfile *chain)
{
    for (unsigned threads = 1; threads <= 4; threads *= 4) {
        pm_engine *a = new_engine(ctx, &stream->params, threads, 32);
        sink s = {.engine = a, .every = 2};
        pack_stream(a, &s, stream);
        CHECK(!s.save_failed);
        CHECK(s.n == chain->n && s.saved == chain->n / 2);
        for (size_t k = 0; k < s.saved; k++) {
            pm_status status;
            char err[256];
            pm_engine *b = load_snapshot(ctx, s.paths[k], 2, &status, err, sizeof err);
            CHECKF(status == PM_OK, "%s: %s", s.paths[k], err);
            pm_engine *r = new_engine(ctx, &stream->params, 2, 32);
            CHECK(connect_all(r, (uint8_t *const *)chain->rec, chain->len,
                              (size_t)s.heights[k] + 1));
            if (b) {
                char what[64];
                snprintf(what, sizeof what, "callback snapshot at height %lld",
                         (long long)s.heights[k]);
                same_state(r, b, what);
            }
            pm_engine_destroy(b);
            pm_engine_destroy(r);
        }
        sink_free(&s);
        pm_engine_destroy(a);
    }
}

/* A save while the open block holds applied transactions: the snapshot is
 * the tip's state without them, and packing goes on to the same blocks. */
static void test_save_with_open_block(const pm_context *ctx, const pm_vfile *stream,
                                      const pm_vfile *chain)
{
    pm_engine *a = new_engine(ctx, &stream->params, 2, 32);
    sink s = {0};
    pm_engine_set_callbacks(a, on_block, on_reject, &s);
    size_t half = stream->n / 2;
    for (size_t i = 0; i < half; i++)
        CHECK(pm_engine_submit(a, stream->rec[i], stream->len[i]) == PM_OK);
    pm_reason reason;
    /* check_tx validates everything submitted: the open block fills. */
    CHECK(pm_engine_check_tx(a, &reason, stream->rec[0], stream->len[0]) == PM_OK);
    CHECK(pm_ledger_mark(a->ledger) != 0);
    size_t emitted = s.n;
    const char *path = tmp_path("open.snap");
    CHECK(pm_engine_save_snapshot(a, path) == PM_OK);
    CHECK(s.n == emitted);
    pm_status status;
    char err[256];
    pm_engine *b = load_snapshot(ctx, path, 2, &status, err, sizeof err);
    CHECKF(status == PM_OK, "%s", err);
    pm_engine *r = new_engine(ctx, &stream->params, 2, 32);
    CHECK(connect_all(r, s.blocks, s.sizes, s.n));
    if (b)
        same_state(r, b, "snapshot with an open block");
    int64_t height;
    pm_engine_tip(b ? b : r, NULL, &height);
    CHECK(height == (int64_t)emitted - 1);
    /* The open block is intact: the rest packs to the vector's chain. */
    for (size_t i = half; i < stream->n; i++)
        CHECK(pm_engine_submit(a, stream->rec[i], stream->len[i]) == PM_OK);
    CHECK(pm_engine_submit_truncated(a) == PM_OK);
    CHECK(pm_engine_flush(a) == PM_OK);
    int same = s.n == chain->n;
    for (size_t k = 0; same && k < s.n; k++)
        same = s.sizes[k] == chain->len[k] && memcmp(s.blocks[k], chain->rec[k], s.sizes[k]) == 0;
    CHECKF(same, "blocks after a save with an open block differ from s1.b32.pmbk");
    CHECK(s.rejects == 44);
    pm_engine_destroy(b);
    pm_engine_destroy(r);
    pm_engine_destroy(a);
    sink_free(&s);
}

/* ---------------------------------------------------------------------- */
/* A larger synthetic set: multi-pass writer, parallel loader              */
/* ---------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fill_synthetic(pm_engine *e, size_t n, uint64_t seed)
{
    pm_utxo_table *t = pm_ledger_utxo(e->ledger);
    uint8_t txid[32], out[PM_OUTPUT_SIZE];
    for (size_t i = 0; i < n;) {
        for (int k = 0; k < 4; k++) {
            uint64_t v = rng_next(&seed);
            memcpy(txid + 8 * k, &v, 8);
        }
        /* Some txids share their first 4 or 8 bytes, as a sort must
         * handle (the outputs of one txid share all 32). */
        if (i % 7 == 0)
            memset(txid, 0xab, 4);
        else if (i % 11 == 0)
            memset(txid, 0xcd, 8);
        unsigned outs = 1 + (unsigned)(rng_next(&seed) % 3);
        for (unsigned j = 0; j < outs && i < n; j++, i++) {
            pm_output o;
            memset(&o, 0, sizeof o);
            uint64_t v = rng_next(&seed);
            memcpy(o.owner, &v, 8);
            o.kind = (v & 1) ? PM_OUTPUT_STAMP : PM_OUTPUT_CREDIT;
            o.operator_id = 1 + (uint32_t)(v >> 40) % 5;
            o.series = (uint32_t)(v >> 20) & 0xff;
            o.serial = 1 + (uint32_t)(v >> 8) % 1000;
            o.amount = 1 + (v >> 3);
            pm_output_encode(pm_context_static, out, &o);
            CHECK(pm_utxo_table_insert(t, txid, (uint16_t)(j * 300), out) == PM_OK);
        }
    }
}

/* The §8 record of an entry (txid, index big-endian, output). */
typedef struct {
    uint8_t (*rec)[PM_SNAP_UTXO_SIZE];
    size_t n;
} records;

static int add_record(void *data, const uint8_t txid[32], uint16_t index,
                      const uint8_t output[PM_OUTPUT_SIZE])
{
    records *r = data;
    memcpy(r->rec[r->n], txid, 32);
    r->rec[r->n][32] = (uint8_t)(index >> 8);
    r->rec[r->n][33] = (uint8_t)index;
    memcpy(r->rec[r->n] + 34, output, PM_OUTPUT_SIZE);
    r->n++;
    return 0;
}

static int cmp_record(const void *a, const void *b)
{
    return memcmp(a, b, 34);
}

/* Where the UTXO section's payload starts in a snapshot image. */
static size_t utxo_payload_offset(const uint8_t *img)
{
    size_t off = PM_SNAP_PREAMBLE_SIZE;
    for (int sec = 0; sec < 4; sec++) {
        uint64_t len = 0;
        for (int k = 0; k < 8; k++)
            len |= (uint64_t)img[off + 16 + k] << (8 * k);
        off += PM_SNAP_SECTION_HEADER_SIZE + (size_t)len + PM_SNAP_CHECKSUM_SIZE;
    }
    return off + PM_SNAP_SECTION_HEADER_SIZE;
}

static void test_large_set(const pm_context *ctx, const pm_vfile *chain)
{
    const size_t n = 60000;
    pm_engine *a = new_engine(ctx, &chain->params, 2, 4096);
    fill_synthetic(a, n, 42);
    CHECK(pm_engine_utxo_count(a) == n);
    const char *path = tmp_path("big.snap");
    CHECK(pm_engine_save_snapshot(a, path) == PM_OK);
    /* The UTXO section is every entry in §8 order, as a plain sort of the
     * table's records gives it. */
    records want = {malloc(n * sizeof *want.rec), 0};
    pm_utxo_table_foreach(pm_ledger_utxo(a->ledger), add_record, &want);
    qsort(want.rec, want.n, sizeof *want.rec, cmp_record);
    size_t size;
    uint8_t *img = pm_read_file(path, &size);
    size_t off = img ? utxo_payload_offset(img) : 0;
    CHECK(img && want.n == n && off + n * PM_SNAP_UTXO_SIZE <= size &&
          memcmp(img + off, want.rec, n * PM_SNAP_UTXO_SIZE) == 0);
    free(img);
    free(want.rec);
    uint8_t digest[32];
    CHECK(pm_engine_utxo_digest(a, digest) == PM_OK);
    for (unsigned threads = 1; threads <= 8; threads *= 2) {
        pm_status status;
        char err[256];
        pm_engine *b = load_snapshot(ctx, path, threads, &status, err, sizeof err);
        CHECKF(status == PM_OK, "threads %u: %s", threads, err);
        if (!b)
            continue;
        uint8_t got[32];
        CHECK(pm_engine_utxo_digest(b, got) == PM_OK && memcmp(got, digest, 32) == 0);
        utxo_cmp c = {a, 0};
        pm_utxo_table_foreach(pm_ledger_utxo(b->ledger), check_in_other, &c);
        CHECK(c.missing == 0 && pm_engine_utxo_count(b) == n);
        pm_engine_destroy(b);
    }
    pm_engine_destroy(a);
}

/* ---------------------------------------------------------------------- */
/* Refusals                                                                */
/* ---------------------------------------------------------------------- */

/* The section holding each byte of an image, by walking its framing:
 * -1 for the preamble, else the section's index (0 HEAD .. 6 ENDM). */
static void section_map(const uint8_t *img, size_t size, int *sec_of, size_t *starts,
                        size_t *n_sections)
{
    for (size_t i = 0; i < PM_SNAP_PREAMBLE_SIZE && i < size; i++)
        sec_of[i] = -1;
    size_t off = PM_SNAP_PREAMBLE_SIZE, k = 0;
    while (off + PM_SNAP_SECTION_HEADER_SIZE <= size && k < 7) {
        uint64_t len = (uint64_t)img[off + 16] | (uint64_t)img[off + 17] << 8 |
                       (uint64_t)img[off + 18] << 16 | (uint64_t)img[off + 19] << 24 |
                       (uint64_t)img[off + 20] << 32;
        size_t end = off + PM_SNAP_SECTION_HEADER_SIZE + (size_t)len + PM_SNAP_CHECKSUM_SIZE;
        starts[k] = off;
        for (size_t i = off; i < end && i < size; i++)
            sec_of[i] = (int)k;
        off = end;
        k++;
    }
    *n_sections = k;
}

static const char *const tags[] = {"HEAD", "OPER", "SERI", "MINT", "UTXO", "UNDO", "ENDM"};

/* Load an image written to a file; returns the status, err set. */
static pm_status load_image(const pm_context *ctx, const uint8_t *img, size_t size, char *err,
                            size_t errlen)
{
    const char *path = tmp_path("damaged.snap");
    if (!pm_write_file(path, img, size))
        return PM_ERR_IO;
    pm_engine *e = (pm_engine *)(uintptr_t)1;
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = 1;
    pm_status st = pm_engine_create_from_snapshot(&e, ctx, NULL, &cfg, path, err, errlen);
    if (st == PM_OK)
        pm_engine_destroy(e);
    else
        CHECK(e == NULL);
    return st;
}

static void test_flipped_bytes(const pm_context *ctx, const uint8_t *img, size_t size)
{
    int *sec_of = malloc(size * sizeof *sec_of);
    size_t starts[7], n_sections;
    section_map(img, size, sec_of, starts, &n_sections);
    CHECK(n_sections == 7);
    uint8_t *copy = malloc(size);
    size_t tried = 0, refused = 0, named = 0;
    for (size_t off = 0; off < size; off++) {
        int s = sec_of[off];
        /* Every byte of the preamble, the header, every framing and every
         * checksum; a sample of the large payloads. */
        int framing = 0;
        for (size_t k = 0; k < n_sections; k++) {
            size_t len_end = starts[k] + PM_SNAP_SECTION_HEADER_SIZE;
            size_t next = k + 1 < n_sections ? starts[k + 1] : size;
            framing |= (off >= starts[k] && off < len_end) ||
                       (off >= next - PM_SNAP_CHECKSUM_SIZE && off < next);
        }
        if (!(s <= 0 || framing || s == 1 || s == 6 || off % 37 == 0))
            continue;
        memcpy(copy, img, size);
        copy[off] ^= (uint8_t)(1u << (off % 8));
        char err[256] = "";
        pm_status st = load_image(ctx, copy, size, err, sizeof err);
        tried++;
        if (st == PM_ERR_INVALID)
            refused++;
        else
            fprintf(stderr, "flip at %zu (section %d): status %d: %s\n", off, s, st, err);
        char want[32];
        snprintf(want, sizeof want, "%s%s at byte ", s < 0 ? "preamble" : tags[s],
                 s < 0 ? "" : " section");
        if (strncmp(err, want, strlen(want)) == 0)
            named++;
        else if (st == PM_ERR_INVALID)
            fprintf(stderr, "flip at %zu: expected '%s...', got '%s'\n", off, want, err);
    }
    CHECKF(refused == tried, "%zu of %zu flipped copies refused", refused, tried);
    CHECKF(named == tried, "%zu of %zu refusals name the right section", named, tried);
    CHECK(tried > 1000);
    free(copy);
    free(sec_of);
}

static void test_truncated(const pm_context *ctx, const uint8_t *img, size_t size)
{
    size_t tried = 0, refused = 0;
    for (size_t len = 0; len < size; len += (len < 600 || size - len < 600) ? 1 : 97) {
        char err[256] = "";
        pm_status st = load_image(ctx, img, len, err, sizeof err);
        tried++;
        int ok = st == PM_ERR_INVALID &&
                 (len == 0 ? strstr(err, "empty") != NULL : strstr(err, "truncated") != NULL);
        if (ok)
            refused++;
        else
            fprintf(stderr, "truncated to %zu: status %d: %s\n", len, st, err);
    }
    CHECKF(refused == tried, "%zu of %zu truncated copies refused as truncated", refused, tried);
    /* Extra bytes after the end marker. */
    uint8_t *longer = malloc(size + 3);
    memcpy(longer, img, size);
    memset(longer + size, 0, 3);
    char err[256];
    CHECK(load_image(ctx, longer, size + 3, err, sizeof err) == PM_ERR_INVALID);
    CHECKF(strstr(err, "ENDM section") != NULL, "%s", err);
    free(longer);
}

static void test_garbage(const pm_context *ctx)
{
    uint64_t seed = 7;
    char err[256];
    for (size_t size = 1; size < 20000; size = size * 3 + 1) {
        uint8_t *g = malloc(size);
        for (size_t i = 0; i < size; i++)
            g[i] = (uint8_t)rng_next(&seed);
        CHECK(load_image(ctx, g, size, err, sizeof err) == PM_ERR_INVALID);
        /* With a valid preamble, random framing. */
        if (size >= 16) {
            memcpy(g, "POSTMKSN\1\0\0\0\0\0\0\0", 16);
            CHECK(load_image(ctx, g, size, err, sizeof err) == PM_ERR_INVALID);
            /* And checksums made to match whatever framing there is. */
            pm_snapshot_reseal(g, size);
            CHECK(load_image(ctx, g, size, err, sizeof err) == PM_ERR_INVALID);
        }
        free(g);
    }
    CHECK(load_image(ctx, (const uint8_t *)"", 0, err, sizeof err) == PM_ERR_INVALID);
    CHECKF(strstr(err, "empty") != NULL, "%s", err);
    CHECK(load_image(ctx, (const uint8_t *)"POSTMKTX", 8, err, sizeof err) == PM_ERR_INVALID);
    CHECKF(strstr(err, "not a snapshot") != NULL, "%s", err);
    uint8_t pre[16];
    memcpy(pre, "POSTMKSN\2\0\0\0\0\0\0\0", 16);
    CHECK(load_image(ctx, pre, 16, err, sizeof err) == PM_ERR_INVALID);
    CHECKF(strstr(err, "version") != NULL, "%s", err);

    /* Unreadable paths are I/O errors. */
    pm_engine *e = (pm_engine *)(uintptr_t)1;
    CHECK(pm_engine_create_from_snapshot(&e, ctx, NULL, NULL, tmp_path("no-such-file"), err,
                                         sizeof err) == PM_ERR_IO);
    CHECK(e == NULL && strstr(err, "No such file") != NULL);
    CHECK(pm_engine_create_from_snapshot(&e, ctx, NULL, NULL, pm_test_tmpdir(), err,
                                         sizeof err) == PM_ERR_IO);
    CHECK(e == NULL);
}

/* Damage that keeps every checksum valid (resealed): only the semantic
 * checks can refuse it. */
typedef struct {
    uint8_t *img;
    size_t size;
    size_t start[7]; /* section framing offsets */
} image;

static uint8_t *payload(image *im, int sec)
{
    return im->img + im->start[sec] + PM_SNAP_SECTION_HEADER_SIZE;
}

static void expect_refused(const pm_context *ctx, image *im, const uint8_t *orig,
                           const char *section, const char *words, const char *what)
{
    pm_snapshot_reseal(im->img, im->size);
    char err[256] = "";
    pm_status st = load_image(ctx, im->img, im->size, err, sizeof err);
    CHECKF(st == PM_ERR_INVALID && strstr(err, section) && strstr(err, words),
           "%s: status %d, '%s' (expected %s ... %s)", what, st, err, section, words);
    memcpy(im->img, orig, im->size);
}

/* Walk an undo log backwards; return the payload offset (within the log)
 * of the newest record of `kind`, or SIZE_MAX. */
static size_t find_record(const uint8_t *log, size_t len, unsigned kind)
{
    while (len >= 3) {
        size_t total = (size_t)log[len - 2] | (size_t)log[len - 1] << 8;
        if (total < 3 || total > len)
            return SIZE_MAX;
        size_t start = len - total;
        if (log[start] == kind)
            return start + 1;
        len = start;
    }
    return SIZE_MAX;
}

static void test_semantic_damage(const pm_context *ctx, const uint8_t *orig, size_t size)
{
    image im = {malloc(size), size, {0}};
    memcpy(im.img, orig, size);
    int *sec_of = malloc(size * sizeof *sec_of);
    size_t n_sections;
    section_map(orig, size, sec_of, im.start, &n_sections);
    free(sec_of);
    CHECK(n_sections == 7);
    char err[256];
    /* Resealing the untouched image changes nothing. */
    CHECK(pm_snapshot_reseal(im.img, size) == 7 && memcmp(im.img, orig, size) == 0);
    CHECK(load_image(ctx, im.img, size, err, sizeof err) == PM_OK);

    uint8_t *head = payload(&im, 0);
    head[48] ^= 1; /* chain id */
    expect_refused(ctx, &im, orig, "HEAD", "chain id", "chain id");
    head[200 + 1] ^= 1; /* undo layout */
    expect_refused(ctx, &im, orig, "HEAD", "layout", "undo format");
    head[80] += 1; /* tip height 9 with 9 undo blocks: oldest not at 0 */
    expect_refused(ctx, &im, orig, "UNDO", "chain id", "tip height");
    head[160] += 20; /* more undo blocks than the header's height */
    expect_refused(ctx, &im, orig, "HEAD", "undo data of", "undo count");
    head[168] ^= 4; /* the stored digest */
    expect_refused(ctx, &im, orig, "UTXO", "digest", "stored digest");
    memset(head + 120, 0, 8); /* gov_seq below the operator count */
    expect_refused(ctx, &im, orig, "HEAD", "registrations", "gov_seq");

    uint8_t *ops = payload(&im, 1);
    memcpy(ops + PM_SNAP_OPERATOR_SIZE, ops, 4); /* operator 1 gets operator 0's id */
    expect_refused(ctx, &im, orig, "OPER", "twice", "duplicate operator");
    ops[44] = 0;
    expect_refused(ctx, &im, orig, "OPER", "name length", "empty name");
    ops[44 + PM_SNAP_OPERATOR_SIZE] = 65;
    expect_refused(ctx, &im, orig, "OPER", "name length", "long name");
    ops[45] = 0x01;
    expect_refused(ctx, &im, orig, "OPER", "text", "control byte in a name");
    memset(ops, 0, 4);
    expect_refused(ctx, &im, orig, "OPER", "id 0", "operator 0");

    uint8_t *ser = payload(&im, 2);
    memcpy(ser + 12, ser, 12);
    expect_refused(ctx, &im, orig, "SERI", "twice", "duplicate series");
    memset(ser + 8, 0, 4);
    expect_refused(ctx, &im, orig, "SERI", "max_supply 0", "max_supply 0");
    memset(ser, 0xee, 4);
    expect_refused(ctx, &im, orig, "SERI", "unknown operator", "series of no operator");

    uint8_t *mint = payload(&im, 3);
    memcpy(mint + 24, mint, 12);
    expect_refused(ctx, &im, orig, "MINT", "twice", "duplicate stamp");
    memset(mint + 8, 0, 4);
    expect_refused(ctx, &im, orig, "MINT", "serial", "serial 0");

    uint8_t *utxo = payload(&im, 4);
    uint8_t tmp[PM_SNAP_UTXO_SIZE];
    memcpy(tmp, utxo + 79 * 10, 79);
    memcpy(utxo + 79 * 10, utxo + 79 * 11, 79);
    memcpy(utxo + 79 * 11, tmp, 79);
    expect_refused(ctx, &im, orig, "UTXO", "entry 11: out of order", "swapped entries");
    memcpy(utxo + 79 * 21, utxo + 79 * 20, 79);
    expect_refused(ctx, &im, orig, "UTXO", "entry 21: the same outpoint twice", "duplicate");
    utxo[79 * 30 + 34] = 3;
    expect_refused(ctx, &im, orig, "UTXO", "output kind", "kind 3");
    utxo[79 * 30 + 40] ^= 1; /* an owner byte: order kept, digest differs */
    expect_refused(ctx, &im, orig, "UTXO", "digest", "changed owner");

    /* Undo: find records in the newest block's log. */
    uint8_t *undo = payload(&im, 5);
    size_t off = 0, last = 0, nblocks = 0;
    uint64_t section_len = 0;
    for (int k = 0; k < 8; k++)
        section_len |= (uint64_t)im.img[im.start[5] + 16 + k] << (8 * k);
    while (off < section_len) {
        uint64_t len = 0;
        for (int k = 0; k < 8; k++)
            len |= (uint64_t)undo[off + 72 + k] << (8 * k);
        last = off;
        off += PM_SNAP_UNDO_HEADER_SIZE + (size_t)len;
        nblocks++;
    }
    CHECK(nblocks == 9 && off == section_len);
    uint8_t *lh = undo + last;
    uint64_t loglen = 0;
    for (int k = 0; k < 8; k++)
        loglen |= (uint64_t)lh[72 + k] << (8 * k);
    uint8_t *log = lh + PM_SNAP_UNDO_HEADER_SIZE;
    log[loglen - 1] ^= 0x40; /* the newest record's size */
    expect_refused(ctx, &im, orig, "UNDO", "malformed record", "record size");
    lh[64] ^= 1; /* the declared spent count */
    expect_refused(ctx, &im, orig, "UNDO", "spent records", "spent count");
    lh[0] ^= 1; /* the newest block's hash */
    expect_refused(ctx, &im, orig, "UNDO", "not the tip", "newest hash");
    lh[32] ^= 1; /* its prev hash */
    expect_refused(ctx, &im, orig, "UNDO", "does not follow", "prev hash");
    lh[72] ^= 0x10; /* its log length */
    expect_refused(ctx, &im, orig, "UNDO", "", "log length");

    /* Find an op_seq record and an operator record in any block. */
    size_t found_seq = 0, found_op = 0;
    for (off = 0; off < section_len;) {
        uint64_t len = 0;
        for (int k = 0; k < 8; k++)
            len |= (uint64_t)undo[off + 72 + k] << (8 * k);
        uint8_t *lg = undo + off + PM_SNAP_UNDO_HEADER_SIZE;
        size_t p = find_record(lg, (size_t)len, 5 /* OP_SEQ */);
        if (p != SIZE_MAX && !found_seq) {
            size_t big = 1000000;
            memcpy(lg + p, &big, sizeof big);
            expect_refused(ctx, &im, orig, "UNDO", "op_seq record", "op_seq index");
            found_seq = 1;
        }
        p = find_record(lg, (size_t)len, 4 /* OPERATOR */);
        if (p != SIZE_MAX && !found_op) {
            uint32_t id;
            memcpy(&id, lg + p, 4);
            id ^= 0x5a5a0000; /* an id the registry does not hold */
            memcpy(lg + p, &id, 4);
            expect_refused(ctx, &im, orig, "UNDO", "operator record", "operator id");
            found_op = 1;
        }
        off += PM_SNAP_UNDO_HEADER_SIZE + (size_t)len;
    }
    CHECK(found_seq && found_op);

    uint8_t *end = payload(&im, 6);
    end[0] ^= 1;
    expect_refused(ctx, &im, orig, "ENDM", "should be", "file size");
    /* Counts of a section's framing against the header. */
    im.img[im.start[2] + 8] ^= 1;
    expect_refused(ctx, &im, orig, "SERI", "the header says", "section count");
    memcpy(im.img + im.start[3], "MINX", 4);
    expect_refused(ctx, &im, orig, "MINT", "expected the MINT section", "tag");
    free(im.img);
}

static void test_refusals(const pm_context *ctx, const pm_vfile *chain)
{
    pm_engine *a = new_engine(ctx, &chain->params, 2, 4096);
    CHECK(connect_all(a, (uint8_t *const *)chain->rec, chain->len, chain->n));
    const char *path = tmp_path("ref.snap");
    CHECK(pm_engine_save_snapshot(a, path) == PM_OK);
    pm_engine_destroy(a);
    size_t size;
    uint8_t *img = pm_read_file(path, &size);
    if (!img)
        return;
    test_flipped_bytes(ctx, img, size);
    test_truncated(ctx, img, size);
    test_semantic_damage(ctx, img, size);
    free(img);
    test_garbage(ctx);
}

/* ---------------------------------------------------------------------- */
/* Save failures and misuse                                                */
/* ---------------------------------------------------------------------- */

static void test_save_failures(const pm_context *ctx, const pm_vfile *chain)
{
    pm_engine *a = new_engine(ctx, &chain->params, 1, 4096);
    CHECK(connect_all(a, (uint8_t *const *)chain->rec, chain->len, 3));
    const char *path = tmp_path("keep.snap");
    CHECK(pm_engine_save_snapshot(a, path) == PM_OK);
    size_t before_size;
    uint8_t *before = pm_read_file(path, &before_size);
    /* PATH.tmp cannot be created (a directory is in the way): an I/O
     * error, and the old snapshot stays whole. */
    char tmpdir[600];
    snprintf(tmpdir, sizeof tmpdir, "%s.tmp", path);
    CHECK(mkdir(tmpdir, 0755) == 0);
    CHECK(connect_all(a, (uint8_t *const *)chain->rec + 3, chain->len + 3, 2));
    CHECK(pm_engine_save_snapshot(a, path) == PM_ERR_IO);
    CHECKF(strstr(pm_engine_last_error(a), "keep.snap.tmp") != NULL, "%s",
           pm_engine_last_error(a));
    size_t after_size;
    uint8_t *after = pm_read_file(path, &after_size);
    CHECK(before && after && before_size == after_size && memcmp(before, after, after_size) == 0);
    rmdir(tmpdir);
    CHECK(pm_engine_save_snapshot(a, tmp_path("no-such-dir/x.snap")) == PM_ERR_IO);
    CHECK(strstr(pm_engine_last_error(a), "No such file") != NULL);
    free(before);
    free(after);
    pm_engine_destroy(a);
}

static int misuse_count;
static void count_misuse(const char *message, void *data)
{
    (void)message;
    (void)data;
    misuse_count++;
}

static void test_misuse(pm_context *ctx, const pm_vfile *chain)
{
    pm_context_set_illegal_callback(ctx, count_misuse, NULL);
    pm_engine *e = NULL;
    char err[64];
    CHECK(pm_engine_create_from_snapshot(NULL, ctx, NULL, NULL, "x", err, sizeof err) ==
          PM_ERR_ARG);
    CHECK(pm_engine_create_from_snapshot(&e, ctx, NULL, NULL, NULL, err, sizeof err) ==
          PM_ERR_ARG);
    CHECK(pm_engine_create_from_snapshot(&e, ctx, NULL, NULL, "x", NULL, 10) == PM_ERR_ARG);
    pm_engine *a = new_engine(ctx, &chain->params, 1, 4096);
    CHECK(pm_engine_save_snapshot(a, NULL) == PM_ERR_ARG);
    CHECK(misuse_count == 4);
    pm_engine_destroy(a);
    /* A bad configuration is misuse too (as for pm_engine_create). */
    pm_engine *b = new_engine(ctx, &chain->params, 1, 4096);
    const char *path = tmp_path("cfg.snap");
    CHECK(pm_engine_save_snapshot(b, path) == PM_OK);
    pm_engine_destroy(b);
    pm_config cfg;
    pm_config_default(ctx, &cfg);
    cfg.block_max_txs = 0;
    CHECK(pm_engine_create_from_snapshot(&e, ctx, NULL, &cfg, path, err, sizeof err) ==
          PM_ERR_ARG);
    CHECK(e == NULL);
    CHECK(misuse_count == 5);
    pm_context_set_illegal_callback(ctx, NULL, NULL);
}

int main(void)
{
    pm_context *ctx = pm_context_create();
    CHECK(ctx != NULL);
    pm_vfile chain, stream;
    if (!ctx || !pm_vfile_load(&chain, "s1.b32.pmbk") || !pm_vfile_load(&stream, "s1.pmtx"))
        return pm_test_finish();
    CHECK(chain.n == 9);
    test_round_trip(ctx, &chain);
    test_empty_state(ctx, &chain);
    test_pack_on(ctx);
    test_disconnect_after_load(ctx, &chain);
    test_generated_market(ctx);
    test_save_from_callback(ctx, &stream, &chain);
    test_save_with_open_block(ctx, &stream, &chain);
    test_large_set(ctx, &chain);
    test_refusals(ctx, &chain);
    test_save_failures(ctx, &chain);
    test_misuse(ctx, &chain);
    pm_vfile_free(&chain);
    pm_vfile_free(&stream);
    pm_context_destroy(ctx);
    return pm_test_finish();
}
