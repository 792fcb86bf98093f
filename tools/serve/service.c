/*
 * service.c — the admission core of `postmark serve` (serve.h).
 *
 * HTTP threads queue their records (serve_admit) and wait. The
 * committer, which owns the engine's pack mode, takes everything queued,
 * gives the records the next indexes (their journal positions), hands them
 * to the journal thread and submits them in index order, stepping the
 * engine's pipeline as it goes (pm_engine_step: one part verified while
 * the part before is decided) instead of draining it after each batch. The
 * journal thread meanwhile appends them to the journal with one fdatasync
 * (group commit). A record that got no reject callback once the engine has
 * settled past it is accepted; a request is answered when all its records
 * are both settled and synced. When nothing more is queued, the committer
 * steps until everything is settled. So the sync overlaps validation, and
 * still: the journal's order is the order of the indexes answered, an
 * answer comes after its record's fdatasync, nothing that names a record
 * by index (a block, a tip line) is written before the record is in the
 * journal, and the engine sees exactly the record sequence `pack JOURNAL`
 * would: the same verdicts and, while blocks close only when full or at a
 * flush, the same blocks. A record validated but never journaled (a write
 * failed, a crash) is never answered and never in a block.
 *
 * Blocks are written as pack writes them: the rejects before them and the
 * journal's block line synced first, then the block appended and synced.
 * Every engine call (the HTTP threads' queries included) is made under
 * engine_lock: the engine is driven by one thread at a time.
 */
#include "serve.h"

#include "chainfile.h"
#include "cliutil.h"
#include "recfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* What a request asks of the committer: records to admit (SERVE_TXS), or
 * a change of the chain, made between two batches. */
typedef enum { SERVE_TXS, SERVE_FLUSH, SERVE_CONNECT, SERVE_DISCONNECT } serve_op;

struct serve_queue_item {
    serve_op op;
    serve_record *recs;
    size_t n;
    const uint8_t *block;        /* SERVE_CONNECT */
    size_t block_size;
    pm_verdict *verdict;
    serve_dropped *dropped;      /* out, SERVE_CONNECT: re-check's rejects */
    size_t n_dropped;
    int64_t height;              /* out: the block closed or connected, the tip */
    pm_status status;
    /* Done (answered) once both: */
    int journaled;               /* 1 in the journal, synced; -1 failed */
    int settled;                 /* the engine decided it (or it failed) */
    size_t decided;              /* of recs: the first `decided` have final
                                    verdicts (published while it waits) */
    int done;
    serve_queue_item *next;
    serve_queue_item *jnext;     /* in the journal thread's queue */
};

struct serve_status {
    uint8_t txid[32];
    uint64_t height;
    uint8_t state, reason;
};

/* ---- txid -> state: common/hmap over a dense array ---------------------- */

/* Seeded: a txid is a hash, but one a submitter can grind. */
static uint64_t status_hash(const serve *s, const uint8_t txid[32])
{
    return XXH3_64bits_withSeed(txid, 32, s->status_seed);
}

/* The entry of txid, or NULL; *c is left where it goes when absent. Under
 * status_lock. */
static serve_status *status_find(const serve *s, hmap_cursor *c, const uint8_t txid[32])
{
    if (!s->status_index.slot) /* nothing recorded yet */
        return NULL;
    *c = hmap_probe(&s->status_index, status_hash(s, txid));
    for (uint32_t it; (it = hmap_next(&s->status_index, c)) != HMAP_NONE;)
        if (memcmp(s->status[it].txid, txid, 32) == 0)
            return &s->status[it];
    return NULL;
}

/* Record a state. A transaction in a block stays there: the same bytes
 * submitted again are rejected (spent inputs), which does not move it. */
static void status_set(serve *s, const uint8_t txid[32], serve_tx_state state, uint64_t height,
                       pm_reason reason)
{
    pthread_mutex_lock(&s->status_lock);
    hmap_cursor c;
    serve_status *e = status_find(s, &c, txid);
    if (!e) {
        /* The lookup is a convenience: out of memory, verdicts are
         * answered anyway. */
        if (s->status_n == s->status_cap) {
            size_t cap = s->status_cap ? 2 * s->status_cap : 1024;
            serve_status *grown = cap < HMAP_NONE ? realloc(s->status, cap * sizeof *grown) : NULL;
            if (!grown) {
                pthread_mutex_unlock(&s->status_lock);
                return;
            }
            s->status = grown;
            s->status_cap = cap;
        }
        if (!(s->status_index.slot ? hmap_reserve(&s->status_index, s->status_n + 1)
                                   : hmap_init(&s->status_index, 1024))) {
            pthread_mutex_unlock(&s->status_lock);
            return;
        }
        (void)status_find(s, &c, txid); /* growing moved the slots */
        e = &s->status[s->status_n];
        memcpy(e->txid, txid, 32);
        e->state = TX_UNKNOWN;
        hmap_put(&s->status_index, &c, (uint32_t)s->status_n++);
    }
    if (e->state != TX_BLOCK || state == TX_BLOCK || state == TX_GONE) {
        e->state = (uint8_t)state;
        e->height = height;
        e->reason = (uint8_t)reason;
    }
    pthread_mutex_unlock(&s->status_lock);
}

serve_tx_state serve_tx_lookup(serve *s, const uint8_t txid[32], uint64_t *height,
                               pm_reason *reason)
{
    pthread_mutex_lock(&s->status_lock);
    hmap_cursor c;
    serve_status *e = status_find(s, &c, txid);
    serve_tx_state st = e && e->state != TX_GONE ? (serve_tx_state)e->state : TX_UNKNOWN;
    if (e) {
        *height = e->height;
        *reason = (pm_reason)e->reason;
    }
    pthread_mutex_unlock(&s->status_lock);
    return st;
}

void serve_record_prepare(const serve *s, serve_record *r, const uint8_t *bytes, size_t size)
{
    memset(r, 0, sizeof *r);
    r->bytes = bytes;
    r->size = size;
    pm_tx tx;
    r->has_txid = pm_tx_parse(pm_context_static, &tx, NULL, bytes, size) && pm_tx_txid(s->ctx, r->txid, &tx);
}

/* ---- blocks ------------------------------------------------------------ */

static int blocks_push(serve *s, uint64_t offset, uint32_t size, const uint8_t hash[32])
{
    pthread_mutex_lock(&s->blocks_lock);
    if (s->n_blocks == s->cap_blocks) {
        size_t cap = s->cap_blocks ? s->cap_blocks * 2 : 256;
        serve_block *b = realloc(s->blocks, cap * sizeof *b);
        if (!b) {
            pthread_mutex_unlock(&s->blocks_lock);
            return -1;
        }
        s->blocks = b;
        s->cap_blocks = cap;
    }
    serve_block *b = &s->blocks[s->n_blocks++];
    b->offset = offset;
    b->size = size;
    memcpy(b->hash, hash, 32);
    pthread_cond_broadcast(&s->blocks_cond);
    pthread_mutex_unlock(&s->blocks_lock);
    return 0;
}

