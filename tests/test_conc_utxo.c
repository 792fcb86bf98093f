/*
 * test_conc_utxo.c — the UTXO table under threads (run under
 * ThreadSanitizer in CI).
 *
 *  1. Racing spends: keys are inserted, then threads whose key ranges
 *     overlap (every key is tried by three threads) spend them while other
 *     threads insert fresh keys so that the table migrates during the race.
 *     Every key must be won exactly once, with the output it was inserted
 *     with: the sum of successes equals the number of distinct keys.
 *  2. Racing inserts: threads insert overlapping key sets into a table
 *     created with a capacity hint of 1; exactly one insert per key gets
 *     PM_OK, the others PM_ERR_STATE.
 *  3. Readers during growth: writers insert (and later spend) their own
 *     keys and publish how far they got; readers, never waiting, look up
 *     (one at a time and in batches) keys known to be present for the
 *     whole lookup and must always find them, and never find keys that
 *     were never inserted.
 *  Each round ends at a quiescent point (threads joined) where the table
 *  is checked against what the threads did, then reclaimed, so the next
 *  round reuses the entries the previous one spent.
 *
 * Throughout, some threads also play stalled migrators
 * (pm_utxo_table_test_stall): cells frozen and never copied, chunks of
 * migration work claimed and never done. Other threads must complete that
 * work themselves, never wait for it.
 *
 * Environment: PM_TEST_SEED, PM_TEST_SCALE (default 2; ~20 s under TSan on
 * two cores).
 */
#include "testutil.h"
#include "postmark_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 4

static size_t g_scale = 1;
static uint64_t g_seed = 1;
static uint64_t g_stalled;

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Key number k of a namespace: a txid and index derived from k. Keys 4j..4j+3
 * share one txid. */
static void make_key(uint8_t txid[32], uint16_t *index, uint64_t ns, uint64_t k)
{
    uint64_t base = mix64(g_seed ^ mix64(mix64(ns) + k / 4));
    for (int i = 0; i < 4; i++) {
        uint64_t w = mix64(base + (uint64_t)i);
        memcpy(txid + 8 * i, &w, 8);
    }
    *index = (uint16_t)(k % 4 == 3 ? 256 : k % 4);
}

static void make_output(uint8_t out[PM_OUTPUT_SIZE], uint64_t ns, uint64_t k)
{
    for (int i = 0; i < PM_OUTPUT_SIZE; i += 8) {
        uint64_t w = mix64(ns * 1000003u + k * 7 + (uint64_t)i);
        memcpy(out + i, &w, PM_OUTPUT_SIZE - i < 8 ? (size_t)(PM_OUTPUT_SIZE - i) : 8);
    }
}

static void run_threads(void *(*fn)(void *), void *args, size_t arg_size, int n)
{
    pthread_t th[16];
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, fn, (char *)args + (size_t)i * arg_size);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

/* ---- 1. racing spends ---------------------------------------------------- */

typedef struct {
    pm_utxo_table *t;
    int id;
    uint64_t ns, nkeys, fresh_ns, fresh_n;
    _Atomic uint8_t *winners;
    uint64_t wins, bad_outputs, insert_failures, stalled;
    int inserter;
} spend_arg;

static void *spend_thread(void *p)
{
    spend_arg *a = p;
    if (a->inserter) {
        for (uint64_t k = 0; k < a->fresh_n; k++) {
            uint8_t txid[32], out[PM_OUTPUT_SIZE];
            uint16_t index;
            make_key(txid, &index, a->fresh_ns, k);
            make_output(out, a->fresh_ns, k);
            a->insert_failures += pm_utxo_table_insert(a->t, txid, index, out) != PM_OK;
            if (k % 512 == 0)
                a->stalled += pm_utxo_table_test_stall(a->t, 16, k % 8192 == 0);
        }
        return NULL;
    }
    /* spender id covers thirds id, id+1, id+2 (mod 3 spenders... ) */
    uint64_t n = a->nkeys;
    uint64_t start = n * (uint64_t)a->id / 3;
    for (uint64_t j = 0; j < n; j++) {
        /* each spender walks all keys from its own offset, in its own
         * stride order, so contention happens everywhere */
        uint64_t k = (start + j * (a->id == 1 ? 1 : n - 1)) % n;
        uint8_t txid[32], out[PM_OUTPUT_SIZE], want[PM_OUTPUT_SIZE];
        uint16_t index;
        make_key(txid, &index, a->ns, k);
        if (pm_utxo_table_spend(a->t, txid, index, out) == 1) {
            a->wins++;
            atomic_fetch_add_explicit(&a->winners[k], 1, memory_order_relaxed);
            make_output(want, a->ns, k);
            a->bad_outputs += memcmp(out, want, PM_OUTPUT_SIZE) != 0;
        }
    }
    return NULL;
}

