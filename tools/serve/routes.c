/*
 * routes.c — the HTTP routes of `postmark serve`, all in the table below
 * (serve.md's endpoints), and their handlers. Every JSON read or written
 * goes through jansson. Handlers see a decoded request (http.c did the
 * limits, the auth and the body) and fill a reply; submissions end in
 * serve_admit, the one call into the engine's pack mode.
 */
#include "serve.h"

#include "cliutil.h"
#include "trace_json.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void handle_tx(serve *s, const http_request *req, http_reply *out);
static void handle_txs(serve *s, const http_request *req, http_reply *out);
static void handle_flush(serve *s, const http_request *req, http_reply *out);
static void handle_connect(serve *s, const http_request *req, http_reply *out);
static void handle_disconnect(serve *s, const http_request *req, http_reply *out);
static void handle_tip(serve *s, const http_request *req, http_reply *out);
static void handle_tx_status(serve *s, const http_request *req, http_reply *out);
static void handle_block(serve *s, const http_request *req, http_reply *out);
static void handle_blocks(serve *s, const http_request *req, http_reply *out);
static void handle_stamp(serve *s, const http_request *req, http_reply *out);
static void handle_metrics(serve *s, const http_request *req, http_reply *out);
static void handle_holdings(serve *s, const http_request *req, http_reply *out);
static void handle_utxo(serve *s, const http_request *req, http_reply *out);
static void handle_stats(serve *s, const http_request *req, http_reply *out);

/* Matched by route_match (decode.c): a prefix ending in '/' matches the
 * paths below it; otherwise (and for "/") the path must be exact. */
const route serve_routes[] = {
    {"POST", "/v1/tx", "tx", 1, handle_tx},
    {"POST", "/v1/txs", "txs", 1, handle_txs},
    {"POST", "/v1/flush", "flush", 1, handle_flush},
    {"POST", "/v1/block", "connect", 1, handle_connect},
    {"POST", "/v1/disconnect", "disconnect", 1, handle_disconnect},
    {"GET", "/v1/tip", "tip", 0, handle_tip},
    {"GET", "/v1/tx/", "tx_status", 0, handle_tx_status},
    {"GET", "/v1/block/", "block", 0, handle_block},
    {"GET", "/v1/blocks", "blocks", 0, handle_blocks},
    {"GET", "/v1/stamp/", "stamp", 0, handle_stamp},
    {"GET", "/v1/holdings/", "holdings", 0, handle_holdings},
    {"GET", "/v1/utxo/", "utxo", 0, handle_utxo},
    {"GET", "/v1/stats", "stats", 0, handle_stats},
    {"GET", "/metrics", "metrics", 0, handle_metrics},
    {"GET", "/", "explorer", 0, explorer_home},
    {"GET", "/explorer/stamp", "explorer_stamp", 0, explorer_stamp},
    {"GET", "/explorer/holdings", "explorer_holdings", 0, explorer_holdings},
};
const size_t serve_route_count = sizeof serve_routes / sizeof serve_routes[0];

const route *route_find(const char *method, const char *path, int *status)
{
    return route_match(serve_routes, serve_route_count, method, path, status);
}

/* ---- replies ------------------------------------------------------------- */

static void reply_json(http_reply *out, int status, json_t *obj)
{
    out->status = status;
    out->content_type = "application/json";
    out->body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!out->body) {
        out->status = 500;
        out->body = strdup("{\"error\":\"out of memory\"}");
    }
    out->size = out->body ? strlen(out->body) : 0;
}

void reply_error(http_reply *out, int status, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* What a client sent (a path) may be any bytes: JSON strings are UTF-8. */
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    reply_json(out, status, json_pack("{s:s}", "error", text));
}

/* ---- submissions ---------------------------------------------------------- */

