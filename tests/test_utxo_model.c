/*
 * test_utxo_model.c — the UTXO table against a plain reference model.
 *
 * Millions of seeded random operations (insert, lookup, lookup_batch,
 * spend, reserve, reclaim) on a table created with a capacity hint of 1,
 * so that it migrates (grows, rehashes away tombstones, shrinks) many
 * times, each result checked against an array indexed by key number. The
 * key pool holds near misses on purpose: outpoints of one txid with other
 * indexes, txids that differ in one late byte, txids sharing their first
 * 8 bytes (the digest's sort key) — a fingerprint-only match would show.
 * Now and then a simulated migrator stalls between freezing a cell and
 * copying it, or loses a whole chunk of migration work.
 * Also: out-of-memory leaves the table unchanged, reserve(n) makes n
 * inserts succeed under a memory limit, and the §8 digest equals one
 * computed here by hand (qsort + SHA-256 straight from OpenSSL) for a small
 * set, the empty set and the large random set.
 *
 * Environment: PM_TEST_SEED (default 1), PM_TEST_SCALE (operations
 * multiplier, default 1 = 3.6 million operations; 0.25 under
 * ThreadSanitizer, where this single-threaded test finds nothing more).
 *
 * In a normal (non-sanitizer) build the table takes its memory from a
 * private jemalloc arena, which glibc only lets dlopen load with enough
 * static TLS; the test re-executes itself once with
 * GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384 so both backends are
 * exercised across the build configurations.
 */
#include "testutil.h"
#include "postmark_internal.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- random numbers ---------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}

static void rnd_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

/* ---- the key pool and the reference model ------------------------------ */

typedef struct {
    uint8_t txid[32];
    uint16_t index;
} key;

typedef struct {
    size_t n;
    key *keys;
    uint8_t *present;
    uint8_t (*out)[PM_OUTPUT_SIZE];
    size_t live;
    /* key -> number, for foreach (open addressing, FNV-1a) */
    size_t *slots;
    size_t mask;
} model;

static uint64_t fnv(const uint8_t *txid, uint16_t index)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 32; i++)
        h = (h ^ txid[i]) * 1099511628211ull;
    h = (h ^ (index & 0xff)) * 1099511628211ull;
    h = (h ^ (index >> 8)) * 1099511628211ull;
    return h;
}

static size_t model_find(const model *m, const uint8_t txid[32], uint16_t index)
{
    for (size_t i = fnv(txid, index) & m->mask;; i = (i + 1) & m->mask) {
        size_t k = m->slots[i];
        if (k == 0)
            return (size_t)-1;
        k--;
        if (m->keys[k].index == index && memcmp(m->keys[k].txid, txid, 32) == 0)
            return k;
    }
}

/* Groups of 8 keys: 3 outpoints of one txid (indexes 0, 255, 256 — the
 * last two order differently little- and big-endian), one txid differing
 * only in its last byte, two txids sharing the first 8 bytes of the first,
 * one sharing only its first 2 bytes, one independent with a random
 * index. */
static void model_alloc(model *m, size_t n)
{
    m->n = n;
    m->keys = calloc(m->n, sizeof *m->keys);
    m->present = calloc(m->n, 1);
    m->out = calloc(m->n, PM_OUTPUT_SIZE);
    m->live = 0;
    size_t cap = 1;
    while (cap < m->n * 2)
        cap <<= 1;
    m->slots = calloc(cap, sizeof *m->slots);
    m->mask = cap - 1;
}

/* The model's index of its keys (made unique first). */
static void model_index(model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        if (model_find(m, m->keys[i].txid, m->keys[i].index) != (size_t)-1) {
            /* a random collision in the pool: make the key unique */
            m->keys[i].txid[30] ^= 0x5a;
            i--;
            continue;
        }
        size_t j = fnv(m->keys[i].txid, m->keys[i].index) & m->mask;
        while (m->slots[j])
            j = (j + 1) & m->mask;
        m->slots[j] = i + 1;
    }
}

