/*
 * snapshot_load.c — reading a snapshot back: pm_engine_create_from_snapshot
 * (the format and what a load validates: the design note at the top of
 * snapshot.c, and docs/snapshot.md).
 */
#include "snapshot.h"

#include "pipeline.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "snapshot_format.h"

/* ---------------------------------------------------------------------- */
/* Reading                                                                 */
/* ---------------------------------------------------------------------- */

#define READ_BUFFER (1u << 20)

typedef struct {
    int fd;
    uint64_t size;  /* the file's size */
    uint64_t off;   /* bytes consumed */
    uint8_t *buf;
    size_t pos, len;
    int err;        /* errno of a failed read */
} reader;

/* Copy the next n bytes to dst. Returns 1; 0 when the file ends first (or a
 * read fails: r->err). The caller checked n against the file size, so a
 * short read means the file shrank under us. */
static int rd_get(reader *r, uint8_t *dst, size_t n)
{
    while (n) {
        if (r->pos == r->len) {
            if (n >= READ_BUFFER) {
                /* Large reads skip the buffer. */
                ssize_t k = read(r->fd, dst, n);
                if (k < 0 && errno == EINTR)
                    continue;
                if (k <= 0) {
                    r->err = k < 0 ? errno : 0;
                    return 0;
                }
                dst += k;
                n -= (size_t)k;
                r->off += (uint64_t)k;
                continue;
            }
            ssize_t k = read(r->fd, r->buf, READ_BUFFER);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                r->err = k < 0 ? errno : 0;
                return 0;
            }
            r->pos = 0;
            r->len = (size_t)k;
        }
        size_t k = r->len - r->pos;
        if (k > n)
            k = n;
        memcpy(dst, r->buf + r->pos, k);
        r->pos += k;
        r->off += k;
        dst += k;
        n -= k;
    }
    return 1;
}

typedef struct {
    const pm_context *ctx;
    reader r;
    XXH3_state_t *xs;
    pm_engine *e;
    pm_status status;       /* the first failure */
    char *msg;
    size_t msglen;
    int sec;                /* the section being read */
    uint64_t sec_start;     /* file offset of its framing */
    /* From the header. */
    pm_chain_params params;
    uint8_t chain_id[32];
    int64_t tip_height;
    uint8_t tip_hash[32];
    uint64_t gov_seq;
    uint64_t counts[5];     /* operators, series, minted, utxos, undo */
    uint8_t digest[32];
    /* Operator ids in registration order (for checking the undo logs). */
    uint32_t *op_ids;
} loader;