void serve_each_txid(const serve *s, const uint8_t *block, size_t size,
                     void (*fn)(void *data, const uint8_t txid[32]), void *data)
{
    pm_block blk;
    if (!pm_block_parse(pm_context_static, &blk, NULL, block, size))
        return;
    const uint8_t *txb;
    size_t txs, cursor = 0;
    while (pm_block_next_tx(pm_context_static, &txb, &txs, &blk, &cursor)) {
        pm_tx tx;
        uint8_t txid[32];
        if (pm_tx_parse(pm_context_static, &tx, NULL, txb, txs) && pm_tx_txid(s->ctx, txid, &tx))
            fn(data, txid);
    }
}

typedef struct {
    serve *s;
    uint64_t height;
} in_block;

static void set_in_block(void *data, const uint8_t txid[32])
{
    in_block *b = data;
    status_set(b->s, txid, TX_BLOCK, b->height, PM_REASON_NONE);
}

/* Every transaction of a block is TX_BLOCK at its height. */
static void note_block_txs(serve *s, const uint8_t *bytes, size_t size, uint64_t height)
{
    serve_each_txid(s, bytes, size, set_in_block, &(in_block){s, height});
}

void serve_close_streams(serve *s)
{
    pthread_mutex_lock(&s->blocks_lock);
    s->closing = 1;
    pthread_cond_broadcast(&s->blocks_cond);
    pthread_mutex_unlock(&s->blocks_lock);
}

uint64_t serve_block_count(serve *s)
{
    pthread_mutex_lock(&s->blocks_lock);
    uint64_t n = s->n_blocks;
    pthread_mutex_unlock(&s->blocks_lock);
    return n;
}

/* Where block h is; 0 when there is no such block. */
static int block_at(serve *s, uint64_t h, serve_block *b)
{
    pthread_mutex_lock(&s->blocks_lock);
    int there = h < s->n_blocks;
    if (there)
        *b = s->blocks[h];
    pthread_mutex_unlock(&s->blocks_lock);
    return there;
}

int serve_block_get(serve *s, uint64_t h, uint8_t **bytes, size_t *size, uint8_t hash[32])
{
    serve_block b;
    if (!block_at(s, h, &b))
        return 0;
    *bytes = malloc(b.size);
    if (!*bytes || pread(s->chain_fd, *bytes, b.size, (off_t)b.offset) != (ssize_t)b.size) {
        free(*bytes);
        *bytes = NULL;
        return 0;
    }
    *size = b.size;
    memcpy(hash, b.hash, 32);
    return 1;
}

int serve_block_header(serve *s, uint64_t h, pm_block_header *header, uint8_t hash[32],
                       size_t *size)
{
    serve_block b;
    uint8_t raw[PM_BLOCK_HEADER_SIZE];
    if (!block_at(s, h, &b) || pread(s->chain_fd, raw, sizeof raw, (off_t)b.offset) != (ssize_t)sizeof raw)
        return 0;
    pm_block_header_decode(pm_context_static, header, raw);
    memcpy(hash, b.hash, 32);
    *size = b.size;
    return 1;
}

int serve_gone_get(serve *s, size_t i, uint64_t *height, uint8_t hash[32])
{
    pthread_mutex_lock(&s->blocks_lock);
    int there = i < s->n_gone;
    if (there) {
        *height = s->gone[i].offset;
        memcpy(hash, s->gone[i].hash, 32);
    }
    pthread_mutex_unlock(&s->blocks_lock);
    return there;
}

int serve_block_wait(serve *s, uint64_t h, size_t gone, unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->blocks_lock);
    int rc = 0;
    while (s->n_blocks <= h && s->n_gone <= gone && !s->closing && rc == 0)
        rc = pthread_cond_timedwait(&s->blocks_cond, &s->blocks_lock, &until);
    int there = s->n_blocks > h;
    pthread_mutex_unlock(&s->blocks_lock);
    return there;
}

/* ---- engine callbacks (on the committer, under engine_lock) ------------ */

/* Append a block to the chain file (synced) and to the blocks known. Its
 * journal line was written first. Returns 0, or -1 (io_failed set). */
static int append_block(serve *s, const uint8_t *block, size_t size, uint64_t height,
                        const uint8_t hash[32])
{
    uint8_t len[4] = {(uint8_t)size, (uint8_t)(size >> 8), (uint8_t)(size >> 16),
                      (uint8_t)(size >> 24)};
    double t0 = pm_cli_now();
    pthread_rwlock_wrlock(&s->chain_lock);
    uint64_t at = s->chain_end;
    int ok = pwrite(s->chain_fd, len, 4, (off_t)at) == 4 &&
             pwrite(s->chain_fd, block, size, (off_t)at + 4) == (ssize_t)size &&
             fdatasync(s->chain_fd) == 0;
    if (ok)
        s->chain_end = at + 4 + size;
    pthread_rwlock_unlock(&s->chain_lock);
    if (!ok) {
        s->io_failed = errno ? errno : EIO;
        return -1;
    }
    metrics_observe(&s->fsync_hist, pm_cli_now() - t0);
    blocks_push(s, at + 4, (uint32_t)size, hash);
    note_block_txs(s, block, size, height);
    return 0;
}

/* Every --snapshot-every blocks, the state as of the block just appended
 * (nothing may wait in the open block: the snapshot is the chain's
 * state): a restart with --from-snapshot begins there. */
static void maybe_snapshot(serve *s)
{
    s->blocks_added++;
    if (!s->opts.save_snapshot || s->blocks_added % s->opts.snapshot_every != 0)
        return;
    if (pm_engine_save_snapshot(s->engine, s->opts.save_snapshot) != PM_OK && !s->snapshot_failed) {
        s->snapshot_failed = 1;
        pm_cli_error("serve", "%s: %s", s->opts.save_snapshot, pm_engine_last_error(s->engine));
    }
}

/* Records decided up to index `upto` (exclusive): those without a reject
 * are accepted. Under engine_lock, on the committer. */
static void settle_upto(serve *s, uint64_t upto)
{
    if (s->io_failed)
        return; /* the requests were answered 503: their records may be gone */
    while (s->flight_done < s->flight_n && s->flight_first + s->flight_done < upto) {
        serve_record *r = s->flight[s->flight_done++];
        if (r->reason != PM_REASON_NONE)
            continue;
        if (s->pending++ == 0) {
            s->open_since = pm_cli_now();
            s->open_first = r->index;
        }
        status_set(s, r->txid, TX_PENDING, 0, PM_REASON_NONE);
        atomic_fetch_add(&s->accepted, 1);
    }
}

