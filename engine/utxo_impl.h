/*
 * utxo_impl.h — the layout of the UTXO table (entries, cells, arrays, the
 * table), shared by utxo.c and the test hooks (internal/test_hooks.c):
 * statistics and fault injection that tests and benchmarks use and the
 * library never calls, so they are not compiled into it. utxo.c's design
 * note explains every field.
 */
#ifndef PM_ENGINE_UTXO_IMPL_H
#define PM_ENGINE_UTXO_IMPL_H

#include "arena.h"
#include "utxo.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------- */
/* Entries and chunks.                                                     */
/* ---------------------------------------------------------------------- */

/* An output whose txid is in another entry, its head (see utxo.c,
 * "Entries"). */
typedef struct {
    _Atomic uint32_t word; /* the head's ref */
    uint8_t index[2];      /* host order (memcpy of the u16) */
    uint8_t output[PM_OUTPUT_SIZE];
    uint8_t pad;
    _Atomic uint32_t link; /* next ref on a retired / free list */
} pm_entry;

/* An output with its txid, which other entries may name. The same layout
 * up to the pad byte, so index and output are where pm_entry has them. */
typedef struct {
    /* How many entries use this txid (itself while it is live included);
     * at 0 the head is retired and never counted up again, and the word
     * becomes its link (a head ref, REF_HEAD set, or 0: never mistaken
     * for a count). */
    _Atomic uint32_t word;
    uint8_t index[2];
    uint8_t output[PM_OUTPUT_SIZE];
    uint8_t pad;
    uint8_t txid[32];
} pm_head;

_Static_assert(sizeof(pm_entry) == 56, "entry layout");
_Static_assert(sizeof(pm_head) == 84, "head layout");
_Static_assert(offsetof(pm_head, index) == offsetof(pm_entry, index) &&
                   offsetof(pm_head, output) == offsetof(pm_entry, output),
               "a head reads as an entry");

typedef struct {
    uint32_t slots; /* entries in the chunk, slot 0 (this header) included */
} chunk_hdr;

/* ref = head bit << 31 | chunk << CHUNK_SHIFT | slot. */
#define CHUNK_SHIFT 21
#define SLOT_MASK ((1u << CHUNK_SHIFT) - 1)
#define MAX_CHUNKS 1024u /* per slab */
#define REF_HEAD (1u << 31)
#define MIN_CHUNK_SLOTS 256u
#define MAX_CHUNK_BYTES ((size_t)64 << 20)

/* ---------------------------------------------------------------------- */
/* Cells and arrays.                                                       */
/* ---------------------------------------------------------------------- */

#define C_TOMB ((uint64_t)1 << 32)
#define C_FROZEN ((uint64_t)1 << 33)
#define C_STATE (C_TOMB | C_FROZEN)
#define C_HASH (~(((uint64_t)1 << 34) - 1))
#define C_REF ((uint64_t)0xffffffffu)
#define MOVED_EMPTY C_STATE

#define MIN_CELLS_LOG 8 /* 256 cells */
#define MAX_CELLS_LOG 30
#define MIG_CHUNK 256u /* cells migrated per helping operation */

/* counts: used cells (LIVE or TOMB, with reservations) << 32 | live. */
#define ONE_USED ((uint64_t)1 << 32)
#define ONE_LIVE ((uint64_t)1)
#define ONE_CELL (ONE_USED | ONE_LIVE)

typedef struct cells cells;
struct cells {
    /* Read-mostly: set before the array is published. */
    unsigned shift; /* 64 - log2(cells) */
    uint64_t mask;
    uint64_t soft; /* start a migration past this many used cells */
    uint64_t hard; /* never more used cells than this */
    uint64_t shrink; /* rehash smaller when fewer live entries than this */
    uint64_t nchunks;
    _Atomic uint64_t *slot;       /* the cells: a block of exactly 8 << k bytes */
    _Atomic uint64_t *chunk_done; /* one bit per migrated chunk, after this header */
    size_t bytes;                 /* of this header block */
    cells *_Atomic next; /* the array this one migrates into */
    cells *_Atomic prev; /* the array migrating into this one, until done */
    cells *retired_next; /* on the table's retired list */
    /* Written by every insert and spend into this array. */
    alignas(64) _Atomic uint64_t counts;
    /* Written by migrators. */
    alignas(64) _Atomic uint64_t mig_claim;
    _Atomic uint64_t mig_done;
    _Atomic int starting;
};

