/*
 * serve.h — `postmark serve`: the engine kept in memory behind HTTP/JSON
 * (../shared/spec/serve.md). One file per concern:
 *   service.c  the admission core: the one thread that owns the engine,
 *              group commit of the journal, verdicts, blocks out, status;
 *              serve_admit() is the one function that turns a request
 *              into a call on the engine
 *   journal.c  the files: the journal (a stream file, protocol §2), the
 *              block index beside it (where a restart resumes), rejects
 *   routes.c   the route table and the handlers (JSON with jansson)
 *   decode.c   reading requests: routes, path arguments, bodies (fuzzed)
 *   http.c     libmicrohttpd: limits, auth, bodies, replies, SSE
 *   metrics.c  counters and the Prometheus text format
 *   explorer.c the HTML page for people: tip, blocks, rejects, throughput,
 *              a stamp's provenance, a key's holdings
 * tools/cmd_serve.c parses the options and calls serve_run().
 */
#ifndef PM_TOOLS_SERVE_H
#define PM_TOOLS_SERVE_H

#include "hmap.h"
#include "postmark.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    const char *chain_path, *init_path, *listen, *journal_path;
    const char *token;           /* --token-file's token, or NULL */
    const char *tls_cert, *tls_key; /* PEM texts (--tls-cert, --tls-key), or NULL */
    unsigned threads;
    uint32_t block_txs;
    uint64_t interval_ms;        /* 0: blocks close only when full or flushed */
    size_t max_body;             /* bytes of a request body */
    unsigned max_connections;
    unsigned timeout_s;          /* idle connection timeout (slowloris) */
    unsigned request_timeout_s;  /* a whole request, first line to last byte */
    const char *from_snapshot;   /* start from this state (the chain holds its tip) */
    const char *save_snapshot;   /* with snapshot_every: saved every N blocks */
    uint64_t snapshot_every;
    int quiet;
    /* Cluster mode (tools/cluster/follow.c): the stream is the journal. */
    const char *nats, *stream, *node;
    int64_t dup_ms;
} serve_opts;

/* ---- journal.c ---------------------------------------------------------- */

/* The journal: a stream file holding every admitted record, in index order,
 * plus JOURNAL.blocks ("start H" once, then "block H HASH LAST_INDEX" synced
 * before each block is appended to the chain) and JOURNAL.rejects.csv (as
 * `pack --rejects` writes it, synced before each block). */
typedef struct {
    int fd, blocks_fd;
    FILE *rejects;
    char *path, *blocks_path, *rejects_path;
    uint64_t records;            /* records in the journal (next index) */
} serve_journal;

/* Open or create the journal of the chain `params` whose validated tip is
 * (tip_height, tip_hash); cut a partial last record; find where the chain
 * ends in it (*resume_at: the first record whose verdict is not in the
 * chain's blocks). Returns 0, or -1 with a message in err. */
int journal_open(serve_journal *j, const char *path, const pm_chain_params *params,
                 int64_t tip_height, const uint8_t tip_hash[32], uint64_t *resume_at, char *err,
                 size_t errlen);
/* Append n records (u32 length + bytes each) and fdatasync once. */
int journal_append(serve_journal *j, const uint8_t *const *recs, const size_t *sizes, size_t n);
/* The line for a block about to be appended, synced, after the rejects. */
int journal_note_block(serve_journal *j, uint64_t height, const uint8_t hash[32],
                       uint64_t last_index);
void journal_note_reject(serve_journal *j, uint64_t index, const uint8_t *txid, pm_reason reason);
/* The line for a tip set by a peer's block or a disconnection: at tip
 * (height, hash), the next record is `next` (synced, after the rejects). */
int journal_note_tip(serve_journal *j, int64_t height, const uint8_t hash[32], uint64_t next);
void journal_close(serve_journal *j);
/* Call fn for every record of the journal from index `from` on (the bytes
 * are valid during the call). Returns 0, or -1 with a message in err. */
