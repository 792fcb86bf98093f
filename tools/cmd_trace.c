/*
 * cmd_trace.c — `postmark trace CHAIN OPERATOR:SERIES:SERIAL` (the
 * provenance of one stamp) and `postmark holdings CHAIN KEY` (what one key
 * owns now), over the chain scans of engine/provenance.h.
 *
 * Both read the chain once or twice from start to end (no index on disk:
 * see provenance.h for the cost); both assume the chain valid — `postmark
 * replay` verifies it — but stop with exit 1 on a record that cannot be
 * read or a history that contradicts itself, naming the block, the
 * transaction and the byte offset.
 *
 * The --json output of trace holds the fields cli.md promises (stamp,
 * owner, outpoint, events[{height, txid, owner}]) and more; a stamp never
 * issued prints {"stamp": ..., "never_issued": true} and exits 1.
 */
#include "cliutil.h"
#include "commands.h"

#include "provenance.h"
#include "trace_json.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char trace_usage[] =
    "usage: postmark trace CHAIN.pmbk OPERATOR:SERIES:SERIAL [--json]\n"
    "\n"
    "The provenance of one stamp: the issuing operator's name, the series title and\n"
    "edition size, the issue (block height, txid, first owner), then every later\n"
    "transaction that has the stamp among its outputs, even one that leaves it with\n"
    "the same owner (height, txid, from key, to key, and the price when the same\n"
    "transaction paid credits from the new owner to the previous one: a trade),\n"
    "and the current owner and outpoint.\n"
    "\n"
    "The chain is assumed valid (signatures and conservation are not checked; run\n"
    "`postmark replay CHAIN` to verify it). A record that cannot be read, or a\n"
    "history that contradicts itself, stops the trace with exit 1.\n"
    "\n"
    "  --json   one JSON object on stdout: stamp, owner, outpoint, events[{height,\n"
    "           txid, owner, from, kind, price}], operator_name, series_title,\n"
    "           max_supply, ...; {\"stamp\": ..., \"never_issued\": true} when the stamp\n"
    "           was never issued\n"
    "  --help   this text\n"
    "\n"
    "Price: per credit issuer, what the previous owner gained in the transaction\n"
    "(credit outputs to it, less its own credit inputs), up to what the new owner\n"
    "put in.\n"
    "\n"
    "Exit status: 0 the stamp was issued; 1 it never was, or the chain could not be\n"
    "read; 2 usage error.\n";

static const char holdings_usage[] =
    "usage: postmark holdings CHAIN.pmbk KEY [--json]\n"
    "\n"
    "What KEY (an x-only public key, 64 hex digits) owns at the tip of the chain:\n"
    "its stamps, and its credits summed per issuer, each with its outpoint.\n"
    "\n"
    "The chain is assumed valid (run `postmark replay CHAIN` to verify it); a record\n"
    "that cannot be read stops the scan with exit 1.\n"
    "\n"
    "  --json   one JSON object on stdout: key, stamps[{stamp, outpoint, height}],\n"
    "           credits[{issuer, amount, outputs[{outpoint, amount, height}]}]\n"
    "  --help   this text\n"
    "\n"
    "Exit status: 0 success (owning nothing included); 1 the chain could not be\n"
    "read; 2 usage error.\n";

/* Split argv into options (--json, --help) and positionals. Returns -1 on
 * --help (usage printed), 2 on a usage error, 0 otherwise. */
static int parse_args(const char *cmd, const char *usage, int argc, char **argv, int *json,
                      const char **pos, int npos)
{
    int n = 0, only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_positional && !strcmp(a, "--")) {
            only_positional = 1;
        } else if (!only_positional && (!strcmp(a, "--help") || !strcmp(a, "-h"))) {
            fputs(usage, stdout);
            return -1;
        } else if (!only_positional && !strcmp(a, "--json")) {
            *json = 1;
        } else if (!only_positional && a[0] == '-' && a[1]) {
            pm_cli_error(cmd, "unknown option '%s' (see postmark %s --help)", a, cmd);
            return PM_EXIT_USAGE;
        } else if (n < npos) {
            pos[n++] = a;
        } else {
            pm_cli_error(cmd, "unexpected argument '%s' (see postmark %s --help)", a, cmd);
            return PM_EXIT_USAGE;
        }
    }
    if (n < npos) {
        pm_cli_error(cmd, "missing argument%s (see postmark %s --help)", npos - n > 1 ? "s" : "",
                     cmd);
        return PM_EXIT_USAGE;
    }
    return 0;
}