static int journal_wait(serve *s, uint64_t upto);

static void on_block(void *data, const uint8_t *block, size_t size, uint64_t height,
                     const uint8_t hash[32])
{
    serve *s = data;
    if (journal_wait(s, pm_engine_block_last_index(s->engine) + 1) != 0)
        return;
    if (s->block_hook)
        s->block_hook(s, height, hash, pm_engine_block_last_index(s->engine));
    if (s->io_failed)
        return;
    if (journal_note_block(&s->journal, height, hash, pm_engine_block_last_index(s->engine)) != 0) {
        s->io_failed = errno ? errno : EIO;
        return;
    }
    /* Every record up to the block's last is decided: count its acceptances
     * before the block takes them out of the pending ones. */
    settle_upto(s, pm_engine_block_last_index(s->engine) + 1);
    if (append_block(s, block, size, height, hash) != 0)
        return;
    pm_block_header h;
    pm_block_header_decode(pm_context_static, &h, block);
    s->pending -= h.tx_count;
    s->open_since = pm_cli_now();
    /* What still waits comes after this block's last record. */
    s->open_first = pm_engine_block_last_index(s->engine) + 1;
    maybe_snapshot(s);
}

static void on_reject(void *data, uint64_t index, const uint8_t *txid, pm_reason reason)
{
    serve *s = data;
    if (!s->io_failed && index >= s->flight_first && index - s->flight_first < s->flight_n)
        s->flight[index - s->flight_first]->reason = reason;
    if (s->collecting) {
        if (s->n_dropped == s->cap_dropped) {
            size_t cap = s->cap_dropped ? 2 * s->cap_dropped : 64;
            serve_dropped *d = realloc(s->dropped, cap * sizeof *d);
            if (d)
                s->dropped = d, s->cap_dropped = cap;
        }
        if (s->n_dropped < s->cap_dropped) {
            serve_dropped *d = &s->dropped[s->n_dropped++];
            d->index = index;
            d->has_txid = txid != NULL;
            if (txid)
                memcpy(d->txid, txid, 32);
            d->reason = reason;
        }
        s->pending--;
    }
    journal_note_reject(&s->journal, index, txid, reason);
    if (txid)
        status_set(s, txid, TX_REJECTED, 0, reason);
    atomic_fetch_add(&s->rejected, 1);
    if ((unsigned)reason < PM_REASON_COUNT)
        atomic_fetch_add(&s->reasons[reason], 1);
}

/* ---- admission ----------------------------------------------------------- */

/* Append n records to the journal with one fdatasync (group commit).
 * Runs on the journal thread. Returns 0, or -1 (io_failed set). */
static int journal_batch(serve *s, serve_record **recs, size_t n)
{
    const uint8_t **bytes = malloc((n ? n : 1) * sizeof *bytes);
    size_t *sizes = malloc((n ? n : 1) * sizeof *sizes);
    int ok = bytes && sizes;
    for (size_t i = 0; ok && i < n; i++)
        bytes[i] = recs[i]->bytes, sizes[i] = recs[i]->size;
    double t0 = pm_cli_now();
    ok = ok && journal_append(&s->journal, bytes, sizes, n) == 0;
    metrics_observe(&s->fsync_hist, pm_cli_now() - t0);
    free(bytes);
    free(sizes);
    if (!ok && !s->io_failed)
        s->io_failed = errno ? errno : EIO;
    if (ok) { /* the group commits */
        atomic_fetch_add(&s->batches, 1);
        atomic_fetch_add(&s->batch_records, n);
    }
    return ok ? 0 : -1;
}

/* The committer keeps the engine's pipeline full instead of draining it
 * after each batch: records are submitted as they are queued and the
 * pipeline is stepped (pm_engine_step) every STEP_RECORDS records, so one
 * part is verified while the part before it is decided; a request is
 * settled as soon as the engine has decided its last record. When nothing
 * more is queued, the committer steps on until everything submitted is
 * decided. STEP_RECORDS is the engine's own batch size: smaller steps
 * (1024 was tried) cost more CPU in the verifier pool than they overlap. */
#define STEP_RECORDS 4096
#define STEP_TAIL 1024

/* A request is answered (done: its waiter may free it) once the engine
 * decided it and the journal thread synced it, whichever comes last.
 * Under queue_lock. */
static void item_finish_if_both(serve *s, serve_queue_item *it)
{
    if (!it->settled || !it->journaled)
        return;
    if (it->journaled < 0)
        it->status = PM_ERR_IO;
    it->done = 1;
    pthread_cond_broadcast(&s->done_cond);
}

static void item_settled(serve *s, serve_queue_item *it, pm_status st)
{
    it->status = st;
    it->settled = 1;
    item_finish_if_both(s, it);
}

/* Wait until the journal holds (synced) every record before index `upto`;
 * 0, or -1 when it never will (io_failed). Blocks and tip lines name
 * records by index: they must not get ahead of the records. */
static int journal_wait(serve *s, uint64_t upto)
{
    pthread_mutex_lock(&s->queue_lock);
    while (s->journaled < upto && !s->io_failed)
        pthread_cond_wait(&s->journal_cond, &s->queue_lock);
    pthread_mutex_unlock(&s->queue_lock);
    return s->io_failed ? -1 : 0;
}

/* Answer (mark settled) the in-flight requests whose records are all
 * decided, in order. */
static void complete_settled(serve *s, int all)
{
    serve_queue_item *done_to = s->fl_head;
    all = all || s->io_failed;
    while (done_to && (all || (done_to->n && done_to->recs[done_to->n - 1].index <
                                                 s->flight_first + s->flight_done) ||
                       (!done_to->n)))
        done_to = done_to->next;
    /* The first request still waiting hears how far it is decided: its
     * answer is built meanwhile (serve_ticket_wait). */
    serve_queue_item *partial = done_to ? done_to : s->submitting;
    uint64_t frontier = s->flight_first + s->flight_done;
    size_t decided = partial && partial->n && frontier > partial->recs[0].index
                         ? (size_t)(frontier - partial->recs[0].index)
                         : 0;
    if (decided > (partial ? partial->n : 0))
        decided = 0; /* not this request's records (defensive) */
    if (done_to == s->fl_head && !(partial && decided > partial->decided))
        return;
    pm_status st = s->io_failed ? PM_ERR_IO : PM_OK;
    pthread_mutex_lock(&s->queue_lock);
    for (serve_queue_item *it = s->fl_head, *next; it != done_to; it = next) {
        next = it->next;
        item_settled(s, it, st);
    }
    if (partial && decided > partial->decided) {
        partial->decided = decided;
        pthread_cond_broadcast(&s->done_cond);
    }
    pthread_mutex_unlock(&s->queue_lock);
    s->fl_head = done_to;
    if (!done_to)
        s->fl_tail = NULL;
}

