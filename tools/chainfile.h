/*
 * chainfile.h — reading stream and chain files for the subcommands: the
 * whole file mapped (or read, for pipes), its header checked, its records
 * framed (§2), and a chain's blocks verified into an engine. Shared by
 * pack (which validates the chain it appends to) and replay.
 */
#ifndef PM_TOOLS_CHAINFILE_H
#define PM_TOOLS_CHAINFILE_H

#include "postmark.h"

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

typedef struct {
    const char *path;
    uint8_t *data;        /* whole file */
    size_t size;
    int mapped;           /* data is mmap'ed (else malloc'ed) */
    int header_ok;        /* 60-byte header valid (magic, version) */
    pm_file_kind kind;
    pm_chain_params params;
    pm_parse_error header_error;
    /* Whole records after the header. */
    size_t n_records;
    const uint8_t **records;
    size_t *sizes;
    uint64_t *offsets;    /* file offset of each record's length prefix */
    int truncated;        /* the file ends inside a record */
    uint64_t truncated_offset;
} pm_file;

/* Read (mmap) a file, "-" for stdin. Returns 0 and prints nothing on
 * success; on failure returns -1 with errno set. */
int pm_file_open(pm_file *f, const char *path);
void pm_file_close(pm_file *f);

/* The result of verifying a chain file's blocks (cli.md replay). */
typedef struct {
    int valid;
    pm_verdict verdict;     /* when !valid: reason, block position, tx */
    uint64_t blocks;        /* whole blocks connected */
    uint64_t txs;           /* transactions in them */
    double seconds;
} pm_chain_result;

/* Verify every whole block of the chain file `f` into `engine` from its
 * current tip; then report TRUNCATED if the file ends inside a record.
 * assume_valid (32 bytes or NULL): skip signatures up to and including the
 * block with that hash when one whole block has it.
 * Returns PM_OK (see res->valid) or an engine error (NOMEM). */
pm_status pm_chain_verify(pm_engine *engine, const pm_file *f, const uint8_t *assume_valid,
                          pm_chain_result *res);

/* Print the JSON fields common to pack and replay: tip, height, utxo_count,
 * utxo_digest (no braces). Returns PM_OK or the digest's error. */
pm_status pm_print_state_json(pm_engine *engine, FILE *out);

#endif
