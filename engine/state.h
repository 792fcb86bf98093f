/*
 * state.h — the ledger state of protocol §4 and the stateful checks of §5.
 *
 * The ledger is the UTXO table (lock-free, shared with the verifier
 * workers, who read it) plus the registries: governance sequence,
 * operators, series, and the minted set. The registries have a single
 * writer, the commit stage, and no concurrent reader: workers that need an
 * operator's key read an immutable snapshot (pm_opkeys) that the pipeline
 * republishes at quiescent points. Registries change orders of magnitude
 * less often than the UTXO set (one REGISTER or SERIES per many thousand
 * transfers), so a lock-free structure there would buy nothing.
 *
 * Every change is recorded in an undo log, so that a transaction, a block
 * or the last `undo_depth` blocks can be taken back exactly:
 *  - pm_ledger_apply_tx appends the transaction's undo records to the
 *    current log; pm_ledger_rollback(mark) takes back everything after a
 *    mark (an invalid block, the pending open block on a peer's block);
 *  - pm_ledger_seal_block moves the current log into the block history;
 *    pm_ledger_disconnect_tip takes the newest sealed block back.
 * Rollback never allocates from a table that could fail: the UTXO table is
 * reserved before each apply for every insert a rollback could need.
 */
#ifndef PM_ENGINE_STATE_H
#define PM_ENGINE_STATE_H

#include "hash.h"
#include "postmark.h"
#include "sig.h"
#include "utxo.h"

#include <secp256k1.h>

typedef struct pm_ledger pm_ledger;

/* An immutable map operator id -> key, for the workers. */
typedef struct pm_opkeys pm_opkeys;


/* A transaction as the commit stage sees it: parsed, hashed, pre-checked. */
typedef struct {
    pm_tx tx;
    uint8_t txid[32];
    uint8_t sighash[32];
    uint8_t duplicate_input; /* stateless DUPLICATE_INPUT (§5 step 2) */
    pm_sigcheck sig;
    uint8_t skip_signatures; /* assume-valid */
} pm_txinfo;

pm_status pm_ledger_create(pm_ledger **ledger, const pm_chain_params *params,
                           const uint8_t chain_id[32], size_t utxo_capacity_hint,
                           uint32_t undo_depth);
void pm_ledger_destroy(pm_ledger *ledger);

pm_utxo_table *pm_ledger_utxo(pm_ledger *ledger);
const uint8_t *pm_ledger_governance_key(const pm_ledger *ledger);

/* Apply one transaction (stateful checks of §5 in order, then effects).
 * `secp` and `cache` are used when the parallel verdict cannot be trusted
 * (inline verification).
 * Returns PM_OK with *reason NONE (applied) or the reject reason (nothing
 * changed); PM_ERR_NOMEM with nothing changed. */
pm_status pm_ledger_apply_tx(pm_ledger *ledger, pm_reason *reason, const pm_txinfo *info,
                             const secp256k1_context *secp, pm_keycache *cache);

/* Check one transaction without applying it (mempool admission). */
pm_status pm_ledger_check_tx(pm_ledger *ledger, pm_reason *reason, const pm_txinfo *info,
                             const secp256k1_context *secp, pm_keycache *cache);

/* ---- Staged apply (connect mode's partitioned commit, commit_par.c) ----
 * A block applied in two parts: the registry in transaction order on one
 * thread, the UTXO set partitioned over threads. */

/* Like pm_ledger_apply_tx, but the UTXO table is neither read nor changed:
 * REGISTER, SERIES and ISSUE make their registry checks and changes, and
 * every transaction writes the undo records a full apply writes, in the
 * same order. A TRANSFER is not checked (pm_ledger_check_spent) and its
 * SPENT records' outputs are left zero: *spent_at is the log offset of
 * the first (SIZE_MAX for other types); they follow each other, one per
 * input, PM_UNDO_SPENT_RECORD bytes apart. Returns as apply_tx. */
pm_status pm_ledger_stage_tx(pm_ledger *ledger, pm_reason *reason, const pm_txinfo *info,
                             const secp256k1_context *secp, pm_keycache *cache,
                             size_t *spent_at);

/* The UTXO-dependent checks of a TRANSFER whose inputs exist, with the
 * outputs they spend (NOT_CONSERVED, then BAD_SIGNATURE), on any thread:
 * reads nothing of the ledger. */
pm_reason pm_ledger_check_spent(const pm_txinfo *info, const uint8_t (*spent)[PM_OUTPUT_SIZE],
                                const secp256k1_context *secp, pm_keycache *cache);

