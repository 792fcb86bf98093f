/*
 * state.c — the ledger state (§4), the stateful checks of §5 in the
 * spec's order, and the undo log that makes every change reversible.
 *
 * Layout:
 *  - regmap: 128-bit keys (and values) in dense arrays, indexed by the
 *    common hash map (common/hmap.h); used for operators (id -> index
 *    into the operator array), series ((operator, series) -> max_supply)
 *    and the minted set (key only).
 *  - the undo log: a byte buffer of records, each followed by its size
 *    (u16) so that rollback can walk it backwards. Records are written
 *    before the change they undo; a rollback applies them newest first.
 *  - the block history: the sealed logs of the last undo_depth blocks.
 *
 * Invariants: after pm_ledger_apply_tx returns anything but PM_OK with
 * reason NONE, the state is as before the call. Rollback never fails: map
 * removals do not allocate, and the UTXO table is reserved before every
 * apply for all the re-inserts a rollback of the whole current log needs.
 */
#include "state.h"
#include "undo.h"
#include "hmap.h"

#include <secp256k1_schnorrsig.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

/* ---------------------------------------------------------------------- */
/* regmap                                                                  */
/* ---------------------------------------------------------------------- */

typedef struct {
    uint64_t k0, k1;
} regkey;

_Static_assert(sizeof(regkey) == sizeof(undo_key), "SERIES and MINTED undo payloads are regkeys");

/* Keys (and values) dense, in insertion order; the index over them is
 * the common hash map. Removal (only ever by rollback, so nearly always of
 * the newest key) swap-removes from the arrays. */
typedef struct {
    regkey *keys;
    uint64_t *values; /* NULL for a set */
    size_t n, cap;
    hmap index;
    uint64_t seed;
    int is_set;
} regmap;

static uint64_t regmap_hash(const regmap *m, regkey k)
{
    return XXH3_64bits_withSeed(&k, sizeof k, m->seed);
}

static int regmap_init(regmap *m, size_t capacity, int is_set, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->is_set = is_set;
    m->seed = seed;
    m->keys = malloc(capacity * sizeof *m->keys);
    m->values = is_set ? NULL : malloc(capacity * sizeof *m->values);
    m->cap = capacity;
    return m->keys && (is_set || m->values) && hmap_init(&m->index, capacity);
}

static void regmap_free(regmap *m)
{
    free(m->keys);
    free(m->values);
    hmap_free(&m->index);
    memset(m, 0, sizeof *m);
}

/* The item of k, or HMAP_NONE; *c is left on it (or where k would go). */
static uint32_t regmap_lookup(const regmap *m, regkey k, hmap_cursor *c)
{
    *c = hmap_probe(&m->index, regmap_hash(m, k));
    for (uint32_t it; (it = hmap_next(&m->index, c)) != HMAP_NONE;)
        if (m->keys[it].k0 == k.k0 && m->keys[it].k1 == k.k1)
            return it;
    return HMAP_NONE;
}

static int regmap_find(const regmap *m, regkey k, uint64_t *value)
{
    hmap_cursor c;
    uint32_t it = regmap_lookup(m, k, &c);
    if (it == HMAP_NONE)
        return 0;
    if (value && m->values)
        *value = m->values[it];
    return 1;
}

/* Insert or overwrite. Returns 0 only when growing failed (map unchanged). */
static int regmap_put(regmap *m, regkey k, uint64_t value)
{
    if (m->n == m->cap) {
        /* x1.5: the minted set reaches tens of millions of keys. */
        size_t cap = m->cap + m->cap / 2 + 16;
        regkey *keys = realloc(m->keys, cap * sizeof *keys);
        if (!keys)
            return 0;
        m->keys = keys;
        if (m->values) {
            uint64_t *values = realloc(m->values, cap * sizeof *values);
            if (!values)
                return 0;
            m->values = values;
        }
        m->cap = cap;
    }
    if (m->n >= HMAP_NONE || !hmap_reserve(&m->index, m->n + 1))
        return 0;
    hmap_cursor c;
    uint32_t it = regmap_lookup(m, k, &c);
    if (it == HMAP_NONE) {
        it = (uint32_t)m->n++;
        m->keys[it] = k;
        hmap_put(&m->index, &c, it);
    }
    if (m->values)
        m->values[it] = value;
    return 1;
}

/* Remove k if present. Never allocates (rollback relies on it). */
static void regmap_remove(regmap *m, regkey k)
{
    hmap_cursor c;
    uint32_t it = regmap_lookup(m, k, &c);
    if (it == HMAP_NONE)
        return;
    hmap_erase(&m->index, &c);
    size_t last = --m->n;
    if (it != last) {
        (void)regmap_lookup(m, m->keys[last], &c); /* present: c is on it */
        hmap_set(&m->index, &c, it);
        m->keys[it] = m->keys[last];
        if (m->values)
            m->values[it] = m->values[last];
    }
}

static regkey key_series(uint32_t op, uint32_t series)
{
    return (regkey){(uint64_t)op << 32 | series, 0};
}

static regkey key_stamp(uint32_t op, uint32_t series, uint32_t serial)
{
    return (regkey){(uint64_t)op << 32 | series, (uint64_t)serial + 1};
}

static regkey key_operator(uint32_t op)
{
    return (regkey){op, 0};
}

