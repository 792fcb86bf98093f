#!/usr/bin/env bash
# cli_trace.sh — `postmark trace` and `postmark holdings` against the
# vectors of an independent implementation.
#
#  1. trace s1.b32.pmbk STAMP --json reproduces every entry of
#     s1.b32.traces.json (compared as JSON: every field the vector gives,
#     events in order), exit 1 for the never_issued entries.
#  2. holdings --json of every key that owns an output in the chain, put
#     together, is the whole UTXO set: its count and its §8 digest
#     (recomputed here in Python from the reported outputs) are those of
#     s1.b32.json.
#  3. Errors: usage errors exit 2, an unreadable or invalid chain exits 1
#     with one line naming the file, the block and the byte offset.
#
# Usage: bash cli_trace.sh PATH/TO/postmark VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
need_vectors
CHAIN=$V/s1.b32.pmbk

# ---- 1. the traces vector --------------------------------------------------
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$V/s1.b32.traces.json")
[ "$n" -gt 0 ] || fail "no entries in s1.b32.traces.json"
for ((i = 0; i < n; i++)); do
    stamp=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[int(sys.argv[2])]["stamp"])' \
        "$V/s1.b32.traces.json" "$i")
    "$PM" trace "$CHAIN" "$stamp" --json >"$TMP/out.json" 2>"$TMP/err.txt"
    rc=$?
    if python3 - "$V/s1.b32.traces.json" "$i" "$TMP/out.json" "$rc" <<'EOF'
import json, sys
want = json.load(open(sys.argv[1]))[int(sys.argv[2])]
rc = int(sys.argv[4])
try:
    got = json.load(open(sys.argv[3]))
except Exception as e:
    sys.exit("output is not one JSON object: %s" % e)
def same(w, g, path):
    if isinstance(w, dict):
        if not isinstance(g, dict):
            sys.exit("%s: object expected, got %r" % (path, g))
        for k in w:
            if k not in g:
                sys.exit("%s.%s missing" % (path, k))
            same(w[k], g[k], path + "." + k)
    elif isinstance(w, list):
        if not isinstance(g, list) or len(g) != len(w):
            sys.exit("%s: %d items expected, got %r" % (path, len(w), g))
        for j, (a, b) in enumerate(zip(w, g)):
            same(a, b, "%s[%d]" % (path, j))
    elif w != g:
        sys.exit("%s: %r expected, got %r" % (path, w, g))
if want.get("never_issued"):
    if rc != 1:
        sys.exit("never issued: exit 1 expected, got %d" % rc)
    if got.get("never_issued") is not True or got.get("stamp") != want["stamp"]:
        sys.exit("never issued: %r" % got)
else:
    if rc != 0:
        sys.exit("exit 0 expected, got %d" % rc)
    same(want, got, "trace")
EOF
    then ok; else fail "trace $stamp (entry $i): $(cat "$TMP/err.txt")"; fi
done

# The human form names the same owner.
stamp=$(python3 -c 'import json,sys; e=[x for x in json.load(open(sys.argv[1])) if "owner" in x][0]; print(e["stamp"], e["owner"])' "$V/s1.b32.traces.json")
set -- $stamp
if "$PM" trace "$CHAIN" "$1" >"$TMP/human.txt" && grep -q "owner now $2" "$TMP/human.txt"; then ok; else fail "human trace of $1"; fi

# ---- 2. holdings of every key = the UTXO set -------------------------------
"$PM" inspect "$CHAIN" --json >"$TMP/chain.jsonl" 2>/dev/null || fail "inspect $CHAIN"
python3 - "$TMP/chain.jsonl" >"$TMP/keys.txt" <<'EOF'
import json, sys
keys = set()
for line in open(sys.argv[1]):
    o = json.loads(line)
    for tx in o.get("txs", []):
        for out in tx.get("outputs", []):
            keys.add(out["owner"])
for k in sorted(keys):
    print(k)
