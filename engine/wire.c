/*
 * wire.c — the wire format of Postmark (protocol §1-3, §6): strict,
 * zero-copy parsing of transactions, blocks and file headers, and their
 * serialization.
 *
 * Invariants:
 *  - Parsing never allocates and never reads outside [bytes, bytes+size):
 *    every read is preceded by a check that the bytes are there, written
 *    as `size - pos < need` so that no sum can overflow.
 *  - A parse is one front-to-back pass; the first problem in byte order is
 *    the one reported (the size bounds 2..65,536 are checked first).
 *  - pm_tx_parse accepts exactly the byte strings §3 and §5 step 1 call
 *    well formed, and pm_tx_serialize of the resulting view gives back the
 *    same bytes: the fuzz targets check this round trip.
 *  - The DUPLICATE_INPUT check is linear in n_in with a stack table.
 *
 * See wire.h for the conventions of error fields and offsets.
 */
#include "wire.h"

#include "context.h"
#include "hmap.h"

#include <string.h>

/* Static reasons of pm_parse_error. */
static const char R_MISSING[] = "missing bytes";
static const char R_EXTRA[] = "extra bytes after the signatures";
static const char R_TX_SIZE[] = "size out of range 2..65536";
static const char R_VERSION[] = "unsupported version";
static const char R_TYPE[] = "unknown type";
static const char R_COUNT[] = "count out of range";
static const char R_LENGTH[] = "length out of range";
static const char R_KIND[] = "unknown output kind";
static const char R_ZERO[] = "must not be 0";
static const char R_UTF8[] = "invalid UTF-8";
static const char R_CONTROL[] = "control byte";

/* Fixed body sizes (§3.2-3.5), before the variable parts. */
#define REGISTER_FIXED (2 + 8 + 4 + 32 + 1)           /* through name_len */
#define SERIES_FIXED (2 + 8 + 4 + 4 + 4 + 8 + 32 + 1) /* through title_len */
#define ISSUE_FIXED (2 + 8 + 4 + 2)                   /* through n_out */

static int fail(pm_parse_error *err, size_t offset, const char *field, const char *reason)
{
    if (err) {
        err->offset = offset;
        err->field = field;
        err->reason = reason;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Text (§1)                                                              */
/* ---------------------------------------------------------------------- */

/* The well-formed UTF-8 sequences are those of Unicode Table 3-7: the
 * second byte's range depends on the lead byte (which rules out overlong
 * forms, surrogates and code points above U+10FFFF), later bytes are any
 * continuation byte 80..BF. */
const char *pm_text_check(const uint8_t *s, size_t len, size_t *bad)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c < 0x20) {
                if (bad)
                    *bad = i;
                return R_CONTROL;
            }
            i++;
            continue;
        }
        size_t more;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
        } else if (c == 0xE0) {
            more = 2;
            lo = 0xA0;
        } else if (c == 0xED) {
            more = 2;
            hi = 0x9F;
        } else if (c >= 0xE1 && c <= 0xEF) {
            more = 2;
        } else if (c == 0xF0) {
            more = 3;
            lo = 0x90;
        } else if (c == 0xF4) {
            more = 3;
            hi = 0x8F;
        } else if (c >= 0xF1 && c <= 0xF3) {
            more = 3;
        } else {
            goto invalid; /* 80..C1 (stray continuation, overlong), F5..FF */
        }
        if (len - i - 1 < more || s[i + 1] < lo || s[i + 1] > hi)
            goto invalid;
        for (size_t k = 2; k <= more; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                goto invalid;
        i += more + 1;
    }
    return NULL;
invalid:
    if (bad)
        *bad = i;
    return R_UTF8;
}