/* "OPERATOR:SERIES:SERIAL", each a decimal u32 (also serve's route). */
int pm_trace_parse_stamp(const char *s, uint32_t v[3])
{
    char buf[64];
    if (strlen(s) >= sizeof buf)
        return 0;
    strcpy(buf, s);
    char *part = buf;
    for (int i = 0; i < 3; i++) {
        char *colon = strchr(part, ':');
        if ((i < 2) != (colon != NULL))
            return 0;
        if (colon)
            *colon = 0;
        uint64_t x;
        if (!pm_cli_parse_u64(part, 0, UINT32_MAX, &x))
            return 0;
        v[i] = (uint32_t)x;
        part = colon + 1;
    }
    return 1;
}

/* The one-line error of a failed scan. */
static void scan_failed(const char *cmd, const char *path, pm_status st, const tool_fault *e)
{
    if (st == PM_ERR_NOMEM) {
        pm_cli_error(cmd, "%s: out of memory", path);
    } else if (st == PM_ERR_IO) {
        pm_cli_error(cmd, "%s: %s", path, e->message);
    } else if (e->reason == PM_REASON_BAD_HEADER) {
        pm_cli_error(cmd, "%s: record 0 at byte %" PRIu64 ": BAD_HEADER: %s", path, e->offset,
                     e->message);
    } else {
        char tx[32] = "";
        if (e->item >= 0)
            snprintf(tx, sizeof tx, " tx %" PRId64, e->item);
        pm_cli_error(cmd, "%s: block %" PRIu64 "%s at byte %" PRIu64 ": %s%s%s%s", path, e->record,
                     tx, e->offset,
                     e->reason != PM_REASON_NONE ? pm_reason_name(e->reason) : "invalid history",
                     ": ", e->message,
                     e->reason == PM_REASON_NONE || e->reason == PM_REASON_MALFORMED ||
                             e->reason == PM_REASON_BLOCK_MALFORMED ||
                             e->reason == PM_REASON_TRUNCATED
                         ? " (the chain is invalid: see postmark replay)"
                         : "");
    }
}

/* The warning for a partial last block, left out of the scan. */
static void warn_partial(const char *cmd, const char *path, int partial, uint64_t offset,
                         uint64_t blocks)
{
    if (partial)
        pm_cli_note(cmd, "warning: %s: the file ends inside a block at byte %" PRIu64
                         " (a crash, or a pack appending): read the %" PRIu64 " whole blocks before it",
                    path, offset, blocks);
}

/* issue, trade, gift or self (also the explorer's). */
const char *pm_trace_event_kind(const pm_stamp_event *ev)
{
    if (ev->is_issue)
        return "issue";
    if (memcmp(ev->from, ev->to, 32) == 0)
        return "self";
    return ev->n_price ? "trade" : "gift";
}

/* The object of trace --json (also serve's GET /v1/stamp). */
/* A stamp's event: who had it, who has it, what was paid. */
static json_t *event_json(const pm_stamp_event *ev)
{
    json_t *price = json_array();
    for (size_t k = 0; k < ev->n_price; k++)
        json_array_append_new(price, json_pack("{s:I,s:I}", "issuer", (json_int_t)ev->price[k].issuer,
                                               "amount", (json_int_t)ev->price[k].amount));
    int no_from = ev->is_issue && !memcmp(ev->from, (const uint8_t[32]){0}, 32);
    return json_pack("{s:I,s:o,s:o,s:s,s:I,s:I,s:I,s:o,s:o,s:o}", "height", (json_int_t)ev->height,
                     "txid", pm_cli_json_hex(ev->txid, 32), "owner", pm_cli_json_hex(ev->to, 32),
                     "kind", pm_trace_event_kind(ev), "block", (json_int_t)ev->block, "tx",
                     (json_int_t)ev->tx, "output", (json_int_t)ev->out_index, "from",
                     no_from ? json_null() : pm_cli_json_hex(ev->from, 32), "to",
                     pm_cli_json_hex(ev->to, 32), "price", price);
}

