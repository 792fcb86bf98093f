#!/usr/bin/env bash
# The cluster (../shared/spec/serve.md, "cluster (NATS JetStream)"; design
# in docs/cluster.md), on three real nats-servers (JetStream, routes,
# loopback, free ports; stores under $T), R3 stream:
#  1. cluster init: the header is seq 1; init again with the same header is
#     a no-op, another chain's header is refused; status --json shape;
#  2. submit of a generated market (invalid records included): every
#     record acknowledged; submitting it again adds nothing (message id =
#     SHA-256 of the record: all duplicates); export writes the stream's
#     records in order = the file with repeated byte strings dropped (the
#     stream deduplicates identical records inside its window);
#  3. export of an unknown stream, and submit of another chain's records,
#     fail;
#  4. three `serve --nats` nodes: a market submitted through two nodes'
#     HTTP APIs at once plus a resubmitter sending 5% again, one node
#     stopped (SIGTERM: its open block dropped) and another killed -9 in
#     the middle and restarted; every answer has a seq; after a flush (a
#     cut) the three chains are byte-identical, pack of `cluster export`
#     with the same --block-txs gives the same chain, cluster status says
#     they agree, and no txid is in two blocks;
#  5. rewind: the servers' stores wiped and the stream made again with a
#     shorter history: a node restarting on its chain refuses (exit 1,
#     "REWOUND").
# Registered only when libnats is built. Every server started is stopped
# on exit (trap).
# Usage: cli_cluster.sh POSTMARK VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
. "$(dirname "$0")/support/serve_lib.sh"
. "$(dirname "$0")/support/nats_lib.sh"
nats_start_all || { bad "nats-servers did not start"; finish; }
"$PM" gen --shape market --txs 4000 --seed 11 -o "$T/m.pmtx" 2> /dev/null || bad "gen"
"$PM" gen --shape market --txs 10 --seed 11 --network other-net -o "$T/other.pmtx" 2> /dev/null || bad "gen other"

# 1. init (the meta leader may still be settling: a few tries).
for _ in $(seq 1 50); do
    "$PM" cluster init --nats "$NATS_URLS" --stream S1 --init "$T/m.pmtx" 2> "$T/init.err" && break
    sleep 0.3
done
grep -q "stream S1 ready (R3)" "$T/init.err" && ok || bad "init: $(cat "$T/init.err")"
"$PM" cluster init --nats "$NATS_URLS" --stream S1 --init "$T/m.pmtx" 2> /dev/null && ok || bad "init again with the same header"
"$PM" cluster init --nats "$NATS_URLS" --stream S1 --init "$T/other.pmtx" 2> "$T/e" && bad "init with another header accepted" || ok
grep -q "another chain" "$T/e" && ok || bad "init with another header: $(cat "$T/e")"
"$PM" cluster status --nats "$NATS_URLS" --stream S1 --json > "$T/st.json" || bad "status"
python3 - "$T/st.json" <<'PY' && ok || bad "status --json: $(cat "$T/st.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["nodes"] == [] and s["agree"] is True and s["stream"]["last_seq"] == 1, s
PY

# 2. submit, again, export.
"$PM" submit "$NATS_URLS" "$T/m.pmtx" --stream S1 --json --quiet > "$T/sub1.json" || bad "submit"
"$PM" submit "$NATS_URLS" "$T/m.pmtx" --stream S1 --json --quiet > "$T/sub2.json" || bad "submit again"
"$PM" cluster export --nats "$NATS_URLS" --stream S1 -o "$T/exp.pmtx" 2> /dev/null || bad "export"
python3 - "$T/m.pmtx" "$T/exp.pmtx" "$T/sub1.json" "$T/sub2.json" <<'PY' && ok || bad "export / submit counts"
import json, struct, sys
def records(path):
    b = open(path, 'rb').read()
    out, o = [], 60
    while o < len(b):
        n = struct.unpack_from('<I', b, o)[0]
        out.append(b[o + 4:o + 4 + n]); o += 4 + n
    return b[:60], out
h1, r1 = records(sys.argv[1]); h2, r2 = records(sys.argv[2])
seen, want = set(), []
for r in r1:
    if r not in seen:
        seen.add(r); want.append(r)
assert h1 == h2, "header"
assert r2 == want, (len(r2), len(want))
s1 = json.load(open(sys.argv[3])); s2 = json.load(open(sys.argv[4]))
assert s1["published"] == len(r1) and s1["duplicates"] == len(r1) - len(want), s1
assert s2["published"] == len(r1) and s2["duplicates"] == len(r1), s2
PY
"$PM" pack "$T/exp.pmtx" --chain "$T/exp.pmbk" --quiet > /dev/null 2>&1 && ok || bad "pack of the export"

# 3. Failures.
"$PM" cluster export --nats "$NATS_URLS" --stream NOPE -o "$T/x.pmtx" 2> /dev/null && bad "export of an unknown stream" || ok
"$PM" submit "$NATS_URLS" "$T/other.pmtx" --stream S1 --quiet 2> /dev/null && bad "submit of another chain's records" || ok

# 4. Nodes.
"$PM" gen --shape market --txs 12000 --seed 12 -o "$T/big.pmtx" 2> /dev/null || bad "gen big"
for _ in $(seq 1 50); do
    "$PM" cluster init --nats "$NATS_URLS" --stream S2 --init "$T/big.pmtx" 2> /dev/null && break
    sleep 0.3
