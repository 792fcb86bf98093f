/*
 * resume.h — where a `pack` run resumes (cli.md, "Resume").
 *
 * Beside the chain, CHAIN.runs is an append-only journal of text lines:
 *   block <height> <hash> <last index> <prefix> <check>
 *       the block about to be appended; the stream index of its last
 *       transaction; the prefix hash of the stream up to that record
 *   end <height> <tip hash> <records> <prefix> <check>
 *       a run stopped (its input ended, or a signal) with the chain at
 *       that tip, having consumed <records> records of a stream whose
 *       prefix hash over them is <prefix>
 * <check> is XXH64 of the line before it: a line cut by a full disk, or
 * two lines glued by one, never parses. A line is synced before what it
 * announces (a block line before its block is appended; an end line after
 * the run's rejects), and a failed append is cut off again at once.
 *
 * The prefix hash: P(0) = H("postmark/stream-prefix", header) and
 * P(k+1) = H("postmark/stream-prefix", P(k) || u32le(size) || record k),
 * so P(k) commits to the header and the first k records byte for byte
 * (a record over the size limit, skipped unread, counts by its length).
 *
 * Resuming: the last journal line naming the validated tip (height and
 * hash) says how many records K were consumed and their prefix hash. The
 * new run hashes its stream's first K records as it reads them: equal,
 * it continues at record K; otherwise (or when the stream is shorter) the
 * stream is another one and is packed from record 0 (the records read
 * are kept for that when the input cannot be read again). Everything
 * after K is packed against the state it saw before (the chain holds
 * every earlier accepted transaction), so the verdicts and block
 * boundaries are the interrupted run's.
 */
#ifndef PM_TOOLS_RESUME_H
#define PM_TOOLS_RESUME_H

#include "fault.h"
#include "postmark.h"

#include <stddef.h>
#include <stdint.h>

/* ---- the prefix hash ---------------------------------------------------- */

typedef struct {
    uint8_t cur[32];    /* P(count) */
    uint64_t count;
    /* P(n) for n in [base, count], kept while a block may still end there. */
    uint8_t *ring;
    size_t ring_cap, ring_head, ring_len;
    uint64_t base;
    struct evp_md_ctx_st *sha;      /* reused for every record */
    struct evp_md_st *md;
    uint8_t tag2[64];               /* SHA256(tag) twice: the tagged prefix */
    int keep;           /* keep P(n) in the ring */
} stream_prefix;

/* Start at P(0) of `header`. keep: remember each P(n) for prefix_take. */
int prefix_init(stream_prefix *p, const uint8_t header[60], int keep);
/* Continue from a known P(n) (a resume point): count n, nothing below it
 * kept. */
void prefix_start_at(stream_prefix *p, uint64_t n, const uint8_t hash[32]);
/* Advance over one record (bytes NULL: an oversized record of `size`).
 * Returns 1, or 0 when out of memory. */
int prefix_add(stream_prefix *p, const uint8_t *bytes, size_t size);
/* P(n), n in [base, count] (NULL otherwise); then forget everything below
 * n. */
const uint8_t *prefix_take(stream_prefix *p, uint64_t n);
void prefix_free(stream_prefix *p);

/* ---- the journal ------------------------------------------------------ */

typedef struct {
    int found;          /* a line names the tip */
    uint64_t records;   /* K: records consumed */
    uint8_t prefix[32]; /* P(K) */
} resume_point;

/* Read CHAIN.runs for the tip (height -1: no block). A missing journal is
 * no line; any other failure to open or read it is an error (-1, *fault
 * with errnum): a journal that cannot be read must not be taken for none. */
int runs_find(const char *chain_path, int64_t tip_height, const uint8_t tip_hash[32],
              resume_point *rp, tool_fault *fault);

typedef struct {
    int fd;
    char *path;
} runs_journal;

/* Open CHAIN.runs for appending (created, and its directory synced, when
 * missing); a cut last line is removed first. Returns 0, or -1 with *fault
 * (errnum; the offset when a read or the cut fails). */
int runs_open(runs_journal *j, const char *chain_path, tool_fault *fault);
/* Append a line and fdatasync it. Returns 0, or -1 with errno (the file is
 * cut back to where it was). */
int runs_block(runs_journal *j, uint64_t height, const uint8_t hash[32], uint64_t last_index,
                  const uint8_t prefix[32]);
int runs_end(runs_journal *j, int64_t height, const uint8_t tip[32], uint64_t records,
                const uint8_t prefix[32]);
void runs_close(runs_journal *j);

/* ---- the rejects file ---------------------------------------------------- */

/* The byte offset in the rejects CSV at `path` where lines with an index
 * of `below` or more begin (or a line cut short, or anything that is not
 * a reject line): the file is cut there on resume. 0 when the header
 * itself is missing or cut. Returns 0, or -1 with errno. */
int rejects_cut_offset(const char *path, uint64_t below, uint64_t *offset);

#endif
