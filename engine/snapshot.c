/*
 * snapshot.c — state snapshots: save the whole ledger state at the tip to
 * a file, and create an engine from such a file, so that a node restarts
 * in seconds instead of replaying its history.
 *
 * File format, version 1 (also docs/snapshot.md)
 * ==============================================
 * Integers are little-endian unless said otherwise.
 *
 *   preamble  16 bytes: magic "POSTMKSN", u32 version = 1, u32 flags = 0
 *   then seven sections, always in this order:
 *     HEAD  the header (one item of 208 bytes, below)
 *     OPER  operators, in registration order: u32 id, key[32], u64 op_seq,
 *           u8 name_len (1..64), name[64] (zero padded)        109 bytes
 *     SERI  declared series: u32 operator, u32 series, u32 max_supply  12
 *     MINT  the minted set: u32 operator, u32 series, u32 serial       12
 *     UTXO  unspent outputs: txid[32], u16 index BIG-endian, output[45]
 *           (79 bytes), strictly ascending by the first 34 bytes
 *     UNDO  the undo data of the last blocks, oldest first: hash[32],
 *           prev_hash[32], u64 spent, u64 len, then len bytes of undo log
 *     ENDM  the end marker: u64 size of the whole file
 *   and nothing after ENDM.
 *
 * Every section is framed alike:
 *     tag[4]  u32 zero  u64 count (items)  u64 length (payload bytes)
 *     payload (length bytes)
 *     checksum[16] = XXH3-128 (canonical, big-endian) of the 24 framing
 *                    bytes and the payload
 * HEAD payload: network[16], governance_key[32], chain_id[32],
 *   i64 tip_height (-1: no block), tip_hash[32], u64 gov_seq, u64 counts of
 *   operators, series, minted, utxos and undo blocks, utxo_digest[32] (§8),
 *   undo_format[8] (byte order of the undo logs, then the payload size of
 *   each of the 7 undo record kinds: the logs are state.c's own bytes).
 *
 * Why these choices:
 *  - Checksums are XXH3-128, not SHA-256: they guard against accidental
 *    damage (a torn write, a flipped bit, a truncated copy), for which 128
 *    bits of a good non-cryptographic hash are ample, and they run at
 *    memory speed, while a load is bound by the work per UTXO. Integrity
 *    of the content itself is the §8 UTXO digest (SHA-256), recomputed on
 *    every load and compared with the header's: the same figure `postmark
 *    replay --json` prints, so a snapshot can be checked against a chain.
 *  - The UTXO section is written in §8 digest order with the index
 *    big-endian, so the section's payload IS the digest's preimage: a load
 *    hashes the bytes as they stream in (no sort, no second pass), and
 *    strict ascending order rejects duplicates for free. Saving sorts
 *    24-byte references to the table's entries (one pass over the table,
 *    an in-place radix pass on the txid prefix), never a copy of the set,
 *    then streams the entries in that order, prefetched ahead.
 *  - Loading is parallel: the calling thread reads, checksums, hashes and
 *    checks chunks of UTXO records; the engine's worker threads insert
 *    them into the lock-free table (pre-sized from the header count), each
 *    batch-looking-up its next group first so that the cache misses on the
 *    table overlap; meanwhile a thread of its own reads and restores the
 *    minted set (which nothing else touches during the load).
 *
 * Durability: a save writes PATH.tmp through a 1 MiB buffer, writes the
 * header last (it holds the digest, computed while streaming), fsyncs,
 * renames over PATH and fsyncs the directory: PATH is always the old or
 * the new snapshot, whole.
 *
 * Validation on load: the preamble, every section's framing (tag, count
 * and length against the header), every checksum, every field's range,
 * the chain id against the parameters, uniqueness and order, the counts
 * after restoring, the recomputed UTXO digest, and the undo logs record by
 * record (kinds, sizes, and the operator records simulated newest first, so
 * a later disconnect can never index outside the registry). Anything that
 * fails refuses the snapshot whole: PM_ERR_INVALID naming the section and
 * the byte offset. A snapshot of another chain is PM_ERR_MISMATCH.
 */
#include "snapshot.h"

#include "fsutil.h"

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
/* Writing                                                                 */
/* ---------------------------------------------------------------------- */

#define WRITE_BUFFER (1u << 20)

typedef struct {
    int fd;
    uint8_t *buf;
    size_t len;
    uint64_t off;          /* file offset of the next byte */
    uint64_t section_end;  /* where the open section's payload must end */
    XXH3_state_t *xs;
    int err;               /* errno of the first write failure */
    int short_section;     /* a section's payload differed from its length */
} writer;

