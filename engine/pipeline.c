/*
 * pipeline.c — the validation pipeline: transactions in, verdicts and
 * blocks out, the sequential result computed in parallel.
 *
 * Design note
 * ===========
 * Stages. Work moves in batches of up to BATCH_TXS transactions:
 *
 *   caller thread            worker threads (pool.c)            caller thread
 *   fill batch k+1  ──────▶  A: parse, txid, sighash, leaf,  ──▶ commit batch k+1
 *   (copy records)           index txids   | barrier |           in stream order
 *                            B: resolve signing keys, verify      (state.c)
 *
 * While the workers hash and verify batch k+1, the caller's thread commits
 * batch k; then it waits for the workers, reclaims retired table memory
 * (a quiescent point: nobody reads the table) and swaps the batches.
 * Workers claim chunks of CHUNK items with an atomic counter: no
 * dispatcher, no queue, no lock on the hot path. (A static split by
 * item % n would be simpler, but the commit stage shares the cores: the
 * worker that shares one with it would finish last while the others
 * idle.) Only two batches exist; each is owned by the caller while
 * filled, by the workers in A/B, by the committer after.
 *
 * Determinism. Only the commit stage decides, one transaction at a time in
 * stream order, on the state left by every earlier one (§5, §7): the
 * verdicts, blocks and state are the sequential result whatever the
 * number of threads. The workers do the expensive, state-independent part
 * optimistically: signature verification under the key they *expect*.
 *   - An outpoint's output never changes once created (no two valid
 *     transactions share a txid, and a txid fixes the outputs), so the
 *     owner a worker finds — in the UTXO table (committed state, being
 *     changed concurrently by the committer: any hit is still the right
 *     owner), else among the outputs of batch k or of earlier items of
 *     batch k+1 (in-batch chains) — is the owner the committer will see
 *     if the input exists at all.
 *   - For REGISTER the key is the governance key; for SERIES and ISSUE the
 *     operator's key from an immutable snapshot republished at quiescent
 *     points; a REGISTER committed meanwhile can change it.
 *   - The committer recomputes each signature's key from its own state and
 *     trusts the worker's verdict only if the keys are byte-identical;
 *     otherwise (rare: a rotated key, an owner the worker could not see)
 *     it verifies inline. So parallelism never changes a verdict.
 * Work is not redone: each record is parsed and hashed once (phase A),
 * x-only keys are parsed once per worker (key cache), identical
 * (key, signature) pairs of one transaction are verified once, and a
 * signature that verified when its transaction was admitted (check_tx,
 * pack mode: batches with `admit`) is found in the engine's signature
 * cache when a block holding it is connected (sigcache.h; a hit needs the
 * same chain, key, message and signature, so it never changes a verdict).
 *
 * Blocks (pack mode, §7) are built by the committer as chain-file bytes;
 * connect mode checks each block in the §6 order (framing, link, tx parse,
 * merkle, then transactions on the state) and rolls an invalid block back
 * through the ledger's undo log.
 *
 * Parallel commit (connect mode, commit_par.c). A block is valid as a
 * whole or not at all, so its transactions need not be applied one by one
 * to get the sequential result, only shown to all pass. In connect mode
 * the workers finish batch k+1 first, then commit batch k with the
 * committer, block by block:
 *   1. the committer stages every transaction in order: the registry
 *      checks and changes of REGISTER, SERIES and ISSUE (sequence numbers,
 *      operator keys, series, minted stamps) and the undo records the
 *      sequential apply writes, byte for byte and in the same order (a
 *      SPENT record's output is blank until step 2);
 *   2. the block's UTXO events (each tx's spends, then its creations) are
 *      partitioned by a hash of the outpoint; each partition is walked by
 *      one worker in transaction order against the table (read only) and
 *      an overlay of the block's outpoints. A spend must find its outpoint
 *      unspent and fills in its undo record; then every TRANSFER's
 *      conservation and signatures are checked with the outputs found;
 *   3. only when nothing failed does each partition apply its net effect
 *      to the table (spend what came from the table, insert what was
 *      created and not spent in the block); else the staging is undone,
 *      nothing having touched the table, and the block is re-run one
 *      transaction at a time, which reports the first failing transaction
 *      and its reason, exactly.
 * Why it is the sequential result. The state has two independent parts:
 * the registry (read and written only by REGISTER, SERIES and ISSUE, which
 * never read the UTXO set) and the UTXO set (whose checks — MISSING_INPUT,
 * NOT_CONSERVED, the owners' signatures — never read the registry). Step 1
 * runs the registry part in order, so each of its checks sees what the
 * sequential run would, given that every earlier transaction applied. On
 * the UTXO side, whether a spend succeeds depends only on the events on
 * that one outpoint before it — its presence in the table before the
 * block, and earlier creations and spends of it in the block — and a
 * partition holds every event on its outpoints in transaction order. So
 * if every check passes, by induction over the transactions each one,
 * seeing the state its predecessors left, passes in the sequential run
 * too and the sequential run applies them all; the final set is then the
 * table minus the spent outpoints plus the surviving creations, which is
 * what step 3 writes. The outputs found are right because an outpoint's
 * output never changes (a txid fixes the outputs). If any check fails the
 * sequential run would stop at some transaction: only the re-run can say
 * which, and it is given the state from before the block. Thread count
 * changes which worker walks a partition, never what it sees. Committing
 * batch k after verifying k+1 is sound: k+1's workers find k's outputs in
 * batch k (b->prev), and an output k spends still names its owner.
 */
