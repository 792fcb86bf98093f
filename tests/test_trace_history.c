/*
 * test_trace_history.c — trace and holdings (engine/provenance.h, and the
 * `postmark trace` command) on a scripted history whose every step is
 * known: issue -> gift -> trade -> trade (the seller putting in credits of
 * its own) -> transfer back to the same owner, with a transaction between
 * other parties interleaved.
 *
 * The chain is built here from first principles (libsecp256k1 signatures
 * over the §3 sighash, pm_tx_serialize, merkle roots, block headers), then
 * checked by the engine (pm_engine_connect_blocks) so the history is known
 * valid before it is traced. Expected events, owners, outpoints and prices
 * come from the script, not from the code under test.
 *
 * Also: a never-issued stamp, stamps of unknown series, a truncated copy,
 * a copy with one transaction's version byte changed (MALFORMED, with its
 * block, tx index and byte offset), and a history that contradicts itself
 * (a stamp issued twice) — each an error, never a crash.
 */
#include "provenance.h"
#include "testutil.h"

#include "postmark.h"

#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>
#include <stdlib.h>
#include <string.h>

static pm_context *ctx;
static secp256k1_context *secp;
static pm_chain_params params;
static uint8_t chain_id[32];

typedef struct {
    secp256k1_keypair kp;
    uint8_t pub[32];
} key;

static void make_key(key *k, uint8_t seed)
{
    uint8_t sk[32];
    memset(sk, 0, sizeof sk);
    sk[31] = seed;
    sk[0] = 0x42;
    CHECK(secp256k1_keypair_create(secp, &k->kp, sk));
    secp256k1_xonly_pubkey xo;
    CHECK(secp256k1_keypair_xonly_pub(secp, &xo, NULL, &k->kp));
    CHECK(secp256k1_xonly_pubkey_serialize(secp, k->pub, &xo));
}

/* A signed transaction. */
typedef struct {
    uint8_t bytes[4096];
    size_t size;
    uint8_t txid[32];
} tx_t;

/* Serialize `desc` unsigned, hash it, then sign with signers[i] for
 * signature i. */
static void build(tx_t *t, pm_tx *desc, const key *const *signers, size_t n_signers)
{
    desc->sigs = NULL;
    t->size = pm_tx_serialize(pm_context_static, t->bytes, sizeof t->bytes, desc);
    CHECK(t->size > 0 && t->size <= sizeof t->bytes);
    pm_tx view;
    CHECK(pm_tx_parse(pm_context_static, &view, NULL, t->bytes, t->size));
    CHECK(view.n_sigs == n_signers);
    CHECK(pm_tx_txid(ctx, t->txid, &view));
    uint8_t sighash[32];
    CHECK(pm_tx_sighash(ctx, sighash, chain_id, t->txid));
    for (size_t i = 0; i < n_signers; i++) {
        uint8_t aux[32] = {(uint8_t)i};
        CHECK(secp256k1_schnorrsig_sign32(secp, t->bytes + view.unsigned_size + 64 * i, sighash,
                                          &signers[i]->kp, aux));
    }
}

static void put_stamp(uint8_t *raw, const key *owner, uint32_t op, uint32_t series, uint32_t serial)
{
    pm_output o = {PM_OUTPUT_STAMP, {0}, op, series, serial, 0};
    memcpy(o.owner, owner->pub, 32);
    pm_output_encode(pm_context_static, raw, &o);
}

static void put_credit(uint8_t *raw, const key *owner, uint32_t issuer, uint64_t amount)
{
    pm_output o = {PM_OUTPUT_CREDIT, {0}, issuer, 0, 0, amount};
    memcpy(o.owner, owner->pub, 32);
    pm_output_encode(pm_context_static, raw, &o);
}

static void put_input(uint8_t *raw, const tx_t *from, uint16_t index)
{
    memcpy(raw, from->txid, 32);
    raw[32] = (uint8_t)index;
    raw[33] = (uint8_t)(index >> 8);
}

/* ---- blocks and the chain file --------------------------------------- */

typedef struct {
    uint8_t *bytes;
    size_t size;
    uint8_t hash[32];
} block_t;

