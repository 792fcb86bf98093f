/*
 * gen_market.c — the generator's market model: keys, who owns what, the pool
 * of spendable outputs, drafts of transactions, and emitting a draft into
 * the chunk with its effect on the model (design: gen_impl.h).
 */
#include "gen_impl.h"

/* ---------------------------------------------------------------------- */
/* Keys.                                                                   */
/* ---------------------------------------------------------------------- */

/* secret = H("postmark-gen/key", seed || role || index || attempt), the
 * first attempt that is a valid secret key. Returns the key index, or NONE
 * when out of memory. */
uint32_t gen_add_key(gen *g, uint8_t role, uint32_t index)
{
    if (g->n_keys == g->cap_keys) {
        uint32_t cap = g->cap_keys ? g->cap_keys * 2 : 64;
        gen_key *k = realloc(g->keys, cap * sizeof *k);
        if (!k) {
            g->oom = 1;
            return NONE;
        }
        g->keys = k;
        g->cap_keys = cap;
    }
    gen_key *k = &g->keys[g->n_keys];
    uint8_t in[17], secret[32];
    tool_put_le64(in, g->cfg.seed);
    in[8] = role;
    tool_put_le32(in + 9, index);
    for (uint32_t attempt = 0;; attempt++) {
        tool_put_le32(in + 13, attempt);
        if (!pm_tagged_hash(g->ctx, secret, "postmark-gen/key", in, sizeof in)) {
            g->oom = 1;
            return NONE;
        }
        if (secp256k1_keypair_create(g->secp, &k->kp, secret))
            break;
    }
    secp256k1_xonly_pubkey pub;
    if (!secp256k1_keypair_xonly_pub(g->secp, &pub, NULL, &k->kp) ||
        !secp256k1_xonly_pubkey_serialize(g->secp, k->xonly, &pub)) {
        g->oom = 1; /* cannot happen with a valid keypair */
        return NONE;
    }
    memset(secret, 0, sizeof secret);
    return g->n_keys++;
}

static const uint8_t *owner_key(const gen *g, uint32_t owner)
{
    return g->keys[KEY_COLLECTOR + owner].xonly;
}

/* ---------------------------------------------------------------------- */
/* Picking owners.                                                         */
/* ---------------------------------------------------------------------- */

