/*
 * explorer.c — the page for people: GET / (the tip, recent blocks, rejects
 * by reason, the throughput of the last minutes as an inline SVG chart,
 * search boxes), GET /explorer/stamp?id=OP:SERIES:SERIAL (a stamp's
 * provenance as a timeline: issued by, each owner, trade prices) and GET
 * /explorer/holdings?key=KEY (what a key owns).
 *
 * Server-rendered HTML and CSS, nothing else: no script, no external
 * resource, readable on a phone (one column, a viewport). Text from the
 * chain (operator names, series titles) and from the request is escaped.
 */
#include "serve.h"

#include "cliutil.h"
#include "trace_json.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char page_style[] =
    "body{font:16px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f4ef}"
    "header{background:#7a1f2b;color:#fff;padding:.8em 1em}"
    "header a{color:#fff;text-decoration:none}h1{font-size:1.3em;margin:0 0 .4em}"
    "header>*{max-width:58em;margin-inline:auto}"
    "form{display:flex;gap:.4em;margin:.3em 0;flex-wrap:wrap}"
    "input{flex:1;min-width:12em;padding:.4em;border:0;border-radius:4px;font:inherit}"
    "button{padding:.4em .9em;border:0;border-radius:4px;background:#f3c74f;font:inherit}"
    "main{max-width:60em;margin:auto;padding:1em}"
    "section{background:#fff;border-radius:6px;padding:.8em 1em;margin:0 0 1em;"
    "box-shadow:0 1px 2px #0002}"
    "h2{font-size:1.1em;margin:.2em 0 .6em}table{border-collapse:collapse;width:100%}"
    "td,th{text-align:left;padding:.25em .4em;border-bottom:1px solid #eee}"
    "td.n,th.n{text-align:right}.hash{font-family:monospace;word-break:break-all}"
    "ol.timeline{list-style:none;padding:0;margin:0;border-left:3px solid #7a1f2b}"
    "ol.timeline li{margin:0 0 .8em;padding-left:1em;position:relative}"
    "ol.timeline li:before{content:'';position:absolute;left:-.5em;top:.4em;width:.7em;"
    "height:.7em;border-radius:50%;background:#7a1f2b}"
    ".kind{font-weight:600;text-transform:capitalize}.muted{color:#667}"
    "svg{width:100%;height:auto}.bar{fill:#7a1f2b}"
    /* A phone shows the 600-unit chart at half size: its labels stay readable. */
    "@media(max-width:40em){svg text{font-size:24px}main{padding:.6em}}";

/* Text for HTML: markup escaped; the chain's names are any bytes, the page
 * is UTF-8: an invalid sequence shows as U+FFFD, a control character as ?. */
static void html_text(FILE *f, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        if (*s >= 0x80) {
            size_t n = pm_cli_utf8_length(s, 4); /* the NUL ends a cut sequence */
            fwrite(n ? (const void *)s : "\xef\xbf\xbd", 1, n ? n : 3, f);
            s += n ? n : 1;
            continue;
        }
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s < 0x20 ? '?' : *s, f);
        }
        s++;
    }
}

static void html_hex(FILE *f, const uint8_t *b, size_t n)
{
    char hex[2 * 64 + 1];
    fputs(pm_cli_hex(hex, b, n), f);
}

/* A key, linking to its holdings. */
static void html_key(FILE *f, const uint8_t key[32])
{
    fputs("<a class=\"hash\" href=\"/explorer/holdings?key=", f);
    html_hex(f, key, 32);
    fputs("\">", f);
    html_hex(f, key, 32);
    fputs("</a>", f);
}

static FILE *page_begin(char **text, size_t *size, const char *title, const char *id,
                        const char *key)
{
    FILE *f = open_memstream(text, size);
    if (!f)
        return NULL;
    fputs("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>",
          f);
    html_text(f, title);
    fprintf(f, " — Postmark</title><style>%s</style></head><body><header>"
               "<h1><a href=\"/\">Postmark explorer</a></h1>"
               "<form action=\"/explorer/stamp\"><input name=\"id\" "
               "placeholder=\"stamp: OPERATOR:SERIES:SERIAL\" aria-label=\"stamp\" value=\"",
            page_style);
    html_text(f, id ? id : "");
    fputs("\"><button>Trace</button></form><form action=\"/explorer/holdings\"><input "
          "name=\"key\" placeholder=\"owner key (64 hex digits)\" aria-label=\"key\" value=\"",
          f);
    html_text(f, key ? key : "");
    fputs("\"><button>Holdings</button></form></header><main>", f);
    return f;
}

