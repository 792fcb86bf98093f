/*
 * ingest.c — reading record files (protocol §2) with io_uring, or read(2)
 * where io_uring is unavailable, and handing out records in place.
 *
 * Buffers. One slab holds `nbuf` buffers; each is `bufsize` bytes of data
 * preceded by `headroom` (= bufsize, rounded up) bytes of headroom. The
 * buffers form a ring read in order: buffer cur is being consumed, the
 * ones after it hold the input that follows, in ring order. A regular file
 * is cut into chunks of bufsize bytes, one per buffer, all read at once
 * with positional reads (so `nbuf` reads are in flight); a stream is read
 * in order with one read in flight, into the first buffer in ring order
 * that is not full, each buffer filled up before the next is used.
 *
 * Records. Whole records in the current buffer are returned as pointers
 * into it. A record cut by the end of a buffer (the "tail") is carried
 * over when the consumer moves to the next buffer: if the whole record
 * fits in the headroom, the tail is copied just before the next buffer's
 * data, so the record ends up contiguous there (a copy of less than one
 * record); otherwise it is assembled in a separate spill buffer. Either
 * way every record is returned whole, up to 4 GiB-1.
 *
 * Invariants:
 *  - A buffer never has two reads in flight, and a buffer is given a new
 *    chunk (recycled) only when the consumer leaves it, which happens only
 *    at the start of a batch: the records of the batch being returned all
 *    lie in the current buffer, its headroom, or the spill, none of which
 *    is written until the next call.
 *  - p/pos: the next unconsumed byte and its input offset; every byte
 *    before pos belongs to a returned record, the header, or the record
 *    being spilled.
 *  - For a regular file, `end` is the size when opened (or less if it
 *    shrank): nothing past it is read, and a record declared past it is
 *    known to be truncated at once. For a stream `end` is unknown
 *    (UINT64_MAX) until a read returns 0.
 *  - Memory is bounded: buffers are fixed; the spill for a regular file is
 *    the record's size, which the file is known to hold, and for a stream
 *    it grows with the bytes actually received, whatever the length prefix
 *    claims.
 */
#include "ingest.h"

#include "bytes.h"
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <poll.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_BUFFERS 64
#define MIN_BUFFER_SIZE 16
#define MAX_BUFFER_SIZE ((size_t)1 << 30)
#define DIRECT_ALIGN 4096
#define CANCEL_TAG UINT64_MAX
/* A spill larger than this is freed once its record has been used. */
#define SPILL_KEEP ((size_t)64 << 20)

typedef struct {
    uint8_t *data;   /* bufsize bytes; the headroom is just before */
    uint64_t off;    /* input offset of data[0] */
    size_t len;      /* bytes arrived */
    size_t target;   /* bytes this buffer is to hold; 0: past the end */
    int inflight;    /* an io_uring read is in flight */
} ibuf;

struct pm_ingest {
    int fd;
    int own_fd;
    int stream;       /* not a regular file: in order, one read in flight */
    int direct;       /* O_DIRECT in effect */
    int uring;        /* io_uring in use (else read(2)) */
    int fixed;        /* buffers registered with the ring */
    int closing;
    struct io_uring ring;
    unsigned inflight;
    const char *fallback;
    char fallback_buf[192];
    char name[256];
    tool_fault fault; /* the sticky error's */
    pm_status status; /* sticky error */

    size_t bufsize, headroom, stride;
    unsigned nbuf;
    uint8_t *slab;
    size_t slab_size;
    ibuf bufs[MAX_BUFFERS];
    unsigned cur;
    uint64_t start;    /* file position where reading began */
    uint64_t end;      /* input size, UINT64_MAX while unknown */
    uint64_t next_off; /* offset of the next chunk to hand a buffer */

    const uint8_t *p;
    uint64_t pos;
    uint64_t index;
    int header_done;
    unsigned idle_ms;  /* streams: give up waiting after this long */
    int idle;          /* the last pm_ingest_next timed out */
    const volatile sig_atomic_t *cancel; /* the caller's stop flag, or NULL */
    int cancelled;     /* the last wait ended on *cancel */
    size_t max_record; /* longer records are skipped, not assembled */
    int done;
    int truncated;
    uint64_t trunc_off, trunc_declared;

    uint8_t *spill;
    size_t spill_cap, spill_have, spill_need;
    uint64_t spill_off;
    int spilling;
    int skipping;      /* spilling an oversized record: count, do not copy */
};

static size_t round_up(size_t x, size_t a)
{
    return (x + a - 1) / a * a;
}

