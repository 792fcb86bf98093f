/*
 * test_wire_malformed.c — the strictness of the wire format, table-driven.
 *
 * Valid transactions of each type are built with pm_tx_serialize (their
 * layout is checked against hand-computed offsets of §3 first), then
 * mutated to hit every MALFORMED case of §5 step 1; each must be refused
 * with the field and byte offset named, and each legal edge case must
 * parse. Then: the §1 text rule, the DUPLICATE_INPUT check (against a
 * naive quadratic reference too), block framing (§6 step 1), file headers
 * (§2), record framing, output and header encodings.
 */
#include "postmark.h"
#include "testutil.h"
#include "postmark_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- base transactions ------------------------------------------------ */

enum { REG, SER, ISS, TRF, NBASE };

typedef struct {
    uint8_t bytes[80000]; /* room for oversized ones */
    size_t size;
} txbuf;

static uint8_t key_a[32], key_b[32], meta[32], sig_bytes[256 * 64];
static uint8_t outputs2[2 * PM_OUTPUT_SIZE]; /* a STAMP then a CREDIT */
static uint8_t inputs2[2 * PM_INPUT_SIZE];

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

static void init_parts(void)
{
    fill(key_a, 32, 0x11);
    fill(key_b, 32, 0x55);
    fill(meta, 32, 0x99);
    /* Signature bytes start with 0xAA: a continuation byte, never text. */
    for (size_t i = 0; i < sizeof sig_bytes; i++)
        sig_bytes[i] = (uint8_t)(0xAA ^ (i % 64 ? i : 0));
    pm_output o = {0};
    o.kind = PM_OUTPUT_STAMP;
    memcpy(o.owner, key_a, 32);
    o.operator_id = 7;
    o.series = 3;
    o.serial = 42;
    pm_output_encode(pm_context_static, outputs2, &o);
    memset(&o, 0, sizeof o);
    o.kind = PM_OUTPUT_CREDIT;
    memcpy(o.owner, key_b, 32);
    o.operator_id = 7;
    o.amount = 1000;
    pm_output_encode(pm_context_static, outputs2 + PM_OUTPUT_SIZE, &o);
    fill(inputs2, 32, 0x21);
    pm_write_u16le(inputs2 + 32, 0);
    fill(inputs2 + 34, 32, 0x31);
    pm_write_u16le(inputs2 + 66, 1);
}

static pm_tx base_desc(int which)
{
    pm_tx t;
    memset(&t, 0, sizeof t);
    t.sigs = sig_bytes;
    switch (which) {
    case REG:
        t.type = PM_TX_REGISTER;
        t.seq = 1;
        t.operator_id = 7;
        t.key = key_a;
        t.text = (const uint8_t *)"Royal Mail";
        t.text_len = 10;
        break;
    case SER:
        t.type = PM_TX_SERIES;
        t.seq = 1;
        t.operator_id = 7;
        t.series = 3;
        t.max_supply = 100;
        t.face_value = 85;
        t.metadata = meta;
        t.text = (const uint8_t *)"Kings";
        t.text_len = 5;
        break;
    case ISS:
        t.type = PM_TX_ISSUE;
        t.seq = 2;
        t.operator_id = 7;
        t.n_out = 2;
        t.outputs = outputs2;
        break;
    default:
        t.type = PM_TX_TRANSFER;
        t.n_in = 2;
        t.inputs = inputs2;
        t.n_out = 2;
        t.outputs = outputs2;
        break;
    }
    return t;
}

static void build(txbuf *b, const pm_tx *desc)
{
    b->size = pm_tx_serialize(pm_context_static, b->bytes, sizeof b->bytes, desc);
}

/* Sizes and offsets of the bases, computed by hand from §3. */
static const size_t base_size[NBASE] = {
    47 + 10 + 64,                    /* REGISTER: name at 47 */
    63 + 5 + 64,                     /* SERIES: title at 63 */
    16 + 2 * 45 + 64,                /* ISSUE: outputs at 16 */
    4 + 2 * 34 + 2 + 2 * 45 + 2 * 64 /* TRANSFER: n_out at 72, outputs 74 */
};

static void test_bases(txbuf *base)
{
    for (int i = 0; i < NBASE; i++) {
        pm_tx d = base_desc(i);
        build(&base[i], &d);
        CHECKF(base[i].size == base_size[i], "base %d size %zu", i, base[i].size);
        pm_tx tx;
        pm_parse_error err = {0, NULL, NULL};
        CHECKF(pm_tx_parse(pm_context_static, &tx, &err, base[i].bytes, base[i].size) == 1,
               "base %d: %s at %zu", i, err.field ? err.field : "", err.offset);
        CHECK(tx.type == d.type && tx.version == 1 && tx.size == base[i].size);
        CHECK(tx.n_sigs == (i == TRF ? 2u : 1u));
        CHECK(tx.unsigned_size == base[i].size - tx.n_sigs * 64);
        CHECK(tx.sigs == base[i].bytes + tx.unsigned_size);
        CHECK(memcmp(tx.sigs, sig_bytes, tx.n_sigs * 64) == 0);
    }
    const uint8_t *r = base[REG].bytes;
    CHECK(r[0] == 1 && r[1] == 1 && pm_read_u64le(r + 2) == 1 && pm_read_u32le(r + 10) == 7);
    CHECK(memcmp(r + 14, key_a, 32) == 0 && r[46] == 10 && memcmp(r + 47, "Royal Mail", 10) == 0);
    const uint8_t *s = base[SER].bytes;
    CHECK(s[1] == 2 && pm_read_u32le(s + 14) == 3 && pm_read_u32le(s + 18) == 100);
    CHECK(pm_read_u64le(s + 22) == 85 && memcmp(s + 30, meta, 32) == 0 && s[62] == 5);
    const uint8_t *is = base[ISS].bytes;
    CHECK(is[1] == 3 && pm_read_u64le(is + 2) == 2 && pm_read_u16le(is + 14) == 2);
    CHECK(memcmp(is + 16, outputs2, 90) == 0);
    const uint8_t *t = base[TRF].bytes;
    CHECK(t[1] == 4 && pm_read_u16le(t + 2) == 2 && memcmp(t + 4, inputs2, 68) == 0);
    CHECK(pm_read_u16le(t + 72) == 2 && memcmp(t + 74, outputs2, 90) == 0);

    /* Parsed views decode back to what was encoded. */
    pm_tx tx;
    CHECK(pm_tx_parse(pm_context_static, &tx, NULL, base[REG].bytes, base[REG].size));
    CHECK(tx.seq == 1 && tx.operator_id == 7 && tx.key == base[REG].bytes + 14);
    CHECK(tx.text_len == 10 && memcmp(tx.text, "Royal Mail", 10) == 0);
    CHECK(tx.n_in == 0 && tx.n_out == 0 && tx.inputs == NULL && tx.outputs == NULL);
    CHECK(pm_tx_parse(pm_context_static, &tx, NULL, base[SER].bytes, base[SER].size));
    CHECK(tx.series == 3 && tx.max_supply == 100 && tx.face_value == 85 && tx.text_len == 5);
    CHECK(tx.metadata == base[SER].bytes + 30 && tx.key == NULL);
    CHECK(pm_tx_parse(pm_context_static, &tx, NULL, base[TRF].bytes, base[TRF].size));
    pm_outpoint op;
    pm_tx_input(pm_context_static, &op, &tx, 1);
    CHECK(op.index == 1 && memcmp(op.txid, inputs2 + 34, 32) == 0);
    pm_output o;
    pm_tx_output(pm_context_static, &o, &tx, 0);
    CHECK(o.kind == 1 && o.operator_id == 7 && o.series == 3 && o.serial == 42 && o.amount == 0);
    CHECK(memcmp(o.owner, key_a, 32) == 0);
    pm_tx_output(pm_context_static, &o, &tx, 1);
    CHECK(o.kind == 2 && o.operator_id == 7 && o.amount == 1000 && o.series == 0);
    CHECK(memcmp(o.owner, key_b, 32) == 0);
}

