/*
 * bench_wire.cc — microbenchmarks of the wire format and the protocol
 * hashes (Google Benchmark).
 *
 * Each figure is printed beside the limit measured in the same run, as a
 * ratio (counter `x_limit`, ours / limit), never asserted:
 *  - parsing: the limit is a memcpy of the same bytes (touching them once);
 *  - a tagged hash: the limit is the SHA-256 compressions it needs after
 *    the tag midstate (ceil((len + 9) / 64)), each timed as one
 *    SHA256_Transform, OpenSSL's compression function (SHA extensions
 *    where the CPU has them);
 *  - the merkle root: 4,095 node hashes of 2 compressions each.
 * Besides them, the cost of one call by the ways there are to hash 64
 * bytes: OpenSSL EVP (init, update, final on a reused context; the
 * EVP_Digest one-shot), secp256k1_tagged_sha256 (hashes the tag every
 * call, its own portable SHA-256), our midstate copy (engine/hash.h), and
 * a low-level SHA256_CTX midstate copied by assignment.
 *
 * Run: build/bench/bench_wire [--benchmark_filter=...]
 */
#include <benchmark/benchmark.h>

/* SHA256_Transform (one compression, the hash limit) and the low-level
 * SHA256_CTX are deprecated in OpenSSL 3 but still shipped. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <secp256k1.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" {
#include "postmark_internal.h"
#include "postmark.h"
}

namespace {

/* ---- fixtures ---------------------------------------------------------- */

struct Fixture {
    pm_tag_midstates *tags = nullptr;
    pm_hasher *hasher = nullptr;
    EVP_MD_CTX *raw = nullptr;
    secp256k1_context *secp = nullptr;

    Fixture()
    {
        tags = pm_tag_midstates_create();
        hasher = tags ? pm_hasher_create(tags) : nullptr;
        raw = EVP_MD_CTX_new();
        secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
        if (!hasher || !raw || !secp)
            std::abort();
    }
    ~Fixture()
    {
        secp256k1_context_destroy(secp);
        EVP_MD_CTX_free(raw);
        pm_hasher_destroy(hasher);
        pm_tag_midstates_destroy(tags);
    }
};

Fixture &fx()
{
    static Fixture f;
    return f;
}

void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* A TRANSFER of n_in inputs and n_out outputs (credits), serialized. */
std::vector<uint8_t> make_transfer(size_t n_in, size_t n_out)
{
    std::vector<uint8_t> ins(n_in * PM_INPUT_SIZE), outs(n_out * PM_OUTPUT_SIZE),
        sigs(n_in * PM_SIG_SIZE);
    fill(ins.data(), ins.size(), 1);
    fill(sigs.data(), sigs.size(), 2);
    for (size_t i = 0; i < n_out; i++) {
        pm_output o;
        std::memset(&o, 0, sizeof o);
        o.kind = PM_OUTPUT_CREDIT;
        fill(o.owner, 32, (uint32_t)(3 + i));
        o.operator_id = 7;
        o.amount = 1000 + i;
        pm_output_encode(pm_context_static, outs.data() + i * PM_OUTPUT_SIZE, &o);
    }
    pm_tx d;
    std::memset(&d, 0, sizeof d);
    d.type = PM_TX_TRANSFER;
    d.n_in = n_in;
    d.inputs = ins.data();
    d.n_out = n_out;
    d.outputs = outs.data();
    d.sigs = sigs.data();
    std::vector<uint8_t> tx(pm_tx_serialize(pm_context_static, nullptr, 0, &d));
    if (pm_tx_serialize(pm_context_static, tx.data(), tx.size(), &d) != tx.size())
        std::abort();
    return tx;
}

pm_tx parsed(const std::vector<uint8_t> &bytes)
{
    pm_tx tx;
    if (!pm_tx_parse(pm_context_static, &tx, nullptr, bytes.data(), bytes.size()))
        std::abort();
    return tx;
}

/* ---- limits, measured in this run --------------------------------------- */

double ns_per_call(void (*fn)(size_t), size_t arg, int iters)
{
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < iters; i++)
            fn(arg);
        auto t1 = std::chrono::steady_clock::now();
        best = std::min(best, std::chrono::duration<double, std::nano>(t1 - t0).count() / iters);
    }
    return best;
}

uint8_t limit_buf[1 << 17], limit_out[1 << 17];

void raw_sha256(size_t len)
{
    EVP_MD_CTX *c = fx().raw;
    uint8_t out[32];
    unsigned int n = 0;
    EVP_DigestInit_ex(c, EVP_sha256(), nullptr);
    EVP_DigestUpdate(c, limit_buf, len);
    EVP_DigestFinal_ex(c, out, &n);
    benchmark::DoNotOptimize(out);
}

void compress_once(size_t)
{
    static SHA256_CTX c;
    SHA256_Transform(&c, limit_buf);
    benchmark::DoNotOptimize(c);
}