/* Record the first error; later calls return it (sticky). */
static void fail(pm_ingest *in, pm_status status, const char *what, int err, uint64_t offset)
{
    if (in->status != PM_OK)
        return;
    in->status = status;
    tool_fault_set(&in->fault, TOOL_FAULT_NONE, in->start + offset, err,
                   "%s %s at offset %" PRIu64 ": %s", what, in->name, offset, strerror(err));
}

/* ---------------------------------------------------------------------- */
/* Buffers and reads                                                       */
/* ---------------------------------------------------------------------- */

/* Give buffer b the next stretch of input: a chunk of a file (none past
 * its end), or room for bufsize more bytes of a stream. */
static void assign(pm_ingest *in, ibuf *b)
{
    b->len = 0;
    b->off = in->next_off;
    if (in->next_off >= in->end) {
        b->target = 0;
        return;
    }
    uint64_t left = in->end - in->next_off;
    b->target = left < in->bufsize ? (size_t)left : in->bufsize;
    in->next_off += b->target;
}

static void drop_direct(pm_ingest *in)
{
    int fl = fcntl(in->fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(in->fd, F_SETFL, fl & ~O_DIRECT);
    in->direct = 0;
}

/* The input ends at b->off + b->len (a stream's read returned 0, or a file
 * shrank): nothing after that point will be read or returned. */
static void end_of_input(pm_ingest *in, ibuf *b)
{
    in->end = b->off + b->len;
    b->target = b->len;
    for (unsigned k = 0; k < in->nbuf; k++) {
        ibuf *o = &in->bufs[k];
        if (o != b && o->off >= in->end) {
            o->target = 0;
            o->len = 0;
        }
    }
}

/* A read into b returned `res` (bytes, or -errno). Returns 1 when the read
 * should be issued again, 0 otherwise (done, or error recorded). */
static int read_done(pm_ingest *in, ibuf *b, ssize_t res)
{
    if (b->target == 0 || b->len >= b->target)
        return 0; /* past an end found meanwhile: ignore */
    if (res < 0) {
        int err = (int)-res;
        if (err == EINTR)
            return 1;
        if (err == EAGAIN) { /* a non-blocking descriptor: wait for it */
            struct pollfd pfd = {.fd = in->fd, .events = POLLIN};
            (void)poll(&pfd, 1, -1);
            return 1;
        }
        if (err == EINVAL && in->direct) { /* O_DIRECT refused after all */
            drop_direct(in);
            return 1;
        }
        fail(in, PM_ERR_IO, "read", err, b->off + b->len);
        return 0;
    }
    if (res == 0) {
        end_of_input(in, b);
        return 0;
    }
    size_t got = (size_t)res;
    if (got > b->target - b->len)
        got = b->target - b->len; /* a file grown since opened, or O_DIRECT padding */
    b->len += got;
    return !in->stream && b->len < b->target; /* a short read of a file */
}

/* Length of the next read into b: what is missing, rounded up for
 * O_DIRECT (the buffer has the room: its size is a multiple of 4096). */
static size_t read_length(pm_ingest *in, const ibuf *b)
{
    if (in->direct && b->len % DIRECT_ALIGN != 0)
        drop_direct(in); /* an odd short read: O_DIRECT cannot go on from there */
    size_t want = b->target - b->len;
    if (in->direct)
        want = round_up(want, DIRECT_ALIGN);
    return want;
}

static void uring_submit_read(pm_ingest *in, unsigned i)
{
    ibuf *b = &in->bufs[i];
    struct io_uring_sqe *sqe = io_uring_get_sqe(&in->ring);
    if (!sqe) { /* cannot happen: the ring has room for every buffer twice */
        (void)io_uring_submit(&in->ring);
        sqe = io_uring_get_sqe(&in->ring);
        if (!sqe) {
            fail(in, PM_ERR_IO, "io_uring_get_sqe for", EBUSY, b->off + b->len);
            return;
        }
    }
    unsigned want = (unsigned)read_length(in, b);
    uint64_t off = in->stream ? (uint64_t)-1 : in->start + b->off + b->len;
    if (in->fixed)
        io_uring_prep_read_fixed(sqe, in->fd, b->data + b->len, want, off, (int)i);
    else
        io_uring_prep_read(sqe, in->fd, b->data + b->len, want, off);
    io_uring_sqe_set_data64(sqe, i);
    b->inflight = 1;
    in->inflight++;
}

/* Issue every read that can be: for a file, each buffer short of its
 * chunk; for a stream, the first buffer (in ring order from cur) that is
 * not full, when no read is in flight. */
static void uring_start_reads(pm_ingest *in)
{
    unsigned issued = 0;
    for (unsigned k = 0; k < in->nbuf && in->status == PM_OK; k++) {
        unsigned i = (in->cur + k) % in->nbuf;
        ibuf *b = &in->bufs[i];
        if (in->stream && in->inflight > 0)
            break;
        if (b->inflight || b->len >= b->target)
            continue;
        uring_submit_read(in, i);
        issued++;
        if (in->stream)
            break;
    }
    if (issued) {
        int rc;
        do
            rc = io_uring_submit(&in->ring);
        while (rc == -EINTR);
        if (rc < 0)
            fail(in, PM_ERR_IO, "io_uring_submit for", -rc, in->pos);
    }
}

/* Handle every completion available; when `wait`, first wait for one. */
static void uring_reap(pm_ingest *in, int wait)
{
    struct io_uring_cqe *cqe;
    if (wait) {
        int rc;
        do
            rc = io_uring_wait_cqe(&in->ring, &cqe);
        while (rc == -EINTR);
        if (rc < 0) {
            fail(in, PM_ERR_IO, "io_uring_wait_cqe for", -rc, in->pos);
            return;
        }
    }
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&in->ring, head, cqe)
    {
        seen++;
        uint64_t tag = io_uring_cqe_get_data64(cqe);
        if (tag == CANCEL_TAG || tag >= in->nbuf)
            continue;
        ibuf *b = &in->bufs[tag];
        b->inflight = 0;
        in->inflight--;
        if (in->closing)
            continue;
        (void)read_done(in, b, cqe->res);
    }
    io_uring_cq_advance(&in->ring, seen);
}