/* ---- the mutation table ----------------------------------------------- */

typedef enum { SET8, SET16, SET32, SET64, TRUNC, APPEND } mut_op;

typedef struct {
    const char *label;
    int base;
    mut_op op;
    size_t at;       /* offset to set, or new size for TRUNC, count for APPEND */
    uint64_t value;
    const char *field; /* NULL: must parse */
    size_t offset;
} mutation;

static const mutation mutations[] = {
    /* header */
    {"version 0", REG, SET8, 0, 0, "version", 0},
    {"version 2", TRF, SET8, 0, 2, "version", 0},
    {"type 0", REG, SET8, 1, 0, "type", 1},
    {"type 5", ISS, SET8, 1, 5, "type", 1},
    {"type 255", SER, SET8, 1, 255, "type", 1},
    {"empty", REG, TRUNC, 0, 0, "size", 0},
    {"one byte", REG, TRUNC, 1, 0, "size", 0},
    {"version and type only", REG, TRUNC, 2, 0, "gov_seq", 2},
    /* REGISTER */
    {"register operator 0", REG, SET32, 10, 0, "operator", 10},
    {"register operator max", REG, SET32, 10, 0xFFFFFFFF, NULL, 0},
    {"register key zero", REG, SET64, 14, 0, NULL, 0},
    {"register gov_seq cut", REG, TRUNC, 9, 0, "gov_seq", 2},
    {"register operator cut", REG, TRUNC, 12, 0, "operator", 10},
    {"register key cut", REG, TRUNC, 30, 0, "key", 14},
    {"register name_len missing", REG, TRUNC, 46, 0, "name_len", 46},
    {"register name_len 0", REG, SET8, 46, 0, "name_len", 46},
    {"register name_len 65", REG, SET8, 46, 65, "name_len", 46},
    {"register name_len 255", REG, SET8, 46, 255, "name_len", 46},
    {"register name cut", REG, TRUNC, 50, 0, "name", 47},
    {"register name_len eats a sig byte", REG, SET8, 46, 11, "name", 57},
    {"register name_len one short", REG, SET8, 46, 9, "end", 120},
    {"register sig cut", REG, TRUNC, 120, 0, "sigs", 57},
    {"register no sig", REG, TRUNC, 57, 0, "sigs", 57},
    {"register extra byte", REG, APPEND, 1, 0, "end", 121},
    {"register extra sig", REG, APPEND, 64, 0, "end", 121},
    /* SERIES */
    {"series operator 0 parses", SER, SET32, 10, 0, NULL, 0},
    {"series max_supply 0", SER, SET32, 18, 0, "max_supply", 18},
    {"series max_supply 1", SER, SET32, 18, 1, NULL, 0},
    {"series face_value 0", SER, SET64, 22, 0, NULL, 0},
    {"series op_seq cut", SER, TRUNC, 5, 0, "op_seq", 2},
    {"series series cut", SER, TRUNC, 16, 0, "series", 14},
    {"series max_supply cut", SER, TRUNC, 20, 0, "max_supply", 18},
    {"series face_value cut", SER, TRUNC, 29, 0, "face_value", 22},
    {"series metadata cut", SER, TRUNC, 40, 0, "metadata", 30},
    {"series title_len missing", SER, TRUNC, 62, 0, "title_len", 62},
    {"series title_len 0", SER, SET8, 62, 0, "title_len", 62},
    {"series title_len 129", SER, SET8, 62, 129, "title_len", 62},
    {"series title cut", SER, TRUNC, 65, 0, "title", 63},
    {"series sig cut", SER, TRUNC, 100, 0, "sigs", 68},
    {"series extra byte", SER, APPEND, 1, 0, "end", 132},
    /* ISSUE */
    {"issue operator 0 parses", ISS, SET32, 10, 0, NULL, 0},
    {"issue operator cut", ISS, TRUNC, 12, 0, "operator", 10},
    {"issue n_out missing", ISS, TRUNC, 15, 0, "n_out", 14},
    {"issue n_out 0", ISS, SET16, 14, 0, "n_out", 14},
    {"issue n_out 1025", ISS, SET16, 14, 1025, "n_out", 14},
    {"issue n_out 65535", ISS, SET16, 14, 65535, "n_out", 14},
    {"issue n_out 3 (sig read as output)", ISS, SET16, 14, 3, "output.kind", 106},
    {"issue sig half present", ISS, TRUNC, 151, 0, "sigs", 106},
    {"issue n_out 1 (one extra)", ISS, SET16, 14, 1, "end", 125},
    {"issue output cut", ISS, TRUNC, 40, 0, "outputs", 16},
    {"issue second output cut", ISS, TRUNC, 80, 0, "outputs", 61},
    {"issue kind 0", ISS, SET8, 16, 0, "output.kind", 16},
    {"issue kind 3", ISS, SET8, 16, 3, "output.kind", 16},
    {"issue kind 255 of output 1", ISS, SET8, 61, 255, "output.kind", 61},
    {"issue credit amount 0", ISS, SET64, 98, 0, "output.amount", 98},
    {"issue credit amount max", ISS, SET64, 98, UINT64_MAX, NULL, 0},
    {"issue credit amount 2^32", ISS, SET64, 98, 1ull << 32, NULL, 0},
    {"issue stamp becomes credit", ISS, SET8, 16, 2, NULL, 0}, /* amount = series|serial */
    {"issue stamp zero fields", ISS, SET64, 16 + 33, 0, NULL, 0},
    {"issue sig cut", ISS, TRUNC, 169, 0, "sigs", 106},
    {"issue extra byte", ISS, APPEND, 1, 0, "end", 170},
    /* TRANSFER */
    {"transfer n_in missing", TRF, TRUNC, 3, 0, "n_in", 2},
    {"transfer n_in 0", TRF, SET16, 2, 0, "n_in", 2},
    {"transfer n_in 257", TRF, SET16, 2, 257, "n_in", 2},
    {"transfer n_in 65535", TRF, SET16, 2, 65535, "n_in", 2},
    {"transfer inputs cut", TRF, TRUNC, 50, 0, "inputs", 4},
    {"transfer n_out missing", TRF, TRUNC, 73, 0, "n_out", 72},
    {"transfer n_out 0", TRF, SET16, 72, 0, "n_out", 72},
    {"transfer n_out 1025", TRF, SET16, 72, 1025, "n_out", 72},
    {"transfer kind 0", TRF, SET8, 74, 0, "output.kind", 74},
    {"transfer credit amount 0", TRF, SET64, 74 + 45 + 37, 0, "output.amount", 156},
    {"transfer one sig missing", TRF, TRUNC, 228, 0, "sigs", 164},
    {"transfer sig cut by one", TRF, TRUNC, 291, 0, "sigs", 164},
    {"transfer extra sig", TRF, APPEND, 64, 0, "end", 292},
    {"transfer extra byte", TRF, APPEND, 1, 0, "end", 292},
    {"transfer input index max", TRF, SET16, 36, 65535, NULL, 0},
};

