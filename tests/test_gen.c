/*
 * test_gen.c — the stream generator, judged by the reference validator:
 *  - the same configuration gives the same bytes, whatever the number of
 *    signing threads; another seed gives other bytes;
 *  - a MARKET stream with every invalid rate non-zero is judged exactly as
 *    planned: each reject reason as many times as planned, and
 *    planned_accepted accepted;
 *  - TRANSFERS and LARGE_STATE streams are all valid;
 *  - configurations out of range and failing writes are errors.
 */
#include "gen.h"
#include "refval.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pm_context *ctx;

/* Generate into a file and read it back. Returns the bytes (caller frees). */
static uint8_t *generate(const pm_gen_config *cfg, pm_gen_report *report, size_t *size)
{
    static unsigned n;
    char path[512];
    snprintf(path, sizeof path, "%s/gen%u.pmtx", pm_test_tmpdir(), n++);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    if (fd < 0)
        return NULL;
    tool_fault fault;
    pm_status st = pm_gen_write(ctx, cfg, fd, report, &fault);
    CHECKF(st == PM_OK, "pm_gen_write: %s (%s)", pm_status_text(st), fault.message);
    close(fd);
    uint8_t *data = pm_read_file(path, size);
    unlink(path);
    return data;
}

/* Judge every record of a stream with the reference validator: counts by
 * reason (index 0: accepted). Returns the number of records. */
static uint64_t judge_stream(const uint8_t *s, size_t size, uint64_t counts[PM_REASON_COUNT],
                             refval **out)
{
    memset(counts, 0, PM_REASON_COUNT * sizeof counts[0]);
    pm_chain_params params;
    memcpy(params.network, s + 12, PM_NETWORK_SIZE);
    memcpy(params.governance_key, s + 28, PM_KEY_SIZE);
    refval *rv = refval_create(&params);
    size_t pos = PM_FILE_HEADER_SIZE;
    uint64_t n = 0;
    while (size - pos >= 4) {
        uint32_t len = (uint32_t)s[pos] | (uint32_t)s[pos + 1] << 8 | (uint32_t)s[pos + 2] << 16 |
                       (uint32_t)s[pos + 3] << 24;
        CHECK(size - pos - 4 >= len);
        if (size - pos - 4 < len)
            break;
        pm_reason r = PM_REASON_NONE;
        CHECK(refval_apply_tx(rv, s + pos + 4, len, &r));
        counts[r]++;
        pos += 4 + len;
        n++;
    }
    CHECK(pos == size);
    if (out)
        *out = rv;
    else
        refval_destroy(rv);
    return n;
}

static void check_planned(const char *what, const pm_gen_report *rep,
                          const uint64_t counts[PM_REASON_COUNT])
{
    CHECKF(counts[PM_REASON_NONE] == rep->planned_accepted, "%s: %llu accepted, %llu planned",
           what, (unsigned long long)counts[0], (unsigned long long)rep->planned_accepted);
    for (int r = 1; r < PM_REASON_COUNT; r++)
        CHECKF(counts[r] == rep->planned[r], "%s: %s: %llu, %llu planned", what,
               pm_reason_name((pm_reason)r), (unsigned long long)counts[r],
               (unsigned long long)rep->planned[r]);
}

static void test_determinism(void)
{
    pm_gen_config cfg;
    pm_gen_config_default(&cfg, PM_GEN_MARKET);
    cfg.txs = 3000;
    cfg.seed = 7;
    cfg.collectors = 500;
    cfg.replay_ppm = cfg.malformed_ppm = cfg.bad_signature_ppm = 10000;
    size_t n1, n2, n3, n4;
    pm_gen_report r1, r2, r3, r4;
    cfg.threads = 1;
    uint8_t *a = generate(&cfg, &r1, &n1);
    cfg.threads = 2;
    uint8_t *b = generate(&cfg, &r2, &n2);
    cfg.threads = 5;
    uint8_t *c = generate(&cfg, &r3, &n3);
    cfg.seed = 8;
    uint8_t *d = generate(&cfg, &r4, &n4);
    if (a && b && c && d) {
        CHECK(n1 == n2 && memcmp(a, b, n1) == 0);
        CHECK(n1 == n3 && memcmp(a, c, n1) == 0);
        CHECK(memcmp(&r1, &r2, sizeof r1) == 0 && memcmp(&r1, &r3, sizeof r1) == 0);
        CHECK(n1 != n4 || memcmp(a, d, n1) != 0);
        CHECK(memcmp(r1.governance_key, r4.governance_key, 32) != 0);
        /* the header: a stream of the configured network and governance key */
        CHECK(memcmp(a, "POSTMKTX\1\0\0\0upu-dpg-test\0\0\0\0", 28) == 0);
        CHECK(memcmp(a + 28, r1.governance_key, 32) == 0);
        CHECK(r1.records == 3000);
    }
    free(a);
    free(b);
    free(c);
    free(d);
}

