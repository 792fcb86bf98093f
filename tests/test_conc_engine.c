/*
 * test_conc_engine.c — the engine API of postmark.h on the vectors: pack
 * mode through callbacks (record by record and in batches), connecting
 * blocks, atomicity of an invalid block, disconnecting back to genesis,
 * stepping the pipeline (pm_engine_step), admission checks, the mempool
 * re-check when a peer's block arrives, looking up unspent outputs, and
 * the misuse callback.
 */
#include "postmark.h"
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Collects what pack mode emits. */
typedef struct {
    uint8_t *chain;
    size_t size, cap;
    size_t blocks;
    uint64_t base_height; /* height of the first block expected */
    uint64_t reject_index[512];
    pm_reason reject_reason[512];
    size_t rejects;
} sink;

static void on_block(void *data, const uint8_t *block, size_t size, uint64_t height,
                     const uint8_t hash[32])
{
    sink *s = data;
    (void)hash;
    CHECK(height == s->base_height + s->blocks);
    if (s->size + size + 4 > s->cap) {
        s->cap = (s->size + size + 4) * 2;
        s->chain = realloc(s->chain, s->cap);
    }
    uint8_t len[4] = {(uint8_t)size, (uint8_t)(size >> 8), (uint8_t)(size >> 16), (uint8_t)(size >> 24)};
    memcpy(s->chain + s->size, len, 4);
    memcpy(s->chain + s->size + 4, block, size);
    s->size += size + 4;
    s->blocks++;
}

static void on_reject(void *data, uint64_t index, const uint8_t *txid, pm_reason reason)
{
    sink *s = data;
    CHECK((txid == NULL) == (reason == PM_REASON_MALFORMED));
    if (s->rejects < 512) {
        s->reject_index[s->rejects] = index;
        s->reject_reason[s->rejects] = reason;
    }
    s->rejects++;
}

static pm_engine *new_engine(const pm_context *ctx, const pm_chain_params *params, unsigned threads,
                             uint32_t block_txs, uint32_t undo_depth)
{
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = threads;
    cfg.block_max_txs = block_txs;
    cfg.undo_depth = undo_depth;
    pm_engine *e = NULL;
    CHECK(pm_engine_create(&e, ctx, params, &cfg) == PM_OK);
    return e;
}

static void digest(pm_engine *e, uint8_t out[32])
{
    CHECK(pm_engine_utxo_digest(e, out) == PM_OK);
}

/* Pack s1.pmtx through the API: the emitted blocks are s1.b32.pmbk. */
static void test_pack_matches_vector(const pm_context *ctx, const pm_vfile *stream,
                                     const pm_vfile *chain)
{
    for (unsigned threads = 1; threads <= 4; threads *= 2) {
        pm_engine *e = new_engine(ctx, &stream->params, threads, 32, 100);
        sink s = {0};
        pm_engine_set_callbacks(e, on_block, on_reject, &s);
        for (size_t i = 0; i < stream->n; i++)
            CHECK(pm_engine_submit(e, stream->rec[i], stream->len[i]) == PM_OK);
        CHECK(pm_engine_submit_truncated(e) == PM_OK); /* one extra: MALFORMED */
        CHECK(pm_engine_flush(e) == PM_OK);
        CHECKF(s.size == chain->size - PM_FILE_HEADER_SIZE &&
                   memcmp(s.chain, chain->data + PM_FILE_HEADER_SIZE, s.size) == 0,
               "threads %u: packed chain differs from s1.b32.pmbk", threads);
        CHECK(s.rejects == 44);
        CHECK(s.reject_index[43] == stream->n && s.reject_reason[43] == PM_REASON_MALFORMED);
        pm_stats st;
        pm_engine_stats(e, &st);
        CHECK(st.txs_accepted == 257 && st.txs_rejected == 44 && st.blocks_emitted == 9);
        CHECK(st.rejects[PM_REASON_MALFORMED] >= 1);
        CHECK(st.signatures_verified >= 257);
        CHECK(st.seconds_hash > 0 && st.seconds_verify > 0 && st.seconds_commit > 0);
        free(s.chain);
        pm_engine_destroy(e);
    }
}

