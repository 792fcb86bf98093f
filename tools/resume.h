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

/* The identity of a stream: its header and first record (NULL/0 when the
 * stream has none). */
int pm_stream_identity(const pm_context *ctx, uint8_t id[32], const uint8_t header[60],
                       const uint8_t *first, size_t first_size);

/* Read the last journal line of `chain_path`.runs. Returns 1 and sets id,
 * start_height when there is one, 0 otherwise. */
int pm_journal_last_run(const char *chain_path, uint8_t id[32], uint64_t *start_height);

/* Append a run line and fsync it (and the directory when the journal is
 * new). Returns 0, or -1 with errno. */
int pm_journal_append_run(const char *chain_path, const uint8_t id[32], uint64_t start_height);

/* The transactions of the blocks since a run's start, as digests, matched
 * in order against the stream's records. */
typedef struct {
    uint64_t start_height;
    struct pm_tx_digest *tx;
    size_t n, cap;
    size_t matched;
    int failed;      /* out of memory or a block that does not frame */
} pm_resume;

void pm_resume_init(pm_resume *r, uint64_t start_height);
void pm_resume_free(pm_resume *r);
/* A pm_block_visit_fn: records the transactions of blocks at or after the
 * run's start height. */
void pm_resume_visit(void *data, uint64_t position, const uint8_t *block, size_t size);
/* Match the next stream record. Returns 1 while records are being
 * consumed by the match (skip it), 0 once every chain transaction has
 * been matched (submit it). */
int pm_resume_match(pm_resume *r, const uint8_t *record, size_t size);
/* 1 when every transaction has been matched. */
int pm_resume_done(const pm_resume *r);

/* Keep the lines of a rejects CSV whose index is below `below` (a crashed
 * run may have written later ones, which are reported again). Rewrites the
 * file atomically. Returns 0, or -1 with errno. A missing file is fine. */
int pm_rejects_truncate(const char *path, uint64_t below);

#endif