/* ---------------------------------------------------------------------- */
/* Ledger                                                                  */
/* ---------------------------------------------------------------------- */

typedef pm_operator_info operator_rec;

typedef struct {
    uint8_t *data;
    size_t len, cap;
    size_t spent; /* SPENT records: the re-inserts a rollback needs */
} undo_log;

typedef struct {
    uint8_t hash[32];      /* this block's hash */
    uint8_t prev_hash[32]; /* the tip before it */
    undo_log log;
} sealed_block;

struct pm_opkeys {
    size_t n;
    uint32_t *ids;    /* sorted */
    uint8_t (*keys)[32];
};

struct pm_ledger {
    pm_utxo_table *utxo;
    uint8_t governance_key[32];
    uint8_t chain_id[32];
    uint64_t gov_seq;
    operator_rec *ops;
    size_t n_ops, cap_ops;
    regmap op_index; /* id -> index into ops */
    regmap series;   /* (op, series) -> max_supply */
    regmap minted;   /* (op, series, serial) */
    undo_log current;
    sealed_block *history; /* ring of undo_depth */
    uint32_t undo_depth;
    size_t hist_start, hist_count;
    uint8_t tip_hash[32];
    int64_t tip_height;
    pm_opkeys *opkeys;
    int opkeys_dirty;
    /* Staging (pm_ledger_stage_tx): UTXO undo records are written but the
     * table is not touched, by the apply or by its rollback. */
    int staging;
};

static int log_reserve(undo_log *log, size_t extra)
{
    if (log->len + extra <= log->cap)
        return 1;
    size_t cap = log->cap ? log->cap * 2 : 4096;
    while (cap < log->len + extra)
        cap *= 2;
    uint8_t *d = realloc(log->data, cap);
    if (!d)
        return 0;
    log->data = d;
    log->cap = cap;
    return 1;
}

/* Append a record: kind byte, payload, then u16 total size (for walking
 * backwards). Returns 0 on allocation failure (log unchanged). */
static int log_push(undo_log *log, uint8_t kind, const void *payload, size_t size)
{
    size_t total = 1 + size + 2;
    if (!log_reserve(log, total))
        return 0;
    uint8_t *p = log->data + log->len;
    p[0] = kind;
    memcpy(p + 1, payload, size);
    p[1 + size] = (uint8_t)total;
    p[2 + size] = (uint8_t)(total >> 8);
    log->len += total;
    if (kind == UNDO_SPENT)
        log->spent++;
    return 1;
}

static void undo_one(pm_ledger *l, undo_log *log, uint8_t kind, const uint8_t *payload)
{
    /* A staged record's change was never made (or is undone by the
     * parallel apply's owner): only the record goes. */
    if (l->staging && (kind == UNDO_SPENT || kind == UNDO_CREATED)) {
        if (kind == UNDO_SPENT)
            log->spent--;
        return;
    }
    switch (kind) {
    case UNDO_SPENT: {
        undo_spent r;
        memcpy(&r, payload, sizeof r);
        /* Cannot fail: reserved before the apply that spent it. */
        (void)pm_utxo_table_insert(l->utxo, r.txid, r.index, r.output);
        log->spent--;
        break;
    }
    case UNDO_CREATED: {
        undo_created r;
        memcpy(&r, payload, sizeof r);
        for (uint16_t i = 0; i < r.n_out; i++)
            (void)pm_utxo_table_spend(l->utxo, r.txid, i, NULL);
        break;
    }
    case UNDO_GOV_SEQ:
        memcpy(&l->gov_seq, payload, sizeof l->gov_seq);
        break;
    case UNDO_OPERATOR: {
        undo_operator r;
        memcpy(&r, payload, sizeof r);
        uint64_t idx = 0;
        regmap_find(&l->op_index, key_operator(r.id), &idx);
        if (r.existed) {
            l->ops[idx] = r.prev;
        } else {
            /* A new operator is always the last one appended. */
            regmap_remove(&l->op_index, key_operator(r.id));
            l->n_ops--;
        }
        l->opkeys_dirty = 1;
        break;
    }
    case UNDO_OP_SEQ: {
        undo_op_seq r;
        memcpy(&r, payload, sizeof r);
        l->ops[r.index].op_seq = r.prev;
        break;
    }
    case UNDO_SERIES: {
        regkey k;
        memcpy(&k, payload, sizeof k);
        regmap_remove(&l->series, k);
        break;
    }
    case UNDO_MINTED: {
        regkey k;
        memcpy(&k, payload, sizeof k);
        regmap_remove(&l->minted, k);
        break;
    }
    }
}

/* Undo the records of `log` after byte offset `mark`, newest first. */
static void log_rollback(pm_ledger *l, undo_log *log, size_t mark)
{
    while (log->len > mark) {
        size_t total = (size_t)log->data[log->len - 2] | (size_t)log->data[log->len - 1] << 8;
        size_t start = log->len - total;
        undo_one(l, log, log->data[start], log->data + start + 1);
        log->len = start;
    }
}

