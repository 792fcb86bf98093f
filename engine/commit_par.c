/*
 * commit_par.c — connect mode's partitioned commit (contract in
 * commit_par.h; why it gives the sequential result: pipeline.c's note).
 *
 * One block, in four steps:
 *   1. (committer, in order) pm_ledger_stage_tx for every transaction:
 *      registry checks and changes, and the block's undo log as the
 *      sequential apply writes it, spent outputs left blank.
 *   2. (pool job, phase 0) each transaction's UTXO events — its spends,
 *      then its creations — listed at offsets fixed by a prefix sum, each
 *      with the hash of its outpoint, which names its partition.
 *   3. (same job, phase 1) each partition is claimed by one worker, which
 *      walks the block's events of that partition in transaction order
 *      against the table (read only) and an overlay of the block's own
 *      outpoints: a spend must find its outpoint unspent, in the overlay
 *      or the table, and copies the output into its undo record; then
 *      (phase 2) every TRANSFER's conservation and signatures are checked
 *      with those outputs, in parallel over transactions.
 *   4. (committer) any failure: the staging is undone and the caller
 *      re-runs the block sequentially. Else the table is reserved and
 *      (pool job) each partition applies its net effect: spend what it
 *      took from the table, insert what it created and nothing spent.
 * Nothing touches the table before the whole block is known valid, so a
 * failure leaves nothing to roll back but the registry.
 */
#include "commit_par.h"
#include "undo.h"
#include "wire.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#define TX_CHUNK 16

typedef struct {
    uint8_t txid[32];
    uint16_t index;
    uint8_t create; /* 1: creation, 0: spend */
    uint32_t part;
    uint64_t hash;
    const uint8_t *src; /* creation: the output in the transaction */
    uint8_t *out;       /* spend: the output field of its SPENT undo record */
} event;

enum { O_CREATED = 1, O_CREATED_SPENT, O_PRE_SPENT };

/* A partition's overlay: outpoint (via its first event) -> state. */
typedef struct {
    uint32_t *ev;    /* event + 1, 0 empty */
    uint8_t *state;
    size_t mask;
} overlay;

typedef struct {
    pm_engine *e;
    const pm_batch *b;
    const pm_batch_block *bb;
    const size_t *spent_at;
    const size_t *ev_first; /* tx_count + 1 */
    uint8_t *log;
    event *ev;
    size_t n_ev;
    unsigned parts;
    overlay *maps;
    pm_barrier barrier;
    _Atomic size_t claim_tx, claim_part, claim_check, claim_apply;
    _Atomic int failed;
    _Atomic int nomem;
    _Atomic uint64_t cpu_ns; /* summed over the workers */
} par_job;

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int failed(par_job *j)
{
    return atomic_load_explicit(&j->failed, memory_order_relaxed);
}

static void fail_job(par_job *j)
{
    atomic_store_explicit(&j->failed, 1, memory_order_relaxed);
}

static int claim_n(_Atomic size_t *counter, size_t step, size_t n, size_t *first, size_t *end)
{
    size_t start = atomic_fetch_add_explicit(counter, step, memory_order_relaxed);
    if (start >= n)
        return 0;
    *first = start;
    *end = start + step < n ? start + step : n;
    return 1;
}

static void set_event(par_job *j, event *v, const uint8_t txid[32], uint16_t index)
{
    memcpy(v->txid, txid, 32);
    v->index = index;
    uint8_t key[34];
    memcpy(key, txid, 32);
    memcpy(key + 32, &index, 2);
    v->hash = XXH3_64bits_withSeed(key, sizeof key, j->e->xxh_seed);
    /* The top bits: the overlay's slot uses the low ones. */
    v->part = (uint32_t)(((v->hash >> 32) * j->parts) >> 32);
}

/* Phase 0: the events of transaction t. */
static void list_events(par_job *j, size_t t)
{
    const pm_txinfo *in = &j->b->info[j->bb->first_tx + t];
    const pm_tx *tx = &in->tx;
    event *v = j->ev + j->ev_first[t];
    if (tx->type == PM_TX_TRANSFER) {
        for (size_t i = 0; i < tx->n_in; i++, v++) {
            pm_outpoint op;
            pm_tx_input(pm_context_static, &op, tx, i);
            set_event(j, v, op.txid, op.index);
            v->create = 0;
            v->src = NULL;
            v->out = j->log + j->spent_at[t] + i * PM_UNDO_SPENT_RECORD + 1 +
                     offsetof(undo_spent, output);
        }
    }
    if (tx->type == PM_TX_TRANSFER || tx->type == PM_TX_ISSUE) {
        for (size_t o = 0; o < tx->n_out; o++, v++) {
            set_event(j, v, in->txid, (uint16_t)o);
            v->create = 1;
            v->src = tx->outputs + PM_OUTPUT_SIZE * o;
            v->out = NULL;
        }
    }
}

