/*
 * provenance.c — trace and holdings by scanning a chain file (see
 * provenance.h for the index strategy).
 *
 * Both queries sit on walk(), which frames every block, parses every
 * transaction and hands each parsed one to a visitor with its position.
 * Outputs are matched on their raw 45 bytes (kind at 0, owner at 1..32,
 * operator/series/serial at 33..44) so that the common case, a
 * transaction that does not concern the query, costs a few compares.
 */
#include "provenance.h"

#include "bytes.h"
#include "check.h"
#include "hmap.h"
#include "recfile.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* The walk over a chain file.                                             */
/* ---------------------------------------------------------------------- */

typedef struct walk walk;
typedef pm_status (*visit_fn)(walk *w, const pm_tx *tx);

struct walk {
    const pm_context *ctx;
    tool_fault *err;
    void *state;
    visit_fn visit;
    uint64_t block;        /* current block position */
    uint64_t height;       /* its stated height */
    uint32_t tx;           /* current tx index */
    uint64_t tx_offset;    /* file offset of the current tx's bytes */
    uint64_t stop_after;   /* last block to visit (UINT64_MAX: all) */
    uint64_t blocks, txs;
    int partial_tail;      /* a partial last block was left out */
    uint64_t partial_offset;
};

/* Complete a fault set by tool_fault_set with what a scan knows. */
static void scan_mark(tool_fault *f, pm_reason reason, int64_t tx)
{
    f->reason = reason;
    f->item = tx;
}

