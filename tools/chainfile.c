/* chainfile.c — see chainfile.h. */
#include "chainfile.h"
#include "cliutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Large buffers: one ingest batch then holds many blocks, so the engine's
 * pipeline keeps verifying while the previous batch is committed. */
#define CHAIN_BUFFER (8u << 20)
#define CHAIN_BUFFER_MIN (1u << 20)
#define BATCH_RECORDS 4096

int input_open(pm_input *f, const char *path, pm_input_use use, unsigned idle_ms, int quiet,
               const pm_input_limits *limits, tool_fault *fault)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    pm_ingest_config cfg;
    pm_ingest_config_default(&cfg);
    if (use == PM_INPUT_CHAIN) {
        /* Registered buffers are pinned and zeroed up front: for a file
         * smaller than four large buffers, four that just cover it. */
        struct stat st;
        size_t size = CHAIN_BUFFER;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size < 4ull * CHAIN_BUFFER) {
            size = ((size_t)st.st_size / 4 + 4095) & ~(size_t)4095;
            if (size < CHAIN_BUFFER_MIN)
                size = CHAIN_BUFFER_MIN;
        }
        cfg.buffer_size = size;
        cfg.buffers = 4;
    }
    cfg.idle_ms = idle_ms;
    /* Never assemble a record the protocol cannot accept: a length prefix
     * of 4 GiB must cost nothing. */
    cfg.max_record = limits && limits->max_record ? limits->max_record
                     : use == PM_INPUT_CHAIN ? PM_BLOCK_MAX_SIZE
                                             : PM_TX_MAX_SIZE;
    cfg.cancel = limits ? limits->cancel : NULL;
    const char *force = getenv("PM_INGEST");
    if (force && strcmp(force, "read") == 0)
        cfg.flags |= PM_INGEST_NO_URING;
    if (pm_ingest_open_ex(&f->in, path, &cfg, fault) != PM_OK)
        return -1;
    const char *why = pm_ingest_fallback_reason(f->in);
    if (why && !quiet && !(force && strcmp(force, "read") == 0))
        pm_cli_note(NULL, "%s: io_uring unavailable (%s); reading with read(2)", path, why);
    int got = pm_ingest_header(f->in, f->header);
    if (got < 0) {
        if (fault)
            *fault = *ingest_fault(f->in);
        pm_ingest_close(f->in);
        f->in = NULL;
        return -1;
    }
    f->header_ok =
        pm_file_header_parse(pm_context_static, &f->kind, &f->params, &f->header_error, f->header,
                             got == 1 ? PM_FILE_HEADER_SIZE : (size_t)pm_ingest_bytes(f->in));
    return 0;
}

void pm_input_close(pm_input *f)
{
    pm_ingest_close(f->in);
    f->in = NULL;
}

int pm_input_refuse_header(const pm_input *f, const char *cmd, pm_file_kind want)
{
    if (f->header_ok && f->kind == want)
        return 0;
    pm_cli_error(cmd, "%s: record 0 at byte %zu: BAD_HEADER (%s)", f->path,
                 f->header_ok ? (size_t)0 : f->header_error.offset,
                 !f->header_ok ? f->header_error.reason
                 : want == PM_FILE_CHAIN ? "a transaction stream, not a chain"
                                         : "a chain, not a transaction stream");
    return 1;
}

/* Whether a block record has the hash `want`. */
static int block_has_hash(const uint8_t *block, size_t size, const uint8_t want[32])
{
    uint8_t hash[32];
    pm_context *ctx = pm_context_create();
    int same = ctx && block && size >= PM_BLOCK_HEADER_SIZE && pm_block_hash(ctx, hash, block) &&
               memcmp(hash, want, 32) == 0;
    pm_context_destroy(ctx);
    return same;
}

/* Skip the blocks below opts->start, checking the last one's hash. Sets
 * *position. Returns 1 when the batch is used up by skipped blocks. */
static pm_status skip_to_start(const pm_verify_opts *opts, const pm_record *recs, size_t n,
                               uint64_t *position, size_t *consumed, tool_fault *fault)
{
    *consumed = 0;
    while (*consumed < n && *position < opts->start) {
        const pm_record *r = &recs[*consumed];
        if (*position + 1 == opts->start && opts->start_parent) {
            int same = block_has_hash(r->bytes, r->size, opts->start_parent);
            if (!same) {
                char hex[65];
                tool_fault_set(fault, *position, r->offset, 0,
                               "snapshot tip is not in this chain: its block %llu is not %s",
                               (unsigned long long)*position,
                               pm_cli_hex(hex, opts->start_parent, 32));
                return PM_ERR_STATE;
            }
        }
        (*position)++;
        (*consumed)++;
    }
    return PM_OK;
}