static json_t *verdict_json(const serve_record *r)
{
    json_t *o = json_object();
    if (r->index != SERVE_INDEX_UNKNOWN) /* cluster: packed before a restart */
        json_object_set_new(o, "index", json_integer((json_int_t)r->index));
    json_object_set_new(o, "txid", r->has_txid ? pm_cli_json_hex(r->txid, 32) : json_string(""));
    json_object_set_new(o, "verdict", json_string(r->reason ? "rejected" : "accepted"));
    if (r->seq)
        json_object_set_new(o, "seq", json_integer((json_int_t)r->seq));
    if (r->reason)
        json_object_set_new(o, "reason", json_string(pm_reason_name(r->reason)));
    return o;
}

static int admit_failed(http_reply *out, pm_status st)
{
    if (st == PM_OK)
        return 0;
    reply_error(out, 503, "%s", st == PM_ERR_STATE ? "the service is stopping"
                                                   : "the service cannot write its journal or chain");
    return 1;
}

/* {"tx": HEX} when it says so, or when a client sent JSON without saying
 * (curl -d): a transaction's first byte is its version, 1, never '{'. */
static int is_json(const http_request *req)
{
    const char *type = req->content_type;
    if (type && strncmp(type, "application/json", 16) == 0)
        return 1;
    return (!type || strncmp(type, "application/octet-stream", 24) != 0) && req->body_size &&
           req->body[0] == '{';
}

static void handle_tx(serve *s, const http_request *req, http_reply *out)
{
    uint8_t *decoded = NULL;
    const uint8_t *bytes = req->body;
    size_t size = req->body_size;
    if (is_json(req)) {
        const char *why = decode_json_tx(req->body, req->body_size, &decoded, &size);
        if (why) {
            reply_error(out, 400, "%s", why);
            return;
        }
        bytes = decoded;
    } else if (size == 0) {
        reply_error(out, 400, "empty body: expected one transaction's bytes or {\"tx\": HEX}");
        return;
    }
    serve_record rec;
    serve_record_prepare(s, &rec, bytes, size);
    pm_status st = serve_admit(s, &rec, 1, NULL);
    if (!admit_failed(out, st))
        reply_json(out, rec.reason ? 422 : 200, verdict_json(&rec));
    free(decoded);
}

/* POST /v1/txs's answer, written while its records are decided: the
 * engine does not wait for a large answer to be built. jansson encodes
 * every verdict; only the fixed frame around them is spelled here. */
typedef struct {
    char *text;
    size_t size, cap;
    int failed;
} answer_text;

static int answer_put(answer_text *a, const char *bytes, size_t n)
{
    if (a->failed)
        return -1;
    if (a->size + n + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < a->size + n + 1)
            cap *= 2;
        char *t = realloc(a->text, cap);
        if (!t) {
            a->failed = 1;
            return -1;
        }
        a->text = t;
        a->cap = cap;
    }
    memcpy(a->text + a->size, bytes, n);
    a->size += n;
    a->text[a->size] = '\0';
    return 0;
}

static int answer_put_cb(const char *bytes, size_t n, void *data)
{
    return answer_put(data, bytes, n);
}

static void answer_verdicts(answer_text *a, const serve_record *recs, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        json_t *o = verdict_json(&recs[i]);
        if ((i > 0 && answer_put(a, ",", 1) != 0) || !o ||
            json_dump_callback(o, answer_put_cb, a, JSON_COMPACT) != 0)
            a->failed = 1;
        json_decref(o);
    }
}

/* POST /v1/txs?stream=1: the answer's status line goes out once the
 * records are admitted (their journal order fixed: the client may send
 * its next body), the verdicts as they become final. A failure after that
 * cuts the body short (no closing "]}"). */
typedef struct {
    serve *s;
    serve_ticket *ticket;
    serve_record *recs;
    uint8_t *body;               /* a copy: the records point into it */
    size_t n, built, sent;
    int finished;
    answer_text a;
} txs_stream;

