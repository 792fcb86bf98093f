/*
 * consumer.c — a program that uses an *installed* Postmark the way an
 * embedding program would: only <postmark.h> and the library, found by
 * pkg-config or find_package(postmark). tests/cli_install.sh builds it
 * against a copy installed into a temporary prefix and runs it.
 *
 * It checks the chain id of the s1 vectors' chain (network "upu-dpg-test",
 * the governance key of bytes 28..59 of s1.pmtx) against the value that the
 * independent implementation published in vectors/chain.txt, that the
 * misuse callback can be replaced across the library boundary, and that
 * pm_context_static is exported.
 * Exit status 0 when every check holds.
 */
#include <postmark.h>

#include <stdio.h>
#include <string.h>

static const uint8_t governance_key[PM_KEY_SIZE] = {
    0xf2, 0x73, 0x7a, 0xfb, 0x7d, 0x66, 0xb0, 0x7c, 0x9c, 0xf5, 0x14,
    0x4b, 0x1a, 0xb0, 0x36, 0x60, 0x4f, 0x1d, 0x54, 0xb5, 0xf9, 0x05,
    0xe9, 0x32, 0x1c, 0x8f, 0x73, 0x01, 0x93, 0x35, 0xe3, 0xf7,
};
static const char expected_chain_id[] =
    "74801713de9759e22bfb4a8734a7aa04f3a05b4d197af055deae67a1b4965323";

static void count_misuse(const char *message, void *data)
{
    (void)message;
    ++*(int *)data;
}

int main(void)
{
    int failures = 0;
    pm_context *ctx = pm_context_create();
    if (!ctx) {
        fprintf(stderr, "consumer: pm_context_create failed\n");
        return 1;
    }

    pm_chain_params params;
    memset(&params, 0, sizeof params);
    memcpy(params.network, "upu-dpg-test", strlen("upu-dpg-test"));
    memcpy(params.governance_key, governance_key, sizeof governance_key);

    uint8_t id[PM_HASH_SIZE];
    char hex[2 * PM_HASH_SIZE + 1];
    if (!pm_chain_id(ctx, id, &params)) {
        fprintf(stderr, "consumer: pm_chain_id failed\n");
        failures++;
    } else {
        for (size_t i = 0; i < PM_HASH_SIZE; i++)
            snprintf(hex + 2 * i, 3, "%02x", id[i]);
        if (strcmp(hex, expected_chain_id) != 0) {
            fprintf(stderr, "consumer: chain id %s, expected %s\n", hex, expected_chain_id);
            failures++;
        }
    }

    /* Misuse (a merkle root of no leaves) reaches our callback, which
     * returns: the call then fails with 0 instead of aborting. */
    int misuses = 0;
    pm_context_set_illegal_callback(ctx, count_misuse, &misuses);
    uint8_t leaf[1][PM_HASH_SIZE] = {{0}};
    if (pm_merkle_root(ctx, id, (const uint8_t(*)[PM_HASH_SIZE])leaf, 0) != 0 || misuses != 1) {
        fprintf(stderr, "consumer: misuse callback not honoured (%d calls)\n", misuses);
        failures++;
    }
    /* The wire functions report to it too (no bytes but a size of 4). */
    pm_block blk;
    const uint8_t *no_bytes = NULL;
    if (pm_block_parse(ctx, &blk, NULL, no_bytes, 4) != 0 || misuses != 2) {
        fprintf(stderr, "consumer: pm_block_parse misuse not reported (%d calls)\n", misuses);
        failures++;
    }

    /* pm_context_static is exported: a caller without a context parses
     * with it. One byte is a malformed transaction (data, not misuse). */
    static const uint8_t one_byte[1] = {1};
    pm_tx tx;
    pm_parse_error perr;
    if (pm_tx_parse(pm_context_static, &tx, &perr, one_byte, 1) != 0 ||
        strcmp(perr.field, "size") != 0) {
        fprintf(stderr, "consumer: pm_tx_parse with pm_context_static\n");
        failures++;
    }

    if (strcmp(pm_reason_name(PM_REASON_MISSING_INPUT), "MISSING_INPUT") != 0) {
        fprintf(stderr, "consumer: pm_reason_name(MISSING_INPUT) = %s\n",
                pm_reason_name(PM_REASON_MISSING_INPUT));
        failures++;
    }

    pm_context_destroy(ctx);
    if (failures == 0)
        printf("consumer: chain id %s ok (postmark %d.%d.%d)\n", hex, PM_VERSION_MAJOR,
               PM_VERSION_MINOR, PM_VERSION_PATCH);
    return failures == 0 ? 0 : 1;
}
