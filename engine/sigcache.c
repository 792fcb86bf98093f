/*
 * sigcache.c — the signature cache (contract in sigcache.h).
 *
 * Structure. A fixed table of sets of PM_SIGCACHE_WAYS (8) fingerprints
 * of 32 bytes. A fingerprint is SHA256(salt64 || chain_id || key || msg ||
 * sig): the salt is a per-engine secret, so nobody can grind signatures
 * that land in one set and flush what a node admitted (Core's cuckoocache
 * salts its hashes for the same reason). The set is chosen from the
 * fingerprint's first word by a multiply-shift (any number of sets, so the
 * whole byte budget is used, not the power of two below it). The set
 * stores its fingerprints word-major: word 0 of all eight ways shares one
 * 64-byte line, so a miss reads one line of fingerprints; the other three
 * words are read only when word 0 matches. All 256 bits are compared: a
 * hit is a fingerprint some insert wrote whole.
 *
 * Size. 256 bytes of fingerprints and a 16-byte head per set: 34 bytes per
 * entry. The default (pm_config_default) is 32 MiB, about 987k
 * signatures, as Core's default -maxsigcachesize; 0 disables the cache.
 * The table is an anonymous mapping (transparent huge pages advised): its
 * pages cost nothing until used, so an engine that only replays (never
 * inserts) does not pay for it.
 *
 * Eviction. An insert into a full set evicts, in this order: a way a
 * block's lookup marked collectable (that signature is in a connected
 * block and will not be looked up again, the analogue of Core erasing
 * entries a block used), else the oldest way (a per-set hand: FIFO, the
 * clock without reference bits, so a plain hit never writes and readers
 * stay read-only). Memory never grows; the oldest admissions go first,
 * which suits a mempool whose transactions are mined roughly in order.
 *
 * Concurrency. Each set has a sequence word (a seqlock), every other word
 * is an atomic, so the table is data-race free (TSan-clean) without fences:
 *  - an insert takes the set by a CAS of the sequence from even to odd
 *    (acquire); if another insert holds it, this one is dropped (a cache
 *    may forget); it writes the fingerprint with release stores and
 *    releases the set by storing sequence + 2 (release);
 *  - a lookup reads the sequence (acquire; odd: miss), the fingerprint
 *    words (acquire), then the sequence again: the same even value means
 *    no insert changed the set meanwhile. An acquire load that sees a
 *    word of a concurrent insert synchronises with its release store, so
 *    the second read of the sequence sees the odd value: a torn
 *    fingerprint is never taken for a hit.
 * Lookups never wait and never write, except the collectable bit a
 * block's hit sets (an atomic OR; racing an insert it can only mark the
 * new entry early, which costs a verification later, never correctness).
 */
#include "sigcache_impl.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* 64 secret bytes; without getrandom (a very old kernel), the clock and
 * addresses: weaker, but the salt only spreads entries over sets (a
 * 256-bit fingerprint needs no secret to be collision-free). */
static void fill_salt(uint8_t salt[64], const void *self)
{
    size_t got = 0;
    while (got < 64) {
        ssize_t r = getrandom(salt + got, 64 - got, 0);
        if (r > 0)
            got += (size_t)r;
        else if (r < 0 && errno != EINTR)
            break;
    }
    if (got == 64)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t seed[4] = {(uint64_t)ts.tv_sec, (uint64_t)ts.tv_nsec, (uint64_t)(uintptr_t)self,
                        (uint64_t)getpid()};
    for (size_t i = got; i < 64; i++)
        salt[i] = (uint8_t)(seed[i % 4] >> (8 * (i / 4 % 8)));
}

pm_status pm_sigcache_create(pm_sigcache **out, size_t max_bytes, const uint8_t chain_id[32],
                             const uint8_t *salt)
{
    *out = NULL;
    if (max_bytes == 0)
        return PM_OK;
    size_t nsets = max_bytes / SET_BYTES;
    if (nsets == 0)
        nsets = 1;
    if (nsets > UINT32_MAX) /* the multiply-shift takes 32 bits */
        nsets = UINT32_MAX;
    pm_sigcache *c = calloc(1, sizeof *c);
    if (!c)
        return PM_ERR_NOMEM;
    uint8_t secret[64];
    if (salt)
        memcpy(secret, salt, 64);
    else
        fill_salt(secret, c);
    c->salt = pm_hash_prefix_create(secret);
    memset(secret, 0, sizeof secret);
    c->map_size = nsets * SET_BYTES;
    c->map = mmap(NULL, c->map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c->map == MAP_FAILED)
        c->map = NULL;
    else
        /* Inserts land on random pages: with 4 KiB pages a filling cache
         * takes a zero-page read fault then a copy-on-write fault (and a
         * TLB shootdown to the workers) per page, which cost pack mode
         * 10-20%; 2 MiB pages make that a few faults. Advice only: where
         * THP is off it changes nothing. */
        madvise(c->map, c->map_size, MADV_HUGEPAGE);
    if (!c->salt || !c->map) {
        pm_sigcache_destroy(c);
        return PM_ERR_NOMEM;
    }
    /* Zero pages: every way empty, every sequence even. */
    c->nsets = nsets;
    c->fps = c->map;
    c->heads = (set_head *)(c->fps + nsets);
    memcpy(c->chain_id, chain_id, 32);
    *out = c;
    return PM_OK;
}