static size_t txs_stream_next(void *state, char *buf, size_t cap)
{
    txs_stream *ts = state;
    while (ts->sent == ts->a.size) {
        if (ts->finished)
            return 0;
        ts->a.size = ts->sent = 0;
        size_t upto;
        pm_status status;
        int more = serve_ticket_wait(ts->s, ts->ticket, ts->built, &upto, &status);
        if (upto > ts->built)
            answer_verdicts(&ts->a, ts->recs, ts->built, upto);
        ts->built = upto;
        if (!more) {
            if (status != PM_OK)
                return HTTP_STREAM_FAILED;
            answer_put(&ts->a, "]}", 2);
            ts->finished = 1;
        }
        if (ts->a.failed)
            return HTTP_STREAM_FAILED;
    }
    size_t n = ts->a.size - ts->sent < cap ? ts->a.size - ts->sent : cap;
    memcpy(buf, ts->a.text + ts->sent, n);
    ts->sent += n;
    return n;
}

static void txs_stream_free(void *state)
{
    txs_stream *ts = state;
    if (ts->ticket)
        serve_ticket_finish(ts->s, ts->ticket); /* the committer is done with recs */
    free(ts->a.text);
    free(ts->recs);
    free(ts->body);
    free(ts);
}

/* Admit n framed records without waiting; the reply streams the verdicts.
 * 0, or -1 (nothing admitted: answer the plain way). */
static int txs_streamed(serve *s, const http_request *req, const uint8_t **bytes,
                        const size_t *sizes, size_t n, http_reply *out)
{
    txs_stream *ts = calloc(1, sizeof *ts);
    if (!ts)
        return -1;
    ts->s = s;
    ts->n = n;
    ts->recs = malloc(n * sizeof *ts->recs);
    ts->body = malloc(req->body_size);
    if (!ts->recs || !ts->body || answer_put(&ts->a, "{\"results\":[", 12) != 0) {
        txs_stream_free(ts);
        return -1;
    }
    memcpy(ts->body, req->body, req->body_size);
    for (size_t i = 0; i < n; i++)
        serve_record_prepare(s, &ts->recs[i], ts->body + (bytes[i] - req->body), sizes[i]);
    pm_status st = serve_admit_start(s, ts->recs, n, &ts->ticket);
    if (st != PM_OK) {
        ts->ticket = NULL;
        txs_stream_free(ts);
        admit_failed(out, st);
        return 0;
    }
    out->status = 200;
    out->content_type = "application/json";
    out->stream = (http_stream){txs_stream_next, txs_stream_free, ts};
    return 0;
}

static void handle_txs(serve *s, const http_request *req, http_reply *out)
{
    /* Frame the whole body first: a body cut inside a record is refused
     * whole, before anything is journaled. */
    size_t n;
    char err[160];
    if (decode_frames(req->body, req->body_size, NULL, NULL, &n, err, sizeof err) != 0) {
        reply_error(out, 400, "%s", err);
        return;
    }
    serve_record *recs = malloc((n ? n : 1) * sizeof *recs);
    const uint8_t **bytes = malloc((n ? n : 1) * sizeof *bytes);
    size_t *sizes = malloc((n ? n : 1) * sizeof *sizes);
    if (!recs || !bytes || !sizes) {
        free(recs);
        free(bytes);
        free(sizes);
        reply_error(out, 500, "out of memory");
        return;
    }
    decode_frames(req->body, req->body_size, bytes, sizes, &n, err, sizeof err);
    const char *stream = http_query(req, "stream");
    if (n && stream && strcmp(stream, "1") == 0 && !s->admit_hook &&
        txs_streamed(s, req, bytes, sizes, n, out) == 0) {
        free(recs);
        free(bytes);
        free(sizes);
        return;
    }
    for (size_t i = 0; i < n; i++)
        serve_record_prepare(s, &recs[i], bytes[i], sizes[i]);
    answer_text a = {0};
    answer_put(&a, "{\"results\":[", 12);
    pm_status st = PM_OK;
    serve_ticket *ticket;
    if (n && s->admit_hook) { /* cluster mode: published, then all decided at once */
        st = serve_admit(s, recs, n, NULL);
        if (st == PM_OK)
            answer_verdicts(&a, recs, 0, n);
    } else if (n && (st = serve_admit_start(s, recs, n, &ticket)) == PM_OK) {
        size_t built = 0, upto;
        int more;
        do {
            more = serve_ticket_wait(s, ticket, built, &upto, &st);
            answer_verdicts(&a, recs, built, upto);
            built = upto;
        } while (more);
        serve_ticket_finish(s, ticket);
    }
    if (!admit_failed(out, st)) {
        answer_put(&a, "]}", 2);
        if (a.failed) {
            reply_error(out, 500, "out of memory");
        } else {
            out->status = 200;
            out->content_type = "application/json";
            out->body = a.text;
            out->size = a.size;
            a.text = NULL;
        }
    }
    free(a.text);
    free(recs);
    free(bytes);
    free(sizes);
}