int journal_each(const serve_journal *j, uint64_t from,
                 int (*fn)(void *data, uint64_t index, const uint8_t *bytes, size_t size),
                 void *data, char *err, size_t errlen);
/* Call fn for every line of JOURNAL.rejects.csv. */
void journal_each_reject(const serve_journal *j,
                         void (*fn)(void *data, uint64_t index, const uint8_t *txid, pm_reason r),
                         void *data);

/* ---- metrics.c ---------------------------------------------------------- */

#define SERVE_HIST_BUCKETS 12
#define SERVE_RATE_SLOTS 60
#define SERVE_RATE_SLOT 5
typedef struct {
    _Atomic uint64_t count, buckets[SERVE_HIST_BUCKETS];
    _Atomic uint64_t sum_ns;
} serve_histogram;

void metrics_observe(serve_histogram *h, double seconds);

/* ---- service.c ---------------------------------------------------------- */

/* TX_GONE: was in a block that was disconnected (answered as unknown). */
typedef enum { TX_UNKNOWN = 0, TX_PENDING, TX_BLOCK, TX_REJECTED, TX_GONE } serve_tx_state;

#define SERVE_INDEX_UNKNOWN UINT64_MAX
/* One record of a request: in, then the verdict out. */
typedef struct {
    const uint8_t *bytes;
    size_t size;
    int has_txid;                /* it parses (else MALFORMED) */
    uint8_t txid[32];
    uint64_t index;              /* out: its journal index (SERVE_INDEX_UNKNOWN: not
                                    known, the answer omits it) */
    pm_reason reason;            /* out: PM_REASON_NONE when accepted */
    uint64_t seq;                /* out, cluster mode: its stream sequence (0: none) */
} serve_record;

/* An accepted transaction dropped from the open block by a peer's block. */
typedef struct {
    uint64_t index;
    int has_txid;
    uint8_t txid[32];
    pm_reason reason;
} serve_dropped;

typedef struct serve_block serve_block;
typedef struct serve_status serve_status;
typedef struct serve_queue_item serve_queue_item;