void pm_trace_print_json(FILE *f, const pm_stamp_trace *t, double seconds)
{
    char name[48];
    snprintf(name, sizeof name, "%" PRIu32 ":%" PRIu32 ":%" PRIu32, t->operator_id, t->series,
             t->serial);
    json_t *o = json_pack("{s:s}", "stamp", name);
    if (!t->issued)
        json_object_set_new(o, "never_issued", json_true());
    json_object_set_new(o, "operator", json_integer(t->operator_id));
    json_object_set_new(o, "series", json_integer(t->series));
    json_object_set_new(o, "serial", json_integer(t->serial));
    /* Names are any bytes on the chain: invalid UTF-8 shows as U+FFFD. */
    json_object_set_new(o, "operator_name",
                        t->operator_known ? pm_cli_json_text(t->operator_name, strlen(t->operator_name))
                                          : json_null());
    if (t->series_known) {
        json_object_set_new(o, "series_title", pm_cli_json_text(t->series_title, strlen(t->series_title)));
        json_object_set_new(o, "max_supply", json_integer(t->max_supply));
        json_object_set_new(o, "face_value", json_integer((json_int_t)t->face_value));
        json_object_set_new(o, "series_metadata", pm_cli_json_hex(t->series_metadata, 32));
    } else {
        json_object_set_new(o, "series_title", json_null());
        json_object_set_new(o, "max_supply", json_null());
        json_object_set_new(o, "face_value", json_null());
    }
    if (t->issued) {
        char h[65], outpoint[72];
        snprintf(outpoint, sizeof outpoint, "%s:%u", pm_cli_hex(h, t->outpoint.txid, 32),
                 t->outpoint.index);
        json_object_set_new(o, "owner", pm_cli_json_hex(t->owner, 32));
        json_object_set_new(o, "outpoint", json_string(outpoint));
        const pm_stamp_event *is = &t->events[0];
        json_object_set_new(o, "issue", json_pack("{s:I,s:o,s:o}", "height", (json_int_t)is->height,
                                                  "txid", pm_cli_json_hex(is->txid, 32), "owner",
                                                  pm_cli_json_hex(is->to, 32)));
        size_t transfers = 0, trades = 0;
        for (size_t i = 1; i < t->n_events; i++) {
            transfers++;
            trades += t->events[i].n_price != 0;
        }
        json_object_set_new(o, "transfers", json_integer((json_int_t)transfers));
        json_object_set_new(o, "trades", json_integer((json_int_t)trades));
    }
    json_t *events = json_array();
    for (size_t i = 0; i < t->n_events; i++)
        json_array_append_new(events, event_json(&t->events[i]));
    json_object_set_new(o, "events", events);
    json_object_set_new(o, "blocks_scanned", json_integer((json_int_t)t->blocks));
    json_object_set_new(o, "txs_scanned", json_integer((json_int_t)t->txs));
    json_object_set_new(o, "seconds", json_real(seconds));
    pm_cli_json_print(f, o, 1);
}