pm_status pm_ledger_create(pm_ledger **out, const pm_chain_params *params,
                           const uint8_t chain_id[32], size_t utxo_capacity_hint,
                           uint32_t undo_depth)
{
    *out = NULL;
    pm_ledger *l = calloc(1, sizeof *l);
    if (!l)
        return PM_ERR_NOMEM;
    uint64_t seeds[3];
    if (getrandom(seeds, sizeof seeds, 0) != (ssize_t)sizeof seeds) {
        /* No entropy source: hash flooding protection degrades, nothing
         * else does; mix in addresses so seeds still differ per process. */
        seeds[0] = (uint64_t)(uintptr_t)l;
        seeds[1] = (uint64_t)(uintptr_t)&seeds;
        seeds[2] = seeds[0] ^ seeds[1];
    }
    memcpy(l->governance_key, params->governance_key, 32);
    memcpy(l->chain_id, chain_id, 32);
    memcpy(l->tip_hash, chain_id, 32);
    l->tip_height = -1;
    l->undo_depth = undo_depth ? undo_depth : 1;
    l->history = calloc(l->undo_depth, sizeof *l->history);
    l->opkeys = calloc(1, sizeof *l->opkeys);
    if (!l->history || !l->opkeys || !regmap_init(&l->op_index, 64, 0, seeds[0]) ||
        !regmap_init(&l->series, 256, 0, seeds[1]) ||
        !regmap_init(&l->minted, 1024, 1, seeds[2]) ||
        pm_utxo_table_create(&l->utxo, utxo_capacity_hint) != PM_OK) {
        pm_ledger_destroy(l);
        return PM_ERR_NOMEM;
    }
    *out = l;
    return PM_OK;
}

static void opkeys_free(pm_opkeys *k)
{
    if (!k)
        return;
    free(k->ids);
    free(k->keys);
    free(k);
}

void pm_ledger_destroy(pm_ledger *l)
{
    if (!l)
        return;
    if (l->utxo)
        pm_utxo_table_destroy(l->utxo);
    regmap_free(&l->op_index);
    regmap_free(&l->series);
    regmap_free(&l->minted);
    free(l->ops);
    free(l->current.data);
    if (l->history)
        for (uint32_t i = 0; i < l->undo_depth; i++)
            free(l->history[i].log.data);
    free(l->history);
    opkeys_free(l->opkeys);
    free(l);
}

pm_utxo_table *pm_ledger_utxo(pm_ledger *l)
{
    return l->utxo;
}

const uint8_t *pm_ledger_governance_key(const pm_ledger *l)
{
    return l->governance_key;
}

uint64_t pm_ledger_gov_seq(const pm_ledger *l)
{
    return l->gov_seq;
}

void pm_ledger_tip(const pm_ledger *l, uint8_t hash[32], int64_t *height)
{
    if (hash)
        memcpy(hash, l->tip_hash, 32);
    if (height)
        *height = l->tip_height;
}

/* ---------------------------------------------------------------------- */
/* Signatures                                                              */
/* ---------------------------------------------------------------------- */

/* Signature i of `info` must verify under keys[i] (n_sigs keys). The
 * parallel verdict is used when it was made under the same keys;
 * otherwise verify here, once per distinct (key, signature). */
static int signatures_ok(const pm_txinfo *info, const uint8_t (*keys)[32],
                         const secp256k1_context *secp, pm_keycache *cache)
{
    const pm_tx *tx = &info->tx;
    if (info->skip_signatures)
        return 1;
    if (info->sig.resolved) {
        int same = 1;
        for (size_t i = 0; i < tx->n_sigs && same; i++)
            same = memcmp(info->sig.keys + 32 * i, keys[i], 32) == 0;
        if (same)
            return info->sig.sig_ok;
    }
    return pm_verify_tx_sigs(secp, cache, tx, (const uint8_t *)keys, info->sighash);
}

/* ---------------------------------------------------------------------- */
/* The stateful checks (§5), one function per type.                        */
/* ---------------------------------------------------------------------- */

static operator_rec *find_operator(pm_ledger *l, uint32_t id, size_t *index)
{
    uint64_t idx = 0;
    if (!regmap_find(&l->op_index, key_operator(id), &idx))
        return NULL;
    if (index)
        *index = (size_t)idx;
    return &l->ops[idx];
}

/* Room for one more operator record. */
static int ops_reserve(pm_ledger *l)
{
    if (l->n_ops < l->cap_ops)
        return 1;
    size_t cap = l->cap_ops ? l->cap_ops * 2 : 16;
    operator_rec *ops = realloc(l->ops, cap * sizeof *ops);
    if (!ops)
        return 0;
    l->ops = ops;
    l->cap_ops = cap;
    return 1;
}

#define REJECT(r)                                                                   \
    do {                                                                            \
        *reason = (r);                                                              \
        return PM_OK;                                                               \
    } while (0)

