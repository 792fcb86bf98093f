/*
 * block.h — making blocks (pack mode) and the block-level checks of §6
 * (link, merkle) that do not need the state.
 */
#ifndef PM_ENGINE_BLOCK_H
#define PM_ENGINE_BLOCK_H

#include "hash.h"
#include "postmark.h"

/* An open block being filled: a chain-file record in the making (80-byte
 * header space, then length-prefixed transactions) and its leaves. */
typedef struct {
    uint8_t *bytes;
    size_t size, cap;
    uint8_t (*leaves)[32];
    size_t count, cap_leaves;
} pm_block_builder;

void pm_block_builder_init(pm_block_builder *b);
void pm_block_builder_free(pm_block_builder *b);
void pm_block_builder_reset(pm_block_builder *b);

/* Whether a transaction of `tx_size` bytes fits under the limits. */
int pm_block_builder_fits(const pm_block_builder *b, size_t tx_size, uint32_t max_txs,
                          uint32_t max_bytes);

/* Append one transaction. Returns PM_OK or PM_ERR_NOMEM (unchanged). */
pm_status pm_block_builder_add(pm_block_builder *b, const uint8_t *tx, size_t size,
                               const uint8_t leaf[32]);

/* Write the header (merkle root of the leaves) for `height` on top of
 * `prev_hash` and compute the block hash. The block is b->bytes, b->size. */
int pm_block_builder_seal(pm_block_builder *b, pm_hasher *h, uint64_t height,
                          const uint8_t prev_hash[32], uint8_t hash[32]);

/* §6 step 2: the link to the tip. */
int pm_block_links(const pm_block_header *header, const uint8_t tip_hash[32], int64_t tip_height);

#endif