/* Connect block by block, then disconnect back to genesis: each state
 * equals the one recorded on the way up. */
static void test_connect_disconnect(const pm_context *ctx, const pm_vfile *chain)
{
    pm_engine *e = new_engine(ctx, &chain->params, 2, 4096, 100);
    uint8_t digests[16][32], tips[16][32];
    uint64_t counts[16];
    int64_t height;
    digest(e, digests[0]);
    pm_engine_tip(e, tips[0], &height);
    counts[0] = pm_engine_utxo_count(e);
    CHECK(height == -1);
    uint8_t chain_id[32];
    CHECK(pm_chain_id(ctx, chain_id, &chain->params));
    CHECK(memcmp(tips[0], chain_id, 32) == 0);
    for (size_t b = 0; b < chain->n; b++) {
        pm_verdict v;
        CHECK(pm_engine_connect_blocks(e, &v, &chain->rec[b], &chain->len[b], 1, 0) == PM_OK);
        CHECK(v.reason == PM_REASON_NONE);
        digest(e, digests[b + 1]);
        pm_engine_tip(e, tips[b + 1], &height);
        counts[b + 1] = pm_engine_utxo_count(e);
        CHECK(height == (int64_t)b);
    }
    CHECK(counts[chain->n] == 1150);
    for (size_t b = chain->n; b > 0; b--) {
        CHECK(pm_engine_disconnect_tip(e) == PM_OK);
        uint8_t d[32], tip[32];
        digest(e, d);
        pm_engine_tip(e, tip, &height);
        CHECKF(memcmp(d, digests[b - 1], 32) == 0, "digest after disconnecting to %zu", b - 1);
        CHECK(memcmp(tip, tips[b - 1], 32) == 0 && height == (int64_t)b - 2);
        CHECK(pm_engine_utxo_count(e) == counts[b - 1]);
    }
    CHECK(pm_engine_disconnect_tip(e) == PM_ERR_STATE);
    /* And up again: the same chain connects whole. */
    pm_verdict v;
    CHECK(pm_engine_connect_blocks(e, &v, chain->rec, chain->len, chain->n, 0) == PM_OK);
    uint8_t d[32];
    digest(e, d);
    CHECK(memcmp(d, digests[chain->n], 32) == 0);
    pm_engine_destroy(e);

    /* Undo data is kept for undo_depth blocks only. */
    e = new_engine(ctx, &chain->params, 1, 4096, 3);
    CHECK(pm_engine_connect_blocks(e, &v, chain->rec, chain->len, chain->n, 0) == PM_OK);
    for (int i = 0; i < 3; i++)
        CHECK(pm_engine_disconnect_tip(e) == PM_OK);
    CHECK(pm_engine_disconnect_tip(e) == PM_ERR_STATE);
    digest(e, d);
    CHECK(memcmp(d, digests[chain->n - 3], 32) == 0);
    pm_engine_destroy(e);
}

/* An invalid block leaves the state exactly as after the blocks before it. */
static void test_invalid_block_atomic(const pm_context *ctx, const pm_vfile *good)
{
    pm_vfile bad;
    if (!pm_vfile_load(&bad, "s1.bad.double_spend_across_blocks.pmbk"))
        return;
    pm_engine *ref = new_engine(ctx, &good->params, 1, 4096, 100);
    pm_verdict v;
    CHECK(pm_engine_connect_blocks(ref, &v, good->rec, good->len, 4, 0) == PM_OK);
    uint8_t want[32], got[32];
    digest(ref, want);

    pm_engine *e = new_engine(ctx, &bad.params, 2, 4096, 100);
    CHECK(pm_engine_connect_blocks(e, &v, bad.rec, bad.len, bad.n, 0) == PM_ERR_INVALID);
    CHECK(v.reason == PM_REASON_MISSING_INPUT && v.block == 4 && v.tx == 32 && v.has_txid);
    CHECK(strstr(pm_engine_last_error(e), "MISSING_INPUT") != NULL);
    digest(e, got);
    CHECK(memcmp(got, want, 32) == 0);
    CHECK(pm_engine_utxo_count(e) == pm_engine_utxo_count(ref));
    int64_t h;
    pm_engine_tip(e, NULL, &h);
    CHECK(h == 3);
    /* The good block 4 still connects on top. */
    CHECK(pm_engine_connect_blocks(e, &v, &good->rec[4], &good->len[4], 1, 0) == PM_OK);
    pm_engine_destroy(e);
    pm_engine_destroy(ref);
    pm_vfile_free(&bad);
}

