/*
 * recfile.c — sequential record reader (see recfile.h).
 *
 * The window: buf[start, end) holds file bytes from file offset `pos`
 * (the offset of buf[start]). fill(n) makes at least n bytes available,
 * moving the unread tail to the front when the window would overflow and
 * reading as much as fits, so a file of small records costs one read(2)
 * per window, not one per record. The window is sized once, at open, for
 * the largest record kept plus read-ahead.
 */
#include "recfile.h"

#include "bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_AHEAD (1u << 20)

struct pm_recfile {
    int fd;
    uint8_t *buf;
    size_t cap;
    size_t start, end;
    uint64_t pos;        /* file offset of buf[start] */
    uint64_t index;
    size_t max_record;
    int eof;             /* read(2) returned 0 */
    int done;            /* a truncated record was returned: nothing after */
};

static void set_err(tool_fault *f, uint64_t record, uint64_t offset, const char *fmt, const char *a,
                    int e)
{
    tool_fault_set(f, record, offset, e, fmt, a, strerror(e));
}

/* Make at least n bytes available (fewer only at end of file).
 * Returns the number available, or (size_t)-1 on a read error. */
static size_t fill(pm_recfile *rf, size_t n)
{
    while (rf->end - rf->start < n && !rf->eof) {
        if (rf->end == rf->cap) {
            memmove(rf->buf, rf->buf + rf->start, rf->end - rf->start);
            rf->end -= rf->start;
            rf->start = 0;
        }
        ssize_t got = read(rf->fd, rf->buf + rf->end, rf->cap - rf->end);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return (size_t)-1;
        }
        if (got == 0)
            rf->eof = 1;
        rf->end += (size_t)got;
    }
    size_t have = rf->end - rf->start;
    return have < n ? have : n;
}

static void consume(pm_recfile *rf, size_t n)
{
    rf->start += n;
    rf->pos += n;
}

pm_status recfile_open(pm_recfile **out, pm_recfile_header *header, tool_fault *fault,
                       const char *path, size_t max_record)
{
    tool_fault_clear(fault);
    *out = NULL;
    memset(header, 0, sizeof *header);
    if (max_record == 0)
        max_record = 1;
    pm_recfile *rf = calloc(1, sizeof *rf);
    if (!rf)
        return PM_ERR_NOMEM;
    rf->max_record = max_record;
    rf->cap = max_record + 4 + READ_AHEAD;
    rf->buf = malloc(rf->cap);
    if (!rf->buf) {
        free(rf);
        return PM_ERR_NOMEM;
    }
    rf->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (rf->fd < 0) {
        set_err(fault, TOOL_FAULT_NONE, TOOL_FAULT_NONE, "cannot open %s: %s", path, errno);
        free(rf->buf);
        free(rf);
        return PM_ERR_IO;
    }
    struct stat st;
    if (fstat(rf->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        set_err(fault, TOOL_FAULT_NONE, TOOL_FAULT_NONE, "cannot read %s: %s", path, EISDIR);
        pm_recfile_close(rf);
        return PM_ERR_IO;
    }
#ifdef POSIX_FADV_SEQUENTIAL
    (void)posix_fadvise(rf->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    size_t have = fill(rf, PM_FILE_HEADER_SIZE);
    if (have == (size_t)-1) {
        set_err(fault, 0, 0, "cannot read %s: %s", path, errno);
        pm_recfile_close(rf);
        return PM_ERR_IO;
    }
    memcpy(header->raw, rf->buf + rf->start, have);
    header->raw_size = have;
    header->valid = pm_file_header_parse(pm_context_static, &header->kind, &header->params,
                                         &header->error, header->raw, have);
    consume(rf, have);
    *out = rf;
    return PM_OK;
}

int recfile_next(pm_recfile *rf, pm_recfile_record *rec, tool_fault *fault)
{
    memset(rec, 0, sizeof *rec);
    if (rf->done)
        return 0;
    rec->index = rf->index;
    rec->offset = rf->pos;

    size_t have = fill(rf, 4);
    if (have == (size_t)-1)
        goto io_error;
    if (have == 0)
        return 0;
    if (have < 4) {
        rec->truncated = 1;
        rec->bytes = rf->buf + rf->start;
        rec->size = have;
        consume(rf, have);
        rf->done = 1;
        rf->index++;
        return 1;
    }
    const uint8_t *p = rf->buf + rf->start;
    uint32_t len = tool_le32(p);
    rec->has_length = 1;
    rec->length = len;
    consume(rf, 4);
    rf->index++;

    if (len <= rf->max_record) {
        have = fill(rf, len);
        if (have == (size_t)-1)
            goto io_error;
        rec->bytes = rf->buf + rf->start;
        rec->size = have;
        consume(rf, have);
        if (have < len) {
            rec->truncated = 1;
            rf->done = 1;
        }
        return 1;
    }
    /* Too long to keep: frame it by skipping its bytes. */
    uint64_t left = len;
    while (left) {
        size_t want = left < rf->cap ? (size_t)left : rf->cap;
        have = fill(rf, want);
        if (have == (size_t)-1)
            goto io_error;
        consume(rf, have);
        rec->size += have;
        left -= have;
        if (have < want) {
            rec->truncated = 1;
            rf->done = 1;
            break;
        }
    }
    return 1;

io_error:
    set_err(fault, rec->index, rf->pos, "read error: %s%s", "", errno);
    return -1;
}

pm_status pm_recfile_open(pm_recfile **rf, pm_recfile_header *header, char *err, size_t errlen,
                          const char *path, size_t max_record)
{
    tool_fault f;
    pm_status st = recfile_open(rf, header, &f, path, max_record);
    tool_fault_copy_text(&f, err, errlen);
    return st;
}

int pm_recfile_next(pm_recfile *rf, pm_recfile_record *rec, char *err, size_t errlen)
{
    tool_fault f;
    tool_fault_clear(&f);
    int r = recfile_next(rf, rec, &f);
    if (r < 0)
        tool_fault_copy_text(&f, err, errlen);
    return r;
}

void pm_recfile_close(pm_recfile *rf)
{
    if (!rf)
        return;
    if (rf->fd >= 0)
        close(rf->fd);
    free(rf->buf);
    free(rf);
}