#include "pipeline.h"
#include "commit_par.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <xxhash.h>

#define BATCH_TXS 4096
#define CHUNK 16
#define BATCH_BYTES (16u << 20)

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the calling thread (the stage table counts work, not
 * time lost to other processes on a shared machine). */
static double thread_cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------------- */
/* Batches                                                                 */
/* ---------------------------------------------------------------------- */

static void batch_free(pm_batch *b)
{
    free(b->info);
    free(b->parsed);
    free(b->leaf);
    free(b->index);
    free(b->raw_off);
    free(b->raw);
    free(b->raw_size);
    free(b->key_off);
    free(b->keybuf);
    free(b->arena);
    hmap_free(&b->txindex);
    free(b->blocks);
    memset(b, 0, sizeof *b);
}

static void batch_reset(pm_batch *b)
{
    b->n = 0;
    b->arena_len = 0;
    b->nblocks = 0;
    b->prev = NULL;
}

#define GROW(ptr, count)                                                            \
    do {                                                                            \
        void *p_ = realloc((ptr), (count) * sizeof *(ptr));                         \
        if (!p_)                                                                    \
            return PM_ERR_NOMEM;                                                    \
        (ptr) = p_;                                                                 \
    } while (0)

/* Room for one more item. */
static pm_status batch_grow(pm_batch *b)
{
    if (b->n < b->cap)
        return PM_OK;
    size_t cap = b->cap ? b->cap * 2 : 256;
    GROW(b->info, cap);
    GROW(b->parsed, cap);
    GROW(b->leaf, cap);
    GROW(b->index, cap);
    GROW(b->raw_off, cap);
    GROW(b->raw, cap);
    GROW(b->raw_size, cap);
    GROW(b->key_off, cap);
    b->cap = cap;
    return PM_OK;
}

static pm_status batch_push(pm_batch *b, const uint8_t *raw, size_t size, uint64_t index,
                            int skip_signatures)
{
    if (batch_grow(b) != PM_OK)
        return PM_ERR_NOMEM;
    size_t i = b->n;
    memset(&b->info[i], 0, sizeof b->info[i]);
    b->info[i].skip_signatures = (uint8_t)skip_signatures;
    b->raw[i] = raw;
    b->raw_size[i] = size;
    b->index[i] = index;
    b->n++;
    return PM_OK;
}

/* Pack mode: the record is copied into the batch's arena. */
static pm_status batch_push_copy(pm_batch *b, const uint8_t *raw, size_t size, uint64_t index)
{
    if (b->arena_len + size > b->arena_cap) {
        size_t cap = b->arena_cap ? b->arena_cap : 1 << 20;
        while (cap < b->arena_len + size)
            cap *= 2;
        uint8_t *a = realloc(b->arena, cap);
        if (!a)
            return PM_ERR_NOMEM;
        b->arena = a;
        b->arena_cap = cap;
    }
    if (batch_push(b, NULL, size, index, 0) != PM_OK)
        return PM_ERR_NOMEM;
    if (size)
        memcpy(b->arena + b->arena_len, raw, size);
    b->raw_off[b->n - 1] = b->arena_len;
    b->arena_len += size;
    return PM_OK;
}

/* Before the workers start: fix arena pointers, size the key buffer and
 * the txid index. A signature takes 64 bytes of the record, its key 32
 * in keybuf, so half the record size bounds the keys of a transaction. */