static void model_init(model *m, size_t groups)
{
    model_alloc(m, groups * 8);
    for (size_t g = 0; g < groups; g++) {
        key *k = m->keys + g * 8;
        rnd_bytes(k[0].txid, 32);
        k[1] = k[0], k[1].index = 255;
        k[2] = k[0], k[2].index = 256;
        k[3] = k[0], k[3].txid[31] ^= 1;
        k[4] = k[0], rnd_bytes(k[4].txid + 8, 24);
        k[5] = k[0], rnd_bytes(k[5].txid + 8, 24), k[5].index = 7;
        k[6] = k[0], rnd_bytes(k[6].txid + 2, 30);
        rnd_bytes(k[7].txid, 32), k[7].index = (uint16_t)rnd();
    }
    model_index(m);
}

static void model_free(model *m)
{
    free(m->keys);
    free(m->present);
    free(m->out);
    free(m->slots);
}

/* ---- the digest by hand -------------------------------------------------- */

typedef struct {
    uint8_t rec[34 + PM_OUTPUT_SIZE]; /* txid || index_be16 || output */
} record;

static int record_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 34);
}

static void tagged_digest(uint8_t out[32], const record *recs, size_t n)
{
    uint8_t tag[32];
    unsigned int len = 0;
    EVP_Digest("postmark/utxo", 13, tag, &len, EVP_sha256(), NULL);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, tag, 32);
    EVP_DigestUpdate(c, tag, 32);
    for (size_t i = 0; i < n; i++)
        EVP_DigestUpdate(c, recs[i].rec, sizeof recs[i].rec);
    EVP_DigestFinal_ex(c, out, &len);
    EVP_MD_CTX_free(c);
}

static void model_digest(const model *m, uint8_t out[32])
{
    record *recs = malloc((m->live + 1) * sizeof *recs);
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (!m->present[i])
            continue;
        memcpy(recs[n].rec, m->keys[i].txid, 32);
        recs[n].rec[32] = (uint8_t)(m->keys[i].index >> 8);
        recs[n].rec[33] = (uint8_t)m->keys[i].index;
        memcpy(recs[n].rec + 34, m->out[i], PM_OUTPUT_SIZE);
        n++;
    }
    qsort(recs, n, sizeof *recs, record_cmp);
    tagged_digest(out, recs, n);
    free(recs);
}

static pm_tag_midstates *g_tags;
static pm_hasher *g_hasher;

static int table_digest(const pm_utxo_table *t, uint8_t out[32])
{
    return pm_utxo_table_digest(t, g_hasher, out) == PM_OK;
}

/* ---- whole-table checks ---------------------------------------------------- */

typedef struct {
    const model *m;
    uint8_t *seen;
    size_t visits, bad;
} visit_state;

static int visit(void *data, const uint8_t txid[32], uint16_t index,
                 const uint8_t output[PM_OUTPUT_SIZE])
{
    visit_state *v = data;
    size_t k = model_find(v->m, txid, index);
    v->visits++;
    if (k == (size_t)-1 || !v->m->present[k] || v->seen[k] ||
        memcmp(v->m->out[k], output, PM_OUTPUT_SIZE) != 0)
        v->bad++;
    else
        v->seen[k] = 1;
    return 0;
}

static void check_whole(const pm_utxo_table *t, const model *m, int with_digest)
{
    CHECKF(pm_utxo_table_count(t) == m->live, "count %llu, model %zu",
           (unsigned long long)pm_utxo_table_count(t), m->live);
    visit_state v = {m, calloc(m->n, 1), 0, 0};
    CHECK(pm_utxo_table_foreach(t, visit, &v) == 0);
    CHECKF(v.visits == m->live && v.bad == 0, "foreach: %zu visits, %zu bad, %zu live", v.visits,
           v.bad, m->live);
    free(v.seen);
    if (with_digest) {
        uint8_t a[32], b[32];
        CHECK(table_digest(t, a));
        model_digest(m, b);
        CHECK(memcmp(a, b, 32) == 0);
    }
}

/* ---- the random walk ----------------------------------------------------- */