static pm_status apply_register(pm_ledger *l, pm_reason *reason, const pm_txinfo *info,
                                const secp256k1_context *secp, pm_keycache *cache)
{
    const pm_tx *tx = &info->tx;
    if (tx->seq != l->gov_seq + 1)
        REJECT(PM_REASON_BAD_SEQUENCE);
    const uint8_t(*keys)[32] = (const uint8_t(*)[32])l->governance_key;
    if (!signatures_ok(info, keys, secp, cache))
        REJECT(PM_REASON_BAD_SIGNATURE);

    size_t index;
    operator_rec *op = find_operator(l, tx->operator_id, &index);
    undo_operator u;
    memset(&u, 0, sizeof u); /* padding too: undo logs go into snapshots */
    u.id = tx->operator_id;
    u.existed = op != NULL;
    if (op)
        u.prev = *op;
    if (!op && !ops_reserve(l))
        return PM_ERR_NOMEM;
    if (!log_reserve(&l->current, 2 * (sizeof u + sizeof l->gov_seq + 3)))
        return PM_ERR_NOMEM;
    if (!op) {
        if (!regmap_put(&l->op_index, key_operator(tx->operator_id), l->n_ops))
            return PM_ERR_NOMEM;
        op = &l->ops[l->n_ops++];
        memset(op, 0, sizeof *op);
        op->id = tx->operator_id;
    }
    log_push(&l->current, UNDO_OPERATOR, &u, sizeof u);
    log_push(&l->current, UNDO_GOV_SEQ, &l->gov_seq, sizeof l->gov_seq);
    memcpy(op->key, tx->key, 32);
    op->name_len = (uint8_t)tx->text_len;
    memcpy(op->name, tx->text, tx->text_len);
    l->gov_seq++;
    l->opkeys_dirty = 1;
    *reason = PM_REASON_NONE;
    return PM_OK;
}

/* Bump op_seq with its undo record. */
static int bump_op_seq(pm_ledger *l, size_t op_index)
{
    undo_op_seq u;
    memset(&u, 0, sizeof u);
    u.index = op_index;
    u.prev = l->ops[op_index].op_seq;
    if (!log_push(&l->current, UNDO_OP_SEQ, &u, sizeof u))
        return 0;
    l->ops[op_index].op_seq++;
    return 1;
}

/* The first two checks of SERIES and ISSUE: the operator exists and the
 * sequence number is the next one. NULL with *reason set otherwise. */
static operator_rec *signing_operator(pm_ledger *l, const pm_tx *tx, size_t *index,
                                      pm_reason *reason)
{
    operator_rec *op = find_operator(l, tx->operator_id, index);
    if (!op)
        *reason = PM_REASON_UNKNOWN_OPERATOR;
    else if (tx->seq != op->op_seq + 1)
        *reason = PM_REASON_BAD_SEQUENCE;
    else
        return op;
    return NULL;
}

static pm_status apply_series(pm_ledger *l, pm_reason *reason, const pm_txinfo *info,
                              const secp256k1_context *secp, pm_keycache *cache)
{
    const pm_tx *tx = &info->tx;
    size_t index;
    operator_rec *op = signing_operator(l, tx, &index, reason);
    if (!op)
        return PM_OK;
    regkey k = key_series(tx->operator_id, tx->series);
    if (regmap_find(&l->series, k, NULL))
        REJECT(PM_REASON_SERIES_EXISTS);
    if (!signatures_ok(info, (const uint8_t(*)[32])op->key, secp, cache))
        REJECT(PM_REASON_BAD_SIGNATURE);
    size_t mark = l->current.len;
    if (!log_push(&l->current, UNDO_SERIES, &k, sizeof k) ||
        !regmap_put(&l->series, k, tx->max_supply)) {
        log_rollback(l, &l->current, mark); /* the record may be there alone */
        return PM_ERR_NOMEM;
    }
    if (!bump_op_seq(l, index)) {
        log_rollback(l, &l->current, mark);
        return PM_ERR_NOMEM;
    }
    *reason = PM_REASON_NONE;
    return PM_OK;
}

/* Mint the stamps and create the outputs of an ISSUE or TRANSFER. */
static pm_status create_outputs(pm_ledger *l, const pm_txinfo *info)
{
    const pm_tx *tx = &info->tx;
    undo_created u;
    memset(&u, 0, sizeof u);
    memcpy(u.txid, info->txid, 32);
    u.n_out = 0;
    /* The record is written first (with n_out 0) and counts up as outputs
     * are inserted, so a failure half way is undone exactly. */
    if (l->staging) {
        /* The outputs are inserted later, by the parallel apply; the
         * record is the one a full insert leaves. */
        u.n_out = tx->n_out;
        return log_push(&l->current, UNDO_CREATED, &u, sizeof u) ? PM_OK : PM_ERR_NOMEM;
    }
    if (!log_push(&l->current, UNDO_CREATED, &u, sizeof u))
        return PM_ERR_NOMEM;
    uint8_t *rec = l->current.data + l->current.len - 2 - sizeof u;
    for (size_t i = 0; i < tx->n_out; i++) {
        pm_status st = pm_utxo_table_insert(l->utxo, info->txid, (uint16_t)i,
                                            tx->outputs + PM_OUTPUT_SIZE * i);
        if (st == PM_ERR_NOMEM)
            return st;
        /* PM_ERR_STATE (outpoint present) cannot happen for a valid
         * transaction: txids of valid transactions are unique (§5). */
        u.n_out = (uint16_t)(i + 1);
        memcpy(rec, &u, sizeof u);
    }
    return PM_OK;
}