static int same_key(const event *a, const event *b)
{
    return a->index == b->index && memcmp(a->txid, b->txid, 32) == 0;
}

/* The overlay slot of v's outpoint: its state is 0 when absent. */
static size_t overlay_slot(const par_job *j, const overlay *m, const event *v)
{
    for (size_t s = (size_t)v->hash & m->mask;; s = (s + 1) & m->mask) {
        if (m->ev[s] == 0 || same_key(&j->ev[m->ev[s] - 1], v))
            return s;
    }
}

/* Phase 1: partition p's events, in transaction order. */
static void walk_partition(par_job *j, unsigned p)
{
    size_t count = 0;
    for (size_t i = 0; i < j->n_ev; i++)
        count += j->ev[i].part == p;
    size_t cap = 16;
    while (cap < 2 * count)
        cap *= 2;
    overlay *m = &j->maps[p];
    m->ev = calloc(cap, sizeof *m->ev);
    m->state = calloc(cap, 1);
    m->mask = cap - 1;
    if (!m->ev || !m->state) {
        atomic_store_explicit(&j->nomem, 1, memory_order_relaxed);
        fail_job(j);
        return;
    }
    const pm_utxo_table *table = pm_ledger_utxo(j->e->ledger);
    for (size_t i = 0; i < j->n_ev && !failed(j); i++) {
        event *v = &j->ev[i];
        if (v->part != p)
            continue;
        size_t s = overlay_slot(j, m, v);
        if (v->create) {
            /* Created twice in one block: not a valid block (txids of
             * valid transactions are unique), let the sequential run say. */
            if (m->state[s] != 0) {
                fail_job(j);
                break;
            }
            m->ev[s] = (uint32_t)i + 1;
            m->state[s] = O_CREATED;
            continue;
        }
        if (m->state[s] == O_CREATED) {
            memcpy(v->out, j->ev[m->ev[s] - 1].src, PM_OUTPUT_SIZE);
            m->state[s] = O_CREATED_SPENT;
        } else if (m->state[s] == 0 && pm_utxo_table_lookup(table, v->txid, v->index, v->out)) {
            m->ev[s] = (uint32_t)i + 1;
            m->state[s] = O_PRE_SPENT;
        } else {
            fail_job(j); /* missing, or spent earlier in the block */
            break;
        }
    }
}

/* Phase 2: a TRANSFER's checks on the outputs it spends. */
static void check_tx(par_job *j, pm_worker *w, size_t t)
{
    const pm_txinfo *in = &j->b->info[j->bb->first_tx + t];
    if (in->tx.type != PM_TX_TRANSFER)
        return;
    uint8_t spent[PM_TX_MAX_INPUTS][PM_OUTPUT_SIZE];
    const event *v = j->ev + j->ev_first[t];
    for (size_t i = 0; i < in->tx.n_in; i++)
        memcpy(spent[i], v[i].out, PM_OUTPUT_SIZE);
    if (pm_ledger_check_spent(in, (const uint8_t(*)[PM_OUTPUT_SIZE])spent, j->e->ctx->secp,
                              w->keys) != PM_REASON_NONE)
        fail_job(j);
}

static void check_job(void *arg, pm_worker *w, unsigned nw)
{
    par_job *j = arg;
    uint64_t c0 = thread_cpu_ns();
    w->keys->sigcache_store = 0; /* connecting: look signatures up only */
    size_t first, end, n_tx = j->bb->tx_count;
    while (claim_n(&j->claim_tx, TX_CHUNK, n_tx, &first, &end))
        for (size_t t = first; t < end; t++)
            list_events(j, t);
    pm_barrier_wait(&j->barrier, nw);
    while (!failed(j) && claim_n(&j->claim_part, 1, j->parts, &first, &end))
        walk_partition(j, (unsigned)first);
    pm_barrier_wait(&j->barrier, nw);
    while (!failed(j) && claim_n(&j->claim_check, TX_CHUNK, n_tx, &first, &end))
        for (size_t t = first; t < end && !failed(j); t++)
            check_tx(j, w, t);
    atomic_fetch_add_explicit(&j->cpu_ns, thread_cpu_ns() - c0, memory_order_relaxed);
}