/* Admission: check_tx answers without changing the state. */
static void test_check_tx(const pm_context *ctx, const pm_vfile *stream, const pm_vfile *chain)
{
    pm_engine *e = new_engine(ctx, &stream->params, 2, 4096, 100);
    pm_reason r;
    CHECK(pm_engine_check_tx(e, &r, stream->rec[0], stream->len[0]) == PM_OK);
    CHECK(r == PM_REASON_NONE);
    CHECK(pm_engine_utxo_count(e) == 0);
    CHECK(pm_engine_check_tx(e, &r, stream->rec[0], 1) == PM_OK && r == PM_REASON_MALFORMED);
    pm_verdict v;
    CHECK(pm_engine_connect_blocks(e, &v, chain->rec, chain->len, chain->n, 0) == PM_OK);
    uint8_t before[32], after[32];
    digest(e, before);
    /* Every transaction of the stream is now in the chain or was rejected:
     * none is admissible again, and checking changes nothing. */
    size_t admissible = 0;
    for (size_t i = 0; i < stream->n; i++) {
        CHECK(pm_engine_check_tx(e, &r, stream->rec[i], stream->len[i]) == PM_OK);
        admissible += r == PM_REASON_NONE;
    }
    CHECK(admissible == 0);
    digest(e, after);
    CHECK(memcmp(before, after, 32) == 0);
    pm_engine_destroy(e);
}

/* A peer's block arrives while transactions wait in the open block: the
 * waiting ones are checked again on the new state. The result equals
 * submitting the still-pending transactions after connecting the block. */
static void test_mempool_recheck(const pm_context *ctx, const pm_vfile *stream, const pm_vfile *chain32)
{
    const size_t first = 100; /* stream records waiting in the open block */
    pm_engine *e = new_engine(ctx, &stream->params, 2, 4096, 100);
    sink s = {.base_height = 1};
    pm_engine_set_callbacks(e, on_block, on_reject, &s);
    for (size_t i = 0; i < first; i++)
        CHECK(pm_engine_submit(e, stream->rec[i], stream->len[i]) == PM_OK);
    pm_reason r;
    CHECK(pm_engine_check_tx(e, &r, stream->rec[0], stream->len[0]) == PM_OK); /* drains */
    CHECK(r != PM_REASON_NONE); /* record 0 is already pending */
    size_t rejects_before = s.rejects;
    uint64_t rejected_idx[512];
    memcpy(rejected_idx, s.reject_index, sizeof rejected_idx);
    CHECK(s.blocks == 0);
    /* The peer's block: block 0 of s1.b32 (the first 32 accepted). */
    pm_verdict v;
    CHECK(pm_engine_connect_blocks(e, &v, &chain32->rec[0], &chain32->len[0], 1, 0) == PM_OK);
    CHECK(s.rejects > rejects_before); /* the block's txs now conflict */
    CHECK(pm_engine_flush(e) == PM_OK);
    CHECK(s.blocks == 1);

    /* Reference: connect the block, then submit the records accepted
     * before it arrived, in order, with the same indices. */
    pm_engine *ref = new_engine(ctx, &stream->params, 1, 4096, 100);
    sink rs = {.base_height = 1};
    pm_engine_set_callbacks(ref, on_block, on_reject, &rs);
    CHECK(pm_engine_connect_blocks(ref, &v, &chain32->rec[0], &chain32->len[0], 1, 0) == PM_OK);
    for (size_t i = 0; i < first; i++) {
        int was_rejected = 0;
        for (size_t k = 0; k < rejects_before; k++)
            was_rejected |= rejected_idx[k] == i;
        if (!was_rejected)
            CHECK(pm_engine_submit(ref, stream->rec[i], stream->len[i]) == PM_OK);
    }
    CHECK(pm_engine_flush(ref) == PM_OK);
    CHECK(rs.blocks == 1 && rs.size == s.size && memcmp(rs.chain, s.chain, s.size) == 0);
    CHECK(s.rejects - rejects_before == rs.rejects);
    uint8_t d1[32], d2[32];
    digest(e, d1);
    digest(ref, d2);
    CHECK(memcmp(d1, d2, 32) == 0);
    free(s.chain);
    free(rs.chain);
    pm_engine_destroy(e);
    pm_engine_destroy(ref);
}