static void print_trace_text(FILE *f, const pm_stamp_trace *t, double seconds)
{
    char h1[65], h2[65];
    fprintf(f, "stamp %" PRIu32 ":%" PRIu32 ":%" PRIu32 "\n", t->operator_id, t->series,
            t->serial);
    fprintf(f, "  operator  %" PRIu32 " %s%s%s\n", t->operator_id, t->operator_known ? "\"" : "",
            t->operator_known ? t->operator_name : "(never registered)",
            t->operator_known ? "\"" : "");
    if (t->series_known)
        fprintf(f, "  series    %" PRIu32 " \"%s\", edition of %" PRIu32 ", face value %" PRIu64
                   "\n",
                t->series, t->series_title, t->max_supply, t->face_value);
    else
        fprintf(f, "  series    %" PRIu32 " (never declared)\n", t->series);
    if (!t->issued) {
        fputs("  never issued\n", f);
    } else {
        for (size_t i = 0; i < t->n_events; i++) {
            const pm_stamp_event *ev = &t->events[i];
            const char *kind = pm_trace_event_kind(ev);
            fprintf(f, "  %-8s  height %" PRIu64 "  tx %s\n", kind, ev->height,
                    pm_cli_hex(h1, ev->txid, 32));
            if (ev->is_issue)
                fprintf(f, "            to   %s\n", pm_cli_hex(h1, ev->to, 32));
            else
                fprintf(f, "            from %s\n            to   %s\n",
                        pm_cli_hex(h1, ev->from, 32), pm_cli_hex(h2, ev->to, 32));
            for (size_t k = 0; k < ev->n_price; k++)
                fprintf(f, "            price %" PRIu64 " credits of issuer %" PRIu32 "\n",
                        ev->price[k].amount, ev->price[k].issuer);
        }
        fprintf(f, "  owner now %s\n  outpoint  %s:%u\n", pm_cli_hex(h1, t->owner, 32),
                pm_cli_hex(h2, t->outpoint.txid, 32), t->outpoint.index);
    }
    fprintf(f, "  (%" PRIu64 " blocks, %" PRIu64 " transactions scanned in %.3f s)\n", t->blocks,
            t->txs, seconds);
}

