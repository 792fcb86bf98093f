/*
 * fsutil.h — what every writer of a file must get right, in one place:
 * which file a path really names (symlinks followed), whether two paths
 * are one file, whether a descriptor can be synced, and syncing the
 * directory after a rename.
 *
 * Why it matters: a rename onto a path that is a symlink replaces the
 * link, and a rename onto a device node puts a regular file in its place;
 * an output that is one of the inputs destroys it. Writers resolve the
 * path first, write through a temporary file only when the target is (or
 * will be) a regular file, and write in place otherwise.
 *
 * Which half is where: pm_path_resolve, pm_path_is_special and
 * pm_sync_parent are common/fsutil.c, compiled into libpostmark (its
 * snapshot writer uses them; the program reaches them through
 * libpostmark.a); the others only the program uses, and they are
 * tools/lib/fsutil_tools.c in postmark_tools.
 */
#ifndef PM_COMMON_FSUTIL_H
#define PM_COMMON_FSUTIL_H

#include <stddef.h>
#include <sys/stat.h>

/* The path `path` finally names, every symlink followed (a dangling one
 * too: the file it would create). Returns a malloc'd string, or NULL with
 * errno (ELOOP after 40 links, ENOMEM). */
char *pm_path_resolve(const char *path);

/* 1 when `path` exists and is not a regular file (a device, a FIFO, a
 * socket, a directory), following symlinks; 0 otherwise. */
int pm_path_is_special(const char *path);

/* 1 when a and b name the same existing file (device and inode). */
int pm_same_file(const char *a, const char *b);

/* 1 when fd is a regular file (fsync/fdatasync mean something there). */
int pm_fd_is_regular(int fd);

/* fsync the directory holding `path`, so a rename or a creation in it is
 * durable. Returns 0, or -1 with errno. */
int pm_sync_parent(const char *path);

/* "PATH.tmp.PID": the temporary name beside a resolved path. malloc'd,
 * NULL when out of memory. */
char *pm_temp_path(const char *resolved);

#endif
