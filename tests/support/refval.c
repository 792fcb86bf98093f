/*
 * refval.c — the reference validator (see refval.h).
 *
 * Everything here follows protocol.md section by section, in the order the
 * text gives, with the simplest data structures that do the job:
 *
 *  - a strict parser for §3 (parse_tx), written from the spec alone;
 *  - tagged hashes with OpenSSL's SHA-256 (tagged_hash), the tag hashed
 *    every time;
 *  - the §4 state in four chained hash maps (operators, series, minted,
 *    utxo) plus gov_seq;
 *  - an undo journal: every mutation pushes how to revert it, so a
 *    transaction or a block that fails (or runs out of memory) half way is
 *    rolled back exactly. Reverting never allocates: a deleted map node is
 *    kept in the journal until commit.
 *
 * Nothing is shared with the engine's wire, state or pipeline code.
 */
#include "refval.h"

#include <openssl/evp.h>
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Little-endian integers.                                                 */
/* ---------------------------------------------------------------------- */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---------------------------------------------------------------------- */
/* Tagged hashes (§1): SHA256(SHA256(tag) || SHA256(tag) || data).         */
/* ---------------------------------------------------------------------- */

typedef struct {
    EVP_MD_CTX *md;
} hash_stream;

static int hash_begin(hash_stream *s, const char *tag)
{
    uint8_t t[32];
    unsigned int len = 0;
    s->md = EVP_MD_CTX_new();
    if (!s->md)
        return 0;
    if (EVP_Digest(tag, strlen(tag), t, &len, EVP_sha256(), NULL) &&
        EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) && EVP_DigestUpdate(s->md, t, 32) &&
        EVP_DigestUpdate(s->md, t, 32))
        return 1;
    EVP_MD_CTX_free(s->md);
    s->md = NULL;
    return 0;
}

static int hash_update(hash_stream *s, const uint8_t *data, size_t len)
{
    return len == 0 || EVP_DigestUpdate(s->md, data, len);
}

/* Finishes (ok = 1) or abandons (ok = 0) the stream; returns the result. */
static int hash_end(hash_stream *s, uint8_t out[32], int ok)
{
    unsigned int len = 0;
    ok = ok && EVP_DigestFinal_ex(s->md, out, &len) && len == 32;
    EVP_MD_CTX_free(s->md);
    s->md = NULL;
    return ok;
}

static int tagged_hash(uint8_t out[32], const char *tag, const uint8_t *a, size_t alen,
                       const uint8_t *b, size_t blen)
{
    hash_stream s;
    if (!hash_begin(&s, tag))
        return 0;
    return hash_end(&s, out, hash_update(&s, a, alen) && hash_update(&s, b, blen));
}

/* ---------------------------------------------------------------------- */
/* Parsing (§3, §5 step 1).                                                */
/* ---------------------------------------------------------------------- */

enum { T_REGISTER = 1, T_SERIES = 2, T_ISSUE = 3, T_TRANSFER = 4 };
enum { K_STAMP = 1, K_CREDIT = 2 };

typedef struct {
    const uint8_t *bytes;
    size_t size;
    uint8_t type;
    size_t unsigned_size;
    uint64_t seq;            /* gov_seq or op_seq */
    uint32_t op;
    const uint8_t *key;      /* REGISTER */
    const uint8_t *name;     /* REGISTER */
    uint8_t name_len;
    uint32_t series;         /* SERIES */
    uint32_t max_supply;     /* SERIES */
    size_t n_in;
    const uint8_t *inputs;   /* n_in x (txid 32, index u16) */
    size_t n_out;
    const uint8_t *outputs;  /* n_out x 45 */
    size_t n_sigs;
    const uint8_t *sigs;
} rv_tx;

/* Valid UTF-8 per RFC 3629 with no byte below 0x20 (§1). */
static int text_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x20)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* A cursor that fails (and stays failed) when asked for missing bytes. */
typedef struct {
    const uint8_t *p;
    size_t left;
    int ok;
} cursor;

