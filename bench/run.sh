#!/usr/bin/env bash
# bench/run.sh — Postmark's benchmark harness: every figure beside the limit
# it chases, measured in the same run, in one command.
#
#   bench/run.sh [--quick] [--reps N] [--out DIR] [--data DIR] [--keep-data]
#                [--only LIST]
#
# Scenarios (bench/bench_scenarios.c): 1 signatures, 2 assume-valid,
# 3 large-state, 4 conflict; then 5, the Google Benchmark programs
# (bench_wire, bench_utxo, bench_verify) with JSON output; then the other
# plain C programs (bench_ingest, bench_snapshot, bench_gen, bench_trace,
# bench_sigcache), their text kept as printed. bench/report.py
# turns it all into results.json, results.md and plot.svg in the results
# folder (default results/<date>-<host>/, linked as results/latest).
#
#   --quick      small sizes, one repetition: a few minutes on 2 cores (CI)
#   --reps N     repetitions of every figure, 1..25 (default 3; --quick: 1)
#   --out DIR    the results folder
#   --data DIR   where streams and chains are made; kept, and reused by the
#                next run with the same sizes and the same postmark program
#   --keep-data  keep the data (default: OUT/data, removed at the end)
#   --only LIST  comma-separated subset of: signatures, assume-valid,
#                large-state, conflict, micro, others, serve, cluster
#
# Uses the build in $BUILD_DIR (default build/); builds only what is missing
# (cmake --build). Exit status: 0 when every step ran, 1 when one failed to
# run (never because a figure is slow: goals are ratios, reported), 2 on a
# usage error.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$PWD/$BUILD_DIR ;; esac

cmdline="bench/run.sh${*:+ $*}"
quick=0 reps="" out="" data="" keep=0 only="signatures,assume-valid,large-state,conflict,micro,others,serve,cluster"
# usage: the comment above, from its second line to its end.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; }
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --reps) [ $# -ge 2 ] || { usage; exit 2; }; reps=$2; shift ;;
    --out) [ $# -ge 2 ] || { usage; exit 2; }; out=$2; shift ;;
    --data) [ $# -ge 2 ] || { usage; exit 2; }; data=$2; keep=1; shift ;;
    --keep-data) keep=1 ;;
    --only) [ $# -ge 2 ] || { usage; exit 2; }; only=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1'" >&2; usage; exit 2 ;;
    esac
    shift
done
if [ -n "$reps" ] && ! { [[ $reps =~ ^[1-9][0-9]?$ ]] && [ "$reps" -le 25 ]; }; then
    echo "bench/run.sh: --reps: expected 1..25, got '$reps'" >&2
    exit 2
fi
for s in ${only//,/ }; do
    case $s in signatures | assume-valid | large-state | conflict | micro | others | serve | cluster) ;;
    *) echo "bench/run.sh: --only: unknown step '$s'" >&2; exit 2 ;;
    esac
done

# Sizes. Full: 200,000 transfers; 21,500 LARGE_STATE records (about 20.6M
# unspent outputs); 200,000 conflict-heavy records.
if [ "$quick" = 1 ]; then
    mode=quick reps=${reps:-1}
    txs=20000 conflict_txs=20000 large=400 limit_s=0.5 serve_txs=20000 serve_seconds=2 cluster_txs=5000
    gb_min_time=0.05
    others=("bench_ingest --size 16 --runs 1" "bench_snapshot --utxos 100000 --reps 1"
            "bench_gen transfers 5000" "bench_trace --txs 20000 --reps 1"
            "bench_sigcache --txs 1024 --reps 1")
else
    mode=full reps=${reps:-3}
    txs=200000 conflict_txs=200000 large=21500 limit_s=2 serve_txs=200000 serve_seconds=10 cluster_txs=50000
    gb_min_time=0.5
    others=("bench_ingest --size 256 --runs 3" "bench_snapshot --utxos 2000000 --reps 3"
            "bench_gen transfers 50000" "bench_trace --txs 200000 --reps 3"
            "bench_sigcache --txs 4096 --reps 3")
fi

# ---- the build ------------------------------------------------------------
programs=(postmark bench/bench_scenarios bench/bench_wire bench/bench_utxo bench/bench_verify
          bench/bench_ingest bench/bench_snapshot bench/bench_gen bench/bench_trace
          bench/bench_sigcache)
missing=()
for p in "${programs[@]}"; do
    [ -x "$BUILD_DIR/$p" ] || missing+=("$(basename "$p")")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench/run.sh: building what is missing in $BUILD_DIR: ${missing[*]}"
    if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
        cmake -S "$root" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo || exit 1
    fi
    cmake --build "$BUILD_DIR" -j "${JOBS:-2}" --target "${missing[@]}" || exit 1
fi

# ---- the results folder ---------------------------------------------------
if [ -z "$out" ]; then
    out=$root/results/$(date +%Y%m%d-%H%M%S)-$(hostname -s 2>/dev/null || echo host)
    mkdir -p "$root/results" && ln -sfn "$(basename "$out")" "$root/results/latest"
fi
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
[ -n "$data" ] || data=$out/data
mkdir -p "$data" || exit 1
echo "bench/run.sh: $mode mode, $reps repetition(s), results in $out"
echo "bench/run.sh: load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$root/bench/report.py" machine "$out" "$BUILD_DIR" || exit 1

