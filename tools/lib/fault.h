/*
 * fault.h — the one shape of an error below the engine: what the tools'
 * library (ingest, recfile, gen, provenance) and the tools' shared modules
 * (chainfile, resume) return when something goes wrong.
 *
 * Before this there were six: err/errlen buffers, ingest's string,
 * recfile's, gen's, provenance's former pm_scan_error, and the engine's
 * last_error. The engine keeps its own (pm_engine_last_error, and the
 * public pm_parse_error: both are the ABI); everything built on top of it
 * reports a tool_fault, and the command that prints it is the only one
 * that adds the file name (tool_fault_print, tools/cliutil.h).
 *
 * A fault says where, when that is known (the record — a chain's block —
 * the transaction inside it, and the byte offset in the file), why in
 * protocol terms when the bytes are at fault (reason), the errno of a
 * failed system call, and one line of text. The text does not repeat the
 * place unless the callers always printed it that way: messages the CLI
 * prints are part of its contract (tests/cli_*.sh).
 *
 * Never prints, no global state; a tool_fault is a plain value.
 */
#ifndef POSTMARK_TOOLS_FAULT_H
#define POSTMARK_TOOLS_FAULT_H

#include "postmark.h"

#include <stddef.h>
#include <stdint.h>

/* record or offset not known. */
#define TOOL_FAULT_NONE UINT64_MAX

typedef struct {
    pm_reason reason;  /* the protocol reason when the bytes are at fault
                          (BAD_HEADER, TRUNCATED, MALFORMED, ...);
                          PM_REASON_NONE for an I/O error, a bad argument,
                          or a history that contradicts itself */
    int errnum;        /* errno of the failed call, 0 when none */
    uint64_t record;   /* 0-based record (a chain's block) it is in;
                          TOOL_FAULT_NONE when none */
    int64_t item;      /* transaction within that record, -1 when none */
    uint64_t offset;   /* byte offset in the file; TOOL_FAULT_NONE */
    char message[512]; /* what is wrong, one line, "" when no fault */
} tool_fault;

/* No fault: reason NONE, errnum 0, record and offset NONE, item -1, "". */
void tool_fault_clear(tool_fault *f);

/* Set *f (printf-style message) with reason NONE and item -1. f may be
 * NULL (the fault is then dropped). */
void tool_fault_set(tool_fault *f, uint64_t record, uint64_t offset, int errnum, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));

/* tool_fault_set with no place (record and offset NONE): a failure to
 * open, a bad argument, running out of memory. */
#define tool_fault_msg(f, errnum, ...)                                                    \
    tool_fault_set((f), TOOL_FAULT_NONE, TOOL_FAULT_NONE, (errnum), __VA_ARGS__)

/* Copy the message into an err/errlen buffer (err may be NULL when errlen
 * is 0): for the compatibility wrappers kept for callers not converted
 * yet. */
void tool_fault_copy_text(const tool_fault *f, char *err, size_t errlen);

#endif
