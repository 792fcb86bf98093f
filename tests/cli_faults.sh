#!/usr/bin/env bash
# Faults an operator meets (issue "Nothing lost, ever"), one check group per
# finding. After every fault the chain and the rejects equal an
# uninterrupted run of the same inputs, or the run refused to start.
#  1. a journal line cut by a full disk, at every byte offset of a line;
#     a real full disk (a small tmpfs) at many fill levels
#  2. a journal that cannot be opened (EACCES, EMFILE, EIO) is not "none"
#  3. another stream sharing the header and first records is packed from
#     record 0 (file and pipe); the same stream again adds nothing
#  4. an output that is an input is refused
#  5. outputs through symlinks and onto device nodes keep what the path is
#  6. --rejects to /dev/null and to a FIFO
#  7. replay --assume-valid: a FIFO is refused; a file replaced between the
#     search and the verifying read gives no verdict
#  8. SIGTERM ends a stalled feed (pipe, socket, FIFO without a writer)
#  9. a 4 GiB record from a socket client, under a memory limit
# 10. out of memory while queueing names the reason
# 11. --json to a full disk fails
# 12. control characters in arguments are escaped
# 13. replay of the chain a live pack has just created
# 14. --snapshot-every out of range says the range
# 15. no temporary files left after a full disk
# 16. trace of a chain with a partial last block
# 17. --block-txs range
# Usage: cli_faults.sh POSTMARK VECTORS_DIR   (root, for the tmpfs mounts)
. "$(dirname "$0")/support/cli_lib.sh" "$@"
need_vectors
SHIM=$(cd "$(dirname "$PM")" && pwd)/faultfs.so
[ -f "$SHIM" ] || { bad "no fault shim at $SHIM"; finish; }
# Preloading into an ASan build: the sanitizer's runtime need not be first.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
# A feed's stall: a sleep of a length no other test uses, so that it can be
# ended by name without touching anyone else's.
STALL=47.$$
MNT=""
cleanup() {
    [ -n "$MNT" ] && umount "$MNT" 2> /dev/null
    jobs -p | xargs -r kill -9 2> /dev/null
    pkill -f "sleep $STALL" 2> /dev/null
    rm -rf "$T"
}
trap cleanup EXIT

S1=$V/s1.pmtx
REF=$V/s1.b32.pmbk
REFCSV=$V/s1.b32.rejects.csv
# faulty ENV... -- COMMAND: the command with the shim preloaded.
faulty() {
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    env LD_PRELOAD="$SHIM" "${envs[@]}" "$@"
}
# same_as_ref CHAIN CSV: the uninterrupted result.
same_as_ref() { cmp -s "$1" "$REF" && cmp -s "$2" "$REFCSV"; }
pack32() { "$PM" pack "$S1" --chain "$1" --block-txs 32 --rejects "$2" --quiet; }

# ---- 1. a journal line cut at every byte offset --------------------------
"$PM" pack "$S1" --chain "$T/full.pmbk" --block-txs 32 --rejects "$T/full.csv" --quiet || bad "reference pack"
same_as_ref "$T/full.pmbk" "$T/full.csv" && ok || bad "reference pack differs from the vectors"
# The state when block 5's line was being appended: blocks 0..4 in the
# chain, their lines in the journal, then a part of block 5's line.
python3 - "$T/full.pmbk" "$T" <<'PY'
import struct, sys
chain, out = sys.argv[1], sys.argv[2]
d = open(chain, 'rb').read(); o = 60; ends = []
while o < len(d):
    o += 4 + struct.unpack('<I', d[o:o+4])[0]; ends.append(o)
