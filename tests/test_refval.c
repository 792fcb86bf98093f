/*
 * test_refval.c — the reference validator reproduces every vector of
 * ../shared/vectors (made by an independent implementation), which is what
 * makes it trustworthy as the expectation in differential tests:
 *  - chain id, empty-set digest, txids, merkle roots;
 *  - packing s1.pmtx with 32 and 4096 transactions per block: the chain
 *    byte for byte, the rejects, the summary; packing the two halves;
 *  - the replay verdict of every s1.bad.* chain;
 * plus its own atomicity: a rejected transaction or block changes nothing.
 */
#include "refval.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

/* ---- tiny readers for the flat JSON and CSV files of the vectors ---- */

/* The raw text of "key": value in a flat JSON object (without quotes for a
 * string) into out; returns 1 when found. */
static int json_field(char *out, size_t cap, const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (!p)
        return 0;
    p += strlen(pat);
    while (*p == ' ' || *p == ':')
        p++;
    size_t n = 0;
    if (*p == '"') {
        p++;
        while (p[n] && p[n] != '"')
            n++;
    } else {
        while (p[n] && p[n] != ',' && p[n] != '\n' && p[n] != '}')
            n++;
    }
    if (n >= cap)
        return 0;
    memcpy(out, p, n);
    out[n] = 0;
    return 1;
}

static char *read_text(const char *name)
{
    size_t size;
    uint8_t *data = pm_read_file(pm_vector_path(name), &size);
    if (!data)
        return NULL;
    char *text = realloc(data, size + 1);
    text[size] = 0;
    return text;
}

static int64_t json_int(const char *json, const char *key)
{
    char v[64];
    if (!json_field(v, sizeof v, json, key))
        return -999;
    return strtoll(v, NULL, 10);
}

/* Compare rejects with a CSV file "index,txid,reason". */
static void check_rejects(const refval_pack_result *res, const char *csv_name)
{
    pm_vreject *want = NULL;
    size_t n = 0;
    if (!pm_vrejects_load(&want, &n, csv_name))
        return;
    CHECKF(n == res->n_rejects, "%s: %zu rejects expected, got %zu", csv_name, n, res->n_rejects);
    for (size_t i = 0; i < n && i < res->n_rejects; i++) {
        const refval_reject *r = &res->rejects[i];
        CHECKF(r->index == want[i].index, "%s line %zu: index %llu, got %llu", csv_name, i + 2,
               (unsigned long long)want[i].index, (unsigned long long)r->index);
        CHECKF(r->reason == want[i].reason, "%s index %llu: %s, got %s", csv_name,
               (unsigned long long)want[i].index, pm_reason_name(want[i].reason),
               pm_reason_name(r->reason));
        CHECKF(r->has_txid == want[i].has_txid &&
                   (!r->has_txid || memcmp(r->txid, want[i].txid, 32) == 0),
               "%s index %llu: txid differs", csv_name, (unsigned long long)want[i].index);
    }
    free(want);
}

static void check_state_json(const refval *rv, const char *json_name)
{
    char *json = read_text(json_name);
    if (!json)
        return;
    uint8_t tip[32], digest[32];
    int64_t height;
    char hex[65], want[80];
    refval_tip(rv, tip, &height);
    CHECK(json_int(json, "height") == height);
    CHECK(json_int(json, "utxo_count") == (int64_t)refval_utxo_count(rv));
    CHECK(json_field(want, sizeof want, json, "tip") && strcmp(want, pm_hex(hex, tip, 32)) == 0);
    CHECK(refval_utxo_digest(rv, digest));
    CHECK(json_field(want, sizeof want, json, "utxo_digest") &&
          strcmp(want, pm_hex(hex, digest, 32)) == 0);
    free(json);
}

static pm_chain_params params_of(const uint8_t *file)
{
    pm_chain_params p;
    memcpy(p.network, file + 12, PM_NETWORK_SIZE);
    memcpy(p.governance_key, file + 28, PM_KEY_SIZE);
    return p;
}

/* header + blocks, as a chain file */
static uint8_t *chain_file(const refval *rv, const uint8_t *blocks, size_t size, size_t *out_size)
{
    uint8_t *f = malloc(PM_FILE_HEADER_SIZE + size + 1);
    refval_file_header(rv, f, PM_FILE_CHAIN);
    memcpy(f + PM_FILE_HEADER_SIZE, blocks, size);
    *out_size = PM_FILE_HEADER_SIZE + size;
    return f;
}