/* An error found by a visitor at the current transaction. */
static pm_status history_error(walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static pm_status history_error(walk *w, const char *fmt, ...)
{
    char text[sizeof w->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    tool_fault_set(w->err, w->block, w->tx_offset, 0, "%s", text);
    scan_mark(w->err, PM_REASON_NONE, w->tx);
    return PM_ERR_INVALID;
}

static pm_status walk_chain(walk *w, const char *path)
{
    tool_fault *err = w->err;
    pm_recfile *rf = NULL;
    pm_recfile_header hdr;
    pm_status st = recfile_open(&rf, &hdr, err, path, PM_BLOCK_MAX_SIZE);
    if (st != PM_OK)
        return st;
    if (!hdr.valid) {
        tool_fault_set(err, 0, hdr.error.offset, 0, "bad header: %s: %s",
                       hdr.error.field ? hdr.error.field : "header",
                       hdr.error.reason ? hdr.error.reason : "invalid");
        scan_mark(err, PM_REASON_BAD_HEADER, -1);
        pm_recfile_close(rf);
        return PM_ERR_INVALID;
    }
    if (hdr.kind != PM_FILE_CHAIN) {
        tool_fault_set(err, 0, 0, 0, "a transaction stream (POSTMKTX), not a chain (POSTMKBK)");
        scan_mark(err, PM_REASON_BAD_HEADER, -1);
        pm_recfile_close(rf);
        return PM_ERR_INVALID;
    }

    pm_recfile_record rec;
    int r;
    st = PM_OK;
    while (st == PM_OK && (r = recfile_next(rf, &rec, err)) == 1) {
        w->block = rec.index;
        if (rec.truncated) {
            /* A crash's leftover, or the block a pack is appending right
             * now: the whole blocks before it are the history (cli.md). */
            w->partial_tail = 1;
            w->partial_offset = rec.offset;
            break;
        }
        if (!rec.bytes) {
            tool_fault_set(err, rec.index, rec.offset, 0,
                           "block of %" PRIu32 " bytes, over the limit of %d", rec.length,
                           PM_BLOCK_MAX_SIZE);
            scan_mark(err, PM_REASON_BLOCK_MALFORMED, -1);
            st = PM_ERR_INVALID;
            break;
        }
        pm_block blk;
        pm_parse_error perr = {0, NULL, NULL};
        if (!pm_block_parse(pm_context_static, &blk, &perr, rec.bytes, rec.size)) {
            tool_fault_set(err, rec.index, rec.offset + 4 + perr.offset, 0, "%s: %s",
                           perr.field ? perr.field : "block",
                           perr.reason ? perr.reason : "malformed");
            scan_mark(err, PM_REASON_BLOCK_MALFORMED, -1);
            st = PM_ERR_INVALID;
            break;
        }
        w->height = blk.header.height;
        w->blocks++;
        const uint8_t *txb;
        size_t txsize, cursor = 0;
        uint32_t i = 0;
        while (pm_block_next_tx(pm_context_static, &txb, &txsize, &blk, &cursor)) {
            w->tx = i;
            w->tx_offset = rec.offset + 4 + (uint64_t)(txb - rec.bytes);
            pm_tx tx;
            perr = (pm_parse_error){0, NULL, NULL};
            if (!pm_tx_parse(pm_context_static, &tx, &perr, txb, txsize)) {
                tool_fault_set(err, rec.index, w->tx_offset + perr.offset, 0, "%s: %s",
                               perr.field ? perr.field : "tx",
                               perr.reason ? perr.reason : "malformed");
                scan_mark(err, PM_REASON_MALFORMED, i);
                st = PM_ERR_INVALID;
                break;
            }
            w->txs++;
            st = w->visit(w, &tx);
            if (st != PM_OK)
                break;
            i++;
        }
        if (st == PM_OK && rec.index >= w->stop_after)
            break;
    }
    if (st == PM_OK && r < 0) {
        err->record = w->block;
        st = PM_ERR_IO;
    }
    pm_recfile_close(rf);
    return st;
}

static void walk_init(walk *w, const pm_context *ctx, tool_fault *err, visit_fn visit,
                      void *state)
{
    memset(w, 0, sizeof *w);
    w->ctx = ctx;
    w->err = err;
    w->visit = visit;
    w->state = state;
    w->stop_after = UINT64_MAX;
}

static pm_status txid_of(walk *w, uint8_t out[32], const pm_tx *tx)
{
    return pm_tx_txid(w->ctx, out, tx) ? PM_OK : PM_ERR_NOMEM;
}

static void copy_text(char *dst, size_t cap, const uint8_t *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = 0;
}

/* ---------------------------------------------------------------------- */
/* Trace.                                                                  */
/* ---------------------------------------------------------------------- */

/* A transfer event's transaction, kept for pass 2. */
typedef struct {
    uint8_t *bytes;
    size_t size;
} kept_tx;

/* An outpoint spent by an event, resolved in pass 2. */
typedef struct {
    pm_outpoint op;
    int resolved;
    pm_output out;
} needed_input;

typedef struct {
    pm_stamp_trace *t;
    uint8_t pattern[12];          /* operator, series, serial as stored */
    uint8_t op_key[32];           /* operator's key at this point */
    int op_key_known;
    size_t cap_events;
    kept_tx *kept;                /* parallel to t->events */
    /* pass 2 */
    needed_input *needed;
    size_t n_needed;
    size_t n_resolved;
} trace_state;

static pm_status push_event(trace_state *s, const pm_stamp_event *ev, const pm_tx *tx)
{
    pm_stamp_trace *t = s->t;
    if (t->n_events == s->cap_events) {
        size_t cap = s->cap_events ? 2 * s->cap_events : 8;
        pm_stamp_event *e = realloc(t->events, cap * sizeof *e);
        if (!e)
            return PM_ERR_NOMEM;
        t->events = e;
        kept_tx *k = realloc(s->kept, cap * sizeof *k);
        if (!k)
            return PM_ERR_NOMEM;
        s->kept = k;
        s->cap_events = cap;
    }
    kept_tx k = {NULL, 0};
    if (!ev->is_issue) {
        k.bytes = malloc(tx->size);
        if (!k.bytes)
            return PM_ERR_NOMEM;
        memcpy(k.bytes, tx->bytes, tx->size);
        k.size = tx->size;
    }
    s->kept[t->n_events] = k;
    t->events[t->n_events++] = *ev;
    return PM_OK;
}

static int output_is_stamp(const uint8_t *raw, const uint8_t pattern[12])
{
    return raw[0] == PM_OUTPUT_STAMP && memcmp(raw + 33, pattern, 12) == 0;
}

static pm_status trace_visit(walk *w, const pm_tx *tx)
{
    trace_state *s = w->state;
    pm_stamp_trace *t = s->t;

    if (tx->type == PM_TX_REGISTER) {
        if (tx->operator_id == t->operator_id) {
            t->operator_known = 1;
            copy_text(t->operator_name, sizeof t->operator_name, tx->text, tx->text_len);
            memcpy(s->op_key, tx->key, 32);
            s->op_key_known = 1;
        }
        return PM_OK;
    }
    if (tx->type == PM_TX_SERIES) {
        if (tx->operator_id == t->operator_id && tx->series == t->series) {
            if (t->series_known)
                return history_error(w, "series %" PRIu32 ":%" PRIu32 " declared twice",
                                     t->operator_id, t->series);
            t->series_known = 1;
            copy_text(t->series_title, sizeof t->series_title, tx->text, tx->text_len);
            t->max_supply = tx->max_supply;
            t->face_value = tx->face_value;
            memcpy(t->series_metadata, tx->metadata, 32);
        }
        return PM_OK;
    }

    /* ISSUE or TRANSFER: does it spend the stamp, does it carry it? */
    size_t spent_by = SIZE_MAX;
    if (tx->type == PM_TX_TRANSFER && t->issued) {
        for (size_t i = 0; i < tx->n_in; i++) {
            const uint8_t *in = tx->inputs + i * PM_INPUT_SIZE;
            if (memcmp(in, t->outpoint.txid, 32) == 0 &&
                tool_le16(in + 32) == t->outpoint.index) {
                spent_by = i;
                break;
            }
        }
    }
    size_t carried_at = SIZE_MAX;
    for (size_t i = 0; i < tx->n_out; i++) {
        if (output_is_stamp(tx->outputs + i * PM_OUTPUT_SIZE, s->pattern)) {
            if (carried_at != SIZE_MAX)
                return history_error(w, "the stamp appears twice among the outputs");
            carried_at = i;
        }
    }
    if (carried_at == SIZE_MAX) {
        if (spent_by != SIZE_MAX)
            return history_error(w, "input %zu spends the stamp but no output carries it",
                                 spent_by);
        return PM_OK;
    }

    pm_stamp_event ev;
    memset(&ev, 0, sizeof ev);
    ev.block = w->block;
    ev.height = w->height;
    ev.tx = w->tx;
    ev.out_index = (uint16_t)carried_at;
    memcpy(ev.to, tx->outputs + carried_at * PM_OUTPUT_SIZE + 1, 32);
    pm_status st = txid_of(w, ev.txid, tx);
    if (st != PM_OK)
        return st;
    if (tx->type == PM_TX_ISSUE) {
        if (t->issued)
            return history_error(w, "the stamp is issued a second time");
        ev.is_issue = 1;
        if (s->op_key_known)
            memcpy(ev.from, s->op_key, 32);
    } else {
        if (!t->issued)
            return history_error(w, "a transfer carries the stamp before its issue");
        if (spent_by == SIZE_MAX)
            return history_error(w, "a transfer carries the stamp without spending it");
        memcpy(ev.from, t->owner, 32);
    }
    st = push_event(s, &ev, tx);
    if (st != PM_OK)
        return st;
    t->issued = 1;
    memcpy(t->owner, ev.to, 32);
    memcpy(t->outpoint.txid, ev.txid, 32);
    t->outpoint.index = ev.out_index;
    return PM_OK;
}

static int cmp_needed(const void *a, const void *b)
{
    const needed_input *x = a, *y = b;
    int c = memcmp(x->op.txid, y->op.txid, 32);
    if (c)
        return c;
    return (x->op.index > y->op.index) - (x->op.index < y->op.index);
}

static pm_status resolve_visit(walk *w, const pm_tx *tx)
{
    trace_state *s = w->state;
    if (tx->type != PM_TX_ISSUE && tx->type != PM_TX_TRANSFER)
        return PM_OK;
    uint8_t txid[32];
    pm_status st = txid_of(w, txid, tx);
    if (st != PM_OK)
        return st;
    /* Lower bound of txid among the sorted needed inputs. */
    size_t lo = 0, hi = s->n_needed;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(s->needed[mid].op.txid, txid, 32) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < s->n_needed && memcmp(s->needed[i].op.txid, txid, 32) == 0; i++) {
        needed_input *n = &s->needed[i];
        if (n->resolved)
            continue;
        if (n->op.index >= tx->n_out)
            return history_error(w, "an input spends output %u of this transaction, which "
                                    "has %zu outputs", n->op.index, tx->n_out);
        pm_tx_output(pm_context_static, &n->out, tx, n->op.index);
        n->resolved = 1;
        s->n_resolved++;
    }
    if (s->n_resolved == s->n_needed)
        w->stop_after = w->block;
    return PM_OK;
}

static const needed_input *find_needed(const trace_state *s, const pm_outpoint *op)
{
    needed_input key;
    key.op = *op;
    return bsearch(&key, s->needed, s->n_needed, sizeof key, cmp_needed);
}

/* Add `amount` for `issuer` to a small per-issuer table. */
typedef struct {
    uint32_t issuer;
    uint64_t from_in, to_in, from_out; /* saturating */
} issuer_flow;

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

static issuer_flow *flow_for(issuer_flow *f, size_t *n, uint32_t issuer)
{
    for (size_t i = 0; i < *n; i++)
        if (f[i].issuer == issuer)
            return &f[i];
    memset(&f[*n], 0, sizeof f[*n]);
    f[*n].issuer = issuer;
    return &f[(*n)++];
}

/* Price of a transfer event: per issuer, what the seller gained net,
 * bounded by what the buyer put in. */
static pm_status price_event(trace_state *s, pm_stamp_event *ev, const kept_tx *k)
{
    pm_tx tx;
    if (!pm_tx_parse(pm_context_static, &tx, NULL, k->bytes, k->size))
        return PM_ERR_INVALID; /* cannot happen: it parsed in pass 1 */
    if (memcmp(ev->from, ev->to, 32) == 0)
        return PM_OK;
    issuer_flow *f = malloc((tx.n_in + tx.n_out) * sizeof *f);
    if (!f)
        return PM_ERR_NOMEM;
    size_t nf = 0;
    for (size_t i = 0; i < tx.n_in; i++) {
        pm_outpoint op;
        pm_tx_input(pm_context_static, &op, &tx, i);
        const needed_input *n = find_needed(s, &op);
        if (!n || !n->resolved || n->out.kind != PM_OUTPUT_CREDIT)
            continue;
        if (memcmp(n->out.owner, ev->from, 32) == 0) {
            issuer_flow *x = flow_for(f, &nf, n->out.operator_id);
            x->from_in = sat_add(x->from_in, n->out.amount);
        } else if (memcmp(n->out.owner, ev->to, 32) == 0) {
            issuer_flow *x = flow_for(f, &nf, n->out.operator_id);
            x->to_in = sat_add(x->to_in, n->out.amount);
        }
    }
    for (size_t i = 0; i < tx.n_out; i++) {
        pm_output o;
        pm_tx_output(pm_context_static, &o, &tx, i);
        if (o.kind == PM_OUTPUT_CREDIT && memcmp(o.owner, ev->from, 32) == 0) {
            issuer_flow *x = flow_for(f, &nf, o.operator_id);
            x->from_out = sat_add(x->from_out, o.amount);
        }
    }
    size_t np = 0;
    for (size_t i = 0; i < nf; i++) {
        uint64_t gain = f[i].from_out > f[i].from_in ? f[i].from_out - f[i].from_in : 0;
        uint64_t paid = gain < f[i].to_in ? gain : f[i].to_in;
        if (paid) {
            f[np].issuer = f[i].issuer;
            f[np].from_in = paid;
            np++;
        }
    }
    if (np) {
        ev->price = malloc(np * sizeof *ev->price);
        if (!ev->price) {
            free(f);
            return PM_ERR_NOMEM;
        }
        /* In issuer order, so the report does not depend on output order. */
        for (size_t i = 1; i < np; i++)
            for (size_t j = i; j > 0 && f[j - 1].issuer > f[j].issuer; j--) {
                issuer_flow tmp = f[j];
                f[j] = f[j - 1];
                f[j - 1] = tmp;
            }
        for (size_t i = 0; i < np; i++) {
            ev->price[i].issuer = f[i].issuer;
            ev->price[i].amount = f[i].from_in;
        }
        ev->n_price = np;
    }
    free(f);
    return PM_OK;
}

pm_status pm_trace_stamp(const pm_context *ctx, pm_stamp_trace *out, tool_fault *err,
                         const char *path, uint32_t operator_id, uint32_t series,
                         uint32_t serial)
{
    memset(out, 0, sizeof *out);
    TOOL_CHECK(ctx != NULL);
    TOOL_CHECK(err != NULL && path != NULL);
    memset(err, 0, sizeof *err);
    out->operator_id = operator_id;
    out->series = series;
    out->serial = serial;

    trace_state s;
    memset(&s, 0, sizeof s);
    s.t = out;
    tool_put_le32(s.pattern, operator_id);
    tool_put_le32(s.pattern + 4, series);
    tool_put_le32(s.pattern + 8, serial);

    walk w;
    walk_init(&w, ctx, err, trace_visit, &s);
    pm_status st = walk_chain(&w, path);
    out->blocks = w.blocks;
    out->txs = w.txs;
    out->partial_tail = w.partial_tail;
    out->partial_offset = w.partial_offset;

    /* Pass 2: the outputs the transfer events spent. */
    size_t n_inputs = 0;
    for (size_t e = 0; st == PM_OK && e < out->n_events; e++) {
        if (out->events[e].is_issue)
            continue;
        pm_tx tx;
        if (!pm_tx_parse(pm_context_static, &tx, NULL, s.kept[e].bytes, s.kept[e].size)) {
            st = PM_ERR_INVALID;
            break;
        }
        n_inputs += tx.n_in;
    }
    if (st == PM_OK && n_inputs) {
        s.needed = calloc(n_inputs, sizeof *s.needed);
        if (!s.needed)
            st = PM_ERR_NOMEM;
        for (size_t e = 0; st == PM_OK && e < out->n_events; e++) {
            if (out->events[e].is_issue)
                continue;
            pm_tx tx;
            if (!pm_tx_parse(pm_context_static, &tx, NULL, s.kept[e].bytes, s.kept[e].size))
                continue;
            for (size_t i = 0; i < tx.n_in; i++)
                pm_tx_input(pm_context_static, &s.needed[s.n_needed++].op, &tx, i);
        }
        if (st == PM_OK) {
            qsort(s.needed, s.n_needed, sizeof *s.needed, cmp_needed);
            /* Drop duplicates (two events cannot spend one outpoint in a
             * valid chain, but nothing relies on it). */
            size_t u = 0;
            for (size_t i = 0; i < s.n_needed; i++)
                if (u == 0 || cmp_needed(&s.needed[u - 1], &s.needed[i]) != 0)
                    s.needed[u++] = s.needed[i];
            s.n_needed = u;
            walk_init(&w, ctx, err, resolve_visit, &s);
            w.stop_after = out->events[out->n_events - 1].block;
            st = walk_chain(&w, path);
            if (st == PM_OK && s.n_resolved < s.n_needed) {
                for (size_t i = 0; i < s.n_needed; i++)
                    if (!s.needed[i].resolved) {
                        char hex[65];
                        static const char digits[] = "0123456789abcdef";
                        for (int b = 0; b < 32; b++) {
                            hex[2 * b] = digits[s.needed[i].op.txid[b] >> 4];
                            hex[2 * b + 1] = digits[s.needed[i].op.txid[b] & 15];
                        }
                        hex[64] = 0;
                        tool_fault_set(err, 0, 0, 0,
                                       "a transfer of the stamp spends %s:%u, which no "
                                       "earlier transaction created",
                                       hex, s.needed[i].op.index);
                        scan_mark(err, PM_REASON_NONE, -1);
                        break;
                    }
                st = PM_ERR_INVALID;
            }
        }
        for (size_t e = 0; st == PM_OK && e < out->n_events; e++)
            if (!out->events[e].is_issue)
                st = price_event(&s, &out->events[e], &s.kept[e]);
    }

    for (size_t e = 0; e < out->n_events; e++)
        free(s.kept[e].bytes);
    free(s.kept);
    free(s.needed);
    return st;
}

void pm_stamp_trace_free(pm_stamp_trace *t)
{
    if (!t)
        return;
    for (size_t e = 0; e < t->n_events; e++)
        free(t->events[e].price);
    free(t->events);
    t->events = NULL;
    t->n_events = 0;
}

/* ---------------------------------------------------------------------- */
/* Holdings.                                                               */
/* ---------------------------------------------------------------------- */

/* Items dense (swap-remove), indexed by outpoint with the common map. */
typedef struct {
    uint8_t key[32];
    pm_holdings *h;
    size_t cap_items;
    uint64_t *seq;       /* creation order, parallel to items */
    uint64_t next_seq;
    hmap index;          /* outpoint -> item */
} holdings_state;

static uint64_t outpoint_hash(const uint8_t txid[32], uint16_t index)
{
    uint64_t x;
    memcpy(&x, txid, 8); /* txids are hashes: their bytes are already mixed */
    return x ^ ((uint64_t)index + 1) * 0x9E3779B97F4A7C15ull;
}

/* The item holding the outpoint, or HMAP_NONE; *c is left on it. */
static uint32_t find_item(const holdings_state *s, hmap_cursor *c, const uint8_t txid[32],
                          uint16_t index)
{
    *c = hmap_probe(&s->index, outpoint_hash(txid, index));
    for (uint32_t it; (it = hmap_next(&s->index, c)) != HMAP_NONE;) {
        const pm_outpoint *op = &s->h->items[it].outpoint;
        if (op->index == index && memcmp(op->txid, txid, 32) == 0)
            return it;
    }
    return HMAP_NONE;
}

static pm_status holdings_add(holdings_state *s, const uint8_t txid[32], uint16_t index,
                              const uint8_t raw[PM_OUTPUT_SIZE], uint64_t height)
{
    pm_holdings *h = s->h;
    if (h->n >= HMAP_NONE - 1)
        return PM_ERR_NOMEM;
    if (h->n == s->cap_items) {
        size_t cap = s->cap_items ? 2 * s->cap_items : 64;
        pm_holding *items = realloc(h->items, cap * sizeof *items);
        if (!items)
            return PM_ERR_NOMEM;
        h->items = items;
        uint64_t *seq = realloc(s->seq, cap * sizeof *seq);
        if (!seq)
            return PM_ERR_NOMEM;
        s->seq = seq;
        s->cap_items = cap;
    }
    if (!hmap_reserve(&s->index, h->n + 1))
        return PM_ERR_NOMEM;
    hmap_cursor c;
    if (find_item(s, &c, txid, index) != HMAP_NONE)
        return PM_ERR_STATE;
    pm_holding *it = &h->items[h->n];
    memcpy(it->outpoint.txid, txid, 32);
    it->outpoint.index = index;
    pm_output_decode(pm_context_static, &it->output, raw);
    it->height = height;
    s->seq[h->n] = s->next_seq++;
    hmap_put(&s->index, &c, (uint32_t)h->n);
    h->n++;
    return PM_OK;
}

/* Remove the item hmap_next returned last on c. */
static void holdings_remove(holdings_state *s, hmap_cursor *c, uint32_t item)
{
    pm_holdings *h = s->h;
    hmap_erase(&s->index, c);
    /* Swap-remove the item, repointing the slot of the one moved. */
    size_t last = h->n - 1;
    if (item != last) {
        (void)find_item(s, c, h->items[last].outpoint.txid, h->items[last].outpoint.index);
        hmap_set(&s->index, c, item);
        h->items[item] = h->items[last];
        s->seq[item] = s->seq[last];
    }
    h->n--;
}

static pm_status holdings_visit(walk *w, const pm_tx *tx)
{
    holdings_state *s = w->state;
    if (tx->type == PM_TX_TRANSFER && s->h->n) {
        for (size_t i = 0; i < tx->n_in; i++) {
            const uint8_t *in = tx->inputs + i * PM_INPUT_SIZE;
            hmap_cursor c;
            uint32_t item = find_item(s, &c, in, tool_le16(in + 32));
            if (item != HMAP_NONE)
                holdings_remove(s, &c, item);
        }
    }
    int hashed = 0;
    uint8_t txid[32];
    for (size_t i = 0; i < tx->n_out; i++) {
        const uint8_t *raw = tx->outputs + i * PM_OUTPUT_SIZE;
        if (memcmp(raw + 1, s->key, 32) != 0)
            continue;
        if (!hashed) {
            pm_status st = txid_of(w, txid, tx);
            if (st != PM_OK)
                return st;
            hashed = 1;
        }
        pm_status st = holdings_add(s, txid, (uint16_t)i, raw, w->height);
        if (st == PM_ERR_STATE)
            return history_error(w, "output %zu is created twice (a repeated transaction)", i);
        if (st != PM_OK)
            return st;
    }
    return PM_OK;
}

static int cmp_pair(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

pm_status pm_holdings_scan(const pm_context *ctx, pm_holdings *out, tool_fault *err,
                           const char *path, const uint8_t key[PM_KEY_SIZE])
{
    memset(out, 0, sizeof *out);
    TOOL_CHECK(ctx != NULL);
    TOOL_CHECK(err != NULL && path != NULL && key != NULL);
    memset(err, 0, sizeof *err);

    holdings_state s;
    memset(&s, 0, sizeof s);
    s.h = out;
    memcpy(s.key, key, 32);
    if (!hmap_init(&s.index, 128))
        return PM_ERR_NOMEM;
    walk w;
    walk_init(&w, ctx, err, holdings_visit, &s);
    pm_status st = walk_chain(&w, path);
    out->blocks = w.blocks;
    out->txs = w.txs;
    out->partial_tail = w.partial_tail;
    out->partial_offset = w.partial_offset;
    hmap_free(&s.index);

    /* Chain order: sort (creation sequence, item) pairs, then permute. */
    if (st == PM_OK && out->n > 1) {
        size_t n = out->n;
        pm_holding *sorted = malloc(n * sizeof *sorted);
        uint64_t(*pairs)[2] = malloc(n * sizeof *pairs);
        if (!sorted || !pairs) {
            st = PM_ERR_NOMEM;
        } else {
            for (size_t i = 0; i < n; i++) {
                pairs[i][0] = s.seq[i];
                pairs[i][1] = i;
            }
            qsort(pairs, n, sizeof *pairs, cmp_pair);
            for (size_t i = 0; i < n; i++)
                sorted[i] = out->items[pairs[i][1]];
            memcpy(out->items, sorted, n * sizeof *sorted);
        }
        free(sorted);
        free(pairs);
    }
    free(s.seq);
    return st;
}

void pm_holdings_free(pm_holdings *h)
{
    if (!h)
        return;
    free(h->items);
    h->items = NULL;
    h->n = 0;
}