static void handle_flush(serve *s, const http_request *req, http_reply *out)
{
    (void)req;
    int64_t height = -1;
    pm_status st = serve_admit(s, NULL, 0, &height);
    if (!admit_failed(out, st))
        reply_json(out, 200, json_pack("{s:I}", "height", (json_int_t)height));
}

/* ---- blocks from peers, reorganisations --------------------------------------- */

/* 409 while transactions wait in the open block (or the service stops). */
static int chain_change_failed(http_reply *out, pm_status st)
{
    if (st == PM_ERR_STATE) {
        reply_error(out, 409, "the open block holds accepted transactions (POST /v1/flush first), "
                              "there is no block to disconnect, or the service is stopping");
        return 1;
    }
    return admit_failed(out, st);
}

/* {"height", "tip"}, plus "dropped" (taken, when not NULL). */
static void reply_tip(serve *s, http_reply *out, int64_t height, json_t *dropped)
{
    uint8_t hash[32];
    pthread_mutex_lock(&s->engine_lock);
    pm_engine_tip(s->engine, hash, NULL);
    pthread_mutex_unlock(&s->engine_lock);
    json_t *o = json_object();
    json_object_set_new(o, "height", json_integer(height));
    json_object_set_new(o, "tip", pm_cli_json_hex(hash, 32));
    if (dropped)
        json_object_set_new(o, "dropped", dropped);
    reply_json(out, 200, o);
}

/* POST /v1/block: a peer's block (its bytes as a chain file record holds
 * them) connected on top of the tip and appended to the chain. */
static void handle_connect(serve *s, const http_request *req, http_reply *out)
{
    pm_verdict v;
    int64_t height;
    serve_dropped *dropped;
    size_t n;
    pm_status st = serve_connect(s, &v, req->body, req->body_size, &height, &dropped, &n);
    /* The waiting transactions the re-check rejected on the new tip. */
    json_t *gone = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(gone, json_pack("{s:I,s:o,s:s}", "index", (json_int_t)dropped[i].index,
                                              "txid", dropped[i].has_txid ? pm_cli_json_hex(dropped[i].txid, 32)
                                                                          : json_string(""),
                                              "reason", pm_reason_name(dropped[i].reason)));
    free(dropped);
    if (st == PM_ERR_INVALID) {
        json_t *o = json_pack("{s:s,s:s}", "verdict", "rejected", "reason",
                              pm_reason_name(v.reason));
        json_object_set_new(o, "tx", v.tx >= 0 ? json_integer(v.tx) : json_null());
        json_object_set_new(o, "txid", v.has_txid ? pm_cli_json_hex(v.txid, 32) : json_string(""));
        json_object_set_new(o, "dropped", gone);
        reply_json(out, 422, o);
    } else if (!chain_change_failed(out, st)) {
        reply_tip(s, out, height, gone);
    } else {
        json_decref(gone);
    }
}

/* POST /v1/disconnect: the tip block taken off (cut from the chain file). */
static void handle_disconnect(serve *s, const http_request *req, http_reply *out)
{
    (void)req;
    int64_t height;
    pm_status st = serve_disconnect(s, &height);
    if (!chain_change_failed(out, st))
        reply_tip(s, out, height, NULL);
}