static pm_status batch_prepare(pm_batch *b, int from_arena)
{
    size_t keys = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (from_arena)
            b->raw[i] = b->raw_size[i] ? b->arena + b->raw_off[i] : NULL;
        b->key_off[i] = keys;
        keys += b->raw_size[i] / 2 + 32;
    }
    if (keys > b->keybuf_cap) {
        uint8_t *k = realloc(b->keybuf, keys);
        if (!k)
            return PM_ERR_NOMEM;
        b->keybuf = k;
        b->keybuf_cap = keys;
    }
    /* Load at most 1/2 (lookups of absent txids are common: every input
     * found in neither batch). Remade when the batch size changes the
     * size, so a small batch never clears a big table. */
    size_t room = b->n + b->n / 2;
    if (!b->txindex.slot || b->txindex.mask + 1 != HMAP_SLOTS_FOR(room)) {
        hmap_free(&b->txindex);
        if (!hmap_init(&b->txindex, room))
            return PM_ERR_NOMEM;
    } else {
        hmap_clear(&b->txindex);
    }
    pm_barrier_init(&b->barrier);
    atomic_store_explicit(&b->claim_hash, 0, memory_order_relaxed);
    atomic_store_explicit(&b->claim_verify, 0, memory_order_relaxed);
    atomic_store_explicit(&b->hash_failed, 0, memory_order_relaxed);
    return PM_OK;
}

static uint64_t txid_hash(const pm_batch *b, const uint8_t txid[32])
{
    return XXH3_64bits_withSeed(txid, 32, b->engine->xxh_seed);
}

/* Concurrent insert (phase A): the first item to claim a txid keeps it. */
static void txindex_insert(pm_batch *b, size_t item)
{
    const uint8_t *txid = b->info[item].txid;
    hmap_cursor c = hmap_probe(&b->txindex, txid_hash(b, txid));
    for (;;) {
        for (uint32_t it; (it = hmap_next(&b->txindex, &c)) != HMAP_NONE;)
            if (memcmp(b->info[it].txid, txid, 32) == 0)
                return;
        if (hmap_claim(&b->txindex, &c, (uint32_t)item))
            return;
    }
}