/* ---------------------------------------------------------------------- */
/* The table.                                                              */
/* ---------------------------------------------------------------------- */

#define STRIPES 16u
#define SECRET_SIZE 192

typedef struct {
    alignas(64) _Atomic uint32_t head;
    _Atomic uint32_t tail;
} ref_list;

#define FRESH_RUN 64u

typedef struct {
    alignas(64) _Atomic uint64_t run;
} fresh_run;

/* Fixed-size elements (entries or heads) in chunks, named by
 * ref = tag | chunk << CHUNK_SHIFT | slot (slot 0 holds the chunk header,
 * so a ref with slot 0 names nothing). utxo.c, "Entry storage". */
typedef struct {
    size_t size;     /* bytes per element */
    size_t link_off; /* of the element's _Atomic uint32_t link */
    uint32_t tag;    /* REF_HEAD for the heads' slab, 0 for the other entries' */
    size_t hint;  /* slots wanted in the first chunk */
    _Atomic(uint8_t *) dir[MAX_CHUNKS];
    /* Allocation: chunk << 32 | next slot. */
    alignas(64) _Atomic uint64_t fresh;
    _Atomic uint32_t nchunks;
    _Atomic uint64_t chunk_slots;
    _Atomic int recycled_any;   /* 0: every free list is known empty */
    ref_list retired[STRIPES];  /* released since the last quiescent point */
    ref_list recycled[STRIPES]; /* free for reuse (pop only) */
    fresh_run fresh_runs[STRIPES];
} slab;

/* Heads of recently inserted txids, by a keyed mix of the txid (utxo.c,
 * "Entries"): where an insert finds the head of its transaction. */
#define TXCACHE_SLOTS 1024u

struct pm_utxo_table {
    pm_arena *arena;
    size_t hint;
    uint8_t secret[SECRET_SIZE];
    cells *_Atomic cur;
    slab slab[2]; /* [0]: entries that name a head, [1]: heads */
    alignas(64) _Atomic uint32_t txcache[TXCACHE_SLOTS];
    alignas(64) _Atomic uint64_t migrations;
    _Atomic uint64_t promised; /* n of the last pm_utxo_table_reserve */
    cells *_Atomic retired_arrays;
};

static inline pm_utxo_table *mut(const pm_utxo_table *t)
{
    return (pm_utxo_table *)t;
}

static inline int ref_is_head(uint32_t ref)
{
    return (ref & REF_HEAD) != 0;
}

static inline pm_entry *entry_of(const pm_utxo_table *t, uint64_t cell)
{
    uint32_t ref = (uint32_t)cell;
    unsigned head = ref >> 31;
    uint8_t *chunk = atomic_load_explicit(
        &mut(t)->slab[head].dir[(ref >> CHUNK_SHIFT) & (MAX_CHUNKS - 1)], memory_order_acquire);
    return (pm_entry *)(chunk + (size_t)(ref & SLOT_MASK) * (head ? sizeof(pm_head)
                                                                   : sizeof(pm_entry)));
}

/* The head of entry e (named ref): itself or the one it names. */
static inline uint32_t head_ref(uint32_t ref, const pm_entry *e)
{
    return ref_is_head(ref) ? ref : atomic_load_explicit(&e->word, memory_order_relaxed);
}

static inline pm_head *head_of(const pm_utxo_table *t, uint32_t head)
{
    return (pm_head *)entry_of(t, head);
}

/* The txid of entry e (named ref). */
static inline const uint8_t *entry_txid(const pm_utxo_table *t, uint32_t ref, const pm_entry *e)
{
    return ref_is_head(ref) ? ((const pm_head *)e)->txid : head_of(t, head_ref(ref, e))->txid;
}

#endif