/* text and size are page_begin's: set when the stream is closed. */
static void page_end(FILE *f, http_reply *out, int status, char **text, size_t *size)
{
    fputs("</main></body></html>\n", f);
    if (fclose(f) != 0) {
        free(*text);
        reply_error(out, 500, "out of memory");
        return;
    }
    out->status = status;
    out->content_type = "text/html; charset=utf-8";
    out->body = *text;
    out->size = *size;
}

/* A message page (bad input, not found). */
static void page_message(http_reply *out, int status, const char *title, const char *message,
                         const char *id, const char *key)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = page_begin(&text, &size, title, id, key);
    if (!f) {
        reply_error(out, 500, "out of memory");
        return;
    }
    fputs("<section><h2>", f);
    html_text(f, title);
    fputs("</h2><p>", f);
    html_text(f, message);
    fputs("</p></section>", f);
    page_end(f, out, status, &text, &size);
}

/* Records admitted per slot, as bars, with the peak rate written beside. */
static void throughput_chart(FILE *f, serve *s)
{
    uint64_t rates[SERVE_RATE_SLOTS], peak = 0, total = 0;
    metrics_rates(s, rates);
    for (size_t i = 0; i < SERVE_RATE_SLOTS; i++) {
        peak = rates[i] > peak ? rates[i] : peak;
        total += rates[i];
    }
    const int w = 600, h = 160, bw = w / SERVE_RATE_SLOTS;
    fprintf(f, "<section><h2>Throughput, last %d minutes</h2>"
               "<svg viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"transactions admitted per "
               "%d seconds\"><rect width=\"%d\" height=\"%d\" fill=\"#fbfaf7\"/>",
            SERVE_RATE_SLOTS * SERVE_RATE_SLOT / 60, w, h + 20, SERVE_RATE_SLOT, w, h);
    for (size_t i = 0; i < SERVE_RATE_SLOTS; i++) {
        int bh = peak ? (int)((double)rates[i] / (double)peak * (h - 10)) : 0;
        fprintf(f, "<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\">"
                   "<title>%" PRIu64 " transactions</title></rect>",
                (int)i * bw + 1, h - bh, bw - 2, bh, rates[i]);
    }
    fprintf(f, "<text x=\"4\" y=\"%d\" font-size=\"12\">-%d min</text>"
               "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">now</text>"
               "<text x=\"4\" y=\"30\" font-size=\"12\">peak %.0f tx/s</text></svg>"
               "<p class=\"muted\">%" PRIu64 " transactions admitted in these minutes.</p>"
               "</section>",
            h + 16, SERVE_RATE_SLOTS * SERVE_RATE_SLOT / 60, w - 4, h + 16,
            (double)peak / SERVE_RATE_SLOT, total);
}