static pm_status apply_issue(pm_ledger *l, pm_reason *reason, const pm_txinfo *info,
                             const secp256k1_context *secp, pm_keycache *cache)
{
    const pm_tx *tx = &info->tx;
    size_t index;
    operator_rec *op = signing_operator(l, tx, &index, reason);
    if (!op)
        return PM_OK;

    /* Output checks in order. Stamps are marked minted as they pass, so
     * that a repeat later in the same transaction is ALREADY_MINTED; a
     * reject rolls the marks back. */
    size_t mark = l->current.len;
    pm_status st = PM_OK;
    *reason = PM_REASON_NONE;
    for (size_t i = 0; i < tx->n_out && *reason == PM_REASON_NONE; i++) {
        pm_output out;
        pm_tx_output(pm_context_static, &out, tx, i);
        if (out.operator_id != tx->operator_id) {
            *reason = PM_REASON_WRONG_ISSUER;
            break;
        }
        if (out.kind != PM_OUTPUT_STAMP)
            continue;
        uint64_t max_supply = 0;
        if (!regmap_find(&l->series, key_series(out.operator_id, out.series), &max_supply)) {
            *reason = PM_REASON_UNKNOWN_SERIES;
            break;
        }
        if (out.serial < 1 || out.serial > max_supply) {
            *reason = PM_REASON_SERIAL_OUT_OF_RANGE;
            break;
        }
        regkey k = key_stamp(out.operator_id, out.series, out.serial);
        if (regmap_find(&l->minted, k, NULL)) {
            *reason = PM_REASON_ALREADY_MINTED;
            break;
        }
        if (!log_push(&l->current, UNDO_MINTED, &k, sizeof k) ||
            !regmap_put(&l->minted, k, 0)) {
            st = PM_ERR_NOMEM;
            break;
        }
    }
    if (st == PM_OK && *reason == PM_REASON_NONE &&
        !signatures_ok(info, (const uint8_t(*)[32])op->key, secp, cache))
        *reason = PM_REASON_BAD_SIGNATURE;
    if (st == PM_OK && *reason == PM_REASON_NONE) {
        st = create_outputs(l, info);
        if (st == PM_OK && !bump_op_seq(l, index))
            st = PM_ERR_NOMEM;
    }
    if (st != PM_OK || *reason != PM_REASON_NONE)
        log_rollback(l, &l->current, mark);
    return st;
}

typedef struct {
    uint32_t op, series, serial;
} stamp_id;

typedef struct {
    uint32_t issuer;
    uint64_t amount;
} credit_amt;

static int cmp_stamp(const void *a, const void *b)
{
    const stamp_id *x = a, *y = b;
    if (x->op != y->op)
        return x->op < y->op ? -1 : 1;
    if (x->series != y->series)
        return x->series < y->series ? -1 : 1;
    if (x->serial != y->serial)
        return x->serial < y->serial ? -1 : 1;
    return 0;
}

static int cmp_credit(const void *a, const void *b)
{
    const credit_amt *x = a, *y = b;
    return x->issuer < y->issuer ? -1 : x->issuer > y->issuer;
}

/* Sort credits by issuer and fold them into per-issuer sums in place.
 * Returns the number of issuers, or SIZE_MAX when a sum overflows u64. */
static size_t fold_credits(credit_amt *c, size_t n)
{
    qsort(c, n, sizeof *c, cmp_credit);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && c[k - 1].issuer == c[i].issuer) {
            if (c[k - 1].amount > UINT64_MAX - c[i].amount)
                return SIZE_MAX;
            c[k - 1].amount += c[i].amount;
        } else {
            c[k++] = c[i];
        }
    }
    return k;
}

/* §5 NOT_CONSERVED for the spent outputs `spent` and the new outputs. */
static int conserved(const uint8_t (*spent)[PM_OUTPUT_SIZE], const pm_tx *tx)
{
    stamp_id s_in[PM_TX_MAX_INPUTS], s_out[PM_TX_MAX_OUTPUTS];
    credit_amt c_in[PM_TX_MAX_INPUTS], c_out[PM_TX_MAX_OUTPUTS];
    size_t ns_in = 0, ns_out = 0, nc_in = 0, nc_out = 0;
    for (size_t i = 0; i < tx->n_in; i++) {
        pm_output o;
        pm_output_decode(pm_context_static, &o, spent[i]);
        if (o.kind == PM_OUTPUT_STAMP)
            s_in[ns_in++] = (stamp_id){o.operator_id, o.series, o.serial};
        else
            c_in[nc_in++] = (credit_amt){o.operator_id, o.amount};
    }
    for (size_t i = 0; i < tx->n_out; i++) {
        pm_output o;
        pm_tx_output(pm_context_static, &o, tx, i);
        if (o.kind == PM_OUTPUT_STAMP)
            s_out[ns_out++] = (stamp_id){o.operator_id, o.series, o.serial};
        else
            c_out[nc_out++] = (credit_amt){o.operator_id, o.amount};
    }
    /* Stamps: the same multiset on both sides, each exactly once. */
    if (ns_in != ns_out)
        return 0;
    qsort(s_in, ns_in, sizeof *s_in, cmp_stamp);
    qsort(s_out, ns_out, sizeof *s_out, cmp_stamp);
    for (size_t i = 0; i < ns_in; i++) {
        if (cmp_stamp(&s_in[i], &s_out[i]) != 0)
            return 0;
        if (i > 0 && cmp_stamp(&s_out[i - 1], &s_out[i]) == 0)
            return 0;
    }
    /* Credits: every issuer's sums fit in u64 and new <= spent. */
    size_t k_in = fold_credits(c_in, nc_in), k_out = fold_credits(c_out, nc_out);
    if (k_in == SIZE_MAX || k_out == SIZE_MAX)
        return 0;
    size_t j = 0;
    for (size_t i = 0; i < k_out; i++) {
        while (j < k_in && c_in[j].issuer < c_out[i].issuer)
            j++;
        if (j == k_in || c_in[j].issuer != c_out[i].issuer || c_out[i].amount > c_in[j].amount)
            return 0;
    }
    return 1;
}

