/*
 * test_api_misuse.c — the misuse contract of postmark.h, function by
 * function, as libsecp256k1's CHECK_ILLEGAL checks its own: each bad
 * argument a function's comment names (a NULL, an index or count out of
 * range, a pm_config field out of range) calls the illegal callback of the
 * context in play exactly once, with a message naming the function, and
 * the function returns what its comment promises for misuse. Where no
 * replaceable callback can be in play (a NULL context or engine,
 * pm_context_static) the default callback must abort: those calls run in
 * a child process.
 *
 * The last check reads every PM_API name out of include/postmark.h and
 * fails for one this file does not cover, so a new function cannot be
 * exported without its misuse checks.
 */
#define PM_NO_NONNULL /* we pass NULL on purpose */
#include "postmark.h"
#include "testutil.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the counting callback ------------------------------------------- */

typedef struct {
    int calls;
    char last[256];
} illegal_log;

static void count_illegal(const char *message, void *data)
{
    illegal_log *log = data;
    log->calls++;
    snprintf(log->last, sizeof log->last, "%s", message);
}

static illegal_log ilog;

/* The callback ran exactly once for `fn`. */
static int one_call_for(const char *fn)
{
    size_t n = strlen(fn);
    return ilog.calls == 1 && strncmp(ilog.last, fn, n) == 0 && ilog.last[n] == ':';
}

/* `call` is misuse: one callback call naming `fn`, and it returns `want`. */
#define CHECK_ILLEGAL(fn, call, want)                                               \
    do {                                                                            \
        ilog.calls = 0;                                                             \
        ilog.last[0] = 0;                                                           \
        int ok_ = (call) == (want);                                                 \
        CHECKF(ok_ && one_call_for(fn), "%s: %d calls (\"%s\"), return %s", #call,  \
               ilog.calls, ilog.last, ok_ ? "as documented" : "wrong");             \
    } while (0)

/* The same for a function that returns nothing. */
#define CHECK_ILLEGAL_VOID(fn, call)                                                \
    do {                                                                            \
        ilog.calls = 0;                                                             \
        ilog.last[0] = 0;                                                           \
        call;                                                                       \
        CHECKF(one_call_for(fn), "%s: %d calls (\"%s\")", #call, ilog.calls,        \
               ilog.last);                                                          \
    } while (0)