static pm_status ld_fail(loader *ld, pm_status st, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static pm_status ld_fail(loader *ld, pm_status st, uint64_t offset, const char *fmt, ...)
{
    if (ld->status != PM_OK)
        return ld->status;
    ld->status = st;
    if (ld->msglen == 0)
        return st;
    int k = ld->sec < 0 ? snprintf(ld->msg, ld->msglen, "preamble at byte %llu: ",
                                   (unsigned long long)offset)
                        : snprintf(ld->msg, ld->msglen, "%s section at byte %llu: ",
                                   section_tags[ld->sec], (unsigned long long)offset);
    if (k > 0 && (size_t)k < ld->msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ld->msg + k, ld->msglen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* Read n bytes that the file must hold, hashing them into the section
 * checksum when `hash`. Reports truncation or a read error. */
static pm_status ld_read(loader *ld, uint8_t *dst, size_t n, int hash)
{
    uint64_t at = ld->r.off;
    if (ld->r.size - at < n)
        return ld_fail(ld, PM_ERR_INVALID, at,
                       "truncated: %zu more bytes needed, the file ends at byte %llu", n,
                       (unsigned long long)ld->r.size);
    if (!rd_get(&ld->r, dst, n)) {
        if (ld->r.err)
            return ld_fail(ld, PM_ERR_IO, at, "read failed: %s", strerror(ld->r.err));
        return ld_fail(ld, PM_ERR_INVALID, at, "truncated: the file shrank while being read");
    }
    if (hash)
        XXH3_128bits_update(ld->xs, dst, n);
    return PM_OK;
}

/* Read a section's framing; check its tag, the zero word, the count
 * against `count` and the length (against `item * count` when item > 0,
 * else only against what the file holds). */
static pm_status ld_begin(loader *ld, int sec, uint64_t count, size_t item, uint64_t *length)
{
    uint8_t h[PM_SNAP_SECTION_HEADER_SIZE];
    ld->sec = sec;
    ld->sec_start = ld->r.off;
    XXH3_128bits_reset(ld->xs);
    if (ld_read(ld, h, sizeof h, 1) != PM_OK)
        return ld->status;
    if (memcmp(h, section_tags[sec], 4) != 0) {
        char tag[5];
        for (int i = 0; i < 4; i++)
            tag[i] = h[i] >= 0x20 && h[i] < 0x7f ? (char)h[i] : '?';
        tag[4] = 0;
        return ld_fail(ld, PM_ERR_INVALID, ld->sec_start, "expected the %s section, found tag '%s'",
                       section_tags[sec], tag);
    }
    if (pm_read_u32le(h + 4) != 0)
        return ld_fail(ld, PM_ERR_INVALID, ld->sec_start + 4, "reserved word is not zero");
    uint64_t c = pm_read_u64le(h + 8), len = pm_read_u64le(h + 16);
    if (c != count)
        return ld_fail(ld, PM_ERR_INVALID, ld->sec_start + 8,
                       "%llu items, the header says %llu", (unsigned long long)c,
                       (unsigned long long)count);
    if (item && len != count * item)
        return ld_fail(ld, PM_ERR_INVALID, ld->sec_start + 16,
                       "length %llu for %llu items of %zu bytes", (unsigned long long)len,
                       (unsigned long long)count, item);
    uint64_t left = ld->r.size - ld->r.off;
    if (len > left || left - len < PM_SNAP_CHECKSUM_SIZE)
        return ld_fail(ld, PM_ERR_INVALID, ld->sec_start + 16,
                       "truncated: the section needs %llu bytes, the file has %llu left",
                       (unsigned long long)len + PM_SNAP_CHECKSUM_SIZE, (unsigned long long)left);
    *length = len;
    return PM_OK;
}

/* Read and compare the section's checksum. */
static pm_status ld_end(loader *ld)
{
    uint8_t stored[PM_SNAP_CHECKSUM_SIZE];
    uint64_t at = ld->r.off;
    if (ld_read(ld, stored, sizeof stored, 0) != PM_OK)
        return ld->status;
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(ld->xs));
    if (memcmp(c.digest, stored, sizeof stored) != 0)
        return ld_fail(ld, PM_ERR_INVALID, at,
                       "checksum mismatch (the section from byte %llu is damaged)",
                       (unsigned long long)ld->sec_start);
    return PM_OK;
}

/* A semantic error found while streaming a section: kept until the
 * checksum is known (a damaged section reports the checksum). */
typedef struct {
    int set;
    uint64_t offset;
    char text[160];
} deferred;

static void defer(deferred *d, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void defer(deferred *d, uint64_t offset, const char *fmt, ...)
{
    if (d->set)
        return;
    d->set = 1;
    d->offset = offset;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->text, sizeof d->text, fmt, ap);
    va_end(ap);
}

static pm_status ld_end_deferred(loader *ld, const deferred *d)
{
    if (ld_end(ld) != PM_OK)
        return ld->status;
    if (d->set)
        return ld_fail(ld, PM_ERR_INVALID, d->offset, "%s", d->text);
    return PM_OK;
}

static pm_status ld_nomem(loader *ld)
{
    return ld_fail(ld, PM_ERR_NOMEM, ld->r.off, "out of memory");
}

/* ---- preamble and header --------------------------------------------- */

static pm_status load_front(loader *ld, const pm_chain_params *expected)
{
    uint8_t pre[PM_SNAP_PREAMBLE_SIZE];
    ld->sec = -1;
    if (ld->r.size == 0)
        return ld_fail(ld, PM_ERR_INVALID, 0, "empty file, not a snapshot");
    if (ld->r.size < PM_SNAP_PREAMBLE_SIZE) {
        if (ld_read(ld, pre, (size_t)ld->r.size, 0) != PM_OK)
            return ld->status;
        if (memcmp(pre, SNAP_MAGIC, ld->r.size < 8 ? (size_t)ld->r.size : 8) != 0)
            return ld_fail(ld, PM_ERR_INVALID, 0, "not a snapshot (magic is not %s)", SNAP_MAGIC);
        return ld_fail(ld, PM_ERR_INVALID, ld->r.size, "truncated: the file ends at byte %llu",
                       (unsigned long long)ld->r.size);
    }
    if (ld_read(ld, pre, sizeof pre, 0) != PM_OK)
        return ld->status;
    if (memcmp(pre, SNAP_MAGIC, 8) != 0)
        return ld_fail(ld, PM_ERR_INVALID, 0, "not a snapshot (magic is not %s)", SNAP_MAGIC);
    if (pm_read_u32le(pre + 8) != SNAP_VERSION)
        return ld_fail(ld, PM_ERR_INVALID, 8, "unsupported snapshot version %u (this build reads %u)",
                       pm_read_u32le(pre + 8), SNAP_VERSION);
    if (pm_read_u32le(pre + 12) != 0)
        return ld_fail(ld, PM_ERR_INVALID, 12, "unknown flags 0x%08x", pm_read_u32le(pre + 12));

    uint64_t length;
    uint8_t h[PM_SNAP_HEAD_SIZE];
    if (ld_begin(ld, SEC_HEAD, 1, PM_SNAP_HEAD_SIZE, &length) != PM_OK)
        return ld->status;
    uint64_t at = ld->r.off;
    if (ld_read(ld, h, sizeof h, 1) != PM_OK || ld_end(ld) != PM_OK)
        return ld->status;
    memcpy(ld->params.network, h, PM_NETWORK_SIZE);
    memcpy(ld->params.governance_key, h + 16, 32);
    memcpy(ld->chain_id, h + 48, 32);
    ld->tip_height = (int64_t)pm_read_u64le(h + 80);
    memcpy(ld->tip_hash, h + 88, 32);
    ld->gov_seq = pm_read_u64le(h + 120);
    for (int i = 0; i < 5; i++)
        ld->counts[i] = pm_read_u64le(h + 128 + 8 * i);
    memcpy(ld->digest, h + 168, 32);

    uint8_t id[32], fmt[8];
    if (!pm_chain_id(ld->ctx, id, &ld->params))
        return ld_nomem(ld);
    if (memcmp(id, ld->chain_id, 32) != 0)
        return ld_fail(ld, PM_ERR_INVALID, at + 48, "chain id does not match the chain parameters");
    if (expected && memcmp(expected, &ld->params, sizeof *expected) != 0)
        return ld_fail(ld, PM_ERR_MISMATCH, at,
                       "a snapshot of another chain (network or governance key differs)");
    undo_format(fmt);
    if (memcmp(fmt, h + 200, 8) != 0)
        return ld_fail(ld, PM_ERR_INVALID, at + 200,
                       "undo records of another layout (made by an incompatible build)");
    if (ld->tip_height < -1)
        return ld_fail(ld, PM_ERR_INVALID, at + 80, "tip height %lld out of range",
                       (long long)ld->tip_height);
    if (ld->tip_height == -1 && memcmp(ld->tip_hash, ld->chain_id, 32) != 0)
        return ld_fail(ld, PM_ERR_INVALID, at + 88, "no block, yet the tip is not the chain id");
    if (ld->counts[4] > (uint64_t)(ld->tip_height + 1))
        return ld_fail(ld, PM_ERR_INVALID, at + 160, "undo data of %llu blocks at height %lld",
                       (unsigned long long)ld->counts[4], (long long)ld->tip_height);
    if (ld->counts[0] > ld->gov_seq)
        return ld_fail(ld, PM_ERR_INVALID, at + 128,
                       "%llu operators, more than the %llu registrations (gov_seq)",
                       (unsigned long long)ld->counts[0], (unsigned long long)ld->gov_seq);
    static const size_t item[5] = {PM_SNAP_OPERATOR_SIZE, PM_SNAP_SERIES_SIZE,
                                   PM_SNAP_MINTED_SIZE, PM_SNAP_UTXO_SIZE,
                                   PM_SNAP_UNDO_HEADER_SIZE};
    for (int i = 0; i < 5; i++)
        if (ld->counts[i] > ld->r.size / item[i])
            return ld_fail(ld, PM_ERR_INVALID, at + 128 + 8 * (uint64_t)i,
                           "truncated or damaged: %llu items of %zu bytes cannot fit in the "
                           "file's %llu bytes",
                           (unsigned long long)ld->counts[i], item[i],
                           (unsigned long long)ld->r.size);
    return PM_OK;
}

/* ---- registries -------------------------------------------------------- */

#define ITEMS_PER_READ 4096

static pm_status load_operators(loader *ld)
{
    pm_ledger *l = ld->e->ledger;
    uint64_t n = ld->counts[0], length;
    if (ld_begin(ld, SEC_OPER, n, PM_SNAP_OPERATOR_SIZE, &length) != PM_OK)
        return ld->status;
    ld->op_ids = malloc((n ? n : 1) * sizeof *ld->op_ids);
    if (!ld->op_ids)
        return ld_nomem(ld);
    deferred d = {0};
    for (uint64_t i = 0; i < n; i++) {
        uint8_t item[PM_SNAP_OPERATOR_SIZE];
        uint64_t at = ld->r.off;
        if (ld_read(ld, item, sizeof item, 1) != PM_OK)
            return ld->status;
        if (d.set)
            continue;
        pm_operator_info op, known;
        memset(&op, 0, sizeof op);
        op.id = pm_read_u32le(item);
        memcpy(op.key, item + 4, 32);
        op.op_seq = pm_read_u64le(item + 36);
        op.name_len = item[44];
        ld->op_ids[i] = op.id;
        if (op.id == 0) {
            defer(&d, at, "operator %llu has id 0", (unsigned long long)i);
            continue;
        }
        if (op.name_len < 1 || op.name_len > 64) {
            defer(&d, at + 44, "operator %u: name length %u out of 1..64", op.id, op.name_len);
            continue;
        }
        memcpy(op.name, item + 45, op.name_len);
        int padded = 1;
        for (size_t k = 45u + op.name_len; k < sizeof item; k++)
            padded &= item[k] == 0;
        if (!padded || pm_text_check(op.name, op.name_len, NULL) != NULL) {
            defer(&d, at + 45, "operator %u: name is not valid text", op.id);
            continue;
        }
        if (pm_ledger_find_operator(l, op.id, &known)) {
            defer(&d, at, "operator %u appears twice", op.id);
            continue;
        }
        if (pm_ledger_restore_operator(l, &op) != PM_OK)
            return ld_nomem(ld);
    }
    return ld_end_deferred(ld, &d);
}

/* SERI: 12-byte items (u32 operator, u32 series, u32 max_supply). */
static pm_status load_series(loader *ld)
{
    pm_ledger *l = ld->e->ledger;
    uint64_t n = ld->counts[1], length;
    if (ld_begin(ld, SEC_SERI, n, PM_SNAP_SERIES_SIZE, &length) != PM_OK)
        return ld->status;
    uint8_t *items = malloc(ITEMS_PER_READ * PM_SNAP_SERIES_SIZE);
    if (!items)
        return ld_nomem(ld);
    deferred d = {0};
    pm_operator_info op;
    for (uint64_t i = 0; i < n && ld->status == PM_OK;) {
        size_t k = n - i < ITEMS_PER_READ ? (size_t)(n - i) : ITEMS_PER_READ;
        uint64_t at = ld->r.off;
        if (ld_read(ld, items, k * PM_SNAP_SERIES_SIZE, 1) != PM_OK)
            break;
        for (size_t j = 0; j < k && !d.set; j++) {
            const uint8_t *p = items + PM_SNAP_SERIES_SIZE * j;
            uint64_t where = at + PM_SNAP_SERIES_SIZE * (uint64_t)j;
            uint32_t o = pm_read_u32le(p), s = pm_read_u32le(p + 4), v = pm_read_u32le(p + 8);
            if (v == 0)
                defer(&d, where, "series %u:%u has max_supply 0", o, s);
            else if (!pm_ledger_find_operator(l, o, &op))
                defer(&d, where, "series %u:%u of an unknown operator", o, s);
            else if (pm_ledger_restore_series(l, o, s, v) != PM_OK) {
                free(items);
                return ld_nomem(ld);
            }
        }
        i += k;
    }
    free(items);
    if (ld->status != PM_OK)
        return ld->status;
    uint64_t end = ld->r.off;
    if (ld_end_deferred(ld, &d) != PM_OK)
        return ld->status;
    if (pm_ledger_series_count(l) != n)
        return ld_fail(ld, PM_ERR_INVALID, end,
                       "%llu items but %zu distinct: an item appears twice",
                       (unsigned long long)n, pm_ledger_series_count(l));
    return PM_OK;
}

/* MINT: the minted set touches nothing the UTXO load does, so it is read
 * and restored on a thread of its own (pread on the same file, its own
 * checksum state) while the calling thread goes on to the UTXO section,
 * which it reaches by skipping this one. Its failure, being earlier in the
 * file, is the one reported. */
typedef struct {
    pthread_t thread;
    int running;
    int fd;
    pm_ledger *ledger;
    uint64_t count, start, length; /* framing offset, payload bytes */
    pm_status status;
    uint64_t offset;
    char text[192];
} mint_job;

static void mint_fail(mint_job *j, pm_status st, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void mint_fail(mint_job *j, pm_status st, uint64_t offset, const char *fmt, ...)
{
    if (j->status != PM_OK)
        return;
    j->status = st;
    j->offset = offset;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->text, sizeof j->text, fmt, ap);
    va_end(ap);
}

static int pread_all(int fd, uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t k = pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -1 : 0;
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 1;
}

static void *mint_run(void *arg)
{
    mint_job *j = arg;
    XXH3_state_t *xs = XXH3_createState();
    uint8_t *items = malloc(ITEMS_PER_READ * PM_SNAP_MINTED_SIZE);
    if (!xs || !items) {
        mint_fail(j, PM_ERR_NOMEM, j->start, "out of memory");
        goto out;
    }
    uint8_t framing[PM_SNAP_SECTION_HEADER_SIZE];
    section_framing(framing, SEC_MINT, j->count, j->length);
    XXH3_128bits_reset(xs);
    XXH3_128bits_update(xs, framing, sizeof framing);
    deferred d = {0};
    uint64_t at = j->start + PM_SNAP_SECTION_HEADER_SIZE;
    for (uint64_t i = 0; i < j->count;) {
        size_t k = j->count - i < ITEMS_PER_READ ? (size_t)(j->count - i) : ITEMS_PER_READ;
        int got = pread_all(j->fd, items, k * PM_SNAP_MINTED_SIZE, at);
        if (got <= 0) {
            mint_fail(j, got < 0 ? PM_ERR_IO : PM_ERR_INVALID, at,
                      got < 0 ? "read failed: %s" : "truncated: the file shrank while being read%s",
                      got < 0 ? strerror(errno) : "");
            goto out;
        }
        XXH3_128bits_update(xs, items, k * PM_SNAP_MINTED_SIZE);
        for (size_t m = 0; m < k && !d.set; m++) {
            const uint8_t *p = items + PM_SNAP_MINTED_SIZE * m;
            uint32_t o = pm_read_u32le(p), s = pm_read_u32le(p + 4), v = pm_read_u32le(p + 8);
            if (v == 0)
                defer(&d, at + PM_SNAP_MINTED_SIZE * (uint64_t)m,
                      "stamp %u:%u:0 (serials start at 1)", o, s);
            else if (pm_ledger_restore_minted(j->ledger, o, s, v) != PM_OK) {
                mint_fail(j, PM_ERR_NOMEM, at, "out of memory");
                goto out;
            }
        }
        at += k * PM_SNAP_MINTED_SIZE;
        i += k;
    }
    uint8_t stored[PM_SNAP_CHECKSUM_SIZE];
    int got = pread_all(j->fd, stored, sizeof stored, at);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(xs));
    if (got <= 0)
        mint_fail(j, got < 0 ? PM_ERR_IO : PM_ERR_INVALID, at, "cannot read the checksum");
    else if (memcmp(c.digest, stored, sizeof stored) != 0)
        mint_fail(j, PM_ERR_INVALID, at, "checksum mismatch (the section from byte %llu is damaged)",
                  (unsigned long long)j->start);
    else if (d.set)
        mint_fail(j, PM_ERR_INVALID, d.offset, "%s", d.text);
    else if (pm_ledger_minted_count(j->ledger) != j->count)
        mint_fail(j, PM_ERR_INVALID, at, "%llu items but %zu distinct: an item appears twice",
                  (unsigned long long)j->count, pm_ledger_minted_count(j->ledger));
out:
    XXH3_freeState(xs);
    free(items);
    return NULL;
}

/* Check MINT's framing, start its job and move the reader past it. */
static pm_status start_minted(loader *ld, mint_job *j)
{
    uint64_t length;
    if (ld_begin(ld, SEC_MINT, ld->counts[2], PM_SNAP_MINTED_SIZE, &length) != PM_OK)
        return ld->status;
    memset(j, 0, sizeof *j);
    j->fd = ld->r.fd;
    j->ledger = ld->e->ledger;
    j->count = ld->counts[2];
    j->start = ld->sec_start;
    j->length = length;
    uint64_t next = ld->r.off + length + PM_SNAP_CHECKSUM_SIZE; /* ld_begin checked it fits */
    if (next - ld->r.off <= ld->r.len - ld->r.pos) {
        ld->r.pos += (size_t)(next - ld->r.off);
    } else {
        if (lseek(ld->r.fd, (off_t)next, SEEK_SET) < 0)
            return ld_fail(ld, PM_ERR_IO, ld->r.off, "seek failed: %s", strerror(errno));
        ld->r.pos = ld->r.len = 0;
    }
    ld->r.off = next;
    if (j->count > 0 && pthread_create(&j->thread, NULL, mint_run, j) == 0)
        j->running = 1;
    else
        mint_run(j);
    return PM_OK;
}

/* Wait for the MINT job; its failure replaces any later one. */
static pm_status finish_minted(loader *ld, mint_job *j)
{
    if (j->running)
        pthread_join(j->thread, NULL);
    j->running = 0;
    if (j->status != PM_OK) {
        ld->status = PM_OK;
        ld->sec = SEC_MINT;
        ld_fail(ld, j->status, j->offset, "%s", j->text);
    }
    return ld->status;
}

/* ---- the UTXO set, in parallel ----------------------------------------- */

#define CHUNK_RECORDS 8192
#define MAX_CHUNKS 64

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pm_utxo_table *table;
    uint8_t *buf[MAX_CHUNKS];
    size_t records[MAX_CHUNKS];
    unsigned full[MAX_CHUNKS];  /* FIFO of chunks to insert */
    unsigned head, queued;
    unsigned spare[MAX_CHUNKS]; /* stack of free chunks */
    unsigned n_spare, n_chunks;
    int closed;
    pm_status error;            /* the first insert failure */
} insert_queue;

