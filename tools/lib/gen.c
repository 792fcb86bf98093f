/*
 * gen.c — the seeded generator of signed transaction streams (see gen.h).
 *
 * Design. A stream is made chunk by chunk (at most 64K records or 64 MB),
 * in three passes per chunk:
 *
 *  1. plan (sequential): the planner keeps a model of the ledger — gov_seq,
 *     every operator's key, op_seq and series (with the next serial to mint:
 *     stamps are minted in serial order, so "minted" is "serial < next"),
 *     and a pool of spendable outputs with their owners. It draws every
 *     choice from one seeded PRNG, builds each transaction's bytes with
 *     zero signatures, computes its txid, decides which key signs each
 *     signature and, knowing the state, the verdict a sequential validator
 *     will give. Only transactions planned as valid change the model.
 *  2. sign (parallel): `threads` workers take records by index modulo the
 *     worker count, hash the sighash and make BIP-340 signatures with no
 *     auxiliary randomness (deterministic). The workers write disjoint
 *     bytes of the chunk; joining them publishes the bytes.
 *  3. write (sequential): replays that copy a record of the same chunk get
 *     their bytes, and the chunk, already laid out as length-prefixed
 *     records, is written to the file.
 *
 * Invariants: the planner never reads a signature, so the bytes do not
 * depend on the number of workers. Invalid records are built to fail at
 * exactly one known check: everything the validator examines before that
 * check is made valid (the right sequence number, existing inputs,
 * conservation, ...), and what fails cannot pass by chance (a signature by
 * another key, an outpoint already spent, a sequence number already used).
 *
 * Memory: the chunk buffer, and a model whose pool of spendable outputs is
 * capped (outputs created past the cap stay in the ledger, unspent,
 * unknown to the planner), whatever the number of records.
 */
#include "gen.h"

#include "bytes.h"
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK_RECORDS 65536u /* at most, per chunk */
#define CHUNK_BYTES (64u << 20)
#define ARENA_BYTES (CHUNK_BYTES + 2u * (PM_TX_MAX_SIZE + 4u))
#define NONE UINT32_MAX
#define RECENT_RING 1024u
#define SPENT_RING 1024u
#define REPLAY_POOL 64u
#define REPLAY_MAX_SIZE 4096u
#define CONFLICT_QUEUE 64u
#define LAST_OUTPUTS 16u
#define MAX_THREADS 256u
#define PPM 1000000u

/* Fixed key indices; operator keys are appended after the collectors. */
#define KEY_GOV 0u
#define KEY_FORGER 1u /* keys that sign what they have no right to sign */
#define N_FORGERS 4u
#define KEY_COLLECTOR (KEY_FORGER + N_FORGERS)

/* ---------------------------------------------------------------------- */
/* Names: operators are real postal administrations, their ids the ISO    */
/* 3166-1 numeric code of their country.                                   */
/* ---------------------------------------------------------------------- */

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
#define EXTRA_OPERATOR_ID 1000u       /* ids of operators past the list */
#define UNREGISTERED_OPERATOR 1000000u /* ids at and above: never registered */
#define UNDECLARED_SERIES 4000000000u  /* series ids at and above: never declared */

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
/* PRNG: xoshiro256**, seeded through splitmix64.                          */
/* ---------------------------------------------------------------------- */

