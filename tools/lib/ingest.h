/*
 * ingest.h — reading POSTMKTX streams and POSTMKBK chain files (protocol
 * §2) fast, and handing their records to the pipeline without copying.
 *
 * A small, obvious API over a hard mechanism: open, read the 60-byte
 * header, then ask for the next batch of whole records until there are
 * none, then ask whether the input ended inside a record. Behind it, an
 * io_uring keeps several large reads in flight into registered buffers
 * (or, where io_uring is unavailable or refused, plain read(2) does the
 * same work); records are returned as pointers into those buffers. The
 * caller never sees rings, buffers or the fallback.
 *
 * Inputs: a regular file (read with positional reads, several in flight),
 * or a stream — a pipe, stdin, a socket, a character device — read in
 * order with one read in flight.
 *
 * Growing files: for a regular file, reading stops at the end of the file
 * as it was when it was opened. Bytes appended later (another process
 * packing onto a chain that `replay` is reading) are not read, so a block
 * being written at that moment shows up as a partial last record, reported
 * through pm_ingest_truncated like any truncation: the caller decides
 * (replay reports TRUNCATED; a tool following the file can open it again
 * from that offset). If the file shrinks while being read, reading stops
 * at its new end (a truncation when that falls inside a record).
 *
 * Offsets are counted from where reading began: 0 is the first byte of the
 * header, 60 the length prefix of the first record. (That is the file
 * offset for anything opened by path; pm_ingest_open_fd on a regular file
 * starts at the descriptor's current position.)
 *
 * The library never prints and keeps no global state; every error is
 * returned with a message naming the input and the reason.
 *
 * Thread safety: a pm_ingest is used by one thread at a time; distinct
 * ones are independent.
 */
#ifndef PM_ENGINE_INGEST_H
#define PM_ENGINE_INGEST_H

#include "fault.h"
#include "postmark.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pm_ingest pm_ingest;

/** One whole record: `size` bytes at `bytes` (the length prefix is not
 *  included). `index` is its 0-based number among the file's records,
 *  `offset` the offset of its length prefix. With a max_record limit, a
 *  longer record has bytes NULL and size its declared length. */
typedef struct {
    const uint8_t *bytes;
    size_t size;
    uint64_t index;
    uint64_t offset;
} pm_record;

/** Open flags. */
#define PM_INGEST_NO_URING 1u /**< use the plain read(2) path */
#define PM_INGEST_DIRECT 2u   /**< O_DIRECT where the file system allows it
                                   (a path naming a regular file, buffer
                                   size a multiple of 4096); otherwise
                                   ignored silently */
#define PM_INGEST_NO_FIXED 4u /**< io_uring without registered buffers
                                   (for tests and comparisons; used anyway
                                   when registering them fails) */

/** The declared length reported by pm_ingest_truncated when the input
 *  ended inside the length prefix itself. */
#define PM_INGEST_NO_LENGTH UINT64_MAX

/** Buffering. Start from pm_ingest_config_default; tests use tiny buffers
 *  to make records straddle buffers.
 *  The defaults suit a stream of transactions read from the page cache:
 *  all buffers together fit in a core's L2 cache, so the records are still
 *  cached when the caller reads them (with 1 MiB buffers framing ran ~25%
 *  slower, the bytes having left the cache). A record longer than a
 *  buffer is assembled by copying it once; for a chain file, whose blocks
 *  run to 4 MiB, buffers of PM_BLOCK_MAX_SIZE + 4 bytes avoid that copy
 *  when it matters (it rarely does: checking a block costs far more). */
typedef struct {
    unsigned flags;      /**< PM_INGEST_* */
    size_t buffer_size;  /**< bytes per read buffer, 16 .. 1 GiB (128 KiB) */
    unsigned buffers;    /**< read buffers, 2 .. 64 (8); for a regular file,
                              the number of reads in flight */
    unsigned idle_ms;    /**< streams only: when no record arrives for this
                              long, pm_ingest_next returns none and
                              pm_ingest_idle says why (a live feed's block
                              timer can then run); 0 waits for ever (0) */
    const char *name;    /**< the input's name in messages; NULL: the path,
                              "stdin", or "fd N". Copied. */
    size_t max_record;   /**< a record declaring more bytes than this is
                              not assembled: its bytes are skipped as they
                              stream past and it is returned with bytes
                              NULL and size its declared length (the
                              caller rejects it whole). Memory then stays
                              bounded by the largest record allowed, what
                              ever a length prefix claims. 0: no limit (0) */
    const volatile sig_atomic_t *cancel; /**< when not NULL, a wait for a
                              stream's input (and for a FIFO's writer or a
                              socket's connection) ends soon after *cancel
                              becomes non-zero, as if idle: a signal handler
                              sets it, and SIGTERM ends a stalled feed.
                              pm_ingest_cancelled then says so (NULL) */
} pm_ingest_config;

/** Defaults: flags 0, 8 buffers of 128 KiB, name NULL. */
void pm_ingest_config_default(pm_ingest_config *cfg);