static pm_status apply_transfer(pm_ledger *l, pm_reason *reason, const pm_txinfo *info,
                                const secp256k1_context *secp, pm_keycache *cache)
{
    const pm_tx *tx = &info->tx;
    pm_outpoint in[PM_TX_MAX_INPUTS];
    uint8_t spent[PM_TX_MAX_INPUTS][PM_OUTPUT_SIZE];
    uint8_t found[PM_TX_MAX_INPUTS];
    for (size_t i = 0; i < tx->n_in; i++)
        pm_tx_input(pm_context_static, &in[i], tx, i);
    pm_utxo_table_lookup_batch(l->utxo, tx->n_in, in, spent, found);
    for (size_t i = 0; i < tx->n_in; i++)
        if (!found[i])
            REJECT(PM_REASON_MISSING_INPUT);
    if (!conserved((const uint8_t(*)[PM_OUTPUT_SIZE])spent, tx))
        REJECT(PM_REASON_NOT_CONSERVED);
    uint8_t owners[PM_TX_MAX_INPUTS][32];
    for (size_t i = 0; i < tx->n_in; i++)
        memcpy(owners[i], spent[i] + 1, 32);
    if (!signatures_ok(info, (const uint8_t(*)[32])owners, secp, cache))
        REJECT(PM_REASON_BAD_SIGNATURE);

    size_t mark = l->current.len;
    if (!log_reserve(&l->current, tx->n_in * (sizeof(undo_spent) + 3)))
        return PM_ERR_NOMEM;
    for (size_t i = 0; i < tx->n_in; i++) {
        undo_spent u;
        memset(&u, 0, sizeof u);
        memcpy(u.txid, in[i].txid, 32);
        u.index = in[i].index;
        memcpy(u.output, spent[i], PM_OUTPUT_SIZE);
        log_push(&l->current, UNDO_SPENT, &u, sizeof u);
        /* Single committer: the lookup above found it, so this succeeds. */
        (void)pm_utxo_table_spend(l->utxo, in[i].txid, in[i].index, NULL);
    }
    pm_status st = create_outputs(l, info);
    if (st != PM_OK) {
        log_rollback(l, &l->current, mark);
        return st;
    }
    *reason = PM_REASON_NONE;
    return PM_OK;
}

pm_status pm_ledger_apply_tx(pm_ledger *l, pm_reason *reason, const pm_txinfo *info,
                             const secp256k1_context *secp, pm_keycache *cache)
{
    const pm_tx *tx = &info->tx;
    *reason = PM_REASON_NONE;
    if (info->duplicate_input) {
        *reason = PM_REASON_DUPLICATE_INPUT;
        return PM_OK;
    }
    /* Every insert this apply or a later rollback of the whole current log
     * can make must be covered before anything changes. */
    if (pm_utxo_table_reserve(l->utxo, tx->n_out + tx->n_in + l->current.spent) != PM_OK)
        return PM_ERR_NOMEM;
    switch (tx->type) {
    case PM_TX_REGISTER: return apply_register(l, reason, info, secp, cache);
    case PM_TX_SERIES: return apply_series(l, reason, info, secp, cache);
    case PM_TX_ISSUE: return apply_issue(l, reason, info, secp, cache);
    case PM_TX_TRANSFER: return apply_transfer(l, reason, info, secp, cache);
    }
    *reason = PM_REASON_MALFORMED;
    return PM_OK;
}

pm_status pm_ledger_check_tx(pm_ledger *l, pm_reason *reason, const pm_txinfo *info,
                             const secp256k1_context *secp, pm_keycache *cache)
{
    size_t mark = l->current.len;
    pm_status st = pm_ledger_apply_tx(l, reason, info, secp, cache);
    if (st == PM_OK && *reason == PM_REASON_NONE)
        log_rollback(l, &l->current, mark);
    return st;
}

/* ---------------------------------------------------------------------- */
/* Staged apply: the registry part in order, the UTXO part left to the      */
/* pipeline's partitioned apply (commit_par.c).                            */
/* ---------------------------------------------------------------------- */

/* A TRANSFER's undo records, as apply_transfer writes them, with each
 * spent output left zero for the parallel apply to fill in. */
static pm_status stage_transfer(pm_ledger *l, const pm_txinfo *info, size_t *spent_at)
{
    const pm_tx *tx = &info->tx;
    if (!log_reserve(&l->current,
                     tx->n_in * (sizeof(undo_spent) + 3) + sizeof(undo_created) + 3))
        return PM_ERR_NOMEM;
    *spent_at = l->current.len;
    for (size_t i = 0; i < tx->n_in; i++) {
        pm_outpoint op;
        pm_tx_input(pm_context_static, &op, tx, i);
        undo_spent u;
        memset(&u, 0, sizeof u);
        memcpy(u.txid, op.txid, 32);
        u.index = op.index;
        log_push(&l->current, UNDO_SPENT, &u, sizeof u);
    }
    return create_outputs(l, info);
}