/* ---- queries ----------------------------------------------------------------- */

static void handle_tip(serve *s, const http_request *req, http_reply *out)
{
    (void)req;
    uint8_t tip[32], digest[32];
    int64_t height;
    pthread_mutex_lock(&s->engine_lock);
    pm_engine_tip(s->engine, tip, &height);
    pm_status st = pm_engine_utxo_digest(s->engine, digest);
    uint64_t utxos = pm_engine_utxo_count(s->engine);
    int64_t pending = s->pending;
    uint64_t records = s->batch_base;
    pthread_mutex_unlock(&s->engine_lock);
    if (st != PM_OK) {
        reply_error(out, 500, "%s", pm_status_text(st));
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "height", json_integer(height));
    json_object_set_new(o, "tip", pm_cli_json_hex(tip, 32));
    json_object_set_new(o, "blocks", json_integer(height + 1));
    json_object_set_new(o, "utxo_count", json_integer((json_int_t)utxos));
    json_object_set_new(o, "utxo_digest", pm_cli_json_hex(digest, 32));
    json_object_set_new(o, "pending", json_integer(pending));
    json_object_set_new(o, "journal_records", json_integer((json_int_t)records));
    reply_json(out, 200, o);
}

static void handle_tx_status(serve *s, const http_request *req, http_reply *out)
{
    uint8_t txid[32];
    if (!pm_cli_unhex(txid, 32, req->path + strlen("/v1/tx/"))) {
        reply_error(out, 400, "expected /v1/tx/TXID with 64 hex digits");
        return;
    }
    uint64_t height = 0;
    pm_reason reason = PM_REASON_NONE;
    switch (serve_tx_lookup(s, txid, &height, &reason)) {
    case TX_BLOCK:
        reply_json(out, 200, json_pack("{s:s,s:I}", "status", "block", "height", (json_int_t)height));
        break;
    case TX_PENDING:
        reply_json(out, 200, json_pack("{s:s}", "status", "pending"));
        break;
    case TX_REJECTED:
        reply_json(out, 200, json_pack("{s:s,s:s}", "status", "rejected", "reason",
                                       pm_reason_name(reason)));
        break;
    default:
        reply_error(out, 404, "unknown transaction");
    }
}

static void append_txid(void *data, const uint8_t txid[32])
{
    json_array_append_new(data, pm_cli_json_hex(txid, 32));
}

static void handle_block(serve *s, const http_request *req, http_reply *out)
{
    uint64_t h;
    if (!decode_height(req->path + strlen("/v1/block/"), &h)) {
        reply_error(out, 400, "expected /v1/block/HEIGHT (a decimal number)");
        return;
    }
    uint8_t *bytes, hash[32];
    size_t size;
    if (!serve_block_get(s, h, &bytes, &size, hash)) {
        reply_error(out, 404, "no block at height %llu", (unsigned long long)h);
        return;
    }
    if (req->accept && strstr(req->accept, "application/octet-stream")) {
        out->status = 200;
        out->content_type = "application/octet-stream";
        out->body = (char *)bytes;
        out->size = size;
        return;
    }
    pm_block blk;
    if (!pm_block_parse(pm_context_static, &blk, NULL, bytes, size)) {
        free(bytes);
        reply_error(out, 500, "block %llu does not parse", (unsigned long long)h);
        return;
    }
    json_t *txids = json_array();
    serve_each_txid(s, bytes, size, append_txid, txids);
    json_t *o = json_object();
    json_object_set_new(o, "height", json_integer((json_int_t)blk.header.height));
    json_object_set_new(o, "hash", pm_cli_json_hex(hash, 32));
    json_object_set_new(o, "version", json_integer(blk.header.version));
    json_object_set_new(o, "prev_hash", pm_cli_json_hex(blk.header.prev_hash, 32));
    json_object_set_new(o, "merkle_root", pm_cli_json_hex(blk.header.merkle_root, 32));
    json_object_set_new(o, "tx_count", json_integer(blk.header.tx_count));
    json_object_set_new(o, "size", json_integer((json_int_t)size));
    json_object_set_new(o, "txids", txids);
    free(bytes);
    reply_json(out, 200, o);
}

