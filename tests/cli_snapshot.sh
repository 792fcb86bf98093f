#!/usr/bin/env bash
# The `snapshot` command: it verifies a chain as replay does and saves the
# state at its tip (the vector's figures in its JSON), refuses every
# invalid chain with replay's exit status, message and JSON while leaving
# an existing snapshot untouched, and reports usage errors with exit 2.
# When replay and pack know --from-snapshot (and pack --save-snapshot),
# restarts from snapshots are checked against full replays and the vectors.
# Usage: cli_snapshot.sh POSTMARK VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
need_vectors
# prefix_chain IN OUT K: the header and the first K blocks of a chain file.
prefix_chain() {
    python3 - "$1" "$2" "$3" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
k = int(sys.argv[3])
off = 60
for _ in range(k):
    (n,) = struct.unpack_from('<I', data, off)
    off += 4 + n
open(sys.argv[2], 'wb').write(data[:off])
PY
}

# ---- help and usage --------------------------------------------------------
"$PM" snapshot --help > "$T/help" 2>&1 && ok || bad "--help exit"
grep -q -- "-o" "$T/help" && grep -q "STATE" "$T/help" && ok || bad "--help text"
for args in "" "$V/s1.b32.pmbk" "-o $T/x.state" "$V/s1.b32.pmbk $V/s1.b4096.pmbk -o $T/x.state" \
            "$V/s1.b32.pmbk -o $T/x.state --threads 0" "$V/s1.b32.pmbk -o $T/x.state --bogus" \
            "$V/s1.b32.pmbk -o $T/x.state --assume-valid 12" "$V/s1.b32.pmbk -o"; do
    # shellcheck disable=SC2086
    "$PM" snapshot $args > /dev/null 2> "$T/err"
    [ $? -eq 2 ] && ok || bad "usage error not exit 2: snapshot $args"
    [ -s "$T/err" ] && ok || bad "usage error without a message: snapshot $args"
done
[ ! -e "$T/x.state" ] && ok || bad "a usage error wrote a snapshot"

# ---- a valid chain -----------------------------------------------------------
for threads in 1 2; do
    rm -f "$T/s.state"
    "$PM" snapshot "$V/s1.b32.pmbk" -o "$T/s.state" --threads $threads --json --quiet > "$T/s.json"
    [ $? -eq 0 ] && ok || bad "snapshot s1.b32 t$threads exit"
    [ -s "$T/s.state" ] && ok || bad "snapshot s1.b32 t$threads: no file"
    [ ! -e "$T/s.state.tmp" ] && ok || bad "snapshot s1.b32 t$threads: temporary file left"
    json_subset "$V/s1.b32.json" "$T/s.json" block_txs,accepted,rejected && ok || bad "snapshot json t$threads"
    python3 -c "
import json, os, sys
j = json.load(open(sys.argv[1]))
assert j['valid'] is True and j['snapshot'] == sys.argv[2] and j['bytes'] == os.path.getsize(sys.argv[2])
assert j['blocks'] == 9 and j['txs'] == 257
" "$T/s.json" "$T/s.state" && ok || bad "snapshot json fields t$threads"
done
head -c 8 "$T/s.state" | grep -q POSTMKSN && ok || bad "snapshot magic"
# The same summary on stderr without --json; nothing on stdout.
"$PM" snapshot "$V/s1.b32.pmbk" -o "$T/s2.state" > "$T/out" 2> "$T/err"
[ $? -eq 0 ] && [ ! -s "$T/out" ] && grep -q "saved to $T/s2.state" "$T/err" && ok || bad "snapshot summary"
# With --assume-valid (the tip's hash): the same state.
tip=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['tip'])" "$V/s1.b32.json")
"$PM" snapshot "$V/s1.b32.pmbk" -o "$T/s3.state" --assume-valid "$tip" --json --quiet > "$T/s3.json" \
    && ok || bad "snapshot --assume-valid exit"
json_subset "$V/s1.b32.json" "$T/s3.json" block_txs,accepted,rejected && ok || bad "snapshot --assume-valid json"

