/*
 * provenance.h — questions about who owns what, answered from a chain file
 * by scanning it: the history of one stamp (trace) and what one key owns
 * now (holdings).
 *
 * The chain is assumed valid (`postmark replay` verifies it): signatures
 * and conservation are not checked. But nothing is trusted blindly: every
 * block is framed and every transaction parsed, and a file that cannot be
 * read that far, or whose records contradict the history being followed
 * (a stamp issued twice, spent without being carried on, an input that
 * names no earlier output), ends the scan with an error, never a crash.
 *
 * Index strategy: none kept on disk; each query is a sequential scan, so
 * its cost is one read of the file plus parsing, and hashing only where
 * needed:
 *  - trace: pass 1 parses every transaction and compares each output with
 *    the stamp (a 12-byte compare); only transactions carrying the stamp
 *    are hashed. Pass 2, only when the stamp changed hands, hashes the
 *    ISSUE/TRANSFER transactions up to the last event to find the outputs
 *    spent by those events (their owners and credits name the `from` key
 *    and the price). Memory: the events alone.
 *  - holdings: one pass; only transactions with an output owned by the key
 *    are hashed; a hash table of that key's unspent outpoints is probed by
 *    every TRANSFER input. Memory: the key's outputs.
 *
 * Thread safety: the functions share nothing; any thread, concurrently
 * with distinct result structs.
 */
#ifndef PM_ENGINE_PROVENANCE_H
#define PM_ENGINE_PROVENANCE_H

#include "fault.h"
#include "postmark.h"

#include <stddef.h>
#include <stdint.h>

/* Why a scan stopped: a tool_fault (fault.h) with
 *   reason  BAD_HEADER, TRUNCATED, BLOCK_MALFORMED, MALFORMED; PM_REASON_NONE
 *           for an I/O error or a history that contradicts itself (an
 *           invalid chain);
 *   record  the block's position in the file (0-based);
 *   item    the transaction's index in that block, -1 if none;
 *   offset  the byte offset in the file of the offending bytes;
 *   message what is wrong, one line, no file name. */

/* Credits of one issuer. */
typedef struct {
    uint32_t issuer;
    uint64_t amount;
} pm_credit_amount;

/* One transaction that has the stamp among its outputs. */
typedef struct {
    uint64_t block;            /* position in the file */
    uint64_t height;           /* as its header states */
    uint32_t tx;               /* index in the block */
    uint8_t txid[PM_HASH_SIZE];
    uint16_t out_index;        /* the output that holds the stamp after it */
    int is_issue;              /* ISSUE (then `from` is the operator's key
                                  at that time if known, else zeros) */
    uint8_t from[PM_KEY_SIZE]; /* owner before (TRANSFER) */
    uint8_t to[PM_KEY_SIZE];   /* owner after */
    size_t n_price;            /* credits that went from `to` to `from` in
                                  the same transaction, per issuer (a trade);
                                  0 for an issue, a gift, a self transfer */
    pm_credit_amount *price;
} pm_stamp_event;

/* The provenance of one stamp. */
typedef struct {
    uint32_t operator_id, series, serial;
    int issued;                     /* 0: never issued (no event) */
    int operator_known;             /* a REGISTER for operator_id was seen */
    char operator_name[65];         /* its latest name, NUL-terminated */
    int series_known;               /* the SERIES declaration was seen */
    char series_title[129];
    uint32_t max_supply;            /* edition size */
    uint64_t face_value;
    uint8_t series_metadata[32];
    size_t n_events;                /* issue first, oldest first */
    pm_stamp_event *events;
    uint8_t owner[PM_KEY_SIZE];     /* current owner (when issued) */
    pm_outpoint outpoint;           /* current outpoint (when issued) */
    uint64_t blocks, txs;           /* how much was scanned */
    int partial_tail;               /* the file ends inside a block, left
                                       out (a crash, or a pack appending) */
    uint64_t partial_offset;        /* where that partial block begins */
} pm_stamp_trace;

/* Trace stamp (operator_id, series, serial) through the whole blocks of
 * the chain file `path` (a partial last block is left out: partial_tail).
 * Returns: PM_OK (out->issued says whether it was ever issued);
 *          PM_ERR_INVALID (the file is not a readable chain, or its history
 *          contradicts itself: *err says where and why);
 *          PM_ERR_IO (cannot open or read; *err); PM_ERR_NOMEM.
 * Out: out: free with pm_stamp_trace_free whatever the result.
 *      err: not NULL. */
pm_status pm_trace_stamp(const pm_context *ctx, pm_stamp_trace *out, tool_fault *err,
                         const char *path, uint32_t operator_id, uint32_t series,
                         uint32_t serial);

void pm_stamp_trace_free(pm_stamp_trace *t);

/* One unspent output a key owns. */
typedef struct {
    pm_outpoint outpoint;
    pm_output output;
    uint64_t height;   /* of the block that created it */
} pm_holding;

typedef struct {
    size_t n;              /* in chain order */
    pm_holding *items;
    uint64_t blocks, txs;
    int partial_tail;      /* as in pm_stamp_trace */
    uint64_t partial_offset;
} pm_holdings;

/* The unspent outputs owned by `key` at the tip of the chain file `path`.
 * Returns and errors as pm_trace_stamp. Free with pm_holdings_free. */
pm_status pm_holdings_scan(const pm_context *ctx, pm_holdings *out, tool_fault *err,
                           const char *path, const uint8_t key[PM_KEY_SIZE]);

void pm_holdings_free(pm_holdings *h);

#endif