pm_status chain_verify(pm_engine *engine, pm_input *f, const pm_verify_opts *opts,
                       pm_chain_result *res, tool_fault *fault)
{
    tool_fault_clear(fault);
    memset(res, 0, sizeof *res);
    pm_record *recs = malloc(BATCH_RECORDS * sizeof *recs);
    const uint8_t **blocks = malloc(BATCH_RECORDS * sizeof *blocks);
    size_t *sizes = malloc(BATCH_RECORDS * sizeof *sizes);
    if (!recs || !blocks || !sizes) {
        free(recs);
        free(blocks);
        free(sizes);
        return PM_ERR_NOMEM;
    }
    pm_progress prog;
    pm_progress_start(&prog, opts->progress, opts->progress == NULL);
    double started = pm_cli_now();
    pm_status st = PM_OK;
    uint64_t position = 0;
    pm_stats before;
    pm_engine_stats(engine, &before);
    res->valid = 1;
    for (;;) {
        size_t n = 0, skipped = 0;
        st = pm_ingest_next(f->in, recs, BATCH_RECORDS, &n);
        if (st != PM_OK) {
            if (fault)
                *fault = *ingest_fault(f->in);
            break;
        }
        if (n == 0)
            break;
        if (position < opts->start &&
            (st = skip_to_start(opts, recs, n, &position, &skipped, fault)) != PM_OK)
            break;
        if (skipped == n)
            continue;
        size_t count = n - skipped, oversized = count;
        for (size_t i = 0; i < count; i++) {
            blocks[i] = recs[skipped + i].bytes;
            sizes[i] = recs[skipped + i].size;
            if (!blocks[i] && oversized == count)
                oversized = i;
        }
        uint64_t av = opts->assume_valid_upto;
        size_t skip_sigs = av > position ? (size_t)(av - position) : 0;
        if (opts->assume_valid_hash && av > position && av - position <= oversized &&
            !block_has_hash(blocks[av - 1 - position], sizes[av - 1 - position],
                               opts->assume_valid_hash)) {
            tool_fault_set(fault, av - 1, recs[skipped + (size_t)(av - 1 - position)].offset, 0,
                           "the file changed while it was read: block %llu no longer has the "
                           "--assume-valid hash; no verdict",
                           (unsigned long long)(av - 1));
            st = PM_ERR_IO;
            break;
        }
        pm_verdict v;
        st = oversized ? pm_engine_connect_blocks(engine, &v, blocks, sizes, oversized, skip_sigs)
                       : PM_OK;
        if (st == PM_OK && oversized < count) {
            /* Longer than a block may be: malformed, its bytes never kept. */
            memset(&v, 0, sizeof v);
            v.reason = PM_REASON_BLOCK_MALFORMED;
            v.block = oversized;
            v.tx = -1;
            st = PM_ERR_INVALID;
        }
        size_t good = st == PM_OK ? count : (size_t)v.block;
        if (st == PM_ERR_INVALID) {
            res->valid = 0;
            res->verdict = v;
            res->verdict.block = position + v.block;
            res->offset = recs[skipped + v.block].offset;
            st = PM_OK;
            position += good;
            break;
        }
        if (st != PM_OK) {
            tool_fault_msg(fault, 0, "%s", pm_engine_last_error(engine));
            break;
        }
        position += count;
        pm_progress_update(&prog, f->in, position, position);
    }
    pm_progress_end(&prog);
    res->seconds = pm_cli_now() - started;
    pm_stats after;
    pm_engine_stats(engine, &after);
    res->blocks = position;
    res->txs = after.txs_accepted - before.txs_accepted;
    if (st == PM_OK && res->valid && opts->assume_valid_hash &&
        position < opts->assume_valid_upto) {
        tool_fault_msg(fault, 0,
                       "the file changed while it was read: it no longer reaches the "
                       "--assume-valid block %llu; no verdict",
                       (unsigned long long)(opts->assume_valid_upto - 1));
        st = PM_ERR_IO;
    }
    if (st == PM_OK && position < opts->start) {
        tool_fault_msg(fault, 0,
                       "snapshot tip is not in this chain: it has %llu whole blocks, the "
                       "snapshot's tip is block %llu",
                       (unsigned long long)position, (unsigned long long)(opts->start - 1));
        st = PM_ERR_STATE;
    }
    if (st == PM_OK && res->valid &&
        pm_ingest_truncated(f->in, &res->truncated_offset, NULL)) {
        res->truncated = 1;
        res->valid = 0;
        memset(&res->verdict, 0, sizeof res->verdict);
        res->verdict.reason = PM_REASON_TRUNCATED;
        res->verdict.block = position;
        res->verdict.tx = -1;
        res->offset = res->truncated_offset;
    }
    free(recs);
    free(blocks);
    free(sizes);
    return st;
}