static void apply(txbuf *out, const txbuf *in, const mutation *m)
{
    *out = *in;
    switch (m->op) {
    case SET8: out->bytes[m->at] = (uint8_t)m->value; break;
    case SET16: pm_write_u16le(out->bytes + m->at, (uint16_t)m->value); break;
    case SET32: pm_write_u32le(out->bytes + m->at, (uint32_t)m->value); break;
    case SET64: pm_write_u64le(out->bytes + m->at, m->value); break;
    case TRUNC: out->size = m->at; break;
    case APPEND:
        memset(out->bytes + out->size, 0x41, m->at);
        out->size += m->at;
        break;
    }
}

/* Parse an exact-size heap copy, so that ASan catches any read beyond. */
static int parse_exact(pm_tx *tx, pm_parse_error *err, const uint8_t *bytes, size_t size,
                       uint8_t **copy)
{
    *copy = malloc(size ? size : 1);
    if (size)
        memcpy(*copy, bytes, size);
    return pm_tx_parse(pm_context_static, tx, err, *copy, size);
}

static void expect(const char *label, const uint8_t *bytes, size_t size, const char *field,
                   size_t offset)
{
    pm_tx tx;
    pm_parse_error err = {999999, NULL, NULL};
    uint8_t *copy;
    int ok = parse_exact(&tx, &err, bytes, size, &copy);
    if (!field) {
        CHECKF(ok == 1, "%s: refused: %s at %zu: %s", label, err.field ? err.field : "?",
               err.offset, err.reason ? err.reason : "?");
        if (ok) {
            /* It parses: it re-serializes to the same bytes. */
            uint8_t *again = malloc(size);
            CHECKF(pm_tx_serialize(pm_context_static, again, size, &tx) == size &&
                       memcmp(again, copy, size) == 0,
                   "%s: round trip", label);
            free(again);
        }
    } else {
        CHECKF(ok == 0, "%s: parses", label);
        CHECKF(err.field && strcmp(err.field, field) == 0, "%s: field %s, expected %s", label,
               err.field ? err.field : "(null)", field);
        CHECKF(err.offset == offset, "%s: offset %zu, expected %zu", label, err.offset, offset);
        CHECKF(err.reason && err.reason[0], "%s: a reason", label);
        /* A NULL err is allowed and gives the same verdict. */
        CHECKF(pm_tx_parse(pm_context_static, &tx, NULL, copy, size) == 0,
               "%s: verdict without err", label);
    }
    free(copy);
}

static void test_mutations(const txbuf *base)
{
    static txbuf m;
    for (size_t i = 0; i < sizeof mutations / sizeof mutations[0]; i++) {
        const mutation *mu = &mutations[i];
        apply(&m, &base[mu->base], mu);
        expect(mu->label, m.bytes, m.size, mu->field, mu->offset);
    }
    /* Every proper prefix of every base is refused; never a crash. */
    for (int b = 0; b < NBASE; b++)
        for (size_t n = 0; n < base[b].size; n++) {
            pm_tx tx;
            pm_parse_error err = {0, NULL, NULL};
            uint8_t *copy;
            CHECKF(parse_exact(&tx, &err, base[b].bytes, n, &copy) == 0, "base %d prefix %zu", b,
                   n);
            CHECKF(err.field && err.offset <= n, "base %d prefix %zu: offset %zu", b, n,
                   err.offset);
            free(copy);
        }
}

/* ---- sizes at the limits ---------------------------------------------- */