/* Submit up to `want` records of `stream` from record `next` as one batch;
 * returns the index after the last one submitted. */
static size_t submit_next(pm_engine *e, const pm_vfile *stream, size_t next, size_t want)
{
    size_t n = want < stream->n - next ? want : stream->n - next;
    CHECK(pm_engine_submit_batch(e, stream->rec + next, stream->len + next, n) == PM_OK);
    return next + n;
}

/* pm_engine_submit_batch in batches of uneven sizes (an empty one among
 * them) packs s1.pmtx into exactly s1.b32.pmbk, with the rejects of
 * s1.b32.rejects.csv. */
static void test_submit_batch(const pm_context *ctx, const pm_vfile *stream, const pm_vfile *chain)
{
    pm_engine *e = new_engine(ctx, &stream->params, 2, 32, 100);
    sink s = {0};
    pm_engine_set_callbacks(e, on_block, on_reject, &s);
    static const size_t batch[] = {1, 0, 7, 64, 3, 100};
    size_t next = 0;
    for (size_t k = 0; next < stream->n; k++) {
        next = submit_next(e, stream, next, batch[k % (sizeof batch / sizeof batch[0])]);
    }
    CHECK(pm_engine_flush(e) == PM_OK);
    CHECK(s.size == chain->size - PM_FILE_HEADER_SIZE &&
          memcmp(s.chain, chain->data + PM_FILE_HEADER_SIZE, s.size) == 0);

    pm_vreject *want = NULL;
    size_t n_want = 0;
    CHECK(pm_vrejects_load(&want, &n_want, "s1.b32.rejects.csv") && n_want == 43);
    CHECK(s.rejects == n_want);
    for (size_t k = 0; k < n_want && k < s.rejects; k++)
        CHECKF(s.reject_index[k] == want[k].index && s.reject_reason[k] == want[k].reason,
               "reject %zu: index %llu %s, want %llu %s", k, (unsigned long long)s.reject_index[k],
               pm_reason_name(s.reject_reason[k]), (unsigned long long)want[k].index,
               pm_reason_name(want[k].reason));
    free(want);
    free(s.chain);
    pm_engine_destroy(e);
}

/* pm_engine_step between submissions of uneven size: the same rejects and
 * blocks as pack; after each step every record before `settled` has its
 * verdict (its reject delivered, or it is accepted) and none after it has;
 * two steps with nothing submitted settle everything. */