# A chain with no block: the empty state.
head -c 60 "$V/s1.b32.pmbk" > "$T/empty.pmbk"
"$PM" snapshot "$T/empty.pmbk" -o "$T/e.state" --json --quiet > "$T/e.json"
[ $? -eq 0 ] && ok || bad "snapshot of an empty chain exit"
python3 -c "
import json, sys
j = json.load(open(sys.argv[1]))
assert j['height'] == -1 and j['blocks'] == 0 and j['utxo_count'] == 0
assert j['tip'] == open(sys.argv[2]).read().split()[1]
" "$T/e.json" "$V/chain.txt" && ok || bad "snapshot of an empty chain json"

# ---- invalid chains: replay's verdict, nothing written ---------------------
cp "$T/s.state" "$T/keep.state"
cp "$V/s1.b32.pmbk" "$T/trunc.pmbk"
truncate -s -5 "$T/trunc.pmbk"
for f in "$V"/s1.bad.*.pmbk "$T/trunc.pmbk" "$V/s1.pmtx" "$T/missing.pmbk"; do
    name=$(basename "$f" .pmbk)
    av=""
    [ -f "$V/$name.json" ] && av=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('assume_valid',''))" "$V/$name.json")
    "$PM" replay "$f" ${av:+--assume-valid "$av"} > /dev/null 2> "$T/r.err"
    rrc=$?
    "$PM" replay "$f" ${av:+--assume-valid "$av"} --json --quiet > "$T/r.json" 2> /dev/null
    "$PM" snapshot "$f" -o "$T/keep.state" ${av:+--assume-valid "$av"} > /dev/null 2> "$T/s.err"
    src=$?
    "$PM" snapshot "$f" -o "$T/keep.state" ${av:+--assume-valid "$av"} --json --quiet > "$T/sj.json" 2> /dev/null
    if [ $rrc -eq 0 ]; then
        [ $src -eq 0 ] && ok || bad "$name: replay valid, snapshot exit $src"
        cp "$T/s.state" "$T/keep.state"
        continue
    fi
    [ $src -eq 1 ] && ok || bad "$name: snapshot exit $src, expected 1"
    [ "$(wc -l < "$T/s.err")" -eq 1 ] && ok || bad "$name: not a one-line message: $(cat "$T/s.err")"
    sed 's/^postmark replay:/postmark snapshot:/' "$T/r.err" | cmp -s - "$T/s.err" \
        && ok || bad "$name: message differs from replay's: $(cat "$T/s.err") / $(cat "$T/r.err")"
    if [ -s "$T/r.json" ]; then
        # BAD_HEADER: replay prints tx 0 where the contract says null.
        json_subset "$T/r.json" "$T/sj.json" tx && ok || bad "$name: json differs from replay's"
    fi
    cmp -s "$T/keep.state" "$T/s.state" && ok || bad "$name: the existing snapshot was changed"
    [ ! -e "$T/keep.state.tmp" ] && ok || bad "$name: temporary file left"
done

# An output that cannot be written: exit 1, a message naming it.
"$PM" snapshot "$V/s1.b32.pmbk" -o "$T/no/such/dir/x.state" > /dev/null 2> "$T/err"
[ $? -eq 1 ] && grep -q "no/such/dir/x.state" "$T/err" && ok || bad "unwritable output: $(cat "$T/err")"