/* Insert n records. Each table insert starts with a cache miss on the
 * entry's home cell; a batched lookup of the next group first (it
 * prefetches every home cell of the group, so the misses overlap) leaves
 * those cells in cache for the inserts, and finds any outpoint already
 * present. */
#define INSERT_GROUP 32

static pm_status insert_records(pm_utxo_table *t, const uint8_t *recs, size_t n)
{
    pm_outpoint keys[INSERT_GROUP];
    uint8_t outputs[INSERT_GROUP][PM_OUTPUT_SIZE];
    uint8_t found[INSERT_GROUP];
    for (size_t base = 0; base < n; base += INSERT_GROUP) {
        size_t m = n - base < INSERT_GROUP ? n - base : INSERT_GROUP;
        const uint8_t *r = recs + PM_SNAP_UTXO_SIZE * base;
        for (size_t j = 0; j < m; j++, r += PM_SNAP_UTXO_SIZE) {
            memcpy(keys[j].txid, r, 32);
            keys[j].index = (uint16_t)(r[32] << 8 | r[33]);
        }
        pm_utxo_table_lookup_batch(t, m, keys, outputs, found);
        r = recs + PM_SNAP_UTXO_SIZE * base;
        for (size_t j = 0; j < m; j++, r += PM_SNAP_UTXO_SIZE) {
            if (found[j])
                return PM_ERR_STATE;
            pm_status st = pm_utxo_table_insert(t, keys[j].txid, keys[j].index, r + 34);
            if (st != PM_OK)
                return st;
        }
    }
    return PM_OK;
}

