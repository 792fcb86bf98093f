/*
 * gen_plan.c — the generator's planner: which record comes next and what it
 * is built to do (valid, or failing at exactly one check), per shape
 * (design: gen_impl.h).
 */
#include "gen_impl.h"

/* ---------------------------------------------------------------------- */
/* Names and sizes of series.                                              */
/* ---------------------------------------------------------------------- */

static const char *const themes[] = {
    "Europa: Underwater Fauna", "Christmas",          "Lunar New Year",    "Birds of Prey",
    "Lighthouses",              "Definitives",        "Olympic Games",     "Mushrooms",
    "Railway Heritage",         "Famous Bridges",     "Alpine Flowers",    "Space Exploration",
    "Butterflies",              "Old Masters",        "Winter Sports",     "Centenary of Radio",
    "Classic Cars",             "Castles",            "Cats and Dogs",     "Endangered Species",
    "Écrivains célèbres",       "Bäume des Jahres",   "Jardins d'Europe",  "Tall Ships",
};
#define N_THEMES (sizeof themes / sizeof themes[0])

/* Edition sizes, from the rarest to the commonest, with their weights. */
static const uint32_t editions[] = {50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000, 40000, 80000};
static const uint32_t edition_weights[] = {2, 3, 5, 8, 12, 14, 14, 14, 12, 9, 7};
#define N_EDITIONS (sizeof editions / sizeof editions[0])

static const uint64_t face_values[] = {85, 100, 116, 128, 143, 165, 195, 250, 300, 500, 1000};
#define N_FACE_VALUES (sizeof face_values / sizeof face_values[0])

/* ---------------------------------------------------------------------- */
/* Valid transactions.                                                     */
/* ---------------------------------------------------------------------- */

static void series_title(gen *g, draft *d, uint32_t j, uint32_t year)
{
    (void)g;
    int n = snprintf((char *)d->text, sizeof d->text, "%s %u", themes[j % N_THEMES], year);
    d->tx.text_len = (size_t)n;
}

static uint32_t pick_edition(gen *g)
{
    uint32_t total = 0;
    for (size_t i = 0; i < N_EDITIONS; i++)
        total += edition_weights[i];
    uint32_t u = (uint32_t)rng_below(&g->rng, total);
    size_t i = 0;
    while (u >= edition_weights[i])
        u -= edition_weights[i++];
    uint32_t base = editions[i];
    return base - (uint32_t)rng_below(&g->rng, base / 5 + 1); /* some jitter below */
}

/* REGISTER operator k: its admission (generation 0) or a key rotation.
 * signer: the governance key, or a forger for a bad signature. */
static int build_register(gen *g, uint32_t k, int rotate)
{
    op_m *op = &g->ops[k];
    uint32_t key = gen_add_key(g, 'o', k << 8 | ((op->generation + (uint32_t)rotate) & 0xFF));
    if (key == NONE)
        return 0;
    draft *d = gen_d_begin(g, PM_TX_REGISTER);
    d->tx.seq = g->gov_seq + 1;
    d->tx.operator_id = op->id;
    memcpy(d->key, g->keys[key].xonly, 32);
    d->tx.text_len = strlen(op->name);
    memcpy(d->text, op->name, d->tx.text_len);
    d->op = k;
    d->new_key = key;
    gen_d_signer(d, KEY_GOV);
    return 1;
}

/* SERIES: the next series of operator k, signed by its key. */
static void build_series(gen *g, uint32_t k, uint32_t max_supply)
{
    op_m *op = &g->ops[k];
    uint32_t j = op->series_counter;
    uint32_t year = 2001 + j % 25;
    draft *d = gen_d_begin(g, PM_TX_SERIES);
    d->tx.seq = op->op_seq + 1;
    d->tx.operator_id = op->id;
    d->tx.series = year * 1000 + j / 25 + 1; /* unique per operator */
    d->tx.max_supply = max_supply;
    d->tx.face_value = face_values[rng_below(&g->rng, N_FACE_VALUES)];
    series_title(g, d, j + op->id, year);
    /* stands for the SHA-256 of the artwork and description */
    if (!pm_tagged_hash(g->ctx, d->metadata, "postmark-gen/artwork", d->text,
                        d->tx.text_len))
        g->oom = 1;
    d->new_series = (series_m){(uint32_t)d->tx.series, max_supply, 1};
    d->op = k;
    gen_d_signer(d, op->key);
}

