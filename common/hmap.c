/*
 * hmap.c — the cold half of the hash map (hmap.h): making, growing,
 * clearing, and removal. Lookups and inserts are inline in the header:
 * they are on the engine's hot paths.
 */
#include "hmap.h"

#include <stdlib.h>
#include <string.h>

static hmap_slot *slots_alloc(size_t n)
{
    /* All-zero bits are an empty slot. */
    return calloc(n, sizeof(hmap_slot));
}

int hmap_init(hmap *m, size_t n)
{
    size_t cap = hmap_slots_for_(n);
    m->slot = slots_alloc(cap);
    m->mask = m->slot ? cap - 1 : 0;
    m->count = 0;
    m->owned = 1;
    return m->slot != NULL;
}

void hmap_init_in(hmap *m, hmap_slot *buf, size_t slots)
{
    m->slot = buf;
    m->mask = slots - 1;
    m->count = 0;
    m->owned = 0;
    hmap_clear(m);
}

void hmap_free(hmap *m)
{
    if (m->owned)
        free((void *)m->slot);
    memset(m, 0, sizeof *m);
}

void hmap_clear(hmap *m)
{
    if (m->slot)
        memset((void *)m->slot, 0, (m->mask + 1) * sizeof *m->slot);
    m->count = 0;
}

int hmap_grow_(hmap *m, size_t n)
{
    size_t cap = hmap_slots_for_(n);
    if (!m->owned || cap > (size_t)1 << 32)
        return 0;
    hmap_slot *slot = slots_alloc(cap);
    if (!slot)
        return 0;
    /* The stored hash bits give every entry's new home: no key is read. */
    size_t mask = cap - 1;
    for (size_t i = 0; m->slot && i <= m->mask; i++) {
        uint64_t v = atomic_load_explicit(&m->slot[i], memory_order_relaxed);
        if (v == 0)
            continue;
        size_t s = (size_t)(v >> 32) & mask;
        while (atomic_load_explicit(&slot[s], memory_order_relaxed) != 0)
            s = (s + 1) & mask;
        atomic_store_explicit(&slot[s], v, memory_order_relaxed);
    }
    free((void *)m->slot);
    m->slot = slot;
    m->mask = mask;
    return 1;
}

void hmap_erase(hmap *m, const hmap_cursor *c)
{
    /* Backward shift: pull later members of the run into the hole, each
     * one whose home is not cyclically within (hole, j]. */
    size_t hole = c->at;
    for (size_t j = (hole + 1) & m->mask;; j = (j + 1) & m->mask) {
        uint64_t v = atomic_load_explicit(&m->slot[j], memory_order_relaxed);
        if (v == 0)
            break;
        size_t home = (size_t)(v >> 32) & m->mask;
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            atomic_store_explicit(&m->slot[hole], v, memory_order_relaxed);
            hole = j;
        }
    }
    atomic_store_explicit(&m->slot[hole], 0, memory_order_relaxed);
    m->count--;
}
