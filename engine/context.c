/*
 * context.c — pm_context (shared read-only state), misuse reporting, and
 * the public one-shot hash functions, which borrow a short-lived hasher
 * because a const context may be used by many threads at once.
 */
#include "context.h"

#include <secp256k1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void default_illegal(const char *message, void *data)
{
    (void)data;
    fprintf(stderr, "postmark: illegal argument: %s\n", message);
    abort();
}

/* No secp256k1 context and no midstates: it can report misuse and no more
 * (PM_ARG_CHECK_PROPER tells it apart). Constant, so shared freely. */
static const pm_context context_static = {NULL, NULL, default_illegal, NULL};
const pm_context *const pm_context_static = &context_static;

void pm_illegal(const pm_context *ctx, const char *function, const char *condition)
{
    char message[256];
    snprintf(message, sizeof message, "%s: %s", function, condition);
    if (ctx && ctx->illegal)
        ctx->illegal(message, ctx->illegal_data);
    else
        default_illegal(message, NULL);
}

pm_context *pm_context_create(void)
{
    pm_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    ctx->tags = pm_tag_midstates_create();
    ctx->illegal = default_illegal;
    if (!ctx->secp || !ctx->tags) {
        pm_context_destroy(ctx);
        return NULL;
    }
    return ctx;
}

void pm_context_destroy(pm_context *ctx)
{
    if (!ctx)
        return;
    PM_ARG_CHECK(ctx, ctx != pm_context_static, );
    if (ctx->secp)
        secp256k1_context_destroy(ctx->secp);
    pm_tag_midstates_destroy(ctx->tags);
    free(ctx);
}

void pm_context_set_illegal_callback(pm_context *ctx, pm_illegal_fn fn, void *data)
{
    PM_ARG_CHECK(ctx, ctx != NULL, );
    PM_ARG_CHECK(ctx, ctx != pm_context_static, );
    ctx->illegal = fn ? fn : default_illegal;
    ctx->illegal_data = fn ? data : NULL;
}

static const char *const reason_names[PM_REASON_COUNT] = {
    "NONE",           "MALFORMED",       "DUPLICATE_INPUT",     "BAD_SEQUENCE",
    "UNKNOWN_OPERATOR", "SERIES_EXISTS", "WRONG_ISSUER",        "UNKNOWN_SERIES",
    "SERIAL_OUT_OF_RANGE", "ALREADY_MINTED", "MISSING_INPUT",   "NOT_CONSERVED",
    "BAD_SIGNATURE",  "BAD_HEADER",      "TRUNCATED",           "BLOCK_MALFORMED",
    "BAD_LINK",       "BAD_MERKLE",
};

const char *pm_reason_name(pm_reason reason)
{
    if ((unsigned)reason >= PM_REASON_COUNT)
        return "UNKNOWN";
    return reason_names[reason];
}

int pm_reason_from_name(const pm_context *ctx, pm_reason *reason, const char *name)
{
    PM_ARG_CHECK(ctx, ctx != NULL, 0);
    PM_ARG_CHECK(ctx, reason != NULL, 0);
    PM_ARG_CHECK(ctx, name != NULL, 0);
    for (unsigned i = 1; i < PM_REASON_COUNT; i++) {
        if (strcmp(reason_names[i], name) == 0) {
            *reason = (pm_reason)i;
            return 1;
        }
    }
    return 0;
}

const char *pm_status_text(pm_status status)
{
    switch (status) {
    case PM_OK: return "ok";
    case PM_ERR_INVALID: return "invalid";
    case PM_ERR_NOMEM: return "out of memory";
    case PM_ERR_IO: return "input/output error";
    case PM_ERR_STATE: return "not possible in the current state";
    case PM_ERR_MISMATCH: return "another chain";
    case PM_ERR_ARG: return "illegal argument";
    }
    return "unknown status";
}

/* Runs `expr` (which uses `h`) with a temporary hasher. The caller has
 * checked ctx (PM_ARG_CHECK_PROPER) and every pointer `expr` reads. */
#define WITH_HASHER(ctx, expr)                                                      \
    do {                                                                            \
        pm_hasher *h = pm_hasher_create((ctx)->tags);                               \
        if (!h)                                                                     \
            return 0;                                                               \
        int ok_ = (expr);                                                           \
        pm_hasher_destroy(h);                                                       \
        return ok_;                                                                 \
    } while (0)

int pm_chain_id(const pm_context *ctx, uint8_t out[32], const pm_chain_params *params)
{
    PM_ARG_CHECK_PROPER(ctx, 0);
    PM_ARG_CHECK(ctx, out != NULL, 0);
    PM_ARG_CHECK(ctx, params != NULL, 0);
    WITH_HASHER(ctx, pm_hash_chain_id(h, out, params));
}

int pm_tx_txid(const pm_context *ctx, uint8_t out[32], const pm_tx *tx)
{
    PM_ARG_CHECK_PROPER(ctx, 0);
    PM_ARG_CHECK(ctx, out != NULL, 0);
    PM_ARG_CHECK(ctx, tx != NULL, 0);
    WITH_HASHER(ctx, pm_hash_txid(h, out, tx));
}

int pm_tx_sighash(const pm_context *ctx, uint8_t out[32], const uint8_t chain_id[32],
                  const uint8_t txid[32])
{
    PM_ARG_CHECK_PROPER(ctx, 0);
    PM_ARG_CHECK(ctx, out != NULL, 0);
    PM_ARG_CHECK(ctx, chain_id != NULL, 0);
    PM_ARG_CHECK(ctx, txid != NULL, 0);
    WITH_HASHER(ctx, pm_hash_sighash(h, out, chain_id, txid));
}

int pm_tx_leaf(const pm_context *ctx, uint8_t out[32], const pm_tx *tx, const uint8_t txid[32])
{
    PM_ARG_CHECK_PROPER(ctx, 0);
    PM_ARG_CHECK(ctx, out != NULL, 0);
    PM_ARG_CHECK(ctx, tx != NULL, 0);
    PM_ARG_CHECK(ctx, txid != NULL, 0);
    WITH_HASHER(ctx, pm_hash_leaf(h, out, tx, txid));
}

int pm_merkle_root(const pm_context *ctx, uint8_t out[32], const uint8_t (*leaves)[32], size_t n)
{
    PM_ARG_CHECK_PROPER(ctx, 0);
    PM_ARG_CHECK(ctx, out != NULL, 0);
    PM_ARG_CHECK(ctx, leaves != NULL, 0);
    PM_ARG_CHECK(ctx, n >= 1, 0);
    WITH_HASHER(ctx, pm_hash_merkle(h, out, leaves, n));
}

int pm_block_hash(const pm_context *ctx, uint8_t out[32], const uint8_t header[80])
{
    PM_ARG_CHECK_PROPER(ctx, 0);
    PM_ARG_CHECK(ctx, out != NULL, 0);
    PM_ARG_CHECK(ctx, header != NULL, 0);
    WITH_HASHER(ctx, pm_hash_block(h, out, header));
}

int pm_tagged_hash(const pm_context *ctx, uint8_t out[32], const char *tag, const uint8_t *data,
                   size_t size)
{
    PM_ARG_CHECK_PROPER(ctx, 0);
    PM_ARG_CHECK(ctx, out != NULL, 0);
    PM_ARG_CHECK(ctx, tag != NULL, 0);
    PM_ARG_CHECK(ctx, data != NULL || size == 0, 0);
    WITH_HASHER(ctx, pm_hash_tagged_any(h, out, tag, data, size));
}