/* ---- SSE: one event per block, from a height on ---------------------------- */

/* When a block the stream sent is disconnected (POST /v1/disconnect), an
 * event "disconnect" says so before the blocks that replace it:
 *   event: disconnect / id: H-1 / data: {"height": H, "hash": HASH}
 * Its id makes a consumer that reconnects resume at height H (an id of -1
 * when H is 0). Consumers listening only to unnamed events (the block
 * events serve.md describes) do not see it. */
typedef struct {
    serve *s;
    uint64_t next;           /* the next block to send */
    size_t gone;             /* disconnections already looked at */
    char *pending;           /* an event not yet all sent */
    size_t size, sent;
} block_stream;

static size_t stream_next(void *state, char *buf, size_t cap)
{
    block_stream *bs = state;
    while (bs->sent == bs->size) {
        free(bs->pending);
        bs->pending = NULL;
        bs->size = bs->sent = 0;
        /* A comment line now and then: a consumer that went away is noticed
         * when it cannot be written. */
        unsigned keepalive_ms = bs->s->opts.timeout_s * 500; /* within the idle timeout */
        uint64_t gone_height;
        uint8_t gone_hash[32];
        if (serve_gone_get(bs->s, bs->gone, &gone_height, gone_hash)) {
            bs->gone++;
            if (gone_height >= bs->next)
                continue; /* never sent: nothing to take back */
            json_t *o = json_pack("{s:I, s:o}", "height", (json_int_t)gone_height, "hash",
                                  pm_cli_json_hex(gone_hash, 32));
            char *data = o ? json_dumps(o, JSON_COMPACT) : NULL;
            json_decref(o);
            if (!data || asprintf(&bs->pending, "event: disconnect\nid: %lld\ndata: %s\n\n",
                                  (long long)gone_height - 1, data) < 0)
                bs->pending = NULL;
            free(data);
            bs->next = gone_height;
        } else if (!serve_block_wait(bs->s, bs->next, bs->gone,
                                     keepalive_ms < 15000 ? keepalive_ms : 15000)) {
            if (bs->s->closing)
                return 0;
            if (serve_gone_get(bs->s, bs->gone, &gone_height, gone_hash))
                continue; /* woken by a disconnection */
            bs->pending = strdup(": keepalive\n\n");
        } else {
            uint8_t *bytes, hash[32];
            size_t size;
            if (!serve_block_get(bs->s, bs->next, &bytes, &size, hash)) {
                if (serve_block_count(bs->s) <= bs->next)
                    continue; /* disconnected meanwhile: said next time round */
                return 0;
            }
            json_t *o = json_object();
            json_object_set_new(o, "height", json_integer((json_int_t)bs->next));
            json_object_set_new(o, "hash", pm_cli_json_hex(hash, 32));
            json_object_set_new(o, "raw", pm_cli_json_hex(bytes, size));
            free(bytes);
            char *data = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            if (!data || asprintf(&bs->pending, "id: %llu\ndata: %s\n\n",
                                  (unsigned long long)bs->next, data) < 0)
                bs->pending = NULL;
            free(data);
            bs->next++;
        }
        if (!bs->pending)
            return 0;
        bs->size = strlen(bs->pending);
    }
    size_t n = bs->size - bs->sent < cap ? bs->size - bs->sent : cap;
    memcpy(buf, bs->pending + bs->sent, n);
    bs->sent += n;
    return n;
}

static void stream_free(void *state)
{
    block_stream *bs = state;
    free(bs->pending);
    free(bs);
}

