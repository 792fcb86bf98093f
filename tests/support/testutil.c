/* testutil.c — see testutil.h. */
#include "testutil.h"
#include "postmark_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

unsigned long pm_test_passed, pm_test_failed;

int pm_test_finish(void)
{
    printf("%lu passed, %lu failed\n", pm_test_passed, pm_test_failed);
    return pm_test_failed == 0 && pm_test_passed > 0 ? 0 : 1;
}

const char *pm_vector_path(const char *name)
{
    static char path[4096];
    struct stat st;
    if (stat(PM_VECTORS_DIR, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "vectors folder missing: %s (set PM_VECTORS_DIR)\n", PM_VECTORS_DIR);
        pm_test_failed++;
    }
    snprintf(path, sizeof path, "%s/%s", PM_VECTORS_DIR, name);
    return path;
}

uint8_t *pm_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        pm_test_failed++;
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        if (got == 0)
            break;
        len += got;
    }
    fclose(f);
    *size = len;
    return buf;
}

int pm_write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    int ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

char *pm_hex(char *out, const uint8_t *bytes, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = 0;
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pm_unhex(uint8_t *out, size_t n, const char *hex)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 1;
}

const char *pm_test_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/pmtest.XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return dir;
}

int pm_vfile_load(pm_vfile *f, const char *name)
{
    memset(f, 0, sizeof *f);
    f->data = pm_read_file(pm_vector_path(name), &f->size);
    if (!f->data)
        return 0;
    pm_file_kind kind;
    if (!pm_file_header_parse(pm_context_static, &kind, &f->params, NULL, f->data, f->size)) {
        fprintf(stderr, "%s: bad header\n", name);
        pm_test_failed++;
        return 0;
    }
    /* Every record takes at least its 4-byte length prefix. */
    f->rec = malloc((f->size / 4 + 1) * sizeof *f->rec);
    f->len = malloc((f->size / 4 + 1) * sizeof *f->len);
    size_t pos = PM_FILE_HEADER_SIZE;
    while (pm_record_next(f->data, f->size, &pos, &f->rec[f->n], &f->len[f->n]) == 1)
        f->n++;
    return 1;
}

void pm_vfile_free(pm_vfile *f)
{
    free(f->data);
    free(f->rec);
    free(f->len);
    memset(f, 0, sizeof *f);
}

int pm_vrejects_load(pm_vreject **rows, size_t *n, const char *name)
{
    *rows = NULL;
    *n = 0;
    size_t size = 0;
    uint8_t *data = pm_read_file(pm_vector_path(name), &size);
    char *text = data ? realloc(data, size + 1) : NULL;
    if (!text) {
        free(data);
        return 0;
    }
    text[size] = 0;
    size_t cap = 0;
    int ok = strncmp(text, "index,txid,reason\n", 18) == 0;
    char *save = NULL;
    strtok_r(text, "\n", &save); /* the column names */
    for (char *line; ok && (line = strtok_r(NULL, "\n", &save)) != NULL;) {
        pm_vreject r = {0};
        unsigned long long index = 0;
        char hex[65] = "", reason[40] = "";
        if (sscanf(line, "%llu,%64[0-9a-f],%39s", &index, hex, reason) == 3)
            r.has_txid = pm_unhex(r.txid, 32, hex);
        else if (sscanf(line, "%llu,,%39s", &index, reason) != 2)
            ok = 0;
        r.index = index;
        ok = ok && (r.has_txid || hex[0] == 0) &&
             pm_reason_from_name(pm_context_static, &r.reason, reason);
        if (ok && *n == cap) {
            cap = cap ? 2 * cap : 64;
            pm_vreject *grown = realloc(*rows, cap * sizeof **rows);
            ok = grown != NULL;
            if (grown)
                *rows = grown;
        }
        if (ok)
            (*rows)[(*n)++] = r;
    }
    free(text);
    if (!ok) {
        fprintf(stderr, "%s: not a rejects file\n", name);
        pm_test_failed++;
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return ok;
}

size_t pm_block_records(const uint8_t *block, size_t size, const uint8_t **tx, size_t *len,
                        size_t cap)
{
    pm_block blk;
    if (!pm_block_parse(pm_context_static, &blk, NULL, block, size))
        return 0;
    size_t n = 0, cursor = 0;
    while (n < cap && pm_block_next_tx(pm_context_static, &tx[n], &len[n], &blk, &cursor))
        n++;
    return n;
}

uint8_t *pm_test_gen_stream(const pm_context *ctx, const pm_gen_config *cfg,
                            pm_gen_report *report, size_t *size)
{
    int fd = memfd_create("stream", 0);
    tool_fault fault = {.message = ""};
    pm_status st = fd >= 0 ? pm_gen_write(ctx, cfg, fd, report, &fault) : PM_ERR_IO;
    CHECKF(st == PM_OK, "gen: %s", fault.message);
    uint8_t *buf = NULL;
    off_t end = st == PM_OK ? lseek(fd, 0, SEEK_END) : -1;
    if (end > 0) {
        *size = (size_t)end;
        buf = malloc(*size);
        CHECK(buf && pread(fd, buf, *size, 0) == (ssize_t)*size);
    }
    if (fd >= 0)
        close(fd);
    return buf;
}