/* One pipeline step; the records it decided are counted. Under
 * engine_lock. */
static pm_status step(serve *s)
{
    uint64_t settled;
    if (s->io_failed)
        return PM_ERR_IO;
    pm_status st = pm_engine_step(s->engine, &settled);
    if (st != PM_OK) {
        s->io_failed = EIO; /* out of memory in the engine: stop admitting */
        return PM_ERR_IO;
    }
    settle_upto(s, settled);
    complete_settled(s, 0);
    fflush(s->journal.rejects);
    if (s->flight_done == s->flight_n) /* nothing in flight: start over */
        s->flight_n = s->flight_done = 0, s->flight_first = s->batch_base;
    s->since_step = 0;
    return PM_OK;
}

/* Submit journaled records in index order (they get the next indexes),
 * stepping every STEP_RECORDS. Under engine_lock. */
static pm_status submit_records(serve *s, serve_record *const *recs, size_t n)
{
    if (s->io_failed)
        return PM_ERR_IO;
    if (s->flight_n + n > s->flight_cap) {
        size_t cap = s->flight_cap ? s->flight_cap : 4096;
        while (cap < s->flight_n + n)
            cap *= 2;
        serve_record **f = realloc(s->flight, cap * sizeof *f);
        if (!f)
            return PM_ERR_NOMEM;
        s->flight = f;
        s->flight_cap = cap;
    }
    if (s->flight_n == 0)
        s->flight_first = s->batch_base;
    for (size_t i = 0; i < n; i++) {
        recs[i]->index = s->batch_base + i;
        recs[i]->reason = PM_REASON_NONE;
        s->flight[s->flight_n + i] = recs[i];
    }
    s->flight_n += n;
    s->batch_base += n;
    pm_status st = PM_OK;
    for (size_t i = 0; i < n && st == PM_OK; i++) {
        st = pm_engine_submit(s->engine, recs[i]->bytes, recs[i]->size);
        /* The last STEP_TAIL records of a submission are a part of their
         * own: once nothing more is queued they are decided alone (the
         * verifiers idle), the smaller the sooner. */
        if (st == PM_OK && (++s->since_step >= STEP_RECORDS ||
                            (n - i - 1 == STEP_TAIL && s->since_step >= STEP_TAIL)))
            st = step(s);
    }
    if (st != PM_OK)
        s->io_failed = EIO;
    metrics_note_admitted(s, n);
    return st;
}

/* Step until everything submitted is decided (two steps at most). Under
 * engine_lock. */
static pm_status settle_all(serve *s)
{
    pm_status st = PM_OK;
    while (st == PM_OK && s->flight_done < s->flight_n)
        st = step(s);
    return st;
}

/* Submit and decide records already in the journal (a restart's replay,
 * before the committer starts). */
static pm_status admit_batch(serve *s, serve_record **recs, size_t n)
{
    pthread_mutex_lock(&s->engine_lock);
    pm_status st = submit_records(s, recs, n);
    if (st == PM_OK)
        st = settle_all(s);
    pthread_mutex_unlock(&s->engine_lock);
    return s->io_failed ? PM_ERR_IO : st;
}

static pm_status close_block(serve *s, int64_t *height)
{
    pthread_mutex_lock(&s->engine_lock);
    uint64_t before = serve_block_count(s);
    pm_status st = pm_engine_flush(s->engine);
    *height = serve_block_count(s) > before ? (int64_t)serve_block_count(s) - 1 : -1;
    s->open_since = pm_cli_now();
    pthread_mutex_unlock(&s->engine_lock);
    return st != PM_OK ? st : s->io_failed ? PM_ERR_IO : PM_OK;
}

/* The tip's journal line: a restart resumes at the next record, or at
 * the open block's first when transactions wait (they are checked again
 * on the new tip then, as the re-check did). */
