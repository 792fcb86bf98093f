/*
 * outfile.h — the program's output files, written so that a fault never
 * costs data and a path never names the wrong thing:
 *  - the path is resolved first (symlinks followed to the file they name),
 *    so neither a rename nor a truncation replaces a link;
 *  - a target that exists and is not a regular file (a FIFO, /dev/null, a
 *    terminal) is written in place and never synced (fdatasync there fails
 *    with EINVAL, and means nothing);
 *  - a whole-file output (gen -o) goes to PATH.tmp.PID, synced, renamed
 *    over PATH, the directory synced; on failure the temporary is removed;
 *  - every error names the file, the operation and errno's text, taken at
 *    the failing call (a short write is retried, so ENOSPC is reported as
 *    ENOSPC).
 * Writes are buffered (64 KiB) and go through write(2), so the fault
 * injection shim of the tests sees every one.
 */
#ifndef PM_TOOLS_OUTFILE_H
#define PM_TOOLS_OUTFILE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;   /* as given, for messages */
    char *path;         /* resolved */
    char *tmp;          /* whole-file output: the temporary, else NULL */
    int fd;
    int regular;        /* a regular file: syncs mean something */
    char *buf;
    size_t len;
    int err;            /* errno of the first failure, 0 when none */
    char what[64];      /* the failing operation */
} outfile;

/* Open `name` to append to (a FIFO or a device: to write to), created
 * when missing. Returns 0, or -1 (see outfile_error). */
int outfile_open_append(outfile *f, const char *name);

/* Open `name` for a whole-file output, replaced only on outfile_commit. */
int outfile_open_replace(outfile *f, const char *name);

/* The size of the file as opened (0 when not a regular file). */
int64_t outfile_size(const outfile *f);

/* Cut a regular file to `size` bytes and append from there. */
int outfile_truncate(outfile *f, uint64_t size);

/* Buffered writes; errors are sticky and reported by the next sync,
 * commit or close. */
void outfile_write(outfile *f, const void *data, size_t len);
void outfile_printf(outfile *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write out the buffer; then fdatasync when the file is regular.
 * Returns 0, or -1 (see outfile_error). */
int outfile_flush(outfile *f);
int outfile_sync(outfile *f);

/* Whole-file output: sync, close, rename into place, sync the directory.
 * Returns 0 or -1. On -1 the temporary is gone and PATH untouched. */
int outfile_commit(outfile *f);

/* Close (after a flush) and free. Returns 0, or -1 when this or any
 * earlier operation failed. A whole-file output that was not committed
 * is removed. */
int outfile_close(outfile *f);

/* "NAME: cannot WHAT: REASON" for the first failure. */
const char *outfile_error(const outfile *f, char *buf, size_t len);

/* 1 (and a message on stderr for `cmd`) when `out` is the same file as
 * one of the NULL-terminated `inputs` (device and inode compared, so
 * links and other spellings are caught). Missing files never match. */
int outfile_is_input(const char *cmd, const char *option, const char *out,
                     const char *const *inputs);

#endif