static void test_racing_spends(pm_utxo_table *t, uint64_t round, uint64_t nkeys)
{
    uint64_t ns = 100 + round;
    for (uint64_t k = 0; k < nkeys; k++) {
        uint8_t txid[32], out[PM_OUTPUT_SIZE];
        uint16_t index;
        make_key(txid, &index, ns, k);
        make_output(out, ns, k);
        pm_status st = pm_utxo_table_insert(t, txid, index, out);
        CHECKF(st == PM_OK, "round %llu key %llu status %d", (unsigned long long)round,
               (unsigned long long)k, (int)st);
        if (st != PM_OK) {
            uint8_t got[PM_OUTPUT_SIZE];
            int r = pm_utxo_table_lookup(t, txid, index, got);
            fprintf(stderr, "  lookup %d, output %s\n", r,
                    r ? (memcmp(got, out, PM_OUTPUT_SIZE) ? "differs" : "same") : "-");
        }
    }
    uint64_t before = pm_utxo_table_count(t);
    _Atomic uint8_t *winners = calloc(nkeys, sizeof *winners);
    spend_arg args[NTHREADS];
    memset(args, 0, sizeof args);
    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (spend_arg){.t = t, .id = i, .ns = ns, .nkeys = nkeys, .winners = winners,
                              .fresh_ns = 200 + round, .fresh_n = nkeys * 2,
                              .inserter = i == NTHREADS - 1};
    }
    run_threads(spend_thread, args, sizeof args[0], NTHREADS);
    uint64_t wins = 0, bad = 0, ins_fail = 0, multi = 0, none = 0;
    for (int i = 0; i < NTHREADS; i++)
        wins += args[i].wins, bad += args[i].bad_outputs, ins_fail += args[i].insert_failures,
            g_stalled += args[i].stalled;
    for (uint64_t k = 0; k < nkeys; k++) {
        uint8_t w = atomic_load(&winners[k]);
        multi += w > 1;
        none += w == 0;
    }
    CHECKF(wins == nkeys, "round %llu: %llu successful spends of %llu keys",
           (unsigned long long)round, (unsigned long long)wins, (unsigned long long)nkeys);
    CHECKF(multi == 0 && none == 0, "%llu keys spent twice, %llu never",
           (unsigned long long)multi, (unsigned long long)none);
    CHECK(bad == 0);
    CHECK(ins_fail == 0);
    CHECK(pm_utxo_table_count(t) == before - nkeys + 2 * nkeys);
    /* the spent keys are gone, the fresh ones are there */
    uint64_t found = 0;
    for (uint64_t k = 0; k < nkeys; k++) {
        uint8_t txid[32];
        uint16_t index;
        make_key(txid, &index, ns, k);
        found += pm_utxo_table_lookup(t, txid, index, NULL);
    }
    CHECK(found == 0);
    free(winners);
}

/* 1b. The same race right after a migration started, with every cell of
 * the old array left frozen by "stalled migrators": the spenders must
 * complete the copies themselves (racing each other to do it) and still
 * win each key exactly once. */