/* `call` is not misuse: the callback stays silent. */
#define CHECK_LEGAL(call)                                                           \
    do {                                                                            \
        ilog.calls = 0;                                                             \
        call;                                                                       \
        CHECKF(ilog.calls == 0, "%s: callback called (\"%s\")", #call, ilog.last);  \
    } while (0)

/* `call` (run in a child) ends in the default callback: SIGABRT, with
 * "postmark: illegal argument: fn: ..." on stderr. */
#define CHECK_ABORTS(fn, call)                                                      \
    do {                                                                            \
        char out_[512];                                                             \
        fflush(NULL);                                                               \
        int fd_[2];                                                                 \
        pid_t pid_ = pipe(fd_) == 0 ? fork() : -1;                                  \
        if (pid_ == 0) {                                                            \
            dup2(fd_[1], 2);                                                        \
            close(fd_[0]);                                                          \
            call;                                                                   \
            _exit(0);                                                               \
        }                                                                           \
        CHECKF(child_aborted(pid_, fd_, out_, sizeof out_, fn), "%s: did not abort " \
               "through the default callback (stderr: \"%s\")", #call, out_);       \
    } while (0)

static int child_aborted(pid_t pid, int fd[2], char *out, size_t cap, const char *fn)
{
    out[0] = 0;
    if (pid < 0)
        return 0;
    close(fd[1]);
    size_t have = 0;
    ssize_t got;
    while (have + 1 < cap && (got = read(fd[0], out + have, cap - 1 - have)) > 0)
        have += (size_t)got;
    out[have] = 0;
    close(fd[0]);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return 0;
    char want[128];
    snprintf(want, sizeof want, "postmark: illegal argument: %s:", fn);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && strstr(out, want) != NULL;
}

/* ---- what the test covers -------------------------------------------- */

static const char *covered[64];
static size_t n_covered;

static void cover(const char *fn)
{
    if (n_covered < sizeof covered / sizeof covered[0])
        covered[n_covered++] = fn;
}

/* ---- fixtures from the vectors ---------------------------------------- */

typedef struct {
    pm_context *ctx;          /* with the counting callback */
    pm_vfile stream, chain;
    pm_tx transfer;           /* a parsed TRANSFER of s1.pmtx */
    pm_tx issue;              /* a parsed ISSUE */
    pm_block block;           /* block 0 of s1.b32.pmbk */
} fixture;

static int find_tx(const fixture *f, pm_tx *tx, uint8_t type)
{
    for (size_t i = 0; i < f->stream.n; i++)
        if (pm_tx_parse(f->ctx, tx, NULL, f->stream.rec[i], f->stream.len[i]) &&
            tx->type == type)
            return 1;
    return 0;
}

/* ---- functions with nothing to misuse --------------------------------- */

static void test_total_functions(void)
{
    cover("pm_reason_name");
    CHECK_LEGAL(CHECK(strcmp(pm_reason_name(PM_REASON_BAD_MERKLE), "BAD_MERKLE") == 0));
    CHECK_LEGAL(CHECK(strcmp(pm_reason_name((pm_reason)PM_REASON_COUNT), "UNKNOWN") == 0));
    cover("pm_status_text");
    CHECK_LEGAL(CHECK(strcmp(pm_status_text(PM_ERR_ARG), "illegal argument") == 0));
    CHECK_LEGAL(CHECK(strcmp(pm_status_text((pm_status)99), "unknown status") == 0));
}

/* ---- the context ------------------------------------------------------ */

static void test_context(fixture *f)
{
    cover("pm_context_create");
    pm_context *fresh = pm_context_create();
    CHECK(fresh != NULL);
    /* A fresh context's callback is the default one. */
    CHECK_ABORTS("pm_tx_parse", (void)!pm_tx_parse(fresh, NULL, NULL, NULL, 0));

    cover("pm_context_set_illegal_callback");
    CHECK_ABORTS("pm_context_set_illegal_callback",
                 pm_context_set_illegal_callback(NULL, count_illegal, &ilog));
    CHECK_ABORTS("pm_context_set_illegal_callback",
                 pm_context_set_illegal_callback((pm_context *)pm_context_static, count_illegal,
                                                 &ilog));
    /* NULL restores the default. */
    pm_context_set_illegal_callback(fresh, count_illegal, &ilog);
    CHECK_ILLEGAL("pm_tx_parse", pm_tx_parse(fresh, NULL, NULL, NULL, 0), 0);
    pm_context_set_illegal_callback(fresh, NULL, NULL);
    CHECK_ABORTS("pm_tx_parse", (void)!pm_tx_parse(fresh, NULL, NULL, NULL, 0));

    cover("pm_context_destroy");
    pm_context_destroy(fresh);
    pm_context_destroy(NULL); /* a no-op */
    CHECK_ABORTS("pm_context_destroy", pm_context_destroy((pm_context *)pm_context_static));

    cover("pm_context_static");
    /* Enough for the wire functions, with the default callback... */
    pm_tx tx;
    CHECK(pm_tx_parse(pm_context_static, &tx, NULL, f->stream.rec[0], f->stream.len[0]) == 1);
    CHECK_ABORTS("pm_tx_parse", (void)!pm_tx_parse(pm_context_static, NULL, NULL, NULL, 0));
    /* ...but not for hashing or an engine. */
    uint8_t out[32];
    CHECK_ABORTS("pm_tx_txid", (void)!pm_tx_txid(pm_context_static, out, &tx));
    pm_engine *e;
    CHECK_ABORTS("pm_engine_create",
                 (void)!pm_engine_create(&e, pm_context_static, &f->stream.params, NULL));
}

static void test_reason_from_name(fixture *f)
{
    cover("pm_reason_from_name");
    pm_reason r = PM_REASON_NONE;
    CHECK_LEGAL(CHECK(pm_reason_from_name(f->ctx, &r, "NOT_CONSERVED") == 1 &&
                      r == PM_REASON_NOT_CONSERVED));
    CHECK_LEGAL(CHECK(pm_reason_from_name(f->ctx, &r, "NONE") == 0));
    CHECK_ABORTS("pm_reason_from_name", (void)!pm_reason_from_name(NULL, &r, "NONE"));
    CHECK_ILLEGAL("pm_reason_from_name", pm_reason_from_name(f->ctx, NULL, "NONE"), 0);
    CHECK_ILLEGAL("pm_reason_from_name", pm_reason_from_name(f->ctx, &r, NULL), 0);
}

/* ---- wire ------------------------------------------------------------- */

/* pm_tx_input and pm_tx_output, behind one signature. */
typedef void (*tx_decoder)(const pm_context *ctx, void *out, const pm_tx *tx, size_t i);

static void decode_input(const pm_context *ctx, void *out, const pm_tx *tx, size_t i)
{
    pm_tx_input(ctx, out, tx, i);
}

static void decode_output(const pm_context *ctx, void *out, const pm_tx *tx, size_t i)
{
    pm_tx_output(ctx, out, tx, i);
}

/* Each NULL and an index at `count` are misuse that leaves *out as it was;
 * then item count - 1 is decoded into *out for the caller to check. */
static void check_tx_decoder(const pm_context *c, const char *fn, tx_decoder decode, void *out,
                             size_t out_size, const pm_tx *t, size_t count)
{
    cover(fn);
    uint8_t before[64];
    memset(out, 0x5A, out_size);
    memcpy(before, out, out_size < sizeof before ? out_size : sizeof before);
    CHECK_ABORTS(fn, decode(NULL, out, t, 0));
    CHECK_ILLEGAL_VOID(fn, decode(c, NULL, t, 0));
    CHECK_ILLEGAL_VOID(fn, decode(c, out, NULL, 0));
    CHECK_ILLEGAL_VOID(fn, decode(c, out, t, count));
    CHECK(out_size <= sizeof before && memcmp(out, before, out_size) == 0);
    CHECK_LEGAL(decode(c, out, t, count - 1));
}

static void test_tx_functions(fixture *f)
{
    const pm_context *c = f->ctx;
    const uint8_t *rec = f->stream.rec[0];
    pm_tx tx;
    pm_parse_error err;

    cover("pm_tx_parse");
    CHECK_ABORTS("pm_tx_parse", (void)!pm_tx_parse(NULL, &tx, &err, rec, f->stream.len[0]));
    CHECK_ILLEGAL("pm_tx_parse", pm_tx_parse(c, NULL, &err, rec, f->stream.len[0]), 0);
    CHECK_ILLEGAL("pm_tx_parse", pm_tx_parse(c, &tx, &err, NULL, 5), 0);
    /* No bytes at all is malformed data, not misuse. */
    CHECK_LEGAL(CHECK(pm_tx_parse(c, &tx, &err, NULL, 0) == 0 && strcmp(err.field, "size") == 0));

    const pm_tx *t = &f->transfer;
    pm_outpoint op;
    check_tx_decoder(c, "pm_tx_input", decode_input, &op, sizeof op, t, t->n_in);
    CHECK(memcmp(op.txid, t->inputs + (t->n_in - 1) * PM_INPUT_SIZE, PM_HASH_SIZE) == 0);
    pm_output o;
    check_tx_decoder(c, "pm_tx_output", decode_output, &o, sizeof o, t, t->n_out);
    CHECK(o.kind == PM_OUTPUT_STAMP || o.kind == PM_OUTPUT_CREDIT);

    uint8_t raw[PM_OUTPUT_SIZE];
    cover("pm_output_encode");
    CHECK_ABORTS("pm_output_encode", pm_output_encode(NULL, raw, &o));
    CHECK_ILLEGAL_VOID("pm_output_encode", pm_output_encode(c, NULL, &o));
    CHECK_ILLEGAL_VOID("pm_output_encode", pm_output_encode(c, raw, NULL));
    CHECK_LEGAL(pm_output_encode(c, raw, &o));
    cover("pm_output_decode");
    pm_output back;
    CHECK_ABORTS("pm_output_decode", pm_output_decode(NULL, &back, raw));
    CHECK_ILLEGAL_VOID("pm_output_decode", pm_output_decode(c, NULL, raw));
    CHECK_ILLEGAL_VOID("pm_output_decode", pm_output_decode(c, &back, NULL));
    CHECK_LEGAL(pm_output_decode(c, &back, raw));
    CHECK(back.kind == o.kind && back.operator_id == o.operator_id && back.amount == o.amount &&
          memcmp(back.owner, o.owner, PM_KEY_SIZE) == 0);

    cover("pm_tx_has_duplicate_input");
    size_t second = 0;
    pm_tx two = *t;
    uint8_t inputs[2 * PM_INPUT_SIZE];
    memcpy(inputs, t->inputs, PM_INPUT_SIZE);
    memcpy(inputs + PM_INPUT_SIZE, t->inputs, PM_INPUT_SIZE);
    two.inputs = inputs;
    two.n_in = 2;
    CHECK_LEGAL(CHECK(pm_tx_has_duplicate_input(c, &two, &second) == 1 && second == 1));
    CHECK_ABORTS("pm_tx_has_duplicate_input", (void)!pm_tx_has_duplicate_input(NULL, &two, NULL));
    CHECK_ILLEGAL("pm_tx_has_duplicate_input", pm_tx_has_duplicate_input(c, NULL, NULL), 0);
    pm_tx bad = two;
    bad.n_in = PM_TX_MAX_INPUTS + 1;
    CHECK_ILLEGAL("pm_tx_has_duplicate_input", pm_tx_has_duplicate_input(c, &bad, NULL), 0);
    bad = two;
    bad.inputs = NULL;
    CHECK_ILLEGAL("pm_tx_has_duplicate_input", pm_tx_has_duplicate_input(c, &bad, NULL), 0);
    /* Not a TRANSFER: no inputs to look at, so none are needed. */
    bad.type = PM_TX_ISSUE;
    CHECK_LEGAL(CHECK(pm_tx_has_duplicate_input(c, &bad, NULL) == 0));
}

static void test_tx_serialize(fixture *f)
{
    const pm_context *c = f->ctx;
    cover("pm_tx_serialize");
    const pm_tx *t = &f->transfer;
    uint8_t buf[PM_TX_MAX_SIZE];
    CHECK_LEGAL(CHECK(pm_tx_serialize(c, NULL, 0, t) == t->size));
    CHECK_ABORTS("pm_tx_serialize", (void)!pm_tx_serialize(NULL, buf, sizeof buf, t));
    CHECK_ILLEGAL("pm_tx_serialize", pm_tx_serialize(c, buf, sizeof buf, NULL), 0);
    CHECK_ILLEGAL("pm_tx_serialize", pm_tx_serialize(c, NULL, 10, t), 0);

    /* Each array a type uses, NULL while its count or length is not 0. */
    static const uint8_t text[3] = {'a', 'b', 'c'}, key[32], meta[32];
    pm_tx reg = {.type = PM_TX_REGISTER, .operator_id = 1, .key = key, .text = text,
                 .text_len = 3};
    /* version, type, gov_seq, operator, key, name_len, name, signature */
    const size_t reg_size = 1 + 1 + 8 + 4 + 32 + 1 + 3 + PM_SIG_SIZE;
    CHECK_LEGAL(CHECK(pm_tx_serialize(c, NULL, 0, &reg) == reg_size));
    pm_tx bad = reg;
    bad.key = NULL;
    CHECK_ILLEGAL("pm_tx_serialize", pm_tx_serialize(c, buf, sizeof buf, &bad), 0);
    bad = reg;
    bad.text = NULL;
    CHECK_ILLEGAL("pm_tx_serialize", pm_tx_serialize(c, buf, sizeof buf, &bad), 0);
    pm_tx series = {.type = PM_TX_SERIES, .metadata = meta, .text = text, .text_len = 3};
    bad = series;
    bad.metadata = NULL;
    CHECK_ILLEGAL("pm_tx_serialize", pm_tx_serialize(c, buf, sizeof buf, &bad), 0);
    bad = series;
    bad.text = NULL;
    CHECK_ILLEGAL("pm_tx_serialize", pm_tx_serialize(c, buf, sizeof buf, &bad), 0);
    bad = f->issue;
    bad.outputs = NULL;
    CHECK_ILLEGAL("pm_tx_serialize", pm_tx_serialize(c, buf, sizeof buf, &bad), 0);
    bad = *t;
    bad.inputs = NULL;
    CHECK_ILLEGAL("pm_tx_serialize", pm_tx_serialize(c, buf, sizeof buf, &bad), 0);
    bad = *t;
    bad.outputs = NULL;
    CHECK_ILLEGAL("pm_tx_serialize", pm_tx_serialize(c, buf, sizeof buf, &bad), 0);
    /* An unknown type is bad data, not misuse. */
    bad = *t;
    bad.type = 9;
    CHECK_LEGAL(CHECK(pm_tx_serialize(c, buf, sizeof buf, &bad) == 0));
}

static void test_block_functions(fixture *f)
{
    const pm_context *c = f->ctx;
    const uint8_t *rec = f->chain.rec[0];
    const size_t len = f->chain.len[0];
    pm_block blk;
    pm_parse_error err;

    cover("pm_block_parse");
    CHECK_LEGAL(CHECK(pm_block_parse(c, &blk, &err, rec, len) == 1));
    CHECK_ABORTS("pm_block_parse", (void)!pm_block_parse(NULL, &blk, &err, rec, len));
    CHECK_ILLEGAL("pm_block_parse", pm_block_parse(c, NULL, &err, rec, len), 0);
    /* The issue's example: it used to abort even with a callback set. */
    CHECK_ILLEGAL("pm_block_parse", pm_block_parse(c, &blk, &err, NULL, 4), 0);

    cover("pm_block_next_tx");
    const uint8_t *tx;
    size_t size, cursor = 0;
    CHECK_LEGAL(CHECK(pm_block_next_tx(c, &tx, &size, &f->block, &cursor) == 1));
    CHECK(tx == rec + PM_BLOCK_HEADER_SIZE + 4);
    cursor = 0;
    CHECK_ABORTS("pm_block_next_tx", (void)!pm_block_next_tx(NULL, &tx, &size, &f->block, &cursor));
    CHECK_ILLEGAL("pm_block_next_tx", pm_block_next_tx(c, NULL, &size, &f->block, &cursor), 0);
    CHECK_ILLEGAL("pm_block_next_tx", pm_block_next_tx(c, &tx, NULL, &f->block, &cursor), 0);
    CHECK_ILLEGAL("pm_block_next_tx", pm_block_next_tx(c, &tx, &size, NULL, &cursor), 0);
    CHECK_ILLEGAL("pm_block_next_tx", pm_block_next_tx(c, &tx, &size, &f->block, NULL), 0);
    CHECK(cursor == 0);

    cover("pm_block_header_decode");
    pm_block_header h;
    CHECK_LEGAL(pm_block_header_decode(c, &h, rec));
    CHECK(h.version == 1 && h.height == 0 && h.tx_count == f->block.header.tx_count);
    CHECK_ABORTS("pm_block_header_decode", pm_block_header_decode(NULL, &h, rec));
    CHECK_ILLEGAL_VOID("pm_block_header_decode", pm_block_header_decode(c, NULL, rec));
    CHECK_ILLEGAL_VOID("pm_block_header_decode", pm_block_header_decode(c, &h, NULL));

    cover("pm_block_header_encode");
    uint8_t hdr[PM_BLOCK_HEADER_SIZE];
    CHECK_LEGAL(pm_block_header_encode(c, hdr, &h));
    CHECK(memcmp(hdr, rec, PM_BLOCK_HEADER_SIZE) == 0);
    CHECK_ABORTS("pm_block_header_encode", pm_block_header_encode(NULL, hdr, &h));
    CHECK_ILLEGAL_VOID("pm_block_header_encode", pm_block_header_encode(c, NULL, &h));
    CHECK_ILLEGAL_VOID("pm_block_header_encode", pm_block_header_encode(c, hdr, NULL));
}

static void test_file_header(fixture *f)
{
    const pm_context *c = f->ctx;
    const uint8_t *data = f->chain.data;
    pm_file_kind kind;
    pm_chain_params params;
    pm_parse_error err;

    cover("pm_file_header_parse");
    CHECK_LEGAL(CHECK(pm_file_header_parse(c, &kind, &params, &err, data, PM_FILE_HEADER_SIZE) &&
                      kind == PM_FILE_CHAIN));
    CHECK_ABORTS("pm_file_header_parse",
                 (void)!pm_file_header_parse(NULL, &kind, &params, &err, data, 60));
    CHECK_ILLEGAL("pm_file_header_parse", pm_file_header_parse(c, NULL, &params, &err, data, 60),
                  0);
    CHECK_ILLEGAL("pm_file_header_parse", pm_file_header_parse(c, &kind, NULL, &err, data, 60), 0);
    CHECK_ILLEGAL("pm_file_header_parse", pm_file_header_parse(c, &kind, &params, &err, NULL, 60),
                  0);

    cover("pm_file_header_encode");
    uint8_t out[PM_FILE_HEADER_SIZE];
    CHECK_LEGAL(pm_file_header_encode(c, out, PM_FILE_CHAIN, &params));
    CHECK(memcmp(out, data, PM_FILE_HEADER_SIZE) == 0);
    CHECK_ABORTS("pm_file_header_encode", pm_file_header_encode(NULL, out, PM_FILE_CHAIN, &params));
    CHECK_ILLEGAL_VOID("pm_file_header_encode",
                       pm_file_header_encode(c, NULL, PM_FILE_CHAIN, &params));
    CHECK_ILLEGAL_VOID("pm_file_header_encode", pm_file_header_encode(c, out, 0, &params));
    CHECK_ILLEGAL_VOID("pm_file_header_encode", pm_file_header_encode(c, out, 3, &params));
    CHECK_ILLEGAL_VOID("pm_file_header_encode", pm_file_header_encode(c, out, PM_FILE_CHAIN, NULL));
}

/* ---- hashes ------------------------------------------------------------ */

/* Each hash: a NULL or static context aborts, each NULL pointer is one
 * callback call and a 0. */
static void test_hashes(fixture *f)
{
    const pm_context *c = f->ctx;
    const pm_chain_params *p = &f->stream.params;
    const pm_tx *t = &f->transfer;
    uint8_t out[32], id[32], leaves[2][32] = {{1}, {2}};
    const uint8_t *hdr = f->chain.rec[0];

    cover("pm_chain_id");
    CHECK_LEGAL(CHECK(pm_chain_id(c, id, p) == 1));
    CHECK_ABORTS("pm_chain_id", (void)!pm_chain_id(NULL, out, p));
    CHECK_ABORTS("pm_chain_id", (void)!pm_chain_id(pm_context_static, out, p));
    CHECK_ILLEGAL("pm_chain_id", pm_chain_id(c, NULL, p), 0);
    CHECK_ILLEGAL("pm_chain_id", pm_chain_id(c, out, NULL), 0);

    cover("pm_tx_txid");
    uint8_t txid[32];
    CHECK_LEGAL(CHECK(pm_tx_txid(c, txid, t) == 1));
    CHECK_ABORTS("pm_tx_txid", (void)!pm_tx_txid(NULL, out, t));
    CHECK_ILLEGAL("pm_tx_txid", pm_tx_txid(c, NULL, t), 0);
    CHECK_ILLEGAL("pm_tx_txid", pm_tx_txid(c, out, NULL), 0); /* used to crash */

    cover("pm_tx_sighash");
    CHECK_LEGAL(CHECK(pm_tx_sighash(c, out, id, txid) == 1));
    CHECK_ABORTS("pm_tx_sighash", (void)!pm_tx_sighash(pm_context_static, out, id, txid));
    CHECK_ILLEGAL("pm_tx_sighash", pm_tx_sighash(c, NULL, id, txid), 0);
    CHECK_ILLEGAL("pm_tx_sighash", pm_tx_sighash(c, out, NULL, txid), 0);
    CHECK_ILLEGAL("pm_tx_sighash", pm_tx_sighash(c, out, id, NULL), 0);

    cover("pm_tx_leaf");
    CHECK_LEGAL(CHECK(pm_tx_leaf(c, out, t, txid) == 1));
    CHECK_ABORTS("pm_tx_leaf", (void)!pm_tx_leaf(NULL, out, t, txid));
    CHECK_ILLEGAL("pm_tx_leaf", pm_tx_leaf(c, NULL, t, txid), 0);
    CHECK_ILLEGAL("pm_tx_leaf", pm_tx_leaf(c, out, NULL, txid), 0);
    CHECK_ILLEGAL("pm_tx_leaf", pm_tx_leaf(c, out, t, NULL), 0);

    cover("pm_merkle_root");
    CHECK_LEGAL(CHECK(pm_merkle_root(c, out, (const uint8_t(*)[32])leaves, 1) == 1 &&
                      memcmp(out, leaves[0], 32) == 0));
    CHECK_ABORTS("pm_merkle_root",
                 (void)!pm_merkle_root(NULL, out, (const uint8_t(*)[32])leaves, 2));
    CHECK_ILLEGAL("pm_merkle_root", pm_merkle_root(c, NULL, (const uint8_t(*)[32])leaves, 2), 0);
    CHECK_ILLEGAL("pm_merkle_root", pm_merkle_root(c, out, NULL, 2), 0);
    CHECK_ILLEGAL("pm_merkle_root", pm_merkle_root(c, out, (const uint8_t(*)[32])leaves, 0), 0);

    cover("pm_block_hash");
    CHECK_LEGAL(CHECK(pm_block_hash(c, out, hdr) == 1));
    CHECK_ABORTS("pm_block_hash", (void)!pm_block_hash(pm_context_static, out, hdr));
    CHECK_ILLEGAL("pm_block_hash", pm_block_hash(c, NULL, hdr), 0);
    CHECK_ILLEGAL("pm_block_hash", pm_block_hash(c, out, NULL), 0);

    cover("pm_tagged_hash");
    CHECK_LEGAL(CHECK(pm_tagged_hash(c, out, "postmark/txid", NULL, 0) == 1));
    CHECK_ABORTS("pm_tagged_hash", (void)!pm_tagged_hash(NULL, out, "t", NULL, 0));
    CHECK_ILLEGAL("pm_tagged_hash", pm_tagged_hash(c, NULL, "t", NULL, 0), 0);
    CHECK_ILLEGAL("pm_tagged_hash", pm_tagged_hash(c, out, NULL, NULL, 0), 0);
    CHECK_ILLEGAL("pm_tagged_hash", pm_tagged_hash(c, out, "t", NULL, 1), 0);
}

/* ---- configuration and engine creation -------------------------------- */

/* A pm_config with one field out of range. */
typedef struct {
    const char *what;
    void (*spoil)(pm_config *cfg);
} bad_config;

static void too_many_threads(pm_config *cfg) { cfg->threads = PM_CONFIG_MAX_THREADS + 1; }
static void no_block_txs(pm_config *cfg) { cfg->block_max_txs = 0; }
static void too_many_block_txs(pm_config *cfg) { cfg->block_max_txs = PM_BLOCK_MAX_TXS + 1; }
static void too_few_block_bytes(pm_config *cfg)
{
    cfg->block_max_bytes = PM_CONFIG_MIN_BLOCK_BYTES - 1;
}
static void too_many_block_bytes(pm_config *cfg) { cfg->block_max_bytes = PM_BLOCK_MAX_SIZE + 1; }

static const bad_config bad_configs[] = {
    {"threads", too_many_threads},
    {"block_max_txs 0", no_block_txs},
    {"block_max_txs", too_many_block_txs},
    {"block_max_bytes low", too_few_block_bytes},
    {"block_max_bytes high", too_many_block_bytes},
};

static void test_config_and_create(fixture *f)
{
    const pm_context *c = f->ctx;
    const pm_chain_params *p = &f->stream.params;
    pm_config cfg;

    cover("pm_config_default");
    CHECK_LEGAL(pm_config_default(c, &cfg));
    CHECK(cfg.block_max_txs == PM_DEFAULT_BLOCK_TXS && cfg.undo_depth == 100);
    CHECK_ABORTS("pm_config_default", pm_config_default(NULL, &cfg));
    CHECK_ILLEGAL_VOID("pm_config_default", pm_config_default(c, NULL));

    cover("pm_engine_create");
    pm_engine *e = (pm_engine *)&cfg; /* anything but NULL: it must be reset */
    CHECK_ILLEGAL("pm_engine_create", pm_engine_create(NULL, c, p, NULL), PM_ERR_ARG);
    CHECK_ABORTS("pm_engine_create", (void)!pm_engine_create(&e, NULL, p, NULL));
    CHECK_ILLEGAL("pm_engine_create", pm_engine_create(&e, c, NULL, NULL), PM_ERR_ARG);
    CHECK(e == NULL);
    for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
        pm_config_default(c, &cfg);
        cfg.threads = 1;
        bad_configs[i].spoil(&cfg);
        e = (pm_engine *)&cfg;
        CHECK_ILLEGAL("pm_engine_create", pm_engine_create(&e, c, p, &cfg), PM_ERR_ARG);
        CHECKF(e == NULL, "config %s", bad_configs[i].what);
    }
    /* The limits themselves are in range. */
    pm_config_default(c, &cfg);
    cfg.threads = 1;
    cfg.block_max_txs = PM_BLOCK_MAX_TXS;
    cfg.block_max_bytes = PM_CONFIG_MIN_BLOCK_BYTES;
    CHECK_LEGAL(CHECK(pm_engine_create(&e, c, p, &cfg) == PM_OK && e != NULL));
    cover("pm_engine_destroy");
    pm_engine_destroy(e);
    pm_engine_destroy(NULL); /* a no-op */

    cover("pm_engine_create_from_snapshot");
    /* The path does not exist: PM_ERR_ARG (not PM_ERR_IO) shows the
     * arguments are checked before the file is opened. */
    const char *path = "/nonexistent/postmark.snap";
    char msg[64];
    e = (pm_engine *)&cfg;
    CHECK_ILLEGAL("pm_engine_create_from_snapshot",
                  pm_engine_create_from_snapshot(NULL, c, NULL, NULL, path, msg, sizeof msg),
                  PM_ERR_ARG);
    CHECK_ABORTS("pm_engine_create_from_snapshot",
                 (void)!pm_engine_create_from_snapshot(&e, NULL, NULL, NULL, path, msg, 64));
    CHECK_ABORTS("pm_engine_create_from_snapshot",
                 (void)!pm_engine_create_from_snapshot(&e, pm_context_static, NULL, NULL, path,
                                                      msg, 64));
    CHECK_ILLEGAL("pm_engine_create_from_snapshot",
                  pm_engine_create_from_snapshot(&e, c, NULL, NULL, NULL, msg, sizeof msg),
                  PM_ERR_ARG);
    CHECK_ILLEGAL("pm_engine_create_from_snapshot",
                  pm_engine_create_from_snapshot(&e, c, NULL, NULL, path, NULL, 10), PM_ERR_ARG);
    CHECK(e == NULL);
    for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
        pm_config_default(c, &cfg);
        bad_configs[i].spoil(&cfg);
        CHECK_ILLEGAL("pm_engine_create_from_snapshot",
                      pm_engine_create_from_snapshot(&e, c, NULL, &cfg, path, msg, sizeof msg),
                      PM_ERR_ARG);
    }
    CHECK_LEGAL(CHECK(pm_engine_create_from_snapshot(&e, c, NULL, NULL, path, msg, sizeof msg) ==
                      PM_ERR_IO));
}

