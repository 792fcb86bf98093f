/*
 * fuzz_block.c — libFuzzer target for block framing (protocol §6 step 1)
 * and the transactions inside.
 *
 * The input is one block record. pm_block_parse must never crash; when it
 * accepts, the header must re-encode to the first 80 bytes and
 * pm_block_next_tx must yield exactly tx_count records covering the block
 * to its last byte; every record that parses as a transaction must
 * serialize back to its bytes. A violation aborts.
 *
 * Seeds: fuzz/corpus/fuzz_block/ (small blocks of the vector chains).
 */
#include "postmark.h"
#include "postmark_internal.h"

#include <stdlib.h>
#include <string.h>

static void require(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pm_block blk;
    pm_parse_error err = {(size_t)-1, NULL, NULL};
    if (!pm_block_parse(pm_context_static, &blk, &err, data, size)) {
        require(err.field != NULL && err.reason != NULL && err.offset <= size);
        return 0;
    }
    require(size >= PM_BLOCK_HEADER_SIZE && size <= PM_BLOCK_MAX_SIZE);
    require(blk.header.version == 1);
    require(blk.header.tx_count >= 1 && blk.header.tx_count <= PM_BLOCK_MAX_TXS);
    uint8_t hdr[PM_BLOCK_HEADER_SIZE];
    pm_block_header_encode(pm_context_static, hdr, &blk.header);
    require(memcmp(hdr, data, PM_BLOCK_HEADER_SIZE) == 0);

    size_t cursor = 0, count = 0, covered = PM_BLOCK_HEADER_SIZE, len;
    const uint8_t *rec;
    while (pm_block_next_tx(pm_context_static, &rec, &len, &blk, &cursor)) {
        require(rec == data + covered + 4 && cursor == covered + 4 + len);
        covered = cursor;
        count++;
        pm_tx tx;
        if (pm_tx_parse(pm_context_static, &tx, NULL, rec, len)) {
            uint8_t *out = malloc(len);
            require(out != NULL && pm_tx_serialize(pm_context_static, out, len, &tx) == len);
            require(memcmp(out, rec, len) == 0);
            free(out);
            (void)pm_tx_has_duplicate_input(pm_context_static, &tx, NULL);
        }
    }
    require(count == blk.header.tx_count && covered == size);
    return 0;
}