EOF
[ -s "$TMP/keys.txt" ] || fail "no owner keys found in the chain"
: >"$TMP/holdings.jsonl"
while read -r key; do
    if "$PM" holdings "$CHAIN" "$key" --json >>"$TMP/holdings.jsonl"; then :; else fail "holdings $key"; fi
done <"$TMP/keys.txt"
if python3 - "$TMP/holdings.jsonl" "$V/s1.b32.json" <<'EOF'
import hashlib, json, struct, sys
def tagged(tag, data):
    t = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(t + t + data).digest()
entries = []
for line in open(sys.argv[1]):
    h = json.loads(line)
    owner = bytes.fromhex(h["key"])
    for s in h["stamps"]:
        op, se, sn = map(int, s["stamp"].split(":"))
        txid, idx = s["outpoint"].split(":")
        entries.append((bytes.fromhex(txid) + struct.pack(">H", int(idx)),
                        bytes([1]) + owner + struct.pack("<III", op, se, sn)))
    total = 0
    for c in h["credits"]:
        amounts = 0
        for o in c["outputs"]:
            txid, idx = o["outpoint"].split(":")
            entries.append((bytes.fromhex(txid) + struct.pack(">H", int(idx)),
                            bytes([2]) + owner + struct.pack("<IQ", c["issuer"], o["amount"])))
            amounts += o["amount"]
        if amounts != c["amount"]:
            sys.exit("issuer %d: sum %d != %d" % (c["issuer"], c["amount"], amounts))
want = json.load(open(sys.argv[2]))
keys = [k for k, _ in entries]
if len(set(keys)) != len(keys):
    sys.exit("an outpoint is reported twice")
if len(entries) != want["utxo_count"]:
    sys.exit("utxo count %d != %d" % (len(entries), want["utxo_count"]))
entries.sort()
digest = tagged("postmark/utxo", b"".join(k + v for k, v in entries)).hex()
if digest != want["utxo_digest"]:
    sys.exit("utxo digest %s != %s" % (digest, want["utxo_digest"]))
EOF
then ok; else fail "holdings of all keys do not make the UTXO set of s1.b32.json"; fi

# Every traced stamp is among its owner's holdings, at its outpoint.
if python3 - "$V/s1.b32.traces.json" "$TMP/holdings.jsonl" <<'EOF'
import json, sys
held = {}
for line in open(sys.argv[2]):
    h = json.loads(line)
    for s in h["stamps"]:
        held[s["stamp"]] = (h["key"], s["outpoint"])
for t in json.load(open(sys.argv[1])):
    if t.get("never_issued"):
        if t["stamp"] in held:
            sys.exit("never issued stamp %s is held" % t["stamp"])
    elif held.get(t["stamp"]) != (t["owner"], t["outpoint"]):
        sys.exit("stamp %s: held %r" % (t["stamp"], held.get(t["stamp"])))
EOF
then ok; else fail "traced stamps vs holdings"; fi

# A key that owns nothing.
"$PM" holdings "$CHAIN" "$(printf '%064d' 0)" --json >"$TMP/none.json"
if [ $? -eq 0 ] && python3 -c 'import json,sys; h=json.load(open(sys.argv[1])); sys.exit(1 if (h["stamps"] or h["credits"]) else 0)' "$TMP/none.json"; then ok; else fail "holdings of an unknown key"; fi