static void w_flush(writer *w)
{
    size_t done = 0;
    while (done < w->len && !w->err) {
        ssize_t n = write(w->fd, w->buf + done, w->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            w->err = n < 0 ? errno : EIO;
        else
            done += (size_t)n;
    }
    w->len = 0;
}

static void w_raw(writer *w, const void *data, size_t n)
{
    const uint8_t *p = data;
    w->off += n;
    while (n) {
        if (w->len == WRITE_BUFFER)
            w_flush(w);
        size_t k = WRITE_BUFFER - w->len;
        if (k > n)
            k = n;
        memcpy(w->buf + w->len, p, k);
        w->len += k;
        p += k;
        n -= k;
    }
}

static void w_put(writer *w, const void *data, size_t n)
{
    XXH3_128bits_update(w->xs, data, n);
    w_raw(w, data, n);
}

static void w_begin(writer *w, int sec, uint64_t count, uint64_t length)
{
    uint8_t h[PM_SNAP_SECTION_HEADER_SIZE];
    section_framing(h, sec, count, length);
    XXH3_128bits_reset(w->xs);
    w_put(w, h, sizeof h);
    w->section_end = w->off + length;
}

static void w_end(writer *w)
{
    if (w->off != w->section_end)
        w->short_section = 1;
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(w->xs));
    w_raw(w, c.digest, sizeof c.digest);
}

typedef struct {
    writer *w;
    uint64_t visited;
} series_writer;

static int write_series(void *data, uint32_t op, uint32_t series, uint32_t max_supply)
{
    series_writer *s = data;
    uint8_t item[PM_SNAP_SERIES_SIZE];
    pm_write_u32le(item, op);
    pm_write_u32le(item + 4, series);
    pm_write_u32le(item + 8, max_supply);
    w_put(s->w, item, sizeof item);
    s->visited++;
    return 0;
}

/* ---- the UTXO section: the table in §8 order ---------------------------- */

typedef struct {
    writer *w;
    pm_hasher *hasher;
    uint64_t written;
} utxo_writer;

/* A batch of the sorted walk: its records are the section's payload and
 * the digest's input, byte for byte (PM_SNAP_UTXO_SIZE ==
 * PM_UTXO_RECORD_SIZE). */
static pm_status put_utxos(void *data, const uint8_t *records, size_t n)
{
    utxo_writer *u = data;
    if (!pm_hash_update(u->hasher, records, n * PM_SNAP_UTXO_SIZE))
        return PM_ERR_NOMEM;
    w_put(u->w, records, n * PM_SNAP_UTXO_SIZE);
    u->written += n;
    return PM_OK;
}

/* Write the UTXO section's payload in §8 order and compute the digest, in
 * one sorted walk of the table (pm_utxo_table_walk_sorted). Returns PM_OK,
 * PM_ERR_NOMEM, or PM_ERR_STATE when the table did not hold `count`
 * entries (it changed during the save: a misuse). */
static pm_status write_utxos(writer *w, pm_engine *e, uint64_t count, uint8_t digest[32])
{
    _Static_assert(PM_SNAP_UTXO_SIZE == PM_UTXO_RECORD_SIZE, "UTXO record layout");
    pm_utxo_table *t = pm_ledger_utxo(e->ledger);
    if (pm_utxo_table_count(t) != count)
        return PM_ERR_STATE;
    utxo_writer u = {w, e->hasher, 0};
    if (!pm_hash_begin(e->hasher, PM_TAG_UTXO))
        return PM_ERR_NOMEM;
    pm_status st = pm_utxo_table_walk_sorted(t, put_utxos, &u);
    if (st == PM_OK && u.written != count)
        st = PM_ERR_STATE;
    if (st == PM_OK && !pm_hash_final(e->hasher, digest))
        st = PM_ERR_NOMEM;
    return st;
}

