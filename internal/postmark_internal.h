/*
 * postmark_internal.h — the library's internals, for white-box tests,
 * benchmarks and fuzzers only.
 *
 * Everything outside engine/ builds against include/postmark.h alone; the
 * targets that must look inside the engine (a UTXO table benchmark, a
 * snapshot fuzzer, a test that corrupts a ledger) include this one header
 * instead of having engine/ on their include path, so each reach across
 * the boundary is visible in one place (`postmark_internal` in
 * CMakeLists.txt). It is never installed and the program never uses it
 * (tests/cli_boundary.sh fails if a file under tools/ does).
 *
 * C++ (the Google Benchmark programs) gets the modules that are valid C++;
 * the others use C11 atomics and are reached through C shims.
 */
#ifndef PM_INTERNAL_H
#define PM_INTERNAL_H

#include "postmark.h"

#include "../engine/context.h"
#include "../engine/hash.h"
#include "../engine/utxo.h"
#include "../engine/wire.h"

#ifndef __cplusplus
#include "../engine/arena.h"
#include "../engine/block.h"
#include "../engine/pipeline.h"
#include "../engine/sigcache.h"
#include "../engine/snapshot.h"
#include "../engine/state.h"
#include "../engine/pool.h"
#endif

#endif
