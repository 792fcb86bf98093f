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
#  4. the kill test: three `serve --nats` nodes; a 30,000-record market
#     (invalid records included) submitted through two nodes' HTTP APIs at
#     once (a failed body goes to the other node) plus a resubmitter
#     sending 5% again, half of it after a 65 s duplicate window;
#     meanwhile the stream leader and a node are each killed -9 twice,
#     alternately, and restarted. After a cut: the servers' copies
#     of the stream agree, the three chains are byte-identical and = pack
#     of `cluster export`, one tip and digest, each node's rejects file =
#     pack's (exactly), every submitted record is in a block or rejected,
#     no txid in two blocks, late resends were packed again, every answer
#     has its index, cluster status agrees;
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
python3 - "$HERE/support" "$T/m.pmtx" "$T/exp.pmtx" "$T/sub1.json" "$T/sub2.json" <<'PY' && ok || bad "export / submit counts"
import json, struct, sys
sys.path.insert(0, sys.argv.pop(1))
from pmtx import read as records
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

# 4. The kill test. A 30k-record market (invalid records included) on a
# stream with a shortened duplicate window (DUP_S), submitted through two
# nodes' HTTP APIs at once plus a resubmitter (5% again: half soon after
# their answers, deduplicated; half once the window has passed, packed
# again); meanwhile the stream leader is killed -9 twice and a node twice
# (never two servers, nor two nodes, down at once), each restarted.
# nats-server 2.9.10 decides a duplicate on each replica as it applies the
# message, against ids it forgets on its own clock (a restarted replica
# only a window after its restart): a resend near or past the window is
# stored by some replicas and not by others, and from that sequence on the
# replicas' streams differ. So the window outlasts any resend of the
# submission (the node's publisher retries for 60 s at most, a client
# gives a node 45 s), and is not shortened on a live stream (2.9.10 gives
# a new window to the leader only): docs/cluster.md, "Duplicate window".
DUP_S=65
"$PM" gen --shape market --txs 30000 --seed 12 -o "$T/big.pmtx" 2> /dev/null || bad "gen big"
for _ in $(seq 1 50); do
    "$PM" cluster init --nats "$NATS_URLS" --stream S2 --init "$T/big.pmtx" \
        --dup-window $((DUP_S * 1000)) 2> /dev/null && break
    sleep 0.3
