/* pool_shim.c — see pool_shim.h. */
#include "pool_shim.h"

#include "postmark_internal.h"

#include <stdatomic.h>
#include <stdlib.h>

#define CHUNK 16 /* as the pipeline claims its items */

struct bench_pool {
    pm_tag_midstates *tags;
    pm_pool *pool;
};

typedef struct {
    const secp256k1_context *secp;
    const bench_sig *sigs;
    size_t n;
    _Atomic size_t next;
    _Atomic size_t bad;
} verify_job;

static void run_verify(void *arg, pm_worker *w, unsigned n_workers)
{
    (void)n_workers;
    verify_job *job = arg;
    size_t first;
    while ((first = atomic_fetch_add_explicit(&job->next, CHUNK, memory_order_relaxed)) < job->n) {
        size_t end = first + CHUNK < job->n ? first + CHUNK : job->n;
        for (size_t i = first; i < end; i++) {
            const bench_sig *s = &job->sigs[i];
            if (!pm_verify_sig(job->secp, w->keys, s->key, s->msg, s->sig))
                atomic_fetch_add_explicit(&job->bad, 1, memory_order_relaxed);
        }
    }
}

static void run_nothing(void *arg, pm_worker *w, unsigned n_workers)
{
    (void)arg, (void)w, (void)n_workers;
}

bench_pool *bench_pool_create(unsigned threads)
{
    bench_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->tags = pm_tag_midstates_create();
    if (!p->tags || pm_pool_create(&p->pool, threads, p->tags) != PM_OK) {
        bench_pool_destroy(p);
        return NULL;
    }
    return p;
}

void bench_pool_destroy(bench_pool *p)
{
    if (!p)
        return;
    pm_pool_destroy(p->pool);
    pm_tag_midstates_destroy(p->tags);
    free(p);
}

size_t bench_pool_verify(bench_pool *p, const secp256k1_context *secp, const bench_sig *sigs,
                         size_t n)
{
    verify_job job = {.secp = secp, .sigs = sigs, .n = n};
    atomic_init(&job.next, 0);
    atomic_init(&job.bad, 0);
    pm_pool_start(p->pool, run_verify, &job);
    pm_pool_wait(p->pool);
    return atomic_load(&job.bad);
}

void bench_pool_empty(bench_pool *p)
{
    pm_pool_start(p->pool, run_nothing, NULL);
    pm_pool_wait(p->pool);
}