/* ns of the compressions a tagged hash of `len` data bytes needs after
 * its midstate: data plus 9 bytes of padding, in 64-byte blocks. */
double compress_limit(size_t len)
{
    static double per = ns_per_call(compress_once, 0, 200000);
    return per * (double)((len + 9 + 63) / 64);
}

void raw_memcpy(size_t len)
{
    std::memcpy(limit_out, limit_buf, len);
    benchmark::DoNotOptimize(limit_out);
    benchmark::ClobberMemory();
}

/* Google Benchmark gives per-iteration time; for the ratio we measure ours
 * again outside the loop the same way as the limit, so both figures come
 * from the same timer. */
template <typename F> double measure(F fn, int iters)
{
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < iters; i++)
            fn();
        auto t1 = std::chrono::steady_clock::now();
        best = std::min(best, std::chrono::duration<double, std::nano>(t1 - t0).count() / iters);
    }
    return best;
}

void set_ratio(benchmark::State &state, double ours_ns, double limit_ns)
{
    state.counters["ns"] = ours_ns;
    state.counters["limit_ns"] = limit_ns;
    state.counters["x_limit"] = ours_ns / limit_ns;
}

/* ---- parsing ------------------------------------------------------------ */

void parse_bench(benchmark::State &state, size_t n_in, size_t n_out)
{
    auto bytes = make_transfer(n_in, n_out);
    pm_tx tx;
    for (auto _ : state) {
        int ok = pm_tx_parse(pm_context_static, &tx, nullptr, bytes.data(), bytes.size());
        benchmark::DoNotOptimize(ok);
        benchmark::DoNotOptimize(tx);
    }
    state.SetBytesProcessed((int64_t)(state.iterations() * bytes.size()));
    state.SetItemsProcessed((int64_t)state.iterations());
    double ours = measure(
        [&] {
            int ok = pm_tx_parse(pm_context_static, &tx, nullptr, bytes.data(), bytes.size());
            benchmark::DoNotOptimize(ok);
            benchmark::DoNotOptimize(tx);
        },
        100000);
    set_ratio(state, ours, ns_per_call(raw_memcpy, bytes.size(), 100000));
}

void BM_TxParse_Transfer_2in_2out(benchmark::State &state) { parse_bench(state, 2, 2); }
void BM_TxParse_Transfer_16in_16out(benchmark::State &state) { parse_bench(state, 16, 16); }
void BM_TxParse_Transfer_1in_1024out(benchmark::State &state) { parse_bench(state, 1, 1024); }

void BM_DuplicateInput_256(benchmark::State &state)
{
    auto bytes = make_transfer(256, 1);
    pm_tx tx = parsed(bytes);
    for (auto _ : state) {
        size_t second;
        int dup = pm_tx_has_duplicate_input(pm_context_static, &tx, &second);
        benchmark::DoNotOptimize(dup);
    }
    state.SetItemsProcessed((int64_t)(state.iterations() * 256));
}

/* ---- protocol hashes (engine/hash.h, one pm_hasher) ------------------------ */

void BM_Txid_Transfer_2in_2out(benchmark::State &state)
{
    auto bytes = make_transfer(2, 2);
    pm_tx tx = parsed(bytes);
    uint8_t out[32];
    auto call = [&] {
        pm_hash_txid(fx().hasher, out, &tx);
        benchmark::DoNotOptimize(out);
    };
    for (auto _ : state)
        call();
    state.SetItemsProcessed((int64_t)state.iterations());
    set_ratio(state, measure(call, 100000), compress_limit(tx.unsigned_size));
}

void BM_Sighash(benchmark::State &state)
{
    uint8_t chain_id[32], txid[32], out[32];
    fill(chain_id, 32, 5);
    fill(txid, 32, 6);
    auto call = [&] {
        pm_hash_sighash(fx().hasher, out, chain_id, txid);
        benchmark::DoNotOptimize(out);
    };
    for (auto _ : state)
        call();
    state.SetItemsProcessed((int64_t)state.iterations());
    set_ratio(state, measure(call, 100000), compress_limit(64));
}

void BM_Leaf_Transfer_2in_2out(benchmark::State &state)
{
    auto bytes = make_transfer(2, 2);
    pm_tx tx = parsed(bytes);
    uint8_t txid[32], out[32];
    pm_hash_txid(fx().hasher, txid, &tx);
    auto call = [&] {
        pm_hash_leaf(fx().hasher, out, &tx, txid);
        benchmark::DoNotOptimize(out);
    };
    for (auto _ : state)
        call();
    state.SetItemsProcessed((int64_t)state.iterations());
    set_ratio(state, measure(call, 100000), compress_limit(32 + pm_tx_sigs_size(&tx)));
}

