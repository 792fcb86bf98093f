/*
 * commit_par.h — connect mode's partitioned commit: the transactions of
 * one block applied by every worker of the pool, with the sequential
 * result (the argument is in pipeline.c's design note).
 */
#ifndef PM_ENGINE_COMMIT_PAR_H
#define PM_ENGINE_COMMIT_PAR_H

#include "pipeline.h"

/* Apply every transaction of block bb (batch b; framing, link, parsing and
 * merkle root already checked) on the engine's ledger, using the pool,
 * which must be idle. The block is not sealed.
 * Returns PM_OK: applied in full, exactly as one transaction at a time in
 * order would have; PM_ERR_INVALID: some transaction would fail, or the
 * partitioned path cannot prove the sequential result, and nothing was
 * changed (the caller re-runs the block one transaction at a time for the
 * exact verdict); PM_ERR_NOMEM: nothing changed. */
pm_status pm_commit_block_parallel(pm_engine *e, const pm_batch *b, const pm_batch_block *bb);

#endif