static void test_size_limits(void)
{
    static txbuf b;
    static uint8_t ins[256 * 34], outs[1024 * 45];
    for (size_t i = 0; i < 256; i++) {
        fill(ins + i * 34, 32, (uint8_t)i);
        pm_write_u16le(ins + i * 34 + 32, (uint16_t)i);
    }
    for (size_t i = 0; i < 1024; i++)
        memcpy(outs + i * 45, outputs2 + (i % 2) * 45, 45);

    /* 6 + 98 n_in + 45 n_out = 65,536 for n_in 215, n_out 988. */
    pm_tx d = base_desc(TRF);
    d.inputs = ins;
    d.n_in = 215;
    d.outputs = outs;
    d.n_out = 988;
    build(&b, &d);
    CHECK(b.size == PM_TX_MAX_SIZE);
    expect("transfer of exactly 65536 bytes", b.bytes, b.size, NULL, 0);
    b.bytes[b.size++] = 0;
    expect("transfer of 65537 bytes", b.bytes, b.size, "size", 0);

    /* 256 inputs and 1024 outputs do not fit in 65,536 bytes. */
    d.n_in = 256;
    d.n_out = 1024;
    build(&b, &d);
    CHECK(b.size == 6 + 98 * 256 + 45 * 1024);
    expect("transfer 256 in 1024 out", b.bytes, b.size, "size", 0);

    d.n_in = 256;
    d.n_out = 1;
    build(&b, &d);
    expect("transfer of 256 inputs", b.bytes, b.size, NULL, 0);

    d = base_desc(ISS);
    d.outputs = outs;
    d.n_out = 1024;
    build(&b, &d);
    expect("issue of 1024 outputs", b.bytes, b.size, NULL, 0);

    /* The longest texts. */
    uint8_t text[255];
    memset(text, 'x', sizeof text);
    d = base_desc(REG);
    d.text = text;
    d.text_len = 64;
    build(&b, &d);
    expect("name of 64 bytes", b.bytes, b.size, NULL, 0);
    d.text_len = 65;
    build(&b, &d);
    expect("name of 65 bytes", b.bytes, b.size, "name_len", 46);
    d = base_desc(SER);
    d.text = text;
    d.text_len = 128;
    build(&b, &d);
    expect("title of 128 bytes", b.bytes, b.size, NULL, 0);
    d.text_len = 129;
    build(&b, &d);
    expect("title of 129 bytes", b.bytes, b.size, "title_len", 62);
}

/* ---- text (§1) -------------------------------------------------------- */

typedef struct {
    const char *label;
    const char *text;
    size_t len;
    const char *reason; /* NULL: valid */
    size_t bad;         /* index of the offending sequence */
} text_case;

#define T(s) s, sizeof(s) - 1
static const text_case texts[] = {
    {"ascii", T("Penny Black"), NULL, 0},
    {"DEL 0x7F", T("a\x7f"), NULL, 0},
    {"U+0080 (C1 control, bytes >= 0x20)", T("\xc2\x80"), NULL, 0},
    {"U+07FF", T("\xdf\xbf"), NULL, 0},
    {"U+0800", T("\xe0\xa0\x80"), NULL, 0},
    {"U+D7FF", T("\xed\x9f\xbf"), NULL, 0},
    {"U+E000", T("\xee\x80\x80"), NULL, 0},
    {"U+FFFE noncharacter", T("\xef\xbf\xbe"), NULL, 0},
    {"U+FFFF noncharacter", T("\xef\xbf\xbf"), NULL, 0},
    {"leading U+FEFF", T("\xef\xbb\xbfStamp"), NULL, 0},
    {"U+10000", T("\xf0\x90\x80\x80"), NULL, 0},
    {"U+10FFFF", T("\xf4\x8f\xbf\xbf"), NULL, 0},
    {"mixed", T("Gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x93\xae"), NULL, 0},
    {"space", T(" "), NULL, 0},
    {"NUL", T("a\x00"), "control byte", 1},
    {"tab", T("\t"), "control byte", 0},
    {"newline", T("ab\n"), "control byte", 2},
    {"0x1F", T("x\x1f"), "control byte", 1},
    {"overlong NUL C0 80", T("A\xc0\x80"), "invalid UTF-8", 1},
    {"overlong C1 BF", T("\xc1\xbf"), "invalid UTF-8", 0},
    {"overlong 3-byte E0 80 AF", T("\xe0\x80\xaf"), "invalid UTF-8", 0},
    {"overlong 3-byte E0 9F BF", T("\xe0\x9f\xbf"), "invalid UTF-8", 0},
    {"overlong 4-byte F0 8F BF BF", T("\xf0\x8f\xbf\xbf"), "invalid UTF-8", 0},
    {"surrogate U+D800", T("\xed\xa0\x80"), "invalid UTF-8", 0},
    {"surrogate U+DFFF", T("ok\xed\xbf\xbf"), "invalid UTF-8", 2},
    {"U+110000 F4 90 80 80", T("\xf4\x90\x80\x80"), "invalid UTF-8", 0},
    {"F5 lead", T("\xf5\x80\x80\x80"), "invalid UTF-8", 0},
    {"FF byte", T("\xff"), "invalid UTF-8", 0},
    {"FE byte", T("a\xfe"), "invalid UTF-8", 1},
    {"lone continuation", T("\x80"), "invalid UTF-8", 0},
    {"continuation after ascii", T("abc\xbf"), "invalid UTF-8", 3},
    {"2-byte cut at end", T("ab\xc3"), "invalid UTF-8", 2},
    {"3-byte cut at end", T("ab\xe2\x82"), "invalid UTF-8", 2},
    {"4-byte cut at end", T("\xf0\x9f\x93"), "invalid UTF-8", 0},
    {"3-byte with ascii inside", T("\xe2\x28\xa1"), "invalid UTF-8", 0},
    {"4-byte bad third byte", T("\xf0\x9f\x41\xae"), "invalid UTF-8", 0},
    {"4-byte bad fourth byte", T("\xf0\x9f\x93\xc0"), "invalid UTF-8", 0},
    {"valid then invalid", T("\xc3\xa9\xc3"), "invalid UTF-8", 2},
};