void pm_sigcache_destroy(pm_sigcache *c)
{
    if (!c)
        return;
    if (c->map)
        munmap(c->map, c->map_size);
    pm_hash_prefix_destroy(c->salt);
    free(c);
}

const uint8_t *pm_sigcache_chain_id(const pm_sigcache *c)
{
    return c->chain_id;
}

int pm_sigcache_fingerprint(const pm_sigcache *c, pm_hasher *h, uint8_t fp[32],
                            const uint8_t chain_id[32], const uint8_t key[32],
                            const uint8_t msg32[32], const uint8_t sig64[64])
{
    uint8_t in[160];
    memcpy(in, chain_id, 32);
    memcpy(in + 32, key, 32);
    memcpy(in + 64, msg32, 32);
    memcpy(in + 96, sig64, 64);
    return pm_hash_prefixed(h, fp, c->salt, in, sizeof in, NULL, 0);
}

static size_t set_of(const pm_sigcache *c, uint64_t word0)
{
    return (size_t)(((word0 >> 32) * (uint64_t)c->nsets) >> 32);
}

/* An all-zero fingerprint would read as an empty way: it is never stored
 * (a 2^-256 chance, handled so that no input is special). */
static int load_fp(uint64_t w[4], const uint8_t fp[32])
{
    memcpy(w, fp, 32);
    return (w[0] | w[1] | w[2] | w[3]) != 0;
}

/* The way of `set` holding w, or -1. Relaxed or acquire loads as the
 * caller needs. */
static int find_way(const set_fps *f, const uint64_t w[4], memory_order order)
{
    for (int way = 0; way < WAYS; way++) {
        if (atomic_load_explicit(&f->word[0][way], order) != w[0])
            continue;
        int k = 1;
        while (k < 4 && atomic_load_explicit(&f->word[k][way], order) == w[k])
            k++;
        if (k == 4)
            return way;
    }
    return -1;
}

int pm_sigcache_lookup(pm_sigcache *c, const uint8_t fp[32], int collect)
{
    uint64_t w[4];
    if (!load_fp(w, fp))
        return 0;
    size_t s = set_of(c, w[0]);
    set_head *h = &c->heads[s];
    uint32_t seq = atomic_load_explicit(&h->seq, memory_order_acquire);
    if (seq & 1)
        return 0;
    int way = find_way(&c->fps[s], w, memory_order_acquire);
    if (way < 0 || atomic_load_explicit(&h->seq, memory_order_relaxed) != seq)
        return 0;
    if (collect)
        atomic_fetch_or_explicit(&h->collect, 1u << way, memory_order_relaxed);
    return 1;
}

int pm_sigcache_insert(pm_sigcache *c, const uint8_t fp[32])
{
    uint64_t w[4];
    if (!load_fp(w, fp))
        return 0;
    size_t s = set_of(c, w[0]);
    set_head *h = &c->heads[s];
    set_fps *f = &c->fps[s];
    uint32_t seq = atomic_load_explicit(&h->seq, memory_order_relaxed);
    if ((seq & 1) ||
        !atomic_compare_exchange_strong_explicit(&h->seq, &seq, seq + 1, memory_order_acquire,
                                                 memory_order_relaxed))
        return 0;
    int way = find_way(f, w, memory_order_relaxed);
    int written = 0;
    if (way >= 0) {
        /* Admitted again: it is wanted, not collectable. */
        atomic_fetch_and_explicit(&h->collect, ~(1u << way), memory_order_relaxed);
    } else {
        for (int k = 0; k < WAYS && way < 0; k++)
            if (way_empty(f, k))
                way = k;
        uint32_t collect = atomic_load_explicit(&h->collect, memory_order_relaxed) &
                           ((1u << WAYS) - 1);
        if (way < 0 && collect)
            way = __builtin_ctz(collect);
        if (way < 0) {
            uint32_t hand = atomic_load_explicit(&h->hand, memory_order_relaxed);
            way = (int)(hand % WAYS);
            atomic_store_explicit(&h->hand, (hand + 1) % WAYS, memory_order_relaxed);
        }
        for (int k = 0; k < 4; k++)
            atomic_store_explicit(&f->word[k][way], w[k], memory_order_release);
        atomic_fetch_and_explicit(&h->collect, ~(1u << way), memory_order_relaxed);
        written = 1;
    }
    atomic_store_explicit(&h->seq, seq + 2, memory_order_release);
    if (written && !atomic_load_explicit(&c->used, memory_order_relaxed))
        atomic_store_explicit(&c->used, 1, memory_order_relaxed);
    return written;
}

int pm_sigcache_is_empty(const pm_sigcache *c)
{
    return !atomic_load_explicit(&c->used, memory_order_relaxed);
}