/* ---- the engine -------------------------------------------------------- */

static void on_reject(void *data, uint64_t index, const uint8_t *txid, pm_reason reason)
{
    (void)index, (void)txid, (void)reason;
    ++*(int *)data;
}

/* The calls that take only an engine: NULL goes to the default callback. */
static void test_engine_null(void)
{
    cover("pm_engine_last_error");
    CHECK_ABORTS("pm_engine_last_error", (void)!pm_engine_last_error(NULL));
    cover("pm_engine_block_last_index");
    CHECK_ABORTS("pm_engine_block_last_index", (void)!pm_engine_block_last_index(NULL));
    cover("pm_engine_set_callbacks");
    CHECK_ABORTS("pm_engine_set_callbacks", pm_engine_set_callbacks(NULL, NULL, NULL, NULL));
    cover("pm_engine_submit_truncated");
    CHECK_ABORTS("pm_engine_submit_truncated", (void)!pm_engine_submit_truncated(NULL));
    cover("pm_engine_skip_records");
    CHECK_ABORTS("pm_engine_skip_records", (void)!pm_engine_skip_records(NULL, 1));
    cover("pm_engine_flush");
    CHECK_ABORTS("pm_engine_flush", (void)!pm_engine_flush(NULL));
    cover("pm_engine_disconnect_tip");
    CHECK_ABORTS("pm_engine_disconnect_tip", (void)!pm_engine_disconnect_tip(NULL));
    cover("pm_engine_tip");
    CHECK_ABORTS("pm_engine_tip", pm_engine_tip(NULL, NULL, NULL));
    cover("pm_engine_utxo_count");
    CHECK_ABORTS("pm_engine_utxo_count", (void)!pm_engine_utxo_count(NULL));
}

