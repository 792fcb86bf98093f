/*
 * metrics.c — GET /metrics in the Prometheus text format (version 0.0.4):
 * the engine's counters read under its lock, the service's own counters
 * (atomics, bumped where things happen), latency histograms, and HTTP
 * requests by route and status.
 */
#include "serve.h"

#include "cliutil.h"

#include <stdlib.h>
#include <string.h>

/* Upper bounds of the histogram buckets, in seconds (then +Inf). */
static const double bucket_le[SERVE_HIST_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                     0.05,   0.1,   0.2,   0.5,   1,    2};

const int serve_status_codes[SERVE_STATUS_SLOTS] = {200, 400, 401, 403, 404, 405,
                                                    409, 413, 422, 500, 503, 0};

/* [route][status slot]; the last route row counts requests that matched
 * no route. */
static _Atomic uint64_t http_requests[SERVE_MAX_ROUTES + 1][SERVE_STATUS_SLOTS];

void metrics_observe(serve_histogram *h, double seconds)
{
    for (size_t i = 0; i < SERVE_HIST_BUCKETS; i++)
        if (seconds <= bucket_le[i])
            atomic_fetch_add(&h->buckets[i], 1);
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_ns, (uint64_t)(seconds * 1e9));
}

void metrics_note_admitted(serve *s, uint64_t n)
{
    /* One writer (the committer): a slot whose time passed starts over. */
    int64_t when = (int64_t)pm_cli_now() / SERVE_RATE_SLOT;
    size_t i = (size_t)(when % SERVE_RATE_SLOTS);
    if (atomic_load(&s->rate_when[i]) != when) {
        atomic_store(&s->rate[i], 0);
        atomic_store(&s->rate_when[i], when);
    }
    atomic_fetch_add(&s->rate[i], n);
}

void metrics_rates(serve *s, uint64_t out[SERVE_RATE_SLOTS])
{
    int64_t now = (int64_t)pm_cli_now() / SERVE_RATE_SLOT;
    for (size_t k = 0; k < SERVE_RATE_SLOTS; k++) {
        int64_t when = now - (int64_t)(SERVE_RATE_SLOTS - 1 - k);
        size_t i = (size_t)(when % SERVE_RATE_SLOTS);
        out[k] = atomic_load(&s->rate_when[i]) == when ? atomic_load(&s->rate[i]) : 0;
    }
}

void metrics_count_request(size_t route_index, int status)
{
    size_t slot = SERVE_STATUS_SLOTS - 1;
    for (size_t i = 0; i + 1 < SERVE_STATUS_SLOTS; i++)
        if (serve_status_codes[i] == status)
            slot = i;
    if (route_index > SERVE_MAX_ROUTES)
        route_index = SERVE_MAX_ROUTES;
    atomic_fetch_add(&http_requests[route_index][slot], 1);
}

static void help(FILE *f, const char *name, const char *type, const char *text)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void histogram(FILE *f, const char *name, const char *text, serve_histogram *h)
{
    help(f, name, "histogram", text);
    for (size_t i = 0; i < SERVE_HIST_BUCKETS; i++)
        fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_le[i],
                (unsigned long long)atomic_load(&h->buckets[i]));
    unsigned long long count = atomic_load(&h->count);
    fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n", name, count, name,
            (double)atomic_load(&h->sum_ns) / 1e9, name, count);
}

