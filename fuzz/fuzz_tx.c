/*
 * fuzz_tx.c — libFuzzer target for pm_tx_parse (protocol §3, §5 step 1).
 *
 * The input is one transaction record. Whatever it holds, parsing must not
 * crash or read out of bounds (the build adds ASan and UBSan). When it
 * parses, the view must be consistent and serialize back to the very same
 * bytes, every text must pass the §1 rule, and the duplicate-input check
 * must agree with a quadratic reference. When it does not, the error must
 * name a field at an offset inside the input. A violation aborts, which
 * the fuzzer reports with the input.
 *
 * Seeds: fuzz/corpus/fuzz_tx/ (a few records of s1.pmtx); any record of
 * the vectors is a good seed (tools: fuzz/seed_from_vectors.sh).
 */
#include "postmark.h"
#include "postmark_internal.h"

#include <stdlib.h>
#include <string.h>

static void require(int cond)
{
    if (!cond)
        abort();
}

static int naive_duplicate(const pm_tx *tx, size_t *second)
{
    for (size_t j = 1; j < tx->n_in; j++)
        for (size_t i = 0; i < j; i++)
            if (memcmp(pm_tx_input_raw(tx, i), pm_tx_input_raw(tx, j), PM_INPUT_SIZE) == 0) {
                *second = j;
                return 1;
            }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pm_tx tx;
    pm_parse_error err = {(size_t)-1, NULL, NULL};
    int ok = pm_tx_parse(pm_context_static, &tx, &err, data, size);
    /* The same verdict without an error record. */
    pm_tx tx2;
    require(pm_tx_parse(pm_context_static, &tx2, NULL, data, size) == ok);
    if (!ok) {
        require(err.field != NULL && err.reason != NULL && err.offset <= size);
        return 0;
    }

    require(tx.bytes == data && tx.size == size && tx.version == 1);
    require(tx.type >= PM_TX_REGISTER && tx.type <= PM_TX_TRANSFER);
    require(size >= PM_TX_MIN_SIZE && size <= PM_TX_MAX_SIZE);
    require(tx.unsigned_size + tx.n_sigs * PM_SIG_SIZE == size);
    require(tx.sigs == data + tx.unsigned_size);
    require(tx.n_sigs == (tx.type == PM_TX_TRANSFER ? tx.n_in : 1));
    if (tx.type == PM_TX_REGISTER || tx.type == PM_TX_SERIES) {
        require(tx.text_len >= 1 && pm_text_check(tx.text, tx.text_len, NULL) == NULL);
        require(tx.text_len <= (tx.type == PM_TX_REGISTER ? 64u : 128u));
    }
    if (tx.type == PM_TX_REGISTER)
        require(tx.operator_id != 0);
    if (tx.type == PM_TX_SERIES)
        require(tx.max_supply != 0);

    /* Serialize back: same bytes. */
    uint8_t *out = malloc(size);
    require(out != NULL);
    require(pm_tx_serialize(pm_context_static, NULL, 0, &tx) == size);
    require(pm_tx_serialize(pm_context_static, out, size, &tx) == size);
    require(memcmp(out, data, size) == 0);
    free(out);

    /* Accessors. */
    for (size_t i = 0; i < tx.n_in; i++) {
        pm_outpoint op;
        pm_tx_input(pm_context_static, &op, &tx, i);
        require(memcmp(op.txid, pm_tx_input_raw(&tx, i), 32) == 0);
    }
    for (size_t i = 0; i < tx.n_out; i++) {
        pm_output o;
        uint8_t raw[PM_OUTPUT_SIZE];
        pm_tx_output(pm_context_static, &o, &tx, i);
        require(o.kind == PM_OUTPUT_STAMP || (o.kind == PM_OUTPUT_CREDIT && o.amount != 0));
        pm_output_encode(pm_context_static, raw, &o);
        require(memcmp(raw, pm_tx_output_raw(&tx, i), PM_OUTPUT_SIZE) == 0);
    }

    /* Duplicate inputs: the linear check agrees with the quadratic one. */
    size_t second = 0, want_second = 0;
    int dup = pm_tx_has_duplicate_input(pm_context_static, &tx, &second);
    int want = tx.type == PM_TX_TRANSFER && naive_duplicate(&tx, &want_second);
    require(dup == want && (!dup || second == want_second));
    return 0;
}
