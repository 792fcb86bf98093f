/*
 * test_wire_vectors.c — the wire format and the protocol hashes against the
 * independent vectors in ../shared/vectors:
 *  - chain.txt: chain_id of the s1 header, digest of the empty UTXO set;
 *  - merkle.txt: merkle roots of n test leaves;
 *  - hashes.txt: txid, sighash and leaf of every record of s1.pmtx, and the
 *    records that must not parse;
 *  - every .pmtx and .pmbk file: every record that parses re-serializes to
 *    the same bytes, every block header re-encodes to the same 80 bytes;
 *  - every .pmbk file: the first failure of §6 steps 1-4 (framing, link,
 *    transaction parse, merkle root), or of the file framing (TRUNCATED),
 *    is the one its .json names when that reason is one of those; when the
 *    .json names a stateful reason (or none), no block up to the one it
 *    names fails steps 1-4;
 *  - DUPLICATE_INPUT (§5 step 2, stateless): the records of s1.pmtx with
 *    two inputs naming one outpoint are exactly those s1.b32.rejects.csv
 *    rejects so, and s1.bad.duplicate_input's first one is where its .json
 *    says.
 */
#include "postmark.h"
#include "testutil.h"
#include "postmark_internal.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static pm_context *ctx;
static uint8_t s1_chain_id[32];

/* ---- small helpers ---------------------------------------------------- */

static int hex_equal(const uint8_t *bytes, const char *hex)
{
    char buf[65];
    return strlen(hex) >= 64 && strncmp(pm_hex(buf, bytes, 32), hex, 64) == 0;
}

/* Value of "key" in a flat JSON object: copies the raw token (string
 * without quotes) into out. Returns 1 when present. */
static int json_field(char *out, size_t cap, const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (!p)
        return 0;
    p = strchr(p + strlen(pat), ':');
    if (!p)
        return 0;
    p++;
    while (*p == ' ' || *p == '\n' || *p == '\t')
        p++;
    int quoted = *p == '"';
    if (quoted)
        p++;
    size_t n = 0;
    while (p[n] && (quoted ? p[n] != '"' : (p[n] != ',' && p[n] != '\n' && p[n] != '}')) &&
           n + 1 < cap)
        n++;
    memcpy(out, p, n);
    out[n] = 0;
    return 1;
}

/* Re-serialize a parsed transaction and compare with its bytes. */
static int roundtrip_tx(const pm_tx *tx)
{
    size_t need = pm_tx_serialize(pm_context_static, NULL, 0, tx);
    if (need != tx->size)
        return 0;
    uint8_t *buf = malloc(need);
    size_t got = pm_tx_serialize(pm_context_static, buf, need, tx);
    int ok = got == need && memcmp(buf, tx->bytes, need) == 0;
    free(buf);
    return ok;
}

/* ---- chain.txt -------------------------------------------------------- */

static void test_chain_txt(void)
{
    size_t n = 0, tn = 0;
    char *txt = (char *)pm_read_file(pm_vector_path("chain.txt"), &n);
    uint8_t *s1 = pm_read_file(pm_vector_path("s1.pmtx"), &tn);
    if (!txt || !s1)
        return;
    txt = realloc(txt, n + 1);
    txt[n] = 0;
    pm_file_kind kind;
    pm_chain_params params;
    pm_parse_error err;
    CHECK(pm_file_header_parse(pm_context_static, &kind, &params, &err, s1, tn) == 1);
    CHECK(kind == PM_FILE_STREAM);
    CHECK(memcmp(params.network, "upu-dpg-test\0\0\0\0", 16) == 0);
    uint8_t hdr[60];
    pm_file_header_encode(pm_context_static, hdr, PM_FILE_STREAM, &params);
    CHECK(memcmp(hdr, s1, 60) == 0);

    int seen_chain = 0, seen_empty = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        char name[64], hex[65];
        if (sscanf(line, "%63s %64s", name, hex) != 2)
            continue;
        if (strcmp(name, "chain_id") == 0) {
            CHECK(pm_chain_id(ctx, s1_chain_id, &params) == 1);
            CHECKF(hex_equal(s1_chain_id, hex), "chain_id");
            seen_chain = 1;
        } else if (strcmp(name, "utxo_digest_of_empty_set") == 0) {
            uint8_t d[32];
            CHECK(pm_tagged_hash(ctx, d, "postmark/utxo", NULL, 0) == 1);
            CHECKF(hex_equal(d, hex), "empty utxo digest");
            seen_empty = 1;
        }
    }
    CHECK(seen_chain && seen_empty);
    free(txt);
    free(s1);
}