/* A text field at pos: `len` already range-checked by the caller. */
static int parse_text(pm_tx *tx, pm_parse_error *err, const uint8_t *b, size_t n, size_t pos,
                      size_t len, const char *field)
{
    if (n - pos < len)
        return fail(err, pos, field, R_MISSING);
    size_t bad = 0;
    const char *why = pm_text_check(b + pos, len, &bad);
    if (why)
        return fail(err, pos + bad, field, why);
    tx->text = b + pos;
    tx->text_len = len;
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Transactions (§3)                                                      */
/* ---------------------------------------------------------------------- */

/* n_out then the outputs, at *pos; advances *pos. */
static int parse_outputs(pm_tx *tx, pm_parse_error *err, const uint8_t *b, size_t n, size_t *pos)
{
    size_t p = *pos;
    if (n - p < 2)
        return fail(err, p, "n_out", R_MISSING);
    size_t n_out = pm_read_u16le(b + p);
    if (n_out < 1 || n_out > PM_TX_MAX_OUTPUTS)
        return fail(err, p, "n_out", R_COUNT);
    p += 2;
    tx->n_out = n_out;
    tx->outputs = b + p;
    for (size_t i = 0; i < n_out; i++, p += PM_OUTPUT_SIZE) {
        if (n - p < PM_OUTPUT_SIZE)
            return fail(err, p, "outputs", R_MISSING);
        uint8_t kind = b[p + PM_OUT_KIND];
        if (kind == PM_OUTPUT_CREDIT) {
            if (pm_read_u64le(b + p + PM_OUT_AMOUNT) == 0)
                return fail(err, p + PM_OUT_AMOUNT, "output.amount", R_ZERO);
        } else if (kind != PM_OUTPUT_STAMP) {
            return fail(err, p + PM_OUT_KIND, "output.kind", R_KIND);
        }
    }
    *pos = p;
    return 1;
}

/* The `len` bytes of `field` at `at` must be there; `at` <= n holds
 * because every earlier field was checked the same way. */
#define NEED(at, len, field)                                                        \
    do {                                                                            \
        if (n - (size_t)(at) < (size_t)(len))                                       \
            return fail(err, (at), (field), R_MISSING);                             \
    } while (0)

int pm_tx_parse(const pm_context *ctx, pm_tx *tx, pm_parse_error *err, const uint8_t *bytes,
                size_t size)
{
    PM_ARG_CHECK(ctx, ctx != NULL, 0);
    PM_ARG_CHECK(ctx, tx != NULL, 0);
    PM_ARG_CHECK(ctx, bytes != NULL || size == 0, 0);
    const uint8_t *b = bytes;
    const size_t n = size;
    memset(tx, 0, sizeof *tx);
    if (n < PM_TX_MIN_SIZE || n > PM_TX_MAX_SIZE)
        return fail(err, 0, "size", R_TX_SIZE);
    if (b[0] != 1)
        return fail(err, 0, "version", R_VERSION);
    tx->bytes = b;
    tx->size = n;
    tx->version = 1;
    tx->type = b[1];
    size_t pos = 2, n_sigs = 1;

    switch (b[1]) {
    case PM_TX_REGISTER:
        NEED(2, 8, "gov_seq");
        tx->seq = pm_read_u64le(b + 2);
        NEED(10, 4, "operator");
        tx->operator_id = pm_read_u32le(b + 10);
        if (tx->operator_id == 0)
            return fail(err, 10, "operator", R_ZERO);
        NEED(14, PM_KEY_SIZE, "key");
        tx->key = b + 14;
        NEED(46, 1, "name_len");
        if (b[46] < 1 || b[46] > 64)
            return fail(err, 46, "name_len", R_LENGTH);
        if (!parse_text(tx, err, b, n, 47, b[46], "name"))
            return 0;
        pos = 47 + (size_t)b[46];
        break;

    case PM_TX_SERIES:
        NEED(2, 8, "op_seq");
        tx->seq = pm_read_u64le(b + 2);
        NEED(10, 4, "operator");
        tx->operator_id = pm_read_u32le(b + 10);
        NEED(14, 4, "series");
        tx->series = pm_read_u32le(b + 14);
        NEED(18, 4, "max_supply");
        tx->max_supply = pm_read_u32le(b + 18);
        if (tx->max_supply == 0)
            return fail(err, 18, "max_supply", R_ZERO);
        NEED(22, 8, "face_value");
        tx->face_value = pm_read_u64le(b + 22);
        NEED(30, PM_HASH_SIZE, "metadata");
        tx->metadata = b + 30;
        NEED(62, 1, "title_len");
        if (b[62] < 1 || b[62] > 128)
            return fail(err, 62, "title_len", R_LENGTH);
        if (!parse_text(tx, err, b, n, 63, b[62], "title"))
            return 0;
        pos = 63 + (size_t)b[62];
        break;

    case PM_TX_ISSUE:
        NEED(2, 8, "op_seq");
        tx->seq = pm_read_u64le(b + 2);
        NEED(10, 4, "operator");
        tx->operator_id = pm_read_u32le(b + 10);
        pos = 14;
        if (!parse_outputs(tx, err, b, n, &pos))
            return 0;
        break;

    case PM_TX_TRANSFER: {
        NEED(2, 2, "n_in");
        size_t n_in = pm_read_u16le(b + 2);
        if (n_in < 1 || n_in > PM_TX_MAX_INPUTS)
            return fail(err, 2, "n_in", R_COUNT);
        pos = 4;
        NEED(pos, n_in * PM_INPUT_SIZE, "inputs");
        tx->n_in = n_in;
        tx->inputs = b + pos;
        pos += n_in * PM_INPUT_SIZE;
        if (!parse_outputs(tx, err, b, n, &pos))
            return 0;
        n_sigs = n_in;
        break;
    }

    default:
        return fail(err, 1, "type", R_TYPE);
    }

    if (n - pos < n_sigs * PM_SIG_SIZE)
        return fail(err, pos, "sigs", R_MISSING);
    if (n - pos > n_sigs * PM_SIG_SIZE)
        return fail(err, pos + n_sigs * PM_SIG_SIZE, "end", R_EXTRA);
    tx->unsigned_size = pos;
    tx->n_sigs = n_sigs;
    tx->sigs = b + pos;
    return 1;
}

void pm_tx_input(const pm_context *ctx, pm_outpoint *out, const pm_tx *tx, size_t i)
{
    PM_ARG_CHECK(ctx, ctx != NULL, );
    PM_ARG_CHECK(ctx, out != NULL, );
    PM_ARG_CHECK(ctx, tx != NULL, );
    PM_ARG_CHECK(ctx, i < tx->n_in, );
    const uint8_t *raw = pm_tx_input_raw(tx, i);
    memcpy(out->txid, raw, PM_HASH_SIZE);
    out->index = pm_read_u16le(raw + PM_HASH_SIZE);
}

void pm_tx_output(const pm_context *ctx, pm_output *out, const pm_tx *tx, size_t i)
{
    PM_ARG_CHECK(ctx, ctx != NULL, );
    PM_ARG_CHECK(ctx, out != NULL, );
    PM_ARG_CHECK(ctx, tx != NULL, );
    PM_ARG_CHECK(ctx, i < tx->n_out, );
    pm_output_decode(pm_context_static, out, pm_tx_output_raw(tx, i));
}

void pm_output_decode(const pm_context *ctx, pm_output *out, const uint8_t raw[PM_OUTPUT_SIZE])
{
    PM_ARG_CHECK(ctx, ctx != NULL, );
    PM_ARG_CHECK(ctx, out != NULL, );
    PM_ARG_CHECK(ctx, raw != NULL, );
    out->kind = raw[PM_OUT_KIND];
    memcpy(out->owner, raw + PM_OUT_OWNER, PM_KEY_SIZE);
    out->operator_id = pm_read_u32le(raw + PM_OUT_OPERATOR);
    if (out->kind == PM_OUTPUT_CREDIT) {
        out->series = 0;
        out->serial = 0;
        out->amount = pm_read_u64le(raw + PM_OUT_AMOUNT);
    } else {
        out->series = pm_read_u32le(raw + PM_OUT_SERIES);
        out->serial = pm_read_u32le(raw + PM_OUT_SERIAL);
        out->amount = 0;
    }
}

void pm_output_encode(const pm_context *ctx, uint8_t raw[PM_OUTPUT_SIZE], const pm_output *out)
{
    PM_ARG_CHECK(ctx, ctx != NULL, );
    PM_ARG_CHECK(ctx, raw != NULL, );
    PM_ARG_CHECK(ctx, out != NULL, );
    raw[PM_OUT_KIND] = out->kind;
    memcpy(raw + PM_OUT_OWNER, out->owner, PM_KEY_SIZE);
    pm_write_u32le(raw + PM_OUT_OPERATOR, out->operator_id);
    if (out->kind == PM_OUTPUT_CREDIT) {
        pm_write_u64le(raw + PM_OUT_AMOUNT, out->amount);
    } else {
        pm_write_u32le(raw + PM_OUT_SERIES, out->series);
        pm_write_u32le(raw + PM_OUT_SERIAL, out->serial);
    }
}

/* A 64-bit mix of the 34 outpoint bytes: every byte counts (two inputs
 * often share a txid and differ only in the index). Not keyed: a crafted
 * set of colliding inputs costs at most n_in^2/2 compares, n_in <= 256. */
static uint64_t outpoint_hash(const uint8_t *in)
{
    uint64_t w[4];
    memcpy(w, in, sizeof w);
    uint64_t h = w[0] * 0x9E3779B97F4A7C15u ^ w[1] * 0xC2B2AE3D27D4EB4Fu ^
                 w[2] * 0x165667B19E3779F9u ^ w[3] * 0x27D4EB2F165667C5u ^
                 ((uint64_t)pm_read_u16le(in + 32) + 1) * 0xFF51AFD7ED558CCDu;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9u;
    h ^= h >> 29;
    return h;
}

int pm_tx_has_duplicate_input(const pm_context *ctx, const pm_tx *tx, size_t *second)
{
    PM_ARG_CHECK(ctx, ctx != NULL, 0);
    PM_ARG_CHECK(ctx, tx != NULL, 0);
    if (tx->type != PM_TX_TRANSFER || tx->n_in < 2)
        return 0;
    PM_ARG_CHECK(ctx, tx->n_in <= PM_TX_MAX_INPUTS, 0);
    PM_ARG_CHECK(ctx, tx->inputs != NULL, 0);
    const size_t n = tx->n_in;

    /* A handful of inputs: pairwise is cheaper than clearing a table. */
    if (n <= 8) {
        for (size_t j = 1; j < n; j++)
            for (size_t i = 0; i < j; i++)
                if (memcmp(pm_tx_input_raw(tx, i), pm_tx_input_raw(tx, j), PM_INPUT_SIZE) == 0) {
                    if (second)
                        *second = j;
                    return 1;
                }
        return 0;
    }

    /* The common map over a stack buffer: no allocation per transaction. */
    hmap_slot buf[HMAP_BUF_SLOTS(PM_TX_MAX_INPUTS)];
    hmap m;
    hmap_init_in(&m, buf, HMAP_SLOTS_FOR(n));
    for (size_t j = 0; j < n; j++) {
        const uint8_t *in = pm_tx_input_raw(tx, j);
        hmap_cursor c = hmap_probe(&m, outpoint_hash(in));
        for (uint32_t it; (it = hmap_next(&m, &c)) != HMAP_NONE;)
            if (memcmp(pm_tx_input_raw(tx, it), in, PM_INPUT_SIZE) == 0) {
                if (second)
                    *second = j;
                return 1;
            }
        hmap_put(&m, &c, (uint32_t)j);
    }
    return 0;
}

/* Copy len bytes, or zeros when src is NULL. */
static uint8_t *put(uint8_t *p, const uint8_t *src, size_t len)
{
    if (src)
        memcpy(p, src, len);
    else
        memset(p, 0, len);
    return p + len;
}

size_t pm_tx_serialize(const pm_context *ctx, uint8_t *out, size_t cap, const pm_tx *tx)
{
    PM_ARG_CHECK(ctx, ctx != NULL, 0);
    PM_ARG_CHECK(ctx, out != NULL || cap == 0, 0);
    PM_ARG_CHECK(ctx, tx != NULL, 0);
    size_t body, n_sigs = 1;
    switch (tx->type) {
    case PM_TX_REGISTER:
        if (tx->text_len > 255)
            return 0;
        PM_ARG_CHECK(ctx, tx->key != NULL, 0);
        PM_ARG_CHECK(ctx, tx->text != NULL || tx->text_len == 0, 0);
        body = REGISTER_FIXED + tx->text_len;
        break;
    case PM_TX_SERIES:
        if (tx->text_len > 255)
            return 0;
        PM_ARG_CHECK(ctx, tx->metadata != NULL, 0);
        PM_ARG_CHECK(ctx, tx->text != NULL || tx->text_len == 0, 0);
        body = SERIES_FIXED + tx->text_len;
        break;
    case PM_TX_ISSUE:
        if (tx->n_out > 65535)
            return 0;
        PM_ARG_CHECK(ctx, tx->outputs != NULL || tx->n_out == 0, 0);
        body = ISSUE_FIXED + tx->n_out * PM_OUTPUT_SIZE;
        break;
    case PM_TX_TRANSFER:
        if (tx->n_in > 65535 || tx->n_out > 65535)
            return 0;
        PM_ARG_CHECK(ctx, tx->inputs != NULL || tx->n_in == 0, 0);
        PM_ARG_CHECK(ctx, tx->outputs != NULL || tx->n_out == 0, 0);
        body = 2 + 2 + tx->n_in * PM_INPUT_SIZE + 2 + tx->n_out * PM_OUTPUT_SIZE;
        n_sigs = tx->n_in;
        break;
    default:
        return 0;
    }
    const size_t total = body + n_sigs * PM_SIG_SIZE;
    if (total > cap)
        return total;

    uint8_t *p = out;
    *p++ = 1;
    *p++ = tx->type;
    switch (tx->type) {
    case PM_TX_REGISTER:
        pm_write_u64le(p, tx->seq);
        pm_write_u32le(p + 8, tx->operator_id);
        p = put(p + 12, tx->key, PM_KEY_SIZE);
        *p++ = (uint8_t)tx->text_len;
        p = put(p, tx->text, tx->text_len);
        break;
    case PM_TX_SERIES:
        pm_write_u64le(p, tx->seq);
        pm_write_u32le(p + 8, tx->operator_id);
        pm_write_u32le(p + 12, tx->series);
        pm_write_u32le(p + 16, tx->max_supply);
        pm_write_u64le(p + 20, tx->face_value);
        p = put(p + 28, tx->metadata, PM_HASH_SIZE);
        *p++ = (uint8_t)tx->text_len;
        p = put(p, tx->text, tx->text_len);
        break;
    case PM_TX_ISSUE:
        pm_write_u64le(p, tx->seq);
        pm_write_u32le(p + 8, tx->operator_id);
        pm_write_u16le(p + 12, (uint16_t)tx->n_out);
        p = put(p + 14, tx->outputs, tx->n_out * PM_OUTPUT_SIZE);
        break;
    default: /* PM_TX_TRANSFER */
        pm_write_u16le(p, (uint16_t)tx->n_in);
        p = put(p + 2, tx->inputs, tx->n_in * PM_INPUT_SIZE);
        pm_write_u16le(p, (uint16_t)tx->n_out);
        p = put(p + 2, tx->outputs, tx->n_out * PM_OUTPUT_SIZE);
        break;
    }
    p = put(p, tx->sigs, n_sigs * PM_SIG_SIZE);
    (void)p; /* p == out + total */
    return total;
}

/* ---------------------------------------------------------------------- */
/* Blocks (§6)                                                            */
/* ---------------------------------------------------------------------- */

void pm_block_header_encode(const pm_context *ctx, uint8_t out[PM_BLOCK_HEADER_SIZE],
                            const pm_block_header *h)
{
    PM_ARG_CHECK(ctx, ctx != NULL, );
    PM_ARG_CHECK(ctx, out != NULL, );
    PM_ARG_CHECK(ctx, h != NULL, );
    pm_write_u32le(out, h->version);
    pm_write_u64le(out + 4, h->height);
    memcpy(out + 12, h->prev_hash, PM_HASH_SIZE);
    memcpy(out + 44, h->merkle_root, PM_HASH_SIZE);
    pm_write_u32le(out + 76, h->tx_count);
}

void pm_block_header_decode(const pm_context *ctx, pm_block_header *h,
                            const uint8_t in[PM_BLOCK_HEADER_SIZE])
{
    PM_ARG_CHECK(ctx, ctx != NULL, );
    PM_ARG_CHECK(ctx, h != NULL, );
    PM_ARG_CHECK(ctx, in != NULL, );
    h->version = pm_read_u32le(in);
    h->height = pm_read_u64le(in + 4);
    memcpy(h->prev_hash, in + 12, PM_HASH_SIZE);
    memcpy(h->merkle_root, in + 44, PM_HASH_SIZE);
    h->tx_count = pm_read_u32le(in + 76);
}

int pm_block_parse(const pm_context *ctx, pm_block *blk, pm_parse_error *err, const uint8_t *bytes,
                   size_t size)
{
    PM_ARG_CHECK(ctx, ctx != NULL, 0);
    PM_ARG_CHECK(ctx, blk != NULL, 0);
    PM_ARG_CHECK(ctx, bytes != NULL || size == 0, 0);
    memset(blk, 0, sizeof *blk);
    if (size < PM_BLOCK_HEADER_SIZE || size > PM_BLOCK_MAX_SIZE)
        return fail(err, 0, "size", "block size out of range 80..4194304");
    pm_block_header_decode(pm_context_static, &blk->header, bytes);
    blk->bytes = bytes;
    blk->size = size;
    if (blk->header.version != 1)
        return fail(err, 0, "version", R_VERSION);
    if (blk->header.tx_count < 1 || blk->header.tx_count > PM_BLOCK_MAX_TXS)
        return fail(err, 76, "tx_count", R_COUNT);
    size_t pos = PM_BLOCK_HEADER_SIZE;
    for (uint32_t i = 0; i < blk->header.tx_count; i++) {
        const uint8_t *rec;
        size_t len;
        if (pm_record_next(bytes, size, &pos, &rec, &len) != 1)
            return fail(err, pos, "records", "fewer records than tx_count");
    }
    if (pos != size)
        return fail(err, pos, "records", "extra bytes after the last record");
    return 1;
}

int pm_block_next_tx(const pm_context *ctx, const uint8_t **tx, size_t *size, const pm_block *blk,
                     size_t *cursor)
{
    PM_ARG_CHECK(ctx, ctx != NULL, 0);
    PM_ARG_CHECK(ctx, tx != NULL, 0);
    PM_ARG_CHECK(ctx, size != NULL, 0);
    PM_ARG_CHECK(ctx, blk != NULL, 0);
    PM_ARG_CHECK(ctx, cursor != NULL, 0);
    size_t pos = *cursor ? *cursor : PM_BLOCK_HEADER_SIZE;
    if (blk->bytes == NULL || pos < PM_BLOCK_HEADER_SIZE)
        return 0;
    if (pm_record_next(blk->bytes, blk->size, &pos, tx, size) != 1)
        return 0;
    *cursor = pos;
    return 1;
}

/* ---------------------------------------------------------------------- */
/* File header (§2)                                                       */
/* ---------------------------------------------------------------------- */

int pm_file_header_parse(const pm_context *ctx, pm_file_kind *kind, pm_chain_params *params,
                         pm_parse_error *err, const uint8_t *bytes, size_t size)
{
    PM_ARG_CHECK(ctx, ctx != NULL, 0);
    PM_ARG_CHECK(ctx, kind != NULL, 0);
    PM_ARG_CHECK(ctx, params != NULL, 0);
    PM_ARG_CHECK(ctx, bytes != NULL || size == 0, 0);
    if (size < PM_FILE_HEADER_SIZE)
        return fail(err, 0, "size", "shorter than 60 bytes");
    if (memcmp(bytes, "POSTMKTX", 8) == 0)
        *kind = PM_FILE_STREAM;
    else if (memcmp(bytes, "POSTMKBK", 8) == 0)
        *kind = PM_FILE_CHAIN;
    else
        return fail(err, 0, "magic", "not POSTMKTX or POSTMKBK");
    if (pm_read_u32le(bytes + 8) != 1)
        return fail(err, 8, "version", R_VERSION);
    memcpy(params->network, bytes + 12, PM_NETWORK_SIZE);
    memcpy(params->governance_key, bytes + 28, PM_KEY_SIZE);
    return 1;
}

void pm_file_header_encode(const pm_context *ctx, uint8_t out[PM_FILE_HEADER_SIZE],
                           pm_file_kind kind, const pm_chain_params *params)
{
    PM_ARG_CHECK(ctx, ctx != NULL, );
    PM_ARG_CHECK(ctx, out != NULL, );
    PM_ARG_CHECK(ctx, kind == PM_FILE_STREAM || kind == PM_FILE_CHAIN, );
    PM_ARG_CHECK(ctx, params != NULL, );
    memcpy(out, kind == PM_FILE_CHAIN ? "POSTMKBK" : "POSTMKTX", 8);
    pm_write_u32le(out + 8, 1);
    memcpy(out + 12, params->network, PM_NETWORK_SIZE);
    memcpy(out + 28, params->governance_key, PM_KEY_SIZE);
}
