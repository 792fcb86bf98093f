#!/usr/bin/env bash
# test.sh — the project's test command: install what is missing, build
# (gcc, RelWithDebInfo, build/) and run the whole test suite with ctest.
# Extra arguments go to ctest (e.g. `scripts/test.sh -R wire`).
# The vectors folder (../shared/vectors) must exist: tests that read it
# fail without it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --no-tests=error "$@"
