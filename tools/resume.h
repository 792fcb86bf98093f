/*
 * resume.h — where a `pack` run resumes after a crash.
 *
 * Beside the chain, CHAIN.runs is an append-only journal of text lines:
 *   run <stream-id> <start height>        a pack run begins on a stream
 *   block <height> <hash> <last index>    the block about to be appended,
 *                                         and the stream index of its last
 *                                         transaction
 * Each line is fsync'ed before what it announces: the run line before the
 * run's first block, a block line before its block is appended. So every
 * block that is durable in the chain has its line, and a re-run of the
 * same stream finds, for the validated tip (height and hash), exactly how
 * far into the stream the durable chain reaches; it resumes at the next
 * record. Everything after it is packed again against the very state it
 * saw before (the chain holds every earlier accepted transaction), so the
 * verdicts and blocks are those the interrupted run was making; blocks
 * close only when full or at the end of the stream, so boundaries match.
 * Lines for blocks that never became durable (cut off by the crash) name
 * a height above the tip, or another hash, and are ignored.
 *
 * How a stream is recognised: H("postmark/stream-id", header || first
 * record), stable while a stream grows (a node appending to it), different
 * for different streams. A stream that is not the last run's starts at its
 * record 0, as a new run.
 */
#ifndef PM_TOOLS_RESUME_H
#define PM_TOOLS_RESUME_H

#include "postmark.h"

#include <stddef.h>
#include <stdint.h>

/* The identity of a stream: its header and first record (NULL/0 when the
 * stream has none). Returns 1, or 0 when out of memory. */
int pm_stream_identity(const pm_context *ctx, uint8_t id[32], const uint8_t header[60],
                       const uint8_t *first, size_t first_size);

typedef enum {
    PM_RESUME_NEW_RUN,   /* another stream (or none): start at record 0 */
    PM_RESUME_CONTINUE,  /* the same stream: start at *resume_at */
    PM_RESUME_UNKNOWN    /* the same stream, but the tip block has no line */
} pm_resume_kind;

/* Where to start `stream_id` on a chain whose validated tip is
 * (tip_height, tip_hash). */
pm_resume_kind pm_journal_resume(const char *chain_path, const uint8_t stream_id[32],
                                 int64_t tip_height, const uint8_t tip_hash[32],
                                 uint64_t *resume_at);

/* Append a line and fsync it (and the directory when the journal is new).
 * Returns 0, or -1 with errno. */
int pm_journal_append_run(const char *chain_path, const uint8_t stream_id[32],
                          uint64_t start_height);
int pm_journal_append_block(int journal_fd, uint64_t height, const uint8_t hash[32],
                            uint64_t last_index);
/* Open the journal for appending block lines (-1 with errno on failure). */
int pm_journal_open(const char *chain_path);

/* Keep the lines of a rejects CSV whose index is below `below` (a crashed
 * run may have written later ones, which are reported again). Rewrites the
 * file atomically. Returns 0, or -1 with errno. A missing file is fine. */
int pm_rejects_truncate(const char *path, uint64_t below);

#endif
