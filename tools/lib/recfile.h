/*
 * recfile.h — a sequential reader of a Postmark file (a POSTMKTX stream or
 * a POSTMKBK chain, protocol §2): the 60-byte header, then the records one
 * by one, each with its index and byte offset, the last one flagged when
 * the file ends inside it.
 *
 * It is the reader of the tools that walk a whole file once in order
 * (inspect, trace, holdings): plain read(2) into one window buffer, no
 * thread, no parsing beyond the framing. The batch reader of the
 * validation pipeline is the ingest module (engine/ingest.h); this one
 * differs where a decoder needs it to: it hands out the bytes of a partial
 * last record (inspect shows them), and it frames a record longer than
 * any valid one by skipping it, never assembling it in memory.
 *
 * Invariants:
 *  - A record's bytes are borrowed from the reader's window: valid until
 *    the next call on the reader.
 *  - Records longer than `max_record` are framed and skipped without being
 *    kept (bytes NULL): whatever length a record declares, the reader uses
 *    at most max_record + 4 bytes of window plus its read-ahead, so a
 *    hostile length prefix cannot make it allocate.
 *  - Never prints, never exits; errors are returned with a message.
 */
#ifndef PM_ENGINE_RECFILE_H
#define PM_ENGINE_RECFILE_H

#include "fault.h"
#include "postmark.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pm_recfile pm_recfile;

/* The file's 60-byte header as read, and what it says. */
typedef struct {
    uint8_t raw[PM_FILE_HEADER_SIZE];
    size_t raw_size;          /* < 60 when the file is shorter */
    int valid;                /* magic and version are right */
    pm_file_kind kind;        /* set when valid */
    pm_chain_params params;   /* set when valid */
    pm_parse_error error;     /* set when not valid */
} pm_recfile_header;

/* One framed record. */
typedef struct {
    uint64_t index;           /* 0-based position among the file's records */
    uint64_t offset;          /* byte offset of its u32 length prefix */
    int has_length;           /* 0 when the file ends inside the prefix */
    uint32_t length;          /* declared length (when has_length) */
    const uint8_t *bytes;     /* its bytes; NULL when longer than max_record */
    size_t size;              /* bytes present: length, or fewer when truncated
                                 (counting the prefix bytes when !has_length) */
    int truncated;            /* the file ends inside this record */
} pm_recfile_record;

/* Open `path` and read its header. The reader is returned even when the
 * header is not valid (so the caller can show what it holds); reading
 * records then still frames them after byte 60 if the file has more.
 * Returns: PM_OK; PM_ERR_IO (cannot open or read: *fault, errnum set);
 *          PM_ERR_NOMEM.
 * Out: rf (the reader, owned by the caller: pm_recfile_close), header.
 *      fault: may be NULL.
 * In:  max_record: records longer than this are skipped (>= 1). */
pm_status recfile_open(pm_recfile **rf, pm_recfile_header *header, tool_fault *fault,
                       const char *path, size_t max_record);

/* Read the next record.
 * Returns: 1 and *rec when a record (whole or truncated) was read;
 *          0 at the end of the file (after a truncated record too);
 *          -1 on a read error (*fault: the record, the offset, errnum).
 * Out: fault: may be NULL. */
int recfile_next(pm_recfile *rf, pm_recfile_record *rec, tool_fault *fault);

/* Compatibility: the err/errlen forms of recfile_open and recfile_next,
 * kept for tools/serve/service.c, tools/serve/journal.c,
 * tools/cluster/follow.c and tools/cmd_submit.c until they are converted
 * (issue 11). */
pm_status pm_recfile_open(pm_recfile **rf, pm_recfile_header *header, char *err, size_t errlen,
                          const char *path, size_t max_record);
int pm_recfile_next(pm_recfile *rf, pm_recfile_record *rec, char *err, size_t errlen);

/* Close; rf may be NULL. */
void pm_recfile_close(pm_recfile *rf);

#endif