int64_t pm_chain_find_block(const char *path, const uint8_t hash[32], tool_fault *fault)
{
    pm_input f;
    if (input_open(&f, path, PM_INPUT_CHAIN, 0, 1, NULL, fault) != 0)
        return -1;
    pm_context *ctx = pm_context_create();
    pm_record recs[256];
    int64_t found = 0, position = 0;
    while (ctx && f.header_ok && !found) {
        size_t n = 0;
        if (pm_ingest_next(f.in, recs, 256, &n) != PM_OK) {
            if (fault)
                *fault = *ingest_fault(f.in);
            found = -1;
            break;
        }
        if (n == 0)
            break;
        for (size_t i = 0; i < n && !found; i++, position++) {
            uint8_t h[32];
            if (recs[i].bytes && recs[i].size >= PM_BLOCK_HEADER_SIZE &&
                pm_block_hash(ctx, h, recs[i].bytes) &&
                memcmp(h, hash, 32) == 0)
                found = position + 1;
        }
    }
    pm_context_destroy(ctx);
    pm_input_close(&f);
    return found;
}

int pm_input_open(pm_input *f, const char *path, pm_input_use use, unsigned idle_ms, int quiet,
                  const pm_input_limits *limits, char *err, size_t errlen)
{
    tool_fault fault;
    tool_fault_clear(&fault);
    int rc = input_open(f, path, use, idle_ms, quiet, limits, &fault);
    tool_fault_copy_text(&fault, err, errlen);
    return rc;
}

pm_status pm_chain_verify(pm_engine *engine, pm_input *f, const pm_verify_opts *opts,
                          pm_chain_result *res, char *err, size_t errlen)
{
    tool_fault fault;
    pm_status st = chain_verify(engine, f, opts, res, &fault);
    tool_fault_copy_text(&fault, err, errlen);
    return st;
}

pm_status pm_state_json(pm_engine *engine, json_t *obj)
{
    uint8_t tip[32], digest[32];
    int64_t height;
    pm_engine_tip(engine, tip, &height);
    pm_status st = pm_engine_utxo_digest(engine, digest);
    if (st != PM_OK)
        return st;
    json_object_set_new(obj, "height", json_integer(height));
    json_object_set_new(obj, "tip", pm_cli_json_hex(tip, 32));
    json_object_set_new(obj, "utxo_count", json_integer((json_int_t)pm_engine_utxo_count(engine)));
    json_object_set_new(obj, "utxo_digest", pm_cli_json_hex(digest, 32));
    return PM_OK;
}

void pm_progress_start(pm_progress *p, const char *cmd, int quiet)
{
    p->cmd = cmd;
    p->enabled = !quiet && cmd && pm_cli_progress_enabled();
    p->started = p->last = pm_cli_now();
}

void pm_progress_update(pm_progress *p, const pm_ingest *in, uint64_t records, uint64_t blocks)
{
    if (!p->enabled)
        return;
    double now = pm_cli_now();
    if (now - p->last < 0.5)
        return;
    p->last = now;
    double elapsed = now - p->started;
    uint64_t done = pm_ingest_bytes(in), total = pm_ingest_size(in);
    char eta[32] = "";
    if (total > done && done > 0)
        snprintf(eta, sizeof eta, ", ETA %.0f s", elapsed * (double)(total - done) / (double)done);
    fprintf(stderr, "\rpostmark %s: %llu records, %.0f/s, %llu blocks, %.1f%%%s   ", p->cmd,
            (unsigned long long)records, elapsed > 0 ? (double)records / elapsed : 0.0,
            (unsigned long long)blocks, total ? 100.0 * (double)done / (double)total : 0.0, eta);
}

void pm_progress_end(pm_progress *p)
{
    if (p->enabled && p->last > p->started)
        fputc('\n', stderr);
}