/* A collector, skewed: collector k is chosen with weight 1 / (k + 1). */
uint32_t gen_zipf_owner(gen *g)
{
    uint64_t u = rng_below(&g->rng, g->zipf_total);
    uint32_t lo = 0, hi = g->cfg.collectors - 1;
    while (lo < hi) { /* first k with cdf[k] > u */
        uint32_t mid = lo + (hi - lo) / 2;
        if (g->zipf_cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

uint32_t gen_uniform_owner(gen *g)
{
    return (uint32_t)rng_below(&g->rng, g->cfg.collectors);
}

/* A collector other than `not` (when there is another). */
uint32_t gen_other_owner(gen *g, uint32_t not, int skewed)
{
    uint32_t o = skewed ? gen_zipf_owner(g) : gen_uniform_owner(g);
    if (o == not && g->cfg.collectors > 1)
        o = (uint32_t)((o + 1 + rng_below(&g->rng, g->cfg.collectors - 1)) % g->cfg.collectors);
    return o;
}

/* ---------------------------------------------------------------------- */
/* The pool of spendable outputs.                                          */
/* ---------------------------------------------------------------------- */

int gen_ent_live(const gen *g, ent_ref r)
{
    return r.idx < g->pool_used && g->pool[r.idx].kind != 0 && g->pool[r.idx].gen == r.gen;
}

/* Adopt output `index` of `txid` into the pool. Returns its slot, or NONE
 * when the pool is full (the output is then unknown to the planner). */
uint32_t gen_adopt(gen *g, const uint8_t txid[32], uint16_t index, const uint8_t raw[45],
                      uint32_t owner)
{
    if (g->pool_live >= g->pool_limit)
        return NONE;
    uint32_t i;
    if (g->pool_free != NONE) {
        i = g->pool_free;
        g->pool_free = g->pool[i].next;
    } else {
        if (g->pool_used == g->pool_cap) {
            uint32_t cap = g->pool_cap ? g->pool_cap * 2 : 4096;
            if (cap > g->pool_limit)
                cap = g->pool_limit;
            ent *p = realloc(g->pool, (size_t)cap * sizeof *p);
            if (!p) {
                g->oom = 1;
                return NONE;
            }
            g->pool = p;
            g->pool_cap = cap;
        }
        i = g->pool_used++;
        g->pool[i].gen = 0;
    }
    ent *e = &g->pool[i];
    memcpy(e->txid, txid, 32);
    e->index = index;
    pm_output o;
    pm_output_decode(pm_context_static, &o, raw);
    e->kind = o.kind;
    e->owner = owner;
    e->op = o.operator_id;
    e->series = e->serial = 0;
    e->amount = 0;
    e->prev = e->next = NONE;
    if (e->kind == PM_OUTPUT_STAMP) {
        e->series = o.series;
        e->serial = o.serial;
    } else {
        e->amount = o.amount;
        e->next = g->credit_head[owner];
        if (e->next != NONE)
            g->pool[e->next].prev = i;
        g->credit_head[owner] = i;
    }
    g->pool_live++;
    g->recent[g->n_recent++ % RECENT_RING] = (ent_ref){i, e->gen};
    return i;
}

/* Remove a spent entry, remembering it for double spends. */
void gen_spend(gen *g, uint32_t i)
{
    ent *e = &g->pool[i];
    g->spent[g->n_spent++ % SPENT_RING] = *e;
    if (e->kind == PM_OUTPUT_CREDIT) {
        if (e->prev != NONE)
            g->pool[e->prev].next = e->next;
        else
            g->credit_head[e->owner] = e->next;
        if (e->next != NONE)
            g->pool[e->next].prev = e->prev;
    }
    e->kind = 0;
    e->gen++;
    e->next = g->pool_free;
    g->pool_free = i;
    g->pool_live--;
}

/* A random live entry of `kind` (0: any), or NONE. */
uint32_t gen_pick_live(gen *g, uint8_t kind)
{
    if (g->pool_used == 0)
        return NONE;
    for (int attempt = 0; attempt < 48; attempt++) {
        uint32_t i = (uint32_t)rng_below(&g->rng, g->pool_used);
        if (g->pool[i].kind != 0 && (kind == 0 || g->pool[i].kind == kind))
            return i;
    }
    return NONE;
}

/* One of the most recently adopted live entries, or NONE. */
uint32_t gen_pick_recent(gen *g)
{
    uint64_t n = g->n_recent < RECENT_RING ? g->n_recent : RECENT_RING;
    for (int attempt = 0; n && attempt < 16; attempt++) {
        ent_ref r = g->recent[(g->n_recent - 1 - rng_below(&g->rng, n)) % RECENT_RING];
        if (gen_ent_live(g, r))
            return r.idx;
    }
    return NONE;
}

/* ---------------------------------------------------------------------- */
/* Drafts: building one transaction.                                       */
/* ---------------------------------------------------------------------- */

draft *gen_d_begin(gen *g, uint8_t type)
{
    draft *d = &g->d;
    memset(&d->tx, 0, sizeof d->tx);
    d->tx.type = type;
    d->tx.inputs = d->inputs;
    d->tx.outputs = d->outputs;
    d->tx.key = d->key;
    d->tx.metadata = d->metadata;
    d->tx.text = d->text;
    d->n_signers = d->n_spends = 0;
    d->op = d->series_idx = NONE;
    d->new_key = NONE;
    d->adopt = NONE;
    return d;
}

void gen_d_signer(draft *d, uint32_t key)
{
    d->signers[d->n_signers++] = key;
}

/* An input spending the outpoint of `e`, signed by its owner. */
void gen_d_input(gen *g, const ent *e)
{
    draft *d = &g->d;
    uint8_t *p = d->inputs + d->tx.n_in * PM_INPUT_SIZE;
    memcpy(p, e->txid, 32);
    tool_put_le16(p + 32, e->index);
    d->tx.n_in++;
    gen_d_signer(d, KEY_COLLECTOR + e->owner);
}

/* An input spending pool entry i. */
void gen_d_spend(gen *g, uint32_t i)
{
    gen_d_input(g, &g->pool[i]);
    g->d.spends[g->d.n_spends++] = i;
}

void gen_d_stamp(gen *g, uint32_t owner, uint32_t op, uint32_t series, uint32_t serial)
{
    draft *d = &g->d;
    pm_output o = {.kind = PM_OUTPUT_STAMP, .operator_id = op, .series = series, .serial = serial};
    memcpy(o.owner, owner_key(g, owner), 32);
    pm_output_encode(pm_context_static, d->outputs + d->tx.n_out * PM_OUTPUT_SIZE, &o);
    d->out_owner[d->tx.n_out++] = owner;
}

void gen_d_credit(gen *g, uint32_t owner, uint32_t issuer, uint64_t amount)
{
    draft *d = &g->d;
    pm_output o = {.kind = PM_OUTPUT_CREDIT, .operator_id = issuer, .amount = amount};
    memcpy(o.owner, owner_key(g, owner), 32);
    pm_output_encode(pm_context_static, d->outputs + d->tx.n_out * PM_OUTPUT_SIZE, &o);
    d->out_owner[d->tx.n_out++] = owner;
}

/* The same asset as `e`, to `owner` (a credit: `amount` of it). */
void gen_d_asset(gen *g, const ent *e, uint32_t owner, uint64_t amount)
{
    if (e->kind == PM_OUTPUT_STAMP)
        gen_d_stamp(g, owner, e->op, e->series, e->serial);
    else
        gen_d_credit(g, owner, e->op, amount);
}

/* ---------------------------------------------------------------------- */
/* Emitting records into the chunk.                                        */
/* ---------------------------------------------------------------------- */

static int reserve_signers(gen *g, size_t n)
{
    if (g->cap_signers - g->n_signers >= n)
        return 1;
    size_t cap = g->cap_signers ? g->cap_signers : 65536;
    while (cap - g->n_signers < n)
        cap *= 2;
    uint32_t *s = realloc(g->signers, cap * sizeof *s);
    if (!s) {
        g->oom = 1;
        return 0;
    }
    g->signers = s;
    g->cap_signers = cap;
    return 1;
}

void gen_count_verdict(gen *g, pm_reason planned)
{
    if (planned == PM_REASON_NONE)
        g->report.planned_accepted++;
    else
        g->report.planned[planned]++;
}

/* Append the draft as the chunk's next record (zero signatures) with its
 * planned verdict. Returns the record, or NULL when out of memory. */
rec *gen_emit(gen *g, pm_reason planned)
{
    draft *d = &g->d;
    size_t size = pm_tx_serialize(pm_context_static, NULL, 0, &d->tx);
    size_t n_sigs = d->tx.type == PM_TX_TRANSFER ? d->tx.n_in : 1;
    if (!reserve_signers(g, n_sigs))
        return NULL;
    rec *r = &g->recs[g->n_recs];
    r->off = (uint32_t)g->arena_used;
    r->len = (uint32_t)size;
    r->sig_off = (uint32_t)(size - n_sigs * PM_SIG_SIZE);
    r->n_sigs = (uint32_t)n_sigs;
    r->signers = (uint32_t)g->n_signers;
    r->copy_of = -1;
    uint8_t *p = g->arena + g->arena_used;
    tool_put_le32(p, (uint32_t)size);
    pm_tx_serialize(pm_context_static, p + 4, size, &d->tx);
    /* The txid (§4): the tagged hash of the bytes before the signatures,
     * which do not exist yet, so pm_tx_parse cannot give a pm_tx here. */
    if (!pm_tagged_hash(g->ctx, r->txid, "postmark/txid", p + 4, r->sig_off)) {
        g->oom = 1;
        return NULL;
    }
    memcpy(g->signers + g->n_signers, d->signers, n_sigs * sizeof *d->signers);
    g->n_signers += n_sigs;
    g->arena_used += 4 + size;
    g->n_recs++;
    g->record_no++;
    gen_count_verdict(g, planned);
    return r;
}

/* The draft's effect on the model, once emitted as a valid record. */
static void apply(gen *g, const rec *r)
{
    draft *d = &g->d;
    op_m *op = d->op != NONE ? &g->ops[d->op] : NULL;
    uint32_t n_adopt = d->adopt == NONE ? (uint32_t)d->tx.n_out : d->adopt;
    switch (d->tx.type) {
    case PM_TX_REGISTER:
        if (op->registered && op->key != d->new_key)
            op->old_key = op->key;
        op->registered = 1;
        op->key = d->new_key;
        g->gov_seq++;
        break;
    case PM_TX_SERIES:
        op->op_seq++;
        op->series_counter++;
        op->series[op->n_series++] = d->new_series;
        break;
    case PM_TX_ISSUE:
        op->op_seq++;
        for (size_t i = 0; i < d->tx.n_out; i++) {
            pm_output o;
            pm_output_decode(pm_context_static, &o, d->outputs + i * PM_OUTPUT_SIZE);
            if (o.kind == PM_OUTPUT_STAMP) {
                series_m *s = &op->series[d->series_idx];
                uint32_t serial = o.serial;
                if (serial >= s->next_serial)
                    s->next_serial = serial + 1;
            }
        }
        break;
    case PM_TX_TRANSFER:
        for (uint32_t i = 0; i < d->n_spends; i++)
            gen_spend(g, d->spends[i]);
        break;
    }
    g->n_last_outputs = 0;
    if (d->tx.type == PM_TX_ISSUE || d->tx.type == PM_TX_TRANSFER) {
        /* adopt all outputs, or n_adopt spread over them */
        for (size_t k = 0; k < n_adopt && k < d->tx.n_out; k++) {
            size_t i = n_adopt >= d->tx.n_out ? k : k * d->tx.n_out / n_adopt;
            uint32_t slot = gen_adopt(g, r->txid, (uint16_t)i, d->outputs + i * PM_OUTPUT_SIZE,
                                  d->out_owner[i]);
            if (slot != NONE && g->n_last_outputs < LAST_OUTPUTS)
                g->last_outputs[g->n_last_outputs++] = (ent_ref){slot, g->pool[slot].gen};
        }
    }
    g->last_applied = g->record_no;
    g->accepted[g->n_accepted] = (uint32_t)(r - g->recs);
    g->accepted_type[g->n_accepted++] = d->tx.type;
}

/* Emit the draft as a valid record and apply it. Returns 1, 0 on OOM. */
int gen_emit_valid(gen *g)
{
    rec *r = gen_emit(g, PM_REASON_NONE);
    if (!r)
        return 0;
    apply(g, r);
    return 1;
}

int gen_emit_invalid(gen *g, pm_reason reason)
{
    return gen_emit(g, reason) != NULL;
}