# ---- the steps --------------------------------------------------------------
steps=()   # "name status seconds"
failed=0
step() {
    local name=$1 t0=$SECONDS rc
    shift
    echo
    echo "==== $name: $*"
    "$@" 2>&1 | tee "$out/$name.log"
    rc=${PIPESTATUS[0]}
    steps+=("$name $rc $((SECONDS - t0))")
    [ "$rc" -eq 0 ] || { failed=1; echo "==== $name: FAILED (exit $rc)"; }
}
wants() { [[ ",$only," == *",$1,"* ]]; }

scenarios=()
for s in signatures assume-valid large-state conflict; do
    wants "$s" && scenarios+=("$s")
done
if [ ${#scenarios[@]} -gt 0 ]; then
    step scenarios "$BUILD_DIR/bench/bench_scenarios" --postmark "$BUILD_DIR/postmark" \
        --data "$data" --out "$out" --reps "$reps" --txs "$txs" --conflict-txs "$conflict_txs" \
        --large-records "$large" --limit-seconds "$limit_s" "${scenarios[@]}"
fi

# run_gbench JSON PROGRAM ARGS...: a Google Benchmark program with JSON
# output; fails when the program fails or one of its benchmarks reports an
# error (SkipWithError).
run_gbench() {
    local json=$1
    shift
    "$@" --benchmark_out_format=json --benchmark_out="$json" || return 1
    python3 "$root/bench/report.py" check "$json"
}

# bench_utxo, once per repetition: its fixed-iteration runs consume the key
# permutation of the table they share, so --benchmark_repetitions would make
# later runs spend keys already spent. Each process starts afresh.
utxo_runs() {
    local r rc=0
    for ((r = 1; r <= reps; r++)); do
        run_gbench "$out/gbench-utxo.$r.json" "$BUILD_DIR/bench/bench_utxo" || rc=1
    done
    return "$rc"
}

if wants micro; then
    gb=(--benchmark_repetitions="$reps" --benchmark_display_aggregates_only=true)
    step micro-wire run_gbench "$out/gbench-wire.json" "$BUILD_DIR/bench/bench_wire" "${gb[@]}" \
        --benchmark_min_time="$gb_min_time"
    # Tables of 1M entries; 50M too with PM_BENCH_LARGE=1 in the environment.
    step micro-utxo utxo_runs
    step micro-verify run_gbench "$out/gbench-verify.json" "$BUILD_DIR/bench/bench_verify" "${gb[@]}" \
        --benchmark_min_time="$([ "$quick" = 1 ] && echo 0.1 || echo 1)"
fi

if wants others; then
    for o in "${others[@]}"; do
        read -r -a cmd <<<"$o"
        name=${cmd[0]#bench_}
        # Their text, as printed, goes into the report (other-NAME.txt).
        step "other-$name" env TMPDIR="$data" "$BUILD_DIR/bench/${cmd[0]}" "${cmd[@]:1}"
        { echo "\$ ${cmd[*]}"; cat "$out/other-$name.log"; } >"$out/other-$name.txt"
    done
fi

# postmark serve beside pack on the same stream and cores, and the latency of
# single requests at a fixed offered rate (bench/bench_serve.py), then under
# wrk with 1 and 8 connections (bench/serve_latency.lua; skipped without wrk).
if wants serve; then
    step other-serve python3 "$root/bench/bench_serve.py" --postmark "$BUILD_DIR/postmark" \
        --data "$data" --txs "$serve_txs" --seconds "$serve_seconds" --reps "$reps"
    { echo "\$ bench_serve.py --txs $serve_txs --seconds $serve_seconds --reps $reps"
      cat "$out/other-serve.log"; } >"$out/other-serve.txt"
fi

# A 3-server R3 JetStream cluster with 3 `serve --nats` nodes beside pack of
# the same stream, and failover latency (bench/bench_cluster.py; it prints
# a skip line when nats-server or cluster mode is missing).
if wants cluster; then
    step other-cluster python3 "$root/bench/bench_cluster.py" --postmark "$BUILD_DIR/postmark" \
        --data "$data" --txs "$cluster_txs" --reps "$reps"
    { echo "\$ bench_cluster.py --txs $cluster_txs --batch 1024 --reps $reps"
      cat "$out/other-cluster.log"; } >"$out/other-cluster.txt"
fi

# ---- the report ---------------------------------------------------------------
{
    printf '{"mode": "%s", "reps": %s, "command": "%s", ' "$mode" "$reps" "${cmdline//\"/\\\"}"
    printf '"sizes": {"txs": %s, "conflict_txs": %s, "large_records": %s}, ' \
        "$txs" "$conflict_txs" "$large"
    printf '"loadavg_end": [%s], "steps": [' "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ',')"
    sep=""
    for s in "${steps[@]}"; do
        read -r name rc secs <<<"$s"
        printf '%s{"name": "%s", "status": %s, "seconds": %s}' "$sep" "$name" "$rc" "$secs"
        sep=", "
    done
    printf ']}\n'
} >"$out/run.json"
if ! python3 "$root/bench/report.py" report "$out"; then
    echo "bench/run.sh: the report failed" >&2
    failed=1
fi
[ "$keep" = 1 ] || rm -rf "$data"

echo
[ -f "$out/results.md" ] && cat "$out/results.md"
echo
echo "bench/run.sh: results in $out (results.md, results.json, plot.svg)"
for s in "${steps[@]}"; do
    read -r name rc secs <<<"$s"
    printf '  %-14s %-12s %5ss\n' "$name" "$([ "$rc" -eq 0 ] && echo ok || echo "FAILED ($rc)")" "$secs"
done
exit "$failed"
