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
#include <xxhash.h>

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

struct pm_tx_digest {
    XXH128_hash_t hash;
    size_t size;
};

void pm_resume_init(pm_resume *r, uint64_t start_height)
{
    memset(r, 0, sizeof *r);
    r->start_height = start_height;
}

void pm_resume_free(pm_resume *r)
{
    free(r->tx);
    memset(r, 0, sizeof *r);
}

void pm_resume_visit(void *data, uint64_t position, const uint8_t *block, size_t size)
{
    pm_resume *r = data;
    if (position < r->start_height || r->failed)
        return;
    pm_block blk;
    if (!pm_block_parse(&blk, NULL, block, size)) {
        r->failed = 1;
        return;
    }
    const uint8_t *tx;
    size_t tx_size, cursor = 0;
    while (pm_block_next_tx(&tx, &tx_size, &blk, &cursor)) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 1024;
            struct pm_tx_digest *d = realloc(r->tx, cap * sizeof *d);
            if (!d) {
                r->failed = 1;
                return;
            }
            r->tx = d;
            r->cap = cap;
        }
        r->tx[r->n].hash = XXH3_128bits(tx, tx_size);
        r->tx[r->n].size = tx_size;
        r->n++;
    }
}

int pm_resume_match(pm_resume *r, const uint8_t *record, size_t size)
{
    if (r->matched == r->n)
        return 0;
    const struct pm_tx_digest *want = &r->tx[r->matched];
    if (want->size == size && XXH128_isEqual(want->hash, XXH3_128bits(record, size)))
        r->matched++;
    return 1;
}

int pm_resume_done(const pm_resume *r)
{
    return r->matched == r->n;
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