/* The current log's bytes (valid until the next change to the ledger), and
 * its count of SPENT records (the re-inserts a rollback needs). */
uint8_t *pm_ledger_log_bytes(pm_ledger *ledger);
size_t pm_ledger_log_spent(const pm_ledger *ledger);

/* Take back staged transactions after `mark`: the registry changes are
 * undone, the UTXO undo records dropped (the table is not touched). */
void pm_ledger_unstage(pm_ledger *ledger, size_t mark);

/* Undo marks within the current (unsealed) log. */
size_t pm_ledger_mark(const pm_ledger *ledger);
void pm_ledger_rollback(pm_ledger *ledger, size_t mark);

/* Seal the current log as the undo data of a new tip block. */
pm_status pm_ledger_seal_block(pm_ledger *ledger, const uint8_t block_hash[32]);

/* Take the newest sealed block back. PM_ERR_STATE when none is left. */
pm_status pm_ledger_disconnect_tip(pm_ledger *ledger);

/* Tip: hash (chain_id with no block) and height (-1 with no block). */
void pm_ledger_tip(const pm_ledger *ledger, uint8_t hash[32], int64_t *height);

/* The operator-key snapshot for workers. pm_ledger_opkeys returns the
 * current one (owned by the ledger); pm_ledger_publish_opkeys rebuilds it
 * if the registry changed, and may only run at a quiescent point. */
const pm_opkeys *pm_ledger_opkeys(const pm_ledger *ledger);
pm_status pm_ledger_publish_opkeys(pm_ledger *ledger);
const uint8_t *pm_opkeys_find(const pm_opkeys *keys, uint32_t operator_id);

/* Registry queries. */
uint64_t pm_ledger_gov_seq(const pm_ledger *ledger);

/* ---- Snapshot support: enumerate the whole state, and restore it into a
 * fresh ledger (only before any transaction is applied). ---- */

typedef struct {
    uint32_t id;
    uint8_t key[32];
    uint8_t name_len;
    uint8_t name[64];
    uint64_t op_seq;
} pm_operator_info;

size_t pm_ledger_operator_count(const pm_ledger *ledger);
/* Operator i (0 <= i < count), in registration order. */
void pm_ledger_operator_at(const pm_ledger *ledger, size_t i, pm_operator_info *out);
const pm_operator_info *pm_ledger_find_operator(const pm_ledger *ledger, uint32_t id,
                                                pm_operator_info *out);

/* Visit every declared series / every minted stamp (any order). The
 * callback returns non-zero to stop; that value is returned. */
int pm_ledger_foreach_series(const pm_ledger *ledger,
                             int (*fn)(void *data, uint32_t op, uint32_t series,
                                       uint32_t max_supply),
                             void *data);
int pm_ledger_foreach_minted(const pm_ledger *ledger,
                             int (*fn)(void *data, uint32_t op, uint32_t series, uint32_t serial),
                             void *data);
size_t pm_ledger_series_count(const pm_ledger *ledger);
size_t pm_ledger_minted_count(const pm_ledger *ledger);

/* Restore (fresh ledger only). Return PM_OK or PM_ERR_NOMEM. */
pm_status pm_ledger_restore_operator(pm_ledger *ledger, const pm_operator_info *op);
pm_status pm_ledger_restore_series(pm_ledger *ledger, uint32_t op, uint32_t series,
                                   uint32_t max_supply);
pm_status pm_ledger_restore_minted(pm_ledger *ledger, uint32_t op, uint32_t series,
                                   uint32_t serial);
void pm_ledger_restore_gov_seq(pm_ledger *ledger, uint64_t gov_seq);
void pm_ledger_restore_tip(pm_ledger *ledger, const uint8_t hash[32], int64_t height);

/* The undo data of the sealed blocks, oldest first (i < history count):
 * the block's hash, the tip before it, and its undo log (opaque bytes of
 * this build's format, `spent` counting its re-inserts). A snapshot keeps
 * them so that disconnect works after a restart. */
size_t pm_ledger_history_count(const pm_ledger *ledger);
void pm_ledger_history_at(const pm_ledger *ledger, size_t i, uint8_t hash[32],
                          uint8_t prev_hash[32], const uint8_t **log, size_t *len,
                          size_t *spent);
/* Append one block's undo data (oldest first), as history_at gave it. */
pm_status pm_ledger_history_push(pm_ledger *ledger, const uint8_t hash[32],
                                 const uint8_t prev_hash[32], const uint8_t *log, size_t len,
                                 size_t spent);

#endif
