/*
 * resume.h — where a `pack` run resumes after a crash.
 *
 * How a stream is recognised: its identity is the tagged hash
 * H("postmark/stream-id", header || first record), stable while the
 * stream grows (a node appending to it) and different for different
 * streams in practice. Beside the chain, CHAIN.runs is an append-only
 * journal of text lines "run <stream-id hex> <start height>", one per pack
 * run that started appending, written and fsync'ed before the run's first
 * block.
 *
 * How far a run got is not written separately: it is read off the chain.
 * The blocks from the last run's start height are, transaction by
 * transaction, a subsequence of its stream's records (§7: the accepted
 * ones, in order); the record matched by the last transaction of the
 * chain is the last one whose effect is durable. Everything after it is
 * packed again — against the very state it saw before (the chain holds
 * every earlier accepted transaction), so its verdicts and the blocks it
 * makes are the ones the interrupted run was making. Blocks close only
 * when full or at the end of the stream, so block boundaries coincide too.
 */
#ifndef PM_TOOLS_RESUME_H
#define PM_TOOLS_RESUME_H

#include "chainfile.h"

/* The identity of a stream file (needs its first record, if any). */
int pm_stream_identity(const pm_context *ctx, uint8_t id[32], const pm_file *stream);

/* Read the last journal line of `chain_path`.runs. Returns 1 and sets id,
 * start_height when there is one, 0 otherwise. */
int pm_journal_last_run(const char *chain_path, uint8_t id[32], uint64_t *start_height);

/* Append a run line and fsync it (and the directory when the journal is
 * new). Returns 0, or -1 with errno. */
int pm_journal_append_run(const char *chain_path, const uint8_t id[32], uint64_t start_height);

/* The stream index to resume from: one past the record matched by the
 * chain's last transaction, matching blocks [start_height, n_blocks) of
 * `chain` against `stream`. Returns 1 and *resume_at, or 0 when the
 * blocks are not a subsequence of the stream (then they came from
 * elsewhere). */
int pm_resume_point(const pm_file *chain, uint64_t start_height, const pm_file *stream,
                    uint64_t *resume_at);

/* Keep the lines of a rejects CSV whose index is below `below` (a crashed
 * run may have written later ones, which are reported again). Rewrites the
 * file atomically. Returns 0, or -1 with errno. A missing file is fine. */
int pm_rejects_truncate(const char *path, uint64_t below);

#endif
