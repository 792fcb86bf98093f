/*
 * gen_write.c — the generator's signing (parallel workers) and writing of
 * each planned chunk, and the entry points of gen.h (design: gen_impl.h).
 */
#include "gen_impl.h"

/* Operators are real postal administrations, their ids the ISO 3166-1
 * numeric code of their country. */
static const struct {
    uint32_t id;
    const char *name;
} operator_names[] = {
    {250, "La Poste"},          {276, "Deutsche Post"},      {826, "Royal Mail"},
    {756, "Swiss Post"},        {528, "PostNL"},             {724, "Correos"},
    {380, "Poste Italiane"},    {392, "Japan Post"},         {840, "USPS"},
    {124, "Canada Post"},       {36, "Australia Post"},      {752, "PostNord"},
    {40, "Österreichische Post"}, {56, "bpost"},              {372, "An Post"},
    {246, "Posti"},             {578, "Posten Norge"},       {620, "CTT Correios de Portugal"},
    {616, "Poczta Polska"},     {203, "Česká pošta"},        {348, "Magyar Posta"},
    {300, "ELTA Hellenic Post"}, {76, "Correios"},           {484, "Correos de México"},
    {356, "India Post"},        {156, "China Post"},         {410, "Korea Post"},
    {702, "SingPost"},          {554, "NZ Post"},            {710, "South African Post Office"},
    {784, "Emirates Post"},     {792, "PTT"},                {804, "Ukrposhta"},
    {704, "Vietnam Post"},      {764, "Thailand Post"},      {360, "Pos Indonesia"},
    {458, "Pos Malaysia"},      {608, "PHLPost"},            {376, "Israel Post"},
    {818, "Egypt Post"},        {352, "Íslandspóstur"},      {705, "Pošta Slovenije"},
    {191, "Hrvatska pošta"},    {233, "Omniva"},             {428, "Latvijas Pasts"},
    {440, "Lietuvos paštas"},   {442, "POST Luxembourg"},    {470, "MaltaPost"},
    {196, "Cyprus Post"},       {642, "Poșta Română"},       {100, "Bulgarian Posts"},
    {703, "Slovenská pošta"},   {688, "Pošta Srbije"},       {32, "Correo Argentino"},
    {152, "CorreosChile"},
};
#define N_OPERATOR_NAMES (sizeof operator_names / sizeof operator_names[0])

/* ---------------------------------------------------------------------- */
/* Signing (parallel) and writing.                                         */
/* ---------------------------------------------------------------------- */

typedef struct {
    gen *g;
    unsigned worker, n_workers;
    int ok;
} sign_job;

static void *sign_worker(void *arg)
{
    sign_job *job = arg;
    gen *g = job->g;
    job->ok = 1;
    for (uint32_t i = job->worker; job->ok && i < g->n_recs; i += job->n_workers) {
        const rec *r = &g->recs[i];
        if (r->n_sigs == 0 || r->copy_of >= 0)
            continue;
        uint8_t sighash[32];
        if (!pm_tx_sighash(g->ctx, sighash, g->chain_id, r->txid)) {
            job->ok = 0;
            break;
        }
        uint8_t *sigs = g->arena + r->off + 4 + r->sig_off;
        const uint32_t *keys = g->signers + r->signers;
        for (uint32_t s = 0; s < r->n_sigs; s++) {
            uint32_t same = s;
            for (uint32_t t = 0; t < s; t++)
                if (keys[t] == keys[s]) {
                    same = t;
                    break;
                }
            if (same != s) /* one key, one message: the same signature */
                memcpy(sigs + s * PM_SIG_SIZE, sigs + same * PM_SIG_SIZE, PM_SIG_SIZE);
            else if (!secp256k1_schnorrsig_sign32(g->secp, sigs + s * PM_SIG_SIZE, sighash,
                                                  &g->keys[keys[s]].kp, NULL))
                job->ok = 0;
        }
    }
    return NULL;
}

static int sign_chunk(gen *g)
{
    unsigned n = g->threads;
    if (n > g->n_recs)
        n = g->n_recs ? g->n_recs : 1;
    sign_job jobs[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS];
    for (unsigned t = 0; t < n; t++) {
        jobs[t] = (sign_job){g, t, n, 0};
        started[t] = t > 0 && pthread_create(&tids[t], NULL, sign_worker, &jobs[t]) == 0;
    }
    sign_worker(&jobs[0]);
    int ok = jobs[0].ok;
    for (unsigned t = 1; t < n; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            sign_worker(&jobs[t]); /* no thread: do its share here */
        ok = ok && jobs[t].ok;
    }
    return ok;
}