int pm_cmd_trace(int argc, char **argv)
{
    int json = 0;
    const char *pos[2];
    int r = parse_args("trace", trace_usage, argc, argv, &json, pos, 2);
    if (r)
        return r < 0 ? PM_EXIT_OK : r;
    uint32_t id[3];
    if (!pm_trace_parse_stamp(pos[1], id)) {
        pm_cli_error("trace", "bad stamp '%s': OPERATOR:SERIES:SERIAL expected, each a decimal "
                              "number up to 4294967295",
                     pos[1]);
        return PM_EXIT_USAGE;
    }
    pm_context *ctx = pm_context_create();
    if (!ctx) {
        pm_cli_error("trace", "cannot create the context (out of memory)");
        return PM_EXIT_INVALID;
    }
    pm_stamp_trace t;
    tool_fault e;
    double t0 = pm_cli_now();
    pm_status st = pm_trace_stamp(ctx, &t, &e, pos[0], id[0], id[1], id[2]);
    double seconds = pm_cli_now() - t0;
    int rc;
    if (st != PM_OK) {
        scan_failed("trace", pos[0], st, &e);
        rc = PM_EXIT_INVALID;
    } else {
        warn_partial("trace", pos[0], t.partial_tail, t.partial_offset, t.blocks);
        if (json)
            pm_trace_print_json(stdout, &t, seconds);
        else
            print_trace_text(stdout, &t, seconds);
        if (!t.issued)
            pm_cli_error("trace", "%s: stamp %s was never issued", pos[0], pos[1]);
        rc = t.issued ? PM_EXIT_OK : PM_EXIT_INVALID;
    }
    if (fflush(stdout) != 0) {
        pm_cli_error("trace", "cannot write the output");
        rc = PM_EXIT_INVALID;
    }
    pm_stamp_trace_free(&t);
    pm_context_destroy(ctx);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* holdings                                                                */
/* ---------------------------------------------------------------------- */

/* Credits of one issuer can sum past u64 (one ISSUE may mint any amounts),
 * so sums are 128-bit. */
__extension__ typedef unsigned __int128 u128;

/* The decimal digits of v, in buf; returns where they begin. */
static const char *u128_digits(char buf[48], u128 v)
{
    size_t n = 48;
    buf[--n] = 0;
    do {
        buf[--n] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    return buf + n;
}

/* A credit output's place: sorted by (issuer, chain order). */
typedef struct {
    uint32_t issuer;
    size_t item;
} credit_ref;

static int cmp_credit(const void *a, const void *b)
{
    const credit_ref *x = a, *y = b;
    if (x->issuer != y->issuer)
        return x->issuer < y->issuer ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

/* End of the run of refs[i..] with the same issuer, and its sum. */
static size_t issuer_run(const credit_ref *refs, size_t n, size_t i, const pm_holdings *h,
                         u128 *sum)
{
    *sum = 0;
    size_t j = i;
    while (j < n && refs[j].issuer == refs[i].issuer)
        *sum += h->items[refs[j++].item].output.amount;
    return j;
}

/* The credit outputs of h sorted by (issuer, chain order), and the number
 * of stamps; NULL when out of memory. */
static credit_ref *sort_credits(const pm_holdings *h, size_t *nrefs, size_t *nstamps)
{
    credit_ref *refs = malloc((h->n ? h->n : 1) * sizeof *refs);
    *nrefs = *nstamps = 0;
    if (!refs)
        return NULL;
    for (size_t i = 0; i < h->n; i++) {
        if (h->items[i].output.kind == PM_OUTPUT_CREDIT)
            refs[(*nrefs)++] = (credit_ref){h->items[i].output.operator_id, i};
        else
            (*nstamps)++;
    }
    qsort(refs, *nrefs, sizeof *refs, cmp_credit);
    return refs;
}

/* The object of holdings --json (jansson; a sum past int64 is still an
 * exact number). NULL when out of memory. */
static json_t *holdings_json(const uint8_t key[32], const pm_holdings *h, const credit_ref *refs,
                             size_t nrefs, size_t nstamps, double seconds)
{
    char hx[65], at[80], id[40], digits[48];
    json_t *stamps = json_array(), *credits = json_array();
    for (size_t i = 0; i < h->n; i++) {
        const pm_holding *it = &h->items[i];
        if (it->output.kind != PM_OUTPUT_STAMP)
            continue;
        snprintf(id, sizeof id, "%" PRIu32 ":%" PRIu32 ":%" PRIu32, it->output.operator_id,
                 it->output.series, it->output.serial);
        snprintf(at, sizeof at, "%s:%u", pm_cli_hex(hx, it->outpoint.txid, 32), it->outpoint.index);
        json_array_append_new(stamps, json_pack("{s:s, s:s, s:o}", "stamp", id, "outpoint", at,
                                                "height", pm_cli_json_u64(it->height)));
    }
    for (size_t i = 0; i < nrefs;) {
        u128 sum;
        size_t end = issuer_run(refs, nrefs, i, h, &sum);
        json_t *outputs = json_array();
        for (size_t j = i; j < end; j++) {
            const pm_holding *it = &h->items[refs[j].item];
            snprintf(at, sizeof at, "%s:%u", pm_cli_hex(hx, it->outpoint.txid, 32),
                     it->outpoint.index);
            json_array_append_new(outputs, json_pack("{s:s, s:o, s:o}", "outpoint", at, "amount",
                                                     pm_cli_json_u64(it->output.amount), "height",
                                                     pm_cli_json_u64(it->height)));
        }
        json_array_append_new(credits,
                              json_pack("{s:I, s:o, s:o}", "issuer", (json_int_t)refs[i].issuer,
                                        "amount", pm_cli_json_decimal(u128_digits(digits, sum)),
                                        "outputs", outputs));
        i = end;
    }
    return json_pack("{s:o, s:I, s:o, s:o, s:o, s:o, s:f}", "key", pm_cli_json_hex(key, 32),
                     "stamp_count", (json_int_t)nstamps, "stamps", stamps, "credits", credits,
                     "blocks_scanned", pm_cli_json_u64(h->blocks), "txs_scanned",
                     pm_cli_json_u64(h->txs), "seconds", seconds);
}

int pm_holdings_print_json(FILE *f, const uint8_t key[32], const pm_holdings *h, double seconds)
{
    size_t nrefs, nstamps;
    credit_ref *refs = sort_credits(h, &nrefs, &nstamps);
    if (!refs)
        return -1;
    int rc = pm_cli_json_print(f, holdings_json(key, h, refs, nrefs, nstamps, seconds), 1);
    free(refs);
    return rc;
}

int pm_cmd_holdings(int argc, char **argv)
{
    int json = 0;
    const char *pos[2];
    int r = parse_args("holdings", holdings_usage, argc, argv, &json, pos, 2);
    if (r)
        return r < 0 ? PM_EXIT_OK : r;
    uint8_t key[32];
    if (!pm_cli_unhex(key, 32, pos[1])) {
        pm_cli_error("holdings", "bad key '%s': 64 hex digits expected", pos[1]);
        return PM_EXIT_USAGE;
    }
    pm_context *ctx = pm_context_create();
    if (!ctx) {
        pm_cli_error("holdings", "cannot create the context (out of memory)");
        return PM_EXIT_INVALID;
    }
    pm_holdings h;
    tool_fault e;
    double t0 = pm_cli_now();
    pm_status st = pm_holdings_scan(ctx, &h, &e, pos[0], key);
    double seconds = pm_cli_now() - t0;
    int rc = PM_EXIT_OK;
    credit_ref *refs = NULL;
    size_t nrefs = 0, nstamps = 0, nissuers = 0;
    if (st != PM_OK) {
        scan_failed("holdings", pos[0], st, &e);
        rc = PM_EXIT_INVALID;
        goto done;
    }
    warn_partial("holdings", pos[0], h.partial_tail, h.partial_offset, h.blocks);
    refs = sort_credits(&h, &nrefs, &nstamps);
    if (!refs) {
        pm_cli_error("holdings", "out of memory");
        rc = PM_EXIT_INVALID;
        goto done;
    }
    for (size_t i = 0; i < nrefs; i++)
        nissuers += i == 0 || refs[i].issuer != refs[i - 1].issuer;

    FILE *f = stdout;
    char hx[65];
    char digits[48];
    if (json) {
        if (pm_cli_json_print(f, holdings_json(key, &h, refs, nrefs, nstamps, seconds), 1) != 0)
            rc = PM_EXIT_INVALID;
    } else {
        fprintf(f, "key %s\n  %zu stamp%s, credits of %zu issuer%s\n", pm_cli_hex(hx, key, 32),
                nstamps, nstamps == 1 ? "" : "s", nissuers, nissuers == 1 ? "" : "s");
        for (size_t i = 0; i < h.n; i++) {
            const pm_holding *it = &h.items[i];
            if (it->output.kind == PM_OUTPUT_STAMP)
                fprintf(f, "  stamp %" PRIu32 ":%" PRIu32 ":%" PRIu32 "  at %s:%u  (height %" PRIu64
                           ")\n",
                        it->output.operator_id, it->output.series, it->output.serial,
                        pm_cli_hex(hx, it->outpoint.txid, 32), it->outpoint.index, it->height);
        }
        for (size_t i = 0; i < nrefs;) {
            u128 sum;
            size_t end = issuer_run(refs, nrefs, i, &h, &sum);
            fprintf(f, "  credits of issuer %" PRIu32 ": %s in %zu output%s\n", refs[i].issuer,
                    u128_digits(digits, sum), end - i, end - i == 1 ? "" : "s");
            for (size_t j = i; j < end; j++) {
                const pm_holding *it = &h.items[refs[j].item];
                fprintf(f, "    %" PRIu64 "  at %s:%u  (height %" PRIu64 ")\n", it->output.amount,
                        pm_cli_hex(hx, it->outpoint.txid, 32), it->outpoint.index, it->height);
            }
            i = end;
        }
        fprintf(f, "  (%" PRIu64 " blocks, %" PRIu64 " transactions scanned in %.3f s)\n", h.blocks,
                h.txs, seconds);
    }
    if (fflush(stdout) != 0) {
        pm_cli_error("holdings", "cannot write the output");
        rc = PM_EXIT_INVALID;
    }
done:
    free(refs);
    pm_holdings_free(&h);
    pm_context_destroy(ctx);
    return rc;
}
