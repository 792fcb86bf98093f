/*
 * faultfs.c — an LD_PRELOAD library that makes one file operation fail,
 * for the fault tests (SQLite's approach to I/O-error testing: run the
 * same job failing the 1st, 2nd, ... Nth operation until it completes,
 * and check after each that nothing was lost or half-written).
 *
 * Environment:
 *   PM_FAULT_PATH   how the paths concerned end (required)
 *   PM_FAULT_OP     open | write | fdatasync | fsync | rename | ftruncate |
 *                   realloc (of PM_FAULT_MIN bytes or more; no path)
 *   PM_FAULT_N      fail the Nth such call on such a path (1-based)
 *   PM_FAULT_ERRNO  the error: ENOSPC (default), EIO, EACCES, EMFILE, EDQUOT
 *   PM_FAULT_SHORT  write only: the Nth write first writes this many bytes
 *                   and returns that short count; the next write fails
 *   PM_FAULT_STICKY 1: every later call of that op on those paths fails
 *                   too (a disk that stays full)
 *   PM_FAULT_LOG    a file that gets one line when the fault fires, so the
 *                   test knows whether the run reached the Nth call
 *   PM_FAULT_SWAP   open only: instead of failing the Nth open, first
 *                   rename this file onto the path being opened (a file
 *                   replaced between two reads of it)
 * Descriptors are matched by the path they were opened with (open,
 * openat, creat); rename by either name. Nothing else is touched.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FDS 65536

static _Atomic unsigned char watched[MAX_FDS];
static atomic_long calls;
static atomic_int fired, tripped, disk_full;

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int path_matches(const char *path)
{
    const char *want = env("PM_FAULT_PATH");
    if (!path || !want)
        return 0;
    size_t n = strlen(path), w = strlen(want);
    return n >= w && memcmp(path + n - w, want, w) == 0;
}

static int op_is(const char *op)
{
    const char *want = env("PM_FAULT_OP");
    return want && strcmp(want, op) == 0;
}

static int fault_errno(void)
{
    const char *e = env("PM_FAULT_ERRNO");
    if (!e || !strcmp(e, "ENOSPC"))
        return ENOSPC;
    if (!strcmp(e, "EIO"))
        return EIO;
    if (!strcmp(e, "EACCES"))
        return EACCES;
    if (!strcmp(e, "EMFILE"))
        return EMFILE;
    if (!strcmp(e, "EDQUOT"))
        return EDQUOT;
    return atoi(e);
}

static void log_fired(const char *op)
{
    const char *log = env("PM_FAULT_LOG");
    if (!log)
        return;
    ssize_t (*real_write)(int, const void *, size_t) =
        (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    int (*real_open)(const char *, int, ...) =
        (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
    int fd = real_open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        char line[128];
        int n = snprintf(line, sizeof line, "%s %s\n", op, env("PM_FAULT_N") ? env("PM_FAULT_N") : "?");
        (void)real_write(fd, line, (size_t)n);
        close(fd);
    }
}

/* Counts a call of `op` on a watched path; 1 when this one must fail. */
static int should_fail(const char *op)
{
    if (!op_is(op))
        return 0;
    if (atomic_load(&tripped) && (env("PM_FAULT_STICKY") || atomic_load(&disk_full)))
        return 1;
    long n = atomic_fetch_add(&calls, 1) + 1;
    const char *want = env("PM_FAULT_N");
    if (!want || n != atol(want))
        return 0;
    atomic_store(&tripped, 1);
    if (!atomic_exchange(&fired, 1))
        log_fired(op);
    return 1;
}

static void watch(int fd, const char *path)
{
    if (fd >= 0 && fd < MAX_FDS)
        atomic_store(&watched[fd], (unsigned char)path_matches(path));
}

static int is_watched(int fd)
{
    return fd >= 0 && fd < MAX_FDS && atomic_load(&watched[fd]);
}

/* The next definition of `name` (libc's), looked up once. */
#define REAL(name)                                                                 \
    static __typeof__(&name) real_##name;                                          \
    if (!real_##name)                                                              \
    real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

/* The mode argument, present only when a file may be created. */
#define MODE_ARG(flags, mode)                                                      \
    mode_t mode = 0;                                                               \
    if ((flags) & (O_CREAT | O_TMPFILE)) {                                         \
        va_list ap;                                                                \
        va_start(ap, flags);                                                       \
        mode = (mode_t)va_arg(ap, int);                                            \
        va_end(ap);                                                                \
    }

/* Before an open of `path`: 1 when it must fail (errno set); with
 * PM_FAULT_SWAP, the file is replaced instead and the open goes on. */
static int open_fails(const char *path)
{
    if (!path_matches(path) || !should_fail("open"))
        return 0;
    if (!env("PM_FAULT_SWAP")) {
        errno = fault_errno();
        return 1;
    }
    REAL(rename);
    (void)real_rename(env("PM_FAULT_SWAP"), path);
    return 0;
}

int open(const char *path, int flags, ...)
{
    REAL(open);
    MODE_ARG(flags, mode);
    if (open_fails(path))
        return -1;
    int fd = real_open(path, flags, mode);
    watch(fd, path);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return open(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    REAL(openat);
    MODE_ARG(flags, mode);
    if (open_fails(path))
        return -1;
    int fd = real_openat(dirfd, path, flags, mode);
    watch(fd, path);
    return fd;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags, mode);
    return openat(dirfd, path, flags, mode);
}

int creat(const char *path, mode_t mode)
{
    return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

int close(int fd)
{
    REAL(close);
    if (fd >= 0 && fd < MAX_FDS)
        atomic_store(&watched[fd], 0);
    return real_close(fd);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    REAL(write);
    if (is_watched(fd) && should_fail("write")) {
        const char *s = env("PM_FAULT_SHORT");
        size_t part = s ? (size_t)atol(s) : 0;
        if (part > 0 && part < len && !atomic_exchange(&disk_full, 1))
            return real_write(fd, buf, part); /* the disk is full from now on */
        errno = fault_errno();
        return -1;
    }
    return real_write(fd, buf, len);
}

int fdatasync(int fd)
{
    REAL(fdatasync);
    if (is_watched(fd) && should_fail("fdatasync")) {
        errno = fault_errno();
        return -1;
    }
    return real_fdatasync(fd);
}

int fsync(int fd)
{
    REAL(fsync);
    if (is_watched(fd) && should_fail("fsync")) {
        errno = fault_errno();
        return -1;
    }
    return real_fsync(fd);
}

int ftruncate(int fd, off_t len)
{
    REAL(ftruncate);
    if (is_watched(fd) && should_fail("ftruncate")) {
        errno = fault_errno();
        return -1;
    }
    return real_ftruncate(fd, len);
}

int rename(const char *from, const char *to)
{
    REAL(rename);
    if ((path_matches(from) || path_matches(to)) && should_fail("rename")) {
        errno = fault_errno();
        return -1;
    }
    return real_rename(from, to);
}

void *realloc(void *p, size_t size)
{
    REAL(realloc);
    const char *min = env("PM_FAULT_MIN");
    if (min && size >= (size_t)atol(min) && should_fail("realloc")) {
        errno = ENOMEM;
        return NULL;
    }
    return real_realloc(p, size);
}