done
node() { # node I: start node I on its chain (again)
    start "node$1" --chain "$T/c$1.pmbk" --init "$T/big.pmtx" --nats "$NATS_URLS" --stream S2 \
        --node "node$1" --block-txs 512 --threads 1 --quiet || return 1
    NPID[$1]=$PID
    NPORT[$1]=$PORT
    echo "${NPORT[0]:-0} ${NPORT[1]:-0}" > "$T/ports.tmp" && mv "$T/ports.tmp" "$T/ports"
}
kill_node() { # kill -9 node I, restart it
    kill -0 "$sub" 2> /dev/null && ok || bad "node $1 killed after the submission ended"
    kill -9 "${NPID[$1]}"; wait "${NPID[$1]}" 2> /dev/null
    cp "$T/node$1.err" "$T/node$1.err.$SECONDS" # start overwrites it
    sleep 1
    node "$1" && ok || bad "restart node $1 after kill -9"
}
# The servers' monitoring answers at once, also while a stream has no
# leader (a `cluster status` then waits out its 10 s JetStream timeout).
# leader_down: kill -9 the stream leader, wait until another leads, then
# restart it (it catches up meanwhile); leader_back: wait until it has.
leader_down() {
    local n="" cur _
    KILLED=""
    for _ in $(seq 1 100); do
        read -r KILLED cur <<< "$(nats_jsz S2)"
        [[ "$KILLED" =~ ^[0-2]$ ]] && break
        sleep 0.1
    done
    [[ "$KILLED" =~ ^[0-2]$ ]] || { bad "no stream leader"; return; }
    kill -0 "$sub" 2> /dev/null && ok || bad "leader n$KILLED killed after the submission ended"
    nats_kill "$KILLED"
    KILL_T0=$EPOCHREALTIME
    for _ in $(seq 1 600); do
        read -r n cur <<< "$(nats_jsz S2)"
        [[ "$n" =~ ^[0-2]$ ]] && break
        sleep 0.1
    done
    [[ "$n" =~ ^[0-2]$ ]] && ok || bad "no new leader after killing n$KILLED"
    python3 -c 'import sys; print(f"leader n{sys.argv[1]} killed, n{sys.argv[2]} leads after {float(sys.argv[4]) - float(sys.argv[3]):.1f} s")' \
        "$KILLED" "$n" "$KILL_T0" "$EPOCHREALTIME" >> "$T/kills.log"
    nats_run "$KILLED"
}
# Back only once it has caught up: a replica still restoring counts as
# down (nats-server 2.9.10 can elect it if the leader dies now, and the
# stream then loses what it had acknowledged).
leader_back() {
    local n cur=0 _
    [[ "$KILLED" =~ ^[0-2]$ ]] || return
    for _ in $(seq 1 300); do
        read -r n cur <<< "$(nats_jsz S2)"
        [ "$cur" = 1 ] && break
        sleep 0.1
    done
    [ "$cur" = 1 ] && ok || { nats_same S2 2> "$T/e"; bad "n$KILLED did not catch up: $(cat "$T/e")"; }
    python3 -c 'import sys; print(f"n{sys.argv[1]} current again after {float(sys.argv[3]) - float(sys.argv[2]):.1f} s")' \
        "$KILLED" "$KILL_T0" "$EPOCHREALTIME" >> "$T/kills.log"
}
NPID=(); NPORT=()
for i in 0 1 2; do node "$i" || bad "start node $i"; done
python3 "$HERE/support/cluster_submit.py" "$T/big.pmtx" "$T/ports" "$T/answers.json" first "$T/calm" &
sub=$!
SERVERS+=("$sub") # stopped on exit too
# A node is killed while the killed server restarts: one of each down.
sleep 1; leader_down; kill_node 1; leader_back
sleep 1; leader_down; kill_node 0; leader_back
touch "$T/calm" # the submitters stop pausing between bodies
wait "$sub" && ok || bad "submitting through two nodes"
# The late resends, once the window has passed (and each server's timer
# has dropped the ids).
sleep $((DUP_S + 3))
python3 "$HERE/support/cluster_submit.py" "$T/big.pmtx" "$T/ports" "$T/answers.json" late && ok ||
    bad "late resends through two nodes"
