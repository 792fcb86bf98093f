/*
 * fuzz_framing.c — libFuzzer target for the ingest module's framing.
 *
 * The input's first two bytes choose the reading (buffer size 16..527
 * bytes, 2..5 buffers, io_uring or read(2), records per batch); the rest
 * is the file, written to a memfd and read back through pm_ingest. The
 * records and the truncated tail must account for every byte after the
 * header, in order, each record's bytes equal to the file's, and both
 * backends, and a pipe carrying the same bytes, must agree. Nothing may crash, hang or leak.
 */
#include "ingest.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Read `file` with cfg and check every invariant; returns the number of
 * whole records (or aborts on a violation). */
static uint64_t check(int fd, int is_file, const uint8_t *file, size_t len,
                      const pm_ingest_config *cfg, size_t max)
{
    pm_ingest *in;
    tool_fault fault;
    if ((is_file && lseek(fd, 0, SEEK_SET) != 0) ||
        pm_ingest_open_fd_ex(&in, fd, cfg, &fault) != PM_OK)
        abort();
    if (pm_ingest_size(in) != (is_file ? len : 0))
        abort();
    uint8_t header[60];
    int h = pm_ingest_header(in, header);
    if (h != (len >= 60) || memcmp(header, file, len < 60 ? len : 60) != 0)
        abort();
    if (h == 0) {
        pm_ingest_close(in);
        return 0;
    }
    pm_record recs[8];
    uint64_t next = 60, count = 0;
    size_t n;
    for (;;) {
        if (pm_ingest_next(in, recs, max, &n) != PM_OK || n > max)
            abort();
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            const pm_record *r = &recs[i];
            /* A record over max_record comes without its bytes. */
            int skipped = cfg->max_record && r->size > cfg->max_record;
            if (r->index != count || r->offset != next || next + 4 > len ||
                le32(file + next) != r->size || r->size > len - next - 4 ||
                (r->bytes == NULL) != skipped ||
                (r->size && !skipped && memcmp(r->bytes, file + next + 4, r->size) != 0))
                abort();
            next += 4 + r->size;
            count++;
        }
        if (pm_ingest_bytes(in) < next)
            abort();
    }
    uint64_t off, declared;
    int t = pm_ingest_truncated(in, &off, &declared);
    if (t) {
        /* The tail is one partial record starting where the last ended. */
        if (off != next || next >= len)
            abort();
        if (len - next < 4 ? declared != PM_INGEST_NO_LENGTH
                           : declared != le32(file + next) || next + 4 + declared <= len)
            abort();
    } else if (next != len) {
        abort();
    }
    if (pm_ingest_bytes(in) != len)
        abort();
    pm_ingest_close(in);
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    pm_ingest_config cfg;
    pm_ingest_config_default(&cfg);
    cfg.buffer_size = 16 + (size_t)data[0] * 2 + (data[1] & 1);
    cfg.buffers = 2 + (data[1] >> 1) % 4;
    size_t max = 1 + (size_t)(data[1] >> 3) % 8;
    const uint8_t *file = data + 2;
    size_t len = size - 2;

    int fd = memfd_create("fuzz_framing", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t at = 0;
    while (at < len) {
        ssize_t w = write(fd, file + at, len - at);
        if (w <= 0)
            abort();
        at += (size_t)w;
    }
    cfg.flags = 0;
    uint64_t a = check(fd, 1, file, len, &cfg, max);
    cfg.flags = PM_INGEST_NO_URING;
    uint64_t b = check(fd, 1, file, len, &cfg, max);
    if (a != b)
        abort();
    /* Oversized records skipped, not assembled: the same framing. */
    cfg.max_record = 1 + (size_t)(data[0] >> 2);
    if (check(fd, 1, file, len, &cfg, max) != a)
        abort();
    close(fd);

    /* The same bytes as a stream: they fit in a pipe's buffer, so no
     * writer thread is needed. */
    int p[2];
    if (len <= 60000 && pipe(p) == 0) {
        at = 0;
        while (at < len) {
            ssize_t w = write(p[1], file + at, len - at);
            if (w <= 0)
                abort();
            at += (size_t)w;
        }
        close(p[1]);
        cfg.flags = (data[1] & 0x80) ? PM_INGEST_NO_URING : 0;
        if (check(p[0], 0, file, len, &cfg, max) != a)
            abort();
        close(p[0]);
    }
    return 0;
}