static void make_block(block_t *b, uint64_t height, const uint8_t prev[32], tx_t *const *txs,
                       size_t n)
{
    uint8_t(*leaves)[32] = malloc(n * sizeof *leaves);
    size_t size = PM_BLOCK_HEADER_SIZE;
    for (size_t i = 0; i < n; i++) {
        pm_tx v;
        CHECK(pm_tx_parse(pm_context_static, &v, NULL, txs[i]->bytes, txs[i]->size));
        CHECK(pm_tx_leaf(ctx, leaves[i], &v, txs[i]->txid));
        size += 4 + txs[i]->size;
    }
    pm_block_header h;
    memset(&h, 0, sizeof h);
    h.version = 1;
    h.height = height;
    memcpy(h.prev_hash, prev, 32);
    CHECK(pm_merkle_root(ctx, h.merkle_root, (const uint8_t(*)[32])leaves, n));
    h.tx_count = (uint32_t)n;
    b->bytes = malloc(size);
    b->size = size;
    pm_block_header_encode(pm_context_static, b->bytes, &h);
    size_t pos = PM_BLOCK_HEADER_SIZE;
    for (size_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)txs[i]->size;
        memcpy(b->bytes + pos, (uint8_t[4]){(uint8_t)len, (uint8_t)(len >> 8),
                                            (uint8_t)(len >> 16), (uint8_t)(len >> 24)}, 4);
        memcpy(b->bytes + pos + 4, txs[i]->bytes, len);
        pos += 4 + len;
    }
    CHECK(pm_block_hash(ctx, b->hash, b->bytes));
    free(leaves);
}

/* Header + blocks; returns the malloc'd file and its size, and each
 * block's record offset. */
static uint8_t *chain_file(const block_t *blocks, size_t n, size_t *size, size_t *offsets)
{
    size_t total = PM_FILE_HEADER_SIZE;
    for (size_t i = 0; i < n; i++)
        total += 4 + blocks[i].size;
    uint8_t *f = malloc(total);
    pm_file_header_encode(pm_context_static, f, PM_FILE_CHAIN, &params);
    size_t pos = PM_FILE_HEADER_SIZE;
    for (size_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)blocks[i].size;
        offsets[i] = pos;
        f[pos] = (uint8_t)len;
        f[pos + 1] = (uint8_t)(len >> 8);
        f[pos + 2] = (uint8_t)(len >> 16);
        f[pos + 3] = (uint8_t)(len >> 24);
        memcpy(f + pos + 4, blocks[i].bytes, len);
        pos += 4 + len;
    }
    *size = total;
    return f;
}

/* ---- the script ------------------------------------------------------- */

enum { OP = 7, SERIES = 3, SERIAL = 5 };

static key gov, op, alice, bob, carol;
static tx_t t_reg, t_series, t_issue, t_gift, t_trade1, t_other, t_trade2, t_self;