static void test_hashes(void)
{
    char *chain = read_text("chain.txt");
    size_t ssize;
    uint8_t *stream = pm_read_file(pm_vector_path("s1.pmtx"), &ssize);
    if (!chain || !stream)
        return;
    pm_chain_params params = params_of(stream);
    refval *rv = refval_create(&params);
    uint8_t id[32], digest[32];
    char hex[65];
    refval_chain_id(rv, id);
    CHECK(strstr(chain, pm_hex(hex, id, 32)) != NULL);
    CHECK(refval_utxo_digest(rv, digest));
    CHECK(strstr(chain, pm_hex(hex, digest, 32)) != NULL);
    refval_destroy(rv);

    /* txids of every record of s1.pmtx, MALFORMED where it does not parse */
    char *hashes = read_text("hashes.txt");
    if (hashes) {
        size_t pos = PM_FILE_HEADER_SIZE;
        unsigned long idx = 0, checked = 0;
        while (ssize - pos >= 4) {
            uint32_t len = (uint32_t)stream[pos] | (uint32_t)stream[pos + 1] << 8 |
                           (uint32_t)stream[pos + 2] << 16 | (uint32_t)stream[pos + 3] << 24;
            if (ssize - pos - 4 < len)
                break;
            char want[200], line_start[32];
            snprintf(line_start, sizeof line_start, "\n%lu ", idx);
            const char *line = strstr(hashes, line_start);
            CHECKF(line != NULL, "hashes.txt has no line for %lu", idx);
            if (line) {
                sscanf(line + 1, "%*u %199s", want);
                uint8_t txid[32];
                if (refval_txid(txid, stream + pos + 4, len))
                    CHECKF(strcmp(want, pm_hex(hex, txid, 32)) == 0, "tx %lu txid", idx);
                else
                    CHECKF(strcmp(want, "MALFORMED") == 0, "tx %lu does not parse", idx);
                checked++;
            }
            pos += 4 + len;
            idx++;
        }
        CHECK(checked == 300);
        free(hashes);
    }

    /* merkle roots of n test leaves */
    char *mk = read_text("merkle.txt");
    if (mk) {
        /* leaf_i = H("postmark/test", u32 i), made with the library's public
         * tagged hash: only the combining is under test here. */
        uint8_t leaves[100][32];
        pm_context *ctx = pm_context_create();
        for (uint32_t i = 0; i < 100; i++) {
            uint8_t le[4] = {(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i >> 16), (uint8_t)(i >> 24)};
            CHECK(pm_tagged_hash(ctx, leaves[i], "postmark/test", le, 4));
        }
        pm_context_destroy(ctx);
        unsigned lines = 0;
        char *save = NULL;
        for (char *line = strtok_r(mk, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            unsigned n;
            char want[65];
            if (line[0] == '#' || sscanf(line, "%u %64s", &n, want) != 2 || n < 1 || n > 100)
                continue;
            uint8_t root[32];
            CHECK(refval_merkle_root(root, (const uint8_t(*)[32])leaves, n));
            CHECKF(strcmp(want, pm_hex(hex, root, 32)) == 0, "merkle root of %u leaves", n);
            lines++;
        }
        CHECK(lines == 13); /* n = 1..9, 15, 16, 17, 100 */
        free(mk);
    }
    free(chain);
    free(stream);
}

/* Pack s1.pmtx with `block_txs` and compare with the vectors. */
static void test_pack(uint32_t block_txs)
{
    char name[64];
    size_t ssize, csize;
    uint8_t *stream = pm_read_file(pm_vector_path("s1.pmtx"), &ssize);
    snprintf(name, sizeof name, "s1.b%u.pmbk", block_txs);
    uint8_t *expect = pm_read_file(pm_vector_path(name), &csize);
    if (!stream || !expect)
        return;
    pm_chain_params params = params_of(stream);
    refval *rv = refval_create(&params);
    refval_pack_result res;
    CHECK(refval_pack(rv, &res, stream, ssize, block_txs, PM_BLOCK_MAX_SIZE) == PM_OK);
    size_t fsize;
    uint8_t *file = chain_file(rv, res.blocks, res.blocks_size, &fsize);
    CHECKF(fsize == csize && memcmp(file, expect, csize) == 0, "%s differs (%zu vs %zu bytes)",
           name, fsize, csize);

    snprintf(name, sizeof name, "s1.b%u.rejects.csv", block_txs);
    check_rejects(&res, name);
    snprintf(name, sizeof name, "s1.b%u.json", block_txs);
    char *json = read_text(name);
    if (json) {
        CHECK(json_int(json, "block_txs") == block_txs);
        CHECK(json_int(json, "accepted") == (int64_t)res.accepted);
        CHECK(json_int(json, "rejected") == (int64_t)res.n_rejects);
        CHECK(json_int(json, "blocks") == (int64_t)res.blocks_added);
        free(json);
    }
    check_state_json(rv, name);

    /* Replaying the chain we made gives the same state. */
    refval *rv2 = NULL;
    refval_verdict v;
    CHECK(refval_replay(&rv2, &v, file, fsize, NULL) == PM_OK);
    CHECK(v.valid && v.reason == PM_REASON_NONE && v.height == res.blocks_added);
    if (rv2)
        check_state_json(rv2, name);
    refval_destroy(rv2);

    /* The stream cut inside its last record: the same blocks, and one more
     * MALFORMED reject after all whole records. */
    refval *rv3 = refval_create(&params);
    refval_pack_result cut;
    CHECK(refval_pack(rv3, &cut, stream, ssize - 10, block_txs, PM_BLOCK_MAX_SIZE) == PM_OK);
    CHECK(cut.n_rejects == res.n_rejects + 1 || cut.n_rejects == res.n_rejects);
    CHECK(cut.n_rejects >= 1 && cut.rejects[cut.n_rejects - 1].reason == PM_REASON_MALFORMED &&
          cut.rejects[cut.n_rejects - 1].index == 299 && !cut.rejects[cut.n_rejects - 1].has_txid);
    refval_pack_result_free(&cut);
    refval_destroy(rv3);

    free(file);
    refval_pack_result_free(&res);
    refval_destroy(rv);
    free(stream);
    free(expect);
}

static void test_halves(void)
{
    size_t s1, s2, csize;
    uint8_t *h1 = pm_read_file(pm_vector_path("s1.half1.pmtx"), &s1);
    uint8_t *h2 = pm_read_file(pm_vector_path("s1.half2.pmtx"), &s2);
    uint8_t *expect = pm_read_file(pm_vector_path("s1.halves.b32.pmbk"), &csize);
    if (!h1 || !h2 || !expect)
        return;
    pm_chain_params params = params_of(h1);
    refval *rv = refval_create(&params);
    refval_pack_result r1, r2;
    CHECK(refval_pack(rv, &r1, h1, s1, 32, PM_BLOCK_MAX_SIZE) == PM_OK);
    /* The second run starts from the chain file, as `pack` does. */
    size_t fsize;
    uint8_t *file1 = chain_file(rv, r1.blocks, r1.blocks_size, &fsize);
    refval *rv2 = NULL;
    refval_verdict v;
    CHECK(refval_replay(&rv2, &v, file1, fsize, NULL) == PM_OK && v.valid);
    if (!rv2)
        return;
    CHECK(refval_pack(rv2, &r2, h2, s2, 32, PM_BLOCK_MAX_SIZE) == PM_OK);
    uint8_t *all = malloc(fsize + r2.blocks_size);
    memcpy(all, file1, fsize);
    memcpy(all + fsize, r2.blocks, r2.blocks_size);
    CHECK(fsize + r2.blocks_size == csize && memcmp(all, expect, csize) == 0);
    check_rejects(&r2, "s1.halves.b32.rejects2.csv");
    check_state_json(rv2, "s1.halves.b32.json");

    /* Packing the second half on the first one's live state: the same. */
    refval_pack_result r3;
    CHECK(refval_pack(rv, &r3, h2, s2, 32, PM_BLOCK_MAX_SIZE) == PM_OK);
    CHECK(r3.blocks_size == r2.blocks_size && memcmp(r3.blocks, r2.blocks, r2.blocks_size) == 0);
    refval_pack_result_free(&r3);

    /* Another chain's stream is refused. */
    uint8_t *other = malloc(s2);
    memcpy(other, h2, s2);
    other[12] ^= 1;
    CHECK(refval_pack(rv, &r3, other, s2, 32, PM_BLOCK_MAX_SIZE) == PM_ERR_MISMATCH);
    other[12] ^= 1;
    other[0] = 'X';
    CHECK(refval_pack(rv, &r3, other, s2, 32, PM_BLOCK_MAX_SIZE) == PM_ERR_INVALID);
    free(other);

    refval_pack_result_free(&r1);
    refval_pack_result_free(&r2);
    refval_destroy(rv);
    refval_destroy(rv2);
    free(all);
    free(file1);
    free(h1);
    free(h2);
    free(expect);
}

/* Digest of the state after the first `n` blocks of s1.b32.pmbk. */
static int digest_after_blocks(uint8_t out[32], uint64_t n)
{
    size_t size;
    uint8_t *chain = pm_read_file(pm_vector_path("s1.b32.pmbk"), &size);
    if (!chain)
        return 0;
    size_t pos = PM_FILE_HEADER_SIZE;
    for (uint64_t i = 0; i < n; i++)
        pos += 4 + ((uint32_t)chain[pos] | (uint32_t)chain[pos + 1] << 8 |
                    (uint32_t)chain[pos + 2] << 16 | (uint32_t)chain[pos + 3] << 24);
    refval *rv = NULL;
    refval_verdict v;
    int ok = refval_replay(&rv, &v, chain, pos, NULL) == PM_OK && v.valid && v.height == n &&
             refval_utxo_digest(rv, out);
    refval_destroy(rv);
    free(chain);
    return ok;
}

static void test_bad_chains(void)
{
    static const char *const names[] = {
        "assume_valid_earlier", "assume_valid_later", "count_mismatch",
        "double_spend_across_blocks", "duplicate_input", "malformed_tx", "repeated_tx",
        "sealed_bad_signature", "sig_after_seal", "truncated", "wrong_height", "wrong_prev",
    };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char name[96], want[80], hex[65];
        snprintf(name, sizeof name, "s1.bad.%s.json", names[k]);
        char *json = read_text(name);
        snprintf(name, sizeof name, "s1.bad.%s.pmbk", names[k]);
        size_t size;
        uint8_t *chain = pm_read_file(pm_vector_path(name), &size);
        if (!json || !chain) {
            free(json);
            free(chain);
            continue;
        }
        uint8_t av[32];
        int has_av = json_field(want, sizeof want, json, "assume_valid") && pm_unhex(av, 32, want);
        refval *rv = NULL;
        refval_verdict v;
        CHECK(refval_replay(&rv, &v, chain, size, has_av ? av : NULL) == PM_OK);
        CHECK(json_field(want, sizeof want, json, "valid"));
        int valid = strcmp(want, "true") == 0;
        CHECKF(v.valid == valid, "%s: valid %d", name, v.valid);
        if (valid) {
            CHECK(json_int(json, "blocks") == (int64_t)v.height);
            uint8_t tip[32], digest[32];
            int64_t height;
            refval_tip(rv, tip, &height);
            CHECK(json_field(want, sizeof want, json, "tip") && strcmp(want, pm_hex(hex, tip, 32)) == 0);
            CHECK(json_int(json, "utxo_count") == (int64_t)refval_utxo_count(rv));
            CHECK(refval_utxo_digest(rv, digest) && json_field(want, sizeof want, json, "utxo_digest") &&
                  strcmp(want, pm_hex(hex, digest, 32)) == 0);
        } else {
            CHECKF(json_field(want, sizeof want, json, "reason") &&
                       strcmp(want, pm_reason_name(v.reason)) == 0,
                   "%s: reason %s, got %s", name, want, pm_reason_name(v.reason));
            CHECKF(json_int(json, "height") == (int64_t)v.height, "%s: height %llu", name,
                   (unsigned long long)v.height);
            CHECK(json_field(want, sizeof want, json, "tx"));
            if (strcmp(want, "null") == 0)
                CHECKF(v.tx == -1, "%s: tx %lld", name, (long long)v.tx);
            else
                CHECKF(v.tx == strtoll(want, NULL, 10), "%s: tx %lld", name, (long long)v.tx);
            CHECK(json_field(want, sizeof want, json, "txid") || strstr(json, "\"txid\": \"\""));
            char got[65] = "";
            if (v.has_txid)
                pm_hex(got, v.txid, 32);
            if (!json_field(want, sizeof want, json, "txid"))
                want[0] = 0;
            CHECKF(strcmp(want, got) == 0, "%s: txid %s, got %s", name, want, got);
            /* The state is exactly the one after the valid blocks before. */
            uint8_t d1[32], d2[32];
            if (rv && v.reason != PM_REASON_BAD_HEADER) {
                CHECK(refval_utxo_digest(rv, d1) && digest_after_blocks(d2, v.height) &&
                      memcmp(d1, d2, 32) == 0);
            }
        }
        refval_destroy(rv);
        free(json);
        free(chain);
    }

    /* A bad header is refused before anything else. */
    size_t size;
    uint8_t *chain = pm_read_file(pm_vector_path("s1.b32.pmbk"), &size);
    if (chain) {
        refval_verdict v;
        CHECK(refval_replay(NULL, &v, chain, 59, NULL) == PM_OK && !v.valid &&
              v.reason == PM_REASON_BAD_HEADER && v.height == 0);
        chain[8] = 2;
        CHECK(refval_replay(NULL, &v, chain, size, NULL) == PM_OK &&
              v.reason == PM_REASON_BAD_HEADER);
        chain[8] = 1;
        memcpy(chain, "POSTMKTX", 8);
        CHECK(refval_replay(NULL, &v, chain, size, NULL) == PM_OK &&
              v.reason == PM_REASON_BAD_HEADER);
        memcpy(chain, "POSTMKBK", 8);
        /* Header only: a valid empty chain. */
        CHECK(refval_replay(NULL, &v, chain, 60, NULL) == PM_OK && v.valid && v.height == 0);
        /* Cut inside the length prefix of the second block. */
        size_t len0 = (uint32_t)chain[60] | (uint32_t)chain[61] << 8 | (uint32_t)chain[62] << 16;
        CHECK(refval_replay(NULL, &v, chain, 60 + 4 + len0 + 2, NULL) == PM_OK && !v.valid &&
              v.reason == PM_REASON_TRUNCATED && v.height == 1 && v.tx == -1);
        free(chain);
    }
}

