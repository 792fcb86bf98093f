// bench_utxo.cc — the UTXO table against two references, in the same run.
//
//  ours   pm_utxo_table (lock-free; any number of writers and readers)
//  ck     Concurrency Kit's ck_hs in SPMC mode: one writer, any readers
//         (objects are malloc'd entries; removed ones are freed at the end)
//  mutex  a simple open-addressing table (inline 80-byte slots, linear
//         probing, tombstones reused by inserts, rehash at 85% full,
//         doubling when over 80% live)
//         behind one std::mutex
//
// For each table size (1M entries by default, PM_BENCH_SIZES="1,20" for a
// list in millions; also 50M with PM_BENCH_LARGE=1; built one table at a
// time since each takes GBs): lookup (hits), insert (fresh
// keys), remove (present keys) and a validation-like mix (lookup a present
// outpoint, remove it, insert two new ones), with 1 and 2 threads. With 2
// threads, ours runs 2 writers and also 1 writer + 1 reader; ck (single
// writer) runs 1 writer + 1 reader; mutex runs 2 writers. items_per_second
// counts the measured operation only (a reader thread's lookups show as
// reader_lookups). B_per_utxo is the table's memory over its live entries
// (allocator rounding included). At the end a summary prints our rate
// beside each reference's (ratio > 1: ours is faster).
//
// Keys: txid = four 64-bit mixes of a key number (distinct, random-looking),
// index = 0..3; both the reference tables and ours hash with XXH3. With
// PM_BENCH_OUTPUTS_PER_TX=k, k consecutive key numbers share a txid
// (indexes 0..k-1), as the outputs of one transaction do.
//
// The table's private jemalloc arena needs static TLS that glibc only grants
// with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=...; main re-executes
// the program once with it set (PM_BENCH_NO_REEXEC=1 keeps the malloc
// fallback instead).

#include <benchmark/benchmark.h>

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