/** Open an input.
 *  Returns: PM_OK; PM_ERR_IO when it cannot be opened (or, for "unix:",
 *           the socket cannot be made or the connection accepted);
 *           PM_ERR_NOMEM; PM_ERR_ARG for a configuration out of range.
 *           On error *in is NULL and *fault holds a message naming the
 *           input and the reason (and errnum, for a failed call).
 *  Out: in: the reader, owned by the caller (pm_ingest_close).
 *       fault: may be NULL.
 *  In:  path: a file; "-" for stdin (not closed by pm_ingest_close); or
 *       "unix:PATH" to listen on a Unix stream socket at PATH and accept
 *       ONE connection, blocking until a node connects ("unix:@NAME" for
 *       Linux's abstract namespace). A stale socket left at PATH by a dead
 *       listener is replaced; the socket file is removed once the
 *       connection is accepted.
 *       flags: PM_INGEST_*; cfg: not NULL, copied. */
pm_status pm_ingest_open(pm_ingest **in, const char *path, unsigned flags, tool_fault *fault)
    PM_WARN_UNUSED;
pm_status pm_ingest_open_ex(pm_ingest **in, const char *path, const pm_ingest_config *cfg,
                            tool_fault *fault) PM_WARN_UNUSED;

/** Read from an already open descriptor (a pipe, a socket, a file). The
 *  descriptor stays the caller's: it is not closed, and for a regular file
 *  its position is not moved (reads are positional, from the current
 *  position). Same returns as pm_ingest_open. */
pm_status pm_ingest_open_fd(pm_ingest **in, int fd, unsigned flags, tool_fault *fault)
    PM_WARN_UNUSED;
pm_status pm_ingest_open_fd_ex(pm_ingest **in, int fd, const pm_ingest_config *cfg,
                               tool_fault *fault) PM_WARN_UNUSED;

/** Read the 60-byte file header: the first step after opening, once.
 *  Returns: 1 when 60 bytes were read into header; 0 when the input holds
 *           fewer (the caller reports BAD_HEADER; what there was is still
 *           copied and zero-padded); -1 on a read error (pm_ingest_error).
 *  Nothing here checks the magic or version: pm_file_header_parse does. */
int pm_ingest_header(pm_ingest *in, uint8_t header[PM_FILE_HEADER_SIZE]);

/** The next batch of whole records, in file order.
 *  Returns: PM_OK with *n records in recs (1..max), or *n == 0 at the end
 *           of the input (then see pm_ingest_truncated); PM_ERR_IO on a
 *           read error; PM_ERR_NOMEM when a record larger than a buffer
 *           cannot be assembled. Errors are sticky; the message is
 *           pm_ingest_error's.
 *  Out: recs: max entries. Their bytes stay valid until the next call to
 *       pm_ingest_next or pm_ingest_close, and must not be written.
 *       n: the number filled.
 *  In:  max >= 1. The header must have been read (pm_ingest_header).
 *  A call returns as soon as it has at least one record and would
 *  otherwise have to wait for input, so a live feed is not held back. */
pm_status pm_ingest_next(pm_ingest *in, pm_record *recs, size_t max, size_t *n) PM_WARN_UNUSED;

/** After pm_ingest_next gave *n == 0: 1 when that is because no record
 *  arrived within idle_ms (the input goes on: call pm_ingest_next again),
 *  0 when the input has ended. */
int pm_ingest_idle(const pm_ingest *in);

/** 1 when a wait was given up because *cfg->cancel was set (then
 *  pm_ingest_idle is 1 too: the input itself goes on). */
int pm_ingest_cancelled(const pm_ingest *in);

/** After pm_ingest_next gave *n == 0: whether the input ended inside a
 *  record (protocol §2: that partial record is malformed; its index is the
 *  number of whole records).
 *  Returns: 1 when truncated, with *offset the offset of the partial
 *           record's length prefix and *declared its declared length
 *           (PM_INGEST_NO_LENGTH when the prefix itself is cut); 0 when
 *           the input ended on a record boundary (or has not ended yet).
 *  Out: offset, declared: may be NULL. */
int pm_ingest_truncated(const pm_ingest *in, uint64_t *offset, uint64_t *declared);

/** Bytes consumed so far, header included (for progress). At the end of
 *  the input it is the input's size, a partial last record included. */
uint64_t pm_ingest_bytes(const pm_ingest *in);

/** The input's size when it is a regular file (as it was when opened, from
 *  the starting position); 0 for a stream. */
uint64_t pm_ingest_size(const pm_ingest *in);

/** "io_uring" or "read": the mechanism in use. */
const char *pm_ingest_backend(const pm_ingest *in);

/** Why the read(2) path is in use ("io_uring_queue_init: Operation not
 *  permitted (kernel.io_uring_disabled = 2)", "PM_INGEST_NO_URING"), or
 *  NULL when io_uring is. For the tool's one-line notice. */
const char *pm_ingest_fallback_reason(const pm_ingest *in);

/** 1 when the file is read with O_DIRECT (asked for, and allowed). */
int pm_ingest_is_direct(const pm_ingest *in);

/** The message of the last error ("read chain.pmbk at offset 1048636:
 *  Input/output error"), or "" when none. */
const char *pm_ingest_error(const pm_ingest *in);

/** The last error as a tool_fault: its message is pm_ingest_error's; a
 *  read error also has errnum and the byte offset in the file. The fault
 *  belongs to the reader (valid until pm_ingest_close). */
const tool_fault *ingest_fault(const pm_ingest *in);

/** Close the input (and the descriptor, unless it is stdin or came from
 *  pm_ingest_open_fd); free everything. in may be NULL. */
void pm_ingest_close(pm_ingest *in);

#endif
