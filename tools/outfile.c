/* outfile.c — see outfile.h. */
#include "outfile.h"
#include "cliutil.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_BUFFER ((size_t)64 << 10)

static int failed(outfile *f, const char *what, int err)
{
    if (!f->err) {
        f->err = err ? err : EIO;
        snprintf(f->what, sizeof f->what, "%s", what);
    }
    return -1;
}

static int open_common(outfile *f, const char *name, int replace)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->name = name;
    f->path = pm_path_resolve(name);
    f->buf = malloc(OUT_BUFFER);
    if (!f->path || !f->buf)
        return failed(f, "open", errno ? errno : ENOMEM);
    int special = pm_path_is_special(f->path);
    if (replace && !special) {
        f->tmp = pm_temp_path(f->path);
        if (!f->tmp)
            return failed(f, "open", ENOMEM);
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    } else {
        /* In place: a FIFO, a device, or a file appended to. */
        f->fd = open(f->path, O_WRONLY | O_CREAT | O_CLOEXEC | (special ? 0 : O_APPEND), 0644);
    }
    if (f->fd < 0)
        return failed(f, "open", errno);
    f->regular = pm_fd_is_regular(f->fd);
    return 0;
}

int outfile_open_append(outfile *f, const char *name)
{
    return open_common(f, name, 0);
}

int outfile_open_replace(outfile *f, const char *name)
{
    return open_common(f, name, 1);
}

int64_t outfile_size(const outfile *f)
{
    struct stat st;
    if (!f->regular || fstat(f->fd, &st) != 0)
        return 0;
    return (int64_t)st.st_size;
}

int outfile_truncate(outfile *f, uint64_t size)
{
    if (!f->regular)
        return 0;
    if (ftruncate(f->fd, (off_t)size) != 0)
        return failed(f, "truncate", errno);
    return 0;
}

static int write_out(outfile *f, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return failed(f, "write", errno);
        if (w == 0)
            return failed(f, "write", EIO);
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void outfile_write(outfile *f, const void *data, size_t len)
{
    if (f->err || f->fd < 0)
        return;
    if (f->len + len > OUT_BUFFER) {
        if (write_out(f, f->buf, f->len) != 0)
            return;
        f->len = 0;
    }
    if (len > OUT_BUFFER) {
        (void)write_out(f, data, len);
        return;
    }
    memcpy(f->buf + f->len, data, len);
    f->len += len;
}

void outfile_printf(outfile *f, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        outfile_write(f, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

int outfile_flush(outfile *f)
{
    if (f->err)
        return -1;
    if (f->fd < 0)
        return 0;
    if (f->len && write_out(f, f->buf, f->len) != 0)
        return -1;
    f->len = 0;
    return 0;
}

int outfile_sync(outfile *f)
{
    if (outfile_flush(f) != 0)
        return -1;
    if (f->regular && f->fd >= 0 && fdatasync(f->fd) != 0)
        return failed(f, "sync", errno);
    return 0;
}

int outfile_commit(outfile *f)
{
    if (outfile_sync(f) != 0)
        return -1;
    if (f->regular && fsync(f->fd) != 0)
        return failed(f, "sync", errno);
    int rc = close(f->fd);
    f->fd = -1;
    if (rc != 0)
        return failed(f, "close", errno);
    if (f->tmp) {
        if (rename(f->tmp, f->path) != 0)
            return failed(f, "rename the temporary file onto", errno);
        free(f->tmp);
        f->tmp = NULL;
        if (pm_sync_parent(f->path) != 0)
            return failed(f, "sync the directory of", errno);
    }
    return 0;
}

int outfile_close(outfile *f)
{
    int had_error = f->err != 0;
    int rc = f->fd >= 0 && !f->tmp ? outfile_flush(f) : 0;
    if (f->fd >= 0 && close(f->fd) != 0 && rc == 0)
        rc = failed(f, "close", errno);
    f->fd = -1;
    if (f->tmp) {
        unlink(f->tmp);
        free(f->tmp);
        f->tmp = NULL;
    }
    free(f->path);
    free(f->buf);
    f->path = NULL;
    f->buf = NULL;
    return rc != 0 || had_error ? -1 : 0;
}

const char *outfile_error(const outfile *f, char *buf, size_t len)
{
    snprintf(buf, len, "%s: cannot %s: %s", f->name, f->what[0] ? f->what : "write",
             strerror(f->err ? f->err : EIO));
    return buf;
}

int outfile_is_input(const char *cmd, const char *option, const char *out,
                     const char *const *inputs)
{
    for (size_t i = 0; inputs[i]; i++) {
        if (pm_same_file(out, inputs[i])) {
            pm_cli_error(cmd, "%s %s: that is %s, an input of this run: refusing to overwrite it",
                         option, out, inputs[i]);
            return 1;
        }
    }
    return 0;
}