/* One synchronous read(2)/pread(2) into buffer b. */
static void plain_read(pm_ingest *in, ibuf *b)
{
    for (;;) {
        size_t want = read_length(in, b);
        ssize_t r = in->stream ? read(in->fd, b->data + b->len, want)
                               : pread(in->fd, b->data + b->len, want,
                                       (off_t)(in->start + b->off + b->len));
        if (!read_done(in, b, r < 0 ? -(ssize_t)errno : r))
            return;
    }
}

/* Make progress on buffer i, which the consumer is waiting for: afterwards
 * it has more bytes, or its target shrank, or an error is recorded. */
static void wait_data(pm_ingest *in, unsigned i)
{
    if (!in->uring) {
        plain_read(in, &in->bufs[i]);
        return;
    }
    ibuf *b = &in->bufs[i];
    size_t len = b->len, target = b->target;
    while (in->status == PM_OK && b->len == len && b->target == target) {
        uring_start_reads(in);
        if (in->status != PM_OK)
            return;
        if (in->inflight == 0) { /* nothing could complete: never wait forever */
            fail(in, PM_ERR_IO, "read (no read in flight)", EIO, b->off + b->len);
            return;
        }
        uring_reap(in, 1);
    }
}

/* Wait up to `ms` for a stream's input to arrive. Returns 1 when there is
 * something to read (or an error to report), 0 when the time ran out or a
 * signal interrupted the wait (the caller looks at its flags again). */
static int input_arrives(pm_ingest *in, unsigned ms)
{
    if (!in->uring) {
        struct pollfd pfd = {.fd = in->fd, .events = POLLIN};
        int rc = poll(&pfd, 1, (int)ms);
        return rc > 0 || (rc < 0 && errno != EINTR); /* a poll error: let the read report it */
    }
    uring_start_reads(in);
    if (in->status != PM_OK || in->inflight == 0)
        return 1;
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long long)(ms % 1000) * 1000000};
    int rc = io_uring_wait_cqe_timeout(&in->ring, &cqe, &ts);
    return rc != -ETIME && rc != -EINTR;
}

/* How often a wait looks at the cancel flag: a signal that lands just
 * before a blocking call starts is noticed within this long. */
#define CANCEL_SLICE_MS 100u

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cancel_requested(pm_ingest *in)
{
    if (in->cancel && *in->cancel) {
        in->cancelled = 1;
        return 1;
    }
    return 0;
}

/* Before a blocking wait for a stream's input: wait in slices while the
 * idle limit (when use_idle) and the cancel flag allow. Returns 1 when
 * input arrived (the blocking wait will not block), 0 when the input went
 * idle or the wait was cancelled. */
static int stream_wait(pm_ingest *in, int use_idle)
{
    unsigned idle = use_idle ? in->idle_ms : 0;
    if (!in->cancel && !idle)
        return 1;
    double start = now_ms();
    for (;;) {
        if (cancel_requested(in))
            return 0;
        unsigned slice = in->cancel ? CANCEL_SLICE_MS : idle;
        if (idle) {
            double left = (double)idle - (now_ms() - start);
            if (left <= 0)
                return 0;
            if ((double)slice > left)
                slice = (unsigned)left + 1;
        }
        if (input_arrives(in, slice))
            return 1;
    }
}

