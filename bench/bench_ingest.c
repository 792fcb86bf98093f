/*
 * bench_ingest.c — how fast the ingest module reads a record file, beside
 * the limit measured in the same run: a plain read(2) loop into a buffer
 * of the same size, which does nothing with the bytes. The ingest reader
 * also frames every record (reads its length prefix, fills a pm_record),
 * so the ratio ingest / read(2) is the cost of framing plus whatever the
 * mechanism gains or loses.
 *
 * By default it writes a ~1 GiB stream of 200-byte records, reads it once
 * so it sits in the page cache, then times, median of N runs:
 *   (a) read(2) loop                         — the limit
 *   (b) pm_ingest, io_uring
 *   (c) pm_ingest, read(2) fallback
 *   (d) pm_ingest, io_uring with O_DIRECT    — from the device, if allowed
 *       beside a read(2) loop with O_DIRECT  — its limit
 *
 * Usage: bench_ingest [--size MiB] [--runs N] [--record BYTES]
 *                     [--buffer KiB] [--buffers N] [--file PATH] [--keep]
 * --file reads an existing record file instead of writing one (a file that
 * does not exist is created there and kept). CI runs it with --size 16.
 * Never asserts on time; exits 1 only if a reader returns wrong counts.
 */
#include "ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Write `size` bytes (rounded to whole records) of a POSTMKTX stream. */
static int make_file(const char *path, uint64_t size, size_t record)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
        return 0;
    }
    size_t frame = 4 + record, per = ((size_t)4 << 20) / frame;
    uint8_t *chunk = malloc(per * frame);
    uint8_t header[60] = "POSTMKTX";
    header[8] = 1;
    memcpy(header + 12, "bench", 5);
    int ok = write(fd, header, 60) == 60;
    uint32_t x = 12345;
    for (size_t i = 0; i < per; i++) {
        uint8_t *f = chunk + i * frame;
        f[0] = (uint8_t)record;
        f[1] = (uint8_t)(record >> 8);
        f[2] = (uint8_t)(record >> 16);
        f[3] = (uint8_t)(record >> 24);
        for (size_t k = 0; k < record; k++) {
            x = x * 1103515245u + 12345u;
            f[4 + k] = (uint8_t)(x >> 16);
        }
    }
    uint64_t written = 60;
    while (ok && written + frame <= size) {
        size_t n = per;
        if ((size - written) / frame < n)
            n = (size_t)((size - written) / frame);
        ok = write(fd, chunk, n * frame) == (ssize_t)(n * frame);
        written += n * frame;
    }
    free(chunk);
    return close(fd) == 0 && ok;
}

/* Fraction of the file's pages in the page cache. */
static double resident(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = ((size_t)st.st_size + page - 1) / page;
    unsigned char *vec = malloc(pages);
    size_t in = 0;
    if (mincore(m, (size_t)st.st_size, vec) == 0)
        for (size_t i = 0; i < pages; i++)
            in += vec[i] & 1;
    free(vec);
    munmap(m, (size_t)st.st_size);
    return (double)in / (double)pages;
}

/* (a) The limit: read(2) into one buffer until the end. Returns seconds,
 * or -1 when O_DIRECT was asked for and refused. */
static double read_loop(const char *path, size_t bufsize, int direct, uint64_t *bytes)
{
    int fd = open(path, O_RDONLY | (direct ? O_DIRECT : 0));
    if (fd < 0)
        return -1;
    void *buf;
    if (posix_memalign(&buf, 4096, bufsize) != 0) {
        close(fd);
        return -1;
    }
    memset(buf, 0, bufsize);
    double t0 = now();
    uint64_t total = 0;
    ssize_t r;
    while ((r = read(fd, buf, bufsize)) > 0)
        total += (uint64_t)r;
    double t = now() - t0;
    free(buf);
    close(fd);
    *bytes = total;
    return r < 0 ? -1 : t;
}

/* (b)-(d): pm_ingest, summing record sizes (the caller touches nothing
 * else, as a pipeline handing records on would). Returns seconds, or -1
 * on error; *direct tells whether O_DIRECT was in effect. */
static double ingest_loop(const char *path, const pm_ingest_config *cfg, uint64_t *records,
                          uint64_t *bytes, int *direct, char *backend, size_t blen)
{
    static pm_record recs[4096];
    pm_ingest *in;
    tool_fault fault;
    double t0 = now();
    if (pm_ingest_open_ex(&in, path, cfg, &fault) != PM_OK) {
        fprintf(stderr, "%s\n", fault.message);
        return -1;
    }
    uint8_t header[60];
    if (pm_ingest_header(in, header) != 1) {
        pm_ingest_close(in);
        return -1;
    }
    uint64_t count = 0, sum = 0;
    size_t n;
    pm_status st;
    while ((st = pm_ingest_next(in, recs, 4096, &n)) == PM_OK && n > 0) {
        for (size_t i = 0; i < n; i++)
            sum += recs[i].size;
        count += n;
    }
    double t = now() - t0;
    snprintf(backend, blen, "%s", pm_ingest_backend(in));
    *direct = pm_ingest_is_direct(in);
    *bytes = pm_ingest_bytes(in);
    int bad = st != PM_OK || pm_ingest_truncated(in, NULL, NULL);
    if (bad)
        fprintf(stderr, "ingest: %s\n", st != PM_OK ? pm_ingest_error(in) : "truncated");
    pm_ingest_close(in);
    *records = count;
    (void)sum;
    return bad ? -1 : t;
}