void explorer_home(serve *s, const http_request *req, http_reply *out)
{
    (void)req;
    uint8_t tip[32];
    int64_t height;
    pthread_mutex_lock(&s->engine_lock);
    pm_engine_tip(s->engine, tip, &height);
    uint64_t utxos = pm_engine_utxo_count(s->engine);
    int64_t pending = s->pending;
    uint64_t records = s->batch_base;
    pthread_mutex_unlock(&s->engine_lock);

    char *text = NULL;
    size_t size = 0;
    FILE *f = page_begin(&text, &size, "Tip", NULL, NULL);
    if (!f) {
        reply_error(out, 500, "out of memory");
        return;
    }
    fprintf(f, "<section><h2>Tip</h2><table><tr><th>height</th><td>%" PRId64 "</td></tr>"
               "<tr><th>hash</th><td class=\"hash\">",
            height);
    html_hex(f, tip, 32);
    fprintf(f, "</td></tr><tr><th>unspent outputs</th><td>%" PRIu64 "</td></tr>"
               "<tr><th>pending (open block)</th><td>%" PRId64 "</td></tr>"
               "<tr><th>journal records</th><td>%" PRIu64 "</td></tr>"
               "<tr><th>since start</th><td>%" PRIu64 " accepted, %" PRIu64 " rejected</td></tr>"
               "</table></section>",
            utxos, pending, records, (uint64_t)atomic_load(&s->accepted),
            (uint64_t)atomic_load(&s->rejected));

    throughput_chart(f, s);

    fputs("<section><h2>Recent blocks</h2><table><tr><th class=\"n\">height</th><th>hash</th>"
          "<th class=\"n\">txs</th><th class=\"n\">bytes</th></tr>",
          f);
    uint64_t n = serve_block_count(s);
    for (uint64_t k = 0; k < 10 && k < n; k++) {
        pm_block_header bh;
        uint8_t hash[32];
        size_t bytes;
        if (!serve_block_header(s, n - 1 - k, &bh, hash, &bytes))
            continue;
        fprintf(f, "<tr><td class=\"n\">%" PRIu64 "</td><td class=\"hash\"><a href=\"/v1/block/%"
                   PRIu64 "\">",
                n - 1 - k, n - 1 - k);
        html_hex(f, hash, 8);
        fprintf(f, "…</a></td><td class=\"n\">%" PRIu32 "</td><td class=\"n\">%zu</td></tr>",
                bh.tx_count, bytes);
    }
    if (n == 0)
        fputs("<tr><td colspan=\"4\" class=\"muted\">no block yet</td></tr>", f);
    fputs("</table></section><section><h2>Rejects by reason (since start)</h2><table>", f);
    for (int r = PM_REASON_MALFORMED; r <= PM_REASON_BAD_SIGNATURE; r++) {
        uint64_t c = atomic_load(&s->reasons[r]);
        if (c)
            fprintf(f, "<tr><td>%s</td><td class=\"n\">%" PRIu64 "</td></tr>",
                    pm_reason_name((pm_reason)r), c);
    }
    if (!atomic_load(&s->rejected))
        fputs("<tr><td class=\"muted\">none</td></tr>", f);
    fputs("</table></section>", f);
    page_end(f, out, 200, &text, &size);
}

void explorer_stamp(serve *s, const http_request *req, http_reply *out)
{
    const char *id = http_query(req, "id");
    uint32_t v[3];
    if (!id || !pm_trace_parse_stamp(id, v)) {
        page_message(out, 400, "Bad stamp", "A stamp is OPERATOR:SERIES:SERIAL, three decimal "
                                            "numbers, e.g. 250:165:1.", id, NULL);
        return;
    }
    pm_stamp_trace t;
    tool_fault e;
    pthread_rwlock_rdlock(&s->chain_lock);
    pm_status st = pm_trace_stamp(s->ctx, &t, &e, s->opts.chain_path, v[0], v[1], v[2]);
    pthread_rwlock_unlock(&s->chain_lock);
    if (st != PM_OK || !t.issued) {
        page_message(out, st != PM_OK ? 500 : 404, st != PM_OK ? "Cannot read the chain" : "Never issued",
                     st != PM_OK ? e.message : "No block of this chain issues this stamp.", id,
                     NULL);
        pm_stamp_trace_free(&t);
        return;
    }
    char title[64], *text = NULL;
    size_t size = 0;
    snprintf(title, sizeof title, "Stamp %" PRIu32 ":%" PRIu32 ":%" PRIu32, v[0], v[1], v[2]);
    FILE *f = page_begin(&text, &size, title, id, NULL);
    if (!f) {
        pm_stamp_trace_free(&t);
        reply_error(out, 500, "out of memory");
        return;
    }
    fputs("<section><h2>", f);
    html_text(f, title);
    fputs("</h2><table><tr><th>operator</th><td>", f);
    html_text(f, t.operator_known ? t.operator_name : "(unknown)");
    fputs("</td></tr><tr><th>series</th><td>", f);
    html_text(f, t.series_known ? t.series_title : "(unknown)");
    if (t.series_known)
        fprintf(f, " — edition of %" PRIu32 ", face value %" PRIu64, t.max_supply, t.face_value);
    fputs("</td></tr><tr><th>owner now</th><td>", f);
    html_key(f, t.owner);
    fputs("</td></tr></table></section><section><h2>Provenance</h2><ol class=\"timeline\">", f);
    for (size_t i = 0; i < t.n_events; i++) {
        const pm_stamp_event *ev = &t.events[i];
        fprintf(f, "<li class=\"event\"><span class=\"kind\">%s</span> at height %" PRIu64
                   "<br>",
                pm_trace_event_kind(ev), ev->height);
        if (ev->is_issue) {
            fputs("by ", f);
            html_text(f, t.operator_known ? t.operator_name : "its operator");
            fputs(" to ", f);
        } else {
            fputs("from ", f);
            html_key(f, ev->from);
            fputs("<br>to ", f);
        }
        fputs("<span class=\"owner\">", f);
        html_key(f, ev->to);
        fputs("</span>", f);
        for (size_t k = 0; k < ev->n_price; k++)
            fprintf(f, "<br>price: %" PRIu64 " credits of operator %" PRIu32, ev->price[k].amount,
                    ev->price[k].issuer);
        fputs("<br><span class=\"muted hash\">tx ", f);
        html_hex(f, ev->txid, 32);
        fputs("</span></li>", f);
    }
    fputs("</ol></section>", f);
    pm_stamp_trace_free(&t);
    page_end(f, out, 200, &text, &size);
}