static void test_engine(fixture *f)
{
    pm_config cfg;
    pm_config_default(f->ctx, &cfg);
    cfg.threads = 2;
    pm_engine *e = NULL;
    CHECK(pm_engine_create(&e, f->ctx, &f->stream.params, &cfg) == PM_OK);
    if (!e)
        return;
    int rejects = 0;
    CHECK_LEGAL(pm_engine_set_callbacks(e, NULL, on_reject, &rejects));
    const uint8_t *rec = f->stream.rec[0];
    const size_t len = f->stream.len[0];

    cover("pm_engine_submit");
    CHECK_ABORTS("pm_engine_submit", (void)!pm_engine_submit(NULL, rec, len));
    CHECK_ILLEGAL("pm_engine_submit", pm_engine_submit(e, NULL, 5), PM_ERR_ARG);

    cover("pm_engine_submit_batch");
    const uint8_t *recs[2] = {rec, NULL};
    size_t sizes[2] = {len, 5};
    CHECK_ABORTS("pm_engine_submit_batch", (void)!pm_engine_submit_batch(NULL, recs, sizes, 1));
    CHECK_ILLEGAL("pm_engine_submit_batch", pm_engine_submit_batch(e, NULL, sizes, 1), PM_ERR_ARG);
    CHECK_ILLEGAL("pm_engine_submit_batch", pm_engine_submit_batch(e, recs, NULL, 1), PM_ERR_ARG);
    /* The second record is misuse: the first is not taken either. */
    CHECK_ILLEGAL("pm_engine_submit_batch", pm_engine_submit_batch(e, recs, sizes, 2), PM_ERR_ARG);
    CHECK_LEGAL(CHECK(pm_engine_submit_batch(e, NULL, NULL, 0) == PM_OK));

    /* None of that took a record: the next one submitted gets index 0. */
    pm_stats st;
    CHECK(pm_engine_flush(e) == PM_OK);
    pm_engine_stats(e, &st);
    CHECK(st.txs_accepted == 0 && st.txs_rejected == 0 && rejects == 0);

    cover("pm_engine_step");
    uint64_t settled = 1;
    CHECK_ABORTS("pm_engine_step", (void)!pm_engine_step(NULL, &settled));
    CHECK_ILLEGAL("pm_engine_step", pm_engine_step(e, NULL), PM_ERR_ARG);
    CHECK_LEGAL(CHECK(pm_engine_step(e, &settled) == PM_OK && settled == 0));

    cover("pm_engine_check_tx");
    pm_reason r;
    CHECK_ABORTS("pm_engine_check_tx", (void)!pm_engine_check_tx(NULL, &r, rec, len));
    CHECK_ILLEGAL("pm_engine_check_tx", pm_engine_check_tx(e, NULL, rec, len), PM_ERR_ARG);
    CHECK_ILLEGAL("pm_engine_check_tx", pm_engine_check_tx(e, &r, NULL, 5), PM_ERR_ARG);

    cover("pm_engine_connect_blocks");
    pm_verdict v;
    const uint8_t *blocks[2] = {f->chain.rec[0], NULL};
    size_t bsizes[2] = {f->chain.len[0], 5};
    CHECK_ABORTS("pm_engine_connect_blocks",
                 (void)!pm_engine_connect_blocks(NULL, &v, blocks, bsizes, 1, 0));
    const char *cb = "pm_engine_connect_blocks";
    CHECK_ILLEGAL(cb, pm_engine_connect_blocks(e, NULL, blocks, bsizes, 1, 0), PM_ERR_ARG);
    CHECK_ILLEGAL(cb, pm_engine_connect_blocks(e, &v, NULL, bsizes, 1, 0), PM_ERR_ARG);
    CHECK_ILLEGAL(cb, pm_engine_connect_blocks(e, &v, blocks, NULL, 1, 0), PM_ERR_ARG);
    /* The second block is misuse: the first is not connected either. */
    CHECK_ILLEGAL(cb, pm_engine_connect_blocks(e, &v, blocks, bsizes, 2, 0), PM_ERR_ARG);
    int64_t height = 0;
    CHECK_LEGAL(pm_engine_tip(e, NULL, &height));
    CHECK(height == -1); /* nothing was connected */

    cover("pm_engine_get_utxo");
    pm_output o;
    pm_outpoint op = {{0}, 0};
    CHECK_ABORTS("pm_engine_get_utxo", (void)!pm_engine_get_utxo(NULL, &o, &op));
    CHECK_ILLEGAL("pm_engine_get_utxo", pm_engine_get_utxo(e, NULL, &op), 0);
    CHECK_ILLEGAL("pm_engine_get_utxo", pm_engine_get_utxo(e, &o, NULL), 0);

    cover("pm_engine_utxo_digest");
    uint8_t d[32];
    CHECK_ABORTS("pm_engine_utxo_digest", (void)!pm_engine_utxo_digest(NULL, d));
    CHECK_ILLEGAL("pm_engine_utxo_digest", pm_engine_utxo_digest(e, NULL), PM_ERR_ARG);

    cover("pm_engine_stats");
    CHECK_ABORTS("pm_engine_stats", pm_engine_stats(NULL, &st));
    CHECK_ILLEGAL_VOID("pm_engine_stats", pm_engine_stats(e, NULL));

    cover("pm_engine_save_snapshot");
    CHECK_ABORTS("pm_engine_save_snapshot", (void)!pm_engine_save_snapshot(NULL, "x"));
    CHECK_ILLEGAL("pm_engine_save_snapshot", pm_engine_save_snapshot(e, NULL), PM_ERR_ARG);

    /* The rest of the engine calls have no argument but the engine. */
    CHECK_LEGAL(CHECK(strcmp(pm_engine_last_error(e), "") == 0));
    CHECK_LEGAL(CHECK(pm_engine_skip_records(e, 3) == PM_OK));
    CHECK_LEGAL(CHECK(pm_engine_submit_truncated(e) == PM_OK));
    CHECK_LEGAL(CHECK(pm_engine_flush(e) == PM_OK));
    CHECK(rejects == 1);
    CHECK_LEGAL(CHECK(pm_engine_disconnect_tip(e) == PM_ERR_STATE));
    CHECK_LEGAL(CHECK(pm_engine_utxo_count(e) == 0));
    pm_engine_destroy(e);
}

