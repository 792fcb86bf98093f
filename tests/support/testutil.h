/*
 * testutil.h — the small harness every test program uses: checks that
 * count and report (never abort on the first failure), file and hex
 * helpers, and the vectors folder. A test's main ends with
 * `return pm_test_finish();`, which prints "N passed, N failed".
 */
#ifndef PM_TESTUTIL_H
#define PM_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gen.h"
#include "postmark.h"

extern unsigned long pm_test_passed, pm_test_failed;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (cond) {                                                                 \
            pm_test_passed++;                                                       \
        } else {                                                                    \
            pm_test_failed++;                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

/* Like CHECK, with a printf-style explanation on failure. */
#define CHECKF(cond, ...)                                                           \
    do {                                                                            \
        if (cond) {                                                                 \
            pm_test_passed++;                                                       \
        } else {                                                                    \
            pm_test_failed++;                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
        }                                                                           \
    } while (0)

/* Prints the closing "N passed, N failed" line; returns the exit code. */
int pm_test_finish(void);

/* Path of a file in the vectors folder (static buffer, one at a time).
 * A missing vectors folder fails the test (never a skip). */
const char *pm_vector_path(const char *name);

/* Read a whole file. Returns a malloc'd buffer (caller frees) and its size,
 * or NULL (and counts a failure) when it cannot be read. */
uint8_t *pm_read_file(const char *path, size_t *size);

/* Write a whole file; returns 1 on success. */
int pm_write_file(const char *path, const uint8_t *data, size_t size);

/* Lowercase hex of n bytes into out (2n+1 chars). Returns out. */
char *pm_hex(char *out, const uint8_t *bytes, size_t n);

/* Parse 2n hex digits into bytes; returns 1 on success. */
int pm_unhex(uint8_t *out, size_t n, const char *hex);

/* A vectors file read whole, its header parsed and its whole records
 * framed (a partial last record is left out). */
typedef struct {
    uint8_t *data;
    size_t size;
    pm_chain_params params;
    size_t n;
    const uint8_t **rec;
    size_t *len;
} pm_vfile;

/* Load vectors file `name`; returns 1, or 0 (failure counted) when it
 * cannot be read or has a bad header. Free with pm_vfile_free. */
int pm_vfile_load(pm_vfile *f, const char *name);
void pm_vfile_free(pm_vfile *f);

/* One row of a vectors rejects file (index,txid,reason; no txid for
 * MALFORMED). */
typedef struct {
    uint64_t index;
    int has_txid;
    uint8_t txid[32];
    pm_reason reason;
} pm_vreject;

/* Load the rows of rejects file `name` (after its column names) into a
 * malloc'd array (caller frees). Returns 1, or 0 (failure counted, *rows
 * NULL) when it cannot be read or a row is not index,txid,reason. */
int pm_vrejects_load(pm_vreject **rows, size_t *n, const char *name);

/* The transaction records of a block (at most cap of them, unparsed):
 * tx[i] and len[i] point into `block`. Returns how many; 0 when the block
 * is not framed. */
size_t pm_block_records(const uint8_t *block, size_t size, const uint8_t **tx, size_t *len,
                        size_t cap);

/* A fresh temporary directory (mkdtemp) for this test; static buffer. */
const char *pm_test_tmpdir(void);

/* Write the stream `cfg` describes (tools/lib/gen.h) into memory: a
 * malloc'd buffer (caller frees) and its size, or NULL with the failure
 * counted. `report` may be NULL. */
uint8_t *pm_test_gen_stream(const pm_context *ctx, const pm_gen_config *cfg,
                            pm_gen_report *report, size_t *size);

#endif