# ---- 3. errors -------------------------------------------------------------
expect_rc() { # expected-rc description command...
    local want=$1 what=$2
    shift 2
    "$@" >"$TMP/o.txt" 2>"$TMP/e.txt"
    local rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else fail "$what: exit $rc, $want expected ($(head -c 300 "$TMP/e.txt"))"; fi
}
expect_rc 0 "trace --help" "$PM" trace --help
expect_rc 0 "holdings --help" "$PM" holdings --help
expect_rc 2 "trace without stamp" "$PM" trace "$CHAIN"
expect_rc 2 "trace bad stamp" "$PM" trace "$CHAIN" 1:2
expect_rc 2 "trace stamp out of range" "$PM" trace "$CHAIN" 1:2:4294967296
expect_rc 2 "trace negative" "$PM" trace "$CHAIN" 1:-2:3
expect_rc 2 "trace unknown option" "$PM" trace "$CHAIN" 1:1:1 --bogus
expect_rc 2 "trace extra argument" "$PM" trace "$CHAIN" 1:1:1 extra
expect_rc 2 "holdings short key" "$PM" holdings "$CHAIN" abcd
expect_rc 2 "holdings no key" "$PM" holdings "$CHAIN"
expect_rc 1 "trace missing file" "$PM" trace "$TMP/nope.pmbk" 1:1:1
expect_rc 1 "trace on a stream" "$PM" trace "$V/s1.pmtx" 250:165:1
expect_rc 1 "holdings on a stream" "$PM" holdings "$V/s1.pmtx" "$(printf '%064d' 0)"
# A partial last block is left out with a warning (cli.md): the result is
# that of the whole blocks before it.
head -c "$(python3 -c "
import struct,sys
d=open(sys.argv[1],'rb').read(); o=60
while o + 4 <= len(d) and o + 4 + struct.unpack('<I', d[o:o+4])[0] <= len(d):
    o += 4 + struct.unpack('<I', d[o:o+4])[0]
print(o)" "$V/s1.bad.truncated.pmbk")" "$V/s1.bad.truncated.pmbk" > "$TMP/whole.pmbk"
"$PM" trace "$V/s1.bad.truncated.pmbk" 250:165:7 --json > "$TMP/cut.json" 2> "$TMP/e.txt"
rc_cut=$?
"$PM" trace "$TMP/whole.pmbk" 250:165:7 --json > "$TMP/whole.json" 2> /dev/null
rc_whole=$?
[ $rc_cut -eq $rc_whole ] && python3 -c "
import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))
a.pop('seconds',None); b.pop('seconds',None); sys.exit(a!=b)" "$TMP/cut.json" "$TMP/whole.json" && ok ||
    fail "trace of a chain with a partial last block differs from its whole blocks'"
grep -q "warning: .*ends inside a block at byte [0-9]*" "$TMP/e.txt" && ok || fail "partial block warning: $(cat "$TMP/e.txt")"
expect_rc 1 "trace malformed tx" "$PM" trace "$V/s1.bad.malformed_tx.pmbk" 250:165:7
grep -q "block 4 tx 0 at byte [0-9]*: MALFORMED" "$TMP/e.txt" && ok || fail "malformed chain message: $(cat "$TMP/e.txt")"
expect_rc 1 "trace count mismatch" "$PM" trace "$V/s1.bad.count_mismatch.pmbk" 250:165:7
grep -q "BLOCK_MALFORMED" "$TMP/e.txt" && ok || fail "count mismatch message: $(cat "$TMP/e.txt")"
# A header cut short, and a file that is only garbage.
head -c 30 "$CHAIN" >"$TMP/short.pmbk"
expect_rc 1 "trace short header" "$PM" trace "$TMP/short.pmbk" 1:1:1
grep -q "BAD_HEADER" "$TMP/e.txt" && ok || fail "short header message"
# The chain with one stamp issued twice (the repeated transaction vector
# carries an earlier transaction again): the history contradicts itself
# or the stamp is traced; it must not crash (exit 0 or 1, never a signal).
for f in "$V"/s1.bad.*.pmbk; do
    "$PM" trace "$f" 250:165:7 >/dev/null 2>&1
    rc=$?
    [ "$rc" -le 1 ] && ok || fail "trace $f: exit $rc"
    "$PM" holdings "$f" "$(printf '%064d' 0)" >/dev/null 2>&1
    rc=$?
    [ "$rc" -le 1 ] && ok || fail "holdings $f: exit $rc"
done

finish
