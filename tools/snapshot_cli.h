/*
 * snapshot_cli.h — starting a command from a state snapshot instead of
 * height 0 (`replay --from-snapshot STATE`, `pack --from-snapshot STATE`),
 * and verifying the rest of a chain after it.
 *
 * A snapshot holds the state at some block of a chain (its tip height and
 * hash); the chain named with it must hold that very block at that
 * position. Its blocks up to the tip are read (hashing only the tip's
 * header) and only the blocks after it are verified.
 */
#ifndef PM_TOOLS_SNAPSHOT_CLI_H
#define PM_TOOLS_SNAPSHOT_CLI_H

#include "chainfile.h"
#include "postmark.h"

#include <stddef.h>
#include <stdint.h>

/* Create an engine from the snapshot at state_path for the chain input
 * `chain` (pm_input_open'ed, its header checked by the caller: a chain),
 * and read the chain's records up to the snapshot's tip, passing each to
 * `visit` (may be NULL) with its position, as pm_chain_verify would (pack's
 * resume needs the blocks of the current run).
 * Returns: PM_OK with *engine (owned by the caller) and *first = the
 *          snapshot's tip height + 1 (0 for a snapshot of the empty state);
 *          `chain` is then positioned at its block number *first;
 *          PM_ERR_MISMATCH: the snapshot is of another chain;
 *          PM_ERR_STATE: the chain does not hold the snapshot's tip block at
 *          its height ("snapshot tip is not in this chain");
 *          PM_ERR_IO (the snapshot or the chain cannot be read),
 *          PM_ERR_INVALID (a damaged snapshot), PM_ERR_NOMEM, PM_ERR_ARG.
 *          On any error *engine is NULL and msg holds one line naming the
 *          file at fault ("STATE: UTXO section at byte 96: ...").
 * In:  cfg: as for pm_engine_create (NULL for defaults). */
pm_status pm_snapshot_open_for_chain(pm_engine **engine, uint64_t *first, const pm_context *ctx,
                                     const pm_config *cfg, const char *state_path,
                                     pm_input *chain, pm_block_visit_fn visit, void *visit_data,
                                     char *msg, size_t msglen);

/* pm_chain_verify (chainfile.h) after pm_snapshot_open_for_chain: verifies
 * the chain's blocks from `first` on, with every position in file terms:
 * res->verdict.block, the visit callback's position, and res->blocks (the
 * whole valid blocks of the file: first + those verified here);
 * assume_valid_upto as pm_chain_find_block gives it for the whole file.
 * res->txs counts the transactions of the blocks verified here only. */
pm_status pm_chain_verify_from(pm_engine *engine, pm_input *f, uint64_t first,
                               uint64_t assume_valid_upto, pm_block_visit_fn visit,
                               void *visit_data, const char *progress, pm_chain_result *res,
                               char *err, size_t errlen);

#endif
