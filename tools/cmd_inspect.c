/*
 * cmd_inspect.c — `postmark inspect FILE [--json]`: decode a transaction
 * stream (POSTMKTX) or a chain (POSTMKBK) record by record.
 *
 * Everything in the file is shown, in file order: the header, then every
 * record with its index and byte offset. A record that does not parse is
 * shown with the reason, the field and its byte offset, and the records
 * after it are still shown; a file that ends inside a record shows that
 * partial record last. In a chain, each block's hash, its link to the
 * block before it and its merkle root (against the one computed from its
 * transactions) are shown; nothing is checked against a ledger state
 * (that is `replay`).
 *
 * With --json the output is JSON Lines: one object for the header, then
 * one per record (a block's transactions are nested in it); every object
 * carries "raw", the record's bytes in hex (without the length prefix),
 * beside the decoded fields, which are named as in protocol §3 and §6 so
 * that re-encoding them gives "raw" back. The objects are built with
 * jansson (cliutil.h's helpers: names as UTF-8, integers past int64 still
 * exact numbers).
 *
 * Exit status: 0 when the header is valid and the file could be read to
 * its end, whatever the records hold (they are the data being inspected);
 * 1 when the file cannot be read or its header is bad; 2 usage error.
 */
#include "cliutil.h"
#include "commands.h"

#include "bytes.h"
#include "recfile.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char inspect_usage[] =
    "usage: postmark inspect FILE [--json]\n"
    "\n"
    "Decode a transaction stream (POSTMKTX) or a block chain (POSTMKBK) record by\n"
    "record: the header (kind, version, network, governance key, chain id), every\n"
    "transaction (type, txid, fields, signatures) and every block (height, hash,\n"
    "previous hash and whether it links, merkle root and whether it matches the\n"
    "transactions, tx count, transactions). Nothing is validated against a ledger\n"
    "state: use `postmark replay` for that.\n"
    "\n"
    "A record that does not parse is shown with its reason, field and byte offset,\n"
    "and the rest of the file is still shown; a partial last record is reported.\n"
    "\n"
    "  --json   JSON Lines on stdout: one object for the header, then one per\n"
    "           record (a block's transactions nested in it), each with \"raw\",\n"
    "           the record's bytes in hex, beside the decoded fields\n"
    "  --help   this text\n"
    "\n"
    "Exit status: 0 the header is valid and the file was read to its end (bad\n"
    "records included: they are reported, on stdout and on stderr); 1 the file\n"
    "cannot be read or its header is bad; 2 usage error.\n";

/* Bad records: one stderr line each, up to this many. */
#define MAX_ERROR_LINES 20

typedef struct {
    const char *path;
    int json;
    FILE *out;
    json_t *obj;        /* --json: the object being filled */
    const pm_context *ctx;
    uint8_t chain_id[32];
    char *hexbuf;       /* scratch for hex of up to a whole block */
    size_t hexcap;
    /* chain link tracking */
    int have_prev;
    uint64_t prev_height;
    uint8_t prev_hash[32];
    /* counts */
    uint64_t records, txs, bad;
    int truncated;
} inspector;

/* ---------------------------------------------------------------------- */
/* Output helpers.                                                         */
/* ---------------------------------------------------------------------- */

static const char *hex(inspector *in, const uint8_t *b, size_t n)
{
    if (2 * n + 1 > in->hexcap) {
        size_t cap = 2 * n + 1;
        char *p = realloc(in->hexbuf, cap);
        if (!p)
            return NULL;
        in->hexbuf = p;
        in->hexcap = cap;
    }
    return pm_cli_hex(in->hexbuf, b, n);
}

/* --json: a member of the object being filled. */
static void put(inspector *in, const char *name, json_t *value)
{
    json_object_set_new(in->obj, name, value);
}

static void put_key(inspector *in, const char *name, const uint8_t *b, size_t n)
{
    put(in, name, pm_cli_json_hex(b, n));
}