static void make_output(uint8_t out[PM_OUTPUT_SIZE])
{
    rnd_bytes(out, PM_OUTPUT_SIZE);
    out[0] = 1 + (out[0] & 1);
}

typedef struct {
    unsigned insert, spend, lookup, batch; /* weights */
} mix;

static unsigned long g_failures_reported;
static size_t g_stalled;

#define EXPECT(cond, ...)                                                           \
    do {                                                                            \
        if (cond) {                                                                 \
            pm_test_passed++;                                                       \
        } else {                                                                    \
            pm_test_failed++;                                                       \
            if (g_failures_reported++ < 20) {                                       \
                fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);          \
                fprintf(stderr, __VA_ARGS__);                                       \
                fputc('\n', stderr);                                                \
            }                                                                       \
        }                                                                           \
    } while (0)

static void op_insert(pm_utxo_table *t, model *m, size_t k)
{
    uint8_t out[PM_OUTPUT_SIZE];
    make_output(out);
    pm_status st = pm_utxo_table_insert(t, m->keys[k].txid, m->keys[k].index, out);
    if (m->present[k]) {
        EXPECT(st == PM_ERR_STATE, "duplicate insert of key %zu gave %d", k, (int)st);
    } else {
        EXPECT(st == PM_OK, "insert of key %zu gave %d", k, (int)st);
        if (st == PM_OK) {
            m->present[k] = 1;
            memcpy(m->out[k], out, PM_OUTPUT_SIZE);
            m->live++;
        }
    }
}

static void op_spend(pm_utxo_table *t, model *m, size_t k)
{
    uint8_t out[PM_OUTPUT_SIZE];
    memset(out, 0xee, sizeof out);
    int r = pm_utxo_table_spend(t, m->keys[k].txid, m->keys[k].index, rnd() & 1 ? out : NULL);
    EXPECT(r == m->present[k], "spend of key %zu gave %d, model %d", k, r, m->present[k]);
    if (r == 1 && m->present[k]) {
        m->present[k] = 0;
        m->live--;
    }
}

static void op_lookup(const pm_utxo_table *t, const model *m, size_t k)
{
    uint8_t out[PM_OUTPUT_SIZE];
    int r = pm_utxo_table_lookup(t, m->keys[k].txid, m->keys[k].index, out);
    EXPECT(r == m->present[k], "lookup of key %zu gave %d, model %d", k, r, m->present[k]);
    if (r && m->present[k])
        EXPECT(memcmp(out, m->out[k], PM_OUTPUT_SIZE) == 0, "lookup output of key %zu", k);
}

static void op_batch(const pm_utxo_table *t, const model *m, size_t nkeys)
{
    enum { MAXB = 100 };
    pm_outpoint ops[MAXB];
    size_t idx[MAXB];
    uint8_t outs[MAXB][PM_OUTPUT_SIZE];
    uint8_t found[MAXB];
    size_t n = 1 + rnd_below(MAXB);
    for (size_t i = 0; i < n; i++) {
        idx[i] = rnd_below(nkeys);
        memcpy(ops[i].txid, m->keys[idx[i]].txid, 32);
        ops[i].index = m->keys[idx[i]].index;
        found[i] = 0xcc;
    }
    pm_utxo_table_lookup_batch(t, n, ops, outs, found);
    for (size_t i = 0; i < n; i++) {
        size_t k = idx[i];
        EXPECT(found[i] == m->present[k], "batch lookup %zu of key %zu gave %d", i, k, found[i]);
        if (found[i] == 1 && m->present[k])
            EXPECT(memcmp(outs[i], m->out[k], PM_OUTPUT_SIZE) == 0, "batch output of key %zu",
                   k);
        /* and it agrees with the one-at-a-time lookup */
        uint8_t one[PM_OUTPUT_SIZE];
        int r = pm_utxo_table_lookup(t, ops[i].txid, ops[i].index, one);
        EXPECT(r == found[i] && (!r || memcmp(one, outs[i], PM_OUTPUT_SIZE) == 0),
               "batch and lookup disagree on key %zu", k);
    }
}

