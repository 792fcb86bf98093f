/*
 * pool_shim.h — the verifier pool (engine/pool.h) behind a C and C++
 * friendly face for bench_verify.cc: pool.h uses C11 atomics, which C++
 * cannot include. The job the shim runs is the pipeline's pattern: chunks
 * claimed from an atomic counter, each signature verified through
 * pm_verify_sig and the worker's own key cache.
 */
#ifndef PM_BENCH_POOL_SHIM_H
#define PM_BENCH_POOL_SHIM_H

#include <secp256k1.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One signature to check: the key as 32 bytes (parsed through the cache). */
typedef struct {
    uint8_t key[32];
    uint8_t msg[32];
    uint8_t sig[64];
} bench_sig;

typedef struct bench_pool bench_pool;

/* A pool of `threads` workers; NULL when out of memory. */
bench_pool *bench_pool_create(unsigned threads);
void bench_pool_destroy(bench_pool *p);

/* One job over sigs[0..n): returns how many did not verify. */
size_t bench_pool_verify(bench_pool *p, const secp256k1_context *secp, const bench_sig *sigs,
                         size_t n);

/* One job that does nothing: a round trip through the pool. */
void bench_pool_empty(bench_pool *p);

#ifdef __cplusplus
}
#endif

#endif