open(out + '/five.pmbk', 'wb').write(d[:ends[4]])
lines = open(chain + '.runs').read().splitlines(True)
open(out + '/five.runs', 'w').write(''.join(lines[:5]))
open(out + '/line6', 'w').write(lines[5])
PY
len6=$(wc -c < "$T/line6")
cut_bad=0
for j in $(seq 1 $((len6 - 1))); do
    cp "$T/five.pmbk" "$T/j.pmbk"
    { cat "$T/five.runs"; head -c "$j" "$T/line6"; } > "$T/j.pmbk.runs"
    cp "$T/full.csv" "$T/j.csv"
    pack32 "$T/j.pmbk" "$T/j.csv" 2> "$T/j.err" || { cut_bad=$((cut_bad + 1)); echo "cut at $j: pack failed: $(cat "$T/j.err")"; continue; }
    same_as_ref "$T/j.pmbk" "$T/j.csv" || { cut_bad=$((cut_bad + 1)); echo "cut at $j: result differs"; continue; }
    # The next run must find a clean journal: it resumes at the end.
    "$PM" pack "$S1" --chain "$T/j.pmbk" --block-txs 32 --rejects "$T/j.csv" --json --quiet > "$T/j.json" &&
        grep -q '"blocks_added": 0' "$T/j.json" && grep -q '"rejected": 0' "$T/j.json" &&
        same_as_ref "$T/j.pmbk" "$T/j.csv" || { cut_bad=$((cut_bad + 1)); echo "cut at $j: a later run is wrong"; }
done
[ $cut_bad -eq 0 ] && ok || bad "cut journal line: $cut_bad of $((len6 - 1)) offsets wrong"