/* reserve(n), then forbid any new memory: n inserts must still succeed. */
static void op_reserve(pm_utxo_table *t, model *m, size_t nkeys)
{
    size_t n = 1 + rnd_below(rnd() & 1 ? 64 : 4096);
    pm_status st = pm_utxo_table_reserve(t, n);
    EXPECT(st == PM_OK, "reserve(%zu) gave %d", n, (int)st);
    if (st != PM_OK)
        return;
    pm_utxo_table_set_memory_limit(t, pm_utxo_table_memory(t));
    size_t done = 0;
    for (size_t tries = 0; done < n && tries < 8 * n; tries++) {
        size_t k = rnd_below(nkeys);
        if (m->present[k])
            continue;
        op_insert(t, m, k);
        done++;
    }
    pm_utxo_table_set_memory_limit(t, 0);
}

static void random_walk(pm_utxo_table *t, model *m, size_t ops, const mix *w, size_t nkeys)
{
    unsigned total = w->insert + w->spend + w->lookup + w->batch;
    for (size_t i = 0; i < ops; i++) {
        unsigned r = (unsigned)rnd_below(total + 1);
        size_t k = rnd_below(nkeys);
        if (r < w->insert)
            op_insert(t, m, k);
        else if (r < w->insert + w->spend)
            op_spend(t, m, k);
        else if (r < w->insert + w->spend + w->lookup)
            op_lookup(t, m, k);
        else if (r < total)
            op_batch(t, m, nkeys);
        else if (rnd_below(64) == 0)
            op_reserve(t, m, nkeys);
        if (rnd_below(20000) == 0)
            pm_utxo_table_reclaim(t);
        /* now and then a migrator "stalls" mid-cell or loses a chunk */
        if (rnd_below(3000) == 0)
            g_stalled += pm_utxo_table_test_stall(t, 1 + rnd_below(8), rnd_below(4) == 0);
        if (i % 100000 == 99999)
            EXPECT(pm_utxo_table_count(t) == m->live, "count %llu model %zu",
                   (unsigned long long)pm_utxo_table_count(t), m->live);
    }
    pm_utxo_table_reclaim(t);
}

static void test_random(double scale)
{
    model m;
    model_init(&m, (size_t)(40000 * scale)); /* 320k keys */
    pm_utxo_table *t = NULL;
    CHECK(pm_utxo_table_create(&t, 1) == PM_OK);
    pm_utxo_stats s;
    pm_utxo_table_stats(t, &s);
    printf("backend: %s\n", s.backend);

    /* Growth: mostly inserts, over the whole pool. */
    const mix grow = {60, 10, 20, 2};
    random_walk(t, &m, (size_t)(1000000 * scale), &grow, m.n);
    check_whole(t, &m, 1);
    pm_utxo_table_stats(t, &s);
    printf("after growth: %llu live, %zu cells, %llu migrations, %zu bytes (%.1f B/entry)\n",
           (unsigned long long)s.live, s.cells, (unsigned long long)s.migrations, s.memory,
           (double)s.memory / (double)s.live);
    CHECKF(s.migrations >= 5, "only %llu migrations", (unsigned long long)s.migrations);

    /* Churn: as many spends as inserts; tombstones force rehashes. */
    const mix churn = {40, 40, 15, 2};
    uint64_t before = s.migrations;
    random_walk(t, &m, (size_t)(1200000 * scale), &churn, m.n);
    check_whole(t, &m, 1);
    pm_utxo_table_stats(t, &s);
    printf("after churn: %llu live, %zu cells, %llu migrations, %.1f B/entry\n",
           (unsigned long long)s.live, s.cells, (unsigned long long)s.migrations,
           (double)s.memory / (double)s.live);
    CHECK(s.migrations > before);

    /* Shrink: mostly spends, then the table must rehash smaller. */
    const mix shrink = {5, 60, 30, 2};
    size_t cells_before = s.cells;
    random_walk(t, &m, (size_t)(1000000 * scale), &shrink, m.n);
    check_whole(t, &m, 1);
    /* then drain to under 5% of the cells */
    for (size_t k = 0; k < m.n && m.live * 20 > cells_before; k++)
        if (m.present[k])
            op_spend(t, &m, k);
    /* A burst of inserts on a few keys makes tombstones reach the trigger. */
    const mix small = {50, 50, 10, 1};
    random_walk(t, &m, (size_t)(400000 * scale), &small, 2000);
    check_whole(t, &m, 1);
    pm_utxo_table_stats(t, &s);
    printf("after shrink: %llu live, %zu cells (was %zu), %llu migrations\n",
           (unsigned long long)s.live, s.cells, cells_before, (unsigned long long)s.migrations);
    CHECKF(s.cells < cells_before, "no shrink: %zu cells, was %zu", s.cells, cells_before);

    printf("cells left frozen by simulated stalled migrators: %zu\n", g_stalled);
    CHECK(g_stalled > 0);

    /* Spend everything: the empty table's digest. */
    for (size_t k = 0; k < m.n; k++)
        if (m.present[k])
            op_spend(t, &m, k);
    pm_utxo_table_reclaim(t);
    check_whole(t, &m, 1);
    pm_utxo_table_destroy(t);
    model_free(&m);
}

