// bench_verify.cc — the verifier pool (engine/pool.h) beside the limit it
// chases, measured in the same run (Google Benchmark).
//
//  limit/T        T threads calling secp256k1_schnorrsig_verify on
//                 pre-parsed x-only keys, nothing else: the signature rate
//                 the hardware allows on T cores.
//  pool/T/K       one pm_pool job per iteration (bench/pool_shim.c): 4,096 signatures under K
//                 distinct keys, claimed in chunks of 16 from an atomic
//                 counter (as the pipeline's workers do) and verified
//                 through pm_verify_sig and each worker's key cache (keys
//                 arrive as 32 bytes and are parsed on a cache miss). K = 256
//                 fits the direct-mapped cache; K = 4,096 collides in it.
//                 Counters: items_per_second (signatures), limit_sig_s (the
//                 limit on T threads, measured just before), x_limit
//                 (ours / limit).
//  pool_empty/T   start + wait of a job that does nothing: the cost of one
//                 round trip through the pool (futex wake-ups included).
//
// Run: build/bench/bench_verify [--benchmark_filter=...]

#include <benchmark/benchmark.h>

#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "pool_shim.h"

namespace {

constexpr size_t kBatch = 4096;

struct Sig {
    uint8_t key[32];  // x-only key bytes, as a transaction's output holds them
    secp256k1_xonly_pubkey parsed;
    uint8_t msg[32];
    uint8_t sig[64];
};

uint64_t Mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// kBatch signatures under `keys` distinct keys (signature i under key i % keys).
std::vector<Sig> MakeSigs(size_t keys)
{
    secp256k1_context *secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    std::vector<secp256k1_keypair> pairs(keys);
    uint64_t ctr = keys * 7919;
    for (size_t k = 0; k < keys; k++) {
        uint8_t seckey[32];
        do {
            for (int j = 0; j < 4; j++) {
                uint64_t w = Mix(ctr++);
                std::memcpy(seckey + 8 * j, &w, 8);
            }
        } while (!secp256k1_keypair_create(secp, &pairs[k], seckey));
    }
    std::vector<Sig> sigs(kBatch);
    for (size_t i = 0; i < kBatch; i++) {
        Sig &s = sigs[i];
        const secp256k1_keypair &kp = pairs[i % keys];
        for (int j = 0; j < 4; j++) {
            uint64_t w = Mix(ctr++);
            std::memcpy(s.msg + 8 * j, &w, 8);
        }
        if (!secp256k1_keypair_xonly_pub(secp, &s.parsed, nullptr, &kp) ||
            !secp256k1_xonly_pubkey_serialize(secp, s.key, &s.parsed) ||
            !secp256k1_schnorrsig_sign32(secp, s.sig, s.msg, &kp, nullptr))
            std::abort();
    }
    secp256k1_context_destroy(secp);
    return sigs;
}

const std::vector<Sig> &Sigs(size_t keys)
{
    static std::vector<Sig> few = MakeSigs(256), many = MakeSigs(kBatch);
    return keys <= 256 ? few : many;
}

secp256k1_context *Secp()
{
    static secp256k1_context *c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    return c;
}

// ---- the limit -------------------------------------------------------------

// Signatures per second of `threads` threads verifying flat out for `seconds`.
double LimitRate(unsigned threads, double seconds)
{
    const std::vector<Sig> &sigs = Sigs(kBatch);
    std::atomic<uint64_t> total{0};
    std::atomic<bool> bad{false};
    auto t0 = std::chrono::steady_clock::now();
    auto until = t0 + std::chrono::duration<double>(seconds);
    std::vector<std::thread> th;
    for (unsigned t = 0; t < threads; t++)
        th.emplace_back([&, t] {
            uint64_t n = 0;
            size_t i = t * (kBatch / threads);
            do {
                for (int k = 0; k < 64; k++, n++, i = (i + 1) % kBatch)
                    if (!secp256k1_schnorrsig_verify(Secp(), sigs[i].sig, sigs[i].msg, 32,
                                                     &sigs[i].parsed))
                        bad = true;
            } while (std::chrono::steady_clock::now() < until);
            total += n;
        });
    for (auto &x : th)
        x.join();
    if (bad)
        std::abort();
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return (double)total / dt;
}

void BM_Limit(benchmark::State &state)
{
    const std::vector<Sig> &sigs = Sigs(kBatch);
    size_t i = (size_t)state.thread_index() * (kBatch / (size_t)state.threads());
    for (auto _ : state) {
        const Sig &s = sigs[i];
        benchmark::DoNotOptimize(secp256k1_schnorrsig_verify(Secp(), s.sig, s.msg, 32, &s.parsed));
        i = (i + 1) % kBatch;
    }
    state.SetItemsProcessed(state.iterations());
}

// ---- the pool (through bench/pool_shim.h: pool.h is C11, not C++) -----

void BM_Pool(benchmark::State &state)
{
    unsigned threads = (unsigned)state.range(0);
    size_t keys = (size_t)state.range(1);
    const std::vector<Sig> &sigs = Sigs(keys);
    std::vector<bench_sig> job(sigs.size());
    for (size_t i = 0; i < sigs.size(); i++) {
        std::memcpy(job[i].key, sigs[i].key, 32);
        std::memcpy(job[i].msg, sigs[i].msg, 32);
        std::memcpy(job[i].sig, sigs[i].sig, 64);
    }
    double limit = LimitRate(threads, 0.3);
    bench_pool *p = bench_pool_create(threads);
    if (!p)
        std::abort();
    // One job first: the key caches warm up as they would on a long chain.
    size_t bad = bench_pool_verify(p, Secp(), job.data(), job.size());
    double seconds = 0;
    for (auto _ : state) {
        auto t0 = std::chrono::steady_clock::now();
        bad += bench_pool_verify(p, Secp(), job.data(), job.size());
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    bench_pool_destroy(p);
    if (bad != 0)
        state.SkipWithError("a signature did not verify");
    state.SetItemsProcessed(state.iterations() * (int64_t)kBatch);
    double ours = seconds > 0 ? (double)state.iterations() * kBatch / seconds : 0;
    state.counters["limit_sig_s"] = limit;
    state.counters["x_limit"] = limit > 0 ? ours / limit : 0;
}

void BM_PoolEmpty(benchmark::State &state)
{
    bench_pool *p = bench_pool_create((unsigned)state.range(0));
    if (!p)
        std::abort();
    for (auto _ : state)
        bench_pool_empty(p);
    bench_pool_destroy(p);
    state.SetItemsProcessed(state.iterations());
}

void Register()
{
    unsigned cores = std::thread::hardware_concurrency();
    if (cores == 0)
        cores = 1;
    for (unsigned t = 1; t <= cores; t++)
        benchmark::RegisterBenchmark("limit", BM_Limit)->Threads((int)t)->UseRealTime();
    for (unsigned t = 1; t <= cores; t++)
        for (int64_t keys : {int64_t{256}, int64_t{kBatch}})
            benchmark::RegisterBenchmark("pool", BM_Pool)
                ->Args({(int64_t)t, keys})
                ->ArgNames({"threads", "keys"})
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
    for (unsigned t = 1; t <= cores; t++)
        benchmark::RegisterBenchmark("pool_empty", BM_PoolEmpty)
            ->Arg((int64_t)t)
            ->ArgName("threads")
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
}

}  // namespace

int main(int argc, char **argv)
{
    Register();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
