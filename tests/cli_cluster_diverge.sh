#!/usr/bin/env bash
# Divergence between cluster nodes (docs/cluster.md, "Divergence"), on
# three real nats-servers: three nodes pack a 6000-record market; a fourth
# is given a state of another history that its resume check cannot see (a
# chain packed from the stream's first 2000 records with one accepted
# record left out, with a resume line pointing at the real stream
# message after them, as an operator copying the wrong files would). It
# must stop (exit 1) naming the height where its block differs from the
# majority's; the three others go on: a flush closes one more block on
# each, the same, their /metrics say they agree (postmark_cluster_agree 1,
# postmark_cluster_seq = the stream's last sequence) and a UTXO digest
# was voted at the cut. Part 2: the same with the tampered node ahead of
# the others (its votes wait for a majority; the first honest node to
# meet them does not stop).
# Usage: cli_cluster_diverge.sh POSTMARK VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
. "$(dirname "$0")/support/serve_lib.sh"
. "$(dirname "$0")/support/nats_lib.sh"
nats_start_all || { bad "nats-servers did not start"; finish; }
# No repeated records: every record is one message, so record i is seq i+2.
"$PM" gen --shape market --txs 6000 --seed 21 --replay-ppm 0 -o "$T/m.pmtx" 2> /dev/null || bad "gen"
for _ in $(seq 1 50); do
    "$PM" cluster init --nats "$NATS_URLS" --stream S3 --init "$T/m.pmtx" 2> /dev/null && break
    sleep 0.3
done
NPID=(); NPORT=()
for i in 0 1 2; do
    start "node$i" --chain "$T/c$i.pmbk" --init "$T/m.pmtx" --nats "$NATS_URLS" --stream S3 \
        --node "node$i" --block-txs 512 --threads 1 --quiet || bad "start node $i"
    NPID[$i]=$PID; NPORT[$i]=$PORT
done
"$PM" submit "$NATS_URLS" "$T/m.pmtx" --stream S3 --quiet 2> /dev/null || bad "submit"
status() { "$PM" cluster status --nats "$NATS_URLS" --stream S3 --json > "$T/st.json" 2> /dev/null; }
caught_up() { # every node listed has packed the stream's last sequence
    status && python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(not (len(s["nodes"])>=3 and all(n["seq"]==s["stream"]["last_seq"] for n in s["nodes"] if n["node"]!="evil")))' "$T/st.json"
}
for _ in $(seq 1 150); do caught_up && break; sleep 0.2; done
caught_up && ok || bad "the nodes did not pack the stream: $(cat "$T/st.json")"

# The other history: records 0..1999 without one that pack accepts.
"$PM" pack "$T/m.pmtx" --chain "$T/full.pmbk" --block-txs 512 --rejects "$T/full.csv" --quiet || bad "pack"
python3 - "$T/m.pmtx" "$T/full.csv" "$T/t.pmtx" <<'PY' || bad "the tampered stream"
import struct, sys
b = open(sys.argv[1], 'rb').read(); o, recs = 60, []
while o < len(b):
    n = struct.unpack_from('<I', b, o)[0]; recs.append(b[o:o + 4 + n]); o += 4 + n
rej = {int(l.split(',')[0]) for l in open(sys.argv[2]).read().splitlines()[1:]}
drop = next(i for i in range(1500, 2000) if i not in rej)
open(sys.argv[3], 'wb').write(b[:60] + b''.join(r for i, r in enumerate(recs[:2000]) if i != drop))
PY
"$PM" pack "$T/t.pmtx" --chain "$T/e.pmbk" --block-txs 512 --rejects "$T/e.pmbk.journal.pmtx.rejects.csv" \
    --json --quiet > "$T/e.json" || bad "pack the tampered stream"