static void test_texts(void)
{
    static txbuf b;
    char label[160];
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        const text_case *c = &texts[i];
        size_t bad = 999;
        const char *why = pm_text_check((const uint8_t *)c->text, c->len, &bad);
        if (!c->reason) {
            CHECKF(why == NULL, "text %s: %s at %zu", c->label, why, bad);
        } else {
            CHECKF(why && strcmp(why, c->reason) == 0, "text %s: %s", c->label,
                   why ? why : "valid");
            CHECKF(bad == c->bad, "text %s: at %zu, expected %zu", c->label, bad, c->bad);
        }
        /* The same text as a REGISTER name (at 47) and a SERIES title (at 63). */
        for (int base = REG; base <= SER; base++) {
            pm_tx d = base_desc(base);
            d.text = (const uint8_t *)c->text;
            d.text_len = c->len;
            build(&b, &d);
            size_t at = base == REG ? 47 : 63;
            snprintf(label, sizeof label, "%s %s", base == REG ? "name" : "title", c->label);
            expect(label, b.bytes, b.size, c->reason ? (base == REG ? "name" : "title") : NULL,
                   at + c->bad);
        }
    }
    /* Every 1- and 2-byte string against a direct reading of RFC 3629. */
    for (unsigned x = 0; x < 256; x++) {
        uint8_t s1[1] = {(uint8_t)x};
        int want1 = x >= 0x20 && x < 0x80;
        CHECKF((pm_text_check(s1, 1, NULL) == NULL) == want1, "byte %02x", x);
        for (unsigned y = 0; y < 256; y++) {
            uint8_t s2[2] = {(uint8_t)x, (uint8_t)y};
            unsigned cp = (x & 0x1F) << 6 | (y & 0x3F);
            int two = x >= 0xC0 && x < 0xE0 && (y & 0xC0) == 0x80 && cp >= 0x80;
            int want2 = (want1 && y >= 0x20 && y < 0x80) || two;
            if ((pm_text_check(s2, 2, NULL) == NULL) != want2)
                CHECKF(0, "bytes %02x %02x", x, y);
        }
    }
    /* Every 3-byte lead and second byte (third byte 0x80). */
    for (unsigned x = 0xE0; x < 0xF0; x++)
        for (unsigned y = 0x80; y < 0xC0; y++) {
            uint8_t s[3] = {(uint8_t)x, (uint8_t)y, 0x80};
            unsigned cp = (x & 0x0F) << 12 | (y & 0x3F) << 6;
            int want = cp >= 0x800 && !(cp >= 0xD800 && cp <= 0xDFFF);
            if ((pm_text_check(s, 3, NULL) == NULL) != want)
                CHECKF(0, "bytes %02x %02x 80", x, y);
        }
    /* Every 4-byte lead and second byte. */
    for (unsigned x = 0xF0; x < 0x100; x++)
        for (unsigned y = 0x80; y < 0xC0; y++) {
            uint8_t s[4] = {(uint8_t)x, (uint8_t)y, 0x80, 0x80};
            unsigned cp = (x & 0x07) << 18 | (y & 0x3F) << 12;
            int want = x < 0xF8 && cp >= 0x10000 && cp <= 0x10FFFF;
            if ((pm_text_check(s, 4, NULL) == NULL) != want)
                CHECKF(0, "bytes %02x %02x 80 80", x, y);
        }
}

/* ---- DUPLICATE_INPUT -------------------------------------------------- */

static int naive_duplicate(const uint8_t *ins, size_t n, size_t *second)
{
    for (size_t j = 1; j < n; j++)
        for (size_t i = 0; i < j; i++)
            if (memcmp(ins + i * 34, ins + j * 34, 34) == 0) {
                *second = j;
                return 1;
            }
    return 0;
}

/* Build a TRANSFER over `ins`, parse it, run the check. */
static int dup_check(const uint8_t *ins, size_t n, size_t *second)
{
    static txbuf b;
    pm_tx d = base_desc(TRF);
    d.inputs = ins;
    d.n_in = n;
    d.n_out = 1;
    build(&b, &d);
    pm_tx tx;
    if (!pm_tx_parse(pm_context_static, &tx, NULL, b.bytes, b.size)) {
        CHECKF(0, "duplicate-input transfer of %zu inputs does not parse", n);
        return -1;
    }
    *second = 12345;
    return pm_tx_has_duplicate_input(pm_context_static, &tx, second);
}

static void distinct_inputs(uint8_t *ins, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fill(ins + i * 34, 32, (uint8_t)(i * 13));
        ins[i * 34 + 31] = (uint8_t)(i >> 8); /* distinct for any i < 65536 */
        ins[i * 34 + 30] = (uint8_t)i;
        pm_write_u16le(ins + i * 34 + 32, (uint16_t)(i % 3));
    }
}

static void test_duplicates(const txbuf *base)
{
    static uint8_t ins[256 * 34];
    size_t second = 0;
    for (size_t n = 1; n <= 256; n = n < 16 ? n + 1 : n * 2) {
        distinct_inputs(ins, n);
        CHECKF(dup_check(ins, n, &second) == 0, "no duplicate among %zu", n);
    }
    /* Adjacent, small and large n. */
    distinct_inputs(ins, 10);
    memcpy(ins + 4 * 34, ins + 3 * 34, 34);
    CHECK(dup_check(ins, 10, &second) == 1 && second == 4);
    distinct_inputs(ins, 2);
    memcpy(ins + 34, ins, 34);
    CHECK(dup_check(ins, 2, &second) == 1 && second == 1);
    distinct_inputs(ins, 5);
    memcpy(ins + 4 * 34, ins + 3 * 34, 34);
    CHECK(dup_check(ins, 5, &second) == 1 && second == 4);
    /* Far apart. */
    distinct_inputs(ins, 256);
    memcpy(ins + 255 * 34, ins, 34);
    CHECK(dup_check(ins, 256, &second) == 1 && second == 255);
    /* Two pairs: the later element of the earliest-closing pair. */
    distinct_inputs(ins, 40);
    memcpy(ins + 30 * 34, ins + 1 * 34, 34);
    memcpy(ins + 20 * 34, ins + 2 * 34, 34);
    CHECK(dup_check(ins, 40, &second) == 1 && second == 20);
    /* Same txid, different index: 256 distinct outpoints. */
    for (size_t i = 0; i < 256; i++) {
        fill(ins + i * 34, 32, 0x77);
        pm_write_u16le(ins + i * 34 + 32, (uint16_t)(i * 257));
    }
    CHECK(dup_check(ins, 256, &second) == 0);
    CHECK(dup_check(ins, 8, &second) == 0);
    pm_write_u16le(ins + 200 * 34 + 32, 100 * 257);
    CHECK(dup_check(ins, 256, &second) == 1 && second == 200);
    /* Same index, txids differing in their last byte only. */
    for (size_t i = 0; i < 256; i++) {
        fill(ins + i * 34, 32, 0x10);
        ins[i * 34 + 31] = (uint8_t)i;
        pm_write_u16le(ins + i * 34 + 32, 9);
    }
    CHECK(dup_check(ins, 256, &second) == 0);
    /* Against the quadratic reference, inputs from a small pool. */
    uint64_t rng = 0x9E3779B97F4A7C15u;
    for (int trial = 0; trial < 2000; trial++) {
        rng = rng * 6364136223846793005u + 1442695040888963407u;
        size_t n = 1 + (size_t)(rng >> 33) % 256;
        size_t pool = 1 + (size_t)(rng >> 20) % 1024;
        for (size_t i = 0; i < n; i++) {
            rng = rng * 6364136223846793005u + 1442695040888963407u;
            size_t k = (size_t)(rng >> 33) % pool;
            fill(ins + i * 34, 32, (uint8_t)(k / 7));
            ins[i * 34 + 31] = (uint8_t)(k >> 8);
            pm_write_u16le(ins + i * 34 + 32, (uint16_t)(k % 7));
        }
        size_t want_second = 0;
        int want = naive_duplicate(ins, n, &want_second);
        int got = dup_check(ins, n, &second);
        if (got != want || (want && second != want_second))
            CHECKF(0, "trial %d n %zu: got %d (%zu), want %d (%zu)", trial, n, got, second, want,
                   want_second);
        else
            CHECK(1);
    }
    /* Other types: never a duplicate. */
    for (int b = REG; b <= ISS; b++) {
        pm_tx tx;
        CHECK(pm_tx_parse(pm_context_static, &tx, NULL, base[b].bytes, base[b].size));
        CHECK(pm_tx_has_duplicate_input(pm_context_static, &tx, NULL) == 0);
    }
}

