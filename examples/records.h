/*
 * records.h — reading a Postmark file (protocol §2) into memory, for the
 * examples: a 60-byte header, then records, each a 4-byte little-endian
 * length and that many bytes (a transaction in a stream, a block in a
 * chain). Public API only; the `postmark` program reads files faster
 * (io_uring, in batches), which a short example does not need.
 */
#ifndef EXAMPLES_RECORDS_H
#define EXAMPLES_RECORDS_H

#include <postmark.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    uint8_t *data;          /* the whole file */
    pm_file_kind kind;      /* stream or chain */
    pm_chain_params params; /* from the header */
    const uint8_t **rec;    /* the records, pointing into data */
    size_t *size;
    size_t n;
} records;

/* Read `path` whole and frame its records; it must be a file of `kind`.
 * Returns 0, or -1 with a message on stderr (unreadable, bad header,
 * another kind, a record cut short). */
static inline int records_load(records *r, const char *path, pm_file_kind kind)
{
    *r = (records){0};
    FILE *f = fopen(path, "rb");
    long len = -1;
    if (f && fseek(f, 0, SEEK_END) == 0)
        len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0 || !(r->data = malloc((size_t)len + 1)) ||
        fread(r->data, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "%s: cannot read\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    size_t size = (size_t)len;
    /* The header names the file's kind and its chain (network and key). */
    if (!pm_file_header_parse(pm_context_static, &r->kind, &r->params, NULL, r->data, size)) {
        fprintf(stderr, "%s: not a Postmark file\n", path);
        return -1;
    }
    if (r->kind != kind) {
        fprintf(stderr, "%s: a %s, not a %s\n", path, r->kind == PM_FILE_CHAIN ? "chain" : "stream",
                kind == PM_FILE_CHAIN ? "chain" : "stream");
        return -1;
    }
    size_t cap = 0;
    for (size_t pos = PM_FILE_HEADER_SIZE; pos < size;) {
        const uint8_t *p = r->data + pos;
        size_t n = size - pos < 4 ? SIZE_MAX
                                  : (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 |
                                        (size_t)p[3] << 24;
        if (n == SIZE_MAX || n > size - pos - 4) {
            fprintf(stderr, "%s: record %zu is cut short\n", path, r->n);
            return -1;
        }
        if (r->n == cap) {
            cap = cap ? 2 * cap : 256;
            const uint8_t **rec = realloc(r->rec, cap * sizeof *rec);
            size_t *sz = realloc(r->size, cap * sizeof *sz);
            if (rec)
                r->rec = rec;
            if (sz)
                r->size = sz;
            if (!rec || !sz)
                return -1;
        }
        r->rec[r->n] = p + 4;
        r->size[r->n++] = n;
        pos += 4 + n;
    }
    return 0;
}

static inline void records_free(records *r)
{
    free(r->data);
    free(r->rec);
    free(r->size);
}

/* Lower-case hex of a 32-byte hash into out[65]. */
static inline const char *hash_hex(char out[65], const uint8_t h[PM_HASH_SIZE])
{
    for (size_t i = 0; i < PM_HASH_SIZE; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
    return out;
}

#endif