static int write_all(int fd, const uint8_t *p, size_t n, tool_fault *fault)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : 0;
            tool_fault_msg(fault, e, "write: %s",
                           e ? strerror(e) : "no progress");
            return 0;
        }
        p += w;
        n -= (size_t)w;
    }
    return 1;
}

/* Keep a few accepted records of the chunk for replays in later chunks. */
static void save_for_replay(gen *g)
{
    uint32_t step = g->n_accepted / 16 + 1;
    for (uint32_t a = 0; a < g->n_accepted; a += step) {
        const rec *r = &g->recs[g->accepted[a]];
        if (r->len > REPLAY_MAX_SIZE)
            continue;
        saved_tx *s = &g->replay_pool[g->replay_pool_next];
        uint8_t *bytes = realloc(s->bytes, r->len);
        if (!bytes)
            return; /* replays are optional material */
        memcpy(bytes, g->arena + r->off + 4, r->len);
        s->bytes = bytes;
        s->len = r->len;
        s->type = g->accepted_type[a];
        g->replay_pool_next = (g->replay_pool_next + 1) % REPLAY_POOL;
        if (g->n_replay_pool < REPLAY_POOL)
            g->n_replay_pool++;
    }
}

/* ---------------------------------------------------------------------- */
/* Setup and the public entry points.                                      */
/* ---------------------------------------------------------------------- */

void pm_gen_config_default(pm_gen_config *cfg, pm_gen_shape shape)
{
    TOOL_CHECK(cfg != NULL);
    memset(cfg, 0, sizeof *cfg);
    cfg->shape = shape;
    cfg->seed = 1;
    cfg->txs = 100000;
    memcpy(cfg->network, "upu-dpg-test", 12);
    switch (shape) {
    case PM_GEN_MARKET:
        cfg->operators = 12;
        cfg->series_per_operator = 20;
        cfg->collectors = 5000;
        cfg->double_spend_ppm = 2000;
        cfg->bad_signature_ppm = 2000;
        cfg->conflict_ppm = 1000;
        cfg->replay_ppm = 1000;
        cfg->malformed_ppm = 1000;
        cfg->chain_ppm = 50000;
        cfg->other_ppm = 1000;
        break;
    case PM_GEN_TRANSFERS:
        cfg->operators = 1;
        cfg->series_per_operator = 1;
        cfg->collectors = 4000;
        break;
    case PM_GEN_LARGE_STATE:
        cfg->operators = 4;
        cfg->series_per_operator = 4;
        cfg->collectors = 10000;
        break;
    }
}

static pm_status fail(tool_fault *fault, pm_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static pm_status fail(tool_fault *fault, pm_status st, const char *fmt, ...)
{
    if (fault) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(fault->message, sizeof fault->message, fmt, ap);
        va_end(ap);
    }
    return st;
}

static void gen_free(gen *g)
{
    if (g->secp)
        secp256k1_context_destroy(g->secp);
    free(g->keys);
    for (uint32_t i = 0; i < g->n_ops; i++)
        free(g->ops[i].series);
    free(g->ops);
    free(g->zipf_cdf);
    free(g->pool);
    free(g->credit_head);
    for (uint32_t i = 0; i < REPLAY_POOL; i++)
        free(g->replay_pool[i].bytes);
    free(g->arena);
    free(g->recs);
    free(g->signers);
    free(g->accepted);
    free(g->accepted_type);
}