typedef struct serve {
    serve_opts opts;
    pm_context *ctx;
    pm_engine *engine;
    pm_chain_params params;
    int chain_fd;
    serve_journal journal;

    /* The engine and everything the committer changes with it. */
    pthread_mutex_t engine_lock;
    int64_t pending;             /* accepted, not yet in a block */
    double open_since;           /* when the open block got its first tx */
    uint64_t batch_base;         /* records submitted to the engine: the
                                    next record's index */
    /* Records submitted and not yet counted as decided: flight[i] has
     * index flight_first + i; the first flight_done are counted. The
     * requests they belong to, in order, wait in fl_head..fl_tail. */
    serve_record **flight;
    size_t flight_n, flight_done, flight_cap, since_step;
    uint64_t flight_first;
    serve_queue_item *fl_head, *fl_tail;
    serve_queue_item *submitting; /* being submitted (not yet in fl_head..) */
    _Atomic int io_failed;       /* a write or sync failed: no more admission
                                    (set by the journal thread too) */
    uint64_t open_first;         /* no later than the open block's first
                                    record (valid while pending > 0) */
    /* A peer's block being connected: the waiting transactions the
     * re-check drops (on_reject adds them), for its answer. */
    serve_dropped *dropped;
    size_t n_dropped, cap_dropped;
    int collecting;

    /* Requests go HTTP thread -> committer (head) -> journal thread
     * (jhead, while the committer validates them). Both queues, stopping,
     * journal_stop and journaled are under queue_lock. */
    pthread_mutex_t queue_lock;
    pthread_cond_t queue_cond, journal_cond, done_cond;
    serve_queue_item *head, *tail, *jhead, *jtail;
    int stopping, journal_stop;
    uint64_t journaled;          /* records in the journal, synced */
    pthread_t committer, journaler;

    /* Blocks of the chain file (height = position), for GET and SSE. */
    pthread_mutex_t blocks_lock;
    pthread_cond_t blocks_cond;
    serve_block *blocks;
    size_t n_blocks, cap_blocks;
    /* Every block disconnected since the start, in order (SSE streams
     * that sent one tell their consumer). */
    serve_block *gone;
    size_t n_gone, cap_gone;
    uint64_t chain_end;          /* file size: where the next block goes */
    pthread_rwlock_t chain_lock; /* appends vs. whole-file scans (trace) */
    _Atomic int closing;         /* shutdown: SSE streams end */

    /* txid -> state. */
    pthread_mutex_t status_lock;
    serve_status *status;        /* dense; status_index maps txids to it */
    size_t status_cap, status_n;
    hmap status_index;
    uint64_t status_seed;

    const char *token;           /* opts.token */

    /* Metrics (metrics.c reads them). */
    _Atomic uint64_t accepted, rejected, reasons[PM_REASON_COUNT], batches, batch_records;
    serve_histogram fsync_hist, admit_hist;
    /* Records admitted per SERVE_RATE_SLOT seconds, the last few minutes
     * (the explorer's chart): slot i counts second-range rate_when[i]. */
    _Atomic uint64_t rate[SERVE_RATE_SLOTS];
    _Atomic int64_t rate_when[SERVE_RATE_SLOTS];
    double started;
    int chain_had_blocks;        /* service_open found a non-empty chain */
    uint64_t blocks_added;       /* since the start (--snapshot-every) */
    int snapshot_failed;         /* said once */
    _Atomic int ready;           /* service_load is done: requests are served */

    /* Cluster mode (tools/cluster/follow.c; NULL standalone): requests
     * are published to the stream, and a follower feeds what the stream
     * orders to serve_admit_local. block_hook runs on the committer for
     * each block before its journal line. */
    struct cluster_node *cluster;
    pm_status (*admit_hook)(struct serve *s, serve_record *recs, size_t n, int64_t *flush_height);
    void (*block_hook)(struct serve *s, uint64_t height, const uint8_t hash[32], uint64_t last);
} serve;

struct serve_block {
    uint64_t offset;             /* of the block's bytes (after its length);
                                    in `gone`: its height */
    uint32_t size;
    uint8_t hash[32];
};

/* Open the chain (its header checked or made) and create the engine: the
 * quick part of a start, done before listening. Returns 0, or -1 (message
 * printed). */
int service_open(serve *s, const serve_opts *opts);
/* The slow part, done while already listening (requests get 503
 * "starting" until s->ready): validate the chain, open and resume the
 * journal, start the committer, then set s->ready. Returns 0, or -1. */
int service_load(serve *s);
/* Stop admitting, close and sync the open block, free everything. */
int service_stop(serve *s);

/* The one function that turns a request into a call on the engine: give
 * the records the next journal indexes, journal them (synced) and validate
 * them as pack does, waiting for the verdicts (group commit with whatever
 * else is queued). flush_height: NULL for a submission; else the records
 * are none and the open block is closed (*flush_height its height, or -1).
 * Returns PM_OK, or an error (the service cannot write: 503). */
pm_status serve_admit(serve *s, serve_record *recs, size_t n, int64_t *flush_height);
/* serve_admit without the cluster's admit_hook: the follower's way in. */
pm_status serve_admit_local(serve *s, serve_record *recs, size_t n, int64_t *flush_height);

/* A submission admitted without waiting: its records' place in the
 * journal is fixed when serve_admit_start returns PM_OK (PM_ERR_STATE: the
 * service stops; PM_ERR_NOMEM), so a client may send its next submission
 * then (POST /v1/txs?stream=1), and its answer can be built while the
 * engine decides the rest (serve_ticket_wait). recs (and the bytes they point to) must
 * stay until serve_ticket_finish. Standalone only (not in cluster mode). */