extern "C" {
#include <ck_hs.h>

#include "postmark_internal.h"
}

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace {

// ---- keys ------------------------------------------------------------------

constexpr size_t kKeySize = 34;

uint64_t Mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct Key {
  uint8_t txid[32];
  uint16_t index;
};

// Key numbers per txid (PM_BENCH_OUTPUTS_PER_TX, default 1): with k > 1,
// k consecutive key numbers are the outputs 0..k-1 of one transaction, as
// a chain's are; the table stores a txid once per transaction, so its
// memory per entry depends on k.
uint64_t g_outputs_per_tx = 1;

void MakeKey(Key* k, uint64_t id) {
  uint64_t tx = g_outputs_per_tx > 1 ? id / g_outputs_per_tx : id;
  for (int j = 0; j < 4; j++) {
    uint64_t w = Mix(tx * 4 + (uint64_t)j);
    memcpy(k->txid + 8 * j, &w, 8);
  }
  k->index = (uint16_t)(g_outputs_per_tx > 1 ? id % g_outputs_per_tx : id & 3);
}

void MakeOutput(uint8_t out[PM_OUTPUT_SIZE], uint64_t id) {
  memset(out, 0, PM_OUTPUT_SIZE);
  out[0] = 1;
  uint64_t owner = Mix(id % 100003);  // owners repeat
  memcpy(out + 1, &owner, 8);
  memcpy(out + 33, &id, 8);
}

// ---- ck_hs -------------------------------------------------------------------

struct CkEntry {
  uint8_t key[kKeySize];  // txid || index (host order)
  uint8_t output[PM_OUTPUT_SIZE];
};

std::atomic<size_t> g_ck_bytes{0};

void* CkMalloc(size_t n) {
  void* p = malloc(n);
  if (p) g_ck_bytes += malloc_usable_size(p);
  return p;
}
void CkFree(void* p, size_t, bool) {
  if (!p) return;
  g_ck_bytes -= malloc_usable_size(p);
  free(p);
}
void* CkRealloc(void* p, size_t, size_t n, bool) {
  if (p) g_ck_bytes -= malloc_usable_size(p);
  void* q = realloc(p, n);
  if (q) g_ck_bytes += malloc_usable_size(q);
  return q;
}
struct ck_malloc g_ck_alloc = {CkMalloc, CkRealloc, CkFree};

unsigned long CkHash(const void* object, unsigned long seed) {
  return XXH3_64bits_withSeed(object, kKeySize, seed);
}
bool CkCompare(const void* a, const void* b) { return memcmp(a, b, kKeySize) == 0; }

struct CkTable {
  ck_hs_t hs;
  std::vector<CkEntry*> removed;  // freed at the end (readers may hold them)
  explicit CkTable(size_t n) {
    ck_hs_init(&hs, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, CkHash, CkCompare, &g_ck_alloc, n,
               0x5eedull);
  }
  ~CkTable() {
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void* obj;
    std::vector<void*> all;
    while (ck_hs_next(&hs, &it, &obj)) all.push_back(obj);
    for (void* p : all) CkFree(p, 0, false);
    for (CkEntry* p : removed) CkFree(p, 0, false);
    ck_hs_destroy(&hs);
  }
  static void KeyBytes(uint8_t kb[kKeySize], const Key& k) {
    memcpy(kb, k.txid, 32);
    memcpy(kb + 32, &k.index, 2);
  }
  bool Insert(const Key& k, const uint8_t* out) {
    auto* e = static_cast<CkEntry*>(CkMalloc(sizeof(CkEntry)));
    KeyBytes(e->key, k);
    memcpy(e->output, out, PM_OUTPUT_SIZE);
    if (!ck_hs_put(&hs, CK_HS_HASH(&hs, CkHash, e->key), e)) {
      CkFree(e, 0, false);
      return false;
    }
    return true;
  }
  bool Lookup(const Key& k, uint8_t* out) {
    uint8_t kb[kKeySize];
    KeyBytes(kb, k);
    auto* e = static_cast<CkEntry*>(ck_hs_get(&hs, CK_HS_HASH(&hs, CkHash, kb), kb));
    if (!e) return false;
    memcpy(out, e->output, PM_OUTPUT_SIZE);
    return true;
  }
  bool Remove(const Key& k, uint8_t* out) {
    uint8_t kb[kKeySize];
    KeyBytes(kb, k);
    auto* e = static_cast<CkEntry*>(ck_hs_remove(&hs, CK_HS_HASH(&hs, CkHash, kb), kb));
    if (!e) return false;
    memcpy(out, e->output, PM_OUTPUT_SIZE);
    removed.push_back(e);  // single writer
    return true;
  }
  size_t Count() { return ck_hs_count(&hs); }
  size_t Memory() { return g_ck_bytes.load(); }
};

// ---- mutex + open addressing -------------------------------------------------------

struct MutexTable {
  struct Slot {
    uint8_t state;  // 0 empty, 1 live, 2 tomb
    uint8_t key[kKeySize];
    uint8_t output[PM_OUTPUT_SIZE];
  };
  std::mutex mu;
  Slot* slots = nullptr;
  size_t cap = 0, used = 0, live = 0;
  explicit MutexTable(size_t n) {
    size_t c = 1024;
    while (c * 17 / 20 < n) c *= 2;
    Resize(c);
  }
  ~MutexTable() { free(slots); }
  static uint64_t Hash(const uint8_t* kb) { return XXH3_64bits_withSeed(kb, kKeySize, 0x5eed); }
  void Resize(size_t c) {
    Slot* old = slots;
    size_t oldcap = cap;
    slots = static_cast<Slot*>(calloc(c, sizeof(Slot)));
    cap = c;
    used = live = 0;
    for (size_t i = 0; i < oldcap; i++)
      if (old[i].state == 1) Place(old[i].key, old[i].output);
    free(old);
  }
  void Place(const uint8_t* kb, const uint8_t* out) {
    size_t i = Hash(kb) & (cap - 1);
    while (slots[i].state != 0) i = (i + 1) & (cap - 1);
    slots[i].state = 1;
    memcpy(slots[i].key, kb, kKeySize);
    memcpy(slots[i].output, out, PM_OUTPUT_SIZE);
    used++;
    live++;
  }
  Slot* Find(const uint8_t* kb) {
    for (size_t i = Hash(kb) & (cap - 1);; i = (i + 1) & (cap - 1)) {
      Slot* s = &slots[i];
      if (s->state == 0) return nullptr;
      if (s->state == 1 && memcmp(s->key, kb, kKeySize) == 0) return s;
    }
  }
  bool Insert(const Key& k, const uint8_t* out) {
    uint8_t kb[kKeySize];
    CkTable::KeyBytes(kb, k);
    std::lock_guard<std::mutex> g(mu);
    // probe once: a duplicate fails; else reuse the first tombstone seen
    Slot* tomb = nullptr;
    for (size_t i = Hash(kb) & (cap - 1);; i = (i + 1) & (cap - 1)) {
      Slot* s = &slots[i];
      if (s->state == 0) break;
      if (s->state == 2 && !tomb) tomb = s;
      if (s->state == 1 && memcmp(s->key, kb, kKeySize) == 0) return false;
    }
    if (tomb) {
      tomb->state = 1;
      memcpy(tomb->key, kb, kKeySize);
      memcpy(tomb->output, out, PM_OUTPUT_SIZE);
      live++;
      return true;
    }
    if ((used + 1) * 20 > cap * 17) Resize(live * 10 > cap * 8 ? cap * 2 : cap);
    Place(kb, out);
    return true;
  }
  bool Lookup(const Key& k, uint8_t* out) {
    uint8_t kb[kKeySize];
    CkTable::KeyBytes(kb, k);
    std::lock_guard<std::mutex> g(mu);
    Slot* s = Find(kb);
    if (!s) return false;
    memcpy(out, s->output, PM_OUTPUT_SIZE);
    return true;
  }
  bool Remove(const Key& k, uint8_t* out) {
    uint8_t kb[kKeySize];
    CkTable::KeyBytes(kb, k);
    std::lock_guard<std::mutex> g(mu);
    Slot* s = Find(kb);
    if (!s) return false;
    memcpy(out, s->output, PM_OUTPUT_SIZE);
    s->state = 2;
    live--;
    return true;
  }
  size_t Count() {
    std::lock_guard<std::mutex> g(mu);
    return live;
  }
  size_t Memory() {
    std::lock_guard<std::mutex> g(mu);
    return malloc_usable_size(slots);
  }
};

// ---- the world: one table at a time ---------------------------------------------------

enum Impl { kOurs = 0, kCk = 1, kMutex = 2 };
const char* kImplName[] = {"ours", "ck_hs", "mutex"};

constexpr uint64_t kFreshBase = 1ull << 40;   // fresh key numbers start here
constexpr uint64_t kThreadStride = 1ull << 32;
constexpr uint64_t kPermMul = 982451653ull;   // prime: a permutation of [0, n)

struct World {
  Impl impl;
  size_t n;
  pm_utxo_table* ours = nullptr;
  CkTable* ck = nullptr;
  MutexTable* mx = nullptr;
  uint64_t fresh_next = kFreshBase;  // first fresh number of the next run
  uint64_t perm_next = 0;            // permutation position of a run's first removal
  // written by the threads of one run, read by its teardown
  uint64_t run_fresh = 0, run_perm = 0;
  uint64_t done[8] = {};

  bool Insert(const Key& k, const uint8_t* out) {
    switch (impl) {
      case kOurs: return pm_utxo_table_insert(ours, k.txid, k.index, out) == PM_OK;
      case kCk: return ck->Insert(k, out);
      default: return mx->Insert(k, out);
    }
  }
  bool Lookup(const Key& k, uint8_t* out) {
    switch (impl) {
      case kOurs: return pm_utxo_table_lookup(ours, k.txid, k.index, out) == 1;
      case kCk: return ck->Lookup(k, out);
      default: return mx->Lookup(k, out);
    }
  }
  bool Remove(const Key& k, uint8_t* out) {
    switch (impl) {
      case kOurs: return pm_utxo_table_spend(ours, k.txid, k.index, out) == 1;
      case kCk: return ck->Remove(k, out);
      default: return mx->Remove(k, out);
    }
  }
  size_t Count() {
    switch (impl) {
      case kOurs: return pm_utxo_table_count(ours);
      case kCk: return ck->Count();
      default: return mx->Count();
    }
  }
  size_t Memory() {
    switch (impl) {
      case kOurs: return pm_utxo_table_memory(ours);
      case kCk: return ck->Memory();
      default: return mx->Memory();
    }
  }
  uint64_t Perm(uint64_t pos) const { return (pos % n) * kPermMul % n; }
  void Quiesce() {
    if (impl == kOurs) pm_utxo_table_reclaim(ours);
  }
  ~World() {
    pm_utxo_table_destroy(ours);
    delete ck;
    delete mx;
  }
};

World* g_world = nullptr;
bool g_build_failed = false;

void EnsureWorld(Impl impl, size_t n) {
  if (g_world && g_world->impl == impl && g_world->n == n) return;
  delete g_world;
  malloc_trim(0);  // give the previous table's memory back before the next
  g_world = new World;
  World& w = *g_world;
  w.impl = impl;
  w.n = n;
  if (impl == kOurs) {
    if (pm_utxo_table_create(&w.ours, n) != PM_OK) g_build_failed = true;
  } else if (impl == kCk) {
    w.ck = new CkTable(n);
  } else {
    w.mx = new MutexTable(n);
  }
  auto start = std::chrono::steady_clock::now();
  Key k;
  uint8_t out[PM_OUTPUT_SIZE];
  for (uint64_t id = 0; id < n && !g_build_failed; id++) {
    MakeKey(&k, id);
    MakeOutput(out, id);
    if (!w.Insert(k, out)) g_build_failed = true;
  }
  w.Quiesce();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fprintf(stderr, "built %s with %zu entries in %.1f s: %.1f bytes per entry", kImplName[impl],
          w.Count(), secs, (double)w.Memory() / (double)(w.Count() ? w.Count() : 1));
  if (impl == kOurs) {
    pm_utxo_stats s;
    pm_utxo_table_stats(w.ours, &s);
    fprintf(stderr, " (%zu cells, memory from %s)", s.cells, s.backend);
  }
  fprintf(stderr, "\n");
}

// Args: {n, impl, threads-role}.  role 0: all threads do the operation;
// role 1: thread 0 does it, the others look up.
void SetupRun(const benchmark::State& st) {
  EnsureWorld((Impl)st.range(1), (size_t)st.range(0));
  g_world->run_fresh = g_world->fresh_next;
  g_world->run_perm = g_world->perm_next;
  memset(g_world->done, 0, sizeof g_world->done);
}

void SetCommonCounters(benchmark::State& st, uint64_t ops, uint64_t reads) {
  st.SetItemsProcessed((int64_t)ops);
  if (reads)
    st.counters["reader_lookups"] = benchmark::Counter((double)reads, benchmark::Counter::kIsRate);
  if (st.thread_index() == 0)
    st.counters["B_per_utxo"] =
        (double)g_world->Memory() / (double)(g_world->Count() ? g_world->Count() : 1);
}

// A thread's lookups of present keys until the run ends (reader role).
uint64_t ReaderLoop(benchmark::State& st) {
  uint64_t r = Mix(1000 + (uint64_t)st.thread_index()), n = 0;
  Key k;
  uint8_t out[PM_OUTPUT_SIZE];
  for (auto _ : st) {
    r = Mix(r);
    MakeKey(&k, r % g_world->n);
    benchmark::DoNotOptimize(g_world->Lookup(k, out));
    n++;
  }
  return n;
}

bool IsWriter(const benchmark::State& st) {
  return st.range(2) == 0 || st.thread_index() == 0;
}

void BM_Lookup(benchmark::State& st) {
  if (g_build_failed) return st.SkipWithError("could not build the table");
  uint64_t r = Mix(7 + (uint64_t)st.thread_index()), ops = 0, miss = 0;
  Key k;
  uint8_t out[PM_OUTPUT_SIZE];
  for (auto _ : st) {
    r = Mix(r);
    MakeKey(&k, r % g_world->n);
    miss += !g_world->Lookup(k, out);
    benchmark::DoNotOptimize(out);
    ops++;
  }
  if (miss) st.SkipWithError("lookup missed a present key");
  SetCommonCounters(st, ops, 0);
}

void BM_LookupBatch(benchmark::State& st) {
  if (g_build_failed) return st.SkipWithError("could not build the table");
  constexpr size_t B = 32;
  uint64_t r = Mix(9 + (uint64_t)st.thread_index()), ops = 0, miss = 0;
  Key k;
  pm_outpoint keys[B];
  uint8_t outs[B][PM_OUTPUT_SIZE];
  uint8_t found[B];
  for (auto _ : st) {
    for (size_t j = 0; j < B; j++) {
      r = Mix(r);
      MakeKey(&k, r % g_world->n);
      memcpy(keys[j].txid, k.txid, 32);
      keys[j].index = k.index;
    }
    pm_utxo_table_lookup_batch(g_world->ours, B, keys, outs, found);
    for (size_t j = 0; j < B; j++) miss += !found[j];
    benchmark::DoNotOptimize(outs);
    ops += B;
  }
  if (miss) st.SkipWithError("batch lookup missed a present key");
  SetCommonCounters(st, ops, 0);
}

void BM_Insert(benchmark::State& st) {
  if (g_build_failed) return st.SkipWithError("could not build the table");
  if (!IsWriter(st)) return SetCommonCounters(st, 0, ReaderLoop(st));
  uint64_t base = g_world->run_fresh + (uint64_t)st.thread_index() * kThreadStride, i = 0,
           fail = 0;
  Key k;
  uint8_t out[PM_OUTPUT_SIZE];
  for (auto _ : st) {
    MakeKey(&k, base + i);
    MakeOutput(out, base + i);
    fail += !g_world->Insert(k, out);
    i++;
  }
  g_world->done[st.thread_index()] = i;
  if (fail) st.SkipWithError("insert failed");
  SetCommonCounters(st, i, 0);
}

// Undo the run's inserts (untimed).
void TeardownInsert(const benchmark::State& st) {
  Key k;
  uint8_t out[PM_OUTPUT_SIZE];
  for (int t = 0; t < st.threads(); t++) {
    uint64_t base = g_world->run_fresh + (uint64_t)t * kThreadStride;
    for (uint64_t i = 0; i < g_world->done[t]; i++) {
      MakeKey(&k, base + i);
      g_world->Remove(k, out);
    }
  }
  g_world->fresh_next += (uint64_t)st.threads() * kThreadStride;
  g_world->Quiesce();
}

void BM_Remove(benchmark::State& st) {
  if (g_build_failed) return st.SkipWithError("could not build the table");
  if (!IsWriter(st)) return SetCommonCounters(st, 0, ReaderLoop(st));
  int writers = st.range(2) == 0 ? st.threads() : 1;
  uint64_t i = 0, fail = 0;
  Key k;
  uint8_t out[PM_OUTPUT_SIZE];
  for (auto _ : st) {
    uint64_t pos = g_world->run_perm + i * (uint64_t)writers + (uint64_t)st.thread_index();
    MakeKey(&k, g_world->Perm(pos));
    fail += !g_world->Remove(k, out);
    i++;
  }
  g_world->done[st.thread_index()] = i;
  if (fail) st.SkipWithError("remove missed a present key");
  SetCommonCounters(st, i, 0);
}

// Put the removed keys back (untimed).
void TeardownRemove(const benchmark::State& st) {
  int writers = st.range(2) == 0 ? st.threads() : 1;
  Key k;
  uint8_t out[PM_OUTPUT_SIZE];
  for (int t = 0; t < writers; t++)
    for (uint64_t i = 0; i < g_world->done[t]; i++) {
      uint64_t id = g_world->Perm(g_world->run_perm + i * (uint64_t)writers + (uint64_t)t);
      MakeKey(&k, id);
      MakeOutput(out, id);
      g_world->Insert(k, out);
    }
  g_world->Quiesce();
}

// Validation-like: look up an input, spend it, add two outputs. The table
// grows by one entry per iteration (and is put back after the run).
void BM_Mix(benchmark::State& st) {
  if (g_build_failed) return st.SkipWithError("could not build the table");
  if (!IsWriter(st)) return SetCommonCounters(st, 0, ReaderLoop(st));
  int writers = st.range(2) == 0 ? st.threads() : 1;
  uint64_t base = g_world->run_fresh + (uint64_t)st.thread_index() * kThreadStride, i = 0,
           fail = 0;
  Key k;
  uint8_t out[PM_OUTPUT_SIZE];
  for (auto _ : st) {
    uint64_t pos = g_world->run_perm + i * (uint64_t)writers + (uint64_t)st.thread_index();
    MakeKey(&k, g_world->Perm(pos));
    fail += !g_world->Lookup(k, out);
    fail += !g_world->Remove(k, out);
    MakeKey(&k, base + 2 * i);
    MakeOutput(out, base + 2 * i);
    fail += !g_world->Insert(k, out);
    MakeKey(&k, base + 2 * i + 1);
    fail += !g_world->Insert(k, out);
    i++;
  }
  g_world->done[st.thread_index()] = i;
  if (fail) st.SkipWithError("mix: an operation failed");
  SetCommonCounters(st, i, 0);
}

// Put the table back as it was (untimed): the spent inputs return, the
// new outputs go, so every run and repetition starts from the same table.
void TeardownMix(const benchmark::State& st) {
  int writers = st.range(2) == 0 ? st.threads() : 1;
  Key k;
  uint8_t out[PM_OUTPUT_SIZE];
  for (int t = 0; t < writers; t++) {
    uint64_t base = g_world->run_fresh + (uint64_t)t * kThreadStride;
    for (uint64_t i = 0; i < g_world->done[t]; i++) {
      uint64_t id = g_world->Perm(g_world->run_perm + i * (uint64_t)writers + (uint64_t)t);
      MakeKey(&k, id);
      MakeOutput(out, id);
      g_world->Insert(k, out);
      MakeKey(&k, base + 2 * i);
      g_world->Remove(k, out);
      MakeKey(&k, base + 2 * i + 1);
      g_world->Remove(k, out);
    }
  }
  g_world->fresh_next += (uint64_t)st.threads() * kThreadStride;
  g_world->Quiesce();
}

void NoTeardown(const benchmark::State&) { g_world->Quiesce(); }

// ---- a reporter that also prints ours / reference ----------------------------------------

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  explicit RatioReporter(OutputOptions o) : ConsoleReporter(o) {}
  struct Figures {
    double rate = 0;       // operations per second of wall time
    double cpu_ns = 0;     // CPU time per iteration per thread
  };
  std::map<std::string, Figures> fig;  // by benchmark name without aggregate suffix
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.error_occurred) continue;
      // one figure per benchmark: the median when there are repetitions
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name != "median") continue;
      auto it = r.counters.find("items_per_second");
      if (it == r.counters.end()) continue;
      Figures f;
      f.rate = it->second.value;
      f.cpu_ns = r.GetAdjustedCPUTime() / benchmark::GetTimeUnitMultiplier(r.time_unit) * 1e9;
      if (r.run_name.str().find("batch32") != std::string::npos) f.cpu_ns /= 32;
      fig[r.run_name.str()] = f;
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