/* ---------------------------------------------------------------------- */
/* Consuming                                                               */
/* ---------------------------------------------------------------------- */

static void finish(pm_ingest *in, int truncated, uint64_t off, uint64_t declared)
{
    in->done = 1;
    in->truncated = truncated;
    in->trunc_off = off;
    in->trunc_declared = declared;
    in->spilling = 0;
    if (in->end != UINT64_MAX)
        in->pos = in->end;
}

/* Make room for `need` bytes in the spill, growing geometrically (never
 * past the record's size). Returns 0 when out of memory. */
static int spill_reserve(pm_ingest *in, size_t need)
{
    if (need <= in->spill_cap && in->spill)
        return 1;
    size_t cap = in->spill_cap * 2;
    if (cap < need)
        cap = need;
    if (cap < ((size_t)1 << 16))
        cap = (size_t)1 << 16;
    if (cap > in->spill_need)
        cap = in->spill_need;
    uint8_t *s = realloc(in->spill, cap);
    if (!s) {
        in->status = PM_ERR_NOMEM;
        tool_fault_msg(&in->fault, 0,
               "%s: out of memory assembling the record at offset %" PRIu64 " (%zu bytes)",
               in->name, in->spill_off, in->spill_need);
        return 0;
    }
    in->spill = s;
    in->spill_cap = cap;
    return 1;
}

/* The current buffer is used up, save for `avail` bytes of a record cut by
 * its end (declared: the record's length when its prefix is whole, else
 * PM_INGEST_NO_LENGTH). Move to the next buffer, carrying those bytes over,
 * and hand the buffer left behind its next stretch of input.
 * Returns: 1 when moved, 0 at the end of the input, -1 on error. */
static int move_on(pm_ingest *in, size_t avail, uint64_t declared)
{
    unsigned ni = (in->cur + 1) % in->nbuf;
    ibuf *nb = &in->bufs[ni];
    if (nb->target == 0)
        return 0;
    const uint8_t *p = in->p;
    in->p = nb->data;
    if (avail > 0 && declared != PM_INGEST_NO_LENGTH && 4 + declared > in->headroom) {
        if (declared > SIZE_MAX - 4) {
            in->status = PM_ERR_NOMEM;
            tool_fault_msg(&in->fault, 0, "%s: record at offset %" PRIu64 " too large",
                   in->name, in->pos);
            return -1;
        }
        in->spill_need = (size_t)declared;
        in->spill_off = in->pos;
        in->spill_have = 0;
        /* A file is known to hold the whole record: reserve it at once. */
        if (!spill_reserve(in, in->stream ? avail - 4 : (size_t)declared))
            return -1;
        memcpy(in->spill, p + 4, avail - 4);
        in->spill_have = avail - 4;
        in->spilling = 1;
        in->pos += avail;
    } else if (avail > 0) {
        memcpy(nb->data - avail, p, avail);
        in->p = nb->data - avail;
    }
    unsigned old = in->cur;
    in->cur = ni;
    assign(in, &in->bufs[old]);
    if (in->uring)
        uring_start_reads(in);
    return 1;
}

/* Copy the next n bytes of input to dst. Returns the number copied (less
 * at the end of the input or on error). */
static size_t copy_out(pm_ingest *in, uint8_t *dst, size_t n)
{
    size_t done = 0;
    while (done < n && in->status == PM_OK) {
        ibuf *b = &in->bufs[in->cur];
        size_t avail = (size_t)(b->data + b->len - in->p);
        size_t take = avail < n - done ? avail : n - done;
        memcpy(dst + done, in->p, take);
        in->p += take;
        in->pos += take;
        done += take;
        if (done == n)
            break;
        if (b->len < b->target) {
            if (in->stream && !stream_wait(in, 0)) {
                fail(in, PM_ERR_IO, "interrupted: stopped waiting for", EINTR, in->pos);
                break;
            }
            wait_data(in, in->cur);
        } else if (move_on(in, 0, PM_INGEST_NO_LENGTH) <= 0)
            break;
    }
    return done;
}

int pm_ingest_header(pm_ingest *in, uint8_t header[PM_FILE_HEADER_SIZE])
{
    TOOL_CHECK(in != NULL && header != NULL);
    TOOL_CHECK(!in->header_done);
    in->header_done = 1;
    memset(header, 0, PM_FILE_HEADER_SIZE);
    size_t got = copy_out(in, header, PM_FILE_HEADER_SIZE);
    if (in->status != PM_OK)
        return -1;
    if (got < PM_FILE_HEADER_SIZE) {
        finish(in, 0, 0, 0);
        return 0;
    }
    return 1;
}