static void script(void)
{
    pm_tx d;
    /* REGISTER operator 7 "Test Post", signed by the governance key. */
    memset(&d, 0, sizeof d);
    d.type = PM_TX_REGISTER;
    d.seq = 1;
    d.operator_id = OP;
    d.key = op.pub;
    d.text = (const uint8_t *)"Test Post";
    d.text_len = 9;
    build(&t_reg, &d, (const key *[]){&gov}, 1);

    /* SERIES 7:3 "Birds of the Alps", 10 stamps. */
    static const uint8_t meta[32] = {1, 2, 3};
    memset(&d, 0, sizeof d);
    d.type = PM_TX_SERIES;
    d.seq = 1;
    d.operator_id = OP;
    d.series = SERIES;
    d.max_supply = 10;
    d.face_value = 180;
    d.metadata = meta;
    d.text = (const uint8_t *)"Birds of the Alps";
    d.text_len = 17;
    build(&t_series, &d, (const key *[]){&op}, 1);

    /* ISSUE: stamp 7:3:5 to alice, 1000 credits to bob, 500 to carol,
     * stamp 7:3:6 to carol (it never moves). */
    uint8_t outs[8][PM_OUTPUT_SIZE];
    put_stamp(outs[0], &alice, OP, SERIES, SERIAL);
    put_credit(outs[1], &bob, OP, 1000);
    put_credit(outs[2], &carol, OP, 500);
    put_stamp(outs[3], &carol, OP, SERIES, 6);
    memset(&d, 0, sizeof d);
    d.type = PM_TX_ISSUE;
    d.seq = 2;
    d.operator_id = OP;
    d.n_out = 4;
    d.outputs = &outs[0][0];
    build(&t_issue, &d, (const key *[]){&op}, 1);

    /* Gift: alice gives the stamp to bob. */
    uint8_t ins[4][PM_INPUT_SIZE];
    put_input(ins[0], &t_issue, 0);
    put_stamp(outs[0], &bob, OP, SERIES, SERIAL);
    memset(&d, 0, sizeof d);
    d.type = PM_TX_TRANSFER;
    d.n_in = 1;
    d.inputs = &ins[0][0];
    d.n_out = 1;
    d.outputs = &outs[0][0];
    build(&t_gift, &d, (const key *[]){&alice}, 1);

    /* Trade 1: bob sells the stamp to carol for 300; carol's 500 credits
     * in, 300 to bob, 190 change to carol, 10 fee. */
    put_input(ins[0], &t_gift, 0);
    put_input(ins[1], &t_issue, 2);
    put_stamp(outs[0], &carol, OP, SERIES, SERIAL);
    put_credit(outs[1], &bob, OP, 300);
    put_credit(outs[2], &carol, OP, 190);
    memset(&d, 0, sizeof d);
    d.type = PM_TX_TRANSFER;
    d.n_in = 2;
    d.inputs = &ins[0][0];
    d.n_out = 3;
    d.outputs = &outs[0][0];
    build(&t_trade1, &d, (const key *[]){&bob, &carol}, 2);

    /* Unrelated: bob pays alice 100 of his 1000, keeps 900. */
    put_input(ins[0], &t_issue, 1);
    put_credit(outs[0], &alice, OP, 100);
    put_credit(outs[1], &bob, OP, 900);
    memset(&d, 0, sizeof d);
    d.type = PM_TX_TRANSFER;
    d.n_in = 1;
    d.inputs = &ins[0][0];
    d.n_out = 2;
    d.outputs = &outs[0][0];
    build(&t_other, &d, (const key *[]){&bob}, 1);

    /* Trade 2: carol sells the stamp back to bob for 250, putting in her
     * own 190 (she gets 440 back); bob puts in 900, gets 650 back. */
    put_input(ins[0], &t_trade1, 0);
    put_input(ins[1], &t_other, 1);
    put_input(ins[2], &t_trade1, 2);
    put_stamp(outs[0], &bob, OP, SERIES, SERIAL);
    put_credit(outs[1], &carol, OP, 440);
    put_credit(outs[2], &bob, OP, 650);
    memset(&d, 0, sizeof d);
    d.type = PM_TX_TRANSFER;
    d.n_in = 3;
    d.inputs = &ins[0][0];
    d.n_out = 3;
    d.outputs = &outs[0][0];
    build(&t_trade2, &d, (const key *[]){&carol, &bob, &carol}, 3);

    /* Bob moves the stamp to himself (output 1), with 50 credits. */
    put_input(ins[0], &t_trade1, 1);
    put_input(ins[1], &t_trade2, 0);
    put_credit(outs[0], &bob, OP, 300);
    put_stamp(outs[1], &bob, OP, SERIES, SERIAL);
    memset(&d, 0, sizeof d);
    d.type = PM_TX_TRANSFER;
    d.n_in = 2;
    d.inputs = &ins[0][0];
    d.n_out = 2;
    d.outputs = &outs[0][0];
    build(&t_self, &d, (const key *[]){&bob, &bob}, 2);
}

static const char *write_tmp(const char *name, const uint8_t *data, size_t size)
{
    static char path[4][1024];
    static int k;
    char *p = path[k++ & 3];
    snprintf(p, 1024, "%s/%s", pm_test_tmpdir(), name);
    CHECK(pm_write_file(p, data, size));
    return p;
}

static int same_key(const uint8_t *a, const key *k)
{
    return memcmp(a, k->pub, 32) == 0;
}