struct Spec {
  const char* op;
  void (*fn)(benchmark::State&);
  void (*teardown)(const benchmark::State&);
  bool fixed_iterations;
};

std::string Name(const char* op, Impl impl, size_t n, const char* variant) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s/%s/%zuM%s", op, kImplName[impl], n / 1000000, variant);
  return buf;
}

std::vector<std::string> g_rows;  // for the summary: op/size/variant keys

void Register(size_t n) {
  const Spec specs[] = {
      {"lookup", BM_Lookup, NoTeardown, false},
      {"insert", BM_Insert, TeardownInsert, true},
      {"remove", BM_Remove, TeardownRemove, true},
      {"mix", BM_Mix, TeardownMix, true},
  };
  // Fixed iteration counts keep the table near its nominal size.
  int64_t iters = (int64_t)(n >= 10000000 ? n / 50 : n / 8);
  for (int impl = 0; impl < 3; impl++) {
    for (const Spec& s : specs) {
      // (variant name, threads, role)
      struct V { const char* name; int threads; int role; };
      std::vector<V> vs = {{"/1w", 1, 0}};
      if (impl == kOurs) vs.push_back({"/2w", 2, 0});
      if (impl == kMutex) vs.push_back({"/2w", 2, 0});
      if (std::string(s.op) != "lookup" || impl == kCk) vs.push_back({"/1w+1r", 2, 1});
      if (std::string(s.op) == "lookup") {
        vs = {{"/1t", 1, 0}, {"/2t", 2, 0}};
      }
      for (const V& v : vs) {
        std::string name = Name(s.op, (Impl)impl, n, v.name);
        auto* b = benchmark::RegisterBenchmark(name.c_str(), s.fn)
                      ->Args({(int64_t)n, impl, v.role})
                      ->Threads(v.threads)
                      ->UseRealTime()
                      ->Setup(SetupRun)
                      ->Teardown(s.teardown);
        if (s.fixed_iterations) b->Iterations(iters);
        if (impl == kOurs) {
          char row[128];
          snprintf(row, sizeof row, "%s|%zu|%s", s.op, n, v.name);
          g_rows.push_back(row);
        }
        if (impl == kOurs && std::string(s.op) == "lookup") {
          std::string bn = Name("batch32", kOurs, n, v.name);
          char row[128];
          snprintf(row, sizeof row, "batch32|%zu|%s", n, v.name);
          g_rows.push_back(row);
          benchmark::RegisterBenchmark(bn.c_str(), BM_LookupBatch)
              ->Args({(int64_t)n, impl, 0})
              ->Threads(v.threads)
              ->UseRealTime()
              ->Setup(SetupRun)
              ->Teardown(NoTeardown);
        }
      }
    }
  }
}