read -r HE TIP <<< "$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["height"], p["tip"])' "$T/e.json")"
SHA=$(python3 -c '
import hashlib, struct, sys
b = open(sys.argv[1], "rb").read(); o = 60
for _ in range(1999): o += 4 + struct.unpack_from("<I", b, o)[0]
n = struct.unpack_from("<I", b, o)[0]; print(hashlib.sha256(b[o + 4:o + 4 + n]).hexdigest())' "$T/m.pmtx")
# Its last record (tampered index 1998) is the real record 1999: seq 2001.
echo "block $HE $TIP 1998 2001 $SHA" > "$T/e.pmbk.cluster"
cp "$T/t.pmtx" "$T/e.pmbk.journal.pmtx"
printf 'start 0\nblock %s %s 1998\n' "$HE" "$TIP" > "$T/e.pmbk.journal.pmtx.blocks"
for f in "$T"/e.pmbk*; do cp "$f" "$T/e2${f#"$T"/e}"; done # for part 2
"$PM" serve --listen 127.0.0.1:0 --chain "$T/e.pmbk" --nats "$NATS_URLS" --stream S3 --node evil \
    --block-txs 512 --threads 1 --quiet 2> "$T/evil.err" &
ep=$!; SERVERS+=("$ep")
wait "$ep"; rc=$?
[ "$rc" = 1 ] && grep -q "STOPPED: diverged at height $((HE + 1)):" "$T/evil.err" && ok ||
    bad "the tampered node: exit $rc: $(cat "$T/evil.err")"

# The three others go on.
for i in 0 1 2; do kill -0 "${NPID[$i]}" 2> /dev/null && ok || bad "node $i stopped"; done
python3 -c "
import http.client, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1])); c.request('POST', '/v1/flush')
r = c.getresponse(); sys.exit(r.status != 200 or b'\"height\": -1' in r.read())" "${NPORT[0]}" && ok || bad "flush"
for _ in $(seq 1 150); do caught_up && break; sleep 0.2; done
last=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stream"]["last_seq"])' "$T/st.json")
for i in 0 1 2; do
    curl -s "http://127.0.0.1:${NPORT[$i]}/metrics" > "$T/metrics$i" || python3 -c "
import urllib.request, sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())" \
        "http://127.0.0.1:${NPORT[$i]}/metrics" > "$T/metrics$i"
    grep -qx "postmark_cluster_agree 1" "$T/metrics$i" && grep -qx "postmark_cluster_seq $last" "$T/metrics$i" &&
        ! grep -qx "postmark_cluster_digest_height -1" "$T/metrics$i" && ok ||
        bad "node $i /metrics: $(grep postmark_cluster "$T/metrics$i")"
done
# A record packed before a restart: answered with its sequence, verdict
# and index (seq 2 is record 0; the node keeps the cuts' sequences).
kill -TERM "${NPID[2]}" && wait "${NPID[2]}" || bad "SIGTERM node 2: $(tail -n 30 "$T/node2.err")"
start node2b --chain "$T/c2.pmbk" --nats "$NATS_URLS" --stream S3 --node node2 --block-txs 512 \
    --threads 1 --quiet || bad "restart node 2"
NPID[2]=$PID
python3 - "$T/m.pmtx" "$PORT" <<'PY' && ok || bad "answer for a record packed before a restart"
import http.client, json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack_from('<I', b, 60)[0]
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[2]), timeout=60)
c.request('POST', '/v1/txs', b[60:64 + n], {'Content-Type': 'application/octet-stream'})
r = c.getresponse(); a = json.loads(r.read())['results'][0]
assert r.status == 200 and a['seq'] == 2 and a.get('index') == 0 and a['verdict'] == 'accepted', a
PY
for i in 0 1 2; do kill -TERM "${NPID[$i]}" && wait "${NPID[$i]}" || bad "SIGTERM node $i: $(tail -n 30 "$T/node$i.err")"; done
cmp -s "$T/c0.pmbk" "$T/c1.pmbk" && cmp -s "$T/c0.pmbk" "$T/c2.pmbk" && ok || bad "the three chains differ"
"$PM" cluster export --nats "$NATS_URLS" --stream S3 -o "$T/exp.pmtx" 2> /dev/null || bad "export"
"$PM" pack "$T/exp.pmtx" --chain "$T/p.pmbk" --block-txs 512 --quiet && cmp -s "$T/p.pmbk" "$T/c0.pmbk" ||
    bad "pack of the export differs"