static void test_market(void)
{
    pm_gen_config cfg;
    pm_gen_config_default(&cfg, PM_GEN_MARKET);
    cfg.txs = 12000;
    cfg.seed = 2024;
    cfg.collectors = 2000;
    cfg.double_spend_ppm = 15000;
    cfg.bad_signature_ppm = 15000;
    cfg.conflict_ppm = 15000;
    cfg.replay_ppm = 15000;
    cfg.malformed_ppm = 15000;
    cfg.chain_ppm = 60000;
    cfg.other_ppm = 40000;
    pm_gen_report rep;
    size_t size;
    uint8_t *s = generate(&cfg, &rep, &size);
    if (!s)
        return;
    uint64_t counts[PM_REASON_COUNT];
    refval *rv = NULL;
    CHECK(judge_stream(s, size, counts, &rv) == cfg.txs);
    CHECK(rep.records == cfg.txs);
    check_planned("market", &rep, counts);
    /* every transaction reason occurs (the rates are high enough) */
    for (int r = PM_REASON_MALFORMED; r <= PM_REASON_BAD_SIGNATURE; r++)
        CHECKF(rep.planned[r] > 0, "market: no %s planned", pm_reason_name((pm_reason)r));
    uint64_t planned_sum = rep.planned_accepted;
    for (int r = 0; r < PM_REASON_COUNT; r++)
        planned_sum += rep.planned[r];
    CHECK(planned_sum == cfg.txs);
    CHECK(rep.planned[PM_REASON_NONE] == 0);
    CHECK(refval_utxo_count(rv) > 1000);
    refval_destroy(rv);

    /* Packing gives the same verdicts, and the blocks replay as valid. */
    pm_chain_params params;
    memcpy(params.network, s + 12, PM_NETWORK_SIZE);
    memcpy(params.governance_key, s + 28, PM_KEY_SIZE);
    rv = refval_create(&params);
    refval_pack_result res;
    CHECK(refval_pack(rv, &res, s, size, 512, PM_BLOCK_MAX_SIZE) == PM_OK);
    CHECK(res.accepted == rep.planned_accepted);
    uint64_t by_reason[PM_REASON_COUNT] = {0};
    for (size_t i = 0; i < res.n_rejects; i++)
        by_reason[res.rejects[i].reason]++;
    for (int r = 1; r < PM_REASON_COUNT; r++)
        CHECK(by_reason[r] == rep.planned[r]);
    uint8_t *chain = malloc(PM_FILE_HEADER_SIZE + res.blocks_size);
    refval_file_header(rv, chain, PM_FILE_CHAIN);
    memcpy(chain + PM_FILE_HEADER_SIZE, res.blocks, res.blocks_size);
    refval_verdict v;
    refval *rv2 = NULL;
    CHECK(refval_replay(&rv2, &v, chain, PM_FILE_HEADER_SIZE + res.blocks_size, NULL) == PM_OK);
    CHECK(v.valid && v.height == res.blocks_added);
    uint8_t d1[32], d2[32];
    CHECK(rv2 && refval_utxo_digest(rv, d1) && refval_utxo_digest(rv2, d2) &&
          memcmp(d1, d2, 32) == 0);
    refval_destroy(rv2);
    free(chain);
    refval_pack_result_free(&res);
    refval_destroy(rv);
    free(s);
}

