/*
 * pool.c — the worker pool that verifies (see pool.h for the design).
 */
#include "pool.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Spins before sleeping: long enough to cover the gap between phases of
 * a busy pipeline, short enough not to steal a shared core. */
#define SPIN_LIMIT 2000

struct pm_pool {
    unsigned n;
    pthread_t *threads;
    pm_worker *workers;
    _Atomic uint32_t generation;
    _Atomic uint32_t remaining;
    _Atomic int stop;
    pm_job_fn fn;
    void *job;
    int started;
};

static void futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Wait while *word == value: spin, then sleep on the futex. */
static void wait_while_equal(_Atomic uint32_t *word, uint32_t value)
{
    for (int i = 0; i < SPIN_LIMIT; i++) {
        if (atomic_load_explicit(word, memory_order_acquire) != value)
            return;
        cpu_relax();
    }
    while (atomic_load_explicit(word, memory_order_acquire) == value)
        futex_wait(word, value);
}

typedef struct {
    pm_pool *pool;
    pm_worker *worker;
} worker_arg;

static void *worker_main(void *arg)
{
    pm_pool *pool = ((worker_arg *)arg)->pool;
    pm_worker *w = ((worker_arg *)arg)->worker;
    free(arg);
    uint32_t seen = 0;
    for (;;) {
        wait_while_equal(&pool->generation, seen);
        seen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (atomic_load_explicit(&pool->stop, memory_order_acquire))
            return NULL;
        pool->fn(pool->job, w, pool->n);
        if (atomic_fetch_sub_explicit(&pool->remaining, 1, memory_order_acq_rel) == 1)
            futex_wake_all(&pool->remaining);
    }
}

pm_status pm_pool_create(pm_pool **out, unsigned n, const pm_tag_midstates *tags)
{
    *out = NULL;
    if (n == 0)
        n = 1;
    pm_pool *p = calloc(1, sizeof *p);
    if (!p)
        return PM_ERR_NOMEM;
    p->n = n;
    p->threads = calloc(n, sizeof *p->threads);
    p->workers = calloc(n, sizeof *p->workers);
    if (!p->threads || !p->workers) {
        pm_pool_destroy(p);
        return PM_ERR_NOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        p->workers[i].hasher = pm_hasher_create(tags);
        p->workers[i].keys = pm_keycache_create();
        if (!p->workers[i].hasher || !p->workers[i].keys) {
            pm_pool_destroy(p);
            return PM_ERR_NOMEM;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a) {
            pm_pool_destroy(p);
            return PM_ERR_NOMEM;
        }
        a->pool = p;
        a->worker = &p->workers[i];
        if (pthread_create(&p->threads[i], NULL, worker_main, a) != 0) {
            free(a);
            pm_pool_destroy(p);
            return PM_ERR_NOMEM;
        }
        p->started++;
    }
    *out = p;
    return PM_OK;
}

void pm_pool_destroy(pm_pool *p)
{
    if (!p)
        return;
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    futex_wake_all(&p->generation);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->threads[i], NULL);
    if (p->workers)
        for (unsigned i = 0; i < p->n; i++) {
            pm_hasher_destroy(p->workers[i].hasher);
            free(p->workers[i].keys);
        }
    free(p->workers);
    free(p->threads);
    free(p);
}

unsigned pm_pool_size(const pm_pool *p)
{
    return p->n;
}

uint64_t pm_pool_signatures(const pm_pool *p)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < p->n; i++)
        total += p->workers[i].keys->verified;
    return total;
}

void pm_pool_seconds(const pm_pool *p, double *hash, double *verify)
{
    *hash = *verify = 0;
    for (unsigned i = 0; i < p->n; i++) {
        *hash += p->workers[i].seconds_hash;
        *verify += p->workers[i].seconds_verify;
    }
}

void pm_pool_set_sigcache(pm_pool *p, pm_sigcache *cache)
{
    for (unsigned i = 0; i < p->n; i++) {
        p->workers[i].keys->sigcache = cache;
        p->workers[i].keys->hasher = p->workers[i].hasher;
    }
}

void pm_pool_sigcache_counts(const pm_pool *p, uint64_t *hits, uint64_t *misses,
                             uint64_t *inserts)
{
    *hits = *misses = *inserts = 0;
    for (unsigned i = 0; i < p->n; i++) {
        *hits += p->workers[i].keys->sigcache_hits;
        *misses += p->workers[i].keys->sigcache_misses;
        *inserts += p->workers[i].keys->sigcache_inserts;
    }
}

void pm_pool_start(pm_pool *p, pm_job_fn fn, void *job)
{
    p->fn = fn;
    p->job = job;
    atomic_store_explicit(&p->remaining, p->n, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    futex_wake_all(&p->generation);
}

void pm_pool_wait(pm_pool *p)
{
    for (;;) {
        uint32_t left = atomic_load_explicit(&p->remaining, memory_order_acquire);
        if (left == 0)
            return;
        wait_while_equal(&p->remaining, left);
    }
}

void pm_barrier_init(pm_barrier *b)
{
    atomic_store(&b->arrived, 0);
    atomic_store(&b->phase, 0);
}

void pm_barrier_wait(pm_barrier *b, unsigned n)
{
    uint32_t phase = atomic_load_explicit(&b->phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) + 1 == n) {
        atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->phase, 1, memory_order_release);
        futex_wake_all(&b->phase);
        return;
    }
    wait_while_equal(&b->phase, phase);
}