pm_status pm_ingest_next(pm_ingest *in, pm_record *recs, size_t max, size_t *n)
{
    TOOL_CHECK(in != NULL && recs != NULL && n != NULL);
    TOOL_CHECK(max > 0);
    TOOL_CHECK(in->header_done);
    size_t got = 0;
    *n = 0;
    in->idle = 0;
    in->cancelled = 0;
    if (in->status != PM_OK)
        return in->status;
    if (!in->spilling && in->spill_cap > SPILL_KEEP) {
        free(in->spill);
        in->spill = NULL;
        in->spill_cap = 0;
    }
    while (!in->done && got < max) {
        ibuf *b = &in->bufs[in->cur];
        const uint8_t *p = in->p, *lim = b->data + b->len;

        if (in->spilling) {
            size_t avail = (size_t)(lim - p);
            size_t want = in->spill_need - in->spill_have;
            size_t take = avail < want ? avail : want;
            if (!in->skipping) {
                if (!spill_reserve(in, in->spill_have + take))
                    return in->status;
                memcpy(in->spill + in->spill_have, p, take);
            }
            in->spill_have += take;
            p += take;
            in->p = p;
            in->pos += take;
            if (in->spill_have == in->spill_need) {
                recs[got].bytes = in->skipping ? NULL : in->spill;
                in->skipping = 0;
                recs[got].size = in->spill_need;
                recs[got].index = in->index++;
                recs[got].offset = in->spill_off;
                got++;
                in->spilling = 0;
                continue;
            }
        } else {
            /* The hot loop: whole records in the window. */
            uint64_t pos = in->pos, index = in->index;
            while (got < max) {
                size_t avail = (size_t)(lim - p);
                if (avail < 4)
                    break;
                uint32_t len = tool_le32(p);
                if (avail - 4 < len)
                    break;
                recs[got].bytes = len <= in->max_record ? p + 4 : NULL;
                recs[got].size = len;
                recs[got].index = index++;
                recs[got].offset = pos;
                got++;
                p += 4 + (size_t)len;
                pos += 4 + (uint64_t)len;
            }
            in->p = p;
            in->pos = pos;
            in->index = index;
            if (got == max)
                break;
        }

        /* The window holds no whole record: at most part of one. */
        size_t avail = (size_t)(lim - p);
        uint64_t declared = in->spilling  ? in->spill_need
                            : avail >= 4 ? tool_le32(p)
                                         : PM_INGEST_NO_LENGTH;
        uint64_t rec_off = in->spilling ? in->spill_off : in->pos;
        if (!in->spilling && declared != PM_INGEST_NO_LENGTH && in->end != UINT64_MAX &&
            in->pos + 4 + declared > in->end) {
            finish(in, 1, rec_off, declared); /* the file cannot hold it */
            break;
        }
        if (!in->spilling && declared != PM_INGEST_NO_LENGTH && declared > in->max_record) {
            /* Too long to be valid: let its bytes pass, keep none. */
            in->spilling = in->skipping = 1;
            in->spill_need = (size_t)declared;
            in->spill_off = in->pos;
            in->spill_have = avail - 4;
            in->p = lim;
            in->pos += avail;
            continue;
        }
        if (got > 0)
            break; /* hand over what we have before waiting */
        if (b->len < b->target) {
            if (in->stream && !stream_wait(in, 1)) {
                in->idle = 1;
                break;
            }
            wait_data(in, in->cur);
            if (in->status != PM_OK)
                return in->status;
            continue;
        }
        int moved = move_on(in, in->spilling ? 0 : avail, declared);
        if (moved < 0)
            return in->status;
        if (moved == 0) {
            if (in->spilling || avail > 0)
                finish(in, 1, rec_off, declared);
            else
                finish(in, 0, 0, 0);
        }
    }
    *n = got;
    return PM_OK;
}

int pm_ingest_cancelled(const pm_ingest *in)
{
    TOOL_CHECK(in != NULL);
    return in->cancelled;
}

int pm_ingest_idle(const pm_ingest *in)
{
    TOOL_CHECK(in != NULL);
    return in->idle;
}

int pm_ingest_truncated(const pm_ingest *in, uint64_t *offset, uint64_t *declared)
{
    TOOL_CHECK(in != NULL);
    if (!in->done || !in->truncated)
        return 0;
    if (offset)
        *offset = in->trunc_off;
    if (declared)
        *declared = in->trunc_declared;
    return 1;
}