pm_status pm_ledger_stage_tx(pm_ledger *l, pm_reason *reason, const pm_txinfo *info,
                             const secp256k1_context *secp, pm_keycache *cache,
                             size_t *spent_at)
{
    const pm_tx *tx = &info->tx;
    *reason = PM_REASON_NONE;
    *spent_at = SIZE_MAX;
    if (info->duplicate_input) {
        *reason = PM_REASON_DUPLICATE_INPUT;
        return PM_OK;
    }
    pm_status st;
    l->staging = 1;
    switch (tx->type) {
    case PM_TX_REGISTER: st = apply_register(l, reason, info, secp, cache); break;
    case PM_TX_SERIES: st = apply_series(l, reason, info, secp, cache); break;
    case PM_TX_ISSUE: st = apply_issue(l, reason, info, secp, cache); break;
    case PM_TX_TRANSFER: st = stage_transfer(l, info, spent_at); break;
    default: *reason = PM_REASON_MALFORMED; st = PM_OK;
    }
    l->staging = 0;
    return st;
}

pm_reason pm_ledger_check_spent(const pm_txinfo *info, const uint8_t (*spent)[PM_OUTPUT_SIZE],
                                const secp256k1_context *secp, pm_keycache *cache)
{
    const pm_tx *tx = &info->tx;
    if (!conserved(spent, tx))
        return PM_REASON_NOT_CONSERVED;
    uint8_t owners[PM_TX_MAX_INPUTS][32];
    for (size_t i = 0; i < tx->n_in; i++)
        memcpy(owners[i], spent[i] + 1, 32);
    if (!signatures_ok(info, (const uint8_t(*)[32])owners, secp, cache))
        return PM_REASON_BAD_SIGNATURE;
    return PM_REASON_NONE;
}

uint8_t *pm_ledger_log_bytes(pm_ledger *l)
{
    return l->current.data;
}

size_t pm_ledger_log_spent(const pm_ledger *l)
{
    return l->current.spent;
}

void pm_ledger_unstage(pm_ledger *l, size_t mark)
{
    l->staging = 1;
    log_rollback(l, &l->current, mark);
    l->staging = 0;
}

size_t pm_ledger_mark(const pm_ledger *l)
{
    return l->current.len;
}

void pm_ledger_rollback(pm_ledger *l, size_t mark)
{
    log_rollback(l, &l->current, mark);
}

pm_status pm_ledger_seal_block(pm_ledger *l, const uint8_t block_hash[32])
{
    size_t slot = (l->hist_start + l->hist_count) % l->undo_depth;
    if (l->hist_count == l->undo_depth) {
        /* The oldest block's undo data goes; its buffer is reused. */
        slot = l->hist_start;
        l->hist_start = (l->hist_start + 1) % l->undo_depth;
        l->hist_count--;
    }
    sealed_block *b = &l->history[slot];
    undo_log old = b->log;
    memcpy(b->hash, block_hash, 32);
    memcpy(b->prev_hash, l->tip_hash, 32);
    b->log = l->current;
    /* The current log starts empty, reusing the evicted buffer. */
    l->current = old;
    l->current.len = 0;
    l->current.spent = 0;
    l->hist_count++;
    memcpy(l->tip_hash, block_hash, 32);
    l->tip_height++;
    return PM_OK;
}

pm_status pm_ledger_disconnect_tip(pm_ledger *l)
{
    if (l->hist_count == 0 || l->current.len != 0)
        return PM_ERR_STATE;
    size_t slot = (l->hist_start + l->hist_count - 1) % l->undo_depth;
    sealed_block *b = &l->history[slot];
    if (pm_utxo_table_reserve(l->utxo, b->log.spent) != PM_OK)
        return PM_ERR_NOMEM;
    log_rollback(l, &b->log, 0);
    memcpy(l->tip_hash, b->prev_hash, 32);
    l->tip_height--;
    l->hist_count--;
    return PM_OK;
}

/* ---------------------------------------------------------------------- */
/* Operator-key snapshot                                                   */
/* ---------------------------------------------------------------------- */

const pm_opkeys *pm_ledger_opkeys(const pm_ledger *l)
{
    return l->opkeys;
}

static int cmp_u32_index(const void *a, const void *b, void *arg)
{
    const operator_rec *ops = arg;
    uint32_t x = ops[*(const size_t *)a].id, y = ops[*(const size_t *)b].id;
    return x < y ? -1 : x > y;
}

pm_status pm_ledger_publish_opkeys(pm_ledger *l)
{
    if (!l->opkeys_dirty)
        return PM_OK;
    pm_opkeys *k = calloc(1, sizeof *k);
    size_t *order = malloc((l->n_ops ? l->n_ops : 1) * sizeof *order);
    if (k) {
        k->ids = malloc((l->n_ops ? l->n_ops : 1) * sizeof *k->ids);
        k->keys = malloc((l->n_ops ? l->n_ops : 1) * sizeof *k->keys);
    }
    if (!k || !order || !k->ids || !k->keys) {
        free(order);
        opkeys_free(k);
        return PM_ERR_NOMEM;
    }
    for (size_t i = 0; i < l->n_ops; i++)
        order[i] = i;
    qsort_r(order, l->n_ops, sizeof *order, cmp_u32_index, l->ops);
    for (size_t i = 0; i < l->n_ops; i++) {
        k->ids[i] = l->ops[order[i]].id;
        memcpy(k->keys[i], l->ops[order[i]].key, 32);
    }
    k->n = l->n_ops;
    free(order);
    opkeys_free(l->opkeys);
    l->opkeys = k;
    l->opkeys_dirty = 0;
    return PM_OK;
}