/* ---- serialize -------------------------------------------------------- */

static void test_serialize(const txbuf *base)
{
    uint8_t buf[512];
    pm_tx d = base_desc(TRF);
    size_t need = pm_tx_serialize(pm_context_static, NULL, 0, &d);
    CHECK(need == base[TRF].size);
    memset(buf, 0xEE, sizeof buf);
    CHECK(pm_tx_serialize(pm_context_static, buf, need - 1, &d) == need);
    int untouched = 1;
    for (size_t i = 0; i < sizeof buf; i++)
        untouched &= buf[i] == 0xEE;
    CHECKF(untouched, "a short buffer is not written");
    CHECK(pm_tx_serialize(pm_context_static, buf, sizeof buf, &d) == need &&
          memcmp(buf, base[TRF].bytes, need) == 0);
    CHECK(buf[need] == 0xEE);
    /* NULL sigs: zero placeholders, same txid preimage. */
    d.sigs = NULL;
    CHECK(pm_tx_serialize(pm_context_static, buf, sizeof buf, &d) == need);
    CHECK(memcmp(buf, base[TRF].bytes, need - 128) == 0);
    int zeros = 1;
    for (size_t i = need - 128; i < need; i++)
        zeros &= buf[i] == 0;
    CHECK(zeros);
    /* What cannot be encoded. */
    pm_tx bad = base_desc(REG);
    bad.text_len = 256;
    CHECK(pm_tx_serialize(pm_context_static, NULL, 0, &bad) == 0);
    bad = base_desc(TRF);
    bad.n_out = 65536;
    CHECK(pm_tx_serialize(pm_context_static, NULL, 0, &bad) == 0);
    bad.type = 9;
    CHECK(pm_tx_serialize(pm_context_static, NULL, 0, &bad) == 0);
    /* A parsed view's `bytes` and `unsigned_size` are ignored. */
    pm_tx tx;
    CHECK(pm_tx_parse(pm_context_static, &tx, NULL, base[SER].bytes, base[SER].size));
    tx.bytes = NULL;
    tx.unsigned_size = 3;
    CHECK(pm_tx_serialize(pm_context_static, buf, sizeof buf, &tx) == base[SER].size);
    CHECK(memcmp(buf, base[SER].bytes, base[SER].size) == 0);
}

/* ---- outputs ---------------------------------------------------------- */

static void test_outputs(void)
{
    pm_output s = {0}, c = {0}, back;
    uint8_t raw[45];
    s.kind = PM_OUTPUT_STAMP;
    fill(s.owner, 32, 3);
    s.operator_id = 0x01020304;
    s.series = 0x05060708;
    s.serial = 0x090A0B0C;
    pm_output_encode(pm_context_static, raw, &s);
    CHECK(raw[0] == 1 && memcmp(raw + 1, s.owner, 32) == 0);
    CHECK(raw[33] == 4 && raw[36] == 1 && raw[37] == 8 && raw[40] == 5 && raw[41] == 0x0C &&
          raw[44] == 9);
    pm_output_decode(pm_context_static, &back, raw);
    CHECK(memcmp(&back.owner, s.owner, 32) == 0 && back.kind == 1 &&
          back.operator_id == s.operator_id && back.series == s.series &&
          back.serial == s.serial && back.amount == 0);
    c.kind = PM_OUTPUT_CREDIT;
    fill(c.owner, 32, 9);
    c.operator_id = 77;
    c.amount = 0x1122334455667788u;
    pm_output_encode(pm_context_static, raw, &c);
    CHECK(raw[0] == 2 && pm_read_u32le(raw + 33) == 77 && raw[37] == 0x88 && raw[44] == 0x11);
    pm_output_decode(pm_context_static, &back, raw);
    CHECK(back.kind == 2 && back.operator_id == 77 && back.amount == c.amount &&
          back.series == 0 && back.serial == 0 && memcmp(back.owner, c.owner, 32) == 0);
}

/* ---- blocks (§6 step 1) ----------------------------------------------- */

typedef struct {
    uint8_t *bytes;
    size_t size;
} blockbuf;

/* A block of the given records (header fields as given). */
static blockbuf make_block(uint32_t version, uint32_t tx_count, const txbuf *const *recs,
                           size_t n)
{
    blockbuf b;
    size_t size = 80;
    for (size_t i = 0; i < n; i++)
        size += 4 + recs[i]->size;
    b.bytes = malloc(size + 8);
    b.size = size;
    pm_block_header h;
    memset(&h, 0, sizeof h);
    h.version = version;
    h.height = 3;
    fill(h.prev_hash, 32, 1);
    fill(h.merkle_root, 32, 2);
    h.tx_count = tx_count;
    pm_block_header_encode(pm_context_static, b.bytes, &h);
    size_t pos = 80;
    for (size_t i = 0; i < n; i++) {
        pm_write_u32le(b.bytes + pos, (uint32_t)recs[i]->size);
        memcpy(b.bytes + pos + 4, recs[i]->bytes, recs[i]->size);
        pos += 4 + recs[i]->size;
    }
    return b;
}