typedef struct serve_ticket serve_ticket;
pm_status serve_admit_start(serve *s, serve_record *recs, size_t n, serve_ticket **ticket);
/* Wait until more than `from` of the ticket's records are final (decided
 * and synced): returns 1 with *upto the count final; or 0 once it is done,
 * with *status (PM_OK: all n final; otherwise nothing more is). */
int serve_ticket_wait(serve *s, serve_ticket *t, size_t from, size_t *upto, pm_status *status);
/* Wait until it is done and free it. */
void serve_ticket_finish(serve *s, serve_ticket *t);

/* Cluster mode (tools/cluster/follow.c; stubs when built without libnats):
 * attach reads the options; prepare runs after the chain is validated and
 * before the journal is opened (the resume check, the journal cut back to
 * the tip); start after the committer runs; stop before it stops. */
int cluster_node_attach(serve *s);
int cluster_node_prepare(serve *s);
int cluster_node_start(serve *s);
void cluster_node_stop(serve *s);
/* After service_stop: frees the node (its connection, publisher and
 * tables). Returns 1 when the node stopped on a rewind, gap or
 * divergence, else 0. */
int cluster_node_release(serve *s);
/* The cluster's lines of /metrics (postmark_cluster_seq, _agree, ...). */
void cluster_node_metrics(const serve *s, FILE *f);

/* Call fn with the txid of every transaction of a block (in order). */
void serve_each_txid(const serve *s, const uint8_t *block, size_t size,
                     void (*fn)(void *data, const uint8_t txid[32]), void *data);

/* A peer's block connected on top of the tip (appended to the chain), or
 * the tip disconnected (cut from it): both between two batches. A connect
 * takes the open block's transactions out and checks them again on the
 * new tip (as pm_engine_connect_blocks does): *dropped (malloc'ed, *n of
 * them) are those it rejected, the others still wait. A disconnection
 * needs an empty open block. Returns PM_OK (*height: the new tip),
 * PM_ERR_INVALID (*verdict says why), PM_ERR_STATE (a disconnection while
 * transactions are pending, or nothing to disconnect: 409), PM_ERR_IO. */
pm_status serve_connect(serve *s, pm_verdict *verdict, const uint8_t *block, size_t size,
                        int64_t *height, serve_dropped **dropped, size_t *n);
pm_status serve_disconnect(serve *s, int64_t *height);

/* Parse a record enough to name it (txid), outside any lock. */
void serve_record_prepare(const serve *s, serve_record *r, const uint8_t *bytes, size_t size);

serve_tx_state serve_tx_lookup(serve *s, const uint8_t txid[32], uint64_t *height,
                               pm_reason *reason);
/* Copy of block h's bytes (malloc'ed) and hash; 0 when there is no such
 * block. */
int serve_block_get(serve *s, uint64_t h, uint8_t **bytes, size_t *size, uint8_t hash[32]);
/* Wait until block h exists, a block is disconnected (more than `gone`
 * so far), or the service is closing, at most ms. Returns 1 when block h
 * exists. */
int serve_block_wait(serve *s, uint64_t h, size_t gone, unsigned ms);
/* The i-th block disconnected since the start: its height and hash; 0
 * when there is none (yet). */
int serve_gone_get(serve *s, size_t i, uint64_t *height, uint8_t hash[32]);
/* Block h's header, hash and size; 0 when there is no such block. */
int serve_block_header(serve *s, uint64_t h, pm_block_header *header, uint8_t hash[32],
                       size_t *size);
uint64_t serve_block_count(serve *s);
/* Shutdown: streams waiting for blocks end. */
void serve_close_streams(serve *s);

/* ---- routes.c / http.c ----------------------------------------------------- */

