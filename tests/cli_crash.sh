#!/usr/bin/env bash
# Crash safety of `pack --chain` (issue: ingestion and the command):
#  1. the chain cut at every byte offset inside its last block: re-running
#     the same command repairs it (reported) and gives s1.b32.pmbk exactly;
#  2. a header-only stream packed onto a cut chain leaves exactly the chain
#     up to the previous tip;
#  3. SIGKILL at ten seeded moments of a long run, each time restarting the
#     same command, ends with the same chain and rejects as one
#     uninterrupted run;
#  4. two packs on one chain at once: the second is refused (locked);
#  5. SIGTERM: the open block is finished and synced, and the same command
#     then completes to the uninterrupted result;
#  6. SIGKILL during `pack --save-snapshot --snapshot-every`: the latest
#     snapshot is always loadable, and restarting from it ends with the
#     uninterrupted chain;
#  7. I/O errors (SQLite's way): for each file pack writes and each call
#     on it (open, write, a short write then a full disk, fdatasync, fsync,
#     ftruncate, rename), fail the 1st, 2nd, ... Nth such call until a run
#     completes; after every failed run the chain is a valid prefix of the
#     uninterrupted one, the run said it failed, and the same command then
#     ends with the uninterrupted chain and rejects.
# Usage: cli_crash.sh POSTMARK VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
need_vectors
# 1. Every cut inside the last block.
"$PM" pack "$V/s1.pmtx" --chain "$T/c.pmbk" --block-txs 32 --quiet || bad "first pack"
size=$(stat -c %s "$T/c.pmbk")
# The last record's length prefix starts at the end of the previous block.
last=$(python3 -c "
import struct,sys
d=open(sys.argv[1],'rb').read(); o=60; last=60
while o < len(d):
    last=o; o += 4 + struct.unpack('<I', d[o:o+4])[0]
print(last)" "$T/c.pmbk")
cut_fail=0
for off in $(seq $((last + 1)) $((size - 1))); do
    cp "$T/c.pmbk" "$T/x.pmbk"
    cp "$T/c.pmbk.runs" "$T/x.pmbk.runs"
    truncate -s "$off" "$T/x.pmbk"
    "$PM" pack "$V/s1.pmtx" --chain "$T/x.pmbk" --block-txs 32 --quiet 2> "$T/err" || cut_fail=$((cut_fail + 1))
    cmp -s "$T/x.pmbk" "$V/s1.b32.pmbk" || { cut_fail=$((cut_fail + 1)); echo "cut at $off: chain differs"; }
    grep -q "cut a partial block at byte $last" "$T/err" || { cut_fail=$((cut_fail + 1)); echo "cut at $off: repair not reported"; }
done
[ $cut_fail -eq 0 ] && ok || bad "$cut_fail failures over $((size - last - 1)) cut points"

# 2. A header-only stream onto a cut chain.
head -c 60 "$V/s1.pmtx" > "$T/empty.pmtx"
cp "$T/c.pmbk" "$T/y.pmbk"
truncate -s $((size - 100)) "$T/y.pmbk"
"$PM" pack "$T/empty.pmtx" --chain "$T/y.pmbk" --json --quiet > "$T/y.json" || bad "header-only pack"
head -c "$last" "$V/s1.b32.pmbk" > "$T/prefix.pmbk"
cmp -s "$T/y.pmbk" "$T/prefix.pmbk" && ok || bad "header-only pack onto a cut chain"
grep -q '"blocks_added": 0' "$T/y.json" && ok || bad "header-only pack added blocks"

# 3. SIGKILL at seeded moments of a long run.
"$PM" gen --shape market --txs 12000 --seed 7 -o "$T/long.pmtx" --quiet 2>/dev/null \
    || "$PM" gen --shape market --txs 12000 --seed 7 -o "$T/long.pmtx" > /dev/null 2>&1 \
    || bad "gen for the kill test"
"$PM" pack "$T/long.pmtx" --chain "$T/ref.pmbk" --block-txs 50 --threads 2 --rejects "$T/ref.csv" --quiet \
    || bad "uninterrupted long pack"
start=$(date +%s%N)
"$PM" replay "$T/ref.pmbk" --quiet > /dev/null || bad "replay of the long chain"
RANDOM=42
kills=0
for i in $(seq 1 10); do
    # A moment between 50 ms and ~1 s into the run.
    delay=$(printf '0.%03d' $((50 + RANDOM % 900)))
    "$PM" pack "$T/long.pmtx" --chain "$T/k.pmbk" --block-txs 50 --threads 2 --rejects "$T/k.csv" --quiet &
    pid=$!
    sleep "$delay"
    if kill -9 $pid 2> /dev/null; then kills=$((kills + 1)); fi
    wait $pid 2> /dev/null
done
"$PM" pack "$T/long.pmtx" --chain "$T/k.pmbk" --block-txs 50 --threads 2 --rejects "$T/k.csv" --quiet \
    || bad "final resumed pack"
cmp -s "$T/k.pmbk" "$T/ref.pmbk" && ok || bad "chain after $kills kills differs from the uninterrupted one"
cmp -s "$T/k.csv" "$T/ref.csv" && ok || bad "rejects after $kills kills differ from the uninterrupted ones"
[ $kills -ge 1 ] && ok || bad "no run was killed (too fast?)"
echo "killed $kills of 10 runs"

# 4. The chain is locked while a pack appends.
cp "$T/ref.pmbk" "$T/l.pmbk"
flock "$T/l.pmbk" sleep 3 &
lockpid=$!
sleep 0.5
"$PM" pack "$V/s1.pmtx" --chain "$T/l.pmbk" --quiet 2> "$T/lock.err"
[ $? -eq 1 ] && grep -q "locked" "$T/lock.err" && ok || bad "second pack was not refused"
wait $lockpid

# 4b. replay of a chain that a pack is appending to (it holds the lock):
# the whole blocks so far are a consistent prefix; a partial last block is
# the one being written, not damage. Without the lock it is TRUNCATED.
cp "$V/s1.b32.pmbk" "$T/g.pmbk"
truncate -s -100 "$T/g.pmbk"
flock "$T/g.pmbk" sleep 3 &
lockpid=$!
sleep 0.5
"$PM" replay "$T/g.pmbk" --json 2> "$T/g.err" > "$T/g.json"
[ $? -eq 0 ] && grep -q '"blocks": 8' "$T/g.json" && grep -q "a pack is appending" "$T/g.err" \
    && ok || bad "replay during a pack: $(cat "$T/g.json" "$T/g.err")"
wait $lockpid
"$PM" replay "$T/g.pmbk" --json --quiet > "$T/g.json"
[ $? -eq 1 ] && grep -q '"TRUNCATED"' "$T/g.json" && ok || bad "replay of a cut chain without a pack"

# 5. SIGTERM finishes the open block, then the same command completes.
"$PM" pack "$T/long.pmtx" --chain "$T/s.pmbk" --block-txs 50 --threads 1 --quiet 2> "$T/term.err" &
pid=$!
sleep 0.3
kill -TERM $pid 2> /dev/null
wait $pid
rc=$?
if [ $rc -eq 1 ]; then
    grep -q "stopped by SIGTERM" "$T/term.err" && ok || bad "no SIGTERM message"
    "$PM" replay "$T/s.pmbk" --quiet > /dev/null && ok || bad "chain after SIGTERM is not valid"
else
    echo "(the run finished before SIGTERM arrived; rc $rc)"
fi
# 6. Kills while snapshots are being written.
RANDOM=7
snap_bad=0
rm -f "$T/n.pmbk" "$T/n.pmbk.runs" "$T/n.state"
for i in $(seq 1 8); do
    delay=$(printf '0.%03d' $((50 + RANDOM % 900)))
    from=""
    [ -f "$T/n.state" ] && from="--from-snapshot $T/n.state"
    "$PM" pack "$T/long.pmtx" --chain "$T/n.pmbk" --block-txs 50 --threads 2 $from \
        --save-snapshot "$T/n.state" --snapshot-every 3 --quiet > /dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    kill -9 $pid 2> /dev/null
    wait $pid 2> /dev/null
    if [ -f "$T/n.state" ]; then
        "$PM" replay "$T/n.pmbk" --from-snapshot "$T/n.state" --json --quiet > "$T/n.json" 2> "$T/n.err"
        # Valid, or a partial last block (TRUNCATED): either way it loaded.
        if ! grep -Eq '"valid": true|"TRUNCATED"' "$T/n.json"; then
            snap_bad=$((snap_bad + 1))
            echo "kill $i: snapshot not usable: $(cat "$T/n.err")"
        fi
    fi
done
[ $snap_bad -eq 0 ] && ok || bad "$snap_bad unusable snapshots after kills"
from=""
[ -f "$T/n.state" ] && from="--from-snapshot $T/n.state"
"$PM" pack "$T/long.pmtx" --chain "$T/n.pmbk" --block-txs 50 --threads 2 $from --quiet \
    && cmp -s "$T/n.pmbk" "$T/ref.pmbk" && ok || bad "restart from the latest snapshot: chain differs"
# 7. Every Nth I/O call failing, until a run completes.
SHIM=$(cd "$(dirname "$PM")" && pwd)/faultfs.so
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
"$PM" pack "$V/s1.pmtx" --chain "$T/fref.pmbk" --block-txs 32 --rejects "$T/fref.csv" \
    --save-snapshot "$T/fref.state" --snapshot-every 4 --quiet || bad "reference pack with snapshots"
fault_runs=0 fault_bad=0
fault_loop() { # SUFFIX OP [SHORT]
    local suffix=$1 op=$2 short=${3:-} n=1 rc size
    while [ $n -le 200 ]; do
        rm -f "$T"/f.* "$T/flog"
        env LD_PRELOAD="$SHIM" PM_FAULT_PATH="$suffix" PM_FAULT_OP="$op" PM_FAULT_N=$n \
            PM_FAULT_LOG="$T/flog" ${short:+PM_FAULT_SHORT=$short} \
            "$PM" pack "$V/s1.pmtx" --chain "$T/f.pmbk" --block-txs 32 --rejects "$T/f.csv" \
            --save-snapshot "$T/f.state" --snapshot-every 4 --quiet 2> "$T/ferr"
        rc=$?
        fault_runs=$((fault_runs + 1))
        if [ ! -s "$T/flog" ]; then
            # Never reached the Nth call: the run completed untouched.
            [ $rc -eq 0 ] && cmp -s "$T/f.pmbk" "$T/fref.pmbk" && cmp -s "$T/f.csv" "$T/fref.csv" ||
                { fault_bad=$((fault_bad + 1)); echo "$suffix $op: clean run (N=$n) wrong"; }
            return
        fi
        [ $rc -ne 0 ] || { fault_bad=$((fault_bad + 1)); echo "$suffix $op N=$n${short:+ short}: the failure was not reported"; }
        if [ -f "$T/f.pmbk" ]; then
            size=$(stat -c %s "$T/f.pmbk")
            cmp -s -n "$size" "$T/f.pmbk" "$T/fref.pmbk" && "$PM" replay "$T/f.pmbk" --quiet 2> /dev/null ||
                { fault_bad=$((fault_bad + 1)); echo "$suffix $op N=$n: chain is not a valid prefix"; }
        fi
        "$PM" pack "$V/s1.pmtx" --chain "$T/f.pmbk" --block-txs 32 --rejects "$T/f.csv" \
            --save-snapshot "$T/f.state" --snapshot-every 4 --quiet 2> "$T/ferr2" &&
            cmp -s "$T/f.pmbk" "$T/fref.pmbk" && cmp -s "$T/f.csv" "$T/fref.csv" ||
            { fault_bad=$((fault_bad + 1)); echo "$suffix $op N=$n${short:+ short}: recovery differs: $(cat "$T/ferr" "$T/ferr2")"; }
        ls "$T" | grep -q '^f\..*tmp' && { fault_bad=$((fault_bad + 1)); echo "$suffix $op N=$n: temporary file left"; }
        n=$((n + 1))
    done
    fault_bad=$((fault_bad + 1)); echo "$suffix $op: no run completed in 200"
}
for op in open write fdatasync fsync ftruncate; do fault_loop f.pmbk $op; done
fault_loop f.pmbk write 3
for op in open write fdatasync; do fault_loop f.pmbk.runs $op; done
fault_loop f.pmbk.runs write 20
for op in open write fdatasync; do fault_loop f.csv $op; done
fault_loop f.csv write 7
for op in open write fsync rename; do fault_loop f.state.tmp $op; done
fault_loop f.state rename
[ $fault_bad -eq 0 ] && ok || bad "I/O faults: $fault_bad problems in $fault_runs runs"
echo "I/O faults: $fault_runs runs"
finish
