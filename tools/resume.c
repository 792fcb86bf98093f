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

int pm_stream_identity(const pm_context *ctx, uint8_t id[32], const pm_file *stream)
{
    size_t len = PM_FILE_HEADER_SIZE;
    if (stream->n_records > 0)
        len = (size_t)(stream->records[0] - stream->data) + stream->sizes[0];
    return pm_tagged_hash(ctx, id, "postmark/stream-id", stream->data, len);
}

static void journal_path(char *out, size_t cap, const char *chain_path)
{
    snprintf(out, cap, "%s.runs", chain_path);
}

int pm_journal_last_run(const char *chain_path, uint8_t id[32], uint64_t *start_height)
{
    char path[4096], line[256], hex[65];
    journal_path(path, sizeof path, chain_path);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int found = 0;
    unsigned long long height;
    while (fgets(line, sizeof line, f)) {
        /* A line cut by a crash has no newline: it never counted. */
        if (!strchr(line, '\n'))
            break;
        if (sscanf(line, "run %64s %llu", hex, &height) == 2 && pm_cli_unhex(id, 32, hex)) {
            *start_height = height;
            found = 1;
        }
    }
    fclose(f);
    return found;
}

int pm_journal_append_run(const char *chain_path, const uint8_t id[32], uint64_t start_height)
{
    char path[4096], hex[65], line[128];
    journal_path(path, sizeof path, chain_path);
    int existed = access(path, F_OK) == 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int n = snprintf(line, sizeof line, "run %s %llu\n", pm_cli_hex(hex, id, 32),
                     (unsigned long long)start_height);
    int rc = write(fd, line, (size_t)n) == n && fsync(fd) == 0 ? 0 : -1;
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

int pm_resume_point(const pm_file *chain, uint64_t start_height, const pm_file *stream,
                    uint64_t *resume_at)
{
    size_t next = 0; /* stream records before `next` are consumed */
    for (size_t b = (size_t)start_height; b < chain->n_records; b++) {
        pm_block blk;
        if (!pm_block_parse(&blk, NULL, chain->records[b], chain->sizes[b]))
            return 0;
        const uint8_t *tx;
        size_t size, cursor = 0;
        while (pm_block_next_tx(&tx, &size, &blk, &cursor)) {
            while (next < stream->n_records &&
                   (stream->sizes[next] != size || memcmp(stream->records[next], tx, size) != 0))
                next++;
            if (next == stream->n_records)
                return 0;
            next++;
        }
    }
    *resume_at = next;
    return 1;
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