/* ---- every PM_API name of the header is covered ----------------------- */

static int is_ident(char ch)
{
    return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9');
}

/* The names declared by lines starting "PM_API": the identifier before the
 * first '(' (a function) or ';' (an object), wherever the line breaks. */
static size_t header_api_names(char names[][64], size_t cap)
{
    size_t size = 0, n = 0;
    uint8_t *h = pm_read_file(PM_SOURCE_DIR "/include/postmark.h", &size);
    if (!h)
        return 0;
    char *text = (char *)h;
    for (size_t i = 0; i + 7 < size; i++) {
        if ((i > 0 && text[i - 1] != '\n') || strncmp(text + i, "PM_API ", 7) != 0)
            continue;
        size_t end = i + 7;
        while (end < size && text[end] != '(' && text[end] != ';')
            end++;
        size_t stop = end;
        while (stop > i && !is_ident(text[stop - 1]))
            stop--;
        size_t start = stop;
        while (start > i && is_ident(text[start - 1]))
            start--;
        if (n < cap && stop - start < 64) {
            memcpy(names[n], text + start, stop - start);
            names[n][stop - start] = 0;
            n++;
        }
    }
    free(h);
    return n;
}

static void test_every_api_name_covered(void)
{
    char names[128][64];
    size_t n = header_api_names(names, 128);
    /* A parser that finds nothing would pass vacuously. */
    CHECKF(n >= 40, "only %zu PM_API names found in postmark.h", n);
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (size_t k = 0; k < n_covered; k++)
            found |= strcmp(names[i], covered[k]) == 0;
        CHECKF(found, "%s is PM_API but test_api_misuse.c has no entry for it", names[i]);
    }
    /* And no entry for a name the header no longer has. */
    for (size_t k = 0; k < n_covered; k++) {
        int found = 0;
        for (size_t i = 0; i < n; i++)
            found |= strcmp(names[i], covered[k]) == 0;
        CHECKF(found, "%s is covered here but not PM_API in postmark.h", covered[k]);
    }
}

int main(void)
{
    fixture f;
    memset(&f, 0, sizeof f);
    f.ctx = pm_context_create();
    CHECK(f.ctx != NULL);
    if (!f.ctx)
        return pm_test_finish();
    pm_context_set_illegal_callback(f.ctx, count_illegal, &ilog);
    if (pm_vfile_load(&f.stream, "s1.pmtx") && pm_vfile_load(&f.chain, "s1.b32.pmbk")) {
        CHECK(find_tx(&f, &f.transfer, PM_TX_TRANSFER));
        CHECK(find_tx(&f, &f.issue, PM_TX_ISSUE));
        CHECK(pm_block_parse(f.ctx, &f.block, NULL, f.chain.rec[0], f.chain.len[0]));
        test_total_functions();
        test_context(&f);
        test_reason_from_name(&f);
        test_tx_functions(&f);
        test_tx_serialize(&f);
        test_block_functions(&f);
        test_file_header(&f);
        test_hashes(&f);
        test_config_and_create(&f);
        test_engine_null();
        test_engine(&f);
        pm_vfile_free(&f.stream);
        pm_vfile_free(&f.chain);
    }
    test_every_api_name_covered();
    pm_context_destroy(f.ctx);
    return pm_test_finish();
}