static void test_step_settled(const pm_context *ctx, const pm_vfile *stream, const pm_vfile *chain)
{
    for (unsigned threads = 1; threads <= 2; threads++) {
        pm_engine *e = new_engine(ctx, &stream->params, threads, 32, 100);
        sink s = {0};
        pm_engine_set_callbacks(e, on_block, on_reject, &s);
        static const size_t batch[] = {5, 0, 17, 64, 1, 100};
        size_t next = 0;
        uint64_t settled = 0, before = 0;
        for (size_t k = 0; next < stream->n; k++) {
            next = submit_next(e, stream, next, batch[k % (sizeof batch / sizeof batch[0])]);
            CHECK(pm_engine_step(e, &settled) == PM_OK);
            CHECKF(settled >= before && settled <= next, "settled %llu after %llu, %zu submitted",
                   (unsigned long long)settled, (unsigned long long)before, next);
            for (size_t r = 0; r < s.rejects && r < 512; r++)
                CHECK(s.reject_index[r] < settled);
            pm_stats st;
            pm_engine_stats(e, &st);
            CHECKF(st.txs_accepted + st.txs_rejected == settled, "decided %llu, settled %llu",
                   (unsigned long long)(st.txs_accepted + st.txs_rejected),
                   (unsigned long long)settled);
            before = settled;
        }
        CHECK(pm_engine_step(e, &settled) == PM_OK);
        CHECK(pm_engine_step(e, &settled) == PM_OK && settled == stream->n);
        CHECK(pm_engine_step(e, &settled) == PM_OK && settled == stream->n);
        CHECK(pm_engine_flush(e) == PM_OK);
        CHECK(s.size == chain->size - PM_FILE_HEADER_SIZE &&
              memcmp(s.chain, chain->data + PM_FILE_HEADER_SIZE, s.size) == 0);
        CHECK(s.rejects == 43);
        free(s.chain);
        pm_engine_destroy(e);
    }
}

/* pm_engine_get_utxo against a model built from the chain's own
 * transactions: every output created and not spent later is found, with
 * the fields pm_tx_output decodes; every spent one, and an index past a
 * transaction's outputs, is not. Disconnecting the tip brings back what
 * its block spent and removes what it created. */
typedef struct {
    pm_outpoint op;
    pm_output out;
    size_t block;     /* created in */
    size_t spent_in;  /* SIZE_MAX while unspent */
} model_utxo;

static int same_output(const pm_output *a, const pm_output *b)
{
    return a->kind == b->kind && memcmp(a->owner, b->owner, PM_KEY_SIZE) == 0 &&
           a->operator_id == b->operator_id && a->series == b->series &&
           a->serial == b->serial && a->amount == b->amount;
}

/* 1 with *out when get_utxo finds op; *out untouched when it does not. */
static int lookup(const pm_engine *e, const pm_outpoint *op, pm_output *out)
{
    pm_output got, canary;
    memset(&got, 0xA5, sizeof got);
    canary = got;
    int found = pm_engine_get_utxo(e, &got, op);
    if (!found)
        CHECK(memcmp(&got, &canary, sizeof got) == 0);
    *out = got;
    return found;
}