/* The members "reason", "field", "detail", "offset", "file_offset" of an
 * error object. */
static json_t *error_json(const char *reason, const char *field, const char *detail,
                          uint64_t offset, uint64_t file_offset)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:o}", "reason", reason, "field", field, "detail",
                     detail, "offset", pm_cli_json_u64(offset), "file_offset",
                     pm_cli_json_u64(file_offset));
}

/* A byte string as text: printable ASCII as is, anything else escaped, so
 * the output is text whatever the bytes. In JSON each byte is the code
 * point of the same value (what "\u00XX" said), valid UTF-8 whatever the
 * bytes. */
static void put_ascii(FILE *f, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            fputc(c, f);
        else
            fprintf(f, "\\x%02x", c);
    }
}

static json_t *json_ascii(const uint8_t *s, size_t n)
{
    char *u = malloc(2 * n + 1);
    if (!u)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80) {
            u[o++] = (char)s[i];
        } else { /* U+0080..U+00FF in UTF-8 */
            u[o++] = (char)(0xc0 | s[i] >> 6);
            u[o++] = (char)(0x80 | (s[i] & 0x3f));
        }
    }
    json_t *j = json_stringn(u, o);
    free(u);
    return j;
}

/* §1 text (valid UTF-8, no control byte: checked by the parser) shown as
 * is. */
static void put_text(FILE *f, const uint8_t *s, size_t n)
{
    fputc('"', f);
    fwrite(s, 1, n, f);
    fputc('"', f);
}

static void report_bad(inspector *in, uint64_t record, uint64_t offset, const char *what)
{
    in->bad++;
    if (in->bad <= MAX_ERROR_LINES)
        pm_cli_note("inspect", "%s: record %" PRIu64 " at byte %" PRIu64 ": %s",
                in->path, record, offset, what);
}

static const char *type_name(uint8_t type)
{
    switch (type) {
    case PM_TX_REGISTER: return "REGISTER";
    case PM_TX_SERIES: return "SERIES";
    case PM_TX_ISSUE: return "ISSUE";
    case PM_TX_TRANSFER: return "TRANSFER";
    }
    return "UNKNOWN";
}

/* ---------------------------------------------------------------------- */
/* Transactions.                                                           */
/* ---------------------------------------------------------------------- */

static json_t *output_json(const pm_output *o)
{
    if (o->kind == PM_OUTPUT_STAMP)
        return json_pack("{s:s, s:o, s:I, s:I, s:I}", "kind", "STAMP", "owner",
                         pm_cli_json_hex(o->owner, 32), "operator", (json_int_t)o->operator_id,
                         "series", (json_int_t)o->series, "serial", (json_int_t)o->serial);
    return json_pack("{s:s, s:o, s:I, s:o}", "kind", "CREDIT", "owner",
                     pm_cli_json_hex(o->owner, 32), "issuer", (json_int_t)o->operator_id, "amount",
                     pm_cli_json_u64(o->amount));
}

static void put_output_text(inspector *in, const char *indent, size_t i, const pm_output *o)
{
    FILE *f = in->out;
    if (o->kind == PM_OUTPUT_STAMP)
        fprintf(f, "%soutput %zu  STAMP %" PRIu32 ":%" PRIu32 ":%" PRIu32 "  owner %s\n", indent,
                i, o->operator_id, o->series, o->serial, hex(in, o->owner, 32));
    else
        fprintf(f, "%soutput %zu  CREDIT issuer %" PRIu32 " amount %" PRIu64 "  owner %s\n",
                indent, i, o->operator_id, o->amount, hex(in, o->owner, 32));
}