# Part 2: the node of another history runs ahead. The same records in a
# new stream; the three nodes are known (they reported once, then
# stopped) but have voted nothing when the tampered node packs it all, so
# its votes are undecided, not accepted. Node 0 comes back first and
# meets only the tampered vote: undecided, it goes on (before, with no
# majority among the two, it stopped). Nodes 1 and 2 make the majority:
# the tampered node stops naming the height, the three go on.
for _ in $(seq 1 50); do
    "$PM" cluster init --nats "$NATS_URLS" --stream S4 --init "$T/m.pmtx" 2> /dev/null && break
    sleep 0.3
done
status4() { "$PM" cluster status --nats "$NATS_URLS" --stream S4 --json > "$T/st4.json" 2> /dev/null; }
for i in 0 1 2; do
    start "a$i" --chain "$T/a$i.pmbk" --init "$T/m.pmtx" --nats "$NATS_URLS" --stream S4 \
        --node "node$i" --block-txs 512 --threads 1 --quiet || bad "start node $i on S4"
    NPID[$i]=$PID
done
known() { status4 && python3 -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1]))["nodes"]) < int(sys.argv[2]))' "$T/st4.json" "$1"; }
for _ in $(seq 1 100); do known 3 && break; sleep 0.2; done
known 3 && ok || bad "S4: the three nodes did not report: $(cat "$T/st4.json")"
for i in 0 1 2; do kill -TERM "${NPID[$i]}" && wait "${NPID[$i]}" || bad "SIGTERM node $i on S4"; done
"$PM" submit "$NATS_URLS" "$T/m.pmtx" --stream S4 --quiet 2> /dev/null || bad "submit S4"
"$PM" serve --listen 127.0.0.1:0 --chain "$T/e2.pmbk" --nats "$NATS_URLS" --stream S4 --node evil \
    --block-txs 512 --threads 1 --quiet 2> "$T/evil2.err" &
ep=$!; SERVERS+=("$ep")
evil_done() { # the tampered node packed the whole stream (and voted it)
    status4 && python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(not any(n["node"]=="evil" and n["seq"]==s["stream"]["last_seq"] for n in s["nodes"]))' "$T/st4.json"
}
for _ in $(seq 1 150); do evil_done && break; sleep 0.2; done
evil_done && kill -0 "$ep" 2> /dev/null && ok || bad "the tampered node ahead: $(cat "$T/evil2.err")"
voted() { # node 0's block votes reached height $1
    local m
    m=$(python3 -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1]).read().decode())" \
        "http://127.0.0.1:$PORT/metrics" 2> /dev/null) || return 1
    [ "$(sed -n 's/^postmark_cluster_voted_height //p' <<< "$m")" -ge "$1" ] 2> /dev/null
}
start a0b --chain "$T/a0.pmbk" --nats "$NATS_URLS" --stream S4 --node node0 --block-txs 512 \
    --threads 1 --quiet || bad "restart node 0 on S4"
NPID[0]=$PID
for _ in $(seq 1 150); do voted $((HE + 1)) && break; sleep 0.2; done
sleep 1 # node 0 checks its undecided votes again meanwhile
kill -0 "${NPID[0]}" 2> /dev/null && kill -0 "$ep" 2> /dev/null && ok ||
    bad "node 0 meeting the tampered vote first: $(tail -n 5 "$T/a0b.err")"
for i in 1 2; do
    start "a${i}b" --chain "$T/a$i.pmbk" --nats "$NATS_URLS" --stream S4 --node "node$i" \
        --block-txs 512 --threads 1 --quiet || bad "restart node $i on S4"
    NPID[$i]=$PID
done
for _ in $(seq 1 300); do kill -0 "$ep" 2> /dev/null || break; sleep 0.2; done
kill -0 "$ep" 2> /dev/null && kill -9 "$ep" # it never saw the majority: fails below
wait "$ep"; rc=$?
[ "$rc" = 1 ] && grep -q "STOPPED: diverged at height $((HE + 1)):" "$T/evil2.err" && ok ||
    bad "the tampered node ahead: exit $rc: $(cat "$T/evil2.err")"
for i in 0 1 2; do kill -0 "${NPID[$i]}" 2> /dev/null && ok || bad "node $i on S4 stopped"; done
for i in 0 1 2; do kill -TERM "${NPID[$i]}" && wait "${NPID[$i]}" || bad "SIGTERM node $i on S4"; done
finish