static void encode_head(uint8_t out[PM_SNAP_HEAD_SIZE], pm_engine *e, const uint64_t counts[5],
                        const uint8_t digest[32])
{
    pm_ledger *l = e->ledger;
    uint8_t tip[32];
    int64_t height;
    pm_ledger_tip(l, tip, &height);
    memset(out, 0, PM_SNAP_HEAD_SIZE);
    memcpy(out, e->params.network, PM_NETWORK_SIZE);
    memcpy(out + 16, e->params.governance_key, 32);
    memcpy(out + 48, e->chain_id, 32);
    pm_write_u64le(out + 80, (uint64_t)height);
    memcpy(out + 88, tip, 32);
    pm_write_u64le(out + 120, pm_ledger_gov_seq(l));
    for (int i = 0; i < 5; i++)
        pm_write_u64le(out + 128 + 8 * i, counts[i]);
    memcpy(out + 168, digest, 32);
    undo_format(out + 200);
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, off_t off)
{
    while (n) {
        ssize_t k = pwrite(fd, p, n, off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
        off += k;
    }
    return 0;
}

/* Save the tip state (the ledger's current log must be empty). */
static pm_status save_tip(pm_engine *e, const char *path)
{
    pm_ledger *l = e->ledger;
    pm_utxo_table *t = pm_ledger_utxo(l);
    /* The file the path names: a rename onto a symlink would replace the
     * link, and onto a device node would leave a regular file there. */
    char *target = pm_path_resolve(path);
    if (!target) {
        snprintf(e->error, sizeof e->error, "snapshot: %s: %s", path, strerror(errno));
        return errno == ENOMEM ? PM_ERR_NOMEM : PM_ERR_IO;
    }
    if (pm_path_is_special(target)) {
        snprintf(e->error, sizeof e->error,
                 "snapshot: %s is not a regular file (a snapshot is written to a file and renamed into place)",
                 path);
        free(target);
        return PM_ERR_IO;
    }
    path = target;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    writer w = {.fd = -1};
    w.buf = malloc(WRITE_BUFFER);
    w.xs = XXH3_createState();
    if (!tmp || !w.buf || !w.xs) {
        free(tmp);
        free(target);
        free(w.buf);
        XXH3_freeState(w.xs);
        snprintf(e->error, sizeof e->error, "snapshot: out of memory");
        return PM_ERR_NOMEM;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    pm_status st = PM_OK;
    const char *what = "create";
    w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.fd < 0) {
        w.err = errno;
        st = PM_ERR_IO;
        goto out;
    }
    what = "write";

    uint64_t counts[5] = {pm_ledger_operator_count(l), pm_ledger_series_count(l),
                          pm_ledger_minted_count(l), pm_utxo_table_count(t),
                          pm_ledger_history_count(l)};
    /* The front is written last (the header holds the digest). */
    uint8_t front[FRONT_SIZE];
    memset(front, 0, sizeof front);
    w_raw(&w, front, sizeof front);

    w_begin(&w, SEC_OPER, counts[0], counts[0] * PM_SNAP_OPERATOR_SIZE);
    for (size_t i = 0; i < counts[0]; i++) {
        pm_operator_info op;
        uint8_t item[PM_SNAP_OPERATOR_SIZE];
        pm_ledger_operator_at(l, i, &op);
        memset(item, 0, sizeof item);
        pm_write_u32le(item, op.id);
        memcpy(item + 4, op.key, 32);
        pm_write_u64le(item + 36, op.op_seq);
        item[44] = op.name_len;
        memcpy(item + 45, op.name, op.name_len <= 64 ? op.name_len : 64);
        w_put(&w, item, sizeof item);
    }
    w_end(&w);

    series_writer sw = {&w, 0};
    w_begin(&w, SEC_SERI, counts[1], counts[1] * PM_SNAP_SERIES_SIZE);
    pm_ledger_foreach_series(l, write_series, &sw);
    w_end(&w);
    uint64_t series_seen = sw.visited;
    sw.visited = 0;
    w_begin(&w, SEC_MINT, counts[2], counts[2] * PM_SNAP_MINTED_SIZE);
    pm_ledger_foreach_minted(l, write_series, &sw);
    w_end(&w);
    if (series_seen != counts[1] || sw.visited != counts[2])
        w.short_section = 1;

    uint8_t digest[32];
    w_begin(&w, SEC_UTXO, counts[3], counts[3] * PM_SNAP_UTXO_SIZE);
    st = write_utxos(&w, e, counts[3], digest);
    if (st != PM_OK)
        goto out;
    w_end(&w);

    uint64_t undo_len = 0;
    for (size_t i = 0; i < counts[4]; i++) {
        uint8_t hash[32], prev[32];
        const uint8_t *log;
        size_t len, spent;
        pm_ledger_history_at(l, i, hash, prev, &log, &len, &spent);
        undo_len += PM_SNAP_UNDO_HEADER_SIZE + len;
    }
    w_begin(&w, SEC_UNDO, counts[4], undo_len);
    for (size_t i = 0; i < counts[4]; i++) {
        uint8_t item[PM_SNAP_UNDO_HEADER_SIZE];
        const uint8_t *log;
        size_t len, spent;
        pm_ledger_history_at(l, i, item, item + 32, &log, &len, &spent);
        pm_write_u64le(item + 64, spent);
        pm_write_u64le(item + 72, len);
        w_put(&w, item, sizeof item);
        w_put(&w, log, len);
    }
    w_end(&w);

    uint8_t size_field[END_PAYLOAD_SIZE];
    pm_write_u64le(size_field, w.off + PM_SNAP_SECTION_HEADER_SIZE + END_PAYLOAD_SIZE +
                                   PM_SNAP_CHECKSUM_SIZE);
    w_begin(&w, SEC_END, 0, END_PAYLOAD_SIZE);
    w_put(&w, size_field, sizeof size_field);
    w_end(&w);
    w_flush(&w);
    if (w.short_section) {
        st = PM_ERR_STATE;
        goto out;
    }
    if (w.err) {
        st = PM_ERR_IO;
        goto out;
    }

    /* The front: preamble and the header with the digest. */
    memcpy(front, SNAP_MAGIC, 8);
    pm_write_u32le(front + 8, SNAP_VERSION);
    pm_write_u32le(front + 12, 0);
    uint8_t *head = front + PM_SNAP_PREAMBLE_SIZE;
    section_framing(head, SEC_HEAD, 1, PM_SNAP_HEAD_SIZE);
    encode_head(head + PM_SNAP_SECTION_HEADER_SIZE, e, counts, digest);
    pm_snapshot_section_checksum(head + PM_SNAP_SECTION_HEADER_SIZE + PM_SNAP_HEAD_SIZE, head,
                     PM_SNAP_SECTION_HEADER_SIZE + PM_SNAP_HEAD_SIZE);
    if (pwrite_all(w.fd, front, sizeof front, 0) != 0) {
        w.err = errno ? errno : EIO;
        st = PM_ERR_IO;
        goto out;
    }
    what = "fsync";
    if (fsync(w.fd) != 0) {
        w.err = errno;
        st = PM_ERR_IO;
        goto out;
    }
    what = "close";
    int closed = close(w.fd);
    w.fd = -1;
    if (closed != 0) {
        w.err = errno;
        st = PM_ERR_IO;
        goto out;
    }
    what = "rename";
    if (rename(tmp, path) != 0) {
        w.err = errno;
        st = PM_ERR_IO;
        goto out;
    }
    what = "fsync the directory of";
    if (pm_sync_parent(path) != 0) {
        /* The snapshot is in place; only its durability is in doubt. */
        w.err = errno;
        st = PM_ERR_IO;
    }

out:
    if (st == PM_ERR_IO) {
        int dir = strcmp(what, "fsync the directory of") == 0;
        snprintf(e->error, sizeof e->error, "snapshot: cannot %s %s%s%s: %s", what,
                 dir ? path : tmp, strcmp(what, "rename") == 0 ? " to " : "",
                 strcmp(what, "rename") == 0 ? path : "", strerror(w.err ? w.err : EIO));
    }
    else if (st == PM_ERR_NOMEM)
        snprintf(e->error, sizeof e->error, "snapshot: out of memory");
    else if (st == PM_ERR_STATE) {
        /* The state changed while it was being written (a call on the
         * engine from another thread): a misuse, reported as I/O. */
        snprintf(e->error, sizeof e->error,
                 "snapshot: the state changed while it was being saved");
        st = PM_ERR_IO;
    }
    if (w.fd >= 0)
        close(w.fd);
    if (st != PM_OK && strcmp(what, "fsync the directory of") != 0)
        unlink(tmp);
    free(tmp);
    free(target);
    free(w.buf);
    XXH3_freeState(w.xs);
    return st;
}

pm_status pm_snapshot_save(pm_engine *e, const char *path)
{
    /* An empty current log: the state is exactly the tip's (always so in
     * the on_block callback, right after the block was sealed). */
    if (pm_ledger_mark(e->ledger) == 0)
        return save_tip(e, path);
    /* The open block's transactions are applied: take them out (as a
     * change of tip does), save, and check them again on the same state,
     * which accepts them all again. */
    pm_status st = pm_pipeline_drain(e, 0);
    if (st != PM_OK)
        return st;
    if (pm_ledger_mark(e->ledger) == 0)
        return save_tip(e, path);
    pm_open_block saved;
    pm_pipeline_suspend_open_block(e, &saved);
    st = save_tip(e, path);
    char message[sizeof e->error];
    memcpy(message, e->error, sizeof message);
    pm_status rst = pm_pipeline_recheck(e, &saved);
    if (st != PM_OK) {
        memcpy(e->error, message, sizeof message);
        return st;
    }
    return rst;
}

pm_status pm_engine_save_snapshot(pm_engine *e, const char *path)
{
    PM_ARG_CHECK(NULL, e != NULL, PM_ERR_ARG);
    PM_ARG_CHECK(e->ctx, path != NULL, PM_ERR_ARG);
    return pm_snapshot_save(e, path);
}
