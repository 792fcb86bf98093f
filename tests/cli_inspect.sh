#!/usr/bin/env bash
# cli_inspect.sh — `postmark inspect` on the vectors and on damaged files.
#
#  - inspect --json of every vector stream and chain: each decoded record
#    re-encodes to its "raw" bytes and its hashes recompute
#    (support/inspect_check.py, independent of the C code); the txids and
#    the MALFORMED records of s1.pmtx are those of hashes.txt.
#  - damaged files: a stream cut inside a record and inside a length
#    prefix, an oversized record followed by a good one, garbage after the
#    header: the whole file is still shown, exit 0; a bad header exits 1;
#    usage errors exit 2.
#
# Usage: bash cli_inspect.sh PATH/TO/postmark VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
need_vectors
CHECK="python3 $HERE/support/inspect_check.py"

# ---- vectors ---------------------------------------------------------------
for f in "$V"/*.pmtx "$V"/*.pmbk; do
    if "$PM" inspect --json "$f" >"$TMP/o.jsonl" 2>"$TMP/e.txt"; then ok; else fail "inspect $f exit $?"; fi
    if out=$($CHECK "$TMP/o.jsonl"); then ok; else fail "inspect_check $f: $out"; fi
done

# s1.pmtx: txids and MALFORMED records as hashes.txt lists them.
"$PM" inspect --json "$V/s1.pmtx" >"$TMP/s1.jsonl" 2>/dev/null
if python3 - "$TMP/s1.jsonl" "$V/hashes.txt" <<'EOF'
import json, sys
want = {}
for line in open(sys.argv[2]):
    if line.startswith("#") or not line.strip():
        continue
    p = line.split()
    want[int(p[0])] = p[1]
got = {}
for line in list(open(sys.argv[1]))[1:]:
    o = json.loads(line)
    got[o["index"]] = "MALFORMED" if "error" in o else o["txid"]
if got != want:
    bad = [i for i in want if got.get(i) != want[i]][:5]
    sys.exit("differ at %r" % bad)
EOF
then ok; else fail "s1.pmtx txids vs hashes.txt"; fi

# The human form of a chain says the merkle roots match.
"$PM" inspect "$V/s1.b32.pmbk" >"$TMP/h.txt" 2>/dev/null
[ "$(grep -c 'matches the transactions' "$TMP/h.txt")" -eq 9 ] && ok || fail "human chain output"
# And reports a root that does not.
"$PM" inspect "$V/s1.bad.sig_after_seal.pmbk" >"$TMP/h.txt" 2>"$TMP/e.txt"
grep -q 'does NOT match' "$TMP/h.txt" && grep -q 'record 4 at byte [0-9]*: BAD_MERKLE' "$TMP/e.txt" && ok ||
    fail "BAD_MERKLE not reported"

# ---- damaged streams -------------------------------------------------------
S=$V/s1.pmtx
size=$(stat -c %s "$S")
# Cut 10 bytes into the last record's body, and 2 bytes into a length prefix.
last_off=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-1]["offset"])' "$TMP/s1.jsonl")
head -c $((last_off + 14)) "$S" >"$TMP/cut_body.pmtx"
head -c $((last_off + 2)) "$S" >"$TMP/cut_prefix.pmtx"
for f in cut_body cut_prefix; do
    "$PM" inspect --json "$TMP/$f.pmtx" >"$TMP/o.jsonl" 2>"$TMP/e.txt"
    rc=$?
    [ $rc -eq 0 ] && ok || fail "$f: exit $rc"
    out=$($CHECK "$TMP/o.jsonl") && ok || fail "$f check: $out"
    [ "$out" = "records=300 txs=299 blocks=0 errors=4 truncated=1" ] && ok || fail "$f: $out"
    grep -q "record 299 at byte $last_off: MALFORMED: the file ends inside" "$TMP/e.txt" && ok ||
        fail "$f message: $(cat "$TMP/e.txt")"
done

# An oversized record (70,000 bytes) between two good ones; then garbage.
python3 - "$S" "$TMP/big.pmtx" "$TMP/garbage.pmtx" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
hdr = data[:60]
n = struct.unpack_from("<I", data, 60)[0]
first = data[60:64 + n]
open(sys.argv[2], "wb").write(hdr + first + struct.pack("<I", 70000) + b"\x01" * 70000 + first)
open(sys.argv[3], "wb").write(hdr + bytes((i * 37 + 11) % 256 for i in range(5000)))
EOF
"$PM" inspect --json "$TMP/big.pmtx" >"$TMP/o.jsonl" 2>"$TMP/e.txt"
[ $? -eq 0 ] && ok || fail "big: exit"
out=$($CHECK "$TMP/o.jsonl") && [ "$out" = "records=3 txs=3 blocks=0 errors=1 truncated=0" ] && ok || fail "big: $out"
grep -q "record 1 at byte [0-9]*: MALFORMED: size: size out of range" "$TMP/e.txt" && ok || fail "big message: $(cat "$TMP/e.txt")"
"$PM" inspect --json "$TMP/garbage.pmtx" >"$TMP/o.jsonl" 2>/dev/null
[ $? -eq 0 ] && ok || fail "garbage: exit"
$CHECK "$TMP/o.jsonl" >/dev/null && ok || fail "garbage check"
"$PM" inspect "$TMP/garbage.pmtx" >/dev/null 2>&1 && ok || fail "garbage human"

# ---- bad headers and usage -------------------------------------------------
expect_rc() { # rc what cmd...
    local want=$1 what=$2
    shift 2
    "$@" >"$TMP/o.txt" 2>"$TMP/e.txt"
    local rc=$?
    [ "$rc" -eq "$want" ] && ok || fail "$what: exit $rc, $want expected ($(head -c 200 "$TMP/e.txt"))"
}
head -c 59 "$S" >"$TMP/short.pmtx"
{ printf 'POSTMKXX'; tail -c +9 "$S"; } >"$TMP/magic.pmtx"
{ head -c 8 "$S"; printf '\002\000\000\000'; tail -c +13 "$S"; } >"$TMP/version.pmtx"
: >"$TMP/empty.pmtx"
for f in short magic version empty; do
    expect_rc 1 "bad header $f" "$PM" inspect --json "$TMP/$f.pmtx"
    grep -q "BAD_HEADER" "$TMP/e.txt" && ok || fail "$f: no BAD_HEADER message"
    python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); sys.exit(0 if o["error"]["reason"]=="BAD_HEADER" else 1)' "$TMP/o.txt" && ok || fail "$f: JSON header error"
done
expect_rc 1 "missing file" "$PM" inspect "$TMP/none.pmtx"
expect_rc 1 "a folder" "$PM" inspect "$TMP"
expect_rc 0 "--help" "$PM" inspect --help
expect_rc 2 "no file" "$PM" inspect
expect_rc 2 "unknown option" "$PM" inspect "$S" --bogus
expect_rc 2 "two files" "$PM" inspect "$S" "$S"

finish