/* A rejected transaction leaves the state unchanged; an accepted one cannot
 * be accepted twice. */
static void test_apply_atomic(void)
{
    size_t ssize;
    uint8_t *stream = pm_read_file(pm_vector_path("s1.pmtx"), &ssize);
    if (!stream)
        return;
    pm_chain_params params = params_of(stream);
    refval *rv = refval_create(&params);
    size_t pos = PM_FILE_HEADER_SIZE;
    unsigned rejected = 0, accepted = 0, replays_refused = 0;
    while (ssize - pos >= 4) {
        uint32_t len = (uint32_t)stream[pos] | (uint32_t)stream[pos + 1] << 8 |
                       (uint32_t)stream[pos + 2] << 16 | (uint32_t)stream[pos + 3] << 24;
        if (ssize - pos - 4 < len)
            break;
        const uint8_t *tx = stream + pos + 4;
        uint8_t before[32], after[32];
        pm_reason r;
        CHECK(refval_utxo_digest(rv, before));
        CHECK(refval_apply_tx(rv, tx, len, &r));
        CHECK(refval_utxo_digest(rv, after));
        if (r == PM_REASON_NONE) {
            accepted++;
            pm_reason again;
            CHECK(refval_apply_tx(rv, tx, len, &again));
            replays_refused += again == PM_REASON_MISSING_INPUT || again == PM_REASON_BAD_SEQUENCE;
        } else {
            rejected++;
            CHECK(memcmp(before, after, 32) == 0);
        }
        pos += 4 + len;
    }
    CHECK(accepted == 257 && rejected == 43);
    CHECK(replays_refused == accepted);
    refval_destroy(rv);
    free(stream);
}

int main(void)
{
    test_hashes();
    test_pack(32);
    test_pack(4096);
    test_halves();
    test_bad_chains();
    test_apply_atomic();
    return pm_test_finish();
}
