/* resume.c — see resume.h for the design. */
#include "resume.h"
#include "cliutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pm_stream_identity(const pm_context *ctx, uint8_t id[32], const uint8_t header[60],
                       const uint8_t *first, size_t first_size)
{
    uint8_t *buf = malloc(PM_FILE_HEADER_SIZE + first_size);
    if (!buf)
        return 0;
    memcpy(buf, header, PM_FILE_HEADER_SIZE);
    if (first_size)
        memcpy(buf + PM_FILE_HEADER_SIZE, first, first_size);
    int ok = pm_tagged_hash(ctx, id, "postmark/stream-id", buf, PM_FILE_HEADER_SIZE + first_size);
    free(buf);
    return ok;
}

static void journal_path(char *out, size_t cap, const char *chain_path)
{
    snprintf(out, cap, "%s.runs", chain_path);
}

pm_resume_kind pm_journal_resume(const char *chain_path, const uint8_t stream_id[32],
                                 int64_t tip_height, const uint8_t tip_hash[32],
                                 uint64_t *resume_at)
{
    char path[4096], line[256], hex[65];
    journal_path(path, sizeof path, chain_path);
    *resume_at = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return PM_RESUME_NEW_RUN;
    int same_stream = 0, found = 0;
    uint64_t run_start = 0, at = 0;
    unsigned long long a, b;
    uint8_t bytes[32];
    while (fgets(line, sizeof line, f)) {
        if (!strchr(line, '\n'))
            break; /* cut by a crash: it never counted */
        if (sscanf(line, "run %64s %llu", hex, &a) == 2 && pm_cli_unhex(bytes, 32, hex)) {
            same_stream = memcmp(bytes, stream_id, 32) == 0;
            run_start = a;
            found = 0;
        } else if (sscanf(line, "block %llu %64s %llu", &a, hex, &b) == 3 &&
                   pm_cli_unhex(bytes, 32, hex) && tip_height >= 0 &&
                   a == (unsigned long long)tip_height && memcmp(bytes, tip_hash, 32) == 0) {
            found = 1;
            at = b + 1;
        }
    }
    fclose(f);
    if (!same_stream)
        return PM_RESUME_NEW_RUN;
    if (found) {
        *resume_at = at;
        return PM_RESUME_CONTINUE;
    }
    /* No block of this run is in the chain: the run starts over. */
    if (tip_height < 0 || (uint64_t)tip_height < run_start)
        return PM_RESUME_CONTINUE;
    return PM_RESUME_UNKNOWN;
}

static int append_line(int fd, const char *line, size_t len)
{
    return write(fd, line, len) == (ssize_t)len && fdatasync(fd) == 0 ? 0 : -1;
}

int pm_journal_open(const char *chain_path)
{
    char path[4096];
    journal_path(path, sizeof path, chain_path);
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

int pm_journal_append_run(const char *chain_path, const uint8_t id[32], uint64_t start_height)
{
    char path[4096], hex[65], line[128];
    journal_path(path, sizeof path, chain_path);
    int existed = access(path, F_OK) == 0;
    int fd = pm_journal_open(chain_path);
    if (fd < 0)
        return -1;
    int n = snprintf(line, sizeof line, "run %s %llu\n", pm_cli_hex(hex, id, 32),
                     (unsigned long long)start_height);
    int rc = append_line(fd, line, (size_t)n);
    int saved = errno;
    close(fd);
    if (rc == 0 && !existed) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", chain_path);
        int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    errno = saved;
    return rc;
}

int pm_journal_append_block(int fd, uint64_t height, const uint8_t hash[32], uint64_t last_index)
{
    char hex[65], line[160];
    int n = snprintf(line, sizeof line, "block %llu %s %llu\n", (unsigned long long)height,
                     pm_cli_hex(hex, hash, 32), (unsigned long long)last_index);
    return append_line(fd, line, (size_t)n);
}

int pm_rejects_truncate(const char *path, uint64_t below)
{
    FILE *in = fopen(path, "r");
    if (!in)
        return errno == ENOENT ? 0 : -1;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return -1;
    }
    char line[256];
    fputs("index,txid,reason\n", out);
    while (fgets(line, sizeof line, in)) {
        char *end;
        unsigned long long idx = strtoull(line, &end, 10);
        if (end != line && *end == ',' && strchr(line, '\n') && idx < below)
            fputs(line, out);
    }
    fclose(in);
    int rc = fflush(out) == 0 && fsync(fileno(out)) == 0 ? 0 : -1;
    if (fclose(out) != 0)
        rc = -1;
    if (rc == 0)
        rc = rename(tmp, path);
    return rc;
}
