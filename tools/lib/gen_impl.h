/*
 * gen_impl.h — what the generator's three files share (the generator is
 * gen.h; its design note is below). The files follow its passes:
 *   gen_market.c  the market model: keys, owners, the pool of spendable
 *                 outputs, drafts, and emitting a record into the chunk
 *                 with its effect on the model;
 *   gen_plan.c    the planner: which transaction comes next, per shape
 *                 (the setup, MARKET's valid and invalid mix, TRANSFERS,
 *                 LARGE_STATE);
 *   gen_write.c   signing (parallel), writing, and the entry points.
 *
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
#ifndef POSTMARK_TOOLS_GEN_IMPL_H
#define POSTMARK_TOOLS_GEN_IMPL_H

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

#define EXTRA_OPERATOR_ID 1000u       /* ids of operators past the list */
#define UNREGISTERED_OPERATOR 1000000u /* ids at and above: never registered */
#define UNDECLARED_SERIES 4000000000u  /* series ids at and above: never declared */

/* Fixed key indices; operator keys are appended after the collectors. */
#define KEY_GOV 0u
#define KEY_FORGER 1u /* keys that sign what they have no right to sign */
#define N_FORGERS 4u
#define KEY_COLLECTOR (KEY_FORGER + N_FORGERS)

/* ---------------------------------------------------------------------- */
/* PRNG: xoshiro256**, seeded through splitmix64.                          */
/* ---------------------------------------------------------------------- */

typedef struct {
    uint64_t s[4];
} gen_rng;

static inline uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline void rng_seed(gen_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(gen_rng *r)
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
static inline uint64_t rng_below(gen_rng *r, uint64_t n)
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

/* ---- gen_market.c ---- */

/* secret = H("postmark-gen/key", seed || role || index || attempt), the
 * first attempt that is a valid secret key. Returns the key index, or NONE
 * when out of memory. */
uint32_t gen_add_key(gen *g, uint8_t role, uint32_t index);
/* A collector, skewed: collector k is chosen with weight 1 / (k + 1). */
uint32_t gen_zipf_owner(gen *g);
uint32_t gen_uniform_owner(gen *g);
/* A collector other than `not` (when there is another). */
uint32_t gen_other_owner(gen *g, uint32_t not, int skewed);
int gen_ent_live(const gen *g, ent_ref r);
/* Adopt output `index` of `txid` into the pool. Returns its slot, or NONE
 * when the pool is full (the output is then unknown to the planner). */
uint32_t gen_adopt(gen *g, const uint8_t txid[32], uint16_t index, const uint8_t raw[45],
                      uint32_t owner);
/* Remove a spent entry, remembering it for double spends. */
void gen_spend(gen *g, uint32_t i);
/* A random live entry of `kind` (0: any), or NONE. */
uint32_t gen_pick_live(gen *g, uint8_t kind);
/* One of the most recently adopted live entries, or NONE. */
uint32_t gen_pick_recent(gen *g);
draft *gen_d_begin(gen *g, uint8_t type);
void gen_d_signer(draft *d, uint32_t key);
/* An input spending the outpoint of `e`, signed by its owner. */
void gen_d_input(gen *g, const ent *e);
/* An input spending pool entry i. */
void gen_d_spend(gen *g, uint32_t i);
void gen_d_stamp(gen *g, uint32_t owner, uint32_t op, uint32_t series, uint32_t serial);
void gen_d_credit(gen *g, uint32_t owner, uint32_t issuer, uint64_t amount);
/* The same asset as `e`, to `owner` (a credit: `amount` of it). */
void gen_d_asset(gen *g, const ent *e, uint32_t owner, uint64_t amount);
void gen_count_verdict(gen *g, pm_reason planned);
/* Append the draft as the chunk's next record (zero signatures) with its
 * planned verdict. Returns the record, or NULL when out of memory. */
rec *gen_emit(gen *g, pm_reason planned);
/* Emit the draft as a valid record and apply it. Returns 1, 0 on OOM. */
int gen_emit_valid(gen *g);
int gen_emit_invalid(gen *g, pm_reason reason);

/* ---- gen_plan.c ---- */

int gen_plan_one(gen *g);

#endif