typedef struct {
    const char *method, *path;   /* path without the query */
    const char *content_type, *accept, *last_event_id;
    const uint8_t *body;
    size_t body_size;
    void *conn;                  /* http.c's: for http_query */
} http_request;

/* The value of query parameter `name` (decoded), or NULL. */
const char *http_query(const http_request *req, const char *name);

/* A streamed reply (SSE, a streamed submission): next() fills buf with up
 * to cap bytes, blocking until it has some; returns the count, 0 to end
 * the stream, HTTP_STREAM_FAILED to close the connection without ending
 * the body (the client sees it cut short). */
#define HTTP_STREAM_FAILED ((size_t)-1)
typedef struct {
    size_t (*next)(void *state, char *buf, size_t cap);
    void (*free_state)(void *state);
    void *state;
} http_stream;

typedef struct {
    int status;
    const char *content_type;
    char *body;                  /* malloc'ed, or NULL */
    size_t size;
    http_stream stream;          /* when stream.next is set */
    unsigned retry_after;        /* seconds: a Retry-After header when not 0 */
} http_reply;

typedef struct {
    const char *method;
    const char *prefix;          /* exact path, or a prefix ending in '/' */
    const char *name;            /* the route label of the metrics */
    int write;                   /* needs the bearer token */
    void (*handle)(serve *s, const http_request *req, http_reply *out);
} route;

extern const route serve_routes[];
extern const size_t serve_route_count;
/* The route for a method and path: NULL and *status 404 (no such path) or
 * 405 (another method). */
const route *route_find(const char *method, const char *path, int *status);

/* ---- decode.c: reading requests (pure: fuzz/fuzz_serve_decode.c) ---------- */

/* route_find over any table. A prefix ending in '/' matches the paths
 * below it; otherwise (and for "/") the path must be exact. */
const route *route_match(const route *table, size_t n, const char *method, const char *path,
                         int *status);
/* A height: decimal, no sign. Returns 1 and *h, or 0 (also for NULL). */
int decode_height(const char *text, uint64_t *h);
/* "TXID:INDEX": 64 hex digits (either case), a decimal up to 65535. */
int decode_outpoint(const char *text, pm_outpoint *op);
/* A JSON body {"tx": HEX}: *bytes (malloc'ed) and *size. Returns NULL, or
 * the complaint (then *bytes is NULL). */
const char *decode_json_tx(const uint8_t *body, size_t size, uint8_t **bytes, size_t *out);
/* A body of records (u32 little-endian length + bytes each): *n records,
 * located in recs/sizes when those are not NULL (n entries each). Returns
 * 0, or -1 with the message in err when a record is cut. */
int decode_frames(const uint8_t *body, size_t size, const uint8_t **recs, size_t *sizes,
                  size_t *n, char *err, size_t errlen);
void reply_error(http_reply *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Listen, load the service (service_load: requests get 503 until it is
 * ready), then serve until SIGINT/SIGTERM. Returns 0 or -1. */
int http_run(serve *s);

/* Metrics by route and status (http.c counts, metrics.c prints). */
#define SERVE_MAX_ROUTES 16
#define SERVE_STATUS_SLOTS 12
extern const int serve_status_codes[SERVE_STATUS_SLOTS];
void metrics_count_request(size_t route_index, int status);
/* The text of GET /metrics (malloc'ed). */
char *metrics_render(serve *s, size_t *size);
/* Count n records admitted now (the explorer's throughput chart). */
void metrics_note_admitted(serve *s, uint64_t n);
/* Records admitted in each of the last SERVE_RATE_SLOTS slots, oldest
 * first. */
void metrics_rates(serve *s, uint64_t out[SERVE_RATE_SLOTS]);

/* ---- explorer.c: the page for people (GET /) ------------------------------ */

void explorer_home(serve *s, const http_request *req, http_reply *out);
void explorer_stamp(serve *s, const http_request *req, http_reply *out);
void explorer_holdings(serve *s, const http_request *req, http_reply *out);

#endif