static const uint8_t *take(cursor *c, size_t n)
{
    if (!c->ok || c->left < n) {
        c->ok = 0;
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

static uint8_t take8(cursor *c)
{
    const uint8_t *p = take(c, 1);
    return p ? p[0] : 0;
}

static uint16_t take16(cursor *c)
{
    const uint8_t *p = take(c, 2);
    return p ? rd16(p) : 0;
}

static uint32_t take32(cursor *c)
{
    const uint8_t *p = take(c, 4);
    return p ? rd32(p) : 0;
}

static uint64_t take64(cursor *c)
{
    const uint8_t *p = take(c, 8);
    return p ? rd64(p) : 0;
}

static int outputs_ok(const uint8_t *outs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *o = outs + i * PM_OUTPUT_SIZE;
        if (o[0] == K_STAMP)
            continue;
        if (o[0] != K_CREDIT || rd64(o + 37) == 0)
            return 0;
    }
    return 1;
}

/* Returns 1 when `bytes` is exactly one well-formed transaction. */
static int parse_tx(rv_tx *t, const uint8_t *bytes, size_t size)
{
    memset(t, 0, sizeof *t);
    t->bytes = bytes;
    t->size = size;
    if (size < PM_TX_MIN_SIZE || size > PM_TX_MAX_SIZE)
        return 0;
    cursor c = {bytes, size, 1};
    if (take8(&c) != 1)
        return 0;
    t->type = take8(&c);
    switch (t->type) {
    case T_REGISTER:
        t->seq = take64(&c);
        t->op = take32(&c);
        t->key = take(&c, 32);
        t->name_len = take8(&c);
        t->name = take(&c, t->name_len);
        if (!c.ok || t->op == 0 || t->name_len < 1 || t->name_len > 64 ||
            !text_ok(t->name, t->name_len))
            return 0;
        t->n_sigs = 1;
        break;
    case T_SERIES: {
        t->seq = take64(&c);
        t->op = take32(&c);
        t->series = take32(&c);
        t->max_supply = take32(&c);
        (void)take64(&c); /* face value */
        (void)take(&c, 32); /* metadata */
        uint8_t title_len = take8(&c);
        const uint8_t *title = take(&c, title_len);
        if (!c.ok || t->max_supply == 0 || title_len < 1 || title_len > 128 ||
            !text_ok(title, title_len))
            return 0;
        t->n_sigs = 1;
        break;
    }
    case T_ISSUE:
        t->seq = take64(&c);
        t->op = take32(&c);
        t->n_out = take16(&c);
        if (!c.ok || t->n_out < 1 || t->n_out > PM_TX_MAX_OUTPUTS)
            return 0;
        t->outputs = take(&c, t->n_out * PM_OUTPUT_SIZE);
        if (!c.ok || !outputs_ok(t->outputs, t->n_out))
            return 0;
        t->n_sigs = 1;
        break;
    case T_TRANSFER:
        t->n_in = take16(&c);
        if (!c.ok || t->n_in < 1 || t->n_in > PM_TX_MAX_INPUTS)
            return 0;
        t->inputs = take(&c, t->n_in * PM_INPUT_SIZE);
        t->n_out = take16(&c);
        if (!c.ok || t->n_out < 1 || t->n_out > PM_TX_MAX_OUTPUTS)
            return 0;
        t->outputs = take(&c, t->n_out * PM_OUTPUT_SIZE);
        if (!c.ok || !outputs_ok(t->outputs, t->n_out))
            return 0;
        t->n_sigs = t->n_in;
        break;
    default:
        return 0;
    }
    t->unsigned_size = size - c.left;
    /* Exactly the signatures remain: no more, no fewer. */
    if (c.left != t->n_sigs * PM_SIG_SIZE)
        return 0;
    t->sigs = c.p;
    return 1;
}

int refval_txid(uint8_t out[PM_HASH_SIZE], const uint8_t *tx, size_t size)
{
    rv_tx t;
    return parse_tx(&t, tx, size) &&
           tagged_hash(out, "postmark/txid", t.bytes, t.unsigned_size, NULL, 0);
}

/* ---------------------------------------------------------------------- */
/* Hash maps with an undo journal.                                         */
/* ---------------------------------------------------------------------- */

typedef struct rv_node {
    struct rv_node *next;
    uint8_t data[]; /* key, then value */
} rv_node;

typedef struct {
    rv_node **buckets;
    size_t n_buckets;
    size_t count;
    size_t klen, vlen;
} rv_map;

typedef enum { UNDO_INSERT, UNDO_OVERWRITE, UNDO_DELETE, UNDO_GOV_SEQ } undo_kind;

typedef struct undo {
    struct undo *prev;
    undo_kind kind;
    rv_map *map;
    rv_node *node;   /* INSERT: the new node; OVERWRITE: the node; DELETE: the
                        unlinked node, owned by the journal */
    uint64_t old_gov_seq;
    uint8_t old[];   /* OVERWRITE: the previous value */
} undo;

struct refval {
    pm_chain_params params;
    uint8_t chain_id[32];
    secp256k1_context *secp;
    uint64_t gov_seq;
    rv_map operators; /* id u32 -> key[32], name_len u8, name[64], op_seq u64 */
    rv_map series;    /* operator u32, series u32 -> max_supply u32 */
    rv_map minted;    /* operator u32, series u32, serial u32 -> nothing */
    rv_map utxo;      /* txid[32], index u16 big-endian -> output[45] */
    uint8_t tip[32];
    int64_t height;
    undo *journal;
    size_t journal_len;
};

#define OP_KEY 0
#define OP_NAME_LEN 32
#define OP_NAME 33
#define OP_SEQ 97
#define OP_SIZE 105

static uint64_t key_hash(const uint8_t *k, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 1099511628211ull;
    return h;
}

static int map_init(rv_map *m, size_t klen, size_t vlen)
{
    m->n_buckets = 1024;
    m->buckets = calloc(m->n_buckets, sizeof *m->buckets);
    m->count = 0;
    m->klen = klen;
    m->vlen = vlen;
    return m->buckets != NULL;
}

static void map_free(rv_map *m)
{
    if (!m->buckets)
        return;
    for (size_t i = 0; i < m->n_buckets; i++) {
        rv_node *n = m->buckets[i];
        while (n) {
            rv_node *next = n->next;
            free(n);
            n = next;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
}

/* The link that points at the node with `key`, or the NULL link ending its
 * bucket. */
static rv_node **map_link(const rv_map *m, const uint8_t *key)
{
    rv_node **link = &m->buckets[key_hash(key, m->klen) % m->n_buckets];
    while (*link && memcmp((*link)->data, key, m->klen) != 0)
        link = &(*link)->next;
    return link;
}

static uint8_t *map_get(const rv_map *m, const uint8_t *key)
{
    rv_node *n = *map_link(m, key);
    return n ? n->data + m->klen : NULL;
}

/* Doubles the bucket array when the map is full; failing to is harmless. */
static void map_maybe_grow(rv_map *m)
{
    if (m->count <= m->n_buckets)
        return;
    size_t nb = m->n_buckets * 2;
    rv_node **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < m->n_buckets; i++) {
        rv_node *n = m->buckets[i];
        while (n) {
            rv_node *next = n->next;
            size_t j = key_hash(n->data, m->klen) % nb;
            n->next = b[j];
            b[j] = n;
            n = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = nb;
}

static void journal_push(refval *rv, undo *u)
{
    u->prev = rv->journal;
    rv->journal = u;
    rv->journal_len++;
}

/* Insert or overwrite. Returns 0 when out of memory (nothing changed). */
static int map_put(refval *rv, rv_map *m, const uint8_t *key, const uint8_t *val)
{
    rv_node **link = map_link(m, key);
    if (*link) {
        undo *u = malloc(sizeof *u + m->vlen);
        if (!u)
            return 0;
        u->kind = UNDO_OVERWRITE;
        u->map = m;
        u->node = *link;
        memcpy(u->old, (*link)->data + m->klen, m->vlen);
        memcpy((*link)->data + m->klen, val, m->vlen);
        journal_push(rv, u);
        return 1;
    }
    rv_node *n = malloc(sizeof *n + m->klen + m->vlen);
    undo *u = malloc(sizeof *u);
    if (!n || !u) {
        free(n);
        free(u);
        return 0;
    }
    n->next = NULL;
    memcpy(n->data, key, m->klen);
    if (m->vlen)
        memcpy(n->data + m->klen, val, m->vlen);
    *link = n;
    m->count++;
    u->kind = UNDO_INSERT;
    u->map = m;
    u->node = n;
    journal_push(rv, u);
    map_maybe_grow(m);
    return 1;
}

/* Delete `key` (present). Returns 0 when out of memory (nothing changed). */
static int map_del(refval *rv, rv_map *m, const uint8_t *key)
{
    rv_node **link = map_link(m, key);
    if (!*link)
        return 1;
    undo *u = malloc(sizeof *u);
    if (!u)
        return 0;
    rv_node *n = *link;
    *link = n->next;
    m->count--;
    u->kind = UNDO_DELETE;
    u->map = m;
    u->node = n;
    journal_push(rv, u);
    return 1;
}

static int set_gov_seq(refval *rv, uint64_t v)
{
    undo *u = malloc(sizeof *u);
    if (!u)
        return 0;
    u->kind = UNDO_GOV_SEQ;
    u->map = NULL;
    u->node = NULL;
    u->old_gov_seq = rv->gov_seq;
    rv->gov_seq = v;
    journal_push(rv, u);
    return 1;
}

/* Revert the journal down to `mark` entries. Never allocates. */
static void rollback(refval *rv, size_t mark)
{
    while (rv->journal_len > mark) {
        undo *u = rv->journal;
        rv->journal = u->prev;
        rv->journal_len--;
        rv_map *m = u->map;
        switch (u->kind) {
        case UNDO_INSERT: {
            rv_node **link = map_link(m, u->node->data);
            *link = u->node->next;
            m->count--;
            free(u->node);
            break;
        }
        case UNDO_OVERWRITE:
            memcpy(u->node->data + m->klen, u->old, m->vlen);
            break;
        case UNDO_DELETE: {
            size_t j = key_hash(u->node->data, m->klen) % m->n_buckets;
            u->node->next = m->buckets[j];
            m->buckets[j] = u->node;
            m->count++;
            break;
        }
        case UNDO_GOV_SEQ:
            rv->gov_seq = u->old_gov_seq;
            break;
        }
        free(u);
    }
}

/* Make every journaled change final. */
static void commit(refval *rv)
{
    while (rv->journal) {
        undo *u = rv->journal;
        rv->journal = u->prev;
        if (u->kind == UNDO_DELETE)
            free(u->node);
        free(u);
    }
    rv->journal_len = 0;
}

/* ---------------------------------------------------------------------- */
/* State.                                                                  */
/* ---------------------------------------------------------------------- */

refval *refval_create(const pm_chain_params *params)
{
    refval *rv = calloc(1, sizeof *rv);
    if (!rv)
        return NULL;
    rv->params = *params;
    rv->height = -1;
    rv->secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    int ok = rv->secp && map_init(&rv->operators, 4, OP_SIZE) && map_init(&rv->series, 8, 4) &&
             map_init(&rv->minted, 12, 0) && map_init(&rv->utxo, 34, PM_OUTPUT_SIZE) &&
             tagged_hash(rv->chain_id, "postmark/chain", params->network, PM_NETWORK_SIZE,
                         params->governance_key, PM_KEY_SIZE);
    if (!ok) {
        refval_destroy(rv);
        return NULL;
    }
    memcpy(rv->tip, rv->chain_id, 32);
    return rv;
}

void refval_destroy(refval *rv)
{
    if (!rv)
        return;
    commit(rv);
    map_free(&rv->operators);
    map_free(&rv->series);
    map_free(&rv->minted);
    map_free(&rv->utxo);
    if (rv->secp)
        secp256k1_context_destroy(rv->secp);
    free(rv);
}

void refval_chain_id(const refval *rv, uint8_t out[PM_HASH_SIZE])
{
    memcpy(out, rv->chain_id, 32);
}

void refval_tip(const refval *rv, uint8_t hash[PM_HASH_SIZE], int64_t *height)
{
    memcpy(hash, rv->tip, 32);
    *height = rv->height;
}

uint64_t refval_utxo_count(const refval *rv)
{
    return rv->utxo.count;
}

static void outpoint_key(uint8_t key[34], const uint8_t txid[32], uint16_t index)
{
    memcpy(key, txid, 32);
    key[32] = (uint8_t)(index >> 8); /* big-endian, so that keys sort as §8 says */
    key[33] = (uint8_t)index;
}

int refval_get_utxo(const refval *rv, uint8_t out[PM_OUTPUT_SIZE], const uint8_t txid[PM_HASH_SIZE],
                    uint16_t index)
{
    uint8_t key[34];
    outpoint_key(key, txid, index);
    const uint8_t *v = map_get(&rv->utxo, key);
    if (!v)
        return 0;
    memcpy(out, v, PM_OUTPUT_SIZE);
    return 1;
}

void refval_file_header(const refval *rv, uint8_t out[PM_FILE_HEADER_SIZE], pm_file_kind kind)
{
    memcpy(out, kind == PM_FILE_CHAIN ? "POSTMKBK" : "POSTMKTX", 8);
    wr32(out + 8, 1);
    memcpy(out + 12, rv->params.network, PM_NETWORK_SIZE);
    memcpy(out + 28, rv->params.governance_key, PM_KEY_SIZE);
}

static int cmp_key34(const void *a, const void *b)
{
    return memcmp(*(const uint8_t *const *)a, *(const uint8_t *const *)b, 34);
}

int refval_utxo_digest(const refval *rv, uint8_t out[PM_HASH_SIZE])
{
    const rv_map *m = &rv->utxo;
    const uint8_t **entries = malloc((m->count ? m->count : 1) * sizeof *entries);
    if (!entries)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < m->n_buckets; i++)
        for (const rv_node *node = m->buckets[i]; node; node = node->next)
            entries[n++] = node->data;
    qsort(entries, n, sizeof *entries, cmp_key34);
    hash_stream s;
    int ok = hash_begin(&s, "postmark/utxo");
    if (ok) {
        for (size_t i = 0; i < n && ok; i++)
            ok = hash_update(&s, entries[i], 34 + PM_OUTPUT_SIZE);
        ok = hash_end(&s, out, ok);
    }
    free(entries);
    return ok;
}

/* ---------------------------------------------------------------------- */
/* Validity (§5).                                                          */
/* ---------------------------------------------------------------------- */

static int sig_ok(const refval *rv, const uint8_t sig[64], const uint8_t sighash[32],
                  const uint8_t key[32])
{
    secp256k1_xonly_pubkey pk;
    if (!secp256k1_xonly_pubkey_parse(rv->secp, &pk, key))
        return 0;
    return secp256k1_schnorrsig_verify(rv->secp, sig, sighash, 32, &pk);
}

typedef struct {
    uint32_t issuer;
    uint64_t spent, created;
    int spent_overflow, created_overflow;
} credit_sum;

static credit_sum *find_sum(credit_sum *sums, size_t *n, uint32_t issuer)
{
    for (size_t i = 0; i < *n; i++)
        if (sums[i].issuer == issuer)
            return &sums[i];
    memset(&sums[*n], 0, sizeof sums[*n]);
    sums[*n].issuer = issuer;
    return &sums[(*n)++];
}

static int add_overflows(uint64_t *sum, uint64_t v)
{
    if (*sum > UINT64_MAX - v)
        return 1;
    *sum += v;
    return 0;
}

/* §5 TRANSFER conservation: stamps exactly carried over, credits per issuer
 * not created. `spent` are the raw spent outputs. Returns 1 when conserved,
 * -1 when out of memory. */
static int conserved(const uint8_t *const *spent, size_t n_in, const uint8_t *outs, size_t n_out)
{
    /* Stamps: each spent stamp appears exactly once among the new outputs,
     * and every new stamp is one of the spent stamps. */
    for (size_t i = 0; i < n_in; i++) {
        if (spent[i][0] != K_STAMP)
            continue;
        size_t seen = 0;
        for (size_t j = 0; j < n_out; j++) {
            const uint8_t *o = outs + j * PM_OUTPUT_SIZE;
            if (o[0] == K_STAMP && memcmp(o + 33, spent[i] + 33, 12) == 0)
                seen++;
        }
        if (seen != 1)
            return 0;
    }
    for (size_t j = 0; j < n_out; j++) {
        const uint8_t *o = outs + j * PM_OUTPUT_SIZE;
        if (o[0] != K_STAMP)
            continue;
        int found = 0;
        for (size_t i = 0; i < n_in && !found; i++)
            found = spent[i][0] == K_STAMP && memcmp(o + 33, spent[i] + 33, 12) == 0;
        if (!found)
            return 0;
    }
    /* Credits, per issuer. */
    credit_sum *sums = malloc((n_in + n_out) * sizeof *sums);
    if (!sums)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < n_in; i++) {
        if (spent[i][0] != K_CREDIT)
            continue;
        credit_sum *s = find_sum(sums, &n, rd32(spent[i] + 33));
        s->spent_overflow |= add_overflows(&s->spent, rd64(spent[i] + 37));
    }
    for (size_t j = 0; j < n_out; j++) {
        const uint8_t *o = outs + j * PM_OUTPUT_SIZE;
        if (o[0] != K_CREDIT)
            continue;
        credit_sum *s = find_sum(sums, &n, rd32(o + 33));
        s->created_overflow |= add_overflows(&s->created, rd64(o + 37));
    }
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        if (sums[i].spent_overflow || sums[i].created_overflow || sums[i].created > sums[i].spent)
            ok = 0;
    free(sums);
    return ok;
}

/* Judge a parsed transaction against the state (§5 from step 2 on) without
 * changing anything. Returns the reason, or -1 when out of memory. */
static int judge(const refval *rv, const rv_tx *t, const uint8_t txid[32], int check_sigs)
{
    uint8_t sighash[32];
    if (!tagged_hash(sighash, "postmark/sighash", rv->chain_id, 32, txid, 32))
        return -1;

    if (t->type == T_TRANSFER) { /* step 2: DUPLICATE_INPUT */
        for (size_t i = 0; i < t->n_in; i++)
            for (size_t j = 0; j < i; j++)
                if (memcmp(t->inputs + i * PM_INPUT_SIZE, t->inputs + j * PM_INPUT_SIZE,
                           PM_INPUT_SIZE) == 0)
                    return PM_REASON_DUPLICATE_INPUT;
    }

    uint8_t opkey[4];
    wr32(opkey, t->op);
    const uint8_t *op = map_get(&rv->operators, opkey);

    switch (t->type) {
    case T_REGISTER:
        if (t->seq != rv->gov_seq + 1)
            return PM_REASON_BAD_SEQUENCE;
        if (check_sigs && !sig_ok(rv, t->sigs, sighash, rv->params.governance_key))
            return PM_REASON_BAD_SIGNATURE;
        return PM_REASON_NONE;

    case T_SERIES: {
        if (!op)
            return PM_REASON_UNKNOWN_OPERATOR;
        if (t->seq != rd64(op + OP_SEQ) + 1)
            return PM_REASON_BAD_SEQUENCE;
        uint8_t skey[8];
        wr32(skey, t->op);
        wr32(skey + 4, t->series);
        if (map_get(&rv->series, skey))
            return PM_REASON_SERIES_EXISTS;
        if (check_sigs && !sig_ok(rv, t->sigs, sighash, op + OP_KEY))
            return PM_REASON_BAD_SIGNATURE;
        return PM_REASON_NONE;
    }

    case T_ISSUE:
        if (!op)
            return PM_REASON_UNKNOWN_OPERATOR;
        if (t->seq != rd64(op + OP_SEQ) + 1)
            return PM_REASON_BAD_SEQUENCE;
        for (size_t i = 0; i < t->n_out; i++) {
            const uint8_t *o = t->outputs + i * PM_OUTPUT_SIZE;
            if (rd32(o + 33) != t->op) /* the STAMP's operator or the CREDIT's issuer */
                return PM_REASON_WRONG_ISSUER;
            if (o[0] != K_STAMP)
                continue;
            const uint8_t *max = map_get(&rv->series, o + 33); /* operator, series */
            if (!max)
                return PM_REASON_UNKNOWN_SERIES;
            uint32_t serial = rd32(o + 41);
            if (serial < 1 || serial > rd32(max))
                return PM_REASON_SERIAL_OUT_OF_RANGE;
            if (map_get(&rv->minted, o + 33))
                return PM_REASON_ALREADY_MINTED;
            for (size_t j = 0; j < i; j++) {
                const uint8_t *e = t->outputs + j * PM_OUTPUT_SIZE;
                if (e[0] == K_STAMP && memcmp(e + 33, o + 33, 12) == 0)
                    return PM_REASON_ALREADY_MINTED;
            }
        }
        if (check_sigs && !sig_ok(rv, t->sigs, sighash, op + OP_KEY))
            return PM_REASON_BAD_SIGNATURE;
        return PM_REASON_NONE;

    case T_TRANSFER: {
        const uint8_t **spent = malloc(t->n_in * sizeof *spent);
        if (!spent)
            return -1;
        int reason = PM_REASON_NONE;
        for (size_t i = 0; i < t->n_in && reason == PM_REASON_NONE; i++) {
            const uint8_t *in = t->inputs + i * PM_INPUT_SIZE;
            uint8_t key[34];
            outpoint_key(key, in, rd16(in + 32));
            spent[i] = map_get(&rv->utxo, key);
            if (!spent[i])
                reason = PM_REASON_MISSING_INPUT;
        }
        if (reason == PM_REASON_NONE) {
            int c = conserved(spent, t->n_in, t->outputs, t->n_out);
            if (c < 0)
                reason = -1;
            else if (c == 0)
                reason = PM_REASON_NOT_CONSERVED;
        }
        for (size_t i = 0; i < t->n_in && reason == PM_REASON_NONE && check_sigs; i++)
            if (!sig_ok(rv, t->sigs + i * PM_SIG_SIZE, sighash, spent[i] + 1))
                reason = PM_REASON_BAD_SIGNATURE;
        free(spent);
        return reason;
    }
    }
    return PM_REASON_MALFORMED; /* not reached: parse_tx admits types 1..4 only */
}

/* Apply a judged-valid transaction. Returns 0 when out of memory (the
 * caller rolls back). */
static int apply(refval *rv, const rv_tx *t, const uint8_t txid[32])
{
    uint8_t opkey[4];
    wr32(opkey, t->op);
    const uint8_t *op = map_get(&rv->operators, opkey);
    uint8_t rec[OP_SIZE];

    switch (t->type) {
    case T_REGISTER:
        if (op)
            memcpy(rec, op, OP_SIZE); /* a known operator keeps its op_seq */
        else
            memset(rec, 0, OP_SIZE);
        memcpy(rec + OP_KEY, t->key, 32);
        memset(rec + OP_NAME, 0, 64);
        rec[OP_NAME_LEN] = t->name_len;
        memcpy(rec + OP_NAME, t->name, t->name_len);
        return map_put(rv, &rv->operators, opkey, rec) && set_gov_seq(rv, rv->gov_seq + 1);

    case T_SERIES: {
        uint8_t skey[8], max[4];
        wr32(skey, t->op);
        wr32(skey + 4, t->series);
        wr32(max, t->max_supply);
        memcpy(rec, op, OP_SIZE);
        wr64(rec + OP_SEQ, t->seq);
        return map_put(rv, &rv->series, skey, max) && map_put(rv, &rv->operators, opkey, rec);
    }

    case T_ISSUE:
        memcpy(rec, op, OP_SIZE);
        wr64(rec + OP_SEQ, t->seq);
        if (!map_put(rv, &rv->operators, opkey, rec))
            return 0;
        for (size_t i = 0; i < t->n_out; i++) {
            const uint8_t *o = t->outputs + i * PM_OUTPUT_SIZE;
            uint8_t key[34];
            outpoint_key(key, txid, (uint16_t)i);
            if (o[0] == K_STAMP && !map_put(rv, &rv->minted, o + 33, NULL))
                return 0;
            if (!map_put(rv, &rv->utxo, key, o))
                return 0;
        }
        return 1;

    case T_TRANSFER:
        for (size_t i = 0; i < t->n_in; i++) {
            const uint8_t *in = t->inputs + i * PM_INPUT_SIZE;
            uint8_t key[34];
            outpoint_key(key, in, rd16(in + 32));
            if (!map_del(rv, &rv->utxo, key))
                return 0;
        }
        for (size_t i = 0; i < t->n_out; i++) {
            uint8_t key[34];
            outpoint_key(key, txid, (uint16_t)i);
            if (!map_put(rv, &rv->utxo, key, t->outputs + i * PM_OUTPUT_SIZE))
                return 0;
        }
        return 1;
    }
    return 0;
}

/* Check and apply one transaction, journaled (not committed).
 * Returns 1 with *reason, 0 when out of memory (rolled back). */
static int process_tx(refval *rv, pm_reason *reason, uint8_t txid[32], int *has_txid,
                      const uint8_t *bytes, size_t size, int check_sigs)
{
    rv_tx t;
    *has_txid = 0;
    if (!parse_tx(&t, bytes, size)) {
        *reason = PM_REASON_MALFORMED;
        return 1;
    }
    if (!tagged_hash(txid, "postmark/txid", t.bytes, t.unsigned_size, NULL, 0))
        return 0;
    *has_txid = 1;
    int r = judge(rv, &t, txid, check_sigs);
    if (r < 0)
        return 0;
    *reason = (pm_reason)r;
    if (r != PM_REASON_NONE)
        return 1;
    size_t mark = rv->journal_len;
    if (!apply(rv, &t, txid)) {
        rollback(rv, mark);
        return 0;
    }
    return 1;
}

int refval_apply_tx(refval *rv, const uint8_t *tx, size_t size, pm_reason *reason)
{
    uint8_t txid[32];
    int has_txid;
    if (!process_tx(rv, reason, txid, &has_txid, tx, size, 1))
        return 0;
    commit(rv);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Blocks (§6).                                                            */
/* ---------------------------------------------------------------------- */

/* RFC 6962 shape: k is the largest power of two below n. */
static int merkle(uint8_t out[32], const uint8_t (*leaves)[32], size_t n)
{
    if (n == 1) {
        memcpy(out, leaves[0], 32);
        return 1;
    }
    size_t k = 1;
    while (k * 2 < n)
        k *= 2;
    uint8_t left[32], right[32];
    return merkle(left, leaves, k) && merkle(right, leaves + k, n - k) &&
           tagged_hash(out, "postmark/node", left, 32, right, 32);
}

int refval_merkle_root(uint8_t out[PM_HASH_SIZE], const uint8_t (*leaves)[PM_HASH_SIZE], size_t n)
{
    return n >= 1 && merkle(out, leaves, n);
}

/* The leaf of a parsed transaction. */
static int leaf_of(uint8_t out[32], const rv_tx *t)
{
    uint8_t txid[32];
    return tagged_hash(txid, "postmark/txid", t->bytes, t->unsigned_size, NULL, 0) &&
           tagged_hash(out, "postmark/leaf", txid, 32, t->sigs, t->n_sigs * PM_SIG_SIZE);
}

static void block_reason(refval_verdict *v, pm_reason reason)
{
    v->valid = 0;
    v->reason = reason;
    v->tx = -1;
    v->has_txid = 0;
}

int refval_connect_block(refval *rv, refval_verdict *v, const uint8_t *block, size_t size,
                         int check_sigs)
{
    memset(v, 0, sizeof *v);
    v->valid = 1;
    v->tx = -1;

    /* 1. framing */
    if (size < PM_BLOCK_HEADER_SIZE || size > PM_BLOCK_MAX_SIZE || rd32(block) != 1) {
        block_reason(v, PM_REASON_BLOCK_MALFORMED);
        return 1;
    }
    uint64_t height = rd64(block + 4);
    const uint8_t *prev = block + 12, *root = block + 44;
    uint32_t count = rd32(block + 76);
    if (count < 1 || count > PM_BLOCK_MAX_TXS) {
        block_reason(v, PM_REASON_BLOCK_MALFORMED);
        return 1;
    }
    const uint8_t **txs = malloc(count * sizeof *txs);
    size_t *sizes = malloc(count * sizeof *sizes);
    uint8_t (*leaves)[32] = malloc(count * sizeof *leaves);
    uint8_t computed[32];
    size_t mark = rv->journal_len;
    int ok = txs && sizes && leaves;
    size_t pos = PM_BLOCK_HEADER_SIZE;
    for (uint32_t i = 0; ok && i < count; i++) {
        if (size - pos < 4 || size - pos - 4 < rd32(block + pos)) {
            block_reason(v, PM_REASON_BLOCK_MALFORMED);
            goto done;
        }
        sizes[i] = rd32(block + pos);
        txs[i] = block + pos + 4;
        pos += 4 + sizes[i];
    }
    if (ok && pos != size) {
        block_reason(v, PM_REASON_BLOCK_MALFORMED);
        goto done;
    }

    /* 2. link */
    if (ok && (height != (uint64_t)(rv->height + 1) || memcmp(prev, rv->tip, 32) != 0)) {
        block_reason(v, PM_REASON_BAD_LINK);
        goto done;
    }

    /* 3. parse, and compute the leaves on the way */
    for (uint32_t i = 0; ok && i < count; i++) {
        rv_tx t;
        if (!parse_tx(&t, txs[i], sizes[i])) {
            block_reason(v, PM_REASON_MALFORMED);
            v->tx = i;
            goto done;
        }
        ok = leaf_of(leaves[i], &t);
    }

    /* 4. merkle root */
    ok = ok && merkle(computed, (const uint8_t(*)[32])leaves, count);
    if (ok && memcmp(computed, root, 32) != 0) {
        block_reason(v, PM_REASON_BAD_MERKLE);
        goto done;
    }

    /* 5. every transaction, in order, all or nothing */
    for (uint32_t i = 0; ok && i < count; i++) {
        pm_reason reason;
        ok = process_tx(rv, &reason, v->txid, &v->has_txid, txs[i], sizes[i], check_sigs);
        if (ok && reason != PM_REASON_NONE) {
            rollback(rv, mark);
            v->valid = 0;
            v->reason = reason;
            v->tx = i;
            goto done;
        }
    }
    if (!ok) {
        rollback(rv, mark);
        goto done;
    }
    if (!tagged_hash(rv->tip, "postmark/block", block, PM_BLOCK_HEADER_SIZE, NULL, 0)) {
        rollback(rv, mark);
        ok = 0;
        goto done;
    }
    commit(rv);
    rv->height++;
    v->has_txid = 0;
    memset(v->txid, 0, sizeof v->txid);

done:
    free(txs);
    free(sizes);
    free(leaves);
    return ok;
}

/* ---------------------------------------------------------------------- */
/* Packing (§7).                                                           */
/* ---------------------------------------------------------------------- */

typedef struct {
    uint8_t *data;
    size_t size, cap;
} buffer;

static int buf_append(buffer *b, const uint8_t *data, size_t n)
{
    if (b->cap - b->size < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->size < n)
            cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->size, data, n);
    b->size += n;
    return 1;
}

typedef struct {
    const uint8_t **txs;
    size_t *sizes;
    size_t count, cap;
    size_t bytes; /* 80 + sum(4 + length) */
} open_block;

/* Emit the open block (if it holds anything) and move the tip. */
static int close_block(refval *rv, open_block *ob, buffer *out, uint64_t *blocks_added)
{
    if (ob->count == 0)
        return 1;
    uint8_t (*leaves)[32] = malloc(ob->count * sizeof *leaves);
    if (!leaves)
        return 0;
    int ok = 1;
    for (size_t i = 0; i < ob->count && ok; i++) {
        rv_tx t;
        ok = parse_tx(&t, ob->txs[i], ob->sizes[i]) && leaf_of(leaves[i], &t);
    }
    uint8_t header[PM_BLOCK_HEADER_SIZE], len[4];
    wr32(header, 1);
    wr64(header + 4, (uint64_t)(rv->height + 1));
    memcpy(header + 12, rv->tip, 32);
    ok = ok && merkle(header + 44, (const uint8_t(*)[32])leaves, ob->count);
    wr32(header + 76, (uint32_t)ob->count);
    wr32(len, (uint32_t)ob->bytes);
    ok = ok && buf_append(out, len, 4) && buf_append(out, header, sizeof header);
    for (size_t i = 0; i < ob->count && ok; i++) {
        wr32(len, (uint32_t)ob->sizes[i]);
        ok = buf_append(out, len, 4) && buf_append(out, ob->txs[i], ob->sizes[i]);
    }
    ok = ok && tagged_hash(rv->tip, "postmark/block", header, sizeof header, NULL, 0);
    free(leaves);
    if (!ok)
        return 0;
    rv->height++;
    (*blocks_added)++;
    ob->count = 0;
    ob->bytes = PM_BLOCK_HEADER_SIZE;
    return 1;
}

static int add_reject(refval_pack_result *out, size_t *cap, uint64_t index, pm_reason reason,
                      int has_txid, const uint8_t txid[32])
{
    if (out->n_rejects == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        refval_reject *p = realloc(out->rejects, nc * sizeof *p);
        if (!p)
            return 0;
        out->rejects = p;
        *cap = nc;
    }
    refval_reject *r = &out->rejects[out->n_rejects++];
    memset(r, 0, sizeof *r);
    r->index = index;
    r->reason = reason;
    r->has_txid = has_txid;
    if (has_txid)
        memcpy(r->txid, txid, 32);
    return 1;
}

pm_status refval_pack(refval *rv, refval_pack_result *out, const uint8_t *stream, size_t size,
                      uint32_t block_txs, uint32_t block_bytes)
{
    memset(out, 0, sizeof *out);
    if (size < PM_FILE_HEADER_SIZE || memcmp(stream, "POSTMKTX", 8) != 0 || rd32(stream + 8) != 1)
        return PM_ERR_INVALID;
    if (memcmp(stream + 12, rv->params.network, PM_NETWORK_SIZE) != 0 ||
        memcmp(stream + 28, rv->params.governance_key, PM_KEY_SIZE) != 0)
        return PM_ERR_MISMATCH;

    open_block ob = {NULL, NULL, 0, 0, PM_BLOCK_HEADER_SIZE};
    buffer blocks = {NULL, 0, 0};
    size_t reject_cap = 0;
    pm_status st = PM_OK;
    size_t pos = PM_FILE_HEADER_SIZE;
    uint64_t index = 0;

    while (size - pos >= 4 && size - pos - 4 >= rd32(stream + pos)) {
        size_t len = rd32(stream + pos);
        const uint8_t *rec = stream + pos + 4;
        pos += 4 + len;
        pm_reason reason;
        uint8_t txid[32];
        int has_txid;
        if (!process_tx(rv, &reason, txid, &has_txid, rec, len, 1)) {
            st = PM_ERR_NOMEM;
            break;
        }
        commit(rv);
        if (reason != PM_REASON_NONE) {
            if (!add_reject(out, &reject_cap, index, reason, has_txid, txid)) {
                st = PM_ERR_NOMEM;
                break;
            }
        } else {
            out->accepted++;
            if (ob.count == block_txs || ob.bytes + 4 + len > block_bytes)
                if (!close_block(rv, &ob, &blocks, &out->blocks_added)) {
                    st = PM_ERR_NOMEM;
                    break;
                }
            if (ob.count == ob.cap) {
                size_t nc = ob.cap ? ob.cap * 2 : 256;
                const uint8_t **t = realloc(ob.txs, nc * sizeof *t);
                if (t)
                    ob.txs = t;
                size_t *s = realloc(ob.sizes, nc * sizeof *s);
                if (s)
                    ob.sizes = s;
                if (!t || !s) {
                    st = PM_ERR_NOMEM;
                    break;
                }
                ob.cap = nc;
            }
            ob.txs[ob.count] = rec;
            ob.sizes[ob.count] = len;
            ob.count++;
            ob.bytes += 4 + len;
        }
        index++;
    }
    /* A partial last record is a MALFORMED reject after every whole one. */
    if (st == PM_OK && pos < size &&
        !add_reject(out, &reject_cap, index, PM_REASON_MALFORMED, 0, NULL))
        st = PM_ERR_NOMEM;
    if (st == PM_OK && !close_block(rv, &ob, &blocks, &out->blocks_added))
        st = PM_ERR_NOMEM;
    free(ob.txs);
    free(ob.sizes);
    if (st != PM_OK) {
        free(blocks.data);
        refval_pack_result_free(out);
        return st;
    }
    out->blocks = blocks.data;
    out->blocks_size = blocks.size;
    return PM_OK;
}

void refval_pack_result_free(refval_pack_result *out)
{
    free(out->blocks);
    free(out->rejects);
    memset(out, 0, sizeof *out);
}

/* ---------------------------------------------------------------------- */
/* Replay (§6, cli.md).                                                    */
/* ---------------------------------------------------------------------- */

pm_status refval_replay(refval **rv_out, refval_verdict *v, const uint8_t *chain, size_t size,
                        const uint8_t assume_valid[PM_HASH_SIZE])
{
    memset(v, 0, sizeof *v);
    v->tx = -1;
    if (rv_out)
        *rv_out = NULL;
    if (size < PM_FILE_HEADER_SIZE || memcmp(chain, "POSTMKBK", 8) != 0 || rd32(chain + 8) != 1) {
        block_reason(v, PM_REASON_BAD_HEADER);
        v->height = 0;
        return PM_OK;
    }
    pm_chain_params params;
    memcpy(params.network, chain + 12, PM_NETWORK_SIZE);
    memcpy(params.governance_key, chain + 28, PM_KEY_SIZE);
    refval *rv = refval_create(&params);
    if (!rv)
        return PM_ERR_NOMEM;

    /* Signatures are skipped in blocks [0, skip_upto): up to and including
     * the first whole block in the file whose hash is assume_valid. */
    uint64_t skip_upto = 0;
    size_t pos = PM_FILE_HEADER_SIZE;
    for (uint64_t i = 0; assume_valid && size - pos >= 4 && size - pos - 4 >= rd32(chain + pos);
         i++) {
        size_t len = rd32(chain + pos);
        uint8_t h[32];
        if (len >= PM_BLOCK_HEADER_SIZE) {
            if (!tagged_hash(h, "postmark/block", chain + pos + 4, PM_BLOCK_HEADER_SIZE, NULL, 0)) {
                refval_destroy(rv);
                return PM_ERR_NOMEM;
            }
            if (memcmp(h, assume_valid, 32) == 0) {
                skip_upto = i + 1;
                break;
            }
        }
        pos += 4 + len;
    }

    pos = PM_FILE_HEADER_SIZE;
    uint64_t i = 0;
    while (size - pos >= 4 && size - pos - 4 >= rd32(chain + pos)) {
        size_t len = rd32(chain + pos);
        if (!refval_connect_block(rv, v, chain + pos + 4, len, i >= skip_upto)) {
            refval_destroy(rv);
            return PM_ERR_NOMEM;
        }
        if (!v->valid) {
            v->height = i;
            goto out;
        }
        pos += 4 + len;
        i++;
    }
    if (pos < size) {
        block_reason(v, PM_REASON_TRUNCATED);
        v->height = i;
    } else {
        v->valid = 1;
        v->reason = PM_REASON_NONE;
        v->height = i;
        v->tx = -1;
        v->has_txid = 0;
    }
out:
    if (rv_out)
        *rv_out = rv;
    else
        refval_destroy(rv);
    return PM_OK;
}