/* ---- focused cases -------------------------------------------------------- */

static void test_empty_digest(void)
{
    static const char *hex = "dec58653fbd3e2341d395f7adc87020dddcab8af18bb25a1d5eb782b609ed46e";
    uint8_t want[32], got[32], by_hand[32];
    CHECK(pm_unhex(want, 32, hex));
    tagged_digest(by_hand, NULL, 0);
    CHECK(memcmp(by_hand, want, 32) == 0);
    /* the same value as the vectors folder states */
    size_t size = 0;
    uint8_t *txt = pm_read_file(pm_vector_path("chain.txt"), &size);
    if (txt) {
        char *s = strndup((const char *)txt, size);
        char *p = strstr(s, "utxo_digest_of_empty_set ");
        CHECK(p && strncmp(p + 25, hex, 64) == 0);
        free(s);
        free(txt);
    }
    pm_utxo_table *t = NULL;
    CHECK(pm_utxo_table_create(&t, 0) == PM_OK);
    CHECK(pm_utxo_table_count(t) == 0);
    CHECK(table_digest(t, got));
    CHECK(memcmp(got, want, 32) == 0);
    pm_utxo_table_destroy(t);
}

/* A small known set: one txid with indexes 0, 1, 255, 256, 65535 (big-endian
 * order differs from little-endian between 255 and 256), txids that differ
 * only in the last byte, one that sorts first, one that sorts last. */