/* The fields of a parsed transaction: members of in->obj, or text lines. */
static void put_tx_fields(inspector *in, const pm_tx *tx, const char *indent)
{
    FILE *f = in->out;
    uint8_t txid[32];
    int have_txid = pm_tx_txid(in->ctx, txid, tx);
    if (in->json) {
        if (have_txid)
            put_key(in, "txid", txid, 32);
        put(in, "version", json_integer(tx->version));
        put(in, "type", json_string(type_name(tx->type)));
    } else {
        fprintf(f, "%s%s  txid %s\n", indent, type_name(tx->type),
                have_txid ? hex(in, txid, 32) : "?");
    }
    switch (tx->type) {
    case PM_TX_REGISTER:
        if (in->json) {
            put(in, "gov_seq", pm_cli_json_u64(tx->seq));
            put(in, "operator", json_integer(tx->operator_id));
            put_key(in, "key", tx->key, 32);
            put(in, "name", pm_cli_json_text((const char *)tx->text, tx->text_len));
        } else {
            fprintf(f, "%sgov_seq %" PRIu64 "  operator %" PRIu32 "\n", indent, tx->seq,
                    tx->operator_id);
            fprintf(f, "%skey %s\n%sname ", indent, hex(in, tx->key, 32), indent);
            put_text(f, tx->text, tx->text_len);
            fputc('\n', f);
        }
        break;
    case PM_TX_SERIES:
        if (in->json) {
            put(in, "op_seq", pm_cli_json_u64(tx->seq));
            put(in, "operator", json_integer(tx->operator_id));
            put(in, "series", json_integer(tx->series));
            put(in, "max_supply", json_integer(tx->max_supply));
            put(in, "face_value", pm_cli_json_u64(tx->face_value));
            put_key(in, "metadata", tx->metadata, 32);
            put(in, "title", pm_cli_json_text((const char *)tx->text, tx->text_len));
        } else {
            fprintf(f,
                    "%sop_seq %" PRIu64 "  operator %" PRIu32 "  series %" PRIu32
                    "  max_supply %" PRIu32 "  face_value %" PRIu64 "\n",
                    indent, tx->seq, tx->operator_id, tx->series, tx->max_supply, tx->face_value);
            fprintf(f, "%smetadata %s\n%stitle ", indent, hex(in, tx->metadata, 32), indent);
            put_text(f, tx->text, tx->text_len);
            fputc('\n', f);
        }
        break;
    case PM_TX_ISSUE:
        if (in->json) {
            put(in, "op_seq", pm_cli_json_u64(tx->seq));
            put(in, "operator", json_integer(tx->operator_id));
        } else
            fprintf(f, "%sop_seq %" PRIu64 "  operator %" PRIu32 "  outputs %zu\n", indent,
                    tx->seq, tx->operator_id, tx->n_out);
        break;
    case PM_TX_TRANSFER:
        if (in->json) {
            json_t *inputs = json_array();
            for (size_t i = 0; i < tx->n_in; i++) {
                pm_outpoint op;
                pm_tx_input(pm_context_static, &op, tx, i);
                json_array_append_new(inputs, json_pack("{s:o, s:I}", "txid",
                                                        pm_cli_json_hex(op.txid, 32), "index",
                                                        (json_int_t)op.index));
            }
            put(in, "inputs", inputs);
        } else {
            fprintf(f, "%sinputs %zu  outputs %zu\n", indent, tx->n_in, tx->n_out);
            for (size_t i = 0; i < tx->n_in; i++) {
                pm_outpoint op;
                pm_tx_input(pm_context_static, &op, tx, i);
                fprintf(f, "%sinput %zu  %s:%u\n", indent, i, hex(in, op.txid, 32), op.index);
            }
        }
        break;
    }
    if (tx->type == PM_TX_ISSUE || tx->type == PM_TX_TRANSFER) {
        json_t *outputs = in->json ? json_array() : NULL;
        for (size_t i = 0; i < tx->n_out; i++) {
            pm_output o;
            pm_tx_output(pm_context_static, &o, tx, i);
            if (in->json)
                json_array_append_new(outputs, output_json(&o));
            else
                put_output_text(in, indent, i, &o);
        }
        if (in->json)
            put(in, "outputs", outputs);
    }
    json_t *sigs = in->json ? json_array() : NULL;
    for (size_t i = 0; i < tx->n_sigs; i++) {
        const uint8_t *sig = tx->sigs + i * PM_SIG_SIZE;
        if (in->json)
            json_array_append_new(sigs, pm_cli_json_hex(sig, PM_SIG_SIZE));
        else
            fprintf(f, "%ssig %zu  %s\n", indent, i, hex(in, sig, PM_SIG_SIZE));
    }
    if (in->json)
        put(in, "sigs", sigs);
}

