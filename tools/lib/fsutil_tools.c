/* fsutil_tools.c — the fsutil.h functions only the program's writers use
 * (kept out of libpostmark, which would never call them). */
#include "fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pm_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

int pm_fd_is_regular(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

char *pm_temp_path(const char *resolved)
{
    size_t len = strlen(resolved) + 32;
    char *tmp = malloc(len);
    if (tmp)
        snprintf(tmp, len, "%s.tmp.%ld", resolved, (long)getpid());
    return tmp;
}