static void test_small_digest(void)
{
    record recs[16];
    size_t n = 0;
    uint8_t base[32];
    for (int i = 0; i < 32; i++)
        base[i] = (uint8_t)(0x40 + i);
    const uint16_t idx[] = {0, 1, 255, 256, 65535};
    for (size_t i = 0; i < 5; i++) {
        memcpy(recs[n].rec, base, 32);
        recs[n].rec[32] = (uint8_t)(idx[i] >> 8);
        recs[n].rec[33] = (uint8_t)idx[i];
        n++;
    }
    for (int v = 0; v < 3; v++) {
        memcpy(recs[n].rec, base, 32);
        recs[n].rec[31] = (uint8_t)(0x10 * v);
        recs[n].rec[32] = 0, recs[n].rec[33] = 3;
        n++;
    }
    memset(recs[n].rec, 0x00, 32), recs[n].rec[32] = 0, recs[n].rec[33] = 9, n++;
    memset(recs[n].rec, 0xff, 32), recs[n].rec[32] = 0, recs[n].rec[33] = 0, n++;
    for (size_t i = 0; i < n; i++) {
        for (int b = 0; b < PM_OUTPUT_SIZE; b++)
            recs[i].rec[34 + b] = (uint8_t)(i * 7 + b);
        recs[i].rec[34] = 1 + (uint8_t)(i & 1);
    }
    pm_utxo_table *t = NULL;
    CHECK(pm_utxo_table_create(&t, 4) == PM_OK);
    /* insert in reverse order of the array, so insertion order is not the
     * sorted order */
    for (size_t i = n; i-- > 0;) {
        uint16_t index = (uint16_t)(recs[i].rec[32] << 8 | recs[i].rec[33]);
        CHECK(pm_utxo_table_insert(t, recs[i].rec, index, recs[i].rec + 34) == PM_OK);
    }
    /* duplicate: PM_ERR_STATE, value unchanged */
    uint8_t other[PM_OUTPUT_SIZE] = {2};
    CHECK(pm_utxo_table_insert(t, recs[0].rec, 0, other) == PM_ERR_STATE);
    uint8_t out[PM_OUTPUT_SIZE];
    CHECK(pm_utxo_table_lookup(t, recs[0].rec, 0, out) == 1);
    CHECK(memcmp(out, recs[0].rec + 34, PM_OUTPUT_SIZE) == 0);
    CHECK(pm_utxo_table_lookup(t, recs[0].rec, 2, out) == 0);

    qsort(recs, n, sizeof *recs, record_cmp);
    uint8_t want[32], got[32];
    tagged_digest(want, recs, n);
    CHECK(table_digest(t, got));
    CHECK(memcmp(got, want, 32) == 0);

    /* spend one, digest follows */
    CHECK(pm_utxo_table_spend(t, recs[3].rec, (uint16_t)(recs[3].rec[32] << 8 | recs[3].rec[33]),
                              out) == 1);
    CHECK(memcmp(out, recs[3].rec + 34, PM_OUTPUT_SIZE) == 0);
    CHECK(pm_utxo_table_spend(t, recs[3].rec, (uint16_t)(recs[3].rec[32] << 8 | recs[3].rec[33]),
                              out) == 0);
    memmove(recs + 3, recs + 4, (n - 4) * sizeof *recs);
    n--;
    tagged_digest(want, recs, n);
    CHECK(table_digest(t, got));
    CHECK(memcmp(got, want, 32) == 0);
    CHECK(pm_utxo_table_count(t) == n);
    pm_utxo_table_destroy(t);
}

/* Out of memory: the failing insert changes nothing; reserve under a limit
 * fails cleanly; after the limit is lifted everything works. */
static void test_nomem(void)
{
    model m;
    model_init(&m, 4000);
    pm_utxo_table *t = NULL;
    CHECK(pm_utxo_table_create(&t, 1) == PM_OK);
    for (size_t k = 0; k < 1000; k++)
        op_insert(t, &m, k);
    pm_utxo_table_set_memory_limit(t, pm_utxo_table_memory(t));
    size_t k = 1000, ok = 0;
    pm_status st = PM_OK;
    uint8_t out[PM_OUTPUT_SIZE];
    for (; k < m.n; k++) {
        make_output(out);
        st = pm_utxo_table_insert(t, m.keys[k].txid, m.keys[k].index, out);
        if (st != PM_OK)
            break;
        m.present[k] = 1;
        memcpy(m.out[k], out, PM_OUTPUT_SIZE);
        m.live++;
        ok++;
    }
    CHECKF(st == PM_ERR_NOMEM, "no NOMEM after %zu inserts (status %d)", ok, (int)st);
    CHECK(pm_utxo_table_lookup(t, m.keys[k].txid, m.keys[k].index, NULL) == 0);
    check_whole(t, &m, 0);
    /* spends and lookups still work at the limit */
    op_spend(t, &m, 5);
    op_lookup(t, &m, 5);
    op_lookup(t, &m, 6);
    /* reserve cannot get memory either, and changes nothing */
    CHECK(pm_utxo_table_reserve(t, 100000) == PM_ERR_NOMEM);
    check_whole(t, &m, 0);
    pm_utxo_table_set_memory_limit(t, 0);
    CHECK(pm_utxo_table_reserve(t, SIZE_MAX) == PM_ERR_NOMEM); /* never possible */
    check_whole(t, &m, 0);
    pm_utxo_table_set_memory_limit(t, 0);
    for (size_t j = k; j < m.n; j++)
        op_insert(t, &m, j);
    check_whole(t, &m, 1);
    /* a large reservation on a small table, then no more memory at all */
    pm_utxo_table *u = NULL;
    CHECK(pm_utxo_table_create(&u, 1) == PM_OK);
    CHECK(pm_utxo_table_reserve(u, 20000) == PM_OK);
    pm_utxo_table_set_memory_limit(u, pm_utxo_table_memory(u));
    size_t good = 0;
    for (size_t j = 0; j < 20000; j++) {
        uint8_t txid[32];
        rnd_bytes(txid, 32);
        make_output(out);
        good += pm_utxo_table_insert(u, txid, (uint16_t)j, out) == PM_OK;
    }
    CHECKF(good == 20000, "%zu of 20000 reserved inserts succeeded", good);
    CHECK(pm_utxo_table_count(u) == 20000);
    pm_utxo_table_destroy(u);
    pm_utxo_table_destroy(t);
    model_free(&m);
}