int main(int argc, char **argv)
{
    uint64_t size_mib = 1024;
    int runs = 5, keep = 0;
    size_t record = 200;
    pm_ingest_config cfg;
    pm_ingest_config_default(&cfg);
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--keep") == 0) {
            keep = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "usage: %s [--size MiB] [--runs N] [--record BYTES] [--buffer KiB] "
                            "[--buffers N] [--file PATH] [--keep]\n",
                    argv[0]);
            return 2;
        }
        i++;
        if (strcmp(a, "--size") == 0)
            size_mib = strtoull(v, NULL, 10);
        else if (strcmp(a, "--runs") == 0)
            runs = atoi(v);
        else if (strcmp(a, "--record") == 0)
            record = (size_t)strtoull(v, NULL, 10);
        else if (strcmp(a, "--buffer") == 0)
            cfg.buffer_size = (size_t)strtoull(v, NULL, 10) << 10;
        else if (strcmp(a, "--buffers") == 0)
            cfg.buffers = (unsigned)atoi(v);
        else if (strcmp(a, "--file") == 0)
            file = v;
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    if (runs < 1 || runs > 101 || size_mib < 1 || record > 65536) {
        fprintf(stderr, "out of range: --runs 1..101, --size >= 1, --record <= 65536\n");
        return 2;
    }

    char path[4096];
    int made = 0;
    struct stat st;
    if (file && stat(file, &st) == 0) {
        snprintf(path, sizeof path, "%s", file);
    } else {
        const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        if (file)
            snprintf(path, sizeof path, "%s", file);
        else
            snprintf(path, sizeof path, "%s/postmark-bench-ingest-%d.pmtx", tmp, (int)getpid());
        fprintf(stderr, "writing %llu MiB of %zu-byte records to %s\n",
                (unsigned long long)size_mib, record, path);
        if (!make_file(path, size_mib << 20, record))
            return 1;
        made = !file;
    }
    if (stat(path, &st) != 0)
        return 1;
    uint64_t fsize = (uint64_t)st.st_size;

    /* Warm the page cache, and count the records the plain way. */
    uint64_t warm;
    read_loop(path, (size_t)4 << 20, 0, &warm);
    uint64_t expect_records = (fsize - 60) / (4 + record);
    printf("file: %s, %.1f MiB, page cache %.0f%% resident\n", path, (double)fsize / 1048576.0,
           100 * resident(path));
    printf("buffers: %u x %zu KiB; median of %d runs; MB = 10^6 bytes\n", cfg.buffers,
           cfg.buffer_size >> 10, runs);

    double ta[101], tb[101], tc[101], td[101], te[101];
    int have_direct = 1, have_direct_read = 1, ok = 1;
    char backend_b[32] = "", backend_c[32] = "", backend_d[32] = "";
    for (int r = 0; r < runs; r++) {
        uint64_t bytes, recs;
        int direct;
        ta[r] = read_loop(path, cfg.buffer_size, 0, &bytes);
        ok &= ta[r] > 0 && bytes == fsize;

        pm_ingest_config c = cfg;
        c.flags = 0;
        tb[r] = ingest_loop(path, &c, &recs, &bytes, &direct, backend_b, sizeof backend_b);
        ok &= tb[r] > 0 && bytes == fsize && (file || recs == expect_records);

        c.flags = PM_INGEST_NO_URING;
        tc[r] = ingest_loop(path, &c, &recs, &bytes, &direct, backend_c, sizeof backend_c);
        ok &= tc[r] > 0 && bytes == fsize && (file || recs == expect_records);

        c.flags = PM_INGEST_DIRECT;
        td[r] = ingest_loop(path, &c, &recs, &bytes, &direct, backend_d, sizeof backend_d);
        ok &= td[r] > 0 && bytes == fsize;
        have_direct &= direct;

        te[r] = read_loop(path, cfg.buffer_size, 1, &bytes);
        have_direct_read &= te[r] > 0 && bytes == fsize;
    }
    if (!ok) {
        fprintf(stderr, "a reader returned wrong counts\n");
        return 1;
    }
    /* Ratios are medians of the ratios within each run (the runs of one
     * round are back to back), which shrugs off load that comes and goes. */
    double mb = (double)fsize / 1e6, rb[101], rc[101], rd[101];
    for (int r = 0; r < runs; r++) {
        rb[r] = ta[r] / tb[r];
        rc[r] = ta[r] / tc[r];
        rd[r] = te[r] / td[r];
    }
    double a = median(ta, runs), b = median(tb, runs), c = median(tc, runs);
    printf("(a) read(2) loop               %8.0f MB/s   (the limit)\n", mb / a);
    printf("(b) pm_ingest %-8s          %8.0f MB/s   %.2f x read(2)   %.1f M records/s\n",
           backend_b, mb / b, median(rb, runs), (double)expect_records / b / 1e6);
    printf("(c) pm_ingest %-8s          %8.0f MB/s   %.2f x read(2)\n", backend_c, mb / c,
           median(rc, runs));
    if (have_direct) {
        double d = median(td, runs);
        printf("(d) pm_ingest %-8s O_DIRECT %8.0f MB/s", backend_d, mb / d);
        if (have_direct_read)
            printf("   %.2f x read(2) O_DIRECT (%.0f MB/s)", median(rd, runs), mb / median(te, runs));
        printf("\n");
    } else {
        printf("(d) O_DIRECT: not supported on this file system\n");
    }
    if (made && !keep)
        unlink(path);
    return 0;
}