char *metrics_render(serve *s, size_t *size)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, size);
    if (!f)
        return NULL;
    pm_stats st;
    int64_t height;
    pthread_mutex_lock(&s->engine_lock);
    pm_engine_stats(s->engine, &st);
    pm_engine_tip(s->engine, NULL, &height);
    uint64_t utxos = pm_engine_utxo_count(s->engine);
    int64_t pending = s->pending;
    uint64_t journal = s->batch_base;
    pthread_mutex_unlock(&s->engine_lock);

    help(f, "postmark_tip_height", "gauge", "Height of the tip block (-1: no block).");
    fprintf(f, "postmark_tip_height %lld\n", (long long)height);
    help(f, "postmark_blocks", "gauge", "Blocks in the chain.");
    fprintf(f, "postmark_blocks %llu\n", (unsigned long long)serve_block_count(s));
    help(f, "postmark_transactions_total", "counter",
         "Transactions admitted by this process, by verdict.");
    fprintf(f, "postmark_transactions_total{verdict=\"accepted\"} %llu\n",
            (unsigned long long)atomic_load(&s->accepted));
    fprintf(f, "postmark_transactions_total{verdict=\"rejected\"} %llu\n",
            (unsigned long long)atomic_load(&s->rejected));
    help(f, "postmark_rejects_total", "counter", "Rejected transactions by reason.");
    for (int r = PM_REASON_MALFORMED; r <= PM_REASON_BAD_SIGNATURE; r++)
        fprintf(f, "postmark_rejects_total{reason=\"%s\"} %llu\n", pm_reason_name((pm_reason)r),
                (unsigned long long)atomic_load(&s->reasons[r]));
    /* A gauge, typed untyped: its name (serve.md's) ends in _count, which
     * Prometheus's lint keeps for histograms and summaries. */
    help(f, "postmark_utxo_count", "untyped", "Unspent outputs in the current state.");
    fprintf(f, "postmark_utxo_count %llu\n", (unsigned long long)utxos);
    help(f, "postmark_pending_transactions", "gauge", "Accepted transactions in the open block.");
    fprintf(f, "postmark_pending_transactions %lld\n", (long long)pending);
    help(f, "postmark_journal_records", "gauge", "Records in the journal.");
    fprintf(f, "postmark_journal_records %llu\n", (unsigned long long)journal);
    help(f, "postmark_signatures_verified_total", "counter", "Signatures verified by the engine.");
    fprintf(f, "postmark_signatures_verified_total %llu\n",
            (unsigned long long)st.signatures_verified);
    help(f, "postmark_blocks_emitted_total", "counter", "Blocks made by this process.");
    fprintf(f, "postmark_blocks_emitted_total %llu\n", (unsigned long long)st.blocks_emitted);
    help(f, "postmark_stage_seconds_total", "counter", "Time spent in each pipeline stage.");
    fprintf(f, "postmark_stage_seconds_total{stage=\"hash\"} %.6f\n", st.seconds_hash);
    fprintf(f, "postmark_stage_seconds_total{stage=\"verify\"} %.6f\n", st.seconds_verify);
    fprintf(f, "postmark_stage_seconds_total{stage=\"commit\"} %.6f\n", st.seconds_commit);
    help(f, "postmark_batches_total", "counter", "Group commits (one journal fdatasync each).");
    fprintf(f, "postmark_batches_total %llu\n", (unsigned long long)atomic_load(&s->batches));
    help(f, "postmark_batch_records_total", "counter", "Records admitted in those batches.");
    fprintf(f, "postmark_batch_records_total %llu\n",
            (unsigned long long)atomic_load(&s->batch_records));
    histogram(f, "postmark_sync_seconds",
              "Journal appends (write + fdatasync) and block appends, each.", &s->fsync_hist);
    histogram(f, "postmark_admit_seconds",
              "From a request's records queued to their verdicts (group commit included).",
              &s->admit_hist);
    if (s->cluster)
        cluster_node_metrics(s, f);
    help(f, "postmark_http_requests_total", "counter", "HTTP requests by route and status.");
    for (size_t r = 0; r <= serve_route_count && r <= SERVE_MAX_ROUTES; r++)
        for (size_t i = 0; i < SERVE_STATUS_SLOTS; i++) {
            unsigned long long n = atomic_load(&http_requests[r][i]);
            if (n)
                fprintf(f, "postmark_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
                        r < serve_route_count ? serve_routes[r].name : "none",
                        serve_status_codes[i], n);
        }
    help(f, "postmark_uptime_seconds", "gauge", "Seconds since the service started.");
    fprintf(f, "postmark_uptime_seconds %.3f\n", pm_cli_now() - s->started);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