void PrintSummary(const RatioReporter& rep) {
  auto get = [&](const std::string& prefix) -> RatioReporter::Figures {
    for (const auto& kv : rep.fig)
      if (kv.first.compare(0, prefix.size(), prefix) == 0) return kv.second;
    return RatioReporter::Figures();
  };
  auto cell = [](double v, const char* fmt) {
    static char buf[16][16];
    static int k = 0;
    char* b = buf[k++ % 16];
    if (v > 0)
      snprintf(b, 16, fmt, v);
    else
      snprintf(b, 16, "-");
    return b;
  };
  printf("\nsummary: Mops/s = operations per second of wall time (the measured operation\n"
         "only); cpu = CPU ns per operation and thread (not meaningful for 1w+1r rows, whose\n"
         "reader thread is charged too); ratio = reference / ours, > 1 when ours is faster\n");
  printf("%-7s %4s %-6s | %6s %6s | %6s %6s %5s %5s | %6s %6s %5s %5s\n", "op", "size", "thr",
         "ours", "cpu", "ck_hs", "cpu", "rate", "cpu", "mutex", "cpu", "rate", "cpu");
  for (const std::string& row : g_rows) {
    char op[32], variant[16];
    size_t n;
    if (sscanf(row.c_str(), "%31[^|]|%zu|%15s", op, &n, variant) != 3) continue;
    auto o = get(Name(op, kOurs, n, variant) + "/");
    auto c = get(Name(op, kCk, n, variant) + "/");
    auto m = get(Name(op, kMutex, n, variant) + "/");
    printf("%-7s %3zuM %-6s | %6s %6s | %6s %6s %5s %5s | %6s %6s %5s %5s\n", op, n / 1000000,
           variant + 1, cell(o.rate / 1e6, "%.2f"), cell(o.cpu_ns, "%.0f"),
           cell(c.rate / 1e6, "%.2f"), cell(c.cpu_ns, "%.0f"),
           cell(o.rate > 0 && c.rate > 0 ? o.rate / c.rate : 0, "%.2f"),
           cell(o.cpu_ns > 0 && c.cpu_ns > 0 ? c.cpu_ns / o.cpu_ns : 0, "%.2f"),
           cell(m.rate / 1e6, "%.2f"), cell(m.cpu_ns, "%.0f"),
           cell(o.rate > 0 && m.rate > 0 ? o.rate / m.rate : 0, "%.2f"),
           cell(o.cpu_ns > 0 && m.cpu_ns > 0 ? m.cpu_ns / o.cpu_ns : 0, "%.2f"));
  }
}

}  // namespace