static void insert_job(void *job, pm_worker *worker, unsigned n_workers)
{
    (void)worker;
    (void)n_workers;
    insert_queue *q = job;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (q->queued == 0 && !q->closed)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->queued == 0) {
            pthread_mutex_unlock(&q->mu);
            return;
        }
        unsigned c = q->full[q->head];
        q->head = (q->head + 1) % MAX_CHUNKS;
        q->queued--;
        int skip = q->error != PM_OK;
        pthread_mutex_unlock(&q->mu);

        pm_status st = skip ? PM_OK : insert_records(q->table, q->buf[c], q->records[c]);

        pthread_mutex_lock(&q->mu);
        if (st != PM_OK && q->error == PM_OK)
            q->error = st;
        q->spare[q->n_spare++] = c;
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
    }
}

/* Check the records of one chunk: strictly after `last` (34 bytes, or NULL
 * for the first record of the set) and well-formed outputs. Returns the
 * index of the first bad record and a reason, or SIZE_MAX. */
static size_t check_records(const uint8_t *recs, size_t n, const uint8_t *last,
                            const char **why)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = recs + PM_SNAP_UTXO_SIZE * i;
        const uint8_t *prev = i ? r - PM_SNAP_UTXO_SIZE : last;
        if (prev && memcmp(prev, r, 34) >= 0) {
            *why = memcmp(prev, r, 34) == 0 ? "the same outpoint twice" : "out of order";
            return i;
        }
        const uint8_t *o = r + 34;
        if (o[0] == PM_OUTPUT_STAMP) {
            if (pm_read_u32le(o + 41) == 0) {
                *why = "a stamp with serial 0";
                return i;
            }
        } else if (o[0] == PM_OUTPUT_CREDIT) {
            if (pm_read_u64le(o + 37) == 0) {
                *why = "a credit of amount 0";
                return i;
            }
        } else {
            *why = "an output kind other than STAMP or CREDIT";
            return i;
        }
    }
    return SIZE_MAX;
}

