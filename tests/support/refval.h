/*
 * refval.h — the reference validator: a plain, sequential implementation of
 * the protocol (§5 validity, §6 blocks, §7 packing, §8 UTXO digest) used by
 * the tests as the independent expectation for the parallel engine.
 *
 * It is test code written to be obviously right, not fast: its own strict
 * parser, its own tagged hashes (OpenSSL SHA-256), libsecp256k1 for the
 * signatures, chained hash maps for the state, no threads. It shares no code
 * with the engine's wire, state or pipeline modules, so a disagreement
 * between the two is a bug in one of them.
 *
 * Atomicity: every mutation of the state goes through an undo journal, so
 * a rejected transaction, a rejected block, or running out of memory
 * leaves the state exactly as it was.
 */
#ifndef PM_REFVAL_H
#define PM_REFVAL_H

#include "postmark.h"

#include <stddef.h>
#include <stdint.h>

typedef struct refval refval;

/* A rejected transaction of a packed stream. */
typedef struct {
    uint64_t index;       /* 0-based index in the stream */
    pm_reason reason;
    int has_txid;         /* 0 for MALFORMED */
    uint8_t txid[PM_HASH_SIZE];
} refval_reject;

/* What refval_pack produced. Free with refval_pack_result_free. */
typedef struct {
    uint8_t *blocks;        /* the new block records: (u32 length, block)... */
    size_t blocks_size;
    refval_reject *rejects; /* in stream order */
    size_t n_rejects;
    uint64_t accepted;
    uint64_t blocks_added;
} refval_pack_result;

/* The verdict on a chain file (cli.md `replay`). */
typedef struct {
    int valid;
    pm_reason reason;   /* PM_REASON_NONE when valid */
    uint64_t height;    /* position of the first bad block in the file;
                           TRUNCATED: the number of whole blocks;
                           valid: the number of blocks */
    int64_t tx;         /* index in the block, -1 for a block-level reason */
    int has_txid;       /* 0 for block-level reasons and MALFORMED */
    uint8_t txid[PM_HASH_SIZE];
} refval_verdict;

/* The empty state of the chain `params`. Returns NULL when out of memory. */
refval *refval_create(const pm_chain_params *params);
void refval_destroy(refval *rv);

/* Check one transaction record against the state; apply it when valid.
 * Returns 1 with *reason set (PM_REASON_NONE: accepted and applied), or 0
 * when out of memory (state unchanged). */
int refval_apply_tx(refval *rv, const uint8_t *tx, size_t size, pm_reason *reason);

/* txid of a transaction record. Returns 1, or 0 when it does not parse. */
int refval_txid(uint8_t out[PM_HASH_SIZE], const uint8_t *tx, size_t size);

/* Connect one whole block (no length prefix) on top of the tip, §6.
 * check_sigs 0 skips signature checks (assume-valid).
 * Returns 1 with *verdict set (valid: connected; invalid: state unchanged,
 * verdict->height is 0 and is for the caller to set), 0 when out of memory
 * (state unchanged). */
int refval_connect_block(refval *rv, refval_verdict *verdict, const uint8_t *block, size_t size,
                         int check_sigs);

/* Pack a whole POSTMKTX file (header included) on top of the state and tip
 * (§7): `block_txs` 1..65536, `block_bytes` 81..4194304.
 * Returns PM_OK; PM_ERR_INVALID when the stream's header is bad;
 * PM_ERR_MISMATCH when it belongs to another chain; PM_ERR_NOMEM. On
 * anything but PM_OK, *out is empty (but the state may hold the part
 * already packed). */
pm_status refval_pack(refval *rv, refval_pack_result *out, const uint8_t *stream, size_t size,
                      uint32_t block_txs, uint32_t block_bytes);
void refval_pack_result_free(refval_pack_result *out);

/* Replay a whole chain file (§6, cli.md `replay`) from the empty state.
 * assume_valid: a block hash, or NULL. When rv_out is not NULL it receives
 * the state after the valid blocks (NULL after BAD_HEADER); the caller
 * destroys it.
 * Returns PM_OK with *verdict set, or PM_ERR_NOMEM. */
pm_status refval_replay(refval **rv_out, refval_verdict *verdict, const uint8_t *chain,
                        size_t size, const uint8_t assume_valid[PM_HASH_SIZE]);

/* Merkle root (§6) of n >= 1 leaves. Returns 1, or 0 when out of memory. */
int refval_merkle_root(uint8_t out[PM_HASH_SIZE], const uint8_t (*leaves)[PM_HASH_SIZE], size_t n);

/* The 60-byte header of a file of this chain. */
void refval_file_header(const refval *rv, uint8_t out[PM_FILE_HEADER_SIZE], pm_file_kind kind);

/* The chain id (§2). */
void refval_chain_id(const refval *rv, uint8_t out[PM_HASH_SIZE]);

/* The tip: hash (chain_id without blocks) and height (-1 without blocks). */
void refval_tip(const refval *rv, uint8_t hash[PM_HASH_SIZE], int64_t *height);

uint64_t refval_utxo_count(const refval *rv);

/* Look up an unspent output: 1 and *out (raw 45 bytes) when unspent. */
int refval_get_utxo(const refval *rv, uint8_t out[PM_OUTPUT_SIZE], const uint8_t txid[PM_HASH_SIZE],
                    uint16_t index);

/* UTXO digest (§8). Returns 1, or 0 when out of memory. */
int refval_utxo_digest(const refval *rv, uint8_t out[PM_HASH_SIZE]);

#endif
