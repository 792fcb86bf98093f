/*
 * arena.h — the memory of one large structure (the UTXO table): big blocks
 * from a dedicated jemalloc arena through jemalloc's explicit API, or from
 * the C library's malloc when jemalloc cannot be used.
 *
 * Why not just link jemalloc: Debian's libjemalloc.so.2 exports malloc and
 * free, so linking it would replace the embedding program's allocator.
 * Instead pm_arena_create loads it privately (dlopen RTLD_LOCAL), looks up
 * mallocx / dallocx / sallocx / nallocx / mallctl, and creates an arena of
 * its own (mallctl "arenas.create"). When the library cannot be loaded
 * (not installed, or glibc has no static TLS left for it: jemalloc's
 * initial-exec TLS block is ~2.6 KiB while glibc keeps only 512 bytes for
 * dlopen unless GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096 or more
 * is set), or in sanitizer builds (PM_USE_JEMALLOC undefined), blocks come
 * from aligned_alloc/calloc/free instead. The library is never dlclose'd:
 * jemalloc registers thread-exit destructors that must stay mapped.
 *
 * Accounting: pm_arena_held is the sum of the usable sizes of the blocks
 * held (allocator rounding included), updated atomically, so any thread may
 * allocate and free. A limit (tests) makes an allocation that would take
 * the held total above it fail as if memory had run out.
 */
#ifndef PM_ENGINE_ARENA_H
#define PM_ENGINE_ARENA_H

#include <stddef.h>

typedef struct pm_arena pm_arena;

#define PM_ARENA_ZERO 1u /* the block is zero-filled */
#define PM_ARENA_HUGE 2u /* a large block: ask for transparent huge pages */

/* Returns a new arena (jemalloc when possible), or NULL when out of
 * memory. */
pm_arena *pm_arena_create(void);

/* Destroys the arena. Every block must have been freed before. */
void pm_arena_destroy(pm_arena *a);

/* A block of `size` bytes aligned to `align` (a power of two, at most
 * 4096), or NULL when out of memory or over the limit. */
void *pm_arena_alloc(pm_arena *a, size_t size, size_t align, unsigned flags);

/* Frees a block of pm_arena_alloc; `size` is the size asked for. NULL is a
 * no-op. */
void pm_arena_free(pm_arena *a, void *p, size_t size);

/* The usable size an allocation of `size` bytes gets: a size chosen as
 * pm_arena_good_size(n) wastes nothing to rounding. */
size_t pm_arena_good_size(const pm_arena *a, size_t size);

/* Bytes held: the blocks' usable sizes plus the arena object itself.
 * (This and the two below are internal/test_hooks.c, for the UTXO table's
 * statistics and tests; the library never calls them.) */
size_t pm_arena_held(const pm_arena *a);

/* Allocations that would take pm_arena_held above `limit` fail; 0 means
 * no limit. */
void pm_arena_set_limit(pm_arena *a, size_t limit);

/* "jemalloc" or "malloc": where the blocks come from. */
const char *pm_arena_backend(const pm_arena *a);

#endif