typedef struct {
    uint64_t s[4];
} gen_rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(gen_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(gen_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n), n >= 1 (multiply-shift; the bias is below 2^-32). */
static uint64_t rng_below(gen_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* ---------------------------------------------------------------------- */
/* The model.                                                              */
/* ---------------------------------------------------------------------- */

typedef struct {
    secp256k1_keypair kp;
    uint8_t xonly[PM_KEY_SIZE];
} gen_key;

typedef struct {
    uint32_t id;
    uint32_t max_supply;
    uint32_t next_serial; /* serials below it are minted */
} series_m;

typedef struct {
    uint32_t id;
    const char *name;
    char name_buf[32];
    int registered;
    uint64_t op_seq;
    uint32_t key;        /* index of its current key */
    uint32_t old_key;    /* its previous key after a rotation, or NONE */
    uint32_t generation; /* rotations so far */
    series_m *series;
    uint32_t n_series, cap_series;
    uint32_t series_counter; /* how many series ids it has used */
} op_m;

/* A spendable output the planner knows. kind 0 marks a free slot. */
typedef struct {
    uint8_t txid[PM_HASH_SIZE];
    uint64_t amount;
    uint32_t owner; /* collector */
    uint32_t op, series, serial;
    uint32_t prev, next; /* the owner's list of credits; next links free slots */
    uint32_t gen;        /* bumped when the slot is freed */
    uint16_t index;
    uint8_t kind;
} ent;

typedef struct {
    uint32_t idx, gen;
} ent_ref;

/* A record of the current chunk. */
typedef struct {
    uint32_t off;     /* its length prefix in the arena */
    uint32_t len;     /* transaction bytes */
    uint32_t sig_off; /* where its signatures start */
    uint32_t n_sigs;  /* signatures to make (0: none) */
    uint32_t signers; /* first of its key indices in chunk.signers */
    int32_t copy_of;  /* a replay of this earlier record of the chunk, or -1 */
    uint8_t txid[PM_HASH_SIZE];
} rec;

typedef struct {
    uint8_t *bytes;
    uint32_t len;
    uint8_t type;
} saved_tx;

/* A transaction being built. */
#define MAX_DRAFT_IN 256u
#define MAX_DRAFT_OUT 1024u
typedef struct {
    pm_tx tx;
    uint8_t inputs[MAX_DRAFT_IN * PM_INPUT_SIZE];
    uint8_t outputs[MAX_DRAFT_OUT * PM_OUTPUT_SIZE];
    uint32_t out_owner[MAX_DRAFT_OUT];
    uint8_t key[PM_KEY_SIZE], metadata[PM_HASH_SIZE], text[255];
    uint32_t signers[MAX_DRAFT_IN];
    uint32_t n_signers;
    uint32_t spends[MAX_DRAFT_IN]; /* pool entries the inputs spend */
    uint32_t n_spends;
    uint32_t op;                   /* operator model index, or NONE */
    uint32_t new_key;              /* REGISTER */
    uint32_t series_idx;           /* ISSUE: series of its stamps, or NONE */
    series_m new_series;           /* SERIES */
    uint32_t adopt;                /* outputs to adopt into the pool: all
                                      (NONE) or this many, spread out */
} draft;

typedef enum { PH_REGISTER, PH_SERIES, PH_GRANTS, PH_STAMPS, PH_MAIN } phase;

typedef struct {
    const pm_context *ctx;
    pm_gen_config cfg;
    pm_chain_params params;
    uint8_t chain_id[PM_HASH_SIZE];
    secp256k1_context *secp; /* signing; the library's context only verifies */
    gen_rng rng;
    int oom;

    gen_key *keys;
    uint32_t n_keys, cap_keys;

    op_m *ops;
    uint32_t n_ops;
    uint64_t gov_seq;

    uint64_t *zipf_cdf; /* collectors, weight 2^32 / (rank + 1) */
    uint64_t zipf_total;

    ent *pool;
    uint32_t pool_used, pool_cap, pool_live, pool_limit, pool_free;
    uint32_t *credit_head; /* per collector */
    ent_ref recent[RECENT_RING];
    uint64_t n_recent;
    ent spent[SPENT_RING];
    uint64_t n_spent;
    ent_ref last_outputs[LAST_OUTPUTS];
    uint32_t n_last_outputs;
    uint64_t last_applied; /* record number of the last valid record + 1 */

    struct {
        ent e;
        uint64_t due;
    } conflicts[CONFLICT_QUEUE];
    uint32_t conflict_head, conflict_count;

    saved_tx replay_pool[REPLAY_POOL];
    uint32_t n_replay_pool, replay_pool_next;

    /* the chunk */
    uint8_t *arena;
    size_t arena_used;
    rec *recs;
    uint32_t n_recs;
    uint32_t *signers;
    size_t n_signers, cap_signers;
    uint32_t *accepted;      /* records of the chunk planned valid */
    uint8_t *accepted_type;
    uint32_t n_accepted;

    phase ph;
    uint32_t setup_i, setup_j;
    uint64_t record_no; /* number of records planned so far */
    uint32_t chunk_records;
    unsigned threads;

    draft d;
    pm_gen_report report;
} gen;

/* ---------------------------------------------------------------------- */
/* Keys.                                                                   */
/* ---------------------------------------------------------------------- */

/* secret = H("postmark-gen/key", seed || role || index || attempt), the
 * first attempt that is a valid secret key. Returns the key index, or NONE
 * when out of memory. */
static uint32_t add_key(gen *g, uint8_t role, uint32_t index)
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
static uint32_t zipf_owner(gen *g)
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

static uint32_t uniform_owner(gen *g)
{
    return (uint32_t)rng_below(&g->rng, g->cfg.collectors);
}

/* A collector other than `not` (when there is another). */
static uint32_t other_owner(gen *g, uint32_t not, int skewed)
{
    uint32_t o = skewed ? zipf_owner(g) : uniform_owner(g);
    if (o == not && g->cfg.collectors > 1)
        o = (uint32_t)((o + 1 + rng_below(&g->rng, g->cfg.collectors - 1)) % g->cfg.collectors);
    return o;
}

/* ---------------------------------------------------------------------- */
/* The pool of spendable outputs.                                          */
/* ---------------------------------------------------------------------- */

static int ent_live(const gen *g, ent_ref r)
{
    return r.idx < g->pool_used && g->pool[r.idx].kind != 0 && g->pool[r.idx].gen == r.gen;
}

/* Adopt output `index` of `txid` into the pool. Returns its slot, or NONE
 * when the pool is full (the output is then unknown to the planner). */
static uint32_t adopt(gen *g, const uint8_t txid[32], uint16_t index, const uint8_t raw[45],
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
static void spend(gen *g, uint32_t i)
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
static uint32_t pick_live(gen *g, uint8_t kind)
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
static uint32_t pick_recent(gen *g)
{
    uint64_t n = g->n_recent < RECENT_RING ? g->n_recent : RECENT_RING;
    for (int attempt = 0; n && attempt < 16; attempt++) {
        ent_ref r = g->recent[(g->n_recent - 1 - rng_below(&g->rng, n)) % RECENT_RING];
        if (ent_live(g, r))
            return r.idx;
    }
    return NONE;
}

/* ---------------------------------------------------------------------- */
/* Drafts: building one transaction.                                       */
/* ---------------------------------------------------------------------- */

static draft *d_begin(gen *g, uint8_t type)
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

static void d_signer(draft *d, uint32_t key)
{
    d->signers[d->n_signers++] = key;
}

/* An input spending the outpoint of `e`, signed by its owner. */
static void d_input(gen *g, const ent *e)
{
    draft *d = &g->d;
    uint8_t *p = d->inputs + d->tx.n_in * PM_INPUT_SIZE;
    memcpy(p, e->txid, 32);
    tool_put_le16(p + 32, e->index);
    d->tx.n_in++;
    d_signer(d, KEY_COLLECTOR + e->owner);
}

/* An input spending pool entry i. */
static void d_spend(gen *g, uint32_t i)
{
    d_input(g, &g->pool[i]);
    g->d.spends[g->d.n_spends++] = i;
}

static void d_stamp(gen *g, uint32_t owner, uint32_t op, uint32_t series, uint32_t serial)
{
    draft *d = &g->d;
    pm_output o = {.kind = PM_OUTPUT_STAMP, .operator_id = op, .series = series, .serial = serial};
    memcpy(o.owner, owner_key(g, owner), 32);
    pm_output_encode(pm_context_static, d->outputs + d->tx.n_out * PM_OUTPUT_SIZE, &o);
    d->out_owner[d->tx.n_out++] = owner;
}

static void d_credit(gen *g, uint32_t owner, uint32_t issuer, uint64_t amount)
{
    draft *d = &g->d;
    pm_output o = {.kind = PM_OUTPUT_CREDIT, .operator_id = issuer, .amount = amount};
    memcpy(o.owner, owner_key(g, owner), 32);
    pm_output_encode(pm_context_static, d->outputs + d->tx.n_out * PM_OUTPUT_SIZE, &o);
    d->out_owner[d->tx.n_out++] = owner;
}

/* The same asset as `e`, to `owner` (a credit: `amount` of it). */
static void d_asset(gen *g, const ent *e, uint32_t owner, uint64_t amount)
{
    if (e->kind == PM_OUTPUT_STAMP)
        d_stamp(g, owner, e->op, e->series, e->serial);
    else
        d_credit(g, owner, e->op, amount);
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

static void count_verdict(gen *g, pm_reason planned)
{
    if (planned == PM_REASON_NONE)
        g->report.planned_accepted++;
    else
        g->report.planned[planned]++;
}

/* Append the draft as the chunk's next record (zero signatures) with its
 * planned verdict. Returns the record, or NULL when out of memory. */
static rec *emit(gen *g, pm_reason planned)
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
    count_verdict(g, planned);
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
            spend(g, d->spends[i]);
        break;
    }
    g->n_last_outputs = 0;
    if (d->tx.type == PM_TX_ISSUE || d->tx.type == PM_TX_TRANSFER) {
        /* adopt all outputs, or n_adopt spread over them */
        for (size_t k = 0; k < n_adopt && k < d->tx.n_out; k++) {
            size_t i = n_adopt >= d->tx.n_out ? k : k * d->tx.n_out / n_adopt;
            uint32_t slot = adopt(g, r->txid, (uint16_t)i, d->outputs + i * PM_OUTPUT_SIZE,
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
static int emit_valid(gen *g)
{
    rec *r = emit(g, PM_REASON_NONE);
    if (!r)
        return 0;
    apply(g, r);
    return 1;
}

static int emit_invalid(gen *g, pm_reason reason)
{
    return emit(g, reason) != NULL;
}

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
    uint32_t key = add_key(g, 'o', k << 8 | ((op->generation + (uint32_t)rotate) & 0xFF));
    if (key == NONE)
        return 0;
    draft *d = d_begin(g, PM_TX_REGISTER);
    d->tx.seq = g->gov_seq + 1;
    d->tx.operator_id = op->id;
    memcpy(d->key, g->keys[key].xonly, 32);
    d->tx.text_len = strlen(op->name);
    memcpy(d->text, op->name, d->tx.text_len);
    d->op = k;
    d->new_key = key;
    d_signer(d, KEY_GOV);
    return 1;
}

/* SERIES: the next series of operator k, signed by its key. */
static void build_series(gen *g, uint32_t k, uint32_t max_supply)
{
    op_m *op = &g->ops[k];
    uint32_t j = op->series_counter;
    uint32_t year = 2001 + j % 25;
    draft *d = d_begin(g, PM_TX_SERIES);
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
    d_signer(d, op->key);
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
    draft *d = d_begin(g, PM_TX_ISSUE);
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
            d_stamp(g, skewed ? zipf_owner(g) : uniform_owner(g), op->id, sm->id,
                    sm->next_serial + i);
        d->series_idx = s;
    }
    if (d->tx.n_out == 0 && n_credits == 0)
        n_credits = 1;
    for (uint32_t i = 0; i < n_credits && d->tx.n_out < MAX_DRAFT_OUT; i++)
        d_credit(g, skewed ? zipf_owner(g) : uniform_owner(g), op->id,
                 credit_min + rng_below(&g->rng, credit_span));
    d_signer(d, op->key);
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
    d_begin(g, PM_TX_TRANSFER);
    d_spend(g, i);
    d_stamp(g, other_owner(g, e.owner, skewed), e.op, e.series, e.serial);
}

/* Payment from credit entry i: a part to another collector, the change
 * back, sometimes a unit of fee. `split` 0 pays everything. */
static void build_payment(gen *g, uint32_t i, int skewed, int split)
{
    ent e = g->pool[i];
    d_begin(g, PM_TX_TRANSFER);
    d_spend(g, i);
    uint32_t to = other_owner(g, e.owner, skewed);
    if (e.amount < 2 || !split) {
        d_credit(g, to, e.op, e.amount);
        return;
    }
    uint64_t pay = 1 + rng_below(&g->rng, e.amount - 1);
    uint64_t rest = e.amount - pay;
    if (rest > 1 && rng_below(&g->rng, 4) == 0)
        rest--; /* fee */
    d_credit(g, to, e.op, pay);
    d_credit(g, e.owner, e.op, rest);
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
    d_begin(g, PM_TX_TRANSFER);
    d_spend(g, s);
    d_spend(g, c);
    uint64_t cap = ec.amount < 50000 ? ec.amount : 50000;
    uint64_t price = 1 + rng_below(&g->rng, cap);
    d_stamp(g, ec.owner, es.op, es.series, es.serial);
    d_credit(g, es.owner, ec.op, price);
    if (ec.amount > price)
        d_credit(g, ec.owner, ec.op, ec.amount - price);
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
    d_begin(g, PM_TX_TRANSFER);
    for (uint32_t k = 0; k < n; k++)
        d_spend(g, found[k]);
    if (sum > 1 && rng_below(&g->rng, 2) == 0)
        sum--; /* fee */
    d_credit(g, ec.owner, ec.op, sum);
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
                emit_valid(g);
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
                emit_valid(g);
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
                draft *d = d_begin(g, PM_TX_ISSUE);
                d->tx.seq = op->op_seq + 1;
                d->tx.operator_id = op->id;
                d->op = k;
                for (uint32_t i = 0; i < batch && g->setup_i < c->collectors; i++, g->setup_i++) {
                    uint64_t amount = c->shape == PM_GEN_MARKET
                                          ? 5000 + 5000000 / ((uint64_t)g->setup_i + 1)
                                          : 1000000000u;
                    d_credit(g, g->setup_i, op->id, amount);
                }
                d_signer(d, op->key);
                emit_valid(g);
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
                emit_valid(g);
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
                emit_valid(g);
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
        uint32_t s = pick_live(g, PM_OUTPUT_STAMP);
        if (s != NONE) {
            build_gift(g, s, 1);
            return emit_valid(g);
        }
    } else if (w < 620) { /* payment */
        uint32_t c = pick_live(g, PM_OUTPUT_CREDIT);
        if (c != NONE) {
            build_payment(g, c, 1, 1);
            return emit_valid(g);
        }
    } else if (w < 800) { /* trade */
        uint32_t s = pick_live(g, PM_OUTPUT_STAMP), c = pick_live(g, PM_OUTPUT_CREDIT);
        if (s != NONE && c != NONE && build_trade(g, s, c))
            return emit_valid(g);
    } else if (w < 920) { /* consolidation */
        uint32_t c = pick_live(g, PM_OUTPUT_CREDIT);
        if (c != NONE && build_consolidation(g, c))
            return emit_valid(g);
    } else if (w < 990) { /* more stamps and credits */
        uint32_t n = 1 + (uint32_t)rng_below(&g->rng, 32);
        build_issue(g, random_op(g), n, (uint32_t)rng_below(&g->rng, 5), 1, 1000, 100000);
        return emit_valid(g);
    } else if (w < 999) { /* a new series */
        uint32_t k = random_op(g);
        if (g->ops[k].n_series < 4 * g->cfg.series_per_operator + 4) {
            if (!series_room(g, k))
                return 0;
            build_series(g, k, pick_edition(g));
            return emit_valid(g);
        }
    } else { /* an operator rotates its key */
        if (!build_register(g, random_op(g), 1))
            return 0;
        g->ops[g->d.op].generation++;
        return emit_valid(g);
    }
    /* Nothing to spend of the kind wanted: credits are always possible. */
    build_issue(g, random_op(g), 0, 1 + (uint32_t)rng_below(&g->rng, 8), 1, 1000, 100000);
    return emit_valid(g);
}

/* The second spend of a conflicting pair: an outpoint already spent. */
static int emit_conflict_second(gen *g)
{
    ent e = g->conflicts[g->conflict_head].e;
    g->conflict_head = (g->conflict_head + 1) % CONFLICT_QUEUE;
    g->conflict_count--;
    d_begin(g, PM_TX_TRANSFER);
    d_input(g, &e);
    d_asset(g, &e, other_owner(g, e.owner, 1), e.amount);
    return emit_invalid(g, PM_REASON_MISSING_INPUT);
}

/* A valid transfer whose first input is spent again a few records later. */
static int market_conflict(gen *g)
{
    if (g->conflict_count == CONFLICT_QUEUE)
        return -1;
    uint32_t i = pick_live(g, 0);
    if (i == NONE)
        return -1;
    ent e = g->pool[i];
    build_spend_of(g, i, 1);
    if (!emit_valid(g))
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
    d_begin(g, PM_TX_TRANSFER);
    d_input(g, &e);
    d_asset(g, &e, other_owner(g, e.owner, 1), e.amount);
    return emit_invalid(g, PM_REASON_MISSING_INPUT);
}

/* A transaction valid in every respect but one signature. */
static int market_bad_signature(gen *g)
{
    uint32_t w = (uint32_t)rng_below(&g->rng, 10);
    draft *d = &g->d;
    if (w < 6) { /* a transfer: one input signed by someone else */
        uint32_t s = pick_live(g, PM_OUTPUT_STAMP), c = pick_live(g, PM_OUTPUT_CREDIT);
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
    return emit_invalid(g, PM_REASON_BAD_SIGNATURE);
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
    count_verdict(g, type == PM_TX_TRANSFER ? PM_REASON_MISSING_INPUT : PM_REASON_BAD_SEQUENCE);
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
        uint32_t c = pick_live(g, PM_OUTPUT_CREDIT);
        if (c != NONE)
            build_payment(g, c, 1, 1);
        else
            build_issue(g, random_op(g), 0, 2, 1, 1000, 100000);
    }
    rec *r = emit(g, PM_REASON_MALFORMED);
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
        if (ent_live(g, r)) {
            build_spend_of(g, r.idx, 1);
            return emit_valid(g);
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
        uint32_t i = pick_live(g, 0);
        if (i == NONE)
            return -1;
        ent e = g->pool[i];
        d_begin(g, PM_TX_TRANSFER);
        d_input(g, &e);
        d_input(g, &e);
        d_asset(g, &e, other_owner(g, e.owner, 1), e.amount);
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
        d_stamp(g, zipf_owner(g), op->id, UNDECLARED_SERIES + (uint32_t)rng_below(&g->rng, 1000), 1);
        reason = PM_REASON_UNKNOWN_SERIES;
        break;
    case 6: { /* serial 0 or past the edition */
        if (op->n_series == 0)
            return -1;
        const series_m *s = &op->series[rng_below(&g->rng, op->n_series)];
        build_issue(g, k, 0, 0, 1, 1000, 100000);
        d->tx.n_out = 0;
        d_stamp(g, zipf_owner(g), op->id, s->id, rng_below(&g->rng, 2) ? 0 : s->max_supply + 1);
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
            d_stamp(g, zipf_owner(g), op->id, s->id, 1 + (uint32_t)rng_below(&g->rng, s->next_serial - 1));
        } else {
            d_stamp(g, zipf_owner(g), op->id, s->id, 1);
            d_stamp(g, zipf_owner(g), op->id, s->id, 1);
        }
        reason = PM_REASON_ALREADY_MINTED;
        break;
    }
    default: { /* 8: value out of nothing */
        uint32_t v = (uint32_t)rng_below(&g->rng, 3);
        uint32_t c = pick_live(g, PM_OUTPUT_CREDIT), s = pick_live(g, PM_OUTPUT_STAMP);
        if (v == 0 && c != NONE) { /* more credits out than in */
            ent e = g->pool[c];
            d_begin(g, PM_TX_TRANSFER);
            d_input(g, &e);
            d_credit(g, other_owner(g, e.owner, 1), e.op, e.amount + 1 + rng_below(&g->rng, 1000));
        } else if (v == 1 && c != NONE) { /* a sum that does not fit in u64 */
            ent e = g->pool[c];
            d_begin(g, PM_TX_TRANSFER);
            d_input(g, &e);
            d_credit(g, other_owner(g, e.owner, 1), e.op, UINT64_MAX);
            d_credit(g, e.owner, e.op, 1 + rng_below(&g->rng, e.amount));
        } else if (s != NONE) { /* a stamp appears (or one vanishes) */
            ent e = g->pool[s];
            d_begin(g, PM_TX_TRANSFER);
            d_input(g, &e);
            if (rng_below(&g->rng, 2)) {
                d_stamp(g, other_owner(g, e.owner, 1), e.op, e.series, e.serial);
                d_stamp(g, e.owner, e.op, e.series, e.serial + 1 + (uint32_t)rng_below(&g->rng, 1000));
            } else {
                d_credit(g, other_owner(g, e.owner, 1), e.op, 1);
            }
        } else {
            return -1;
        }
        reason = PM_REASON_NOT_CONSERVED;
        break;
    }
    }
    return emit_invalid(g, reason);
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
    uint32_t i = pick_recent(g);
    if (i == NONE)
        i = pick_live(g, 0);
    if (i == NONE) {
        build_issue(g, random_op(g), 0, 1024, 0, 1000000000u, 1);
        return emit_valid(g);
    }
    /* split (two outputs) half the time while the pool has room */
    int split = g->pool_live + 1 < g->pool_limit && rng_below(&g->rng, 2);
    if (g->pool[i].kind == PM_OUTPUT_STAMP)
        build_gift(g, i, 0);
    else
        build_payment(g, i, 0, split);
    return emit_valid(g);
}

static int plan_large_state(gen *g)
{
    if (g->record_no % 16 == 15) { /* now and then, a transfer */
        uint32_t i = pick_recent(g);
        if (i != NONE) {
            build_spend_of(g, i, 0);
            return emit_valid(g);
        }
    }
    /* 1024 outputs: half stamps of one series, half credits; four of them
     * join the (small) pool */
    uint32_t k = (uint32_t)(g->record_no % g->n_ops);
    build_issue(g, k, 512, 512, 0, 1, 1000000);
    g->d.adopt = 4;
    return emit_valid(g);
}

static int plan_one(gen *g)
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

static int write_all(int fd, const uint8_t *p, size_t n, char *err, size_t errlen)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (err && errlen)
                snprintf(err, errlen, "write: %s", w < 0 ? strerror(errno) : "no progress");
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

static pm_status fail(char *err, size_t errlen, pm_status st, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
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
    if (add_key(g, 'g', 0) != KEY_GOV)
        return 0;
    for (uint32_t i = 0; i < N_FORGERS; i++)
        if (add_key(g, 'f', i) == NONE)
            return 0;
    for (uint32_t i = 0; i < cfg->collectors; i++)
        if (add_key(g, 'c', i) == NONE)
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
                       pm_gen_report *report, char *err, size_t errlen)
{
    TOOL_CHECK(ctx != NULL);
    TOOL_CHECK(cfg != NULL);
    if (err && errlen)
        err[0] = 0;
    if (cfg->shape != PM_GEN_MARKET && cfg->shape != PM_GEN_TRANSFERS &&
        cfg->shape != PM_GEN_LARGE_STATE)
        return fail(err, errlen, PM_ERR_ARG, "unknown shape %d", (int)cfg->shape);
    if (cfg->operators < 1 || cfg->operators > 65535)
        return fail(err, errlen, PM_ERR_ARG, "operators must be 1..65535");
    if (cfg->series_per_operator < 1 || cfg->series_per_operator > 100000)
        return fail(err, errlen, PM_ERR_ARG, "series_per_operator must be 1..100000");
    if (cfg->collectors < 1 || cfg->collectors > 16000000)
        return fail(err, errlen, PM_ERR_ARG, "collectors must be 1..16000000");
    uint64_t rates = (uint64_t)cfg->double_spend_ppm + cfg->bad_signature_ppm + cfg->conflict_ppm +
                     cfg->replay_ppm + cfg->malformed_ppm + cfg->chain_ppm + cfg->other_ppm;
    if (rates > PPM)
        return fail(err, errlen, PM_ERR_ARG, "the rates add up to more than 1,000,000 ppm");

    gen *g = calloc(1, sizeof *g);
    if (!g)
        return fail(err, errlen, PM_ERR_NOMEM, "out of memory");
    pm_status st = PM_OK;
    if (!gen_init(g, ctx, cfg)) {
        st = fail(err, errlen, PM_ERR_NOMEM, "out of memory");
        goto out;
    }

    uint8_t header[PM_FILE_HEADER_SIZE];
    pm_file_header_encode(pm_context_static, header, PM_FILE_STREAM, &g->params);
    if (!write_all(fd, header, sizeof header, err, errlen)) {
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
            if (!plan_one(g))
                g->oom = 1;
        if (g->oom || !sign_chunk(g)) {
            st = fail(err, errlen, PM_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (uint32_t i = 0; i < g->n_recs; i++) {
            const rec *r = &g->recs[i];
            if (r->copy_of >= 0)
                memcpy(g->arena + r->off + 4, g->arena + g->recs[r->copy_of].off + 4, r->len);
        }
        if (!write_all(fd, g->arena, g->arena_used, err, errlen)) {
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