static pm_status load_utxos(loader *ld)
{
    uint64_t n = ld->counts[3], length;
    if (ld_begin(ld, SEC_UTXO, n, PM_SNAP_UTXO_SIZE, &length) != PM_OK)
        return ld->status;
    pm_engine *e = ld->e;
    pm_hasher *h = e->hasher;
    if (!pm_hash_begin(h, PM_TAG_UTXO))
        return ld_nomem(ld);
    insert_queue q;
    memset(&q, 0, sizeof q);
    q.table = pm_ledger_utxo(e->ledger);
    unsigned workers = pm_pool_size(e->pool);
    q.n_chunks = 2 * workers + 2;
    if (q.n_chunks > MAX_CHUNKS)
        q.n_chunks = MAX_CHUNKS;
    uint64_t needed = (n + CHUNK_RECORDS - 1) / CHUNK_RECORDS;
    if (needed < q.n_chunks)
        q.n_chunks = needed ? (unsigned)needed : 1;
    for (unsigned c = 0; c < q.n_chunks; c++) {
        q.buf[c] = malloc(CHUNK_RECORDS * PM_SNAP_UTXO_SIZE);
        if (!q.buf[c]) {
            for (unsigned k = 0; k < c; k++)
                free(q.buf[k]);
            return ld_nomem(ld);
        }
        q.spare[q.n_spare++] = c;
    }
    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.cv, NULL);
    int started = n > 0;
    if (started)
        pm_pool_start(e->pool, insert_job, &q);

    uint8_t last[34];
    int have_last = 0;
    for (uint64_t done = 0; done < n;) {
        pthread_mutex_lock(&q.mu);
        while (q.n_spare == 0)
            pthread_cond_wait(&q.cv, &q.mu);
        unsigned c = q.spare[--q.n_spare];
        pm_status insert_error = q.error;
        pthread_mutex_unlock(&q.mu);
        size_t k = n - done < CHUNK_RECORDS ? (size_t)(n - done) : CHUNK_RECORDS;
        uint64_t at = ld->r.off;
        const char *why = NULL;
        size_t bad = SIZE_MAX;
        if (insert_error == PM_OK && ld_read(ld, q.buf[c], k * PM_SNAP_UTXO_SIZE, 1) == PM_OK) {
            if (!pm_hash_update(h, q.buf[c], k * PM_SNAP_UTXO_SIZE))
                insert_error = PM_ERR_NOMEM;
            else
                bad = check_records(q.buf[c], k, have_last ? last : NULL, &why);
        }
        if (insert_error != PM_OK || ld->status != PM_OK || bad != SIZE_MAX) {
            if (insert_error != PM_OK && insert_error != PM_ERR_NOMEM)
                ld_fail(ld, PM_ERR_INVALID, at, "an outpoint is already in the table");
            else if (insert_error == PM_ERR_NOMEM)
                ld_nomem(ld);
            else if (bad != SIZE_MAX)
                ld_fail(ld, PM_ERR_INVALID, at + PM_SNAP_UTXO_SIZE * (uint64_t)bad,
                        "entry %llu: %s", (unsigned long long)(done + bad), why);
            pthread_mutex_lock(&q.mu);
            q.spare[q.n_spare++] = c;
            pthread_mutex_unlock(&q.mu);
            break;
        }
        memcpy(last, q.buf[c] + PM_SNAP_UTXO_SIZE * (k - 1), 34);
        have_last = 1;
        pthread_mutex_lock(&q.mu);
        q.records[c] = k;
        q.full[(q.head + q.queued) % MAX_CHUNKS] = c;
        q.queued++;
        pthread_cond_broadcast(&q.cv);
        pthread_mutex_unlock(&q.mu);
        done += k;
    }
    pthread_mutex_lock(&q.mu);
    q.closed = 1;
    pthread_cond_broadcast(&q.cv);
    pthread_mutex_unlock(&q.mu);
    if (started)
        pm_pool_wait(e->pool);
    pthread_mutex_destroy(&q.mu);
    pthread_cond_destroy(&q.cv);
    for (unsigned c = 0; c < q.n_chunks; c++)
        free(q.buf[c]);
    if (ld->status != PM_OK)
        return ld->status;
    if (q.error == PM_ERR_NOMEM)
        return ld_nomem(ld);
    if (q.error != PM_OK)
        return ld_fail(ld, PM_ERR_INVALID, ld->r.off, "an outpoint is already in the table");
    uint64_t end = ld->r.off;
    if (ld_end(ld) != PM_OK)
        return ld->status;
    uint8_t digest[32];
    if (!pm_hash_final(h, digest))
        return ld_nomem(ld);
    if (memcmp(digest, ld->digest, 32) != 0)
        return ld_fail(ld, PM_ERR_INVALID, end,
                       "the UTXO digest of the %llu entries differs from the header's",
                       (unsigned long long)n);
    if (pm_utxo_table_count(q.table) != n)
        return ld_fail(ld, PM_ERR_INVALID, end, "%llu entries but %llu in the table",
                       (unsigned long long)n, (unsigned long long)pm_utxo_table_count(q.table));
    return PM_OK;
}