static void expect_block(const char *label, const uint8_t *bytes, size_t size, const char *field,
                         size_t offset)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (size)
        memcpy(copy, bytes, size);
    pm_block blk;
    pm_parse_error err = {999999, NULL, NULL};
    int ok = pm_block_parse(pm_context_static, &blk, &err, copy, size);
    if (!field) {
        CHECKF(ok == 1, "%s: refused: %s at %zu: %s", label, err.field ? err.field : "?",
               err.offset, err.reason ? err.reason : "?");
    } else {
        CHECKF(ok == 0, "%s: accepted", label);
        CHECKF(err.field && strcmp(err.field, field) == 0, "%s: field %s, expected %s", label,
               err.field ? err.field : "(null)", field);
        CHECKF(err.offset == offset, "%s: offset %zu, expected %zu", label, err.offset, offset);
        CHECK(pm_block_parse(pm_context_static, &blk, NULL, copy, size) == 0);
    }
    free(copy);
}

static void test_blocks(const txbuf *base)
{
    const txbuf *two[2] = {&base[REG], &base[TRF]};
    blockbuf b = make_block(1, 2, two, 2);
    const size_t r1 = 80, r2 = 80 + 4 + base[REG].size; /* record offsets */

    /* The valid block and its iteration. */
    pm_block blk;
    pm_parse_error err;
    CHECK(pm_block_parse(pm_context_static, &blk, &err, b.bytes, b.size) == 1);
    CHECK(blk.bytes == b.bytes && blk.size == b.size && blk.header.version == 1 &&
          blk.header.height == 3 && blk.header.tx_count == 2);
    size_t cursor = 0, len = 0, count = 0;
    const uint8_t *tx = NULL;
    CHECK(pm_block_next_tx(pm_context_static, &tx, &len, &blk, &cursor) == 1);
    CHECK(tx == b.bytes + r1 + 4 && len == base[REG].size);
    CHECK(pm_block_next_tx(pm_context_static, &tx, &len, &blk, &cursor) == 1);
    CHECK(tx == b.bytes + r2 + 4 && len == base[TRF].size && memcmp(tx, base[TRF].bytes, len) == 0);
    CHECK(pm_block_next_tx(pm_context_static, &tx, &len, &blk, &cursor) == 0);
    CHECK(pm_block_next_tx(pm_context_static, &tx, &len, &blk, &cursor) == 0);
    cursor = 0;
    while (pm_block_next_tx(pm_context_static, &tx, &len, &blk, &cursor))
        count++;
    CHECK(count == 2);

    /* Header bytes at their §6 offsets; decode inverts encode. */
    CHECK(pm_read_u32le(b.bytes) == 1 && pm_read_u64le(b.bytes + 4) == 3);
    CHECK(b.bytes[12] == 1 && b.bytes[44] == 2 && pm_read_u32le(b.bytes + 76) == 2);
    pm_block_header h, h2;
    memset(&h, 0, sizeof h);
    h.version = 0xA1B2C3D4;
    h.height = 0x0102030405060708u;
    fill(h.prev_hash, 32, 40);
    fill(h.merkle_root, 32, 80);
    h.tx_count = 65536;
    uint8_t hb[80], hb2[80];
    pm_block_header_encode(pm_context_static, hb, &h);
    pm_block_header_decode(pm_context_static, &h2, hb);
    pm_block_header_encode(pm_context_static, hb2, &h2);
    CHECK(memcmp(hb, hb2, 80) == 0 && h2.version == h.version && h2.height == h.height &&
          h2.tx_count == h.tx_count && memcmp(h2.prev_hash, h.prev_hash, 32) == 0 &&
          memcmp(h2.merkle_root, h.merkle_root, 32) == 0);
    CHECK(hb[4] == 8 && hb[11] == 1);

    expect_block("valid block", b.bytes, b.size, NULL, 0);
    expect_block("79 bytes", b.bytes, 79, "size", 0);
    expect_block("empty", b.bytes, 0, "size", 0);
    expect_block("header only", b.bytes, 80, "records", 80);
    expect_block("records short by one byte", b.bytes, b.size - 1, "records", r2);
    expect_block("length prefix cut", b.bytes, r2 + 2, "records", r2);

    blockbuf e = make_block(1, 2, two, 2);
    e.bytes[e.size] = 0;
    expect_block("one extra byte", e.bytes, e.size + 1, "records", e.size);
    pm_write_u32le(e.bytes, 2);
    expect_block("version 2", e.bytes, e.size, "version", 0);
    pm_write_u32le(e.bytes, 0);
    expect_block("version 0", e.bytes, e.size, "version", 0);
    pm_write_u32le(e.bytes, 1);
    pm_write_u32le(e.bytes + 76, 0);
    expect_block("tx_count 0", e.bytes, e.size, "tx_count", 76);
    pm_write_u32le(e.bytes + 76, 65537);
    expect_block("tx_count 65537", e.bytes, e.size, "tx_count", 76);
    pm_write_u32le(e.bytes + 76, 3);
    expect_block("tx_count 3 for 2 records", e.bytes, e.size, "records", e.size);
    pm_write_u32le(e.bytes + 76, 1);
    expect_block("tx_count 1 for 2 records", e.bytes, e.size, "records", r2);
    pm_write_u32le(e.bytes + 76, 2);
    pm_write_u32le(e.bytes + r2, 0xFFFFFFFF);
    expect_block("record length 2^32-1", e.bytes, e.size, "records", r2);
    pm_write_u32le(e.bytes + r2, (uint32_t)base[TRF].size + 1);
    expect_block("record length one too long", e.bytes, e.size, "records", r2);
    pm_write_u32le(e.bytes + r2, (uint32_t)base[TRF].size - 1);
    expect_block("record length one too short", e.bytes, e.size, "records", e.size - 1);
    free(e.bytes);

    /* Framing only: records of any length, even ones no tx can have. */
    static txbuf empty_rec, junk_rec;
    empty_rec.size = 0;
    junk_rec.size = 3;
    memset(junk_rec.bytes, 0xFF, 3);
    const txbuf *odd[3] = {&empty_rec, &junk_rec, &empty_rec};
    blockbuf o = make_block(1, 3, odd, 3);
    expect_block("empty and junk records frame", o.bytes, o.size, NULL, 0);
    CHECK(pm_block_parse(pm_context_static, &blk, NULL, o.bytes, o.size) == 1);
    cursor = 0;
    count = 0;
    size_t lens[3] = {9, 9, 9};
    while (pm_block_next_tx(pm_context_static, &tx, &len, &blk, &cursor))
        lens[count++ % 3] = len;
    CHECK(count == 3 && lens[0] == 0 && lens[1] == 3 && lens[2] == 0);
    free(o.bytes);

    /* 65,536 empty records: the largest tx_count frames (80 + 4 * 65536). */
    size_t big_size = 80 + 4 * (size_t)PM_BLOCK_MAX_TXS;
    uint8_t *big = calloc(1, PM_BLOCK_MAX_SIZE + 1);
    memcpy(big, b.bytes, 80);
    pm_write_u32le(big + 76, PM_BLOCK_MAX_TXS);
    expect_block("65536 empty records", big, big_size, NULL, 0);
    /* Exactly 4,194,304 bytes: one record filling the rest; one more is too big. */
    pm_write_u32le(big + 76, 1);
    pm_write_u32le(big + 80, PM_BLOCK_MAX_SIZE - 84);
    expect_block("block of 4194304 bytes", big, PM_BLOCK_MAX_SIZE, NULL, 0);
    pm_write_u32le(big + 80, PM_BLOCK_MAX_SIZE - 83);
    expect_block("block of 4194305 bytes", big, PM_BLOCK_MAX_SIZE + 1, "size", 0);
    free(big);
    free(b.bytes);
}

