/*
 * block.c — block assembly for pack mode (§7) and the stateless block
 * checks of §6. A block under construction is kept as the bytes a chain
 * file will hold, so sealing it only writes the 80-byte header in front.
 */
#include "block.h"

#include "wire.h"

#include <stdlib.h>
#include <string.h>

void pm_block_builder_init(pm_block_builder *b)
{
    memset(b, 0, sizeof *b);
}

void pm_block_builder_free(pm_block_builder *b)
{
    free(b->bytes);
    free(b->leaves);
    memset(b, 0, sizeof *b);
}

void pm_block_builder_reset(pm_block_builder *b)
{
    b->size = 0;
    b->count = 0;
}

int pm_block_builder_fits(const pm_block_builder *b, size_t tx_size, uint32_t max_txs,
                          uint32_t max_bytes)
{
    size_t size = b->count ? b->size : PM_BLOCK_HEADER_SIZE;
    return b->count < max_txs && size + 4 + tx_size <= max_bytes;
}

pm_status pm_block_builder_add(pm_block_builder *b, const uint8_t *tx, size_t size,
                               const uint8_t leaf[32])
{
    size_t base = b->count ? b->size : PM_BLOCK_HEADER_SIZE;
    if (base + 4 + size > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < base + 4 + size)
            cap *= 2;
        uint8_t *bytes = realloc(b->bytes, cap);
        if (!bytes)
            return PM_ERR_NOMEM;
        b->bytes = bytes;
        b->cap = cap;
    }
    if (b->count == b->cap_leaves) {
        size_t cap = b->cap_leaves ? b->cap_leaves * 2 : 256;
        uint8_t(*leaves)[32] = realloc(b->leaves, cap * sizeof *leaves);
        if (!leaves)
            return PM_ERR_NOMEM;
        b->leaves = leaves;
        b->cap_leaves = cap;
    }
    uint8_t *p = b->bytes + base;
    pm_write_u32le(p, (uint32_t)size);
    memcpy(p + 4, tx, size);
    memcpy(b->leaves[b->count], leaf, 32);
    b->size = base + 4 + size;
    b->count++;
    return PM_OK;
}

int pm_block_builder_seal(pm_block_builder *b, pm_hasher *h, uint64_t height,
                          const uint8_t prev_hash[32], uint8_t hash[32])
{
    pm_block_header hdr = {.version = 1, .height = height, .tx_count = (uint32_t)b->count};
    memcpy(hdr.prev_hash, prev_hash, 32);
    if (!pm_hash_merkle(h, hdr.merkle_root, (const uint8_t(*)[32])b->leaves, b->count))
        return 0;
    pm_block_header_encode(pm_context_static, b->bytes, &hdr);
    return pm_hash_block(h, hash, b->bytes);
}

int pm_block_links(const pm_block_header *header, const uint8_t tip_hash[32], int64_t tip_height)
{
    return header->height == (uint64_t)(tip_height + 1) &&
           memcmp(header->prev_hash, tip_hash, 32) == 0;
}
