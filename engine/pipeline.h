/*
 * pipeline.h — the validation pipeline behind pm_engine (see the design
 * note at the top of pipeline.c). Internal: the public face is postmark.h.
 */
#ifndef PM_ENGINE_PIPELINE_H
#define PM_ENGINE_PIPELINE_H

#include "block.h"
#include "context.h"
#include "hmap.h"
#include "state.h"
#include "pool.h"

#include <stdatomic.h>

/* One batch of transactions in flight: filled by the caller's thread,
 * hashed and verified by the workers, committed in order. */
typedef struct pm_batch pm_batch;

/* A block of a connect_blocks call, as a batch holds it. */
typedef struct {
    size_t position;      /* index in the caller's array */
    pm_block blk;
    int framed;           /* pm_block_parse succeeded */
    size_t first_tx;      /* its transactions: batch items [first, first+count) */
    size_t tx_count;
    int skip_signatures;
} pm_batch_block;

struct pm_batch {
    size_t n, cap;
    pm_txinfo *info;
    uint8_t *parsed;
    uint8_t (*leaf)[32];
    uint64_t *index;        /* pack: submission index */
    size_t *raw_off;        /* pack: offset of the record in arena */
    const uint8_t **raw;    /* the record's bytes */
    size_t *raw_size;
    size_t *key_off;        /* offset into keybuf of the tx's keys */
    uint8_t *keybuf;
    size_t keybuf_len, keybuf_cap;
    uint8_t *arena;         /* pack: copies of submitted records */
    size_t arena_len, arena_cap;
    hmap txindex; /* txid -> item */
    pm_batch_block *blocks;
    size_t nblocks, cap_blocks;
    /* Job context, set before the workers start. */
    pm_barrier barrier;
    _Atomic size_t claim_hash;   /* next item for phase A */
    _Atomic size_t claim_verify; /* next item for phase B */
    _Atomic int hash_failed;     /* a worker could not hash an item */
    uint8_t admit;          /* pack mode: verified signatures enter the sigcache */
    const pm_batch *prev;   /* the batch being committed meanwhile */
    const pm_opkeys *opkeys;
    const pm_engine *engine;
};

/* The open block of pack mode. */
typedef struct {
    pm_block_builder builder;
    uint64_t *index;        /* submission index of each tx (mempool re-check) */
    size_t cap_index;
} pm_open_block;

/* Where the committing thread's time goes, for the benchmark's stage table
 * (internal: pm_stats keeps its public shape). Thread CPU seconds. */
typedef struct {
    double commit_cpu;      /* the committing thread, in commit_blocks/commit_pack */
    double commit_hashing;  /* of which merkle roots and block hashes */
    double apply_parallel;  /* connect: partitioned state changes, summed over workers */
    uint64_t blocks_parallel;   /* blocks applied by the partitioned path */
    uint64_t blocks_sequential; /* blocks re-run one tx at a time after it failed */
} pm_stage_seconds;

struct pm_engine {
    const pm_context *ctx;
    pm_config cfg;
    pm_chain_params params;
    uint8_t chain_id[32];
    pm_ledger *ledger;
    pm_pool *pool;
    pm_hasher *hasher;      /* the commit stage's */
    pm_keycache *keys;      /* the commit stage's */
    pm_sigcache *sigcache;  /* signatures admitted, for connect (or NULL) */
    uint64_t xxh_seed;      /* batch txid index */
    pm_batch batches[2];
    pm_batch *filling;      /* being filled by submit */
    pm_batch *committing;   /* verified, waiting for commit (or NULL) */
    pm_open_block open;
    uint64_t next_index;
    uint64_t emitting_last_index; /* during on_block */
    pm_block_fn on_block;
    pm_reject_fn on_reject;
    void *cb_data;
    pm_stats stats;
    pm_stage_seconds stage;
    char error[256];
};

/* The first pm_config field out of its documented range, as a condition
 * for the illegal callback's message; NULL when every field is in range. */
const char *pm_config_invalid(const pm_config *cfg);

/* Pack mode. */
pm_status pm_pipeline_submit(pm_engine *e, const uint8_t *tx, size_t size);
pm_status pm_pipeline_submit_truncated(pm_engine *e);
/* Validate everything submitted; close_block also closes the open block. */
pm_status pm_pipeline_drain(pm_engine *e, int close_block);
/* One pipeline step without waiting for it to empty (pm_engine_step);
 * *settled: the index of the first record not yet decided. */
pm_status pm_pipeline_step(pm_engine *e, uint64_t *settled);

/* Blocks from a peer or a chain file. */
pm_status pm_pipeline_connect(pm_engine *e, pm_verdict *verdict, const uint8_t *const *blocks,
                              const size_t *sizes, size_t n, size_t assume_valid_upto);

/* Take the open block's transactions out of the state (kept for re-check). */
void pm_pipeline_suspend_open_block(pm_engine *e, pm_open_block *saved);
/* Re-check saved transactions on the current state (mempool re-check). */
pm_status pm_pipeline_recheck(pm_engine *e, pm_open_block *saved);

/* Check one transaction on the current state without applying it. */
pm_status pm_pipeline_check_tx(pm_engine *e, pm_reason *reason, const uint8_t *tx, size_t size);

pm_status pm_pipeline_init(pm_engine *e);
void pm_pipeline_free(pm_engine *e);

#endif
