/*
 * snapshot_cli.h — starting a command from a state snapshot instead of
 * height 0 (`replay --from-snapshot STATE`, `pack --from-snapshot STATE`),
 * and verifying the rest of a chain file after it.
 *
 * A snapshot holds the state at some block of a chain (its tip height and
 * hash); the chain file named with it must hold that very block at that
 * position, and only the blocks after it are verified.
 */
#ifndef PM_TOOLS_SNAPSHOT_CLI_H
#define PM_TOOLS_SNAPSHOT_CLI_H

#include "chainfile.h"
#include "postmark.h"

#include <stddef.h>

/* Create an engine from the snapshot at state_path for the chain file
 * `chain` (opened by pm_file_open, header checked by the caller).
 * Returns: PM_OK with *engine (owned by the caller) and *first, the position
 *          in chain->records of the first block to verify (the snapshot's
 *          tip height + 1; 0 for a snapshot of the empty state);
 *          PM_ERR_MISMATCH: the snapshot is of another chain;
 *          PM_ERR_STATE: the chain does not hold the snapshot's tip block
 *          at its height ("snapshot tip is not in this chain");
 *          PM_ERR_IO, PM_ERR_INVALID, PM_ERR_NOMEM, PM_ERR_ARG: from
 *          pm_engine_create_from_snapshot.
 *          On any error *engine is NULL and msg holds one line starting with
 *          the snapshot's path ("STATE: UTXO section at byte 96: ...").
 * In:  cfg: as for pm_engine_create (NULL for defaults). */
pm_status pm_snapshot_open_for_chain(pm_engine **engine, size_t *first, const pm_context *ctx,
                                     const pm_config *cfg, const char *state_path,
                                     const pm_file *chain, char *msg, size_t msglen);

/* pm_chain_verify for an engine started from a snapshot: verify the whole
 * blocks of `f` from position `first` on, then report TRUNCATED if the file
 * ends inside a record. Positions in the result are positions in the whole
 * file (res->verdict.block), res->blocks counts every whole valid block of
 * the file (first + those verified here) and res->txs the transactions of
 * the blocks verified here. assume_valid as for pm_chain_verify (a hash at
 * a position before `first` skips nothing). */
pm_status pm_chain_verify_from(pm_engine *engine, const pm_file *f, size_t first,
                               const uint8_t *assume_valid, pm_chain_result *res);

#endif