/* Many small chunks: replays also copy records of earlier chunks, and
 * conflicts and chains cross chunk boundaries; still exactly as planned,
 * and the same bytes whatever the number of threads. */
static void test_market_chunks(void)
{
    pm_gen_config cfg;
    pm_gen_config_default(&cfg, PM_GEN_MARKET);
    cfg.txs = 8000;
    cfg.seed = 31337;
    cfg.collectors = 300;
    cfg.chunk_records = 701;
    cfg.replay_ppm = 60000;
    cfg.conflict_ppm = 30000;
    cfg.double_spend_ppm = 20000;
    cfg.chain_ppm = 100000;
    cfg.threads = 3;
    pm_gen_report rep, rep1;
    size_t size, size1;
    uint8_t *s = generate(&cfg, &rep, &size);
    cfg.threads = 1;
    uint8_t *s1 = generate(&cfg, &rep1, &size1);
    if (!s || !s1)
        return;
    CHECK(size == size1 && memcmp(s, s1, size) == 0);
    uint64_t counts[PM_REASON_COUNT];
    CHECK(judge_stream(s, size, counts, NULL) == cfg.txs);
    check_planned("market chunks", &rep, counts);
    CHECK(rep.planned[PM_REASON_BAD_SEQUENCE] > 0 && rep.planned[PM_REASON_MISSING_INPUT] > 300);
    free(s);
    free(s1);
}

/* The default market mix (a few invalid records per thousand) over more
 * than one chunk of records would be slow here; one chunk with the default
 * rates must still be exact. */
static void test_market_defaults(void)
{
    pm_gen_config cfg;
    pm_gen_config_default(&cfg, PM_GEN_MARKET);
    cfg.txs = 8000;
    cfg.seed = 99;
    pm_gen_report rep;
    size_t size;
    uint8_t *s = generate(&cfg, &rep, &size);
    if (!s)
        return;
    uint64_t counts[PM_REASON_COUNT];
    CHECK(judge_stream(s, size, counts, NULL) == cfg.txs);
    check_planned("market defaults", &rep, counts);
    CHECK(rep.planned_accepted > cfg.txs * 95 / 100);
    free(s);
}

static void test_transfers(void)
{
    pm_gen_config cfg;
    pm_gen_config_default(&cfg, PM_GEN_TRANSFERS);
    cfg.txs = 15000;
    cfg.seed = 5;
    pm_gen_report rep;
    size_t size;
    uint8_t *s = generate(&cfg, &rep, &size);
    if (!s)
        return;
    uint64_t counts[PM_REASON_COUNT];
    refval *rv = NULL;
    CHECK(judge_stream(s, size, counts, &rv) == cfg.txs);
    CHECK(counts[PM_REASON_NONE] == cfg.txs && rep.planned_accepted == cfg.txs);
    check_planned("transfers", &rep, counts);
    /* Almost all are one-input transfers: count the record types. */
    size_t pos = PM_FILE_HEADER_SIZE;
    uint64_t transfers = 0, one_input = 0;
    while (pos < size) {
        uint32_t len = (uint32_t)s[pos] | (uint32_t)s[pos + 1] << 8 | (uint32_t)s[pos + 2] << 16;
        const uint8_t *tx = s + pos + 4;
        if (tx[1] == PM_TX_TRANSFER) {
            transfers++;
            one_input += tx[2] == 1 && tx[3] == 0;
        }
        pos += 4 + len;
    }
    CHECK(transfers > cfg.txs - 20 && one_input == transfers);
    refval_destroy(rv);
    free(s);
}