/* ---- merkle.txt ------------------------------------------------------- */

static void test_merkle_txt(void)
{
    size_t n = 0;
    char *txt = (char *)pm_read_file(pm_vector_path("merkle.txt"), &n);
    if (!txt)
        return;
    txt = realloc(txt, n + 1);
    txt[n] = 0;
    int lines = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned count;
        char hex[65];
        if (line[0] == '#' || sscanf(line, "%u %64s", &count, hex) != 2)
            continue;
        uint8_t(*leaves)[32] = malloc(count * sizeof *leaves);
        for (unsigned i = 0; i < count; i++) {
            uint8_t le[4];
            pm_write_u32le(le, i);
            CHECK(pm_tagged_hash(ctx, leaves[i], "postmark/test", le, 4) == 1);
        }
        uint8_t root[32];
        CHECK(pm_merkle_root(ctx, root, (const uint8_t(*)[32])leaves, count) == 1);
        CHECKF(hex_equal(root, hex), "merkle root of %u leaves", count);
        free(leaves);
        lines++;
    }
    CHECKF(lines >= 10, "merkle.txt has %d roots", lines);
    free(txt);
}

/* ---- hashes.txt ------------------------------------------------------- */

static void test_hashes_txt(void)
{
    size_t n = 0, tn = 0;
    char *txt = (char *)pm_read_file(pm_vector_path("hashes.txt"), &n);
    uint8_t *s1 = pm_read_file(pm_vector_path("s1.pmtx"), &tn);
    if (!txt || !s1)
        return;
    txt = realloc(txt, n + 1);
    txt[n] = 0;

    size_t pos = 60, index = 0, malformed = 0;
    char *save = NULL;
    for (char *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        size_t want_index;
        char a[80] = "", b[80] = "", c[80] = "";
        int fields = sscanf(line, "%zu %79s %79s %79s", &want_index, a, b, c);
        CHECKF(fields == 2 || fields == 4, "line: %s", line);
        CHECKF(want_index == index, "hashes.txt index %zu, expected %zu", want_index, index);
        const uint8_t *rec;
        size_t len;
        int r = pm_record_next(s1, tn, &pos, &rec, &len);
        CHECKF(r == 1, "record %zu of s1.pmtx missing", index);
        if (r != 1)
            break;
        pm_tx tx;
        pm_parse_error err = {0, NULL, NULL};
        int ok = pm_tx_parse(pm_context_static, &tx, &err, rec, len);
        if (strcmp(a, "MALFORMED") == 0) {
            CHECKF(!ok, "record %zu parses but should be MALFORMED", index);
            CHECKF(err.field && err.reason && err.offset <= len, "record %zu error", index);
            if (err.field)
                printf("s1.pmtx record %zu MALFORMED: %s at %zu: %s\n", index, err.field,
                       err.offset, err.reason);
            malformed++;
        } else {
            CHECKF(ok, "record %zu does not parse: %s at %zu: %s", index,
                   err.field ? err.field : "?", err.offset, err.reason ? err.reason : "?");
            if (ok) {
                uint8_t txid[32], sighash[32], leaf[32];
                CHECK(pm_tx_txid(ctx, txid, &tx) == 1);
                CHECK(pm_tx_sighash(ctx, sighash, s1_chain_id, txid) == 1);
                CHECK(pm_tx_leaf(ctx, leaf, &tx, txid) == 1);
                CHECKF(hex_equal(txid, a), "txid of record %zu", index);
                CHECKF(hex_equal(sighash, b), "sighash of record %zu", index);
                CHECKF(hex_equal(leaf, c), "leaf of record %zu", index);
                CHECKF(roundtrip_tx(&tx), "record %zu re-serializes", index);
            }
        }
        index++;
    }
    CHECKF(pos == tn, "s1.pmtx has records beyond hashes.txt");
    CHECKF(index == 300, "hashes.txt covers %zu records", index);
    CHECKF(malformed == 3, "%zu MALFORMED records", malformed);
    free(txt);
    free(s1);
}

/* ---- DUPLICATE_INPUT (§5 step 2) -------------------------------------- */

/* Step 2 is stateless and comes right after parsing, so a record of s1.pmtx
 * has two inputs naming one outpoint exactly when the reference rejected
 * it as DUPLICATE_INPUT (s1.b32.rejects.csv), and MALFORMED exactly when
 * it does not parse. */