void BM_MerkleRoot_4096(benchmark::State &state)
{
    std::vector<uint8_t> leaves(4096 * 32);
    fill(leaves.data(), leaves.size(), 9);
    const auto *lv = reinterpret_cast<const uint8_t(*)[32]>(leaves.data());
    uint8_t out[32];
    auto call = [&] {
        pm_hash_merkle(fx().hasher, out, lv, 4096);
        benchmark::DoNotOptimize(out);
    };
    for (auto _ : state)
        call();
    state.SetItemsProcessed((int64_t)(state.iterations() * 4095)); /* node hashes */
    set_ratio(state, measure(call, 50), 4095 * compress_limit(64));
}

/* ---- the cost of one hash call -------------------------------------------- */

void BM_Sha256_64B_OpenSSL_EVP(benchmark::State &state)
{
    fill(limit_buf, 64, 11);
    for (auto _ : state)
        raw_sha256(64);
    state.SetItemsProcessed((int64_t)state.iterations());
}

void BM_Sha256_64B_OpenSSL_EVP_Digest_oneshot(benchmark::State &state)
{
    fill(limit_buf, 64, 11);
    uint8_t out[32];
    unsigned int n = 0;
    for (auto _ : state) {
        EVP_Digest(limit_buf, 64, out, &n, EVP_sha256(), nullptr);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed((int64_t)state.iterations());
}

void BM_TaggedHash_64B_secp256k1(benchmark::State &state)
{
    static const unsigned char tag[] = "postmark/sighash";
    fill(limit_buf, 64, 11);
    uint8_t out[32];
    for (auto _ : state) {
        int ok = secp256k1_tagged_sha256(fx().secp, out, tag, sizeof tag - 1, limit_buf, 64);
        benchmark::DoNotOptimize(ok);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed((int64_t)state.iterations());
}

void BM_TaggedHash_64B_pm_midstate(benchmark::State &state)
{
    fill(limit_buf, 64, 11);
    uint8_t out[32];
    for (auto _ : state) {
        pm_hash_sighash(fx().hasher, out, limit_buf, limit_buf + 32);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed((int64_t)state.iterations());
}

void BM_Sha256_64B_OpenSSL_EVP_fetched(benchmark::State &state)
{
    /* OpenSSL 3 looks the algorithm up at every init with EVP_sha256();
     * a fetched EVP_MD skips that. */
    EVP_MD *md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    fill(limit_buf, 64, 11);
    uint8_t out[32];
    unsigned int n = 0;
    for (auto _ : state) {
        EVP_DigestInit_ex(c, md, nullptr);
        EVP_DigestUpdate(c, limit_buf, 64);
        EVP_DigestFinal_ex(c, out, &n);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed((int64_t)state.iterations());
    EVP_MD_CTX_free(c);
    EVP_MD_free(md);
}

void BM_Sha256_Compress_OpenSSL(benchmark::State &state)
{
    fill(limit_buf, 64, 11);
    for (auto _ : state)
        compress_once(0);
    state.SetItemsProcessed((int64_t)state.iterations());
}

void BM_TaggedHash_64B_lowlevel_midstate(benchmark::State &state)
{
    /* What a tagged hash costs without EVP: copy a SHA256_CTX that has
     * absorbed SHA256(tag) || SHA256(tag), add the data, finish. */
    static const unsigned char tag[] = "postmark/sighash";
    uint8_t th[32], out[32];
    SHA256(tag, sizeof tag - 1, th);
    SHA256_CTX mid;
    SHA256_Init(&mid);
    SHA256_Update(&mid, th, 32);
    SHA256_Update(&mid, th, 32);
    fill(limit_buf, 64, 11);
    for (auto _ : state) {
        SHA256_CTX c = mid;
        SHA256_Update(&c, limit_buf, 64);
        SHA256_Final(out, &c);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed((int64_t)state.iterations());
    /* Same bytes as the EVP midstate path. */
    uint8_t ref[32];
    pm_hash_sighash(fx().hasher, ref, limit_buf, limit_buf + 32);
    if (std::memcmp(ref, out, 32) != 0)
        state.SkipWithError("low-level midstate disagrees with pm_hash_sighash");
}

} // namespace

BENCHMARK(BM_TxParse_Transfer_2in_2out);
BENCHMARK(BM_TxParse_Transfer_16in_16out);
BENCHMARK(BM_TxParse_Transfer_1in_1024out);
BENCHMARK(BM_DuplicateInput_256);
BENCHMARK(BM_Txid_Transfer_2in_2out);
BENCHMARK(BM_Sighash);
BENCHMARK(BM_Leaf_Transfer_2in_2out);
BENCHMARK(BM_MerkleRoot_4096)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Sha256_64B_OpenSSL_EVP);
BENCHMARK(BM_Sha256_64B_OpenSSL_EVP_Digest_oneshot);
BENCHMARK(BM_Sha256_64B_OpenSSL_EVP_fetched);
BENCHMARK(BM_Sha256_Compress_OpenSSL);
BENCHMARK(BM_TaggedHash_64B_secp256k1);
BENCHMARK(BM_TaggedHash_64B_pm_midstate);
BENCHMARK(BM_TaggedHash_64B_lowlevel_midstate);

BENCHMARK_MAIN();
