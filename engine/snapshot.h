/*
 * snapshot.h — internal entry points of the state snapshot module
 * (snapshot.c; the public face is pm_engine_save_snapshot and
 * pm_engine_create_from_snapshot in postmark.h, the file format is
 * documented at the top of snapshot.c and in docs/snapshot.md).
 *
 * These are for the tests, the fuzz target and the benchmark: the save
 * without the argument checks, and a function that recomputes the section
 * checksums of a snapshot held in memory (so that a test or the fuzzer can
 * make corruptions that only the semantic checks can catch).
 */
#ifndef PM_ENGINE_SNAPSHOT_H
#define PM_ENGINE_SNAPSHOT_H

#include "postmark.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

/* Sizes of the format (see snapshot.c). */
#define PM_SNAP_PREAMBLE_SIZE 16
#define PM_SNAP_SECTION_HEADER_SIZE 24
#define PM_SNAP_CHECKSUM_SIZE 16
#define PM_SNAP_HEAD_SIZE 208
#define PM_SNAP_OPERATOR_SIZE 109
#define PM_SNAP_SERIES_SIZE 12
#define PM_SNAP_MINTED_SIZE 12
#define PM_SNAP_UTXO_SIZE 79
#define PM_SNAP_UNDO_HEADER_SIZE 80

/* pm_engine_save_snapshot without the argument checks. */
pm_status pm_snapshot_save(pm_engine *engine, const char *path);

/* The checksum that follows a framed section (header + payload): the
 * canonical XXH3-128 of those bytes. (Inline: the writer and the test
 * hooks share it, and the library keeps no out-of-line copy.) */
static inline void pm_snapshot_section_checksum(uint8_t out[16], const uint8_t *framed,
                                                size_t size)
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(framed, size));
    memcpy(out, c.digest, 16);
}

/* Tests and fuzzing (internal/test_hooks.c, not in the library): recompute
 * the checksum of every section of a snapshot image in memory, walking the
 * section framing from the preamble until END or until a section does not
 * fit. Returns the number of sections resealed. */
size_t pm_snapshot_reseal(uint8_t *image, size_t size);

#endif