/* Outputs of one transaction share its txid, held by the entry of the
 * first one inserted (utxo.c, "Entries"): large transactions cost less
 * than the 84 bytes an entry with its own txid took; every output stays
 * found whichever are spent first (the txid's holder too); the digest
 * (several partitions, a helper thread) matches; spent entries and txids
 * are reused after reclaim. */
static void test_shared_txid(void)
{
    enum { NTX = 96, NOUT = 1024 };
    model m;
    model_alloc(&m, (size_t)NTX * NOUT);
    for (size_t i = 0; i < m.n; i++) {
        if (i % NOUT == 0)
            rnd_bytes(m.keys[i].txid, 32);
        else
            memcpy(m.keys[i].txid, m.keys[i - 1].txid, 32);
        m.keys[i].index = (uint16_t)(i % NOUT * 61); /* spread: 0 .. 62403 */
    }
    model_index(&m);
    /* No capacity hint: the tables grow as the engine's do. */
    pm_utxo_table *t = NULL;
    CHECK(pm_utxo_table_create(&t, 1) == PM_OK);
    for (size_t k = 0; k < m.n; k++)
        op_insert(t, &m, k);
    pm_utxo_table_reclaim(t);
    pm_utxo_stats s;
    pm_utxo_table_stats(t, &s);
    double per = (double)s.memory / (double)s.live;
    /* The same number of outputs, each of its own transaction. */
    pm_utxo_table *u = NULL;
    CHECK(pm_utxo_table_create(&u, 1) == PM_OK);
    for (size_t k = 0; k < m.n; k++) {
        uint8_t txid[32], out[PM_OUTPUT_SIZE];
        rnd_bytes(txid, 32);
        make_output(out);
        CHECK(pm_utxo_table_insert(u, txid, 0, out) == PM_OK);
    }
    double per_own = (double)pm_utxo_table_memory(u) / (double)pm_utxo_table_count(u);
    pm_utxo_table_destroy(u);
    printf("%d transactions of %d outputs: %.1f B/entry (%.1f with a txid each)\n", NTX, NOUT,
           per, per_own);
    CHECKF(per + 28 < per_own, "%.1f bytes per entry, %.1f with a txid each: txids not shared",
           per, per_own);
    check_whole(t, &m, 1);
    /* Every other output, and in even transactions first the one holding
     * the txid. */
    for (size_t tx = 0; tx < NTX; tx++) {
        if (tx % 2 == 0)
            op_spend(t, &m, tx * NOUT);
        for (size_t o = 1; o < NOUT; o += 2)
            op_spend(t, &m, tx * NOUT + o);
    }
    check_whole(t, &m, 0);
    pm_utxo_table_reclaim(t);
    check_whole(t, &m, 1);
    for (size_t k = 0; k < m.n; k += 7)
        op_lookup(t, &m, k);
    /* The rest, then everything back: the memory is reused. */
    for (size_t k = 0; k < m.n; k++)
        if (m.present[k])
            op_spend(t, &m, k);
    pm_utxo_table_reclaim(t);
    check_whole(t, &m, 1);
    for (size_t k = 0; k < m.n; k++)
        op_insert(t, &m, k);
    pm_utxo_table_reclaim(t);
    check_whole(t, &m, 1);
    size_t again = pm_utxo_table_memory(t);
    CHECKF(again <= s.memory + s.memory / 50, "%zu bytes after refilling, %zu at first", again,
           s.memory);
    pm_utxo_table_destroy(t);
    model_free(&m);
}