/* ---- undo data --------------------------------------------------------- */

typedef struct {
    uint8_t hash[32], prev[32];
    uint64_t spent, len;
    uint8_t *log;
    uint64_t offset; /* file offset of the item */
} undo_block;

/* Operator ids -> registration index, for the simulation below: the
 * common map over ld->op_ids. */
static uint64_t id_hash(uint32_t id)
{
    return (uint64_t)id * 0x9E3779B97F4A7C15u;
}

static int id_map_init(hmap *m, const uint32_t *ids, size_t n)
{
    memset(m, 0, sizeof *m);
    if (n >= HMAP_NONE || !hmap_init(m, n))
        return 0;
    /* Every id, repeats too (the first stays the one found). */
    for (size_t i = 0; i < n; i++) {
        hmap_cursor c = hmap_probe(m, id_hash(ids[i]));
        while (hmap_next(m, &c) != HMAP_NONE)
            ;
        hmap_put(m, &c, (uint32_t)i);
    }
    return 1;
}

/* The registration index of id, or SIZE_MAX. */
static size_t id_map_find(const hmap *m, const uint32_t *ids, uint32_t id)
{
    hmap_cursor c = hmap_probe(m, id_hash(id));
    for (uint32_t it; (it = hmap_next(m, &c)) != HMAP_NONE;)
        if (ids[it] == id)
            return it;
    return SIZE_MAX;
}

/* Check the undo logs of the blocks as a chain of disconnects would apply
 * them (newest block first, each log newest record first): every record
 * well framed and of a known kind and size, the SPENT records counted as
 * declared, and the operator records consistent with the registry as it
 * shrinks, so that applying them can never index outside it. */