uint64_t pm_ingest_bytes(const pm_ingest *in)
{
    TOOL_CHECK(in != NULL);
    return in->pos;
}

uint64_t pm_ingest_size(const pm_ingest *in)
{
    TOOL_CHECK(in != NULL);
    return in->stream ? 0 : in->end;
}

const char *pm_ingest_backend(const pm_ingest *in)
{
    TOOL_CHECK(in != NULL);
    return in->uring ? "io_uring" : "read";
}

const char *pm_ingest_fallback_reason(const pm_ingest *in)
{
    TOOL_CHECK(in != NULL);
    return in->uring ? NULL : in->fallback;
}

int pm_ingest_is_direct(const pm_ingest *in)
{
    TOOL_CHECK(in != NULL);
    return in->direct;
}

const char *pm_ingest_error(const pm_ingest *in)
{
    TOOL_CHECK(in != NULL);
    return in->fault.message;
}

const tool_fault *ingest_fault(const pm_ingest *in)
{
    TOOL_CHECK(in != NULL);
    return &in->fault;
}

/* ---------------------------------------------------------------------- */
/* Opening and closing                                                     */
/* ---------------------------------------------------------------------- */

void pm_ingest_config_default(pm_ingest_config *cfg)
{
    TOOL_CHECK(cfg != NULL);
    cfg->flags = 0;
    cfg->buffer_size = (size_t)128 << 10;
    cfg->buffers = 8;
    cfg->idle_ms = 0;
    cfg->name = NULL;
    cfg->max_record = 0;
    cfg->cancel = NULL;
}

/* Set up io_uring, or say why not (in->fallback). */
static void uring_setup(pm_ingest *in, unsigned flags)
{
    int rc = io_uring_queue_init(2 * in->nbuf, &in->ring, 0);
    if (rc < 0) {
        char extra[64] = "";
        FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
        if (f) {
            int v;
            if (fscanf(f, "%d", &v) == 1 && v != 0)
                snprintf(extra, sizeof extra, " (kernel.io_uring_disabled = %d)", v);
            fclose(f);
        }
        snprintf(in->fallback_buf, sizeof in->fallback_buf, "io_uring_queue_init: %s%s",
                 strerror(-rc), extra);
        in->fallback = in->fallback_buf;
        return;
    }
    struct io_uring_probe *probe = io_uring_get_probe_ring(&in->ring);
    int ok = probe && io_uring_opcode_supported(probe, IORING_OP_READ) &&
             io_uring_opcode_supported(probe, IORING_OP_READ_FIXED) &&
             io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL);
    if (probe)
        io_uring_free_probe(probe);
    if (!ok) {
        io_uring_queue_exit(&in->ring);
        in->fallback = "the kernel's io_uring lacks IORING_OP_READ (Linux 5.6 or later needed)";
        return;
    }
    struct iovec iov[MAX_BUFFERS];
    for (unsigned i = 0; i < in->nbuf; i++) {
        iov[i].iov_base = in->bufs[i].data;
        iov[i].iov_len = in->bufsize;
    }
    /* Registered buffers save pinning pages on every read; without them
     * (RLIMIT_MEMLOCK too low, say) plain io_uring reads still work. */
    in->fixed = !(flags & PM_INGEST_NO_FIXED) &&
                io_uring_register_buffers(&in->ring, iov, in->nbuf) == 0;
    in->uring = 1;
}

