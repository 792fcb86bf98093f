#!/usr/bin/env bash
# demo.sh — install, build, and run Postmark's main job on a built-in demo
# market: `postmark demo` generates a stamp-market stream, packs it into
# blocks, replays the chain and traces a stamp (see README.md).
# Extra arguments go to `postmark demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bin=${BUILD_DIR:-build}/postmark
if [ ! -x "$bin" ]; then
    echo "demo: $bin was not built (no tools/*.c in this tree yet)" >&2
    exit 1
fi
if "$bin" --help 2>/dev/null | grep -qE '^ +demo( |$)'; then
    exec "$bin" demo "$@"
fi
# Fallback while the demo subcommand is being written: decode the protocol
# vectors' transaction stream.
vectors=../shared/vectors/s1.pmtx
echo "demo: this build has no 'demo' subcommand yet; decoding $vectors instead" >&2
exec "$bin" inspect "$vectors"