static pm_status check_undo(loader *ld, const undo_block *blocks, size_t n)
{
    hmap m;
    size_t n_ops = (size_t)ld->counts[0];
    if (!id_map_init(&m, ld->op_ids, n_ops)) {
        hmap_free(&m);
        return ld_nomem(ld);
    }
    pm_status st = PM_OK;
    for (size_t b = n; b-- > 0 && st == PM_OK;) {
        const undo_block *u = &blocks[b];
        const uint8_t *log = u->log;
        uint64_t len = u->len, spent = 0;
        uint64_t base = u->offset + PM_SNAP_UNDO_HEADER_SIZE;
        while (len > 0 && st == PM_OK) {
            if (len < 3) {
                st = ld_fail(ld, PM_ERR_INVALID, base, "undo block %zu: a record cut short", b);
                break;
            }
            size_t total = (size_t)log[len - 2] | (size_t)log[len - 1] << 8;
            uint64_t start = len - total;
            unsigned kind = total >= 3 && total <= len ? log[start] : 0;
            if (total < 3 || total > len || kind < 1 || kind > UNDO_KINDS ||
                total != 3 + undo_payload_size(kind)) {
                st = ld_fail(ld, PM_ERR_INVALID, base + len - 2,
                             "undo block %zu: a malformed record", b);
                break;
            }
            const uint8_t *payload = log + start + 1;
            if (kind == UNDO_SPENT) {
                spent++;
            } else if (kind == UNDO_OPERATOR) {
                undo_operator r;
                memcpy(&r, payload, sizeof r);
                /* An operator undone (the last registered) keeps its
                 * index, which is then n_ops: out of range for both. */
                size_t s = id_map_find(&m, ld->op_ids, r.id);
                int ok;
                if (r.existed)
                    ok = s != SIZE_MAX && s < n_ops && r.prev.id == r.id &&
                         r.prev.name_len >= 1 && r.prev.name_len <= 64;
                else
                    ok = n_ops > 0 && s != SIZE_MAX && s == n_ops - 1;
                if (!ok) {
                    st = ld_fail(ld, PM_ERR_INVALID, base + start,
                                 "undo block %zu: an operator record that does not fit the registry",
                                 b);
                    break;
                }
                if (!r.existed)
                    n_ops--;
            } else if (kind == UNDO_OP_SEQ) {
                undo_op_seq r;
                memcpy(&r, payload, sizeof r);
                if (r.index >= n_ops) {
                    st = ld_fail(ld, PM_ERR_INVALID, base + start,
                                 "undo block %zu: an op_seq record of operator index %zu of %zu",
                                 b, r.index, n_ops);
                    break;
                }
            }
            len = start;
        }
        if (st == PM_OK && spent != u->spent)
            st = ld_fail(ld, PM_ERR_INVALID, u->offset + 64,
                         "undo block %zu: %llu spent records, %llu declared", b,
                         (unsigned long long)spent, (unsigned long long)u->spent);
    }
    hmap_free(&m);
    return st;
}

static pm_status load_undo(loader *ld)
{
    uint64_t n = ld->counts[4], length;
    if (ld_begin(ld, SEC_UNDO, n, 0, &length) != PM_OK)
        return ld->status;
    undo_block *blocks = calloc(n ? n : 1, sizeof *blocks);
    if (!blocks)
        return ld_nomem(ld);
    deferred d = {0};
    uint64_t left = length;
    size_t got = 0;
    for (; got < n && ld->status == PM_OK && !d.set; got++) {
        undo_block *u = &blocks[got];
        uint8_t item[PM_SNAP_UNDO_HEADER_SIZE];
        u->offset = ld->r.off;
        if (left < sizeof item) {
            defer(&d, u->offset, "undo block %zu does not fit in the section's length", got);
            break;
        }
        if (ld_read(ld, item, sizeof item, 1) != PM_OK)
            break;
        left -= sizeof item;
        memcpy(u->hash, item, 32);
        memcpy(u->prev, item + 32, 32);
        u->spent = pm_read_u64le(item + 64);
        u->len = pm_read_u64le(item + 72);
        if (u->len > left) {
            defer(&d, u->offset + 72, "undo block %zu: log length %llu past the section's end",
                  got, (unsigned long long)u->len);
            break;
        }
        u->log = malloc(u->len ? (size_t)u->len : 1);
        if (!u->log) {
            ld_nomem(ld);
            break;
        }
        if (ld_read(ld, u->log, (size_t)u->len, 1) != PM_OK)
            break;
        left -= u->len;
    }
    uint64_t tail_at = ld->r.off, tail = left;
    if (ld->status == PM_OK) {
        /* Whatever a deferred error left unread still counts for the
         * checksum: read it through. */
        uint8_t skip[4096];
        while (left > 0 && ld->status == PM_OK) {
            size_t k = left < sizeof skip ? (size_t)left : sizeof skip;
            if (ld_read(ld, skip, k, 1) != PM_OK)
                break;
            left -= k;
        }
    }
    if (ld->status == PM_OK && !d.set && tail != 0)
        defer(&d, tail_at, "%llu bytes after the last block", (unsigned long long)tail);
    if (ld->status == PM_OK)
        ld_end_deferred(ld, &d);
    /* The chain of blocks: linked, ending at the tip. */
    for (size_t i = 0; i < n && ld->status == PM_OK; i++) {
        const undo_block *u = &blocks[i];
        int64_t height = ld->tip_height - (int64_t)(n - 1 - i);
        if (i > 0 && memcmp(u->prev, blocks[i - 1].hash, 32) != 0)
            ld_fail(ld, PM_ERR_INVALID, u->offset + 32,
                    "undo block %zu does not follow the one before it", i);
        else if (i == 0 && (height == 0) != (memcmp(u->prev, ld->chain_id, 32) == 0))
            ld_fail(ld, PM_ERR_INVALID, u->offset + 32,
                    height == 0 ? "the undo block at height 0 does not follow the chain id"
                                : "the undo block at height %lld follows the chain id",
                    (long long)height);
        else if (i + 1 == n && memcmp(u->hash, ld->tip_hash, 32) != 0)
            ld_fail(ld, PM_ERR_INVALID, u->offset, "the newest undo block is not the tip");
    }
    if (ld->status == PM_OK)
        check_undo(ld, blocks, (size_t)n);
    /* Keep the newest undo_depth blocks (the engine evicts older ones). */
    size_t depth = ld->e->cfg.undo_depth;
    for (size_t i = n > depth ? (size_t)n - depth : 0; i < n && ld->status == PM_OK; i++) {
        const undo_block *u = &blocks[i];
        if (pm_ledger_history_push(ld->e->ledger, u->hash, u->prev, u->log, (size_t)u->len,
                                   (size_t)u->spent) != PM_OK)
            ld_nomem(ld);
    }
    for (size_t i = 0; i < n; i++)
        free(blocks[i].log);
    free(blocks);
    return ld->status;
}

