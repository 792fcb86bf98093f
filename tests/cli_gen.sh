#!/usr/bin/env bash
# cli_gen.sh — `postmark gen`.
#
#  - the same options give the same bytes (cmp), whatever --threads; another
#    seed gives other bytes;
#  - `inspect --json` of the streams of every shape agrees with the raw
#    bytes it carries: the decoded fields re-encode (protocol §3, in
#    Python: support/inspect_check.py) to "raw", and txids recompute; the
#    records inspect cannot decode are exactly the MALFORMED ones gen
#    planned;
#  - packing the market stream rejects, reason by reason, what gen planned;
#  - usage errors exit 2 and leave no file; an unwritable output exits 1.
#
# Usage: bash cli_gen.sh PATH/TO/postmark VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
CHECK="python3 $HERE/support/inspect_check.py"

RATES=(--double-spend-ppm 6000 --bad-signature-ppm 5000 --conflict-ppm 4000 --replay-ppm 4000
       --malformed-ppm 5000 --chain-ppm 20000 --other-ppm 5000)

# ---- determinism -----------------------------------------------------------
"$PM" gen --shape market --txs 4000 --seed 11 -o "$TMP/a.pmtx" "${RATES[@]}" --json >"$TMP/a.json" 2>/dev/null &&
    ok || fail "gen a"
"$PM" gen --shape market --txs 4000 --seed 11 -o "$TMP/b.pmtx" "${RATES[@]}" --threads 1 2>/dev/null &&
    ok || fail "gen b"
"$PM" gen -o "$TMP/c.pmtx" --seed 11 "${RATES[@]}" --txs 4000 --threads 2 --shape market 2>/dev/null &&
    ok || fail "gen c"
cmp -s "$TMP/a.pmtx" "$TMP/b.pmtx" && ok || fail "same seed, 1 thread: other bytes"
cmp -s "$TMP/a.pmtx" "$TMP/c.pmtx" && ok || fail "same seed, options reordered: other bytes"
"$PM" gen --shape market --txs 4000 --seed 12 -o "$TMP/d.pmtx" "${RATES[@]}" 2>/dev/null
cmp -s "$TMP/a.pmtx" "$TMP/d.pmtx" && fail "another seed, same bytes" || ok
ls "$TMP"/*.tmp.* >/dev/null 2>&1 && fail "temporary files left" || ok

# gen --json: records and planned counts add up.
python3 - "$TMP/a.json" "$TMP/a.pmtx" <<'EOF' && ok || fail "gen --json"
import json, os, sys
g = json.load(open(sys.argv[1]))
assert g["records"] == 4000 and g["txs"] == 4000, g
assert g["bytes"] == os.path.getsize(sys.argv[2])
assert g["planned_accepted"] + g["planned_rejected"] == 4000
assert sum(g["planned_rejects"].values()) == g["planned_rejected"]
assert g["planned_rejected"] > 0 and "MALFORMED" in g["planned_rejects"], g
EOF

# ---- inspect agrees with the raw bytes ---------------------------------------
"$PM" inspect --json "$TMP/a.pmtx" >"$TMP/a.jsonl" 2>/dev/null && ok || fail "inspect market"
out=$($CHECK "$TMP/a.jsonl") && ok || fail "market: $out"
malformed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["planned_rejects"].get("MALFORMED", 0))' "$TMP/a.json")
[ "$out" = "records=4000 txs=4000 blocks=0 errors=$malformed truncated=0" ] && ok ||
    fail "market: $out, $malformed MALFORMED planned"
# The transactions of every type are there.
python3 - "$TMP/a.jsonl" <<'EOF' && ok || fail "market: not every type"
import json, sys
types = set(json.loads(l).get("type") for l in list(open(sys.argv[1]))[1:])
assert {"REGISTER", "SERIES", "ISSUE", "TRANSFER"} <= types, types
EOF
for shape in transfers large-state; do
    "$PM" gen --shape $shape --txs 600 --seed 3 -o "$TMP/$shape.pmtx" --json >"$TMP/$shape.json" 2>/dev/null &&
        ok || fail "gen $shape"
    "$PM" inspect --json "$TMP/$shape.pmtx" >"$TMP/$shape.jsonl" 2>/dev/null && ok || fail "inspect $shape"
    out=$($CHECK "$TMP/$shape.jsonl") && [ "$out" = "records=600 txs=600 blocks=0 errors=0 truncated=0" ] &&
        ok || fail "$shape: $out"
done
# Another network name is in the header.
"$PM" gen --shape transfers --txs 50 --network my-net -o "$TMP/n.pmtx" 2>/dev/null && ok || fail "gen --network"
"$PM" inspect --json "$TMP/n.pmtx" 2>/dev/null | head -1 | grep -q '"network":"my-net"' && ok || fail "network name"

# ---- pack rejects what gen planned -------------------------------------------
"$PM" pack "$TMP/a.pmtx" --chain "$TMP/a.pmbk" --rejects "$TMP/a.csv" --json --quiet >"$TMP/pack.json" &&
    ok || fail "pack"
python3 - "$TMP/a.json" "$TMP/a.csv" "$TMP/pack.json" <<'EOF' && ok || fail "pack rejects differ from gen's plan"
import csv, json, sys
plan = json.load(open(sys.argv[1]))
got = {}
for row in csv.DictReader(open(sys.argv[2])):
    got[row["reason"]] = got.get(row["reason"], 0) + 1
assert got == plan["planned_rejects"], (got, plan["planned_rejects"])
p = json.load(open(sys.argv[3]))
assert p["accepted"] == plan["planned_accepted"], (p["accepted"], plan["planned_accepted"])
EOF
"$PM" inspect --json "$TMP/a.pmbk" >"$TMP/chain.jsonl" 2>/dev/null && ok || fail "inspect chain"
out=$($CHECK "$TMP/chain.jsonl") && ok || fail "chain: $out"

# ---- errors ------------------------------------------------------------------
expect_rc() { # rc what cmd...
    local want=$1 what=$2
    shift 2
    "$@" >"$TMP/o.txt" 2>"$TMP/e.txt"
    local rc=$?
    [ "$rc" -eq "$want" ] && ok || fail "$what: exit $rc, $want expected ($(head -c 200 "$TMP/e.txt"))"
}
G=(gen --shape market -o "$TMP/x.pmtx")
expect_rc 0 "--help" "$PM" gen --help
expect_rc 2 "no shape" "$PM" gen -o "$TMP/x.pmtx"
expect_rc 2 "no output" "$PM" gen --shape market
expect_rc 2 "bad shape" "$PM" gen --shape bazaar -o "$TMP/x.pmtx"
expect_rc 2 "txs 0" "$PM" "${G[@]}" --txs 0
expect_rc 2 "txs not a number" "$PM" "${G[@]}" --txs 12x
expect_rc 2 "txs negative" "$PM" "${G[@]}" --txs -5
expect_rc 2 "ppm over a million" "$PM" "${G[@]}" --malformed-ppm 1000001
expect_rc 2 "threads 0" "$PM" "${G[@]}" --threads 0
expect_rc 2 "network too long" "$PM" "${G[@]}" --network abcdefghijklmnopq
expect_rc 2 "unknown option" "$PM" "${G[@]}" --bogus
expect_rc 2 "missing value" "$PM" "${G[@]}" --txs
expect_rc 2 "extra argument" "$PM" "${G[@]}" extra
[ -e "$TMP/x.pmtx" ] && fail "a refused run left $TMP/x.pmtx" || ok
expect_rc 1 "unwritable output" "$PM" gen --shape market --txs 10 -o "$TMP/no/such/dir/x.pmtx"

finish