# A real full disk: the chain, its journal and the rejects on a small
# tmpfs, filled at many different points; then the disk grows and the same
# command completes to the uninterrupted result.
MNT=$T/mnt
mkdir -p "$MNT"
if mount -t tmpfs -o size=64k tmpfs "$MNT"; then
    full_bad=0 full_hit=0
    for kb in 8 12 16 24 32 48 64 96 128 160; do
        rm -f "$MNT"/*
        mount -o remount,size=${kb}k "$MNT"
        if pack32 "$MNT/c.pmbk" "$MNT/r.csv" 2> "$T/full.err"; then :; else
            full_hit=$((full_hit + 1))
            grep -q "No space left on device" "$T/full.err" || { full_bad=$((full_bad + 1)); echo "${kb}k: $(cat "$T/full.err")"; }
            grep -q "No such file" "$T/full.err" && { full_bad=$((full_bad + 1)); echo "${kb}k: stale errno"; }
        fi
        ls "$MNT" | grep -q '\.tmp' && { full_bad=$((full_bad + 1)); echo "${kb}k: temporary file left: $(ls "$MNT")"; }
        mount -o remount,size=4m "$MNT"
        pack32 "$MNT/c.pmbk" "$MNT/r.csv" 2> "$T/full.err" || { full_bad=$((full_bad + 1)); echo "${kb}k: rerun failed: $(cat "$T/full.err")"; }
        same_as_ref "$MNT/c.pmbk" "$MNT/r.csv" || { full_bad=$((full_bad + 1)); echo "${kb}k: result differs"; }
    done
    [ $full_bad -eq 0 ] && ok || bad "full disk: $full_bad problems"
    [ $full_hit -ge 5 ] && ok || bad "full disk: only $full_hit runs hit a full disk"
    umount "$MNT" && MNT=""
else
    bad "cannot mount a tmpfs (the full-disk checks need root)"
fi

# ---- 2. a journal that cannot be opened ------------------------------------
for e in EACCES EMFILE EIO; do
    cp "$T/five.pmbk" "$T/o.pmbk"
    cp "$T/five.runs" "$T/o.pmbk.runs"
    cp "$T/full.csv" "$T/o.csv"
    faulty PM_FAULT_PATH=o.pmbk.runs PM_FAULT_OP=open PM_FAULT_N=1 PM_FAULT_ERRNO=$e -- \
        "$PM" pack "$S1" --chain "$T/o.pmbk" --block-txs 32 --rejects "$T/o.csv" --quiet 2> "$T/o.err"
    rc=$?
    [ $rc -eq 1 ] && grep -q "o.pmbk.runs" "$T/o.err" && cmp -s "$T/o.pmbk" "$T/five.pmbk" &&
        cmp -s "$T/o.csv" "$T/full.csv" && ok || bad "journal open $e: rc $rc, $(cat "$T/o.err")"
    pack32 "$T/o.pmbk" "$T/o.csv" && same_as_ref "$T/o.pmbk" "$T/o.csv" && ok || bad "after journal open $e"
done

# ---- 3. the same stream is its whole prefix ----------------------------------
# S2: s1's header and first 40 records, then s1.half2's records.
python3 - "$S1" "$V/s1.half2.pmtx" "$T/s2.pmtx" <<'PY'
import struct, sys
def recs(p):
    d = open(p, 'rb').read(); o = 60; out = []
    while o < len(d):
        n = struct.unpack('<I', d[o:o+4])[0]; out.append(d[o:o+4+n]); o += 4 + n
    return d[:60], out
h, a = recs(sys.argv[1]); _, b = recs(sys.argv[2])
open(sys.argv[3], 'wb').write(h + b''.join(a[:40] + b))
PY
# The chain after s1, with its journal; then S2 packed onto it, and onto a
# copy without a journal (what "another stream" must give).
for how in file pipe; do
    cp "$T/full.pmbk" "$T/d.pmbk"; cp "$T/full.pmbk.runs" "$T/d.pmbk.runs"
    cp "$T/full.pmbk" "$T/e.pmbk"
    if [ $how = file ]; then
        "$PM" pack "$T/s2.pmtx" --chain "$T/d.pmbk" --block-txs 32 --rejects "$T/d.csv" --json --quiet > "$T/d.json"
    else
        cat "$T/s2.pmtx" | "$PM" pack - --chain "$T/d.pmbk" --block-txs 32 --rejects "$T/d.csv" --json --quiet > "$T/d.json"
    fi
    "$PM" pack "$T/s2.pmtx" --chain "$T/e.pmbk" --block-txs 32 --rejects "$T/e.csv" --json --quiet > "$T/e.json"
    cmp -s "$T/d.pmbk" "$T/e.pmbk" && cmp -s "$T/d.csv" "$T/e.csv" && ok ||
        bad "another stream sharing a prefix ($how): not packed from record 0"
    grep -q '"resumed_at": 0' "$T/d.json" && ok || bad "another stream ($how): $(cat "$T/d.json")"
    # Every record of S2 has a verdict: accepted + rejected = its records.
    python3 -c "
import json,sys; j=json.load(open('$T/d.json')); sys.exit(0 if j['accepted']+j['rejected']==40+$(python3 -c "
import struct; d=open('$V/s1.half2.pmtx','rb').read(); o=60; n=0
while o < len(d): o += 4 + struct.unpack('<I', d[o:o+4])[0]; n += 1
print(n)") else 1)" && ok || bad "another stream ($how): records left unvalidated"
done
# The same stream again, after it finished: nothing added, not a line.
cp "$T/full.csv" "$T/again.csv"
cp "$T/full.pmbk" "$T/again.pmbk"; cp "$T/full.pmbk.runs" "$T/again.pmbk.runs"
"$PM" pack "$S1" --chain "$T/again.pmbk" --block-txs 32 --rejects "$T/again.csv" --json --quiet > "$T/again.json"
grep -q '"blocks_added": 0' "$T/again.json" && grep -q '"rejected": 0' "$T/again.json" &&
    same_as_ref "$T/again.pmbk" "$T/again.csv" && ok || bad "the same stream again: $(cat "$T/again.json")"
# And through a pipe.
cat "$S1" | "$PM" pack - --chain "$T/again.pmbk" --block-txs 32 --rejects "$T/again.csv" --json --quiet > "$T/again.json"
grep -q '"blocks_added": 0' "$T/again.json" && same_as_ref "$T/again.pmbk" "$T/again.csv" && ok ||
    bad "the same stream again through a pipe"

# ---- 4. outputs that are inputs -------------------------------------------------
cp "$REF" "$T/in.pmbk"
"$PM" snapshot "$T/in.pmbk" -o "$T/in.state" --quiet || bad "snapshot for the input checks"
ln -sf "$T/in.pmbk" "$T/link.pmbk"
check_refused() { # WHAT COMMAND...
    local what=$1; shift
    cp "$REF" "$T/in.pmbk"; cp "$S1" "$T/in.pmtx"
    "$@" > /dev/null 2> "$T/refuse.err"
    local rc=$?
    [ $rc -eq 1 ] && grep -q "input of this run" "$T/refuse.err" && cmp -s "$T/in.pmbk" "$REF" &&
        cmp -s "$T/in.pmtx" "$S1" && ok || bad "$what: rc $rc, $(cat "$T/refuse.err")"
}
check_refused "--rejects CHAIN" "$PM" pack "$T/in.pmtx" --chain "$T/in.pmbk" --rejects "$T/in.pmbk" --quiet
check_refused "--rejects STREAM" "$PM" pack "$T/in.pmtx" --chain "$T/in.pmbk" --rejects "$T/in.pmtx" --quiet
check_refused "--rejects link to CHAIN" "$PM" pack "$T/in.pmtx" --chain "$T/in.pmbk" --rejects "$T/link.pmbk" --quiet
check_refused "--save-snapshot CHAIN" "$PM" pack "$T/in.pmtx" --chain "$T/in.pmbk" --save-snapshot "$T/in.pmbk" --snapshot-every 1 --quiet
check_refused "snapshot -o CHAIN" "$PM" snapshot "$T/in.pmbk" -o "$T/in.pmbk" --quiet
check_refused "snapshot -o its own --from-snapshot" "$PM" snapshot "$T/in.pmbk" --from-snapshot "$T/in.state" -o "$T/in.state" --quiet

# ---- 5. symlinks and device nodes keep what they are ------------------------------
mknod "$T/null" c 1 3 && ok || bad "mknod (needs root)"
"$PM" gen --shape transfers --txs 50 --seed 3 -o "$T/null" > /dev/null 2>&1
[ $? -eq 0 ] && [ -c "$T/null" ] && ok || bad "gen -o DEVICE replaced the device node"
"$PM" snapshot "$REF" -o "$T/null" --quiet 2> "$T/dev.err"
[ $? -eq 1 ] && [ -c "$T/null" ] && grep -q "not a regular file" "$T/dev.err" && ok ||
    bad "snapshot -o DEVICE: $(cat "$T/dev.err"; stat -c %F "$T/null")"
rm -f "$T/sv.pmbk"*
"$PM" pack "$S1" --chain "$T/sv.pmbk" --block-txs 32 --save-snapshot "$T/null" --snapshot-every 2 --quiet 2> /dev/null
[ -c "$T/null" ] && ok || bad "--save-snapshot DEVICE replaced the device node"
"$PM" gen --shape transfers --txs 50 --seed 3 -o "$T/g.real" > /dev/null 2>&1
ln -sf g.target "$T/g.link"
"$PM" gen --shape transfers --txs 50 --seed 3 -o "$T/g.link" > /dev/null 2>&1
[ $? -eq 0 ] && [ -L "$T/g.link" ] && cmp -s "$T/g.target" "$T/g.real" && ok || bad "gen -o SYMLINK replaced the link"
# A resumed --rejects through a symlink: the link stays, its file is right.
rm -f "$T/sl.pmbk"*; : > "$T/sl.target"; ln -sf sl.target "$T/sl.csv"
faulty PM_FAULT_PATH=sl.pmbk PM_FAULT_OP=fdatasync PM_FAULT_N=4 -- \
    "$PM" pack "$S1" --chain "$T/sl.pmbk" --block-txs 32 --rejects "$T/sl.csv" --quiet 2> /dev/null
[ $? -eq 1 ] && ok || bad "the fault before the resume did not fire"
pack32 "$T/sl.pmbk" "$T/sl.csv" && [ -L "$T/sl.csv" ] && same_as_ref "$T/sl.pmbk" "$T/sl.target" && ok ||
    bad "resumed --rejects through a symlink"

# ---- 6. --rejects to /dev/null and to a FIFO ---------------------------------------
rm -f "$T/dn.pmbk"*
pack32 "$T/dn.pmbk" /dev/null 2> "$T/dn.err" && cmp -s "$T/dn.pmbk" "$REF" && ok ||
    bad "--rejects /dev/null: $(cat "$T/dn.err")"
mkfifo "$T/rej.fifo"
cat "$T/rej.fifo" > "$T/rej.out" &
reader=$!
rm -f "$T/ff.pmbk"*
pack32 "$T/ff.pmbk" "$T/rej.fifo" 2> "$T/ff.err"
rc=$?
wait $reader
[ $rc -eq 0 ] && same_as_ref "$T/ff.pmbk" "$T/rej.out" && [ -p "$T/rej.fifo" ] && ok ||
    bad "--rejects FIFO: rc $rc, $(cat "$T/ff.err")"

# ---- 7. replay --assume-valid reads once -------------------------------------------
tip=$(python3 -c "import json; print(json.load(open('$V/s1.b32.json'))['tip'])")
mkfifo "$T/av.fifo"
cat "$V/s1.bad.sealed_bad_signature.pmbk" > "$T/av.fifo" &
writer=$!
"$PM" replay "$T/av.fifo" --assume-valid "$tip" --json > "$T/av.json" 2> "$T/av.err"
rc=$?
kill $writer 2> /dev/null; wait $writer 2> /dev/null
[ $rc -ne 0 ] && ! grep -q '"valid": true' "$T/av.json" && ok || bad "assume-valid on a FIFO: rc $rc $(cat "$T/av.json")"
# The file replaced between the search and the verifying read (the shim
# renames the bad chain onto it at that open).
cp "$REF" "$T/av.pmbk"; cp "$V/s1.bad.sealed_bad_signature.pmbk" "$T/av.bad"
faulty PM_FAULT_PATH="$T/av.pmbk" PM_FAULT_OP=open PM_FAULT_N=3 PM_FAULT_SWAP="$T/av.bad" PM_FAULT_LOG="$T/av.log" -- \
    "$PM" replay "$T/av.pmbk" --assume-valid "$tip" --json > "$T/av.json" 2> "$T/av.err"
rc=$?
[ -s "$T/av.log" ] && cmp -s "$T/av.pmbk" "$V/s1.bad.sealed_bad_signature.pmbk" && ok || bad "the swap did not happen"
[ $rc -eq 1 ] && ! grep -q '"valid": true' "$T/av.json" && grep -q "changed while it was read" "$T/av.err" && ok ||
    bad "assume-valid on a replaced file: rc $rc $(cat "$T/av.json" "$T/av.err")"

# ---- 8. SIGTERM ends a stalled feed -------------------------------------------------
# term_stalled NAME FEED_SETUP: FEED is what pack reads; it stalls after
# 100 records (the writer keeps it open). SIGTERM must end pack within a
# second, with the open block in the chain.
head100=$T/head100.pmtx
python3 - "$S1" "$head100" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read(); o = 60
for _ in range(100):
    o += 4 + struct.unpack('<I', d[o:o+4])[0]
open(sys.argv[2], 'wb').write(d[:o])
PY
"$PM" pack "$head100" --chain "$T/h100.pmbk" --json --quiet > "$T/h100.json" || bad "pack of 100 records"
accepted100=$(python3 -c "import json; print(json.load(open('$T/h100.json'))['accepted'])")
# handles_term PID: wait until the process catches SIGTERM (its handler is
# installed: SigCgt bit 15), so the signal tests never race its start.
handles_term() {
    local i mask
    for i in $(seq 1 200); do
        mask=$(awk '/^SigCgt:/ {print $2}' "/proc/$1/status" 2> /dev/null)
        [ -n "$mask" ] && [ $((0x$mask & 0x4000)) -ne 0 ] && return 0
        sleep 0.05
    done
    return 1
}
# fed: wait until the feeder says all 100 records are sent (it touches
# $T/fed), then a moment for pack to take them in.
fed() {
    for _ in $(seq 1 200); do [ -f "$T/fed" ] && break; sleep 0.05; done
    sleep 0.5
}
term_check() { # NAME PID CHAIN
    local t0 rc dt
    fed
    handles_term "$2"
    t0=$(date +%s%N)
    kill -TERM "$2"
    wait "$2"
    rc=$?
    dt=$((($(date +%s%N) - t0) / 1000000))
    "$PM" replay "$3" --json --quiet > "$T/term.json" 2> /dev/null
    [ $rc -eq 1 ] && [ $dt -lt 1000 ] && grep -q "\"txs\": $accepted100" "$T/term.json" && ok ||
        bad "SIGTERM on a stalled $1: rc $rc after ${dt} ms, $(cat "$T/term.json")"
}
mkfifo "$T/feed.fifo"
rm -f "$T/fed"
(cat "$head100"; touch "$T/fed"; sleep "$STALL") > "$T/feed.fifo" &
feeder=$!
rm -f "$T/t1.pmbk"*
"$PM" pack "$T/feed.fifo" --chain "$T/t1.pmbk" --quiet 2> /dev/null &
term_check fifo $! "$T/t1.pmbk"
kill $feeder 2> /dev/null; wait $feeder 2> /dev/null
rm -f "$T/t2.pmbk"*
rm -f "$T/fed"
(cat "$head100"; touch "$T/fed"; sleep "$STALL") | { "$PM" pack - --chain "$T/t2.pmbk" --quiet 2> /dev/null; echo $? > "$T/t2.rc"; } &
fed
pid=$(pgrep -n -f "pack - --chain $T/t2.pmbk" | head -n 1)
handles_term "$pid"
t0=$(date +%s%N)
kill -TERM "$pid" 2> /dev/null
for _ in $(seq 1 40); do [ -f "$T/t2.rc" ] && break; sleep 0.05; done
dt=$((($(date +%s%N) - t0) / 1000000))
"$PM" replay "$T/t2.pmbk" --json --quiet > "$T/term.json" 2> /dev/null
[ "$(cat "$T/t2.rc" 2> /dev/null)" = 1 ] && [ $dt -lt 1000 ] && grep -q "\"txs\": $accepted100" "$T/term.json" && ok ||
    bad "SIGTERM on a stalled pipe: after ${dt} ms, $(cat "$T/term.json")"
pkill -f "sleep $STALL" 2> /dev/null
# A socket whose node sends 100 records and then nothing.
rm -f "$T/t3.pmbk"*
"$PM" pack "unix:$T/feed.sock" --chain "$T/t3.pmbk" --quiet 2> /dev/null &
packer=$!
rm -f "$T/fed"
python3 - "$T/feed.sock" "$head100" "$T/fed" <<'PY' &
import socket, sys, time
for _ in range(500):
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); break
    except OSError:
        time.sleep(0.02)
s.sendall(open(sys.argv[2], 'rb').read()); open(sys.argv[3], 'w').close(); time.sleep(10)
PY
node=$!
term_check socket $packer "$T/t3.pmbk"
kill $node 2> /dev/null; wait $node 2> /dev/null
# Nobody ever writes: a FIFO without a writer, a socket nobody connects to.
for feed in "$T/nowriter.fifo" "unix:$T/nobody.sock"; do
    [ "$feed" = "$T/nowriter.fifo" ] && mkfifo "$feed"
    rm -f "$T/t4.pmbk"*
    "$PM" pack "$feed" --chain "$T/t4.pmbk" --quiet 2> /dev/null &
    pid=$!
    handles_term $pid
    sleep 0.3
    t0=$(date +%s%N)
    kill -TERM $pid
    wait $pid
    rc=$?
    dt=$((($(date +%s%N) - t0) / 1000000))
    [ $rc -eq 1 ] && [ $dt -lt 1000 ] && ok || bad "SIGTERM while waiting for $feed: rc $rc after $dt ms"
done

# ---- 9. a 4 GiB record from a socket client, under a memory limit -------------------
cat > "$T/huge.py" <<'PY'
import socket, struct, sys, time
path, stream, declared, whole = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "whole"
d = open(stream, 'rb').read(); o = 60; recs = []
while o < len(d):
    n = struct.unpack('<I', d[o:o+4])[0]; recs.append(d[o:o+4+n]); o += 4 + n
for _ in range(200):
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(path); break
    except OSError:
        time.sleep(0.02)
s.sendall(d[:60] + b''.join(recs[:10]) + struct.pack('<I', declared))
if whole:
    chunk = bytes(1 << 20); left = declared
    while left:
        k = min(left, len(chunk)); s.sendall(chunk[:k]); left -= k
    s.sendall(b''.join(recs[10:]))
s.close()
PY
# The expected rejects: the vectors' with a MALFORMED at index 10, the
# indexes after it one higher.
python3 - "$REFCSV" "$T/huge.expected" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
out = [lines[0]]; added = False
for l in lines[1:]:
    i, rest = l.split(',', 1)
    if int(i) >= 10 and not added:
        out.append('10,,MALFORMED'); added = True
    out.append('%d,%s' % (int(i) + (1 if int(i) >= 10 else 0), rest))
open(sys.argv[2], 'w').write('\n'.join(out) + '\n')
PY
# bounded PREFIX COMMAND...: run it under a 1.5 GB address-space limit
# (not in a sanitizer build: its shadow memory needs terabytes of address
# space) and write its peak RSS in KiB to PREFIX.rss.
if ldd "$PM" 2> /dev/null | grep -Eq 'libasan|libtsan'; then VLIMIT=unlimited; else VLIMIT=1500000; fi
bounded() {
    local prefix=$1; shift
    python3 - "$prefix" "$VLIMIT" "$@" <<'PY'
import resource, subprocess, sys
prefix, vlimit, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
def limit():
    if vlimit != 'unlimited':
        resource.setrlimit(resource.RLIMIT_AS, (int(vlimit) * 1024,) * 2)
with open(prefix + '.err', 'w') as err:
    rc = subprocess.run(cmd, stderr=err, preexec_fn=limit).returncode
open(prefix + '.rss', 'w').write('%d\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc if rc >= 0 else 128 - rc)
PY
}
# huge NAME whole|cut: a client sends 10 records, a 4 GiB length and (whole)
# its bytes and the rest of s1, or (cut) hangs up. Sets rc.
huge() {
    rm -f "$T/$1.pmbk"*
    bounded "$T/$1" "$PM" pack "unix:$T/$1.sock" --chain "$T/$1.pmbk" --block-txs 32 \
        --rejects "$T/$1.csv" --threads 2 --quiet &
    local packer=$!
    python3 "$T/huge.py" "$T/$1.sock" "$S1" 4294967295 "$2"
    wait $packer
    rc=$?
}
huge huge whole
[ $rc -eq 0 ] && cmp -s "$T/huge.pmbk" "$REF" && cmp -s "$T/huge.csv" "$T/huge.expected" && ok ||
    bad "4 GiB record from a socket: rc $rc, $(cat "$T/huge.err")"
[ "$(cat "$T/huge.rss")" -lt 1000000 ] && ok || bad "4 GiB record: peak RSS $(cat "$T/huge.rss") KiB"
echo "4 GiB record from a socket: peak RSS $(cat "$T/huge.rss") KiB, address space limit $VLIMIT"
# The same length, then the client hangs up: a truncated stream.
huge huge2 cut
[ $rc -eq 0 ] && [ "$(tail -n 1 "$T/huge2.csv")" = "10,,MALFORMED" ] && ok || bad "4 GiB length then hang-up: $(cat "$T/huge2.err")"

# ---- 10. out of memory while queueing names the reason -------------------------------
# The pack's batch arena is the first 1 MiB realloc (the shim fails it).
rm -f "$T/oom.pmbk"*
faulty PM_FAULT_PATH=x PM_FAULT_OP=realloc PM_FAULT_MIN=1048576 PM_FAULT_N=1 -- \
    "$PM" pack "$S1" --chain "$T/oom.pmbk" --quiet 2> "$T/oom.err"
rc=$?
[ $rc -eq 1 ] && grep -Eq "out of memory|Out of memory" "$T/oom.err" && ! grep -Eq ': $' "$T/oom.err" && ok ||
    bad "out of memory while queueing: rc $rc, '$(cat "$T/oom.err")'"

# ---- 11. --json to a full disk --------------------------------------------------------
"$PM" replay "$REF" --json --quiet > /dev/full 2> "$T/full.err"
[ $? -eq 1 ] && grep -q "No space left" "$T/full.err" && ok || bad "replay --json > /dev/full"
rm -f "$T/jf.pmbk"*
"$PM" pack "$S1" --chain "$T/jf.pmbk" --json --quiet > /dev/full 2> /dev/null
[ $? -eq 1 ] && ok || bad "pack --json > /dev/full exits 0"

# ---- 12. control characters are escaped -------------------------------------------------
"$PM" replay "$T/no$(printf '\033')[2Jsuch" 2> "$T/ctl.err"
! grep -q "$(printf '\033')" "$T/ctl.err" && grep -q 'no\\x1b\[2Jsuch' "$T/ctl.err" && ok ||
    bad "control characters reach the terminal raw"
"$PM" $(printf 'pa\033ck') 2> "$T/ctl.err"
! grep -q "$(printf '\033')" "$T/ctl.err" && ok || bad "control characters in the command name"

# ---- 13. replay of the chain a live pack has just created ---------------------------------
mkfifo "$T/live.fifo"
(head -c 60 "$S1"; sleep "$STALL") > "$T/live.fifo" &
feeder=$!
rm -f "$T/live.pmbk"*
"$PM" pack "$T/live.fifo" --chain "$T/live.pmbk" --quiet 2> /dev/null &
packer=$!
for _ in $(seq 1 200); do [ -f "$T/live.pmbk" ] && break; sleep 0.05; done
"$PM" replay "$T/live.pmbk" --json > "$T/live.json" 2> "$T/live.err"
rc=$?
[ $rc -eq 0 ] && grep -q '"blocks": 0' "$T/live.json" && ! grep -q BAD_HEADER "$T/live.json" "$T/live.err" && ok ||
    bad "replay of a chain being created: rc $rc $(cat "$T/live.json" "$T/live.err")"
kill -TERM $packer; wait $packer 2> /dev/null
kill $feeder 2> /dev/null; wait $feeder 2> /dev/null

# ---- 14. --snapshot-every out of range -------------------------------------------------------
"$PM" pack "$S1" --chain "$T/x.pmbk" --save-snapshot "$T/x.state" --snapshot-every 4294967296 2> "$T/se.err"
[ $? -eq 2 ] && grep -q "1\.\.4294967295" "$T/se.err" && ok || bad "--snapshot-every 2^32: $(cat "$T/se.err")"

# ---- 15. no temporary rejects file after a full disk (checked in 1: none on the tmpfs) ----
rm -f "$T/tmpf.pmbk"*
faulty PM_FAULT_PATH=tmpf.csv PM_FAULT_OP=write PM_FAULT_N=2 -- \
    "$PM" pack "$S1" --chain "$T/tmpf.pmbk" --block-txs 32 --rejects "$T/tmpf.csv" --quiet 2> /dev/null
faulty PM_FAULT_PATH=tmpf.csv PM_FAULT_OP=write PM_FAULT_N=1 -- \
    "$PM" pack "$S1" --chain "$T/tmpf.pmbk" --block-txs 32 --rejects "$T/tmpf.csv" --quiet 2> /dev/null
ls "$T" | grep -q 'tmpf.csv.tmp' && bad "a temporary rejects file was left" || ok
pack32 "$T/tmpf.pmbk" "$T/tmpf.csv" && same_as_ref "$T/tmpf.pmbk" "$T/tmpf.csv" && ok || bad "after rejects write faults"

# ---- 16. trace of a chain with a partial last block ---------------------------------------
cp "$REF" "$T/part.pmbk"
truncate -s -100 "$T/part.pmbk"
python3 - "$REF" "$T/whole8.pmbk" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read(); o = 60; ends = []
while o < len(d):
    o += 4 + struct.unpack('<I', d[o:o+4])[0]; ends.append(o)
open(sys.argv[2], 'wb').write(d[:ends[-2]])
PY
stamp=$(python3 -c "import json; t=json.load(open('$V/s1.b32.traces.json')); print((t if isinstance(t, list) else t['traces'])[0]['stamp'])" 2> /dev/null)
"$PM" trace "$T/part.pmbk" "$stamp" --json > "$T/part.json" 2> "$T/part.err"
rc=$?
"$PM" trace "$T/whole8.pmbk" "$stamp" --json > "$T/whole8.json" 2> /dev/null
[ $rc -eq 0 ] && grep -q "warning" "$T/part.err" &&
    python3 -c "
import json,sys; a=json.load(open('$T/part.json')); b=json.load(open('$T/whole8.json'))
a.pop('seconds',None); b.pop('seconds',None); sys.exit(a!=b)" && ok || bad "trace of a partial last block ($stamp): rc $rc $(cat "$T/part.err")"

# ---- 17. --block-txs range --------------------------------------------------------------------
rm -f "$T/bt.pmbk"*
"$PM" pack "$S1" --chain "$T/bt.pmbk" --block-txs 65536 --quiet && ok || bad "--block-txs 65536 refused"
for n in 0 65537; do
    "$PM" pack "$S1" --chain "$T/bt2.pmbk" --block-txs $n 2> "$T/bt.err"
    [ $? -eq 2 ] && grep -q "1\.\.65536" "$T/bt.err" && ok || bad "--block-txs $n"
done
grep -q "1 to 65,536" "$HERE/../README.md" 2> /dev/null || grep -q "1..65536" "$HERE/../README.md" && ok ||
    bad "README does not document --block-txs 1..65536"
finish
