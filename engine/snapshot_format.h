/*
 * snapshot_format.h — what the snapshot writer (snapshot.c) and loader
 * (snapshot_load.c) share: the file's magic and version, the section
 * tags, the fixed front, the undo format word. The format itself is
 * docs/snapshot.md and the design note at the top of snapshot.c.
 */
#ifndef PM_ENGINE_SNAPSHOT_FORMAT_H
#define PM_ENGINE_SNAPSHOT_FORMAT_H

#include "snapshot.h"
#include "undo.h"
#include "wire.h"

#include <stdint.h>
#include <string.h>

#define SNAP_MAGIC "POSTMKSN"
#define SNAP_VERSION 1u

/* The fixed front of the file: preamble, then HEAD framed. */
#define HEAD_SECTION_SIZE \
    (PM_SNAP_SECTION_HEADER_SIZE + PM_SNAP_HEAD_SIZE + PM_SNAP_CHECKSUM_SIZE)
#define FRONT_SIZE (PM_SNAP_PREAMBLE_SIZE + HEAD_SECTION_SIZE)
#define END_PAYLOAD_SIZE 8

static const char *const section_tags[] = {"HEAD", "OPER", "SERI", "MINT", "UTXO", "UNDO", "ENDM"};
enum { SEC_HEAD, SEC_OPER, SEC_SERI, SEC_MINT, SEC_UTXO, SEC_UNDO, SEC_END };

/* ---------------------------------------------------------------------- */
/* The undo log records of state.c                                         */
/* ---------------------------------------------------------------------- */

/* The undo logs are state.c's bytes, in the layout of undo.h; a load
 * checks every record before it is trusted (a disconnect applies them
 * without checks). */
static inline void undo_format(uint8_t out[8])
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    out[0] = first ? 1 : 2; /* 1: little-endian logs */
    for (unsigned k = 1; k <= UNDO_KINDS; k++)
        out[k] = (uint8_t)undo_payload_size(k);
}


static inline void section_framing(uint8_t out[PM_SNAP_SECTION_HEADER_SIZE], int sec, uint64_t count,
                            uint64_t length)
{
    memcpy(out, section_tags[sec], 4);
    pm_write_u32le(out + 4, 0);
    pm_write_u64le(out + 8, count);
    pm_write_u64le(out + 16, length);
}

#endif