static void test_large_state(void)
{
    pm_gen_config cfg;
    pm_gen_config_default(&cfg, PM_GEN_LARGE_STATE);
    cfg.txs = 160;
    cfg.seed = 11;
    cfg.collectors = 1000;
    pm_gen_report rep;
    size_t size;
    uint8_t *s = generate(&cfg, &rep, &size);
    if (!s)
        return;
    uint64_t counts[PM_REASON_COUNT];
    refval *rv = NULL;
    CHECK(judge_stream(s, size, counts, &rv) == cfg.txs);
    CHECK(counts[PM_REASON_NONE] == cfg.txs);
    check_planned("large state", &rep, counts);
    /* setup: 4 REGISTER + 16 SERIES; then 1024-output ISSUEs, one record
     * in 16 a transfer */
    uint64_t issues = 0;
    size_t pos = PM_FILE_HEADER_SIZE;
    while (pos < size) {
        uint32_t len = (uint32_t)s[pos] | (uint32_t)s[pos + 1] << 8 | (uint32_t)s[pos + 2] << 16;
        issues += s[pos + 5] == PM_TX_ISSUE;
        pos += 4 + len;
    }
    CHECK(issues >= 120);
    CHECKF(refval_utxo_count(rv) >= issues * 1024 - 200, "utxo count %llu",
           (unsigned long long)refval_utxo_count(rv));
    refval_destroy(rv);
    free(s);
}

static void test_small_and_errors(void)
{
    pm_gen_config cfg;
    pm_gen_config_default(&cfg, PM_GEN_MARKET);
    pm_gen_report rep;
    size_t size;

    /* no record: the header alone */
    cfg.txs = 0;
    uint8_t *s = generate(&cfg, &rep, &size);
    CHECK(s && size == PM_FILE_HEADER_SIZE && rep.records == 0);
    free(s);

    /* fewer records than the setup: the setup cut short, all valid */
    cfg.txs = 30;
    s = generate(&cfg, &rep, &size);
    uint64_t counts[PM_REASON_COUNT];
    if (s) {
        CHECK(judge_stream(s, size, counts, NULL) == 30 && counts[PM_REASON_NONE] == 30);
        CHECK(rep.planned_accepted == 30);
    }
    free(s);

    /* one collector, one operator: transfers to oneself still work */
    pm_gen_config_default(&cfg, PM_GEN_MARKET);
    cfg.txs = 600;
    cfg.operators = 1;
    cfg.series_per_operator = 1;
    cfg.collectors = 1;
    cfg.other_ppm = 100000;
    s = generate(&cfg, &rep, &size);
    if (s) {
        CHECK(judge_stream(s, size, counts, NULL) == 600);
        check_planned("tiny market", &rep, counts);
    }
    free(s);

    /* more operators than named ones */
    pm_gen_config_default(&cfg, PM_GEN_MARKET);
    cfg.txs = 400;
    cfg.operators = 70;
    cfg.series_per_operator = 2;
    cfg.collectors = 100;
    s = generate(&cfg, &rep, &size);
    if (s) {
        CHECK(judge_stream(s, size, counts, NULL) == 400);
        check_planned("many operators", &rep, counts);
    }
    free(s);

    tool_fault fault;
    int fd = open("/dev/null", O_WRONLY);
    pm_gen_config_default(&cfg, PM_GEN_MARKET);
    cfg.collectors = 0;
    CHECK(pm_gen_write(ctx, &cfg, fd, NULL, &fault) == PM_ERR_ARG && fault.message[0]);
    pm_gen_config_default(&cfg, PM_GEN_MARKET);
    cfg.operators = 0;
    CHECK(pm_gen_write(ctx, &cfg, fd, NULL, &fault) == PM_ERR_ARG);
    pm_gen_config_default(&cfg, PM_GEN_MARKET);
    cfg.chain_ppm = 999000;
    CHECK(pm_gen_write(ctx, &cfg, fd, NULL, &fault) == PM_ERR_ARG);
    close(fd);

    /* a write that fails */
    pm_gen_config_default(&cfg, PM_GEN_TRANSFERS);
    cfg.txs = 10;
    fd = open("/dev/null", O_RDONLY);
    CHECK(pm_gen_write(ctx, &cfg, fd, NULL, &fault) == PM_ERR_IO && fault.message[0] &&
          fault.errnum != 0);
    close(fd);
}

int main(void)
{
    ctx = pm_context_create();
    CHECK(ctx != NULL);
    if (!ctx)
        return pm_test_finish();
    test_determinism();
    test_market();
    test_market_chunks();
    test_market_defaults();
    test_transfers();
    test_large_state();
    test_small_and_errors();
    pm_context_destroy(ctx);
    return pm_test_finish();
}