/* ---- file headers (§2) and record framing ----------------------------- */

static void test_file_headers(void)
{
    pm_chain_params p, q;
    memset(p.network, 0, 16);
    memcpy(p.network, "upu-dpg-main", 12);
    fill(p.governance_key, 32, 0x42);
    uint8_t h[64];
    pm_file_kind kind = 0;
    pm_parse_error err;

    pm_file_header_encode(pm_context_static, h, PM_FILE_STREAM, &p);
    CHECK(memcmp(h, "POSTMKTX", 8) == 0 && pm_read_u32le(h + 8) == 1);
    CHECK(memcmp(h + 12, p.network, 16) == 0 && memcmp(h + 28, p.governance_key, 32) == 0);
    CHECK(pm_file_header_parse(pm_context_static, &kind, &q, &err, h, 60) == 1 &&
          kind == PM_FILE_STREAM);
    CHECK(memcmp(&q, &p, sizeof p) == 0);
    pm_file_header_encode(pm_context_static, h, PM_FILE_CHAIN, &p);
    CHECK(memcmp(h, "POSTMKBK", 8) == 0);
    CHECK(pm_file_header_parse(pm_context_static, &kind, &q, &err, h, 60) == 1 &&
          kind == PM_FILE_CHAIN);
    CHECK(pm_file_header_parse(pm_context_static, &kind, &q, &err, h, 64) ==
          1); /* a whole file: first 60 */

    CHECK(pm_file_header_parse(pm_context_static, &kind, &q, &err, h, 59) == 0);
    CHECK(strcmp(err.field, "size") == 0);
    CHECK(pm_file_header_parse(pm_context_static, &kind, &q, &err, h, 0) == 0);
    memcpy(h, "POSTMKXX", 8);
    CHECK(pm_file_header_parse(pm_context_static, &kind, &q, &err, h, 60) == 0);
    CHECK(strcmp(err.field, "magic") == 0 && err.offset == 0);
    memcpy(h, "postmktx", 8);
    CHECK(pm_file_header_parse(pm_context_static, &kind, &q, NULL, h, 60) == 0);
    memcpy(h, "POSTMKBK", 8);
    pm_write_u32le(h + 8, 2);
    CHECK(pm_file_header_parse(pm_context_static, &kind, &q, &err, h, 60) == 0);
    CHECK(strcmp(err.field, "version") == 0 && err.offset == 8);
    pm_write_u32le(h + 8, 0x00000101);
    CHECK(pm_file_header_parse(pm_context_static, &kind, &q, &err, h, 60) == 0);
    /* The network name is not validated. */
    pm_write_u32le(h + 8, 1);
    memset(h + 12, 0xFF, 16);
    CHECK(pm_file_header_parse(pm_context_static, &kind, &q, &err, h, 60) == 1 &&
          q.network[15] == 0xFF);

    /* Records: u32 length then bytes; a cut anywhere is truncated. */
    uint8_t f[16] = {3, 0, 0, 0, 'a', 'b', 'c', 0, 0, 0, 0, 2, 0, 0, 0, 'x'};
    size_t pos = 0, len = 0;
    const uint8_t *rec = NULL;
    CHECK(pm_record_next(f, 7, &pos, &rec, &len) == 1 && rec == f + 4 && len == 3 && pos == 7);
    CHECK(pm_record_next(f, 7, &pos, &rec, &len) == 0);
    CHECK(pm_record_next(f, 11, &pos, &rec, &len) == 1 && len == 0 && pos == 11);
    CHECK(pm_record_next(f, 16, &pos, &rec, &len) == -1 && pos == 11);
    for (size_t cut = 8; cut < 11; cut++) {
        pos = 7;
        CHECK(pm_record_next(f, cut, &pos, &rec, &len) == -1 && pos == 7);
    }
    pos = 0;
    CHECK(pm_record_next(f, 6, &pos, &rec, &len) == -1);
    uint8_t huge[4] = {0xFF, 0xFF, 0xFF, 0xFF};
    pos = 0;
    CHECK(pm_record_next(huge, 4, &pos, &rec, &len) == -1);
}

int main(void)
{
    static txbuf base[NBASE];
    init_parts();
    test_bases(base);
    test_mutations(base);
    test_size_limits();
    test_texts();
    test_duplicates(base);
    test_serialize(base);
    test_outputs();
    test_blocks(base);
    test_file_headers();
    return pm_test_finish();
}