static const pm_txinfo *txindex_find(const pm_batch *b, const uint8_t txid[32])
{
    if (!b || b->n == 0)
        return NULL;
    hmap_cursor c = hmap_probe(&b->txindex, txid_hash(b, txid));
    for (uint32_t it; (it = hmap_next(&b->txindex, &c)) != HMAP_NONE;)
        if (memcmp(b->info[it].txid, txid, 32) == 0)
            return &b->info[it];
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Worker phases                                                           */
/* ---------------------------------------------------------------------- */

/* Claim the next chunk of items: [*first, *end). Returns 0 when none is
 * left. */
static int claim(_Atomic size_t *counter, size_t n, size_t *first, size_t *end)
{
    size_t start = atomic_fetch_add_explicit(counter, CHUNK, memory_order_relaxed);
    if (start >= n)
        return 0;
    *first = start;
    *end = start + CHUNK < n ? start + CHUNK : n;
    return 1;
}

static void hash_one(pm_batch *b, pm_worker *w, size_t i)
{
    const pm_engine *e = b->engine;
    pm_txinfo *in = &b->info[i];
    if (!pm_tx_parse(pm_context_static, &in->tx, NULL, b->raw[i], b->raw_size[i])) {
        b->parsed[i] = 0;
        return;
    }
    b->parsed[i] = 1;
    if (!pm_hash_txid(w->hasher, in->txid, &in->tx) ||
        !pm_hash_sighash(w->hasher, in->sighash, e->chain_id, in->txid) ||
        !pm_hash_leaf(w->hasher, b->leaf[i], &in->tx, in->txid))
        atomic_store_explicit(&b->hash_failed, 1, memory_order_relaxed);
    in->duplicate_input = (uint8_t)pm_tx_has_duplicate_input(pm_context_static, &in->tx, NULL);
    txindex_insert(b, i);
}

/* The owner of output `index` of a transaction of batch b, if b has it. */
static const uint8_t *batch_owner(const pm_batch *b, const pm_outpoint *op)
{
    const pm_txinfo *t = txindex_find(b, op->txid);
    if (!t || op->index >= t->tx.n_out)
        return NULL;
    return t->tx.outputs + (size_t)PM_OUTPUT_SIZE * op->index + 1;
}

/* The owner of each input, as the committer will find it if the input
 * exists. Returns 0 when one cannot be found (the committer decides). */
static int resolve_owners(const pm_batch *b, const pm_txinfo *in, uint8_t *keys)
{
    pm_outpoint ops[PM_TX_MAX_INPUTS];
    uint8_t outs[PM_TX_MAX_INPUTS][PM_OUTPUT_SIZE];
    uint8_t found[PM_TX_MAX_INPUTS];
    const pm_tx *tx = &in->tx;
    for (size_t i = 0; i < tx->n_in; i++)
        pm_tx_input(pm_context_static, &ops[i], tx, i);
    pm_utxo_table_lookup_batch(pm_ledger_utxo(b->engine->ledger), tx->n_in, ops, outs, found);
    for (size_t i = 0; i < tx->n_in; i++) {
        const uint8_t *owner = found[i] ? outs[i] + 1 : batch_owner(b->prev, &ops[i]);
        if (!owner)
            owner = batch_owner(b, &ops[i]);
        if (!owner)
            return 0;
        memcpy(keys + 32 * i, owner, 32);
    }
    return 1;
}

static void verify_one(pm_batch *b, pm_worker *w, size_t i)
{
    const pm_engine *e = b->engine;
    pm_txinfo *in = &b->info[i];
    if (!b->parsed[i] || in->skip_signatures || in->duplicate_input)
        return;
    uint8_t *keys = b->keybuf + b->key_off[i];
    const uint8_t *k;
    switch (in->tx.type) {
    case PM_TX_REGISTER:
        memcpy(keys, pm_ledger_governance_key(e->ledger), 32);
        break;
    case PM_TX_SERIES:
    case PM_TX_ISSUE:
        k = pm_opkeys_find(b->opkeys, in->tx.operator_id);
        if (!k)
            return;
        memcpy(keys, k, 32);
        break;
    default:
        if (!resolve_owners(b, in, keys))
            return;
    }
    in->sig.keys = keys;
    in->sig.sig_ok = (uint8_t)pm_verify_tx_sigs(e->ctx->secp, w->keys, &in->tx, keys, in->sighash);
    in->sig.resolved = 1;
}

static void batch_job(void *job, pm_worker *w, unsigned nw)
{
    pm_batch *b = job;
    size_t first, end;
    w->keys->sigcache_store = b->admit;
    double t0 = now_seconds();
    while (claim(&b->claim_hash, b->n, &first, &end))
        for (size_t i = first; i < end; i++)
            hash_one(b, w, i);
    double t1 = now_seconds();
    pm_barrier_wait(&b->barrier, nw);
    double t2 = now_seconds();
    while (claim(&b->claim_verify, b->n, &first, &end))
        for (size_t i = first; i < end; i++)
            verify_one(b, w, i);
    w->seconds_hash += t1 - t0;
    w->seconds_verify += now_seconds() - t2;
}

/* Start the workers on `next` (which may be empty) with `prev` being
 * committed meanwhile. */
static pm_status batch_start(pm_engine *e, pm_batch *next, const pm_batch *prev, int from_arena)
{
    if (next->n == 0)
        return PM_OK;
    pm_status st = batch_prepare(next, from_arena);
    if (st != PM_OK)
        return st;
    next->prev = prev;
    next->opkeys = pm_ledger_opkeys(e->ledger);
    next->engine = e;
    next->admit = (uint8_t)from_arena; /* the arena holds submitted records */
    pm_pool_start(e->pool, batch_job, next);
    return PM_OK;
}

/* After the workers and the committer are done: a quiescent point. */
static pm_status batch_finish(pm_engine *e, pm_batch *next)
{
    if (next->n)
        pm_pool_wait(e->pool);
    pm_utxo_table_reclaim(pm_ledger_utxo(e->ledger));
    pm_status st = pm_ledger_publish_opkeys(e->ledger);
    /* pm_pool_wait ordered the workers' stores before this load. A batch
     * with a hash missing cannot be committed; SHA-256 fails only when
     * OpenSSL cannot allocate. */
    if (st == PM_OK && next->n && atomic_load_explicit(&next->hash_failed, memory_order_relaxed))
        st = PM_ERR_NOMEM;
    return st;
}

/* After a commit with the workers idle: free what the commit retired,
 * republish the operator keys it may have changed. */
static pm_status quiescent_point(pm_engine *e)
{
    pm_utxo_table_reclaim(pm_ledger_utxo(e->ledger));
    return pm_ledger_publish_opkeys(e->ledger);
}

/* ---------------------------------------------------------------------- */
/* Pack mode                                                               */
/* ---------------------------------------------------------------------- */

static void set_error(pm_engine *e, const char *msg)
{
    snprintf(e->error, sizeof e->error, "%s", msg);
}

static void reject(pm_engine *e, uint64_t index, const uint8_t *txid, pm_reason reason)
{
    e->stats.txs_rejected++;
    e->stats.rejects[reason]++;
    if (e->on_reject)
        e->on_reject(e->cb_data, index, txid, reason);
}

static pm_status close_open_block(pm_engine *e)
{
    pm_block_builder *bb = &e->open.builder;
    if (bb->count == 0)
        return PM_OK;
    uint8_t tip[32], hash[32];
    int64_t height;
    pm_ledger_tip(e->ledger, tip, &height);
    if (!pm_block_builder_seal(bb, e->hasher, (uint64_t)(height + 1), tip, hash))
        return PM_ERR_NOMEM;
    pm_ledger_seal_block(e->ledger, hash);
    e->stats.blocks_emitted++;
    e->emitting_last_index = e->open.index[bb->count - 1];
    if (e->on_block)
        e->on_block(e->cb_data, bb->bytes, bb->size, (uint64_t)(height + 1), hash);
    pm_block_builder_reset(bb);
    return PM_OK;
}

static pm_status open_block_add(pm_engine *e, const pm_txinfo *in, const uint8_t leaf[32],
                                uint64_t index)
{
    pm_open_block *ob = &e->open;
    if (ob->builder.count == ob->cap_index) {
        size_t cap = ob->cap_index ? ob->cap_index * 2 : 256;
        uint64_t *idx = realloc(ob->index, cap * sizeof *idx);
        if (!idx)
            return PM_ERR_NOMEM;
        ob->index = idx;
        ob->cap_index = cap;
    }
    pm_status st = pm_block_builder_add(&ob->builder, in->tx.bytes, in->tx.size, leaf);
    if (st == PM_OK)
        ob->index[ob->builder.count - 1] = index;
    return st;
}

static pm_status commit_pack(pm_engine *e, pm_batch *b)
{
    double started = now_seconds(), cpu0 = thread_cpu_seconds();
    pm_status st = PM_OK;
    e->keys->sigcache_store = 1;
    for (size_t i = 0; i < b->n && st == PM_OK; i++) {
        const pm_txinfo *in = &b->info[i];
        if (!b->parsed[i]) {
            reject(e, b->index[i], NULL, PM_REASON_MALFORMED);
            continue;
        }
        size_t mark = pm_ledger_mark(e->ledger);
        pm_reason reason;
        st = pm_ledger_apply_tx(e->ledger, &reason, in, e->ctx->secp, e->keys);
        if (st != PM_OK)
            break;
        if (reason != PM_REASON_NONE) {
            reject(e, b->index[i], in->txid, reason);
            continue;
        }
        if (!pm_block_builder_fits(&e->open.builder, in->tx.size, e->cfg.block_max_txs,
                                   e->cfg.block_max_bytes)) {
            /* The open block is closed without this transaction: take it
             * back, seal, and apply it again at the start of the next. */
            pm_ledger_rollback(e->ledger, mark);
            if ((st = close_open_block(e)) != PM_OK)
                break;
            st = pm_ledger_apply_tx(e->ledger, &reason, in, e->ctx->secp, e->keys);
            if (st != PM_OK)
                break;
        }
        st = open_block_add(e, in, b->leaf[i], b->index[i]);
        if (st != PM_OK) {
            pm_ledger_rollback(e->ledger, mark);
            break;
        }
        e->stats.txs_accepted++;
        /* A full block cannot change any more: emit it now. */
        if (e->open.builder.count == e->cfg.block_max_txs)
            st = close_open_block(e);
    }
    e->stats.seconds_commit += now_seconds() - started;
    e->stage.commit_cpu += thread_cpu_seconds() - cpu0;
    return st;
}

/* One pipeline step in pack mode: verify the filling batch while the
 * committing one is committed. */
static pm_status pack_step(pm_engine *e)
{
    pm_batch *next = e->filling, *prev = e->committing;
    pm_status st = batch_start(e, next, prev, 1);
    if (st != PM_OK)
        return st;
    pm_status cst = prev ? commit_pack(e, prev) : PM_OK;
    st = batch_finish(e, next);
    if (prev)
        batch_reset(prev);
    e->committing = next->n ? next : NULL;
    e->filling = next->n ? (next == &e->batches[0] ? &e->batches[1] : &e->batches[0]) : next;
    return cst != PM_OK ? cst : st;
}

static pm_status fail(pm_engine *e, pm_status st, const char *what)
{
    if (st != PM_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s: %s", what, pm_status_text(st));
        set_error(e, msg);
        /* Work in flight is dropped; the state is consistent (every
         * transaction before the failing one applied, none after). */
        batch_reset(&e->batches[0]);
        batch_reset(&e->batches[1]);
        e->committing = NULL;
        e->filling = &e->batches[0];
    }
    return st;
}

static int batch_full(const pm_batch *b)
{
    return b->n >= BATCH_TXS || b->arena_len >= BATCH_BYTES;
}

static pm_status submit_indexed(pm_engine *e, const uint8_t *tx, size_t size, uint64_t index)
{
    if (batch_full(e->filling)) {
        pm_status st = pack_step(e);
        if (st != PM_OK)
            return fail(e, st, "pack");
    }
    /* A record over the protocol's limit is MALFORMED whatever it holds:
     * keep none of it (a 4 GiB record must not be copied to be rejected). */
    if (size > PM_TX_MAX_SIZE)
        tx = NULL, size = 0;
    pm_status st = batch_push_copy(e->filling, tx, size, index);
    if (st != PM_OK) {
        char msg[160];
        snprintf(msg, sizeof msg, "queueing transaction %llu (%zu bytes): %s",
                 (unsigned long long)index, size, pm_status_text(st));
        set_error(e, msg);
    }
    return st;
}

pm_status pm_pipeline_submit(pm_engine *e, const uint8_t *tx, size_t size)
{
    pm_status st = submit_indexed(e, tx, size, e->next_index);
    if (st == PM_OK)
        e->next_index++;
    return st;
}

pm_status pm_pipeline_submit_truncated(pm_engine *e)
{
    /* No bytes: the parse fails, so it is a MALFORMED reject. */
    return pm_pipeline_submit(e, NULL, 0);
}

pm_status pm_pipeline_drain(pm_engine *e, int close_block)
{
    while (e->filling->n || e->committing) {
        pm_status st = pack_step(e);
        if (st != PM_OK)
            return fail(e, st, "pack");
    }
    return close_block ? fail(e, close_open_block(e), "closing block") : PM_OK;
}

/* One step, even with the filling batch not full: it starts verifying
 * while the committing one is decided. Records are decided in index order,
 * so the first undecided one is the committing batch's first (now the
 * batch just started), else the filling batch's, else the next to come. */
pm_status pm_pipeline_step(pm_engine *e, uint64_t *settled)
{
    if (e->filling->n || e->committing) {
        pm_status st = pack_step(e);
        if (st != PM_OK)
            return fail(e, st, "pack");
    }
    *settled = e->committing ? e->committing->index[0]
               : e->filling->n ? e->filling->index[0]
                               : e->next_index;
    return PM_OK;
}

/* ---------------------------------------------------------------------- */
/* Mempool: the open block's transactions around a change of tip            */
/* ---------------------------------------------------------------------- */

void pm_pipeline_suspend_open_block(pm_engine *e, pm_open_block *saved)
{
    pm_ledger_rollback(e->ledger, 0);
    *saved = e->open;
    memset(&e->open, 0, sizeof e->open);
    pm_block_builder_init(&e->open.builder);
}

pm_status pm_pipeline_recheck(pm_engine *e, pm_open_block *saved)
{
    pm_status st = PM_OK;
    const uint8_t *p = saved->builder.count ? saved->builder.bytes + PM_BLOCK_HEADER_SIZE : NULL;
    for (size_t i = 0; i < saved->builder.count && st == PM_OK; i++) {
        size_t size = pm_read_u32le(p);
        st = submit_indexed(e, p + 4, size, saved->index[i]);
        p += 4 + size;
    }
    if (st == PM_OK)
        st = pm_pipeline_drain(e, 0);
    pm_block_builder_free(&saved->builder);
    free(saved->index);
    return st;
}

/* ---------------------------------------------------------------------- */
/* Connect mode                                                            */
/* ---------------------------------------------------------------------- */

static pm_status batch_add_block(pm_batch *b, const uint8_t *bytes, size_t size,
                                 size_t position, int skip_signatures)
{
    if (b->nblocks == b->cap_blocks) {
        size_t cap = b->cap_blocks ? b->cap_blocks * 2 : 16;
        GROW(b->blocks, cap);
        b->cap_blocks = cap;
    }
    pm_batch_block *bb = &b->blocks[b->nblocks];
    memset(bb, 0, sizeof *bb);
    bb->position = position;
    bb->skip_signatures = skip_signatures;
    bb->first_tx = b->n;
    bb->framed = pm_block_parse(pm_context_static, &bb->blk, NULL, bytes, size);
    if (bb->framed) {
        const uint8_t *tx;
        size_t tx_size, cursor = 0;
        while (pm_block_next_tx(pm_context_static, &tx, &tx_size, &bb->blk, &cursor)) {
            if (batch_push(b, tx, tx_size, 0, skip_signatures) != PM_OK)
                return PM_ERR_NOMEM;
        }
        bb->tx_count = b->n - bb->first_tx;
    }
    b->nblocks++;
    return PM_OK;
}

static void set_verdict(pm_verdict *v, pm_reason reason, size_t block, int64_t tx,
                        const uint8_t *txid)
{
    memset(v, 0, sizeof *v);
    v->reason = reason;
    v->block = block;
    v->tx = tx;
    if (txid) {
        v->has_txid = 1;
        memcpy(v->txid, txid, 32);
    }
}

/* §6 for each block of the batch, in order. Returns PM_OK, PM_ERR_INVALID
 * (verdict set, the failing block rolled back) or PM_ERR_NOMEM. */
static pm_status commit_blocks(pm_engine *e, pm_batch *b, pm_verdict *v)
{
    double started = now_seconds(), cpu0 = thread_cpu_seconds();
    pm_status st = PM_OK;
    e->keys->sigcache_store = 0;
    for (size_t k = 0; k < b->nblocks && st == PM_OK; k++) {
        const pm_batch_block *bb = &b->blocks[k];
        if (!bb->framed) {
            set_verdict(v, PM_REASON_BLOCK_MALFORMED, bb->position, -1, NULL);
            st = PM_ERR_INVALID;
            break;
        }
        uint8_t tip[32];
        int64_t height;
        pm_ledger_tip(e->ledger, tip, &height);
        if (!pm_block_links(&bb->blk.header, tip, height)) {
            set_verdict(v, PM_REASON_BAD_LINK, bb->position, -1, NULL);
            st = PM_ERR_INVALID;
            break;
        }
        for (size_t t = 0; t < bb->tx_count && st == PM_OK; t++) {
            if (!b->parsed[bb->first_tx + t]) {
                set_verdict(v, PM_REASON_MALFORMED, bb->position, (int64_t)t, NULL);
                st = PM_ERR_INVALID;
            }
        }
        if (st != PM_OK)
            break;
        uint8_t root[32];
        double h0 = thread_cpu_seconds();
        int hashed = pm_hash_merkle(e->hasher, root, (const uint8_t(*)[32])b->leaf + bb->first_tx,
                                    bb->tx_count);
        e->stage.commit_hashing += thread_cpu_seconds() - h0;
        if (!hashed) {
            st = PM_ERR_NOMEM;
            break;
        }
        if (memcmp(root, bb->blk.header.merkle_root, 32) != 0) {
            set_verdict(v, PM_REASON_BAD_MERKLE, bb->position, -1, NULL);
            st = PM_ERR_INVALID;
            break;
        }
        size_t mark = pm_ledger_mark(e->ledger);
        /* The partitioned commit first; anything it cannot prove valid is
         * re-run one transaction at a time for the exact verdict. */
        pm_status pst = pm_commit_block_parallel(e, b, bb);
        if (pst == PM_OK)
            e->stage.blocks_parallel++;
        else
            e->stage.blocks_sequential++;
        for (size_t t = 0; pst != PM_OK && t < bb->tx_count; t++) {
            const pm_txinfo *in = &b->info[bb->first_tx + t];
            pm_reason reason;
            st = pm_ledger_apply_tx(e->ledger, &reason, in, e->ctx->secp, e->keys);
            if (st == PM_OK && reason != PM_REASON_NONE) {
                set_verdict(v, reason, bb->position, (int64_t)t, in->txid);
                st = PM_ERR_INVALID;
            }
            if (st != PM_OK)
                break;
        }
        if (st != PM_OK) {
            pm_ledger_rollback(e->ledger, mark);
            break;
        }
        uint8_t hash[32];
        h0 = thread_cpu_seconds();
        hashed = pm_hash_block(e->hasher, hash, bb->blk.bytes);
        e->stage.commit_hashing += thread_cpu_seconds() - h0;
        if (!hashed) {
            pm_ledger_rollback(e->ledger, mark);
            st = PM_ERR_NOMEM;
            break;
        }
        pm_ledger_seal_block(e->ledger, hash);
        e->stats.blocks_connected++;
        e->stats.txs_accepted += bb->tx_count;
    }
    e->stats.seconds_commit += now_seconds() - started;
    e->stage.commit_cpu += thread_cpu_seconds() - cpu0;
    return st;
}

pm_status pm_pipeline_connect(pm_engine *e, pm_verdict *v, const uint8_t *const *blocks,
                              const size_t *sizes, size_t n, size_t assume_valid_upto)
{
    set_verdict(v, PM_REASON_NONE, 0, -1, NULL);
    pm_batch *committing = NULL;
    pm_status result = PM_OK;
    size_t pos = 0;
    while (pos < n || committing) {
        pm_batch *next = committing == &e->batches[0] ? &e->batches[1] : &e->batches[0];
        batch_reset(next);
        pm_status st = PM_OK;
        while (pos < n && next->n < BATCH_TXS && st == PM_OK) {
            st = batch_add_block(next, blocks[pos], sizes[pos], pos, pos < assume_valid_upto);
            pos++;
            /* A block that is not framed ends the batch: nothing after it
             * can be connected. */
            if (st == PM_OK && !next->blocks[next->nblocks - 1].framed)
                pos = n;
        }
        if (st == PM_OK)
            st = batch_start(e, next, committing, 0);
        if (st != PM_OK) {
            /* Nothing started for `next`; finish what is committing. */
            if (committing) {
                pm_status cst = commit_blocks(e, committing, v);
                if (cst != PM_OK)
                    st = cst;
            }
            result = st;
            batch_reset(next);
            break;
        }
        /* The workers finish `next` before `committing` is committed: the
         * commit uses them too (commit_par.c). Verifying `next` against a
         * table that does not yet hold `committing`'s changes is sound:
         * its outputs are found in the batch (b->prev), and an output
         * spent meanwhile still names its owner. */
        st = batch_finish(e, next);
        pm_status cst = committing && st == PM_OK ? commit_blocks(e, committing, v) : PM_OK;
        if (cst == PM_OK && st == PM_OK)
            st = quiescent_point(e);
        if (committing)
            batch_reset(committing);
        if (cst != PM_OK || st != PM_OK) {
            result = cst != PM_OK ? cst : st;
            batch_reset(next);
            break;
        }
        committing = next->nblocks ? next : NULL;
    }
    if (result == PM_ERR_NOMEM)
        set_error(e, "connect: out of memory");
    e->filling = &e->batches[0];
    e->committing = NULL;
    batch_reset(&e->batches[0]);
    batch_reset(&e->batches[1]);
    return result;
}

/* ---------------------------------------------------------------------- */
/* Admission, init                                                         */
/* ---------------------------------------------------------------------- */

pm_status pm_pipeline_check_tx(pm_engine *e, pm_reason *reason, const uint8_t *tx, size_t size)
{
    pm_status st = pm_pipeline_drain(e, 0);
    if (st != PM_OK)
        return st;
    pm_txinfo in;
    memset(&in, 0, sizeof in);
    if (!pm_tx_parse(pm_context_static, &in.tx, NULL, tx, size)) {
        *reason = PM_REASON_MALFORMED;
        return PM_OK;
    }
    if (!pm_hash_txid(e->hasher, in.txid, &in.tx) ||
        !pm_hash_sighash(e->hasher, in.sighash, e->chain_id, in.txid))
        return PM_ERR_NOMEM;
    in.duplicate_input = (uint8_t)pm_tx_has_duplicate_input(pm_context_static, &in.tx, NULL);
    e->keys->sigcache_store = 1;
    return pm_ledger_check_tx(e->ledger, reason, &in, e->ctx->secp, e->keys);
}

pm_status pm_pipeline_init(pm_engine *e)
{
    if (getrandom(&e->xxh_seed, sizeof e->xxh_seed, 0) != (ssize_t)sizeof e->xxh_seed)
        e->xxh_seed = (uint64_t)(uintptr_t)e ^ (uint64_t)now_seconds();
    e->filling = &e->batches[0];
    e->committing = NULL;
    pm_block_builder_init(&e->open.builder);
    e->hasher = pm_hasher_create(e->ctx->tags);
    e->keys = pm_keycache_create();
    if (!e->hasher || !e->keys)
        return PM_ERR_NOMEM;
    pm_status st = pm_sigcache_create(&e->sigcache, e->cfg.sigcache_bytes, e->chain_id, NULL);
    if (st == PM_OK)
        st = pm_pool_create(&e->pool, e->cfg.threads, e->ctx->tags);
    if (st != PM_OK)
        return st;
    e->keys->sigcache = e->sigcache;
    e->keys->hasher = e->hasher;
    pm_pool_set_sigcache(e->pool, e->sigcache);
    return PM_OK;
}

void pm_pipeline_free(pm_engine *e)
{
    pm_pool_destroy(e->pool);
    batch_free(&e->batches[0]);
    batch_free(&e->batches[1]);
    pm_block_builder_free(&e->open.builder);
    free(e->open.index);
    pm_hasher_destroy(e->hasher);
    free(e->keys);
    pm_sigcache_destroy(e->sigcache);
}