done
node() { # node I: start node I on its chain (again)
    start "node$1" --chain "$T/c$1.pmbk" --init "$T/big.pmtx" --nats "$NATS_URLS" --stream S2 \
        --node "node$1" --block-txs 512 --threads 1 --quiet || return 1
    NPID[$1]=$PID
    NPORT[$1]=$PORT
}
NPID=(); NPORT=()
for i in 0 1 2; do node "$i" || bad "start node $i"; done
python3 "$HERE/support/cluster_submit.py" "$T/big.pmtx" "${NPORT[0]}" "${NPORT[1]}" "$T/answers.json" &
sub=$!
sleep 3
kill -TERM "${NPID[2]}" && wait "${NPID[2]}" && ok || bad "SIGTERM of node 2: exit status"
node 2 || bad "restart node 2"
sleep 2
kill -9 "${NPID[1]}"; wait "${NPID[1]}" 2> /dev/null
node 1 || bad "restart node 1 after kill -9"
wait "$sub" && ok || bad "submitting through two nodes"
post() { python3 -c "
import http.client, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1])); c.request('POST', sys.argv[2])
r = c.getresponse(); print(r.status, r.read().decode())" "$1" "$2"; }
post "${NPORT[0]}" /v1/flush > "$T/flush" && grep -q '^200 {"height":' "$T/flush" && ok || bad "flush: $(cat "$T/flush")"
last=$("$PM" cluster status --nats "$NATS_URLS" --stream S2 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stream"]["last_seq"])')
for _ in $(seq 1 100); do
    "$PM" cluster status --nats "$NATS_URLS" --stream S2 --json > "$T/st2.json"
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(not (len(s["nodes"])==3 and all(n["seq"]>=int(sys.argv[2]) for n in s["nodes"])))' "$T/st2.json" "$last" && break
    sleep 0.2
done
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(not s["agree"] or len({n["tip"] for n in s["nodes"]})!=1)' "$T/st2.json" && ok || bad "status: $(cat "$T/st2.json")"
for i in 0 1 2; do kill -TERM "${NPID[$i]}" && wait "${NPID[$i]}" || bad "SIGTERM node $i"; done
cmp -s "$T/c0.pmbk" "$T/c1.pmbk" && cmp -s "$T/c0.pmbk" "$T/c2.pmbk" && ok || bad "the three chains differ"
"$PM" cluster export --nats "$NATS_URLS" --stream S2 -o "$T/exp2.pmtx" 2> /dev/null || bad "export S2"
"$PM" pack "$T/exp2.pmtx" --chain "$T/pack2.pmbk" --block-txs 512 --rejects "$T/pack2.csv" --quiet || bad "pack of the export"
cmp -s "$T/c0.pmbk" "$T/pack2.pmbk" && ok || bad "pack of the export differs from the nodes' chain"
"$PM" replay "$T/c0.pmbk" --json > "$T/r0.json" && "$PM" replay "$T/pack2.pmbk" --json > "$T/rp.json" || bad "replay"
# Every submitted record is in the stream once (so in a block or in the
# rejects of every node: pack of the export is their chain); every answer
# has its stream sequence; each sequence answers one record.
python3 - "$T/answers.json" "$T/big.pmtx" "$T/exp2.pmtx" <<'PY' && ok || bad "answers / stream"
import json, struct, sys
def records(path):
    b = open(path, 'rb').read()
    out, o = [], 60
    while o < len(b):
        n = struct.unpack_from('<I', b, o)[0]
        out.append(b[o + 4:o + 4 + n]); o += 4 + n
    return out
a = json.load(open(sys.argv[1]))["answers"]
sub, exp = records(sys.argv[2]), records(sys.argv[3])
assert a and all(x[1] for x in a), "an answer without seq"
assert sorted(set(sub)) == sorted(exp), "the stream is not the submitted records, once each"
by_seq = {}
for i, seq, v in a:
    assert by_seq.setdefault(seq, sub[i]) == sub[i], ("two records answered with seq", seq)
PY
python3 - "$T/r0.json" "$T/rp.json" "$T/pack2.csv" "$T/c0.pmbk.journal.pmtx.rejects.csv" <<'PY' && ok || bad "replay / rejects of a node and of pack differ"
import json, sys
r0, rp = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert (r0["tip"], r0["utxo_digest"]) == (rp["tip"], rp["utxo_digest"])
# A node's rejects file may list a reject twice (records read again after a restart).
assert set(open(sys.argv[3]).read().splitlines()[1:]) == set(open(sys.argv[4]).read().splitlines()[1:])
PY

# 5. Rewind: every server's store wiped, the stream made again with less.
for i in 0 1 2; do nats_kill "$i"; rm -rf "$T/nats$i"; nats_run "$i"; done
for _ in $(seq 1 100); do
    "$PM" cluster init --nats "$NATS_URLS" --stream S2 --init "$T/big.pmtx" 2> /dev/null && break
    sleep 0.3
done
python3 -c '
import struct, sys
b = open(sys.argv[1], "rb").read(); o = 60
for _ in range(600): o += 4 + struct.unpack_from("<I", b, o)[0]
open(sys.argv[2], "wb").write(b[:o])' "$T/big.pmtx" "$T/short.pmtx"
"$PM" submit "$NATS_URLS" "$T/short.pmtx" --stream S2 --quiet 2> /dev/null || bad "submit after the wipe"
"$PM" serve --listen 127.0.0.1:0 --chain "$T/c0.pmbk" --nats "$NATS_URLS" --stream S2 --node node0 \
    --block-txs 512 --quiet 2> "$T/rewind.err" &
rp=$!; SERVERS+=("$rp")
wait "$rp"; rc=$?
[ "$rc" = 1 ] && grep -q "REWOUND" "$T/rewind.err" && ok || bad "rewind: exit $rc: $(cat "$T/rewind.err")"
finish