static void test_duplicate_inputs(void)
{
    size_t n = 0, tn = 0;
    pm_vreject *rows = NULL;
    uint8_t *s1 = pm_read_file(pm_vector_path("s1.pmtx"), &tn);
    if (!pm_vrejects_load(&rows, &n, "s1.b32.rejects.csv") || !s1) {
        free(s1);
        return;
    }
    static char reason_of[300][32];
    for (size_t k = 0; k < n; k++)
        if (rows[k].index < 300)
            snprintf(reason_of[rows[k].index], sizeof reason_of[0], "%s",
                     pm_reason_name(rows[k].reason));
    size_t pos = 60, index = 0, dups = 0;
    const uint8_t *rec;
    size_t len;
    while (pm_record_next(s1, tn, &pos, &rec, &len) == 1 && index < 300) {
        pm_tx tx;
        int parses = pm_tx_parse(pm_context_static, &tx, NULL, rec, len);
        CHECKF(parses == (strcmp(reason_of[index], "MALFORMED") != 0),
               "record %zu parses %d, rejects.csv says %s", index, parses, reason_of[index]);
        size_t second = 0;
        int dup = parses && pm_tx_has_duplicate_input(pm_context_static, &tx, &second);
        CHECKF(dup == (strcmp(reason_of[index], "DUPLICATE_INPUT") == 0),
               "record %zu duplicate %d, rejects.csv says %s", index, dup, reason_of[index]);
        if (dup) {
            CHECK(second >= 1 && second < tx.n_in);
            dups++;
        }
        index++;
    }
    CHECKF(dups == 2, "%zu records with duplicate inputs", dups);
    free(rows);
    free(s1);
}

/* ---- every stream file ------------------------------------------------ */

static void check_stream_file(const char *name)
{
    size_t size = 0;
    uint8_t *data = pm_read_file(pm_vector_path(name), &size);
    if (!data)
        return;
    pm_file_kind kind;
    pm_chain_params params;
    CHECKF(pm_file_header_parse(pm_context_static, &kind, &params, NULL, data, size) == 1,
           "%s header", name);
    CHECKF(kind == PM_FILE_STREAM, "%s kind", name);
    size_t pos = 60, count = 0, refused = 0;
    const uint8_t *rec;
    size_t len;
    int r;
    while ((r = pm_record_next(data, size, &pos, &rec, &len)) == 1) {
        pm_tx tx;
        pm_parse_error err = {0, NULL, NULL};
        if (pm_tx_parse(pm_context_static, &tx, &err, rec, len)) {
            CHECKF(roundtrip_tx(&tx), "%s record %zu re-serializes", name, count);
            size_t second;
            (void)pm_tx_has_duplicate_input(pm_context_static, &tx, &second);
        } else {
            CHECKF(err.field != NULL && err.reason != NULL && err.offset <= len,
                   "%s record %zu refused with a reason", name, count);
            refused++;
        }
        count++;
    }
    CHECKF(r == 0, "%s ends on a whole record", name);
    CHECKF(count > 0, "%s has records", name);
    printf("%s: %zu records, %zu do not parse\n", name, count, refused);
    free(data);
}

/* s1.half1 then s1.half2 hold exactly the records of s1. */
static void test_halves(void)
{
    size_t n0, n1, n2;
    uint8_t *s = pm_read_file(pm_vector_path("s1.pmtx"), &n0);
    uint8_t *h1 = pm_read_file(pm_vector_path("s1.half1.pmtx"), &n1);
    uint8_t *h2 = pm_read_file(pm_vector_path("s1.half2.pmtx"), &n2);
    if (s && h1 && h2) {
        CHECK(n1 + n2 - 60 == n0);
        CHECK(memcmp(s, h1, 60) == 0 && memcmp(s, h2, 60) == 0);
        CHECK(memcmp(s + 60, h1 + 60, n1 - 60) == 0);
        CHECK(memcmp(s + n1, h2 + 60, n2 - 60) == 0);
    }
    free(s);
    free(h1);
    free(h2);
}

/* ---- every chain file ------------------------------------------------- */

typedef struct {
    pm_reason reason; /* first failure of steps 1-4 or TRUNCATED; NONE */
    size_t block;     /* failing block's position in the file */
    long tx;          /* -1 for block-level */
    size_t blocks;    /* whole blocks in the file */
    long dup_block;   /* first transaction with duplicate inputs, or -1 */
    long dup_tx;
} chain_result;

/* Check one whole block (steps 1-4) on top of the tip; on success advance
 * the tip. Round trips every header and transaction on the way. */