static void handle_blocks(serve *s, const http_request *req, http_reply *out)
{
    uint64_t from = 0, last;
    const char *from_text = http_query(req, "from");
    if (from_text && !decode_height(from_text, &from)) {
        reply_error(out, 400, "from: expected a height (a decimal number)");
        return;
    }
    /* A consumer resuming: the block after the last one it saw. */
    if (req->last_event_id) {
        /* -1: the id of a disconnection of block 0 (begin at 0). */
        if (strcmp(req->last_event_id, "-1") == 0) {
            from = 0;
        } else if (decode_height(req->last_event_id, &last)) {
            from = last + 1;
        } else {
            reply_error(out, 400, "Last-Event-ID: expected a height");
            return;
        }
    }
    block_stream *bs = calloc(1, sizeof *bs);
    if (!bs) {
        reply_error(out, 500, "out of memory");
        return;
    }
    bs->s = s;
    bs->next = from;
    /* Disconnections before the stream began are not its business. */
    for (uint64_t h; serve_gone_get(s, bs->gone, &h, (uint8_t[32]){0});)
        bs->gone++;
    out->status = 200;
    out->content_type = "text/event-stream";
    out->stream = (http_stream){stream_next, stream_free, bs};
}

/* Print a scan's JSON object into the reply's body. */
static void reply_printed(http_reply *out, int status, void (*print)(FILE *f, const void *arg),
                          const void *arg)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f) {
        reply_error(out, 500, "out of memory");
        return;
    }
    print(f, arg);
    if (fclose(f) != 0) {
        free(text);
        reply_error(out, 500, "out of memory");
        return;
    }
    out->status = status;
    out->content_type = "application/json";
    out->body = text;
    out->size = size;
}

static void reply_scan_failed(http_reply *out, pm_status st, const tool_fault *e)
{
    reply_error(out, 500, "%s", st == PM_ERR_NOMEM ? "out of memory" : e->message);
}

typedef struct {
    const pm_stamp_trace *trace;
    double seconds;
} trace_print;

static void print_trace(FILE *f, const void *arg)
{
    const trace_print *p = arg;
    pm_trace_print_json(f, p->trace, p->seconds);
}

static void handle_stamp(serve *s, const http_request *req, http_reply *out)
{
    uint32_t id[3];
    const char *name = req->path + strlen("/v1/stamp/");
    if (!pm_trace_parse_stamp(name, id)) {
        reply_error(out, 400, "expected /v1/stamp/OPERATOR:SERIES:SERIAL (decimal numbers)");
        return;
    }
    pm_stamp_trace t;
    tool_fault e;
    double t0 = pm_cli_now();
    /* The scan reads whole blocks: no block is half appended meanwhile. */
    pthread_rwlock_rdlock(&s->chain_lock);
    pm_status st = pm_trace_stamp(s->ctx, &t, &e, s->opts.chain_path, id[0], id[1], id[2]);
    pthread_rwlock_unlock(&s->chain_lock);
    if (st != PM_OK)
        reply_scan_failed(out, st, &e);
    else
        reply_printed(out, t.issued ? 200 : 404, print_trace,
                      &(trace_print){&t, pm_cli_now() - t0});
    pm_stamp_trace_free(&t);
}

typedef struct {
    const uint8_t *key;
    const pm_holdings *holdings;
    double seconds;
} holdings_print;

static void print_holdings(FILE *f, const void *arg)
{
    const holdings_print *p = arg;
    if (pm_holdings_print_json(f, p->key, p->holdings, p->seconds) != 0)
        fputs("{\"error\":\"out of memory\"}", f);
}

static void handle_holdings(serve *s, const http_request *req, http_reply *out)
{
    uint8_t key[32];
    if (!pm_cli_unhex(key, 32, req->path + strlen("/v1/holdings/"))) {
        reply_error(out, 400, "expected /v1/holdings/KEY with 64 hex digits");
        return;
    }
    pm_holdings h;
    tool_fault e;
    double t0 = pm_cli_now();
    pthread_rwlock_rdlock(&s->chain_lock);
    pm_status st = pm_holdings_scan(s->ctx, &h, &e, s->opts.chain_path, key);
    pthread_rwlock_unlock(&s->chain_lock);
    if (st != PM_OK)
        reply_scan_failed(out, st, &e);
    else
        reply_printed(out, 200, print_holdings, &(holdings_print){key, &h, pm_cli_now() - t0});
    pm_holdings_free(&h);
}