static void test_racing_spends_frozen(uint64_t round)
{
    pm_utxo_table *t = NULL;
    CHECK(pm_utxo_table_create(&t, 1) == PM_OK);
    uint64_t ns = 500 + round, nkeys = 0;
    pm_utxo_stats s;
    /* grow to a few thousand keys, stop just after a migration starts */
    for (;;) {
        uint8_t txid[32], out[PM_OUTPUT_SIZE];
        uint16_t index;
        make_key(txid, &index, ns, nkeys);
        make_output(out, ns, nkeys);
        CHECK(pm_utxo_table_insert(t, txid, index, out) == PM_OK);
        nkeys++;
        pm_utxo_table_stats(t, &s);
        if (s.cells_next != 0 && nkeys > 3000 * g_scale)
            break;
    }
    size_t frozen = pm_utxo_table_test_stall(t, SIZE_MAX, 1);
    CHECK(frozen + 512 >= nkeys);
    _Atomic uint8_t *winners = calloc(nkeys, sizeof *winners);
    spend_arg args[NTHREADS];
    memset(args, 0, sizeof args);
    for (int i = 0; i < NTHREADS; i++)
        args[i] = (spend_arg){.t = t, .id = i % 3, .ns = ns, .nkeys = nkeys, .winners = winners,
                              .fresh_ns = 600 + round, .fresh_n = nkeys,
                              .inserter = i == NTHREADS - 1 && (round & 1)};
    run_threads(spend_thread, args, sizeof args[0], NTHREADS);
    uint64_t wins = 0, bad = 0, multi = 0, none = 0, fresh = 0;
    for (int i = 0; i < NTHREADS; i++) {
        wins += args[i].wins, bad += args[i].bad_outputs;
        CHECK(args[i].insert_failures == 0);
        fresh += args[i].inserter ? nkeys : 0;
    }
    for (uint64_t k = 0; k < nkeys; k++) {
        uint8_t w = atomic_load(&winners[k]);
        multi += w > 1;
        none += w == 0;
    }
    CHECKF(wins == nkeys && multi == 0 && none == 0,
           "frozen round %llu: %llu wins for %llu keys, %llu twice, %llu never",
           (unsigned long long)round, (unsigned long long)wins, (unsigned long long)nkeys,
           (unsigned long long)multi, (unsigned long long)none);
    CHECK(bad == 0);
    CHECK(pm_utxo_table_count(t) == fresh);
    free(winners);
    pm_utxo_table_destroy(t);
}

/* ---- 2. racing inserts --------------------------------------------------- */

typedef struct {
    pm_utxo_table *t;
    int id;
    uint64_t ns, nkeys;
    uint64_t ok, state, other;
} insert_arg;

static void *insert_thread(void *p)
{
    insert_arg *a = p;
    for (uint64_t j = 0; j < a->nkeys; j++) {
        uint64_t k = a->id & 1 ? a->nkeys - 1 - j : j;
        uint8_t txid[32], out[PM_OUTPUT_SIZE];
        uint16_t index;
        make_key(txid, &index, a->ns, k);
        make_output(out, a->ns, k);
        pm_status st = pm_utxo_table_insert(a->t, txid, index, out);
        if (st == PM_OK)
            a->ok++;
        else if (st == PM_ERR_STATE)
            a->state++;
        else
            a->other++;
    }
    return NULL;
}