static int series_room(gen *g, uint32_t k)
{
    op_m *op = &g->ops[k];
    if (op->n_series < op->cap_series)
        return 1;
    uint32_t cap = op->cap_series ? op->cap_series * 2 : 16;
    series_m *s = realloc(op->series, cap * sizeof *s);
    if (!s) {
        g->oom = 1;
        return 0;
    }
    op->series = s;
    op->cap_series = cap;
    return 1;
}

/* A series of operator k with unminted stamps, or NONE. */
static uint32_t open_series(gen *g, uint32_t k)
{
    op_m *op = &g->ops[k];
    if (op->n_series == 0)
        return NONE;
    uint32_t start = (uint32_t)rng_below(&g->rng, op->n_series);
    for (uint32_t t = 0; t < op->n_series; t++) {
        uint32_t s = (start + t) % op->n_series;
        if (op->series[s].next_serial <= op->series[s].max_supply)
            return s;
    }
    return NONE;
}

/* ISSUE by operator k: up to n_stamps stamps of one open series, then
 * n_credits credits of credit_min (>= 1) plus up to credit_span - 1 (at
 * least one output in all); owners skewed or uniform. Signed by its key. */
static void build_issue(gen *g, uint32_t k, uint32_t n_stamps, uint32_t n_credits, int skewed,
                        uint64_t credit_min, uint64_t credit_span)
{
    op_m *op = &g->ops[k];
    draft *d = gen_d_begin(g, PM_TX_ISSUE);
    d->tx.seq = op->op_seq + 1;
    d->tx.operator_id = op->id;
    d->op = k;
    uint32_t s = n_stamps ? open_series(g, k) : NONE;
    if (s != NONE) {
        series_m *sm = &op->series[s];
        uint64_t left = (uint64_t)sm->max_supply - sm->next_serial + 1;
        if (n_stamps > left)
            n_stamps = (uint32_t)left;
        for (uint32_t i = 0; i < n_stamps; i++)
            gen_d_stamp(g, skewed ? gen_zipf_owner(g) : gen_uniform_owner(g), op->id, sm->id,
                    sm->next_serial + i);
        d->series_idx = s;
    }
    if (d->tx.n_out == 0 && n_credits == 0)
        n_credits = 1;
    for (uint32_t i = 0; i < n_credits && d->tx.n_out < MAX_DRAFT_OUT; i++)
        gen_d_credit(g, skewed ? gen_zipf_owner(g) : gen_uniform_owner(g), op->id,
                 credit_min + rng_below(&g->rng, credit_span));
    gen_d_signer(d, op->key);
}

/* A random registered operator (all are, after the setup). */
static uint32_t random_op(gen *g)
{
    return (uint32_t)rng_below(&g->rng, g->n_ops);
}

/* Gift: stamp entry i to another collector. */
static void build_gift(gen *g, uint32_t i, int skewed)
{
    ent e = g->pool[i];
    gen_d_begin(g, PM_TX_TRANSFER);
    gen_d_spend(g, i);
    gen_d_stamp(g, gen_other_owner(g, e.owner, skewed), e.op, e.series, e.serial);
}

/* Payment from credit entry i: a part to another collector, the change
 * back, sometimes a unit of fee. `split` 0 pays everything. */
static void build_payment(gen *g, uint32_t i, int skewed, int split)
{
    ent e = g->pool[i];
    gen_d_begin(g, PM_TX_TRANSFER);
    gen_d_spend(g, i);
    uint32_t to = gen_other_owner(g, e.owner, skewed);
    if (e.amount < 2 || !split) {
        gen_d_credit(g, to, e.op, e.amount);
        return;
    }
    uint64_t pay = 1 + rng_below(&g->rng, e.amount - 1);
    uint64_t rest = e.amount - pay;
    if (rest > 1 && rng_below(&g->rng, 4) == 0)
        rest--; /* fee */
    gen_d_credit(g, to, e.op, pay);
    gen_d_credit(g, e.owner, e.op, rest);
}