/* GET /v1/utxo/TXID:INDEX: the output, when unspent (the open block's
 * accepted transactions count). */
static void handle_utxo(serve *s, const http_request *req, http_reply *out)
{
    pm_outpoint op;
    if (!decode_outpoint(req->path + strlen("/v1/utxo/"), &op)) {
        reply_error(out, 400, "expected /v1/utxo/TXID:INDEX (64 hex digits, a number)");
        return;
    }
    pm_output o;
    pthread_mutex_lock(&s->engine_lock);
    int found = pm_engine_get_utxo(s->engine, &o, &op);
    pthread_mutex_unlock(&s->engine_lock);
    if (!found) {
        char hex[65];
        reply_error(out, 404, "no unspent output %s:%u", pm_cli_hex(hex, op.txid, 32), op.index);
        return;
    }
    json_t *j = json_object();
    json_object_set_new(j, "kind", json_string(o.kind == PM_OUTPUT_STAMP ? "stamp" : "credit"));
    json_object_set_new(j, "owner", pm_cli_json_hex(o.owner, 32));
    if (o.kind == PM_OUTPUT_STAMP) {
        char stamp[40];
        snprintf(stamp, sizeof stamp, "%u:%u:%u", o.operator_id, o.series, o.serial);
        json_object_set_new(j, "stamp", json_string(stamp));
    } else {
        json_object_set_new(j, "issuer", json_integer(o.operator_id));
        /* Amounts are u64: a JSON number may lose them, a string does not. */
        char amount[24];
        snprintf(amount, sizeof amount, "%llu", (unsigned long long)o.amount);
        json_object_set_new(j, "amount", json_string(amount));
    }
    reply_json(out, 200, j);
}

static void handle_stats(serve *s, const http_request *req, http_reply *out)
{
    (void)req;
    pm_stats st;
    pthread_mutex_lock(&s->engine_lock);
    pm_engine_stats(s->engine, &st);
    int64_t pending = s->pending;
    pthread_mutex_unlock(&s->engine_lock);
    json_t *rejects = json_object();
    for (int r = PM_REASON_MALFORMED; r <= PM_REASON_BAD_SIGNATURE; r++)
        json_object_set_new(rejects, pm_reason_name((pm_reason)r),
                            json_integer((json_int_t)atomic_load(&s->reasons[r])));
    uint64_t batches = atomic_load(&s->batches), records = atomic_load(&s->batch_records);
    json_t *j = json_object();
    json_object_set_new(j, "accepted", json_integer((json_int_t)atomic_load(&s->accepted)));
    json_object_set_new(j, "rejected", json_integer((json_int_t)atomic_load(&s->rejected)));
    json_object_set_new(j, "rejects", rejects);
    json_object_set_new(j, "pending", json_integer(pending));
    json_object_set_new(j, "blocks", json_integer((json_int_t)serve_block_count(s)));
    json_object_set_new(j, "signatures_verified", json_integer((json_int_t)st.signatures_verified));
    json_object_set_new(j, "batches", json_integer((json_int_t)batches));
    json_object_set_new(j, "records_per_batch",
                        json_real(batches ? (double)records / (double)batches : 0.0));
    json_object_set_new(j, "seconds_hash", json_real(st.seconds_hash));
    json_object_set_new(j, "seconds_verify", json_real(st.seconds_verify));
    json_object_set_new(j, "seconds_commit", json_real(st.seconds_commit));
    json_object_set_new(j, "uptime", json_real(pm_cli_now() - s->started));
    reply_json(out, 200, j);
}

static void handle_metrics(serve *s, const http_request *req, http_reply *out)
{
    (void)req;
    out->body = metrics_render(s, &out->size);
    out->status = out->body ? 200 : 500;
    out->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