post() { python3 -c "
import http.client, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1])); c.request('POST', sys.argv[2])
r = c.getresponse(); print(r.status, r.read().decode())" "$1" "$2"; }
post "${NPORT[0]}" /v1/flush > "$T/flush" && grep -q '^200 {"height":' "$T/flush" && ok || bad "flush: $(cat "$T/flush")"
last=$("$PM" cluster status --nats "$NATS_URLS" --stream S2 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stream"]["last_seq"])')
for _ in $(seq 1 150); do
    "$PM" cluster status --nats "$NATS_URLS" --stream S2 --json > "$T/st2.json"
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(not (len(s["nodes"])==3 and all(n["seq"]>=int(sys.argv[2]) for n in s["nodes"])))' "$T/st2.json" "$last" && break
    sleep 0.2
done
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(not s["agree"] or len({n["tip"] for n in s["nodes"]})!=1)' "$T/st2.json" && ok || bad "status: $(cat "$T/st2.json")"
for i in 0 1 2; do kill -TERM "${NPID[$i]}" && wait "${NPID[$i]}" || bad "SIGTERM node $i: $(tail -n 30 "$T/node$i.err")"; done
cmp -s "$T/c0.pmbk" "$T/c1.pmbk" && cmp -s "$T/c0.pmbk" "$T/c2.pmbk" && ok || bad "the three chains differ"
# The replicas themselves agree (they did not after leader kills with a
# short duplicate window: see the top of part 4).
nats_same S2 2> "$T/e" && ok || bad "the servers' copies of S2 differ: $(cat "$T/e")"
"$PM" cluster export --nats "$NATS_URLS" --stream S2 -o "$T/exp2.pmtx" 2> /dev/null || bad "export S2"
"$PM" pack "$T/exp2.pmtx" --chain "$T/pack2.pmbk" --block-txs 512 --rejects "$T/pack2.csv" --json --quiet > "$T/pack2.json" || bad "pack of the export"
cmp -s "$T/c0.pmbk" "$T/pack2.pmbk" && ok || bad "pack of the export differs from the nodes' chain"
for i in 0 1 2; do
    "$PM" replay "$T/c$i.pmbk" --json > "$T/r$i.json" || bad "replay node $i"
    # Exactly pack's rejects file, though records were read again after restarts.
    cmp -s "$T/pack2.csv" "$T/c$i.pmbk.journal.pmtx.rejects.csv" && ok || bad "node $i's rejects differ from pack's"
done
"$PM" replay "$T/pack2.pmbk" --json > "$T/rp.json" || bad "replay pack"
"$PM" inspect "$T/c0.pmbk" --json > "$T/c0.jsonl" || bad "inspect"
# One tip and digest; every submitted record's bytes are in a block or
# rejected (a record the stream deduplicated counts by its identical
# bytes), no txid in two blocks; every answer has its stream sequence,
# each sequence answers one record; late resends were packed again.
python3 - "$HERE/support" "$T/answers.json" "$T/big.pmtx" "$T/exp2.pmtx" "$T/c0.jsonl" "$T/pack2.csv" \
    "$T/pack2.json" "$T"/r[0-2].json "$T/rp.json" <<'PY' && ok || bad "answers / stream / blocks / rejects"
import json, struct, sys
sys.path.insert(0, sys.argv.pop(1))
from pmtx import records
A = json.load(open(sys.argv[1]))
a = A["answers"]
sub, exp = records(sys.argv[2]), records(sys.argv[3])
blocks = [json.loads(l) for l in open(sys.argv[4]) if '"record":"block"' in l]
in_blocks = [bytes.fromhex(t["raw"]) for b in blocks for t in b["txs"]]
txids = [t["txid"] for b in blocks for t in b["txs"]]
assert len(txids) == len(set(txids)), "a txid in two blocks"
rej = [int(l.split(',')[0]) for l in open(sys.argv[5]).read().splitlines()[1:]]
assert len(rej) == len(set(rej)), "an index rejected twice"
packed = set(in_blocks) | {exp[i] for i in rej}
missing = [i for i, r in enumerate(sub) if r not in packed]
assert not missing, ("records neither in a block nor rejected", missing[:5])
p = json.load(open(sys.argv[6]))
assert p["accepted"] == len(in_blocks) and p["rejected"] == len(rej) == len(exp) - len(in_blocks), p
tips = {(r["tip"], r["utxo_digest"]) for r in (json.load(open(f)) for f in sys.argv[7:])}
assert len(tips) == 1, tips
assert a and all(x[1] for x in a), "an answer without seq"
# Its index is the record's place among the stream's records (serve.md),
# also for one packed before its node restarted.
bad = [x for x in a if x[4] is None or exp[x[4]] != sub[x[0]]]
assert not bad, ("answers without their index, or another record's", len(bad), bad[:3])
by_seq, first = {}, {}
for i, seq, v, phase, index in a:
    assert by_seq.setdefault(seq, sub[i]) == sub[i], ("two records answered with seq", seq)
    if phase == "first": first[i] = seq
late = [(i, seq) for i, seq, v, phase, index in a if phase == "late"]
assert late and all(seq != first[i] for i, seq in late), "a late resend was deduplicated"
again = [(i, seq) for i, seq, v, phase, index in a if phase == "again"]
dedup = sum(seq == first[i] for i, seq in again)
assert len(exp) > len(set(sub)), "late resends not in the stream"
print(f"kill test: {len(sub)} records, {len(exp)} in the stream, {p['accepted']} accepted, "
      f"{p['rejected']} rejected, {len(blocks)} blocks, {dedup}/{len(again)} early resends "
      f"deduplicated, {len(late)} late resends packed, {A['retries']} client retries, "
      f"{A['seconds']:.0f} s", file=sys.stderr)
PY
[ -f "$T/kills.log" ] && cat "$T/kills.log" >&2

# 5. Rewind: every server's store wiped, the stream made again with less.
for i in 0 1 2; do
    nats_kill "$i"
    # PM_KEEP (nats_lib.sh): keep the kill test's stores for a post-mortem.
    if [ -n "${PM_KEEP:-}" ]; then mv "$T/nats$i" "$T/nats$i.kill-test"; else rm -rf "$T/nats$i"; fi
    nats_run "$i"
done
for _ in $(seq 1 100); do
    "$PM" cluster init --nats "$NATS_URLS" --stream S2 --init "$T/big.pmtx" \
        --dup-window $((DUP_S * 1000)) 2> /dev/null && break
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
