/*
 * fuzz_header.c — libFuzzer target for file framing (protocol §2): the
 * 60-byte header and the length-prefixed records after it.
 *
 * The input is a whole file. When the header parses it must re-encode to
 * the same 60 bytes; the records must then tile the file exactly up to the
 * end or up to one truncated record, and each one is offered to the
 * parser of its kind (transaction or block). A violation aborts.
 *
 * Seeds: fuzz/corpus/fuzz_header/ (small files cut from the vectors).
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
    pm_file_kind kind;
    pm_chain_params params;
    pm_parse_error err = {(size_t)-1, NULL, NULL};
    if (!pm_file_header_parse(pm_context_static, &kind, &params, &err, data, size)) {
        require(err.field != NULL && err.reason != NULL && err.offset <= size);
        return 0;
    }
    require(size >= PM_FILE_HEADER_SIZE);
    require(kind == PM_FILE_STREAM || kind == PM_FILE_CHAIN);
    uint8_t hdr[PM_FILE_HEADER_SIZE];
    pm_file_header_encode(pm_context_static, hdr, kind, &params);
    require(memcmp(hdr, data, PM_FILE_HEADER_SIZE) == 0);

    size_t pos = PM_FILE_HEADER_SIZE, len;
    const uint8_t *rec;
    int r;
    while ((r = pm_record_next(data, size, &pos, &rec, &len)) == 1) {
        require(rec + len == data + pos);
        if (kind == PM_FILE_STREAM) {
            pm_tx tx;
            (void)pm_tx_parse(pm_context_static, &tx, NULL, rec, len);
        } else {
            pm_block blk;
            (void)pm_block_parse(pm_context_static, &blk, NULL, rec, len);
        }
    }
    require(r == 0 ? pos == size : pos < size);
    return 0;
}
