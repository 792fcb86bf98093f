/*
 * test_hmap.c — the one hash map (common/hmap.h), against a plain array:
 *  - random inserts and removals (backward shift), with growth, and with
 *    hash functions that collide on purpose (every key on one home slot,
 *    every key with the same hash bits): every present key is found, no
 *    absent one is, the count is right;
 *  - swap-remove through hmap_set keeps every key found;
 *  - a map over a caller's buffer fills to its limit and then refuses to
 *    grow, never touching memory past the buffer;
 *  - hmap_claim from two threads: each key ends up once.
 */
#include "hmap.h"
#include "testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 20000

/* The caller's side: keys dense, swap-removed. */
typedef struct {
    uint64_t keys[MAX_KEYS];
    size_t n;
    hmap m;
    int mode; /* 0 mixed, 1 one home slot, 2 one tag */
} model;

static uint64_t hash_of(const model *md, uint64_t k)
{
    uint64_t h = k * 0x9E3779B97F4A7C15u;
    if (md->mode == 1)
        return h & 0xffffffffu; /* tag 0: all on slot 0 */
    if (md->mode == 2)
        return (uint64_t)0x12345678u << 32 | (h & 0xffffffffu);
    return h;
}

static uint32_t find(const model *md, uint64_t k, hmap_cursor *c)
{
    *c = hmap_probe(&md->m, hash_of(md, k));
    for (uint32_t it; (it = hmap_next(&md->m, c)) != HMAP_NONE;)
        if (md->keys[it] == k)
            return it;
    return HMAP_NONE;
}

static void insert(model *md, uint64_t k)
{
    CHECK(hmap_reserve(&md->m, md->n + 1));
    hmap_cursor c;
    if (find(md, k, &c) != HMAP_NONE)
        return;
    md->keys[md->n] = k;
    hmap_put(&md->m, &c, (uint32_t)md->n);
    md->n++;
}

static void remove_key(model *md, uint64_t k)
{
    hmap_cursor c;
    uint32_t it = find(md, k, &c);
    if (it == HMAP_NONE)
        return;
    hmap_erase(&md->m, &c);
    size_t last = --md->n;
    if (it != last) {
        CHECK(find(md, md->keys[last], &c) == last);
        hmap_set(&md->m, &c, it);
        md->keys[it] = md->keys[last];
    }
}

static void check_model(const model *md, uint64_t key_space)
{
    CHECK(md->m.count == md->n);
    for (size_t i = 0; i < md->n; i++) {
        hmap_cursor c;
        CHECKF(find(md, md->keys[i], &c) == i, "key %zu lost", i);
    }
    size_t present = 0;
    for (uint64_t k = 0; k < key_space; k++) {
        hmap_cursor c;
        present += find(md, k, &c) != HMAP_NONE;
    }
    CHECK(present == md->n);
}

static void test_random_against_array(int mode, size_t ops, uint64_t key_space)
{
    static model md;
    memset(&md, 0, sizeof md);
    md.mode = mode;
    CHECK(hmap_init(&md.m, 4));
    uint64_t x = 88172645463325252u + (uint64_t)mode;
    for (size_t i = 0; i < ops; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t k = x % key_space;
        if ((x >> 40) % 3 == 0)
            remove_key(&md, k);
        else if (md.n < MAX_KEYS)
            insert(&md, k);
        if (i % (ops / 8) == 0)
            check_model(&md, key_space);
    }
    check_model(&md, key_space);
    /* Empty it: every removal shifts the rest correctly. */
    while (md.n)
        remove_key(&md, md.keys[md.n / 2]);
    check_model(&md, key_space);
    hmap_free(&md.m);
}

static void test_caller_buffer(void)
{
    /* Guard slots past the buffer must stay untouched. */
    hmap_slot buf[HMAP_BUF_SLOTS(12) + 4];
    for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++)
        buf[i] = 0xdeadbeefu;
    static model md;
    memset(&md, 0, sizeof md);
    size_t slots = HMAP_SLOTS_FOR(12);
    CHECK(slots <= HMAP_BUF_SLOTS(12));
    hmap_init_in(&md.m, buf, slots);
    for (uint64_t k = 0; k < 12; k++)
        insert(&md, k * 7);
    check_model(&md, 100);
    CHECK(!hmap_reserve(&md.m, 13)); /* full: a buffer never grows */
    for (size_t i = slots; i < sizeof buf / sizeof buf[0]; i++)
        CHECK(buf[i] == 0xdeadbeefu);
    hmap_free(&md.m); /* the caller's buffer is not freed */
}

typedef struct {
    hmap *m;
    const uint64_t *keys; /* keys[i] for item i; items 0..n-1 twice over */
    size_t n;
    unsigned first;
} claim_job;

static void *claim_all(void *arg)
{
    claim_job *j = arg;
    for (size_t r = 0; r < j->n; r++) {
        uint32_t item = (uint32_t)((r + j->first) % j->n);
        uint64_t k = j->keys[item];
        hmap_cursor c = hmap_probe(j->m, k * 0x9E3779B97F4A7C15u);
        for (;;) {
            uint32_t it;
            int found = 0;
            while ((it = hmap_next(j->m, &c)) != HMAP_NONE)
                if (j->keys[it] == k) {
                    found = 1;
                    break;
                }
            if (found || hmap_claim(j->m, &c, item))
                break;
        }
    }
    return NULL;
}

static void test_concurrent_claim(void)
{
    enum { N = 5000 };
    static uint64_t keys[N];
    for (size_t i = 0; i < N; i++)
        keys[i] = i * 1000003u + 17;
    hmap m;
    CHECK(hmap_init(&m, N));
    claim_job a = {&m, keys, N, 0}, b = {&m, keys, N, N / 2};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, claim_all, &a) == 0);
    claim_all(&b);
    pthread_join(t, NULL);
    size_t used = 0;
    for (size_t i = 0; i <= m.mask; i++)
        used += atomic_load(&m.slot[i]) != 0;
    CHECKF(used == N, "%zu slots for %d keys", used, N);
    hmap_free(&m);
}

int main(void)
{
    test_random_against_array(0, 200000, 30000);
    test_random_against_array(1, 20000, 600);
    test_random_against_array(2, 20000, 600);
    test_caller_buffer();
    test_concurrent_claim();
    return pm_test_finish();
}