static pm_status load_end(loader *ld)
{
    uint64_t length;
    uint8_t p[END_PAYLOAD_SIZE];
    if (ld_begin(ld, SEC_END, 0, 0, &length) != PM_OK)
        return ld->status;
    if (length != END_PAYLOAD_SIZE)
        return ld_fail(ld, PM_ERR_INVALID, ld->sec_start + 16, "length %llu, expected %d",
                       (unsigned long long)length, END_PAYLOAD_SIZE);
    uint64_t at = ld->r.off;
    if (ld_read(ld, p, sizeof p, 1) != PM_OK || ld_end(ld) != PM_OK)
        return ld->status;
    if (pm_read_u64le(p) != ld->r.size)
        return ld_fail(ld, PM_ERR_INVALID, at, "the file should be %llu bytes, it is %llu",
                       (unsigned long long)pm_read_u64le(p), (unsigned long long)ld->r.size);
    if (ld->r.off != ld->r.size)
        return ld_fail(ld, PM_ERR_INVALID, ld->r.off, "bytes after the end marker");
    return PM_OK;
}

pm_status pm_engine_create_from_snapshot(pm_engine **engine, const pm_context *ctx,
                                         const pm_chain_params *params, const pm_config *cfg,
                                         const char *path, char *err, size_t errlen)
{
    PM_ARG_CHECK(ctx, engine != NULL, PM_ERR_ARG);
    *engine = NULL;
    PM_ARG_CHECK_PROPER(ctx, PM_ERR_ARG);
    PM_ARG_CHECK(ctx, path != NULL, PM_ERR_ARG);
    PM_ARG_CHECK(ctx, err != NULL || errlen == 0, PM_ERR_ARG);
    const char *bad = cfg ? pm_config_invalid(cfg) : NULL;
    if (bad) {
        pm_illegal(ctx, __func__, bad);
        return PM_ERR_ARG;
    }
    if (errlen)
        err[0] = 0;

    loader ld;
    memset(&ld, 0, sizeof ld);
    ld.ctx = ctx;
    ld.msg = err;
    ld.msglen = errlen;
    ld.sec = -1;
    ld.r.fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat stt;
    const char *why = NULL;
    if (ld.r.fd < 0 || fstat(ld.r.fd, &stt) != 0)
        why = strerror(errno);
    else if (S_ISDIR(stt.st_mode))
        why = strerror(EISDIR);
    else if (!S_ISREG(stt.st_mode))
        why = "not a regular file";
    if (why) {
        if (errlen)
            snprintf(err, errlen, "cannot read %s: %s", path, why);
        if (ld.r.fd >= 0)
            close(ld.r.fd);
        return PM_ERR_IO;
    }
    ld.r.size = (uint64_t)stt.st_size;
    posix_fadvise(ld.r.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    ld.r.buf = malloc(READ_BUFFER);
    ld.xs = XXH3_createState();
    if (!ld.r.buf || !ld.xs)
        ld_nomem(&ld);

    if (ld.status == PM_OK)
        load_front(&ld, params);
    if (ld.status == PM_OK) {
        pm_config c;
        if (cfg)
            c = *cfg;
        else
            pm_config_default(ctx, &c);
        if (c.utxo_capacity_hint < ld.counts[3])
            c.utxo_capacity_hint = (size_t)ld.counts[3];
        pm_status st = pm_engine_create(&ld.e, ctx, &ld.params, &c);
        if (st != PM_OK) {
            ld.status = st;
            if (errlen)
                snprintf(err, errlen, "cannot create the engine: %s", pm_status_text(st));
        }
    }
    if (ld.status == PM_OK)
        load_operators(&ld);
    if (ld.status == PM_OK)
        load_series(&ld);
    mint_job mint;
    memset(&mint, 0, sizeof mint);
    if (ld.status == PM_OK && start_minted(&ld, &mint) == PM_OK)
        load_utxos(&ld);
    finish_minted(&ld, &mint);
    if (ld.status == PM_OK) {
        /* The undo check follows the registry as restored; the tip is
         * needed for the chain of undo blocks. */
        pm_ledger_restore_gov_seq(ld.e->ledger, ld.gov_seq);
        pm_ledger_restore_tip(ld.e->ledger, ld.tip_hash, ld.tip_height);
        load_undo(&ld);
    }
    if (ld.status == PM_OK)
        load_end(&ld);
    if (ld.status == PM_OK && pm_ledger_publish_opkeys(ld.e->ledger) != PM_OK)
        ld_nomem(&ld);

    close(ld.r.fd);
    free(ld.r.buf);
    XXH3_freeState(ld.xs);
    free(ld.op_ids);
    if (ld.status != PM_OK) {
        pm_engine_destroy(ld.e);
        return ld.status;
    }
    *engine = ld.e;
    return PM_OK;
}
