/*
 * context.h — the shared, read-only context (see pm_context in postmark.h)
 * and the misuse (illegal-argument) reporting every public entry point
 * uses.
 */
#ifndef PM_ENGINE_CONTEXT_H
#define PM_ENGINE_CONTEXT_H

#include "hash.h"
#include "postmark.h"

#include <secp256k1.h>

struct pm_context {
    secp256k1_context *secp;       /* verify + sign; read-only after create */
    pm_tag_midstates *tags;
    pm_illegal_fn illegal;
    void *illegal_data;
};

/* Inside the library, calls to the public wire functions pass
 * pm_context_static: their arguments were checked where they entered the
 * library, so a failed check there is a library bug, for the default
 * callback (abort), not for the embedding program's. */

/* Report API misuse through ctx's callback (or the default one when ctx is
 * NULL): "function: condition". Returns so the caller can return
 * PM_ERR_ARG / 0. */
void pm_illegal(const pm_context *ctx, const char *function, const char *condition);

/* Argument check: on failure report and return `ret` from the caller. */
#define PM_ARG_CHECK(ctx, cond, ret)                                                \
    do {                                                                            \
        if (__builtin_expect(!(cond), 0)) {                                         \
            pm_illegal((ctx), __func__, #cond);                                     \
            return ret;                                                             \
        }                                                                           \
    } while (0)

/* The check for functions that need a context from pm_context_create (its
 * midstates and secp256k1 context), not pm_context_static. */
#define PM_ARG_CHECK_PROPER(ctx, ret)                                               \
    PM_ARG_CHECK((ctx), (ctx) != NULL && (ctx)->tags != NULL, ret)

#endif