static void test_racing_inserts(uint64_t nkeys)
{
    pm_utxo_table *t = NULL;
    CHECK(pm_utxo_table_create(&t, 1) == PM_OK);
    insert_arg args[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        args[i] = (insert_arg){.t = t, .id = i, .ns = 300, .nkeys = nkeys};
    run_threads(insert_thread, args, sizeof args[0], NTHREADS);
    uint64_t ok = 0, state = 0, other = 0;
    for (int i = 0; i < NTHREADS; i++)
        ok += args[i].ok, state += args[i].state, other += args[i].other;
    CHECKF(ok == nkeys, "%llu inserts succeeded for %llu keys", (unsigned long long)ok,
           (unsigned long long)nkeys);
    CHECK(state == (NTHREADS - 1) * nkeys);
    CHECK(other == 0);
    CHECK(pm_utxo_table_count(t) == nkeys);
    uint64_t good = 0;
    for (uint64_t k = 0; k < nkeys; k++) {
        uint8_t txid[32], out[PM_OUTPUT_SIZE], want[PM_OUTPUT_SIZE];
        uint16_t index;
        make_key(txid, &index, 300, k);
        make_output(want, 300, k);
        good += pm_utxo_table_lookup(t, txid, index, out) == 1 &&
                memcmp(out, want, PM_OUTPUT_SIZE) == 0;
    }
    CHECK(good == nkeys);
    pm_utxo_stats s;
    pm_utxo_table_stats(t, &s);
    CHECKF(s.migrations >= 5, "only %llu migrations", (unsigned long long)s.migrations);
    pm_utxo_table_destroy(t);
}

/* ---- 3. readers during growth -------------------------------------------- */

#define NWRITERS 2
#define NREADERS (NTHREADS - NWRITERS)

typedef struct {
    pm_utxo_table *t;
    uint64_t ns, nkeys;
    _Atomic uint64_t inserted;   /* keys [0, inserted) are in */
    _Atomic uint64_t spent_from; /* keys below this may be spent */
    uint64_t failures;
} writer_state;

typedef struct {
    writer_state *w; /* NWRITERS of them */
    _Atomic int *done;
    int id;
    uint64_t lookups, missing, phantom, bad_output;
} reader_arg;

static void *writer_thread(void *p)
{
    writer_state *w = p;
    for (uint64_t k = 0; k < w->nkeys; k++) {
        uint8_t txid[32], out[PM_OUTPUT_SIZE];
        uint16_t index;
        make_key(txid, &index, w->ns, k);
        make_output(out, w->ns, k);
        w->failures += pm_utxo_table_insert(w->t, txid, index, out) != PM_OK;
        if (k % 1024 == 0)
            pm_utxo_table_test_stall(w->t, 8, k % 16384 == 0);
        atomic_store_explicit(&w->inserted, k + 1, memory_order_release);
        /* spend a trailing key: announce first, then spend */
        if (k >= 64 && k % 3 == 0) {
            uint64_t s = atomic_load_explicit(&w->spent_from, memory_order_relaxed);
            atomic_store_explicit(&w->spent_from, s + 1, memory_order_release);
            make_key(txid, &index, w->ns, s);
            w->failures += pm_utxo_table_spend(w->t, txid, index, NULL) != 1;
        }
    }
    return NULL;
}

static void *reader_thread(void *p)
{
    reader_arg *a = p;
    uint64_t r = mix64((uint64_t)a->id + 77);
    while (!atomic_load_explicit(a->done, memory_order_acquire)) {
        enum { B = 8 };
        pm_outpoint keys[B];
        uint64_t ks[B];
        int ws[B];
        uint64_t lo[B];
        int n = 0;
        for (int j = 0; j < B; j++) {
            r = mix64(r);
            writer_state *w = &a->w[r % NWRITERS];
            uint64_t from = atomic_load_explicit(&w->spent_from, memory_order_acquire);
            uint64_t upto = atomic_load_explicit(&w->inserted, memory_order_acquire);
            if (upto <= from)
                continue;
            ks[n] = from + (r >> 20) % (upto - from);
            ws[n] = (int)(r % NWRITERS);
            lo[n] = from;
            make_key(keys[n].txid, &keys[n].index, w->ns, ks[n]);
            n++;
        }
        uint8_t outs[B][PM_OUTPUT_SIZE], found[B];
        if (n == 0)
            continue;
        if (r & 1) {
            pm_utxo_table_lookup_batch(a->w[0].t, (size_t)n, keys, outs, found);
        } else {
            for (int j = 0; j < n; j++)
                found[j] = (uint8_t)pm_utxo_table_lookup(a->w[0].t, keys[j].txid, keys[j].index,
                                                        outs[j]);
        }
        for (int j = 0; j < n; j++) {
            writer_state *w = &a->w[ws[j]];
            uint64_t after = atomic_load_explicit(&w->spent_from, memory_order_acquire);
            a->lookups++;
            if (!found[j]) {
                /* only a failure if the key stayed present all along */
                if (after <= ks[j])
                    a->missing++;
            } else {
                uint8_t want[PM_OUTPUT_SIZE];
                make_output(want, w->ns, ks[j]);
                a->bad_output += memcmp(outs[j], want, PM_OUTPUT_SIZE) != 0;
            }
            (void)lo[j];
        }
        /* a key never inserted */
        uint8_t txid[32];
        uint16_t index;
        make_key(txid, &index, 999, r % 100000);
        a->phantom += pm_utxo_table_lookup(a->w[0].t, txid, index, NULL);
    }
    return NULL;
}

typedef struct {
    int kind; /* 0 writer, 1 reader */
    void *arg;
} role;

static void *role_thread(void *p)
{
    role *r = p;
    return r->kind == 0 ? writer_thread(r->arg) : reader_thread(r->arg);
}

static void test_readers_during_growth(uint64_t round, uint64_t nkeys)
{
    pm_utxo_table *t = NULL;
    CHECK(pm_utxo_table_create(&t, 1) == PM_OK);
    writer_state w[NWRITERS];
    for (int i = 0; i < NWRITERS; i++) {
        w[i] = (writer_state){.t = t, .ns = 400 + round * 10 + (uint64_t)i, .nkeys = nkeys};
        atomic_init(&w[i].inserted, 0);
        atomic_init(&w[i].spent_from, 0);
    }
    _Atomic int done = 0;
    reader_arg ra[NREADERS];
    for (int i = 0; i < NREADERS; i++)
        ra[i] = (reader_arg){.w = w, .done = &done, .id = i};
    pthread_t wt[NWRITERS], rt[NREADERS];
    role roles[NTHREADS];
    for (int i = 0; i < NREADERS; i++) {
        roles[NWRITERS + i] = (role){1, &ra[i]};
        pthread_create(&rt[i], NULL, role_thread, &roles[NWRITERS + i]);
    }
    for (int i = 0; i < NWRITERS; i++) {
        roles[i] = (role){0, &w[i]};
        pthread_create(&wt[i], NULL, role_thread, &roles[i]);
    }
    for (int i = 0; i < NWRITERS; i++)
        pthread_join(wt[i], NULL);
    atomic_store_explicit(&done, 1, memory_order_release);
    for (int i = 0; i < NREADERS; i++)
        pthread_join(rt[i], NULL);

    uint64_t lookups = 0, missing = 0, phantom = 0, bad = 0, wfail = 0, live = 0;
    for (int i = 0; i < NREADERS; i++)
        lookups += ra[i].lookups, missing += ra[i].missing, phantom += ra[i].phantom,
            bad += ra[i].bad_output;
    for (int i = 0; i < NWRITERS; i++)
        wfail += w[i].failures, live += w[i].nkeys - atomic_load(&w[i].spent_from);
    CHECKF(missing == 0, "%llu of %llu lookups missed a present key", (unsigned long long)missing,
           (unsigned long long)lookups);
    CHECK(phantom == 0);
    CHECK(bad == 0);
    CHECK(wfail == 0);
    CHECK(lookups > 0);
    CHECK(pm_utxo_table_count(t) == live);
    pm_utxo_stats s;
    pm_utxo_table_stats(t, &s);
    CHECKF(s.migrations >= 5, "only %llu migrations", (unsigned long long)s.migrations);
    if (round == 0)
        printf("readers: %llu lookups during %llu migrations\n", (unsigned long long)lookups,
               (unsigned long long)s.migrations);
    pm_utxo_table_reclaim(t);
    pm_utxo_table_destroy(t);
}

int main(void)
{
    const char *seed = getenv("PM_TEST_SEED");
    const char *scale_s = getenv("PM_TEST_SCALE");
    g_seed = seed ? strtoull(seed, NULL, 0) : 1;
    g_scale = scale_s ? strtoul(scale_s, NULL, 0) : 2;
    if (g_scale == 0)
        g_scale = 1;
    printf("seed %llu scale %zu\n", (unsigned long long)g_seed, g_scale);

    /* 1: rounds on one table, reclaimed at the quiescent point between. */
    pm_utxo_table *t = NULL;
    CHECK(pm_utxo_table_create(&t, 1) == PM_OK);
    for (uint64_t round = 0; round < 6; round++) {
        test_racing_spends(t, round, 20000 * g_scale);
        pm_utxo_table_reclaim(t);
    }
    pm_utxo_stats s;
    pm_utxo_table_stats(t, &s);
    printf("racing spends: %llu live, %llu migrations, %llu cells frozen by stalls\n",
           (unsigned long long)s.live, (unsigned long long)s.migrations,
           (unsigned long long)g_stalled);
    CHECK(g_stalled > 0);
    CHECK(s.migrations >= 5);
    pm_utxo_table_destroy(t);

    for (uint64_t round = 0; round < 6; round++)
        test_racing_spends_frozen(round);

    /* 2 */
    for (int round = 0; round < 3; round++)
        test_racing_inserts(30000 * g_scale);

    /* 3 */
    for (uint64_t round = 0; round < 3; round++)
        test_readers_during_growth(round, 60000 * g_scale);

    return pm_test_finish();
}