static pm_reason check_block(long *bad_tx, long *dup_tx, const char *name, size_t bi,
                             const uint8_t *rec, size_t len, uint8_t tip[32],
                             int64_t *tip_height)
{
    pm_block blk;
    pm_parse_error err = {0, NULL, NULL};
    if (!pm_block_parse(pm_context_static, &blk, &err, rec, len)) {
        CHECKF(err.field && err.reason, "%s block %zu error", name, bi);
        printf("%s: block %zu BLOCK_MALFORMED: %s at %zu: %s\n", name, bi, err.field, err.offset,
               err.reason);
        return PM_REASON_BLOCK_MALFORMED;
    }
    uint8_t hdr[80];
    pm_block_header_encode(pm_context_static, hdr, &blk.header);
    CHECKF(memcmp(hdr, rec, 80) == 0, "%s block %zu header re-encodes", name, bi);
    if ((int64_t)blk.header.height != *tip_height + 1 || memcmp(blk.header.prev_hash, tip, 32))
        return PM_REASON_BAD_LINK;

    uint8_t(*leaves)[32] = malloc(blk.header.tx_count * sizeof *leaves);
    size_t cursor = 0, ti = 0, tsize;
    const uint8_t *tb;
    pm_reason result = PM_REASON_NONE;
    while (pm_block_next_tx(pm_context_static, &tb, &tsize, &blk, &cursor)) {
        pm_tx tx;
        if (!pm_tx_parse(pm_context_static, &tx, &err, tb, tsize)) {
            printf("%s: block %zu tx %zu MALFORMED: %s at %zu: %s\n", name, bi, ti, err.field,
                   err.offset, err.reason);
            *bad_tx = (long)ti;
            result = PM_REASON_MALFORMED;
            break;
        }
        CHECKF(roundtrip_tx(&tx), "%s block %zu tx %zu re-serializes", name, bi, ti);
        if (*dup_tx < 0 && pm_tx_has_duplicate_input(pm_context_static, &tx, NULL))
            *dup_tx = (long)ti;
        uint8_t txid[32];
        CHECK(pm_tx_txid(ctx, txid, &tx) && pm_tx_leaf(ctx, leaves[ti], &tx, txid));
        ti++;
    }
    if (result == PM_REASON_NONE) {
        CHECKF(ti == blk.header.tx_count, "%s block %zu: %zu records for tx_count %u", name, bi,
               ti, blk.header.tx_count);
        uint8_t root[32];
        CHECK(pm_merkle_root(ctx, root, (const uint8_t(*)[32])leaves, ti) == 1);
        if (memcmp(root, blk.header.merkle_root, 32) != 0)
            result = PM_REASON_BAD_MERKLE;
    }
    free(leaves);
    if (result == PM_REASON_NONE) {
        CHECK(pm_block_hash(ctx, tip, rec) == 1);
        *tip_height = (int64_t)blk.header.height;
    }
    return result;
}

static chain_result scan_chain(const char *name, const uint8_t *data, size_t size)
{
    chain_result res = {PM_REASON_NONE, 0, -1, 0, -1, -1};
    pm_file_kind kind;
    pm_chain_params params;
    if (!pm_file_header_parse(pm_context_static, &kind, &params, NULL, data, size) ||
        kind != PM_FILE_CHAIN) {
        res.reason = PM_REASON_BAD_HEADER;
        return res;
    }
    uint8_t tip[32];
    int64_t tip_height = -1;
    CHECK(pm_chain_id(ctx, tip, &params) == 1);
    CHECKF(memcmp(tip, s1_chain_id, 32) == 0, "%s is an s1 chain", name);
    size_t pos = 60;
    const uint8_t *rec;
    size_t len;
    int r;
    while ((r = pm_record_next(data, size, &pos, &rec, &len)) == 1) {
        if (res.reason == PM_REASON_NONE) {
            long bad_tx = -1, dup_tx = -1;
            pm_reason why =
                check_block(&bad_tx, &dup_tx, name, res.blocks, rec, len, tip, &tip_height);
            if (dup_tx >= 0 && res.dup_block < 0) {
                res.dup_block = (long)res.blocks;
                res.dup_tx = dup_tx;
            }
            if (why != PM_REASON_NONE) {
                res.reason = why;
                res.block = res.blocks;
                res.tx = bad_tx;
            }
        }
        res.blocks++;
    }
    if (r < 0 && res.reason == PM_REASON_NONE) {
        res.reason = PM_REASON_TRUNCATED;
        res.block = res.blocks;
    }
    return res;
}