/* Step 4: a partition's net effect on the table (reserved: cannot fail). */
static void apply_job(void *arg, pm_worker *w, unsigned nw)
{
    (void)w;
    (void)nw;
    par_job *j = arg;
    uint64_t c0 = thread_cpu_ns();
    pm_utxo_table *table = pm_ledger_utxo(j->e->ledger);
    size_t p, end;
    while (claim_n(&j->claim_apply, 1, j->parts, &p, &end)) {
        const overlay *m = &j->maps[p];
        for (size_t s = 0; s <= m->mask; s++) {
            if (m->state[s] != O_CREATED && m->state[s] != O_PRE_SPENT)
                continue;
            const event *v = &j->ev[m->ev[s] - 1];
            if (m->state[s] == O_PRE_SPENT) {
                (void)pm_utxo_table_spend(table, v->txid, v->index, NULL);
            } else if (pm_utxo_table_insert(table, v->txid, v->index, v->src) == PM_ERR_NOMEM) {
                /* Cannot happen after the reserve; PM_ERR_STATE (present)
                 * is ignored, as the sequential apply ignores it. */
                atomic_store_explicit(&j->nomem, 1, memory_order_relaxed);
            }
        }
    }
    atomic_fetch_add_explicit(&j->cpu_ns, thread_cpu_ns() - c0, memory_order_relaxed);
}

static void free_job(par_job *j, size_t *spent_at, size_t *ev_first)
{
    if (j->maps)
        for (unsigned p = 0; p < j->parts; p++) {
            free(j->maps[p].ev);
            free(j->maps[p].state);
        }
    free(j->maps);
    free(j->ev);
    free(spent_at);
    free(ev_first);
}

pm_status pm_commit_block_parallel(pm_engine *e, const pm_batch *b, const pm_batch_block *bb)
{
    pm_ledger *l = e->ledger;
    size_t n_tx = bb->tx_count, mark = pm_ledger_mark(l);
    size_t *spent_at = malloc((n_tx + 1) * sizeof *spent_at);
    size_t *ev_first = malloc((n_tx + 1) * sizeof *ev_first);
    par_job j;
    memset(&j, 0, sizeof j);
    if (!spent_at || !ev_first) {
        free_job(&j, spent_at, ev_first);
        return PM_ERR_NOMEM;
    }
    /* Step 1, in order. */
    size_t n_ev = 0, n_created = 0;
    pm_status st = PM_OK;
    for (size_t t = 0; t < n_tx && st == PM_OK; t++) {
        const pm_txinfo *in = &b->info[bb->first_tx + t];
        pm_reason reason;
        st = pm_ledger_stage_tx(l, &reason, in, e->ctx->secp, e->keys, &spent_at[t]);
        if (st == PM_OK && reason != PM_REASON_NONE)
            st = PM_ERR_INVALID;
        ev_first[t] = n_ev;
        if (in->tx.type == PM_TX_TRANSFER)
            n_ev += in->tx.n_in;
        if (in->tx.type == PM_TX_TRANSFER || in->tx.type == PM_TX_ISSUE) {
            n_ev += in->tx.n_out;
            n_created += in->tx.n_out;
        }
    }
    ev_first[n_tx] = n_ev;
    if (st == PM_OK && n_ev >= UINT32_MAX)
        st = PM_ERR_INVALID; /* the overlay names events in 32 bits */
    if (st != PM_OK) {
        pm_ledger_unstage(l, mark);
        free_job(&j, spent_at, ev_first);
        return st;
    }
    /* Steps 2 and 3. Partitions: a few per worker, claimed, so that a
     * worker sharing its core with other work does not hold the rest up. */
    j.e = e;
    j.b = b;
    j.bb = bb;
    j.spent_at = spent_at;
    j.ev_first = ev_first;
    j.log = pm_ledger_log_bytes(l);
    j.n_ev = n_ev;
    j.parts = 4 * pm_pool_size(e->pool);
    j.ev = malloc((n_ev ? n_ev : 1) * sizeof *j.ev);
    j.maps = calloc(j.parts, sizeof *j.maps);
    if (!j.ev || !j.maps) {
        pm_ledger_unstage(l, mark);
        free_job(&j, spent_at, ev_first);
        return PM_ERR_NOMEM;
    }
    pm_barrier_init(&j.barrier);
    pm_pool_start(e->pool, check_job, &j);
    pm_pool_wait(e->pool);
    st = atomic_load_explicit(&j.nomem, memory_order_relaxed) ? PM_ERR_NOMEM
         : failed(&j)                                          ? PM_ERR_INVALID
                                                               : PM_OK;
    /* Step 4: every insert, and every re-insert a rollback of the log
     * could need, covered before the table changes. */
    if (st == PM_OK && pm_utxo_table_reserve(pm_ledger_utxo(l),
                                             n_created + pm_ledger_log_spent(l)) != PM_OK)
        st = PM_ERR_NOMEM;
    if (st != PM_OK) {
        pm_ledger_unstage(l, mark);
    } else {
        pm_pool_start(e->pool, apply_job, &j);
        pm_pool_wait(e->pool);
    }
    e->stage.apply_parallel += (double)atomic_load_explicit(&j.cpu_ns, memory_order_relaxed) / 1e9;
    free_job(&j, spent_at, ev_first);
    return st;
}