static pm_status open_common(pm_ingest **out, int fd, int own_fd, int may_direct,
                             const pm_ingest_config *cfg, const char *name, tool_fault *fault)
{
    pm_ingest *in = calloc(1, sizeof *in);
    if (!in) {
        tool_fault_msg(fault, 0, "%s: out of memory", name);
        if (own_fd)
            close(fd);
        return PM_ERR_NOMEM;
    }
    in->fd = fd;
    in->own_fd = own_fd;
    tool_fault_clear(&in->fault);
    snprintf(in->name, sizeof in->name, "%s", cfg->name ? cfg->name : name);
    in->bufsize = cfg->buffer_size;
    in->nbuf = cfg->buffers;
    in->idle_ms = cfg->idle_ms;
    in->cancel = cfg->cancel;
    in->max_record = cfg->max_record ? cfg->max_record : SIZE_MAX;
    in->fallback = "PM_INGEST_NO_URING";

    struct stat st;
    if (fstat(fd, &st) != 0) {
        tool_fault_msg(fault, errno, "%s: %s", in->name, strerror(errno));
        pm_ingest_close(in);
        return PM_ERR_IO;
    }
    in->stream = !S_ISREG(st.st_mode);
    in->end = UINT64_MAX;
    if (!in->stream) {
        off_t at = lseek(fd, 0, SEEK_CUR);
        in->start = at > 0 ? (uint64_t)at : 0;
        in->end = (uint64_t)st.st_size > in->start ? (uint64_t)st.st_size - in->start : 0;
    }

    /* Page-aligned buffers when their size allows O_DIRECT; the headroom
     * keeps that alignment. */
    size_t align = in->bufsize % DIRECT_ALIGN == 0 ? DIRECT_ALIGN : 64;
    in->headroom = round_up(in->bufsize, align);
    in->stride = in->headroom + round_up(in->bufsize, align);
    in->slab_size = in->stride * in->nbuf;
    void *slab = mmap(NULL, in->slab_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (slab == MAP_FAILED) {
        tool_fault_msg(fault, 0, "%s: out of memory (%zu bytes of buffers)", in->name,
                       in->slab_size);
        pm_ingest_close(in);
        return PM_ERR_NOMEM;
    }
    in->slab = slab;
#ifdef MADV_HUGEPAGE
    if (in->slab_size >= ((size_t)2 << 20))
        (void)madvise(in->slab, in->slab_size, MADV_HUGEPAGE);
#endif
    /* A child forked by the program must not share (copy-on-write) pages
     * the kernel has pinned for reads in flight. */
    (void)madvise(in->slab, in->slab_size, MADV_DONTFORK);
    for (unsigned i = 0; i < in->nbuf; i++) {
        in->bufs[i].data = in->slab + (size_t)i * in->stride + in->headroom;
        assign(in, &in->bufs[i]);
    }
    in->p = in->bufs[0].data;

    if (may_direct && (cfg->flags & PM_INGEST_DIRECT) && !in->stream && in->start == 0 &&
        align == DIRECT_ALIGN) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0 && fcntl(fd, F_SETFL, fl | O_DIRECT) == 0)
            in->direct = 1; /* a read refused with EINVAL turns it off again */
    }
    if (!(cfg->flags & PM_INGEST_NO_URING))
        uring_setup(in, cfg->flags);
    if (in->uring)
        uring_start_reads(in);
    *out = in;
    return PM_OK;
}

/* Listen on a Unix stream socket and accept one connection. Returns the
 * connected descriptor, or -1 with *fault set. */
static int accept_one(const char *spec, const volatile sig_atomic_t *cancel, tool_fault *fault)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t plen = strlen(spec);
    int abstract = spec[0] == '@';
    if (plen == 0 || plen >= sizeof addr.sun_path) {
        tool_fault_msg(fault, 0, "socket path %s (%zu bytes, at most %zu): unix:%s",
               plen ? "too long" : "empty", plen, sizeof addr.sun_path - 1, spec);
        return -1;
    }
    memcpy(addr.sun_path, spec, plen);
    if (abstract)
        addr.sun_path[0] = 0;
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + !abstract);
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0) {
        tool_fault_msg(fault, errno, "unix:%s: socket: %s", spec, strerror(errno));
        return -1;
    }
    int rc = bind(ls, (struct sockaddr *)&addr, alen);
    if (rc != 0 && errno == EADDRINUSE && !abstract) {
        /* A socket file nobody listens on is left over: replace it. */
        struct stat st;
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int err = EADDRINUSE;
        if (probe >= 0 && lstat(spec, &st) == 0 && S_ISSOCK(st.st_mode) &&
            connect(probe, (struct sockaddr *)&addr, alen) != 0 && errno == ECONNREFUSED) {
            unlink(spec);
            rc = bind(ls, (struct sockaddr *)&addr, alen);
            err = errno;
        }
        if (probe >= 0)
            close(probe);
        errno = err;
    }
    if (rc != 0 || listen(ls, 1) != 0) {
        tool_fault_msg(fault, errno, "unix:%s: %s: %s", spec, rc != 0 ? "bind" : "listen",
                       strerror(errno));
        close(ls);
        return -1;
    }
    /* Wait in slices so that a stop request is seen while nobody
     * connects. */
    int c = -1;
    for (;;) {
        if (cancel && *cancel) {
            errno = EINTR;
            break;
        }
        struct pollfd pfd = {.fd = ls, .events = POLLIN};
        int rc = poll(&pfd, 1, cancel ? (int)CANCEL_SLICE_MS : -1);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc <= 0)
            continue;
        c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0 || (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED))
            break;
    }
    int err = errno;
    close(ls);
    if (!abstract)
        unlink(spec);
    if (c < 0)
        tool_fault_msg(fault, err, "unix:%s: accept: %s", spec, strerror(err));
    return c;
}