int main(int argc, char** argv) {
  // See the header comment: let dlopen give the table its jemalloc arena.
  if (!getenv("PM_BENCH_NO_REEXEC") && !getenv("PM_BENCH_REEXECED")) {
    setenv("PM_BENCH_REEXECED", "1", 1);
    setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=16384", 1);
    execv("/proc/self/exe", argv);
  }
  // Sizes in millions: PM_BENCH_SIZES="1,20" (default 1), plus 50 with
  // PM_BENCH_LARGE=1.
  if (const char* k = getenv("PM_BENCH_OUTPUTS_PER_TX"))
    if (atol(k) > 0) g_outputs_per_tx = (uint64_t)atol(k);
  const char* sizes = getenv("PM_BENCH_SIZES");
  std::string list = sizes && *sizes ? sizes : "1";
  for (size_t pos = 0; pos < list.size();) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    long m = atol(list.substr(pos, comma - pos).c_str());
    if (m > 0) Register((size_t)m * 1000000);
    pos = comma + 1;
  }
  if (getenv("PM_BENCH_LARGE") && atoi(getenv("PM_BENCH_LARGE")) > 0) Register(50000000);
  benchmark::Initialize(&argc, argv);
  RatioReporter rep(isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_Defaults
                                          : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&rep);
  PrintSummary(rep);
  delete g_world;
  benchmark::Shutdown();
  return 0;
}