int main(void)
{
    ctx = pm_context_create();
    secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    CHECK(ctx && secp);
    make_key(&gov, 1);
    make_key(&op, 2);
    make_key(&alice, 3);
    make_key(&bob, 4);
    make_key(&carol, 5);
    memcpy(params.network, "test-trace", 10);
    memcpy(params.governance_key, gov.pub, 32);
    CHECK(pm_chain_id(ctx, chain_id, &params));
    script();

    /* Blocks: [reg, series, issue] [gift, trade1] [other, trade2, self]. */
    block_t blocks[3];
    make_block(&blocks[0], 0, chain_id, (tx_t *[]){&t_reg, &t_series, &t_issue}, 3);
    make_block(&blocks[1], 1, blocks[0].hash, (tx_t *[]){&t_gift, &t_trade1}, 2);
    make_block(&blocks[2], 2, blocks[1].hash, (tx_t *[]){&t_other, &t_trade2, &t_self}, 3);

    /* The engine agrees the history is valid. */
    {
        pm_config cfg;
        pm_config_default(pm_context_static, &cfg);
        cfg.threads = 1;
        pm_engine *e = NULL;
        CHECK(pm_engine_create(&e, ctx, &params, &cfg) == PM_OK);
        const uint8_t *bl[3] = {blocks[0].bytes, blocks[1].bytes, blocks[2].bytes};
        size_t sz[3] = {blocks[0].size, blocks[1].size, blocks[2].size};
        pm_verdict v;
        pm_status st = pm_engine_connect_blocks(e, &v, bl, sz, 3, 0);
        CHECKF(st == PM_OK, "the scripted chain is invalid: block %llu tx %lld %s",
               (unsigned long long)v.block, (long long)v.tx, pm_reason_name(v.reason));
        pm_engine_destroy(e);
    }

    size_t size, offsets[3];
    uint8_t *file = chain_file(blocks, 3, &size, offsets);
    const char *path = write_tmp("history.pmbk", file, size);

    /* ---- trace 7:3:5 ---- */
    pm_stamp_trace t;
    tool_fault err;
    CHECK(pm_trace_stamp(ctx, &t, &err, path, OP, SERIES, SERIAL) == PM_OK);
    CHECK(t.issued);
    CHECK(t.operator_known && strcmp(t.operator_name, "Test Post") == 0);
    CHECK(t.series_known && strcmp(t.series_title, "Birds of the Alps") == 0);
    CHECK(t.max_supply == 10 && t.face_value == 180);
    CHECK(t.blocks == 3 && t.txs == 8);
    CHECKF(t.n_events == 5, "%zu events", t.n_events);
    if (t.n_events == 5) {
        const pm_stamp_event *ev = t.events;
        /* issue */
        CHECK(ev[0].is_issue && ev[0].height == 0 && ev[0].tx == 2 && ev[0].out_index == 0);
        CHECK(memcmp(ev[0].txid, t_issue.txid, 32) == 0);
        CHECK(same_key(ev[0].to, &alice) && same_key(ev[0].from, &op) && ev[0].n_price == 0);
        /* gift alice -> bob */
        CHECK(!ev[1].is_issue && ev[1].height == 1 && ev[1].tx == 0);
        CHECK(memcmp(ev[1].txid, t_gift.txid, 32) == 0);
        CHECK(same_key(ev[1].from, &alice) && same_key(ev[1].to, &bob) && ev[1].n_price == 0);
        /* trade bob -> carol, 300 */
        CHECK(ev[2].height == 1 && ev[2].tx == 1 && memcmp(ev[2].txid, t_trade1.txid, 32) == 0);
        CHECK(same_key(ev[2].from, &bob) && same_key(ev[2].to, &carol));
        CHECK(ev[2].n_price == 1 && ev[2].price[0].issuer == OP && ev[2].price[0].amount == 300);
        /* trade carol -> bob, 250 (her own 190 came back to her) */
        CHECK(ev[3].height == 2 && ev[3].tx == 1 && memcmp(ev[3].txid, t_trade2.txid, 32) == 0);
        CHECK(same_key(ev[3].from, &carol) && same_key(ev[3].to, &bob));
        CHECKF(ev[3].n_price == 1 && ev[3].price[0].amount == 250, "price %llu",
               ev[3].n_price ? (unsigned long long)ev[3].price[0].amount : 0ull);
        /* bob -> bob, output 1, no price */
        CHECK(ev[4].height == 2 && ev[4].tx == 2 && ev[4].out_index == 1);
        CHECK(same_key(ev[4].from, &bob) && same_key(ev[4].to, &bob) && ev[4].n_price == 0);
    }
    CHECK(same_key(t.owner, &bob));
    CHECK(memcmp(t.outpoint.txid, t_self.txid, 32) == 0 && t.outpoint.index == 1);
    pm_stamp_trace_free(&t);

    /* 7:3:6 was issued and never moved; 7:3:7 and 9:9:9 never issued. */
    CHECK(pm_trace_stamp(ctx, &t, &err, path, OP, SERIES, 6) == PM_OK);
    CHECK(t.issued && t.n_events == 1 && same_key(t.owner, &carol) && t.outpoint.index == 3);
    pm_stamp_trace_free(&t);
    CHECK(pm_trace_stamp(ctx, &t, &err, path, OP, SERIES, 7) == PM_OK);
    CHECK(!t.issued && t.n_events == 0 && t.series_known);
    pm_stamp_trace_free(&t);
    CHECK(pm_trace_stamp(ctx, &t, &err, path, 9, 9, 9) == PM_OK);
    CHECK(!t.issued && !t.operator_known && !t.series_known);
    pm_stamp_trace_free(&t);

    /* ---- holdings ---- */
    pm_holdings h;
    CHECK(pm_holdings_scan(ctx, &h, &err, path, bob.pub) == PM_OK);
    /* bob: trade2's 650 (tx 1 out 2), self's 300 (out 0) and the stamp
     * (out 1), in chain order. */
    CHECKF(h.n == 3, "bob holds %zu outputs", h.n);
    if (h.n == 3) {
        CHECK(memcmp(h.items[0].outpoint.txid, t_trade2.txid, 32) == 0 &&
              h.items[0].outpoint.index == 2 && h.items[0].output.amount == 650);
        CHECK(memcmp(h.items[1].outpoint.txid, t_self.txid, 32) == 0 &&
              h.items[1].outpoint.index == 0 && h.items[1].output.amount == 300);
        CHECK(h.items[2].output.kind == PM_OUTPUT_STAMP && h.items[2].output.serial == SERIAL &&
              h.items[2].outpoint.index == 1 && h.items[2].height == 2);
    }
    pm_holdings_free(&h);
    CHECK(pm_holdings_scan(ctx, &h, &err, path, carol.pub) == PM_OK);
    /* carol: stamp 7:3:6 from the issue, 440 from trade2. */
    CHECK(h.n == 2 && h.items[0].output.kind == PM_OUTPUT_STAMP && h.items[0].output.serial == 6 &&
          h.items[1].output.amount == 440);
    pm_holdings_free(&h);
    CHECK(pm_holdings_scan(ctx, &h, &err, path, alice.pub) == PM_OK);
    CHECK(h.n == 1 && h.items[0].output.amount == 100 && h.items[0].height == 2);
    pm_holdings_free(&h);
    CHECK(pm_holdings_scan(ctx, &h, &err, path, op.pub) == PM_OK);
    CHECK(h.n == 0);
    pm_holdings_free(&h);

    /* ---- the command, as a user runs it ---- */
    {
        char cmd[2048], line[8192];
        snprintf(cmd, sizeof cmd, "'%s/postmark' trace '%s' 7:3:5 --json", PM_BUILD_DIR, path);
        FILE *p = popen(cmd, "r");
        CHECK(p != NULL);
        size_t n = p ? fread(line, 1, sizeof line - 1, p) : 0;
        line[n] = 0;
        CHECK(p && pclose(p) == 0);
        CHECK(strstr(line, "\"price\":[{\"issuer\":7,\"amount\":300}]") != NULL);
        CHECK(strstr(line, "\"price\":[{\"issuer\":7,\"amount\":250}]") != NULL);
        CHECK(strstr(line, "\"operator_name\":\"Test Post\"") != NULL);
        CHECK(strstr(line, "\"kind\":\"gift\"") && strstr(line, "\"kind\":\"self\""));
        char hex[65];
        snprintf(cmd, sizeof cmd, "\"owner\":\"%s\"", pm_hex(hex, bob.pub, 32));
        CHECK(strstr(line, cmd) != NULL);
        snprintf(cmd, sizeof cmd, "'%s/postmark' trace '%s' 7:3:7 --json >/dev/null 2>&1",
                 PM_BUILD_DIR, path);
        int rc = system(cmd);
        CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
    }

    /* ---- damaged copies ---- */
    /* Cut inside block 2 (a crash, or a pack appending it right now): the
     * two whole blocks before it are the history, and the cut is said. */
    const char *cut = write_tmp("cut.pmbk", file, offsets[2] + 30);
    const char *whole2 = write_tmp("whole2.pmbk", file, offsets[2]);
    pm_stamp_trace t2;
    CHECK(pm_trace_stamp(ctx, &t, &err, cut, OP, SERIES, SERIAL) == PM_OK);
    CHECK(t.partial_tail == 1 && t.partial_offset == offsets[2] && t.blocks == 2);
    CHECK(pm_trace_stamp(ctx, &t2, &err, whole2, OP, SERIES, SERIAL) == PM_OK);
    CHECK(t2.partial_tail == 0 && t2.n_events == t.n_events && t2.issued == t.issued &&
          memcmp(t2.owner, t.owner, 32) == 0);
    pm_stamp_trace_free(&t);
    pm_stamp_trace_free(&t2);
    CHECK(pm_holdings_scan(ctx, &h, &err, cut, bob.pub) == PM_OK);
    CHECK(h.partial_tail == 1 && h.blocks == 2);
    pm_holdings_free(&h);

    /* Block 1's second transaction (trade1) gets version 2. */
    {
        uint8_t *bad = malloc(size);
        memcpy(bad, file, size);
        size_t tx_off = offsets[1] + 4 + PM_BLOCK_HEADER_SIZE + 4 + t_gift.size + 4;
        CHECK(memcmp(bad + tx_off, t_trade1.bytes, t_trade1.size) == 0);
        bad[tx_off] = 2;
        const char *p = write_tmp("badver.pmbk", bad, size);
        CHECK(pm_trace_stamp(ctx, &t, &err, p, OP, SERIES, SERIAL) == PM_ERR_INVALID);
        CHECKF(err.reason == PM_REASON_MALFORMED && err.record == 1 && err.item == 1 &&
                   err.offset == tx_off,
               "reason %s block %llu tx %lld offset %llu (want %zu)", pm_reason_name(err.reason),
               (unsigned long long)err.record, (long long)err.item, (unsigned long long)err.offset,
               tx_off);
        pm_stamp_trace_free(&t);
        free(bad);
    }

    /* A history that contradicts itself: the issue repeated in a block of
     * its own after block 0 (trace does not check sequences or
     * signatures, but a stamp cannot be issued twice). */
    {
        block_t twice[2];
        twice[0] = blocks[0];
        make_block(&twice[1], 1, blocks[0].hash, (tx_t *[]){&t_issue}, 1);
        size_t tsize, toff[2];
        uint8_t *tf = chain_file(twice, 2, &tsize, toff);
        const char *p = write_tmp("twice.pmbk", tf, tsize);
        CHECK(pm_trace_stamp(ctx, &t, &err, p, OP, SERIES, SERIAL) == PM_ERR_INVALID);
        CHECK(err.reason == PM_REASON_NONE && err.record == 1 && err.item == 0 &&
              strstr(err.message, "issued a second time") != NULL);
        pm_stamp_trace_free(&t);
        /* holdings notices the output created twice. */
        CHECK(pm_holdings_scan(ctx, &h, &err, p, alice.pub) == PM_ERR_INVALID);
        pm_holdings_free(&h);
        free(tf);
        free(twice[1].bytes);
    }

    /* A stream is not a chain; a missing file is an I/O error. */
    {
        uint8_t hdr[PM_FILE_HEADER_SIZE];
        pm_file_header_encode(pm_context_static, hdr, PM_FILE_STREAM, &params);
        const char *p = write_tmp("stream.pmtx", hdr, sizeof hdr);
        CHECK(pm_trace_stamp(ctx, &t, &err, p, 1, 1, 1) == PM_ERR_INVALID);
        CHECK(err.reason == PM_REASON_BAD_HEADER);
        pm_stamp_trace_free(&t);
        char missing[1024];
        snprintf(missing, sizeof missing, "%s/none.pmbk", pm_test_tmpdir());
        CHECK(pm_trace_stamp(ctx, &t, &err, missing, 1, 1, 1) == PM_ERR_IO);
        pm_stamp_trace_free(&t);
    }

    for (int i = 0; i < 3; i++)
        free(blocks[i].bytes);
    free(file);
    secp256k1_context_destroy(secp);
    pm_context_destroy(ctx);
    return pm_test_finish();
}
