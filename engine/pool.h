/*
 * pool.h — the worker pool (the verifiers): N worker threads, each owning its memory
 * (a hasher, a key cache), that run one job at a time over a batch of
 * transactions. The pool only starts and joins jobs; how a job splits its
 * items is the job's (the pipeline's workers claim chunks from an atomic
 * counter: see the note at the top of pipeline.c). No dispatcher, no
 * queue, no lock.
 *
 * Waiting is on futexes after a short spin, so idle workers use no CPU:
 * the engine must share the cores it is restricted to (taskset) with the
 * commit stage. pm_barrier lets a job have phases (all workers finish
 * phase A before any starts phase B).
 *
 * Memory ordering: pm_pool_start publishes the job with a release store
 * of the generation counter; a worker's acquire load of it sees the job.
 * A worker's release decrement of `remaining` makes its writes visible to
 * pm_pool_wait's acquire load.
 */
#ifndef PM_ENGINE_POOL_H
#define PM_ENGINE_POOL_H

#include "hash.h"
#include "state.h"

#include <secp256k1.h>
#include <stdatomic.h>

/* What each worker owns. */
typedef struct {
    pm_hasher *hasher;
    pm_keycache *keys;
    double seconds_hash;   /* in phase A (parse, hash) */
    double seconds_verify; /* in phase B (resolve keys, verify) */
} pm_worker;

typedef void (*pm_job_fn)(void *job, pm_worker *worker, unsigned n_workers);

typedef struct pm_pool pm_pool;

pm_status pm_pool_create(pm_pool **pool, unsigned n_threads, const pm_tag_midstates *tags);
void pm_pool_destroy(pm_pool *pool);
unsigned pm_pool_size(const pm_pool *pool);
/* Totals over all workers (call between jobs): signatures verified, and
 * seconds spent in each phase, summed over workers. */
uint64_t pm_pool_signatures(const pm_pool *pool);
void pm_pool_seconds(const pm_pool *pool, double *hash, double *verify);
/* Give every worker's key cache the engine's signature cache (NULL for
 * none), fingerprinted with the worker's own hasher. Call between jobs. */
void pm_pool_set_sigcache(pm_pool *pool, pm_sigcache *cache);
/* Totals over all workers (call between jobs) of the signature cache's
 * hits, misses and inserts. */
void pm_pool_sigcache_counts(const pm_pool *pool, uint64_t *hits, uint64_t *misses,
                             uint64_t *inserts);

/* Start `fn(job, worker, n)` on every worker; returns at once. */
void pm_pool_start(pm_pool *pool, pm_job_fn fn, void *job);
/* Wait until every worker has finished the started job. */
void pm_pool_wait(pm_pool *pool);

/* A reusable barrier for the n workers of one job. */
typedef struct {
    _Atomic uint32_t arrived;
    _Atomic uint32_t phase;
} pm_barrier;

void pm_barrier_init(pm_barrier *b);
void pm_barrier_wait(pm_barrier *b, unsigned n);

#endif