/* A valid transfer of pool entry i (a gift or a payment). */
static void build_spend_of(gen *g, uint32_t i, int skewed)
{
    if (g->pool[i].kind == PM_OUTPUT_STAMP)
        build_gift(g, i, skewed);
    else
        build_payment(g, i, skewed, 1);
}

/* Trade: stamp entry s of A against credits entry c of B. */
static int build_trade(gen *g, uint32_t s, uint32_t c)
{
    ent es = g->pool[s], ec = g->pool[c];
    if (es.owner == ec.owner)
        return 0;
    gen_d_begin(g, PM_TX_TRANSFER);
    gen_d_spend(g, s);
    gen_d_spend(g, c);
    uint64_t cap = ec.amount < 50000 ? ec.amount : 50000;
    uint64_t price = 1 + rng_below(&g->rng, cap);
    gen_d_stamp(g, ec.owner, es.op, es.series, es.serial);
    gen_d_credit(g, es.owner, ec.op, price);
    if (ec.amount > price)
        gen_d_credit(g, ec.owner, ec.op, ec.amount - price);
    return 1;
}

/* Consolidation: several credits of one owner and one issuer into one. */
static int build_consolidation(gen *g, uint32_t c)
{
    ent ec = g->pool[c];
    uint32_t want = 2 + (uint32_t)rng_below(&g->rng, 7);
    uint32_t found[8], n = 0;
    uint64_t sum = 0;
    for (uint32_t i = g->credit_head[ec.owner], walked = 0; i != NONE && n < want && walked < 64;
         i = g->pool[i].next, walked++) {
        if (g->pool[i].op == ec.op) {
            found[n++] = i;
            sum += g->pool[i].amount;
        }
    }
    if (n < 2)
        return 0;
    gen_d_begin(g, PM_TX_TRANSFER);
    for (uint32_t k = 0; k < n; k++)
        gen_d_spend(g, found[k]);
    if (sum > 1 && rng_below(&g->rng, 2) == 0)
        sum--; /* fee */
    gen_d_credit(g, ec.owner, ec.op, sum);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* The setup: operators, series, first credits and stamps.                 */
/* ---------------------------------------------------------------------- */

/* Plans the next setup record; returns 0 when the setup is over. */
static int plan_setup(gen *g)
{
    const pm_gen_config *c = &g->cfg;
    for (;;) {
        switch (g->ph) {
        case PH_REGISTER:
            if (g->setup_i < g->n_ops) {
                if (!build_register(g, g->setup_i++, 0))
                    return 1;
                gen_emit_valid(g);
                return 1;
            }
            g->ph = PH_SERIES;
            g->setup_i = g->setup_j = 0;
            continue;
        case PH_SERIES:
            if (g->setup_j == c->series_per_operator) {
                g->setup_j = 0;
                g->setup_i++;
            }
            if (g->setup_i < g->n_ops) {
                uint32_t max = c->shape == PM_GEN_MARKET      ? pick_edition(g)
                               : c->shape == PM_GEN_TRANSFERS ? 1000000u
                                                              : 4000000000u;
                if (!series_room(g, g->setup_i))
                    return 1;
                build_series(g, g->setup_i, max);
                g->setup_j++;
                gen_emit_valid(g);
                return 1;
            }
            g->ph = PH_GRANTS;
            g->setup_i = 0;
            continue;
        case PH_GRANTS: {
            /* every collector gets credits once, 64 (MARKET) or 1024 per ISSUE */
            uint32_t batch = c->shape == PM_GEN_MARKET ? 64 : 1024;
            if (c->shape != PM_GEN_LARGE_STATE && g->setup_i < c->collectors) {
                uint32_t k = (g->setup_i / batch) % g->n_ops;
                op_m *op = &g->ops[k];
                draft *d = gen_d_begin(g, PM_TX_ISSUE);
                d->tx.seq = op->op_seq + 1;
                d->tx.operator_id = op->id;
                d->op = k;
                for (uint32_t i = 0; i < batch && g->setup_i < c->collectors; i++, g->setup_i++) {
                    uint64_t amount = c->shape == PM_GEN_MARKET
                                          ? 5000 + 5000000 / ((uint64_t)g->setup_i + 1)
                                          : 1000000000u;
                    gen_d_credit(g, g->setup_i, op->id, amount);
                }
                gen_d_signer(d, op->key);
                gen_emit_valid(g);
                return 1;
            }
            g->ph = PH_STAMPS;
            g->setup_i = 0;
            continue;
        }
        case PH_STAMPS:
            /* MARKET: 64 stamps per operator; TRANSFERS: a stamp for every
             * fourth owner, 1024 per ISSUE */
            if (c->shape == PM_GEN_MARKET && g->setup_i < g->n_ops) {
                build_issue(g, g->setup_i++, 64, 0, 1, 1000, 100000);
                gen_emit_valid(g);
                return 1;
            }
            if (c->shape == PM_GEN_TRANSFERS && g->setup_i < c->collectors / 4) {
                uint32_t n = c->collectors / 4 - g->setup_i;
                if (n > 1024)
                    n = 1024;
                uint32_t k = g->setup_i / 1024 % g->n_ops;
                g->setup_i += n;
                if (open_series(g, k) == NONE)
                    continue;
                build_issue(g, k, n, 0, 0, 1000000000u, 1);
                gen_emit_valid(g);
                return 1;
            }
            g->ph = PH_MAIN;
            continue;
        case PH_MAIN:
            return 0;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* MARKET: the main mix, valid and invalid.                                */
/* ---------------------------------------------------------------------- */

/* One valid record of the market mix; always succeeds (short of OOM). */
static int market_valid(gen *g)
{
    uint32_t w = (uint32_t)rng_below(&g->rng, 1000);
    if (w < 250) { /* gift */
        uint32_t s = gen_pick_live(g, PM_OUTPUT_STAMP);
        if (s != NONE) {
            build_gift(g, s, 1);
            return gen_emit_valid(g);
        }
    } else if (w < 620) { /* payment */
        uint32_t c = gen_pick_live(g, PM_OUTPUT_CREDIT);
        if (c != NONE) {
            build_payment(g, c, 1, 1);
            return gen_emit_valid(g);
        }
    } else if (w < 800) { /* trade */
        uint32_t s = gen_pick_live(g, PM_OUTPUT_STAMP), c = gen_pick_live(g, PM_OUTPUT_CREDIT);
        if (s != NONE && c != NONE && build_trade(g, s, c))
            return gen_emit_valid(g);
    } else if (w < 920) { /* consolidation */
        uint32_t c = gen_pick_live(g, PM_OUTPUT_CREDIT);
        if (c != NONE && build_consolidation(g, c))
            return gen_emit_valid(g);
    } else if (w < 990) { /* more stamps and credits */
        uint32_t n = 1 + (uint32_t)rng_below(&g->rng, 32);
        build_issue(g, random_op(g), n, (uint32_t)rng_below(&g->rng, 5), 1, 1000, 100000);
        return gen_emit_valid(g);
    } else if (w < 999) { /* a new series */
        uint32_t k = random_op(g);
        if (g->ops[k].n_series < 4 * g->cfg.series_per_operator + 4) {
            if (!series_room(g, k))
                return 0;
            build_series(g, k, pick_edition(g));
            return gen_emit_valid(g);
        }
    } else { /* an operator rotates its key */
        if (!build_register(g, random_op(g), 1))
            return 0;
        g->ops[g->d.op].generation++;
        return gen_emit_valid(g);
    }
    /* Nothing to spend of the kind wanted: credits are always possible. */
    build_issue(g, random_op(g), 0, 1 + (uint32_t)rng_below(&g->rng, 8), 1, 1000, 100000);
    return gen_emit_valid(g);
}

/* The second spend of a conflicting pair: an outpoint already spent. */
static int emit_conflict_second(gen *g)
{
    ent e = g->conflicts[g->conflict_head].e;
    g->conflict_head = (g->conflict_head + 1) % CONFLICT_QUEUE;
    g->conflict_count--;
    gen_d_begin(g, PM_TX_TRANSFER);
    gen_d_input(g, &e);
    gen_d_asset(g, &e, gen_other_owner(g, e.owner, 1), e.amount);
    return gen_emit_invalid(g, PM_REASON_MISSING_INPUT);
}

/* A valid transfer whose first input is spent again a few records later. */
static int market_conflict(gen *g)
{
    if (g->conflict_count == CONFLICT_QUEUE)
        return -1;
    uint32_t i = gen_pick_live(g, 0);
    if (i == NONE)
        return -1;
    ent e = g->pool[i];
    build_spend_of(g, i, 1);
    if (!gen_emit_valid(g))
        return 0;
    uint32_t slot = (g->conflict_head + g->conflict_count++) % CONFLICT_QUEUE;
    g->conflicts[slot].e = e;
    g->conflicts[slot].due = g->record_no + rng_below(&g->rng, 8);
    return 1;
}

/* Spends an outpoint spent long ago, signed by its former owner. */
static int market_double_spend(gen *g)
{
    if (g->n_spent == 0)
        return -1;
    uint64_t n = g->n_spent < SPENT_RING ? g->n_spent : SPENT_RING;
    ent e = g->spent[(g->n_spent - 1 - rng_below(&g->rng, n)) % SPENT_RING];
    gen_d_begin(g, PM_TX_TRANSFER);
    gen_d_input(g, &e);
    gen_d_asset(g, &e, gen_other_owner(g, e.owner, 1), e.amount);
    return gen_emit_invalid(g, PM_REASON_MISSING_INPUT);
}

/* A transaction valid in every respect but one signature. */
static int market_bad_signature(gen *g)
{
    uint32_t w = (uint32_t)rng_below(&g->rng, 10);
    draft *d = &g->d;
    if (w < 6) { /* a transfer: one input signed by someone else */
        uint32_t s = gen_pick_live(g, PM_OUTPUT_STAMP), c = gen_pick_live(g, PM_OUTPUT_CREDIT);
        if (w < 2 && s != NONE && c != NONE && build_trade(g, s, c)) {
        } else if (c != NONE) {
            build_payment(g, c, 1, 1);
        } else if (s != NONE) {
            build_gift(g, s, 1);
        } else {
            return -1;
        }
        d->signers[rng_below(&g->rng, d->n_signers)] = KEY_FORGER + (uint32_t)rng_below(&g->rng, N_FORGERS);
    } else if (w < 8) { /* an ISSUE signed with a revoked key or a forger's */
        uint32_t k = random_op(g);
        build_issue(g, k, 1 + (uint32_t)rng_below(&g->rng, 8), 1, 1, 1000, 100000);
        d->signers[0] = g->ops[k].old_key != NONE ? g->ops[k].old_key : KEY_FORGER;
    } else if (w < 9) { /* a SERIES by a forger */
        uint32_t k = random_op(g);
        build_series(g, k, pick_edition(g));
        d->signers[0] = KEY_FORGER + 1;
    } else { /* a REGISTER not signed by the governance key */
        uint32_t k = random_op(g);
        if (!build_register(g, k, 1))
            return 0;
        d->signers[0] = KEY_FORGER + 2;
    }
    return gen_emit_invalid(g, PM_REASON_BAD_SIGNATURE);
}

/* An earlier accepted record, repeated byte for byte. */
static int market_replay(gen *g)
{
    int from_chunk = g->n_accepted > 0 && (g->n_replay_pool == 0 || rng_below(&g->rng, 2));
    uint8_t type;
    rec *r = &g->recs[g->n_recs];
    if (from_chunk) {
        uint32_t a = (uint32_t)rng_below(&g->rng, g->n_accepted);
        const rec *src = &g->recs[g->accepted[a]];
        type = g->accepted_type[a];
        *r = *src;
        r->copy_of = (int32_t)g->accepted[a];
    } else if (g->n_replay_pool > 0) {
        const saved_tx *s = &g->replay_pool[rng_below(&g->rng, g->n_replay_pool)];
        type = s->type;
        r->len = s->len;
        r->copy_of = -1;
        memcpy(g->arena + g->arena_used + 4, s->bytes, s->len);
    } else {
        return -1;
    }
    r->off = (uint32_t)g->arena_used;
    r->n_sigs = 0;
    tool_put_le32(g->arena + r->off, r->len);
    g->arena_used += 4 + r->len;
    g->n_recs++;
    g->record_no++;
    gen_count_verdict(g, type == PM_TX_TRANSFER ? PM_REASON_MISSING_INPUT : PM_REASON_BAD_SEQUENCE);
    return 1;
}

/* Bytes that do not parse. */
static int market_malformed(gen *g)
{
    uint32_t w = (uint32_t)rng_below(&g->rng, 9);
    draft *d = &g->d;
    if (w == 8) { /* a REGISTER whose name is not valid text */
        uint32_t k = random_op(g);
        if (!build_register(g, k, 1))
            return 0;
        static const uint8_t bad[][2] = {{0xC0, 0xAF}, {0xED, 0xA0}, {0x0A, 0x41}, {0xFF, 0x41}};
        const uint8_t *b = bad[rng_below(&g->rng, 4)];
        d->text[0] = b[0];
        d->text[1] = b[1];
        if (d->tx.text_len < 2)
            d->tx.text_len = 2;
    } else {
        uint32_t c = gen_pick_live(g, PM_OUTPUT_CREDIT);
        if (c != NONE)
            build_payment(g, c, 1, 1);
        else
            build_issue(g, random_op(g), 0, 2, 1, 1000, 100000);
    }
    rec *r = gen_emit(g, PM_REASON_MALFORMED);
    if (!r)
        return 0;
    r->n_sigs = 0; /* not signed: its signature bytes are noise */
    uint8_t *p = g->arena + r->off + 4;
    for (uint32_t i = r->sig_off; i < r->len; i++)
        p[i] = (uint8_t)rng_next(&g->rng);
    uint32_t len = r->len;
    uint32_t out0 = d->tx.type == PM_TX_TRANSFER ? 2 + 2 + (uint32_t)d->tx.n_in * PM_INPUT_SIZE + 2
                                                 : 2 + 8 + 4 + 2; /* first output */
    switch (w) {
    case 0: /* another version */
        p[0] = (uint8_t)(2 + rng_below(&g->rng, 254));
        break;
    case 1: /* an unknown type */
        p[1] = rng_below(&g->rng, 2) ? 0 : (uint8_t)(5 + rng_below(&g->rng, 251));
        break;
    case 2: /* cut short: no prefix of a transaction is one */
        len -= 1 + (uint32_t)rng_below(&g->rng, len < 80 ? len - 1 : 79);
        break;
    case 3: /* bytes after the signatures */
        for (uint32_t i = 0, n = 1 + (uint32_t)rng_below(&g->rng, 8); i < n; i++)
            p[len++] = (uint8_t)rng_next(&g->rng);
        break;
    case 4: { /* a credit of 0 */
        pm_output o;
        pm_output_decode(pm_context_static, &o, p + out0);
        o.amount = 0;
        pm_output_encode(pm_context_static, p + out0, &o);
        break;
    }
    case 5: /* an unknown output kind */
        p[out0] = rng_below(&g->rng, 2) ? 0 : 3;
        break;
    case 6: /* a count out of range: n_in or n_out 0 */
        if (d->tx.type == PM_TX_TRANSFER)
            tool_put_le16(p + 2, 0);
        else
            tool_put_le16(p + 14, 0);
        break;
    case 7: /* a record too short to be a transaction */
        len = (uint32_t)rng_below(&g->rng, 2);
        break;
    default: /* 8: the text */
        break;
    }
    g->arena_used += (size_t)len - r->len;
    r->len = len;
    tool_put_le32(g->arena + r->off, len);
    return 1;
}

/* A valid transfer spending an output of the record just before it. */
static int market_chain(gen *g)
{
    if (g->last_applied != g->record_no)
        return -1;
    for (uint32_t k = 0; k < g->n_last_outputs; k++) {
        ent_ref r = g->last_outputs[(k + g->record_no) % g->n_last_outputs];
        if (gen_ent_live(g, r)) {
            build_spend_of(g, r.idx, 1);
            return gen_emit_valid(g);
        }
    }
    return -1;
}

/* The other reasons, each made to fail at its own check. */
static int market_other(gen *g)
{
    uint32_t w = (uint32_t)rng_below(&g->rng, 9);
    uint32_t k = random_op(g);
    op_m *op = &g->ops[k];
    draft *d = &g->d;
    pm_reason reason;
    switch (w) {
    case 0: { /* the same outpoint twice */
        uint32_t i = gen_pick_live(g, 0);
        if (i == NONE)
            return -1;
        ent e = g->pool[i];
        gen_d_begin(g, PM_TX_TRANSFER);
        gen_d_input(g, &e);
        gen_d_input(g, &e);
        gen_d_asset(g, &e, gen_other_owner(g, e.owner, 1), e.amount);
        reason = PM_REASON_DUPLICATE_INPUT;
        break;
    }
    case 1: /* a sequence number skipped or reused */
        build_issue(g, k, 0, 1 + (uint32_t)rng_below(&g->rng, 4), 1, 1000, 100000);
        d->tx.seq = rng_below(&g->rng, 2) ? op->op_seq + 2 : op->op_seq;
        reason = PM_REASON_BAD_SEQUENCE;
        break;
    case 2: /* an operator that was never admitted */
        build_series(g, k, pick_edition(g));
        d->tx.operator_id = rng_below(&g->rng, 4) ? UNREGISTERED_OPERATOR + (uint32_t)rng_below(&g->rng, 1000000) : 0;
        d->tx.seq = 1;
        d->signers[0] = KEY_FORGER + 3;
        reason = PM_REASON_UNKNOWN_OPERATOR;
        break;
    case 3: /* a series declared again */
        if (op->n_series == 0)
            return -1;
        build_series(g, k, pick_edition(g));
        d->tx.series = op->series[rng_below(&g->rng, op->n_series)].id;
        reason = PM_REASON_SERIES_EXISTS;
        break;
    case 4: { /* credits of another operator */
        if (g->n_ops < 2)
            return -1;
        uint32_t other = (k + 1 + (uint32_t)rng_below(&g->rng, g->n_ops - 1)) % g->n_ops;
        build_issue(g, k, 0, 1, 1, 1000, 100000);
        pm_output o;
        pm_output_decode(pm_context_static, &o, d->outputs);
        o.operator_id = g->ops[other].id;
        pm_output_encode(pm_context_static, d->outputs, &o);
        reason = PM_REASON_WRONG_ISSUER;
        break;
    }
    case 5: /* a stamp of a series never declared */
        build_issue(g, k, 0, 0, 1, 1000, 100000);
        d->tx.n_out = 0;
        gen_d_stamp(g, gen_zipf_owner(g), op->id, UNDECLARED_SERIES + (uint32_t)rng_below(&g->rng, 1000), 1);
        reason = PM_REASON_UNKNOWN_SERIES;
        break;
    case 6: { /* serial 0 or past the edition */
        if (op->n_series == 0)
            return -1;
        const series_m *s = &op->series[rng_below(&g->rng, op->n_series)];
        build_issue(g, k, 0, 0, 1, 1000, 100000);
        d->tx.n_out = 0;
        gen_d_stamp(g, gen_zipf_owner(g), op->id, s->id, rng_below(&g->rng, 2) ? 0 : s->max_supply + 1);
        reason = PM_REASON_SERIAL_OUT_OF_RANGE;
        break;
    }
    case 7: { /* a stamp minted before, or twice in one ISSUE */
        if (op->n_series == 0)
            return -1;
        uint32_t si = (uint32_t)rng_below(&g->rng, op->n_series);
        const series_m *s = &op->series[si];
        build_issue(g, k, 0, 0, 1, 1000, 100000);
        d->tx.n_out = 0;
        if (s->next_serial > 1) {
            gen_d_stamp(g, gen_zipf_owner(g), op->id, s->id, 1 + (uint32_t)rng_below(&g->rng, s->next_serial - 1));
        } else {
            gen_d_stamp(g, gen_zipf_owner(g), op->id, s->id, 1);
            gen_d_stamp(g, gen_zipf_owner(g), op->id, s->id, 1);
        }
        reason = PM_REASON_ALREADY_MINTED;
        break;
    }
    default: { /* 8: value out of nothing */
        uint32_t v = (uint32_t)rng_below(&g->rng, 3);
        uint32_t c = gen_pick_live(g, PM_OUTPUT_CREDIT), s = gen_pick_live(g, PM_OUTPUT_STAMP);
        if (v == 0 && c != NONE) { /* more credits out than in */
            ent e = g->pool[c];
            gen_d_begin(g, PM_TX_TRANSFER);
            gen_d_input(g, &e);
            gen_d_credit(g, gen_other_owner(g, e.owner, 1), e.op, e.amount + 1 + rng_below(&g->rng, 1000));
        } else if (v == 1 && c != NONE) { /* a sum that does not fit in u64 */
            ent e = g->pool[c];
            gen_d_begin(g, PM_TX_TRANSFER);
            gen_d_input(g, &e);
            gen_d_credit(g, gen_other_owner(g, e.owner, 1), e.op, UINT64_MAX);
            gen_d_credit(g, e.owner, e.op, 1 + rng_below(&g->rng, e.amount));
        } else if (s != NONE) { /* a stamp appears (or one vanishes) */
            ent e = g->pool[s];
            gen_d_begin(g, PM_TX_TRANSFER);
            gen_d_input(g, &e);
            if (rng_below(&g->rng, 2)) {
                gen_d_stamp(g, gen_other_owner(g, e.owner, 1), e.op, e.series, e.serial);
                gen_d_stamp(g, e.owner, e.op, e.series, e.serial + 1 + (uint32_t)rng_below(&g->rng, 1000));
            } else {
                gen_d_credit(g, gen_other_owner(g, e.owner, 1), e.op, 1);
            }
        } else {
            return -1;
        }
        reason = PM_REASON_NOT_CONSERVED;
        break;
    }
    }
    return gen_emit_invalid(g, reason);
}

/* Plans one record of the MARKET main phase. */
static int plan_market(gen *g)
{
    if (g->conflict_count > 0 && g->conflicts[g->conflict_head].due <= g->record_no)
        return emit_conflict_second(g);
    const pm_gen_config *c = &g->cfg;
    uint32_t r = (uint32_t)rng_below(&g->rng, PPM);
    int done = -1;
    uint32_t t = c->double_spend_ppm;
    if (r < t) {
        done = market_double_spend(g);
    } else if (r < (t += c->bad_signature_ppm)) {
        done = market_bad_signature(g);
    } else if (r < (t += c->conflict_ppm)) {
        done = market_conflict(g);
    } else if (r < (t += c->replay_ppm)) {
        done = market_replay(g);
    } else if (r < (t += c->malformed_ppm)) {
        done = market_malformed(g);
    } else if (r < (t += c->chain_ppm)) {
        done = market_chain(g);
    } else if (r < (t += c->other_ppm)) {
        done = market_other(g);
    }
    if (done >= 0)
        return done;
    return market_valid(g); /* the mix, or the fallback of a kind that had no material */
}

/* ---------------------------------------------------------------------- */
/* TRANSFERS and LARGE_STATE.                                              */
/* ---------------------------------------------------------------------- */

static int plan_transfers(gen *g)
{
    uint32_t i = gen_pick_recent(g);
    if (i == NONE)
        i = gen_pick_live(g, 0);
    if (i == NONE) {
        build_issue(g, random_op(g), 0, 1024, 0, 1000000000u, 1);
        return gen_emit_valid(g);
    }
    /* split (two outputs) half the time while the pool has room */
    int split = g->pool_live + 1 < g->pool_limit && rng_below(&g->rng, 2);
    if (g->pool[i].kind == PM_OUTPUT_STAMP)
        build_gift(g, i, 0);
    else
        build_payment(g, i, 0, split);
    return gen_emit_valid(g);
}

static int plan_large_state(gen *g)
{
    if (g->record_no % 16 == 15) { /* now and then, a transfer */
        uint32_t i = gen_pick_recent(g);
        if (i != NONE) {
            build_spend_of(g, i, 0);
            return gen_emit_valid(g);
        }
    }
    /* 1024 outputs: half stamps of one series, half credits; four of them
     * join the (small) pool */
    uint32_t k = (uint32_t)(g->record_no % g->n_ops);
    build_issue(g, k, 512, 512, 0, 1, 1000000);
    g->d.adopt = 4;
    return gen_emit_valid(g);
}

int gen_plan_one(gen *g)
{
    if (g->ph != PH_MAIN && plan_setup(g))
        return !g->oom;
    switch (g->cfg.shape) {
    case PM_GEN_MARKET:
        return plan_market(g);
    case PM_GEN_TRANSFERS:
        return plan_transfers(g);
    case PM_GEN_LARGE_STATE:
        return plan_large_state(g);
    }
    return 0;
}