/* One transaction: in a stream (record index, top level: printed) or in a
 * block (tx index, nested: its object is returned, for the block's).
 * `file_offset` is the offset of its first byte. */
static json_t *inspect_tx(inspector *in, const uint8_t *bytes, size_t size, uint64_t index,
                          uint64_t file_offset, int nested, uint64_t block_index)
{
    FILE *f = in->out;
    json_t *outer = in->obj;
    pm_tx tx;
    pm_parse_error perr = {0, NULL, NULL};
    int ok = pm_tx_parse(pm_context_static, &tx, &perr, bytes, size);
    in->txs++;
    const char *indent = nested ? "    " : "  ";
    if (in->json) {
        in->obj = json_object();
        if (!nested)
            put(in, "record", json_string("tx"));
        put(in, "index", pm_cli_json_u64(index));
        put(in, "offset", pm_cli_json_u64(nested ? file_offset : file_offset - 4));
        put(in, "length", json_integer((json_int_t)size));
    } else {
        fprintf(f, "%stx %" PRIu64 "  offset %" PRIu64 "  length %zu\n", nested ? "  " : "",
                index, nested ? file_offset : file_offset - 4, size);
    }
    if (ok) {
        put_tx_fields(in, &tx, indent);
    } else {
        const char *field = perr.field ? perr.field : "tx";
        const char *why = perr.reason ? perr.reason : "malformed";
        if (in->json) {
            put(in, "error", error_json("MALFORMED", field, why, perr.offset,
                                        file_offset + perr.offset));
        } else {
            fprintf(f, "%sMALFORMED: %s: %s (at byte %zu of the transaction, %" PRIu64
                       " of the file)\n",
                    indent, field, why, perr.offset, file_offset + perr.offset);
        }
        char what[200];
        if (nested)
            snprintf(what, sizeof what, "block tx %" PRIu64 ": MALFORMED: %s: %s at byte %" PRIu64,
                     index, field, why, file_offset + perr.offset);
        else
            snprintf(what, sizeof what, "MALFORMED: %s: %s at byte %" PRIu64, field, why,
                     file_offset + perr.offset);
        report_bad(in, nested ? block_index : index, nested ? file_offset : file_offset - 4, what);
    }
    if (!in->json)
        return NULL;
    put_key(in, "raw", bytes, size);
    json_t *o = in->obj;
    in->obj = outer;
    if (nested)
        return o;
    pm_cli_json_print(f, o, 1);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Blocks.                                                                 */
/* ---------------------------------------------------------------------- */

/* The transactions of a block whose framing failed, as far as their
 * length prefixes go. Returns how many were shown. */
static size_t inspect_framed_prefix(inspector *in, json_t *txs, const uint8_t *bytes,
                                    size_t size, uint64_t offset, uint64_t block_index)
{
    size_t pos = PM_BLOCK_HEADER_SIZE, n = 0;
    /* Each record: a 4-byte length, then that many bytes, all inside. */
    while (pos < size && size - pos >= 4 && tool_le32(bytes + pos) <= size - pos - 4) {
        const uint8_t *rec = bytes + pos + 4;
        size_t len = tool_le32(bytes + pos);
        pos += 4 + len;
        json_t *tx = inspect_tx(in, rec, len, n, offset + 4 + (uint64_t)(rec - bytes), 1,
                                block_index);
        if (txs)
            json_array_append_new(txs, tx);
        n++;
    }
    return n;
}

static void inspect_block(inspector *in, const pm_recfile_record *r)
{
    FILE *f = in->out;
    const uint8_t *bytes = r->bytes;
    size_t size = r->size;
    int json = in->json;
    if (json) {
        in->obj = json_object();
        put(in, "record", json_string("block"));
        put(in, "index", pm_cli_json_u64(r->index));
        put(in, "offset", pm_cli_json_u64(r->offset));
        put(in, "length", json_integer((json_int_t)size));
    } else
        fprintf(f, "block %" PRIu64 "  offset %" PRIu64 "  length %zu\n", r->index, r->offset,
                size);

    pm_block blk;
    pm_parse_error perr = {0, NULL, NULL};
    int framed = pm_block_parse(pm_context_static, &blk, &perr, bytes, size);
    int have_header = size >= PM_BLOCK_HEADER_SIZE;
    uint8_t hash[32];
    pm_block_header h;
    memset(&h, 0, sizeof h);
    if (have_header) {
        pm_block_header_decode(pm_context_static, &h, bytes);
        int have_hash = pm_block_hash(in->ctx, hash, bytes);
        const uint8_t *want_prev = in->have_prev ? in->prev_hash : in->chain_id;
        uint64_t want_height = in->have_prev ? in->prev_height + 1 : 0;
        int link_ok = memcmp(h.prev_hash, want_prev, 32) == 0 && h.height == want_height;
        if (json) {
            put(in, "version", json_integer(h.version));
            put(in, "height", pm_cli_json_u64(h.height));
            if (have_hash)
                put_key(in, "hash", hash, 32);
            put_key(in, "prev_hash", h.prev_hash, 32);
            put(in, "link_ok", json_boolean(link_ok));
            put_key(in, "merkle_root", h.merkle_root, 32);
            put(in, "tx_count", json_integer(h.tx_count));
        } else {
            fprintf(f, "  version %" PRIu32 "  height %" PRIu64 "  tx_count %" PRIu32 "\n",
                    h.version, h.height, h.tx_count);
            fprintf(f, "  hash        %s\n", have_hash ? hex(in, hash, 32) : "?");
            fprintf(f, "  prev_hash   %s  (%s)\n", hex(in, h.prev_hash, 32),
                    link_ok ? "links to the block before"
                            : "does NOT link: height or previous hash differs");
        }
        if (!link_ok) {
            char what[200];
            if (h.height != want_height)
                snprintf(what, sizeof what, "BAD_LINK: height %" PRIu64 ", %" PRIu64 " expected",
                         h.height, want_height);
            else
                snprintf(what, sizeof what, "BAD_LINK: prev_hash is not the %s",
                         in->have_prev ? "hash of the block before" : "chain id");
            report_bad(in, r->index, r->offset, what);
        }
        if (have_hash) {
            in->have_prev = 1;
            in->prev_height = h.height;
            memcpy(in->prev_hash, hash, 32);
        }
    }

    if (!framed) {
        const char *field = perr.field ? perr.field : "block";
        const char *why = perr.reason ? perr.reason : "malformed";
        if (json)
            put(in, "error", error_json("BLOCK_MALFORMED", field, why, perr.offset,
                                        r->offset + 4 + perr.offset));
        else
            fprintf(f, "  BLOCK_MALFORMED: %s: %s (at byte %zu of the block, %" PRIu64
                       " of the file)\n",
                    field, why, perr.offset, r->offset + 4 + perr.offset);
        char what[200];
        snprintf(what, sizeof what, "BLOCK_MALFORMED: %s: %s at byte %" PRIu64, field, why,
                 r->offset + 4 + perr.offset);
        report_bad(in, r->index, r->offset, what);
        if (have_header) {
            json_t *txs = json ? json_array() : NULL;
            inspect_framed_prefix(in, txs, bytes, size, r->offset, r->index);
            if (json)
                put(in, "txs", txs);
        }
    } else {
        /* Every transaction, and the merkle root when all of them parse. */
        uint8_t(*leaves)[32] = malloc((size_t)blk.header.tx_count * sizeof *leaves);
        int all_parse = leaves != NULL;
        const uint8_t *txb;
        size_t txsize, cursor = 0, i = 0;
        if (!json)
            fprintf(f, "  merkle_root %s", hex(in, h.merkle_root, 32));
        /* The merkle verdict goes before the transactions in the text, so
         * compute it first. */
        while (pm_block_next_tx(pm_context_static, &txb, &txsize, &blk, &cursor)) {
            pm_tx tx;
            uint8_t txid[32];
            if (all_parse && pm_tx_parse(pm_context_static, &tx, NULL, txb, txsize) &&
                pm_tx_txid(in->ctx, txid, &tx) && pm_tx_leaf(in->ctx, leaves[i], &tx, txid))
                i++;
            else
                all_parse = 0;
        }
        uint8_t root[32];
        int have_root = all_parse && pm_merkle_root(in->ctx, root, (const uint8_t(*)[32])leaves,
                                                    blk.header.tx_count);
        free(leaves);
        int merkle_ok = have_root && memcmp(root, h.merkle_root, 32) == 0;
        if (json) {
            put(in, "merkle_computed", have_root ? pm_cli_json_hex(root, 32) : json_null());
            put(in, "merkle_ok", have_root ? json_boolean(merkle_ok) : json_null());
        } else {
            fprintf(f, "  (%s)\n",
                    !have_root ? "not computed: a transaction does not parse"
                    : merkle_ok ? "matches the transactions"
                                : "does NOT match the transactions");
        }
        if (have_root && !merkle_ok) {
            char what[200];
            snprintf(what, sizeof what, "BAD_MERKLE: the root computed is %s",
                     hex(in, root, 32));
            report_bad(in, r->index, r->offset, what);
        }
        json_t *txs = json ? json_array() : NULL;
        cursor = 0;
        i = 0;
        while (pm_block_next_tx(pm_context_static, &txb, &txsize, &blk, &cursor)) {
            json_t *tx = inspect_tx(in, txb, txsize, i, r->offset + 4 + (uint64_t)(txb - bytes),
                                    1, r->index);
            if (json)
                json_array_append_new(txs, tx);
            i++;
        }
        if (json)
            put(in, "txs", txs);
    }
    if (json) {
        put_key(in, "raw", bytes, size);
        pm_cli_json_print(f, in->obj, 1);
        in->obj = NULL;
    }
}

/* ---------------------------------------------------------------------- */
/* Records that are not whole.                                             */
/* ---------------------------------------------------------------------- */

static void inspect_truncated(inspector *in, const pm_recfile_record *r, int chain)
{
    FILE *f = in->out;
    const char *reason = chain ? "TRUNCATED" : "MALFORMED";
    char what[200];
    if (r->has_length)
        snprintf(what, sizeof what, "%s: the file ends inside the record (%zu of %" PRIu32
                                    " bytes present)",
                 reason, r->size, r->length);
    else
        snprintf(what, sizeof what, "%s: the file ends inside the length prefix (%zu of 4 bytes)",
                 reason, r->size);
    in->truncated = 1;
    if (in->json) {
        pm_cli_json_print(
            f,
            json_pack("{s:s, s:o, s:o, s:o, s:I, s:o, s:o}", "record", "truncated", "index",
                      pm_cli_json_u64(r->index), "offset", pm_cli_json_u64(r->offset), "length",
                      r->has_length ? json_integer(r->length) : json_null(), "available",
                      (json_int_t)r->size, "error",
                      error_json(reason, r->has_length ? "record" : "length",
                                 "the file ends inside the record", 0, r->offset),
                      "raw", r->bytes ? pm_cli_json_hex(r->bytes, r->size) : json_null()),
            1);
    } else {
        fprintf(f, "%s %" PRIu64 "  offset %" PRIu64 "  %s\n", chain ? "block" : "tx", r->index,
                r->offset, what);
    }
    report_bad(in, r->index, r->offset, what);
}

/* A record longer than the reader keeps (over 4 MiB): framed, not shown. */
static void inspect_oversize(inspector *in, const pm_recfile_record *r, int chain)
{
    FILE *f = in->out;
    char what[200];
    snprintf(what, sizeof what, "%s: record of %" PRIu32 " bytes, over the limit of %d",
             chain ? "BLOCK_MALFORMED" : "MALFORMED", r->length,
             chain ? PM_BLOCK_MAX_SIZE : PM_TX_MAX_SIZE);
    if (in->json)
        pm_cli_json_print(
            f,
            json_pack("{s:s, s:o, s:o, s:I, s:o, s:n}", "record", chain ? "block" : "tx", "index",
                      pm_cli_json_u64(r->index), "offset", pm_cli_json_u64(r->offset), "length",
                      (json_int_t)r->length, "error",
                      error_json(chain ? "BLOCK_MALFORMED" : "MALFORMED", chain ? "block" : "size",
                                 "size out of range", 0, r->offset),
                      "raw"),
            1);
    else
        fprintf(f, "%s %" PRIu64 "  offset %" PRIu64 "  %s (bytes not shown)\n",
                chain ? "block" : "tx", r->index, r->offset, what);
    if (!chain)
        in->txs++;
    report_bad(in, r->index, r->offset, what);
}

/* ---------------------------------------------------------------------- */
/* The header, and the command.                                            */
/* ---------------------------------------------------------------------- */

static void inspect_header(inspector *in, const pm_recfile_header *h)
{
    FILE *f = in->out;
    size_t nlen = PM_NETWORK_SIZE;
    if (h->valid) {
        while (nlen && h->params.network[nlen - 1] == 0)
            nlen--;
    }
    const char *kind = h->valid ? (h->kind == PM_FILE_CHAIN ? "chain" : "stream") : NULL;
    const char *magic = h->valid ? (h->kind == PM_FILE_CHAIN ? "POSTMKBK" : "POSTMKTX") : NULL;
    if (in->json) {
        in->obj = json_object();
        put(in, "record", json_string("header"));
        put(in, "offset", json_integer(0));
        put(in, "length", json_integer((json_int_t)h->raw_size));
        if (h->valid) {
            put(in, "magic", json_string(magic));
            put(in, "kind", json_string(kind));
            put(in, "version", json_integer(tool_le32(h->raw + 8)));
            put(in, "network", json_ascii(h->params.network, nlen));
            put_key(in, "network_raw", h->params.network, PM_NETWORK_SIZE);
            put_key(in, "governance_key", h->params.governance_key, 32);
            put_key(in, "chain_id", in->chain_id, 32);
        } else {
            put(in, "error", error_json("BAD_HEADER", h->error.field ? h->error.field : "header",
                                        h->error.reason ? h->error.reason : "invalid",
                                        h->error.offset, h->error.offset));
        }
        put_key(in, "raw", h->raw, h->raw_size);
        pm_cli_json_print(f, in->obj, 1);
        in->obj = NULL;
    } else if (h->valid) {
        fprintf(f, "%s: %s (%s), version %" PRIu32 "\n", in->path, magic,
                h->kind == PM_FILE_CHAIN ? "block chain" : "transaction stream",
                tool_le32(h->raw + 8));
        fputs("  network         ", f);
        put_ascii(f, h->params.network, nlen);
        fprintf(f, "\n  governance_key  %s\n", hex(in, h->params.governance_key, 32));
        fprintf(f, "  chain_id        %s\n", hex(in, in->chain_id, 32));
    } else {
        fprintf(f, "%s: BAD_HEADER: %s: %s (at byte %zu; %zu header bytes present)\n", in->path,
                h->error.field ? h->error.field : "header",
                h->error.reason ? h->error.reason : "invalid", h->error.offset, h->raw_size);
    }
}

int pm_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0, only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_positional && !strcmp(a, "--")) {
            only_positional = 1;
        } else if (!only_positional && (!strcmp(a, "--help") || !strcmp(a, "-h"))) {
            fputs(inspect_usage, stdout);
            return PM_EXIT_OK;
        } else if (!only_positional && !strcmp(a, "--json")) {
            json = 1;
        } else if (!only_positional && a[0] == '-' && a[1]) {
            pm_cli_error("inspect", "unknown option '%s' (see postmark inspect --help)", a);
            return PM_EXIT_USAGE;
        } else if (!path) {
            path = a;
        } else {
            pm_cli_error("inspect", "unexpected argument '%s' (one FILE)", a);
            return PM_EXIT_USAGE;
        }
    }
    if (!path) {
        pm_cli_error("inspect", "missing FILE (see postmark inspect --help)");
        return PM_EXIT_USAGE;
    }

    pm_context *ctx = pm_context_create();
    if (!ctx) {
        pm_cli_error("inspect", "cannot create the context (out of memory)");
        return PM_EXIT_INVALID;
    }
    inspector in;
    memset(&in, 0, sizeof in);
    in.path = path;
    in.json = json;
    in.out = stdout;
    in.ctx = ctx;

    int rc = PM_EXIT_OK;
    tool_fault fault;
    pm_recfile *rf = NULL;
    pm_recfile_header hdr;
    pm_status st = recfile_open(&rf, &hdr, &fault, path, PM_BLOCK_MAX_SIZE);
    if (st == PM_OK && hdr.valid && !pm_chain_id(ctx, in.chain_id, &hdr.params))
        st = PM_ERR_NOMEM;
    if (st != PM_OK) {
        pm_cli_error("inspect", "%s", st == PM_ERR_IO ? fault.message : pm_status_text(st));
        rc = PM_EXIT_INVALID;
        goto done;
    }
    inspect_header(&in, &hdr);
    if (!hdr.valid) {
        pm_cli_error("inspect", "%s: record 0 at byte %zu: BAD_HEADER: %s: %s", path,
                     hdr.error.offset, hdr.error.field ? hdr.error.field : "header",
                     hdr.error.reason ? hdr.error.reason : "invalid");
        rc = PM_EXIT_INVALID;
        goto done;
    }
    int chain = hdr.kind == PM_FILE_CHAIN;
    pm_recfile_record r;
    int got;
    while ((got = recfile_next(rf, &r, &fault)) == 1) {
        in.records++;
        if (r.truncated)
            inspect_truncated(&in, &r, chain);
        else if (!r.bytes)
            inspect_oversize(&in, &r, chain);
        else if (chain)
            inspect_block(&in, &r);
        else
            inspect_tx(&in, r.bytes, r.size, r.index, r.offset + 4, 0, 0);
        if (ferror(stdout))
            break;
    }
    if (got < 0) {
        tool_fault_print("inspect", path, &fault);
        rc = PM_EXIT_INVALID;
    }
    if (in.bad > MAX_ERROR_LINES)
        pm_cli_note("inspect", "%s: ... %" PRIu64 " bad records in all", path,
                in.bad);
    fprintf(stderr, "%s: %" PRIu64 " %s, %" PRIu64 " transactions, %" PRIu64 " problem%s%s\n",
            path, in.records, chain ? "blocks" : "records", in.txs, in.bad, in.bad == 1 ? "" : "s",
            in.truncated ? " (the last record is truncated)" : "");

done:
    if (fflush(stdout) != 0 || ferror(stdout)) {
        pm_cli_error("inspect", "cannot write the output");
        rc = PM_EXIT_INVALID;
    }
    pm_recfile_close(rf);
    free(in.hexbuf);
    pm_context_destroy(ctx);
    return rc;
}
