#!/usr/bin/env bash
# cli_demo.sh — `postmark demo`: the whole job on the built-in market.
#
# The demo's figures are checked against the files it leaves (--dir): the
# rejects by reason are those of rejects.csv, accepted + rejected is the
# number generated, the chain replays valid with as many transactions as
# were accepted, and the stamp it traced is, by `postmark trace` run
# separately, owned by the key it names, after as many events.
#
# Usage: bash cli_demo.sh PATH/TO/postmark VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
D=$TMP/demo
"$PM" demo --dir "$D" --txs 3000 --seed 5 --block-txs 700 --json >"$TMP/demo.json" 2>"$TMP/report.txt"
rc=$?
[ $rc -eq 0 ] && ok || { fail "demo exit $rc"; cat "$TMP/report.txt" >&2; }
for f in market.pmtx market.pmbk rejects.csv gen.json pack.json replay.json; do
    [ -s "$D/$f" ] && ok || fail "demo left no $f"
done
grep -q "replay  valid" "$TMP/report.txt" && ok || fail "report: no replay line"
grep -q "trace   stamp" "$TMP/report.txt" && ok || fail "report: no trace line"

python3 - "$TMP/demo.json" "$D/rejects.csv" <<'EOF' && ok || fail "demo figures vs rejects.csv"
import csv, json, sys
d = json.load(open(sys.argv[1]))
got = {}
for row in csv.DictReader(open(sys.argv[2])):
    got[row["reason"]] = got.get(row["reason"], 0) + 1
assert d["rejects"] == got, (d["rejects"], got)
assert d["accepted"] + d["rejected"] == d["generated"] == 3000, d
assert d["rejected"] == sum(got.values()) == d["planned_rejected"] > 0, d
assert d["replay_valid"] is True and d["blocks"] == -(-d["accepted"] // 700), d
assert d["traced"]["events"] >= 2, d
EOF

"$PM" replay "$D/market.pmbk" --json --quiet >"$TMP/replay.json" && ok || fail "replay of the demo chain"
stamp=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["traced"]["stamp"])' "$TMP/demo.json")
"$PM" trace "$D/market.pmbk" "$stamp" --json >"$TMP/trace.json" && ok || fail "trace $stamp"
python3 - "$TMP/demo.json" "$TMP/trace.json" "$TMP/replay.json" <<'EOF' && ok || fail "traced stamp"
import json, sys
d, t, r = (json.load(open(p)) for p in sys.argv[1:4])
assert t["owner"] == d["traced"]["owner"] and len(t["events"]) == d["traced"]["events"], (t, d)
assert any(e["owner"] != t["events"][0]["owner"] for e in t["events"]), "it never changed hands"
assert r["txs"] == d["accepted"] and r["utxo_count"] == d["utxo_count"], (r, d)
EOF

# A temporary folder is removed after a successful run.
before=$(ls -d "${TMPDIR:-/tmp}"/postmark-demo-* 2>/dev/null | wc -l)
TMPDIR_SAVE=${TMPDIR:-}
export TMPDIR=$TMP
"$PM" demo --txs 500 >/dev/null 2>"$TMP/r2.txt" && ok || fail "demo without --dir: $(cat "$TMP/r2.txt")"
ls -d "$TMP"/postmark-demo-* >/dev/null 2>&1 && fail "temporary folder left" || ok
export TMPDIR=$TMPDIR_SAVE

# Usage errors.
for args in "--txs" "--txs 5" "--txs lots" "--block-txs 0" "--bogus" "extra"; do
    "$PM" demo $args >/dev/null 2>&1
    rc=$?
    [ $rc -eq 2 ] && ok || fail "demo $args: exit $rc, 2 expected"
done
"$PM" demo --help >/dev/null && ok || fail "demo --help"

finish