const uint8_t *pm_opkeys_find(const pm_opkeys *k, uint32_t id)
{
    size_t lo = 0, hi = k->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (k->ids[mid] < id)
            lo = mid + 1;
        else if (k->ids[mid] > id)
            hi = mid;
        else
            return k->keys[mid];
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Snapshot support                                                        */
/* ---------------------------------------------------------------------- */

size_t pm_ledger_operator_count(const pm_ledger *l)
{
    return l->n_ops;
}

void pm_ledger_operator_at(const pm_ledger *l, size_t i, pm_operator_info *out)
{
    *out = l->ops[i];
}

const pm_operator_info *pm_ledger_find_operator(const pm_ledger *l, uint32_t id,
                                                pm_operator_info *out)
{
    uint64_t idx = 0;
    if (!regmap_find(&l->op_index, key_operator(id), &idx))
        return NULL;
    *out = l->ops[idx];
    return out;
}

int pm_ledger_foreach_series(const pm_ledger *l,
                             int (*fn)(void *, uint32_t, uint32_t, uint32_t), void *data)
{
    for (size_t i = 0; i < l->series.n; i++) {
        regkey k = l->series.keys[i];
        int r = fn(data, (uint32_t)(k.k0 >> 32), (uint32_t)k.k0, (uint32_t)l->series.values[i]);
        if (r)
            return r;
    }
    return 0;
}

int pm_ledger_foreach_minted(const pm_ledger *l,
                             int (*fn)(void *, uint32_t, uint32_t, uint32_t), void *data)
{
    for (size_t i = 0; i < l->minted.n; i++) {
        regkey k = l->minted.keys[i];
        int r = fn(data, (uint32_t)(k.k0 >> 32), (uint32_t)k.k0, (uint32_t)(k.k1 - 1));
        if (r)
            return r;
    }
    return 0;
}

size_t pm_ledger_series_count(const pm_ledger *l)
{
    return l->series.n;
}

size_t pm_ledger_minted_count(const pm_ledger *l)
{
    return l->minted.n;
}

pm_status pm_ledger_restore_operator(pm_ledger *l, const pm_operator_info *op)
{
    if (!ops_reserve(l))
        return PM_ERR_NOMEM;
    if (!regmap_put(&l->op_index, key_operator(op->id), l->n_ops))
        return PM_ERR_NOMEM;
    l->ops[l->n_ops++] = *op;
    l->opkeys_dirty = 1;
    return PM_OK;
}

pm_status pm_ledger_restore_series(pm_ledger *l, uint32_t op, uint32_t series,
                                   uint32_t max_supply)
{
    return regmap_put(&l->series, key_series(op, series), max_supply) ? PM_OK : PM_ERR_NOMEM;
}

pm_status pm_ledger_restore_minted(pm_ledger *l, uint32_t op, uint32_t series, uint32_t serial)
{
    return regmap_put(&l->minted, key_stamp(op, series, serial), 0) ? PM_OK : PM_ERR_NOMEM;
}

void pm_ledger_restore_gov_seq(pm_ledger *l, uint64_t gov_seq)
{
    l->gov_seq = gov_seq;
}

void pm_ledger_restore_tip(pm_ledger *l, const uint8_t hash[32], int64_t height)
{
    memcpy(l->tip_hash, hash, 32);
    l->tip_height = height;
}

size_t pm_ledger_history_count(const pm_ledger *l)
{
    return l->hist_count;
}

void pm_ledger_history_at(const pm_ledger *l, size_t i, uint8_t hash[32], uint8_t prev_hash[32],
                          const uint8_t **log, size_t *len, size_t *spent)
{
    const sealed_block *b = &l->history[(l->hist_start + i) % l->undo_depth];
    memcpy(hash, b->hash, 32);
    memcpy(prev_hash, b->prev_hash, 32);
    *log = b->log.data;
    *len = b->log.len;
    *spent = b->log.spent;
}

pm_status pm_ledger_history_push(pm_ledger *l, const uint8_t hash[32], const uint8_t prev_hash[32],
                                 const uint8_t *log, size_t len, size_t spent)
{
    undo_log copy = {0};
    if (!log_reserve(&copy, len ? len : 1))
        return PM_ERR_NOMEM;
    memcpy(copy.data, log, len);
    copy.len = len;
    copy.spent = spent;
    if (l->hist_count == l->undo_depth) {
        free(l->history[l->hist_start].log.data);
        l->history[l->hist_start].log = (undo_log){0};
        l->hist_start = (l->hist_start + 1) % l->undo_depth;
        l->hist_count--;
    }
    sealed_block *b = &l->history[(l->hist_start + l->hist_count) % l->undo_depth];
    free(b->log.data);
    memcpy(b->hash, hash, 32);
    memcpy(b->prev_hash, prev_hash, 32);
    b->log = copy;
    l->hist_count++;
    return PM_OK;
}
