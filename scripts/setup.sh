#!/usr/bin/env bash
# setup.sh — install the Debian 12 packages Postmark needs, then configure
# and build it (gcc, RelWithDebInfo) in build/.
#
#   scripts/setup.sh              packages (only the missing ones) + build
#   scripts/setup.sh --deps-only  packages only
#
# Environment: PM_FORCE_APT=1 runs apt-get update + install even when
# everything is installed (CI does this); BUILD_DIR (default build);
# JOBS (default 2); CMAKE_ARGS (extra configure arguments).
# Runs as root (or with sudo). Safe to run again: it only does what is
# missing and rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build tools, the libraries the engine links, jemalloc's header (it is
# loaded at run time), Google Benchmark and Concurrency Kit for the
# benchmarks, clang + its runtimes for the clang/fuzz builds, llvm for
# llvm-symbolizer (readable sanitizer reports), python3 for the fuzz
# corpus splitter; libmicrohttpd and jansson for `postmark serve`, and
# prometheus (promtool and a server that scrapes it), chromium with
# chromium-driver and python3-selenium (the explorer page in a real
# browser) for its tests; wrk, the HTTP load generator of its latency
# benchmark (bench/serve_latency.lua).
PACKAGES=(
    build-essential cmake pkg-config
    libsecp256k1-dev libxxhash-dev liburing-dev libssl-dev libjemalloc-dev
    libmicrohttpd-dev libjansson-dev prometheus
    chromium chromium-driver python3-selenium groff-base
    libbenchmark-dev libck-dev wrk
    clang libclang-rt-14-dev llvm
    python3
    nats-server libnats-dev
)

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
            missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ] && [ "${PM_FORCE_APT:-0}" != 1 ]; then
        echo "setup: all packages present"
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || {
            echo "setup: missing packages (${missing[*]}) and not root: run as root" >&2
            exit 1
        }
        sudo=(sudo)
    fi
    echo "setup: installing ${missing[*]:-(refresh)}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q </dev/null
    "${sudo[@]}" apt-get install -y -q "${PACKAGES[@]}" </dev/null
}

build() {
    local dir=${BUILD_DIR:-build}
    # shellcheck disable=SC2086  # CMAKE_ARGS is a list of words
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-}
    cmake --build "$dir" -j "${JOBS:-2}"
}

install_packages
if [ "${1:-}" != --deps-only ]; then
    build
fi