static int config_ok(const pm_ingest_config *cfg, const char *name, tool_fault *fault)
{
    if (cfg->buffer_size < MIN_BUFFER_SIZE || cfg->buffer_size > MAX_BUFFER_SIZE ||
        cfg->buffers < 2 || cfg->buffers > MAX_BUFFERS) {
        tool_fault_msg(fault, 0, "%s: buffers out of range (%u of %zu bytes; 2..%u of %u..%zu)",
                       name, cfg->buffers, cfg->buffer_size, (unsigned)MAX_BUFFERS,
                       (unsigned)MIN_BUFFER_SIZE, MAX_BUFFER_SIZE);
        return 0;
    }
    return 1;
}

pm_status pm_ingest_open_ex(pm_ingest **in, const char *path, const pm_ingest_config *cfg,
                            tool_fault *fault)
{
    TOOL_CHECK(in != NULL && path != NULL && cfg != NULL);
    *in = NULL;
    tool_fault_clear(fault);
    if (!config_ok(cfg, path, fault))
        return PM_ERR_ARG;
    if (strcmp(path, "-") == 0)
        return open_common(in, 0, 0, 0, cfg, "stdin", fault);
    if (strncmp(path, "unix:", 5) == 0) {
        int fd = accept_one(path + 5, cfg->cancel, fault);
        if (fd < 0)
            return PM_ERR_IO;
        return open_common(in, fd, 1, 0, cfg, path, fault);
    }
    int fd;
    do /* a FIFO's open waits for a writer: a stop request ends the wait */
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR && !(cfg->cancel && *cfg->cancel));
    if (fd < 0) {
        tool_fault_msg(fault, errno, "cannot open %s: %s", path, strerror(errno));
        return PM_ERR_IO;
    }
    return open_common(in, fd, 1, 1, cfg, path, fault);
}

pm_status pm_ingest_open(pm_ingest **in, const char *path, unsigned flags, tool_fault *fault)
{
    pm_ingest_config cfg;
    pm_ingest_config_default(&cfg);
    cfg.flags = flags;
    return pm_ingest_open_ex(in, path, &cfg, fault);
}

pm_status pm_ingest_open_fd_ex(pm_ingest **in, int fd, const pm_ingest_config *cfg,
                               tool_fault *fault)
{
    TOOL_CHECK(in != NULL && cfg != NULL);
    *in = NULL;
    tool_fault_clear(fault);
    char name[32];
    snprintf(name, sizeof name, "fd %d", fd);
    if (!config_ok(cfg, cfg->name ? cfg->name : name, fault))
        return PM_ERR_ARG;
    if (fd < 0) {
        tool_fault_msg(fault, EBADF, "%s: %s", cfg->name ? cfg->name : name, strerror(EBADF));
        return PM_ERR_IO;
    }
    return open_common(in, fd, 0, 0, cfg, name, fault);
}

pm_status pm_ingest_open_fd(pm_ingest **in, int fd, unsigned flags, tool_fault *fault)
{
    pm_ingest_config cfg;
    pm_ingest_config_default(&cfg);
    cfg.flags = flags;
    return pm_ingest_open_fd_ex(in, fd, &cfg, fault);
}

void pm_ingest_close(pm_ingest *in)
{
    if (!in)
        return;
    int leak = 0;
    if (in->uring) {
        /* Reads still in flight write into the buffers: cancel them (a
         * stream's may wait forever) and wait until each has completed. */
        in->closing = 1;
        unsigned cancels = 0;
        for (unsigned i = 0; i < in->nbuf; i++) {
            if (!in->bufs[i].inflight)
                continue;
            struct io_uring_sqe *sqe = io_uring_get_sqe(&in->ring);
            if (!sqe)
                break;
            io_uring_prep_cancel64(sqe, i, 0);
            io_uring_sqe_set_data64(sqe, CANCEL_TAG);
            cancels++;
        }
        if (cancels)
            (void)io_uring_submit(&in->ring);
        unsigned waits = 0;
        while (in->inflight > 0 && waits < 50) {
            struct io_uring_cqe *cqe;
            struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
            int rc = io_uring_wait_cqe_timeout(&in->ring, &cqe, &ts);
            if (rc == -ETIME)
                waits++;
            else if (rc < 0 && rc != -EINTR)
                break;
            uring_reap(in, 0);
        }
        /* A read that would not finish keeps its buffer: leak it rather
         * than let the kernel write into freed memory. */
        leak = in->inflight > 0;
        io_uring_queue_exit(&in->ring);
    }
    if (in->own_fd)
        close(in->fd);
    if (in->slab && !leak)
        munmap(in->slab, in->slab_size);
    free(in->spill);
    free(in);
}