# ---- restarts from a snapshot (once replay/pack know the options) ---------
if "$PM" replay --help 2>&1 | grep -q -- "--from-snapshot"; then
    "$PM" replay "$V/s1.b32.pmbk" --json --quiet > "$T/full.json"
    for k in 0 1 5 9; do
        prefix_chain "$V/s1.b32.pmbk" "$T/p$k.pmbk" $k
        "$PM" snapshot "$T/p$k.pmbk" -o "$T/p$k.state" --quiet > /dev/null && ok || bad "snapshot of prefix $k"
        "$PM" replay "$V/s1.b32.pmbk" --from-snapshot "$T/p$k.state" --json --quiet > "$T/fs.json"
        [ $? -eq 0 ] && ok || bad "replay --from-snapshot prefix $k exit"
        json_subset "$T/full.json" "$T/fs.json" seconds,tx_per_s,txs && ok || bad "replay --from-snapshot prefix $k json"
    done
    # Another chain of the same network: the tip is not in it.
    "$PM" replay "$V/s1.b4096.pmbk" --from-snapshot "$T/p5.state" > /dev/null 2> "$T/err"
    [ $? -eq 1 ] && grep -q "snapshot tip is not in this chain" "$T/err" && ok || bad "foreign tip: $(cat "$T/err")"
    # A chain shorter than the snapshot.
    "$PM" replay "$T/p1.pmbk" --from-snapshot "$T/p5.state" > /dev/null 2> "$T/err"
    [ $? -eq 1 ] && grep -q "snapshot tip is not in this chain" "$T/err" && ok || bad "short chain: $(cat "$T/err")"
    # Another network.
    python3 -c "
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); d[12] ^= 1
open(sys.argv[2], 'wb').write(d)" "$V/s1.b32.pmbk" "$T/other.pmbk"
    "$PM" replay "$T/other.pmbk" --from-snapshot "$T/p5.state" > /dev/null 2> "$T/err"
    [ $? -eq 1 ] && grep -q "another chain" "$T/err" && ok || bad "other network: $(cat "$T/err")"
    # A damaged snapshot: refused, the section named.
    python3 -c "
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); d[len(d) // 2] ^= 0x10
open(sys.argv[2], 'wb').write(d)" "$T/p5.state" "$T/damaged.state"
    "$PM" replay "$V/s1.b32.pmbk" --from-snapshot "$T/damaged.state" > /dev/null 2> "$T/err"
    [ $? -eq 1 ] && grep -q "section at byte" "$T/err" && ok || bad "damaged snapshot: $(cat "$T/err")"
else
    echo "SKIP: replay --from-snapshot not available yet"
fi

if "$PM" pack --help 2>&1 | grep -q -- "--from-snapshot"; then
    rm -f "$T/h.pmbk" "$T/h.pmbk.runs"
    "$PM" pack "$V/s1.half1.pmtx" --chain "$T/h.pmbk" --block-txs 32 --quiet > /dev/null && ok || bad "pack half1"
    "$PM" snapshot "$T/h.pmbk" -o "$T/h.state" --quiet > /dev/null && ok || bad "snapshot of half1"
    "$PM" pack "$V/s1.half2.pmtx" --chain "$T/h.pmbk" --block-txs 32 --from-snapshot "$T/h.state" \
        --rejects "$T/r2.csv" --json --quiet > "$T/h.json" && ok || bad "pack half2 --from-snapshot"
    cmp -s "$T/h.pmbk" "$V/s1.halves.b32.pmbk" && ok || bad "halves chain from a snapshot differs"
    cmp -s "$T/r2.csv" "$V/s1.halves.b32.rejects2.csv" && ok || bad "halves rejects from a snapshot differ"
    json_subset "$V/s1.halves.b32.json" "$T/h.json" block_txs && ok || bad "halves json from a snapshot"
else
    echo "SKIP: pack --from-snapshot not available yet"
fi

if "$PM" pack --help 2>&1 | grep -q -- "--save-snapshot" &&
   "$PM" replay --help 2>&1 | grep -q -- "--from-snapshot"; then
    rm -f "$T/c.pmbk" "$T/c.pmbk.runs"
    "$PM" pack "$V/s1.pmtx" --chain "$T/c.pmbk" --block-txs 32 --save-snapshot "$T/c.state" \
        --snapshot-every 2 --quiet > /dev/null && ok || bad "pack --save-snapshot"
    cmp -s "$T/c.pmbk" "$V/s1.b32.pmbk" && ok || bad "chain with --save-snapshot differs"
    "$PM" replay "$T/c.pmbk" --from-snapshot "$T/c.state" --json --quiet > "$T/cs.json" \
        && ok || bad "replay from pack's snapshot"
    json_subset "$V/s1.b32.json" "$T/cs.json" block_txs,accepted,rejected && ok || bad "replay from pack's snapshot json"
else
    echo "SKIP: pack --save-snapshot not available yet"
fi

finish