static void check_chain_file(const char *name)
{
    size_t size = 0, jn = 0;
    uint8_t *data = pm_read_file(pm_vector_path(name), &size);
    if (!data)
        return;
    chain_result res = scan_chain(name, data, size);
    printf("%s: %zu whole blocks, first wire-level failure %s (block %zu, tx %ld)\n", name,
           res.blocks, pm_reason_name(res.reason), res.block, res.tx);

    /* The expectation: the .json beside it (replay's for s1.bad.*, pack's
     * summary for the others). */
    char jname[256];
    snprintf(jname, sizeof jname, "%.*s.json", (int)(strlen(name) - 5), name);
    char *json = (char *)pm_read_file(pm_vector_path(jname), &jn);
    if (!json) {
        free(data);
        return;
    }
    json = realloc(json, jn + 1);
    json[jn] = 0;
    char valid[16] = "true", reason_s[64] = "", height_s[32] = "", tx_s[32] = "", blocks_s[32];
    json_field(valid, sizeof valid, json, "valid");
    if (strcmp(valid, "true") == 0) {
        CHECKF(res.reason == PM_REASON_NONE, "%s: valid chain fails at wire level", name);
        CHECKF(res.dup_block < 0, "%s: valid chain has duplicate inputs", name);
        if (json_field(blocks_s, sizeof blocks_s, json, "blocks"))
            CHECKF(res.blocks == strtoul(blocks_s, NULL, 10), "%s: %zu blocks, json %s", name,
                   res.blocks, blocks_s);
    } else {
        CHECK(json_field(reason_s, sizeof reason_s, json, "reason"));
        CHECK(json_field(height_s, sizeof height_s, json, "height"));
        json_field(tx_s, sizeof tx_s, json, "tx");
        pm_reason want = PM_REASON_NONE;
        CHECKF(pm_reason_from_name(pm_context_static, &want, reason_s), "%s: reason %s", name,
               reason_s);
        size_t at = strtoul(height_s, NULL, 10);
        int wire_level = want == PM_REASON_BLOCK_MALFORMED || want == PM_REASON_BAD_LINK ||
                         want == PM_REASON_MALFORMED || want == PM_REASON_BAD_MERKLE ||
                         want == PM_REASON_TRUNCATED || want == PM_REASON_BAD_HEADER;
        if (wire_level) {
            CHECKF(res.reason == want, "%s: %s, json %s", name, pm_reason_name(res.reason),
                   reason_s);
            CHECKF(res.block == at, "%s: block %zu, json %zu", name, res.block, at);
            long want_tx = strcmp(tx_s, "null") == 0 ? -1 : strtol(tx_s, NULL, 10);
            CHECKF(res.tx == want_tx, "%s: tx %ld, json %ld", name, res.tx, want_tx);
        } else {
            /* A later reason: every block up to it passes steps 1-4; for
             * DUPLICATE_INPUT the named transaction is the first with two
             * inputs naming one outpoint. */
            if (want == PM_REASON_DUPLICATE_INPUT) {
                long want_tx = strtol(tx_s, NULL, 10);
                CHECKF(res.dup_block == (long)at && res.dup_tx == want_tx,
                       "%s: first duplicate inputs at block %ld tx %ld, json %zu %ld", name,
                       res.dup_block, res.dup_tx, at, want_tx);
            } else {
                CHECKF(res.dup_block < 0 || res.dup_block > (long)at,
                       "%s: duplicate inputs at block %ld before the json's %s", name,
                       res.dup_block, reason_s);
            }
            CHECKF(res.reason == PM_REASON_NONE || res.block > at,
                   "%s: wire-level %s at block %zu before the json's %s at %zu", name,
                   pm_reason_name(res.reason), res.block, reason_s, at);
        }
    }
    free(json);
    free(data);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_every_file(void)
{
    DIR *dir = opendir(PM_VECTORS_DIR);
    CHECKF(dir != NULL, "open %s", PM_VECTORS_DIR);
    if (!dir)
        return;
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) && n < 256)
        if (ends_with(e->d_name, ".pmtx") || ends_with(e->d_name, ".pmbk"))
            names[n++] = strdup(e->d_name);
    closedir(dir);
    qsort(names, n, sizeof names[0], cmp_str);
    size_t streams = 0, chains = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (ends_with(names[i], ".pmtx")) {
            check_stream_file(names[i]);
            streams++;
        } else {
            check_chain_file(names[i]);
            chains++;
            bad += strncmp(names[i], "s1.bad.", 7) == 0;
        }
        free(names[i]);
    }
    CHECKF(streams >= 3 && chains >= 4 && bad >= 10, "%zu streams, %zu chains (%zu bad)",
           streams, chains, bad);
}

int main(void)
{
    ctx = pm_context_create();
    CHECK(ctx != NULL);
    if (!ctx)
        return pm_test_finish();
    test_chain_txt();
    test_merkle_txt();
    test_hashes_txt();
    test_halves();
    test_duplicate_inputs();
    test_every_file();
    pm_context_destroy(ctx);
    return pm_test_finish();
}