static int gen_init(gen *g, const pm_context *ctx, const pm_gen_config *cfg)
{
    g->ctx = ctx;
    g->cfg = *cfg;
    size_t nl = strnlen(cfg->network, PM_NETWORK_SIZE);
    memset(g->params.network, 0, PM_NETWORK_SIZE);
    memcpy(g->params.network, cfg->network, nl);
    rng_seed(&g->rng, cfg->seed);
    g->secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    g->ops = calloc(cfg->operators, sizeof *g->ops);
    g->zipf_cdf = malloc((size_t)cfg->collectors * sizeof *g->zipf_cdf);
    g->credit_head = malloc((size_t)cfg->collectors * sizeof *g->credit_head);
    g->arena = malloc(ARENA_BYTES);
    g->chunk_records = cfg->chunk_records && cfg->chunk_records < CHUNK_RECORDS
                           ? cfg->chunk_records
                           : CHUNK_RECORDS;
    g->recs = malloc(g->chunk_records * sizeof *g->recs);
    g->accepted = malloc(g->chunk_records * sizeof *g->accepted);
    g->accepted_type = malloc(g->chunk_records);
    if (!g->secp || !g->ops || !g->zipf_cdf || !g->credit_head || !g->arena || !g->recs ||
        !g->accepted || !g->accepted_type)
        return 0;
    g->n_ops = cfg->operators;
    g->pool_free = NONE;
    g->pool_limit = cfg->shape == PM_GEN_LARGE_STATE ? 65536u : 1u << 20;

    /* keys: governance, forgers, collectors; then operators as admitted */
    if (gen_add_key(g, 'g', 0) != KEY_GOV)
        return 0;
    for (uint32_t i = 0; i < N_FORGERS; i++)
        if (gen_add_key(g, 'f', i) == NONE)
            return 0;
    for (uint32_t i = 0; i < cfg->collectors; i++)
        if (gen_add_key(g, 'c', i) == NONE)
            return 0;
    memcpy(g->params.governance_key, g->keys[KEY_GOV].xonly, PM_KEY_SIZE);
    memcpy(g->report.governance_key, g->keys[KEY_GOV].xonly, PM_KEY_SIZE);
    if (!pm_chain_id(g->ctx, g->chain_id, &g->params))
        return 0;

    uint64_t total = 0;
    for (uint32_t i = 0; i < cfg->collectors; i++) {
        total += (UINT64_C(1) << 32) / ((uint64_t)i + 1);
        g->zipf_cdf[i] = total;
        g->credit_head[i] = NONE;
    }
    g->zipf_total = total;

    for (uint32_t k = 0; k < cfg->operators; k++) {
        op_m *op = &g->ops[k];
        if (k < N_OPERATOR_NAMES) {
            op->id = operator_names[k].id;
            op->name = operator_names[k].name;
        } else {
            op->id = EXTRA_OPERATOR_ID + k;
            snprintf(op->name_buf, sizeof op->name_buf, "Postal Operator %u", k + 1);
            op->name = op->name_buf;
        }
        op->key = op->old_key = NONE;
    }
    unsigned threads = cfg->threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    g->threads = threads > MAX_THREADS ? MAX_THREADS : threads;
    return 1;
}

pm_status pm_gen_write(const pm_context *ctx, const pm_gen_config *cfg, int fd,
                       pm_gen_report *report, tool_fault *fault)
{
    TOOL_CHECK(ctx != NULL);
    TOOL_CHECK(cfg != NULL);
    tool_fault_clear(fault);
    if (cfg->shape != PM_GEN_MARKET && cfg->shape != PM_GEN_TRANSFERS &&
        cfg->shape != PM_GEN_LARGE_STATE)
        return fail(fault, PM_ERR_ARG, "unknown shape %d", (int)cfg->shape);
    if (cfg->operators < 1 || cfg->operators > 65535)
        return fail(fault, PM_ERR_ARG, "operators must be 1..65535");
    if (cfg->series_per_operator < 1 || cfg->series_per_operator > 100000)
        return fail(fault, PM_ERR_ARG, "series_per_operator must be 1..100000");
    if (cfg->collectors < 1 || cfg->collectors > 16000000)
        return fail(fault, PM_ERR_ARG, "collectors must be 1..16000000");
    uint64_t rates = (uint64_t)cfg->double_spend_ppm + cfg->bad_signature_ppm + cfg->conflict_ppm +
                     cfg->replay_ppm + cfg->malformed_ppm + cfg->chain_ppm + cfg->other_ppm;
    if (rates > PPM)
        return fail(fault, PM_ERR_ARG, "the rates add up to more than 1,000,000 ppm");

    gen *g = calloc(1, sizeof *g);
    if (!g)
        return fail(fault, PM_ERR_NOMEM, "out of memory");
    pm_status st = PM_OK;
    if (!gen_init(g, ctx, cfg)) {
        st = fail(fault, PM_ERR_NOMEM, "out of memory");
        goto out;
    }

    uint8_t header[PM_FILE_HEADER_SIZE];
    pm_file_header_encode(pm_context_static, header, PM_FILE_STREAM, &g->params);
    if (!write_all(fd, header, sizeof header, fault)) {
        st = PM_ERR_IO;
        goto out;
    }
    while (g->record_no < cfg->txs) {
        g->arena_used = 0;
        g->n_recs = 0;
        g->n_signers = 0;
        g->n_accepted = 0;
        while (g->record_no < cfg->txs && g->n_recs < g->chunk_records &&
               g->arena_used < CHUNK_BYTES && !g->oom)
            if (!gen_plan_one(g))
                g->oom = 1;
        if (g->oom || !sign_chunk(g)) {
            st = fail(fault, PM_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (uint32_t i = 0; i < g->n_recs; i++) {
            const rec *r = &g->recs[i];
            if (r->copy_of >= 0)
                memcpy(g->arena + r->off + 4, g->arena + g->recs[r->copy_of].off + 4, r->len);
        }
        if (!write_all(fd, g->arena, g->arena_used, fault)) {
            st = PM_ERR_IO;
            goto out;
        }
        save_for_replay(g);
    }
out:
    g->report.records = g->record_no;
    if (report)
        *report = g->report;
    gen_free(g);
    free(g);
    return st;
}
