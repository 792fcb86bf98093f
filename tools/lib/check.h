/*
 * check.h — argument checks in postmark_tools.
 *
 * This library is not the public contract (include/postmark.h is): its
 * callers are the program, its tests and benchmarks, so a broken
 * precondition is a bug in them. The check reports where and aborts, as
 * the library's default illegal callback does, instead of returning an
 * error every caller would have to branch on.
 */
#ifndef PM_TOOLS_CHECK_H
#define PM_TOOLS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define TOOL_CHECK(cond)                                                       \
    do {                                                                            \
        if (__builtin_expect(!(cond), 0)) {                                         \
            fprintf(stderr, "postmark_tools: %s: illegal argument: %s\n", __func__, \
                    #cond);                                                         \
            abort();                                                                \
        }                                                                           \
    } while (0)

#endif