void explorer_holdings(serve *s, const http_request *req, http_reply *out)
{
    const char *hex = http_query(req, "key");
    uint8_t key[32];
    if (!hex || !pm_cli_unhex(key, 32, hex)) {
        page_message(out, 400, "Bad key", "A key is 64 hexadecimal digits.", NULL, hex);
        return;
    }
    pm_holdings h;
    tool_fault e;
    pthread_rwlock_rdlock(&s->chain_lock);
    pm_status st = pm_holdings_scan(s->ctx, &h, &e, s->opts.chain_path, key);
    pthread_rwlock_unlock(&s->chain_lock);
    if (st != PM_OK) {
        page_message(out, 500, "Cannot read the chain", e.message, NULL, hex);
        pm_holdings_free(&h);
        return;
    }
    char *text = NULL;
    size_t size = 0;
    FILE *f = page_begin(&text, &size, "Holdings", NULL, hex);
    if (!f) {
        pm_holdings_free(&h);
        reply_error(out, 500, "out of memory");
        return;
    }
    fputs("<section><h2>Holdings of <span class=\"hash\">", f);
    html_hex(f, key, 32);
    fputs("</span></h2><table><tr><th>stamp</th><th class=\"n\">since height</th></tr>", f);
    size_t stamps = 0, credits = 0;
    for (size_t i = 0; i < h.n; i++) {
        const pm_output *o = &h.items[i].output;
        if (o->kind != PM_OUTPUT_STAMP) {
            credits++;
            continue;
        }
        stamps++;
        fprintf(f, "<tr><td><a href=\"/explorer/stamp?id=%" PRIu32 ":%" PRIu32 ":%" PRIu32
                   "\">%" PRIu32 ":%" PRIu32 ":%" PRIu32 "</a></td><td class=\"n\">%" PRIu64
                   "</td></tr>",
                o->operator_id, o->series, o->serial, o->operator_id, o->series, o->serial,
                h.items[i].height);
    }
    if (!stamps)
        fputs("<tr><td colspan=\"2\" class=\"muted\">no stamp</td></tr>", f);
    fputs("</table></section><section><h2>Credits</h2><table><tr><th>issuer</th>"
          "<th class=\"n\">amount</th><th class=\"n\">since height</th></tr>",
          f);
    for (size_t i = 0; i < h.n; i++) {
        const pm_output *o = &h.items[i].output;
        if (o->kind == PM_OUTPUT_CREDIT)
            fprintf(f, "<tr><td>operator %" PRIu32 "</td><td class=\"n\">%" PRIu64
                       "</td><td class=\"n\">%" PRIu64 "</td></tr>",
                    o->operator_id, o->amount, h.items[i].height);
    }
    if (!credits)
        fputs("<tr><td colspan=\"3\" class=\"muted\">no credit</td></tr>", f);
    fputs("</table></section>", f);
    pm_holdings_free(&h);
    page_end(f, out, 200, &text, &size);
}