/* A migration whose migrators all stalled right after freezing every
 * cell: lookups find frozen entries, duplicate inserts see them, spends
 * finish the copies themselves and win exactly once, and the migration
 * still completes. */
static void test_frozen(void)
{
    model m;
    model_init(&m, 3000);
    pm_utxo_table *t = NULL;
    CHECK(pm_utxo_table_create(&t, 1) == PM_OK);
    pm_utxo_stats s;
    size_t k = 0;
    uint64_t migrations = 0;
    for (int round = 0; round < 4; round++) {
        /* fill until a migration has just started */
        do {
            op_insert(t, &m, k++);
            pm_utxo_table_stats(t, &s);
        } while (s.cells_next == 0 && k < m.n);
        CHECK(s.cells_next != 0);
        size_t frozen = pm_utxo_table_test_stall(t, SIZE_MAX, round & 1);
        CHECKF(frozen + 512 >= m.live, "froze %zu of %zu", frozen, m.live);
        check_whole(t, &m, 1);
        for (size_t j = 0; j < k; j++)
            op_lookup(t, &m, j);
        for (size_t j = 0; j < k; j += 5)
            op_insert(t, &m, j); /* present: PM_ERR_STATE */
        for (size_t j = 0; j < k; j += 3) {
            op_spend(t, &m, j);
            op_spend(t, &m, j); /* the second finds nothing */
        }
        check_whole(t, &m, 1);
        for (size_t j = 0; j < k; j += 6)
            op_insert(t, &m, j); /* back in, now in the new array */
        for (size_t j = 0; j < k; j++)
            op_lookup(t, &m, j);
        /* enough further operations to finish the migration */
        for (size_t j = 0; j < 4096 && m.live; j++)
            op_spend(t, &m, rnd_below(k));
        pm_utxo_table_reclaim(t);
        check_whole(t, &m, 1);
        pm_utxo_table_stats(t, &s);
        CHECK(s.migrations > migrations);
        migrations = s.migrations;
    }
    pm_utxo_table_destroy(t);
    model_free(&m);
}

static void maybe_reexec(char **argv)
{
    pm_utxo_table *t = NULL;
    if (pm_utxo_table_create(&t, 0) != PM_OK)
        return;
    pm_utxo_stats s;
    pm_utxo_table_stats(t, &s);
    pm_utxo_table_destroy(t);
    if (strcmp(s.backend, "malloc") != 0 || getenv("PM_TEST_REEXECED"))
        return;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return; /* the library was built without jemalloc */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return;
#endif
#endif
    setenv("PM_TEST_REEXECED", "1", 1);
    setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=16384", 1);
    fflush(stdout);
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
    (void)argc;
    maybe_reexec(argv);
    const char *seed = getenv("PM_TEST_SEED");
    const char *scale_s = getenv("PM_TEST_SCALE");
    rng_state = seed ? strtoull(seed, NULL, 0) : 1;
    /* ThreadSanitizer makes every atomic operation ~30x slower and finds
     * nothing in a single thread: a quarter of the walk there. */
    double scale = 1;
#if defined(__SANITIZE_THREAD__)
    scale = 0.25;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    scale = 0.25;
#endif
#endif
    if (scale_s && strtod(scale_s, NULL) > 0)
        scale = strtod(scale_s, NULL);
    printf("seed %llu scale %.2f\n", (unsigned long long)rng_state, scale);
    g_tags = pm_tag_midstates_create();
    g_hasher = pm_hasher_create(g_tags);
    CHECK(g_tags && g_hasher);

    test_empty_digest();
    test_small_digest();
    test_nomem();
    test_frozen();
    test_shared_txid();
    test_random(scale);

    pm_hasher_destroy(g_hasher);
    pm_tag_midstates_destroy(g_tags);
    return pm_test_finish();
}