static int note_tip(serve *s)
{
    uint8_t tip[32];
    int64_t height;
    pm_engine_tip(s->engine, tip, &height);
    uint64_t next = s->pending > 0 ? s->open_first : s->batch_base;
    if (journal_note_tip(&s->journal, height, tip, next) != 0) {
        s->io_failed = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

/* Remember a disconnected block (height, hash) and wake the SSE streams.
 * Under blocks_lock. Out of memory: streams do not hear of it (they still
 * send the block that replaces it). */
static void note_gone(serve *s, uint64_t height, const uint8_t hash[32])
{
    if (s->n_gone == s->cap_gone) {
        size_t cap = s->cap_gone ? 2 * s->cap_gone : 16;
        serve_block *g = realloc(s->gone, cap * sizeof *g);
        if (!g)
            return;
        s->gone = g;
        s->cap_gone = cap;
    }
    serve_block *g = &s->gone[s->n_gone++];
    g->offset = height;
    g->size = 0;
    memcpy(g->hash, hash, 32);
    pthread_cond_broadcast(&s->blocks_cond);
}

static void forget_tx(void *data, const uint8_t txid[32])
{
    status_set(data, txid, TX_GONE, 0, PM_REASON_NONE);
}

/* A peer's block on top of the tip, or the tip taken off (a
 * reorganisation). A peer's block is connected with the open block's
 * transactions taken out and checked again after it (the library's
 * mempool re-check); those it drops are collected for the answer. A
 * disconnection only while no accepted transaction waits (PM_ERR_STATE
 * otherwise: 409). A restart resumes on the new tip where the line
 * written before the chain file changes says. */
static pm_status chain_change(serve *s, serve_queue_item *it)
{
    pthread_mutex_lock(&s->engine_lock);
    pm_status st = PM_ERR_STATE;
    pm_reason unused;
    /* Settle what was submitted: pending counts its acceptances. */
    if (pm_engine_check_tx(s->engine, &unused, NULL, 0) != PM_OK ||
        (it->op != SERVE_CONNECT && s->pending > 0))
        goto out;
    if (it->op == SERVE_CONNECT) {
        const uint8_t *blocks[1] = {it->block};
        s->collecting = 1;
        s->n_dropped = 0;
        st = pm_engine_connect_blocks(s->engine, it->verdict, blocks, &it->block_size, 1, 0);
        s->collecting = 0;
        fflush(s->journal.rejects);
        it->dropped = s->dropped;
        it->n_dropped = s->n_dropped;
        s->dropped = NULL;
        s->n_dropped = s->cap_dropped = 0;
        if (st == PM_OK) {
            uint8_t hash[32];
            int64_t height;
            pm_engine_tip(s->engine, hash, &height);
            if (note_tip(s) != 0 ||
                append_block(s, it->block, it->block_size, (uint64_t)height, hash) != 0)
                st = PM_ERR_IO;
            else if (s->pending == 0)
                maybe_snapshot(s);
            it->height = height;
        }
    } else {
        uint64_t n = serve_block_count(s);
        uint8_t *bytes = NULL, hash[32];
        size_t size = 0;
        if (n == 0 || !serve_block_get(s, n - 1, &bytes, &size, hash))
            goto out;
        st = pm_engine_disconnect_tip(s->engine);
        if (st == PM_OK && note_tip(s) == 0) {
            pthread_rwlock_wrlock(&s->chain_lock);
            pthread_mutex_lock(&s->blocks_lock);
            uint64_t end = s->blocks[n - 1].offset - 4;
            int ok = ftruncate(s->chain_fd, (off_t)end) == 0 && fsync(s->chain_fd) == 0;
            if (ok) {
                s->chain_end = end;
                s->n_blocks--;
                note_gone(s, n - 1, hash);
            }
            pthread_mutex_unlock(&s->blocks_lock);
            pthread_rwlock_unlock(&s->chain_lock);
            if (!ok)
                s->io_failed = errno ? errno : EIO;
            else
                serve_each_txid(s, bytes, size, forget_tx, s);
        }
        if (st == PM_OK && s->io_failed)
            st = PM_ERR_IO;
        pm_engine_tip(s->engine, NULL, &it->height);
        free(bytes);
    }
out:
    pthread_mutex_unlock(&s->engine_lock);
    return st;
}

/* Settle one item now (it is not in flight). */
static void finish_item(serve *s, serve_queue_item *it, pm_status st)
{
    pthread_mutex_lock(&s->queue_lock);
    item_settled(s, it, st);
    pthread_mutex_unlock(&s->queue_lock);
}

/* Take what was queued, in order: submissions go to the journal thread
 * and, at the same time, into the pipeline (settled by complete_settled);
 * a flush or a change of the chain first waits until everything before it
 * is decided and in the journal. */
static void process(serve *s, serve_queue_item *list)
{
    pthread_mutex_lock(&s->queue_lock);
    for (serve_queue_item *it = list; it; it = it->next) {
        if (it->op != SERVE_TXS) {
            it->journaled = 1; /* nothing of it goes in the journal */
            continue;
        }
        it->jnext = NULL;
        if (s->jtail)
            s->jtail->jnext = it;
        else
            s->jhead = it;
        s->jtail = it;
    }
    pthread_cond_signal(&s->journal_cond);
    pthread_mutex_unlock(&s->queue_lock);
    for (serve_queue_item *it = list, *next; it; it = next) {
        next = it->next;
        it->next = NULL;
        pthread_mutex_lock(&s->engine_lock);
        if (it->op == SERVE_TXS) {
            serve_record **recs = malloc((it->n ? it->n : 1) * sizeof *recs);
            pm_status st = recs ? PM_OK : PM_ERR_NOMEM;
            for (size_t i = 0; st == PM_OK && i < it->n; i++)
                recs[i] = &it->recs[i];
            s->submitting = it; /* its progress is published as it is decided */
            if (st == PM_OK)
                st = submit_records(s, recs, it->n);
            s->submitting = NULL;
            free(recs);
            if (st == PM_OK) {
                if (s->fl_tail)
                    s->fl_tail->next = it;
                else
                    s->fl_head = it;
                s->fl_tail = it;
                complete_settled(s, 0);
            }
            pthread_mutex_unlock(&s->engine_lock);
            if (st != PM_OK)
                finish_item(s, it, st == PM_ERR_NOMEM ? st : PM_ERR_IO);
            continue;
        }
        pm_status st = settle_all(s);
        complete_settled(s, 1);
        pthread_mutex_unlock(&s->engine_lock);
        if (st == PM_OK && journal_wait(s, s->batch_base) != 0)
            st = PM_ERR_IO;
        if (st == PM_OK)
            st = it->op == SERVE_FLUSH ? close_block(s, &it->height) : chain_change(s, it);
        finish_item(s, it, st);
    }
}

/* Nothing new came out of the journal: decide what is in flight. */
static void advance(serve *s)
{
    pthread_mutex_lock(&s->engine_lock);
    if (step(s) != PM_OK)
        complete_settled(s, 1); /* answered 503: io_failed is set */
    else
        complete_settled(s, 0);
    pthread_mutex_unlock(&s->engine_lock);
}

/* The journal thread: append what the committer handed on (submissions
 * only, in index order) with one fdatasync for all of it (group commit),
 * beside the engine's validation of the same records; a request is
 * answered after both. Records reach the engine before the journal, so
 * whatever the engine writes that names a record by index (a block, a
 * tip line) first waits for the journal to hold it (journal_wait). */
static void journal_list(serve *s, serve_queue_item *list)
{
    size_t n = 0;
    for (serve_queue_item *it = list; it; it = it->jnext)
        n += it->n;
    serve_record **recs = n && !s->io_failed ? malloc(n * sizeof *recs) : NULL;
    int ok = !n || recs != NULL;
    if (recs) {
        size_t k = 0;
        for (serve_queue_item *it = list; it; it = it->jnext)
            for (size_t i = 0; i < it->n; i++)
                recs[k++] = &it->recs[i];
        ok = journal_batch(s, recs, n) == 0;
        free(recs);
    } else if (n && !s->io_failed) {
        s->io_failed = ENOMEM;
    }
    pthread_mutex_lock(&s->queue_lock);
    if (ok)
        s->journaled += n;
    for (serve_queue_item *it = list, *next; it; it = next) {
        next = it->jnext; /* it may be answered, and gone, below */
        it->journaled = ok ? 1 : -1;
        item_finish_if_both(s, it);
    }
    pthread_cond_broadcast(&s->journal_cond);
    pthread_cond_broadcast(&s->done_cond); /* streamed answers: more is synced */
    pthread_mutex_unlock(&s->queue_lock);
}

static void *journaler(void *arg)
{
    serve *s = arg;
    pthread_mutex_lock(&s->queue_lock);
    for (;;) {
        while (!s->jhead && !s->journal_stop)
            pthread_cond_wait(&s->journal_cond, &s->queue_lock);
        serve_queue_item *list = s->jhead;
        s->jhead = s->jtail = NULL;
        if (!list && s->journal_stop)
            break;
        pthread_mutex_unlock(&s->queue_lock);
        journal_list(s, list);
        pthread_mutex_lock(&s->queue_lock);
    }
    pthread_mutex_unlock(&s->queue_lock);
    return NULL;
}

static void *committer(void *arg)
{
    serve *s = arg;
    pthread_mutex_lock(&s->queue_lock);
    for (;;) {
        while (!s->head && !s->stopping && !s->fl_head) {
            if (s->opts.interval_ms && s->pending > 0) {
                double due = s->open_since + (double)s->opts.interval_ms / 1000.0;
                if (pm_cli_now() >= due)
                    break;
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                double wait = due - pm_cli_now() + 0.001;
                until.tv_sec += (time_t)wait;
                until.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
                if (until.tv_nsec >= 1000000000L) {
                    until.tv_sec++;
                    until.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&s->queue_cond, &s->queue_lock, &until);
            } else {
                pthread_cond_wait(&s->queue_cond, &s->queue_lock);
            }
        }
        serve_queue_item *list = s->head;
        s->head = s->tail = NULL;
        int done = s->stopping;
        pthread_mutex_unlock(&s->queue_lock);
        if (list)
            process(s, list);
        else if (s->fl_head)
            advance(s);
        if (s->opts.interval_ms && s->pending > 0 &&
            (pm_cli_now() - s->open_since) * 1000.0 >= (double)s->opts.interval_ms) {
            int64_t h;
            close_block(s, &h);
        }
        pthread_mutex_lock(&s->queue_lock);
        if (done && !s->head && !s->fl_head)
            break;
    }
    pthread_mutex_unlock(&s->queue_lock);
    return NULL;
}

/* Queue an item for the committer: its place in the journal's order is
 * fixed from here. Returns with queue_lock held on PM_OK; PM_ERR_STATE
 * (not queued) when the service stops. */
static pm_status item_enqueue(serve *s, serve_queue_item *item)
{
    pthread_mutex_lock(&s->queue_lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->queue_lock);
        return PM_ERR_STATE;
    }
    if (s->tail)
        s->tail->next = item;
    else
        s->head = item;
    s->tail = item;
    pthread_cond_signal(&s->queue_cond);
    return PM_OK;
}

/* Queue an item for the committer and wait until it is done. */
static pm_status run_item(serve *s, serve_queue_item *item)
{
    double t0 = pm_cli_now();
    if (item_enqueue(s, item) != PM_OK)
        return PM_ERR_STATE;
    while (!item->done)
        pthread_cond_wait(&s->done_cond, &s->queue_lock);
    pthread_mutex_unlock(&s->queue_lock);
    metrics_observe(&s->admit_hist, pm_cli_now() - t0);
    return item->status;
}

pm_status serve_admit(serve *s, serve_record *recs, size_t n, int64_t *flush_height)
{
    if (s->admit_hook)
        return s->admit_hook(s, recs, n, flush_height);
    return serve_admit_local(s, recs, n, flush_height);
}

pm_status serve_admit_local(serve *s, serve_record *recs, size_t n, int64_t *flush_height)
{
    serve_queue_item item = {.op = flush_height ? SERVE_FLUSH : SERVE_TXS, .recs = recs, .n = n};
    pm_status st = run_item(s, &item);
    if (flush_height)
        *flush_height = item.height;
    return st;
}

struct serve_ticket {
    serve_queue_item item;
    double started;
};

pm_status serve_admit_start(serve *s, serve_record *recs, size_t n, serve_ticket **ticket)
{
    serve_ticket *t = calloc(1, sizeof *t);
    if (!t)
        return PM_ERR_NOMEM;
    t->item = (serve_queue_item){.op = SERVE_TXS, .recs = recs, .n = n};
    t->started = pm_cli_now();
    if (item_enqueue(s, &t->item) != PM_OK) {
        free(t);
        return PM_ERR_STATE;
    }
    pthread_mutex_unlock(&s->queue_lock);
    *ticket = t;
    return PM_OK;
}

int serve_ticket_wait(serve *s, serve_ticket *t, size_t from, size_t *upto, pm_status *status)
{
    serve_queue_item *it = &t->item;
    pthread_mutex_lock(&s->queue_lock);
    for (;;) {
        if (it->done) {
            *status = it->status;
            *upto = it->status == PM_OK ? it->n : from;
            pthread_mutex_unlock(&s->queue_lock);
            return 0;
        }
        /* Final: decided by the engine and synced in the journal (whose
         * records are in index order). */
        size_t final = it->settled ? it->n : it->decided;
        if (final > from && it->journaled == 0) {
            /* Its indexes are assigned: the committer did so before it
             * published any progress under queue_lock. */
            uint64_t first = it->recs[0].index;
            size_t synced = s->journaled > first ? (size_t)(s->journaled - first) : 0;
            if (final > synced)
                final = synced;
        }
        if (final > from) {
            *upto = final;
            pthread_mutex_unlock(&s->queue_lock);
            return 1;
        }
        pthread_cond_wait(&s->done_cond, &s->queue_lock);
    }
}

void serve_ticket_finish(serve *s, serve_ticket *t)
{
    pthread_mutex_lock(&s->queue_lock);
    while (!t->item.done)
        pthread_cond_wait(&s->done_cond, &s->queue_lock);
    pthread_mutex_unlock(&s->queue_lock);
    metrics_observe(&s->admit_hist, pm_cli_now() - t->started);
    free(t);
}

pm_status serve_connect(serve *s, pm_verdict *verdict, const uint8_t *block, size_t size,
                        int64_t *height, serve_dropped **dropped, size_t *n)
{
    serve_queue_item item = {.op = SERVE_CONNECT, .block = block, .block_size = size,
                             .verdict = verdict};
    pm_status st = run_item(s, &item);
    *height = item.height;
    *dropped = item.dropped;
    *n = item.n_dropped;
    return st;
}

pm_status serve_disconnect(serve *s, int64_t *height)
{
    serve_queue_item item = {.op = SERVE_DISCONNECT};
    pm_status st = run_item(s, &item);
    *height = item.height;
    return st;
}

/* ---- start and stop ------------------------------------------------------ */

/* The chain's header: the file's own, or made from --init's. */
static int chain_header(serve *s, struct stat *st)
{
    const char *chain = s->opts.chain_path, *init = s->opts.init_path;
    pm_chain_params init_params;
    if (init) {
        uint8_t h[PM_FILE_HEADER_SIZE];
        pm_file_kind kind;
        int fd = open(init, O_RDONLY | O_CLOEXEC);
        ssize_t got = fd >= 0 ? read(fd, h, sizeof h) : -1;
        if (fd >= 0)
            close(fd);
        if (got < 0) {
            pm_cli_error("serve", "%s: %s", init, strerror(errno));
            return -1;
        }
        if (!pm_file_header_parse(pm_context_static, &kind, &init_params, NULL, h, (size_t)got) ||
            kind != PM_FILE_STREAM) {
            pm_cli_error("serve", "%s: record 0 at byte 0: BAD_HEADER (not a transaction stream)",
                         init);
            return -1;
        }
    }
    if (st->st_size == 0) {
        if (!init) {
            pm_cli_error("serve", "%s is empty: give --init STREAM to make its header", chain);
            return -1;
        }
        uint8_t h[PM_FILE_HEADER_SIZE];
        pm_file_header_encode(pm_context_static, h, PM_FILE_CHAIN, &init_params);
        if (pwrite(s->chain_fd, h, sizeof h, 0) != (ssize_t)sizeof h || fsync(s->chain_fd) != 0) {
            pm_cli_error("serve", "%s: %s", chain, strerror(errno));
            return -1;
        }
        s->params = init_params;
        return 0;
    }
    uint8_t h[PM_FILE_HEADER_SIZE];
    pm_file_kind kind;
    ssize_t got = pread(s->chain_fd, h, sizeof h, 0);
    if (got < 0 || !pm_file_header_parse(pm_context_static, &kind, &s->params, NULL, h, (size_t)got) ||
        kind != PM_FILE_CHAIN) {
        pm_cli_error("serve", "%s: record 0 at byte 0: BAD_HEADER (not a chain)", chain);
        return -1;
    }
    if (init && memcmp(&init_params, &s->params, sizeof s->params) != 0) {
        pm_cli_error("serve", "%s and %s belong to different chains (header bytes 8..59 differ)",
                     init, chain);
        return -1;
    }
    return 0;
}

/* Validate the chain into the engine, cutting a partial last block. */
static int chain_validate(serve *s)
{
    const char *chain = s->opts.chain_path;
    pm_input in;
    char err[512];
    if (pm_input_open(&in, chain, PM_INPUT_CHAIN, 0, s->opts.quiet, NULL, err, sizeof err) != 0) {
        pm_cli_error("serve", "%s", err);
        return -1;
    }
    pm_verify_opts vo = {.progress = s->opts.quiet ? NULL : "serve (validating the chain)"};
    /* From a snapshot: the blocks up to its tip are read, not validated. */
    uint8_t snap_tip[32];
    int64_t snap_height;
    pm_engine_tip(s->engine, snap_tip, &snap_height);
    if (s->opts.from_snapshot && snap_height >= 0) {
        vo.start = (uint64_t)snap_height + 1;
        vo.start_parent = snap_tip;
    }
    pm_chain_result r;
    pm_status vs = pm_chain_verify(s->engine, &in, &vo, &r, err, sizeof err);
    pm_input_close(&in);
    if (vs != PM_OK) {
        pm_cli_error("serve", "%s: %s", chain, vs == PM_ERR_IO ? err : pm_status_text(vs));
        return -1;
    }
    if (!r.valid && !r.truncated) {
        pm_cli_error("serve", "%s: block %llu at byte %llu: invalid chain: %s", chain,
                     (unsigned long long)r.verdict.block, (unsigned long long)r.offset,
                     pm_reason_name(r.verdict.reason));
        return -1;
    }
    if (r.truncated) {
        if (ftruncate(s->chain_fd, (off_t)r.truncated_offset) != 0 || fsync(s->chain_fd) != 0) {
            pm_cli_error("serve", "%s: cannot cut the partial block: %s", chain, strerror(errno));
            return -1;
        }
        fprintf(stderr, "postmark serve: %s: cut a partial block at byte %llu left by an interrupted run\n",
                chain, (unsigned long long)r.truncated_offset);
    }
    return 0;
}

/* Where the chain's blocks are, and the state of their transactions. */
static int chain_index(serve *s)
{
    pm_recfile *rf;
    pm_recfile_header hdr;
    char err[256];
    if (pm_recfile_open(&rf, &hdr, err, sizeof err, s->opts.chain_path, PM_BLOCK_MAX_SIZE) != PM_OK) {
        pm_cli_error("serve", "%s", err);
        return -1;
    }
    pm_recfile_record rec;
    s->chain_end = PM_FILE_HEADER_SIZE;
    while (pm_recfile_next(rf, &rec, err, sizeof err) == 1 && !rec.truncated && rec.bytes &&
           rec.size >= PM_BLOCK_HEADER_SIZE) {
        uint8_t hash[32];
        pm_block_hash(s->ctx, hash, rec.bytes);
        blocks_push(s, rec.offset + 4, (uint32_t)rec.size, hash);
        note_block_txs(s, rec.bytes, rec.size, rec.index);
        s->chain_end = rec.offset + 4 + rec.size;
    }
    pm_recfile_close(rf);
    return 0;
}

static void load_reject(void *data, uint64_t index, const uint8_t *txid, pm_reason reason)
{
    serve *s = data;
    (void)index;
    if (txid)
        status_set(s, txid, TX_REJECTED, 0, reason);
}

/* Re-admission of the journal's records after the chain's tip, in chunks
 * (the engine copies what it is given). */
typedef struct {
    serve *s;
    serve_record recs[1024];
    serve_record *ptrs[1024];
    uint8_t *copies[1024];
    size_t n;
} replay_chunk;

static int replay_flush(replay_chunk *c)
{
    pm_status st = admit_batch(c->s, c->ptrs, c->n);
    for (size_t i = 0; i < c->n; i++)
        free(c->copies[i]);
    c->n = 0;
    return st == PM_OK ? 0 : -1;
}

static int replay_one(void *data, uint64_t index, const uint8_t *bytes, size_t size)
{
    replay_chunk *c = data;
    (void)index;
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return -1;
    if (size)
        memcpy(copy, bytes, size);
    c->copies[c->n] = copy;
    serve_record_prepare(c->s, &c->recs[c->n], copy, size);
    c->ptrs[c->n] = &c->recs[c->n];
    return ++c->n == 1024 ? replay_flush(c) : 0;
}

int service_open(serve *s, const serve_opts *opts)
{
    memset(s, 0, sizeof *s);
    s->opts = *opts;
    s->token = opts->token;
    s->chain_fd = -1;
    s->journal.fd = s->journal.blocks_fd = -1;
    s->started = pm_cli_now();
    pthread_mutex_init(&s->engine_lock, NULL);
    pthread_mutex_init(&s->queue_lock, NULL);
    pthread_mutex_init(&s->blocks_lock, NULL);
    pthread_mutex_init(&s->status_lock, NULL);
    if (getrandom(&s->status_seed, sizeof s->status_seed, 0) != sizeof s->status_seed)
        s->status_seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32; /* no entropy: still varies */
    pthread_cond_init(&s->queue_cond, NULL);
    pthread_cond_init(&s->done_cond, NULL);
    pthread_cond_init(&s->journal_cond, NULL);
    pthread_cond_init(&s->blocks_cond, NULL);
    pthread_rwlock_init(&s->chain_lock, NULL);

    const char *chain = opts->chain_path;
    if (opts->nats && cluster_node_attach(s) != 0)
        return -1;
    s->ctx = pm_context_create();
    if (!s->ctx) {
        pm_cli_error("serve", "out of memory");
        return -1;
    }
    s->chain_fd = open(chain, O_RDWR | O_CLOEXEC | (opts->init_path ? O_CREAT : 0), 0644);
    struct stat st;
    if (s->chain_fd < 0 || fstat(s->chain_fd, &st) != 0) {
        pm_cli_error("serve", "%s: %s", chain, strerror(errno));
        return -1;
    }
    if (flock(s->chain_fd, LOCK_EX | LOCK_NB) != 0) {
        pm_cli_error("serve", "%s: another process is appending to this chain (locked)", chain);
        return -1;
    }
    if (chain_header(s, &st) != 0)
        return -1;
    pm_config cfg;
    pm_config_default(pm_context_static, &cfg);
    cfg.threads = opts->threads;
    cfg.block_max_txs = opts->block_txs;
    s->chain_had_blocks = st.st_size > 0;
    /* A snapshot is loaded by service_load, while requests get 503. */
    if (!opts->from_snapshot && pm_engine_create(&s->engine, s->ctx, &s->params, &cfg) != PM_OK) {
        pm_cli_error("serve", "cannot create the engine (out of memory)");
        return -1;
    }
    return 0;
}

int service_load(serve *s)
{
    const serve_opts *opts = &s->opts;
    if (opts->from_snapshot) {
        pm_config cfg;
        pm_config_default(pm_context_static, &cfg);
        cfg.threads = opts->threads;
        cfg.block_max_txs = opts->block_txs;
        char why[400];
        pm_status cs = pm_engine_create_from_snapshot(&s->engine, s->ctx, &s->params, &cfg,
                                                      opts->from_snapshot, why, sizeof why);
        if (cs != PM_OK) {
            pm_cli_error("serve", "%s: %s", opts->from_snapshot,
                         cs == PM_ERR_MISMATCH ? "a snapshot of another chain (network or "
                                                 "governance key differs)" : why);
            return -1;
        }
        int64_t h;
        pm_engine_tip(s->engine, NULL, &h);
        if (h >= 0 && !s->chain_had_blocks) {
            pm_cli_error("serve", "%s: %s: snapshot tip is not in this chain (it is empty)",
                         opts->from_snapshot, opts->chain_path);
            return -1;
        }
    }
    if ((s->chain_had_blocks && chain_validate(s) != 0) || chain_index(s) != 0)
        return -1;
    if (s->cluster && cluster_node_prepare(s) != 0)
        return -1;

    uint8_t tip[32];
    int64_t height;
    uint64_t resume_at;
    char err[512];
    pm_engine_tip(s->engine, tip, &height);
    if (journal_open(&s->journal, opts->journal_path, &s->params, height, tip, &resume_at, err,
                     sizeof err) != 0) {
        pm_cli_error("serve", "%s", err);
        return -1;
    }
    s->journaled = s->journal.records; /* the replay below writes none */
    journal_each_reject(&s->journal, load_reject, s);
    pm_engine_set_callbacks(s->engine, on_block, on_reject, s);
    if (pm_engine_skip_records(s->engine, resume_at) != PM_OK)
        return -1;
    s->batch_base = resume_at;
    if (resume_at < s->journal.records) {
        replay_chunk *c = calloc(1, sizeof *c);
        int rc = c ? 0 : -1;
        if (c) {
            c->s = s;
            rc = journal_each(&s->journal, resume_at, replay_one, c, err, sizeof err);
            if (rc == 0 && c->n)
                rc = replay_flush(c);
            for (size_t i = 0; i < c->n; i++)
                free(c->copies[i]);
            free(c);
        }
        if (rc != 0) {
            pm_cli_error("serve", "%s: cannot resume: %s", opts->journal_path,
                         s->io_failed ? strerror(s->io_failed) : err);
            return -1;
        }
        if (!opts->quiet)
            fprintf(stderr, "postmark serve: %s: resumed records %llu..%llu after the chain's tip\n",
                    opts->journal_path, (unsigned long long)resume_at,
                    (unsigned long long)s->journal.records - 1);
    }
    if (pthread_create(&s->journaler, NULL, journaler, s) != 0) {
        pm_cli_error("serve", "cannot start a thread");
        return -1;
    }
    if (pthread_create(&s->committer, NULL, committer, s) != 0) {
        pm_cli_error("serve", "cannot start a thread");
        return -1; /* service_stop ends the journal thread */
    }
    if (s->cluster && cluster_node_start(s) != 0)
        return -1;
    atomic_store(&s->ready, 1);
    return 0;
}

int service_stop(serve *s)
{
    int rc = 0;
    if (s->cluster)
        cluster_node_stop(s);
    if (s->committer) {
        pthread_mutex_lock(&s->queue_lock);
        s->stopping = 1;
        pthread_cond_broadcast(&s->queue_cond);
        pthread_mutex_unlock(&s->queue_lock);
        pthread_join(s->committer, NULL);
    }
    if (s->journaler) {
        /* After the committer: it hands the journal thread its last records. */
        pthread_mutex_lock(&s->queue_lock);
        s->journal_stop = 1;
        pthread_cond_broadcast(&s->journal_cond);
        pthread_mutex_unlock(&s->queue_lock);
        pthread_join(s->journaler, NULL);
    }
    if (s->committer) {
        int64_t h;
        /* A node drops its open block: only cuts in the stream close
         * blocks, and a restart reads those records again. */
        if ((!s->cluster && close_block(s, &h) != PM_OK) || fsync(s->chain_fd) != 0) {
            pm_cli_error("serve", "%s: cannot close the open block: %s", s->opts.chain_path,
                         s->io_failed ? strerror(s->io_failed) : pm_engine_last_error(s->engine));
            rc = -1;
        }
    }
    serve_close_streams(s);
    pm_engine_destroy(s->engine);
    pm_context_destroy(s->ctx);
    journal_close(&s->journal);
    if (s->chain_fd >= 0)
        close(s->chain_fd);
    free(s->blocks);
    free(s->gone);
    free(s->status);
    hmap_free(&s->status_index);
    free(s->flight);
    return rc;
}
