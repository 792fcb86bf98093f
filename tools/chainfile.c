/* chainfile.c — see chainfile.h. */
#include "chainfile.h"
#include "cliutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_all(int fd, uint8_t **data, size_t *size)
{
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return -1;
    for (;;) {
        if (len == cap) {
            uint8_t *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                errno = ENOMEM;
                return -1;
            }
            buf = b;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            free(buf);
            return -1;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    *data = buf;
    *size = len;
    return 0;
}

static int frame_records(pm_file *f)
{
    size_t cap = 1024, off = PM_FILE_HEADER_SIZE;
    f->records = malloc(cap * sizeof *f->records);
    f->sizes = malloc(cap * sizeof *f->sizes);
    f->offsets = malloc(cap * sizeof *f->offsets);
    if (!f->records || !f->sizes || !f->offsets)
        return -1;
    while (off < f->size) {
        if (f->size - off < 4) {
            f->truncated = 1;
            f->truncated_offset = off;
            break;
        }
        const uint8_t *p = f->data + off;
        size_t len = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
        if (f->size - off - 4 < len) {
            f->truncated = 1;
            f->truncated_offset = off;
            break;
        }
        if (f->n_records == cap) {
            cap *= 2;
            const uint8_t **r = realloc(f->records, cap * sizeof *r);
            size_t *s = realloc(f->sizes, cap * sizeof *s);
            uint64_t *o = realloc(f->offsets, cap * sizeof *o);
            if (r)
                f->records = r;
            if (s)
                f->sizes = s;
            if (o)
                f->offsets = o;
            if (!r || !s || !o)
                return -1;
        }
        f->records[f->n_records] = p + 4;
        f->sizes[f->n_records] = len;
        f->offsets[f->n_records] = off;
        f->n_records++;
        off += 4 + len;
    }
    return 0;
}

int pm_file_open(pm_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            f->data = m;
            f->size = (size_t)st.st_size;
            f->mapped = 1;
            madvise(m, f->size, MADV_SEQUENTIAL);
        }
    }
    if (!f->mapped && read_all(fd, &f->data, &f->size) != 0) {
        int saved = errno;
        if (fd != STDIN_FILENO)
            close(fd);
        errno = saved;
        return -1;
    }
    if (fd != STDIN_FILENO)
        close(fd);
    f->header_ok = pm_file_header_parse(&f->kind, &f->params, &f->header_error, f->data, f->size);
    if (f->header_ok && frame_records(f) != 0) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void pm_file_close(pm_file *f)
{
    if (f->mapped)
        munmap(f->data, f->size);
    else
        free(f->data);
    free(f->records);
    free(f->sizes);
    free(f->offsets);
    memset(f, 0, sizeof *f);
}

pm_status pm_chain_verify(pm_engine *engine, const pm_file *f, const uint8_t *assume_valid,
                          pm_chain_result *res)
{
    memset(res, 0, sizeof *res);
    double started = pm_cli_now();
    size_t upto = 0;
    if (assume_valid) {
        pm_context *ctx = pm_context_create();
        if (!ctx)
            return PM_ERR_NOMEM;
        for (size_t i = 0; i < f->n_records; i++) {
            uint8_t hash[32];
            if (f->sizes[i] >= PM_BLOCK_HEADER_SIZE && pm_block_hash(ctx, hash, f->records[i]) &&
                memcmp(hash, assume_valid, 32) == 0) {
                upto = i + 1;
                break;
            }
        }
        pm_context_destroy(ctx);
    }
    pm_status st = pm_engine_connect_blocks(engine, &res->verdict, f->records, f->sizes,
                                            f->n_records, upto);
    res->seconds = pm_cli_now() - started;
    if (st != PM_OK && st != PM_ERR_INVALID)
        return st;
    pm_stats stats;
    pm_engine_stats(engine, &stats);
    res->blocks = stats.blocks_connected;
    res->txs = stats.txs_accepted;
    if (st == PM_ERR_INVALID) {
        res->valid = 0;
        return PM_OK;
    }
    if (f->truncated) {
        res->valid = 0;
        res->verdict.reason = PM_REASON_TRUNCATED;
        res->verdict.block = f->n_records;
        res->verdict.tx = -1;
        res->verdict.has_txid = 0;
        return PM_OK;
    }
    res->valid = 1;
    return PM_OK;
}

pm_status pm_print_state_json(pm_engine *engine, FILE *out)
{
    uint8_t tip[32], digest[32];
    int64_t height;
    char hex[65];
    pm_engine_tip(engine, tip, &height);
    pm_status st = pm_engine_utxo_digest(engine, digest);
    if (st != PM_OK)
        return st;
    fprintf(out, "\"height\": %lld, \"tip\": \"%s\", ", (long long)height, pm_cli_hex(hex, tip, 32));
    fprintf(out, "\"utxo_count\": %llu, ", (unsigned long long)pm_engine_utxo_count(engine));
    fprintf(out, "\"utxo_digest\": \"%s\"", pm_cli_hex(hex, digest, 32));
    return PM_OK;
}