static void test_get_utxo(const pm_context *ctx, const pm_vfile *chain)
{
    size_t cap = 4096, n = 0;
    model_utxo *m = calloc(cap, sizeof *m);
    pm_outpoint past_end = {{0}, 0};
    for (size_t b = 0; b < chain->n && m; b++) {
        pm_block blk;
        CHECK(pm_block_parse(ctx, &blk, NULL, chain->rec[b], chain->len[b]));
        const uint8_t *rec;
        size_t len, cursor = 0;
        while (pm_block_next_tx(ctx, &rec, &len, &blk, &cursor)) {
            pm_tx tx;
            uint8_t txid[32];
            CHECK(pm_tx_parse(ctx, &tx, NULL, rec, len) && pm_tx_txid(ctx, txid, &tx));
            for (size_t i = 0; i < tx.n_in; i++) {
                pm_outpoint op;
                pm_tx_input(ctx, &op, &tx, i);
                size_t k = 0;
                while (k < n && (m[k].op.index != op.index || memcmp(m[k].op.txid, op.txid, 32)))
                    k++;
                CHECK(k < n && m[k].spent_in == SIZE_MAX); /* a valid chain */
                if (k < n)
                    m[k].spent_in = b;
            }
            for (size_t j = 0; j < tx.n_out && n < cap; j++, n++) {
                memcpy(m[n].op.txid, txid, 32);
                m[n].op.index = (uint16_t)j;
                pm_tx_output(ctx, &m[n].out, &tx, j);
                m[n].block = b;
                m[n].spent_in = SIZE_MAX;
            }
            if (tx.n_out) {
                memcpy(past_end.txid, txid, 32);
                past_end.index = (uint16_t)tx.n_out;
            }
        }
    }
    CHECK(n < cap);

    pm_engine *e = new_engine(ctx, &chain->params, 2, 4096, 100);
    pm_verdict v;
    CHECK(pm_engine_connect_blocks(e, &v, chain->rec, chain->len, chain->n, 0) == PM_OK);
    size_t unspent = 0, found_right = 0, spent_absent = 0;
    for (size_t k = 0; k < n; k++) {
        pm_output got;
        int found = lookup(e, &m[k].op, &got);
        if (m[k].spent_in == SIZE_MAX) {
            unspent++;
            found_right += found && same_output(&got, &m[k].out);
        } else {
            spent_absent += !found;
        }
    }
    CHECK(unspent == 1150 && pm_engine_utxo_count(e) == unspent); /* s1.b32.json */
    CHECK(found_right == unspent);
    CHECK(spent_absent == n - unspent && spent_absent > 0);
    pm_output got;
    CHECK(lookup(e, &past_end, &got) == 0);

    /* One block back. */
    const size_t tip = chain->n - 1;
    CHECK(pm_engine_disconnect_tip(e) == PM_OK);
    size_t right = 0, restored = 0, removed = 0;
    for (size_t k = 0; k < n; k++) {
        int want = m[k].block < tip && (m[k].spent_in == SIZE_MAX || m[k].spent_in == tip);
        int found = lookup(e, &m[k].op, &got);
        right += found == want && (!found || same_output(&got, &m[k].out));
        restored += found && m[k].spent_in == tip;
        removed += !found && m[k].block == tip;
    }
    CHECK(right == n);
    CHECK(restored > 0 && removed > 0);
    pm_engine_destroy(e);
    free(m);
}

static int illegal_calls;
static void count_illegal(const char *message, void *data)
{
    (void)data;
    CHECK(strstr(message, "pm_") != NULL);
    illegal_calls++;
}

static void test_misuse(pm_context *ctx, const pm_vfile *stream)
{
    pm_context_set_illegal_callback(ctx, count_illegal, NULL);
    pm_engine *e = new_engine(ctx, &stream->params, 1, 4096, 100);
    pm_reason r;
    CHECK(pm_engine_check_tx(e, NULL, stream->rec[0], stream->len[0]) == PM_ERR_ARG);
    CHECK(pm_engine_submit(e, NULL, 5) == PM_ERR_ARG);
    CHECK(pm_engine_check_tx(e, &r, NULL, 3) == PM_ERR_ARG);
    CHECK(illegal_calls == 3);
    pm_config cfg;
    pm_config_default(ctx, &cfg);
    cfg.block_max_txs = 0;
    pm_engine *bad = NULL;
    CHECK(pm_engine_create(&bad, ctx, &stream->params, &cfg) == PM_ERR_ARG && bad == NULL);
    CHECK(illegal_calls == 4);
    pm_engine_destroy(e);
    pm_context_set_illegal_callback(ctx, NULL, NULL);
}

int main(void)
{
    pm_context *ctx = pm_context_create();
    CHECK(ctx != NULL);
    pm_vfile stream, chain32, chain4096;
    if (ctx && pm_vfile_load(&stream, "s1.pmtx") && pm_vfile_load(&chain32, "s1.b32.pmbk") &&
        pm_vfile_load(&chain4096, "s1.b4096.pmbk")) {
        test_pack_matches_vector(ctx, &stream, &chain32);
        test_connect_disconnect(ctx, &chain32);
        test_invalid_block_atomic(ctx, &chain32);
        test_check_tx(ctx, &stream, &chain4096);
        test_mempool_recheck(ctx, &stream, &chain32);
        test_submit_batch(ctx, &stream, &chain32);
        test_step_settled(ctx, &stream, &chain32);
        test_get_utxo(ctx, &chain32);
        test_misuse(ctx, &stream);
        pm_vfile_free(&stream);
        pm_vfile_free(&chain32);
        pm_vfile_free(&chain4096);
    }
    pm_context_destroy(ctx);
    return pm_test_finish();
}
