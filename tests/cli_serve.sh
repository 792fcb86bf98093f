#!/usr/bin/env bash
# `postmark serve` (../shared/spec/serve.md), with a standard-library
# Python client (tests/support/serve_check.py):
#  1. every record of s1.pmtx submitted one request at a time with
#     --block-txs 32: the verdicts are s1.b32.rejects.csv, the chain is
#     s1.b32.pmbk, GET /v1/tip is s1.b32.json's summary, the queries (tx,
#     block, SSE blocks, stamp, holdings, utxo, metrics) and the explorer
#     pages (GET /: no external resource; a stamp's owners in order) agree
#     with the vectors, and pack of the journal rebuilds the chain; a
#     restart resumes with nothing admitted twice;
#  2. the same from 8 concurrent clients: each answered index holds the
#     submitted record in the journal, requests shared journal syncs (group
#     commit), and pack of the journal gives the service's chain;
#  3. kill -9 during a burst of 8 clients, then restart: every answered
#     record is in the journal at its index, and the chain and rejects
#     equal an uninterrupted pack of the journal;
#  4. a table of bad requests (bodies, hex, JSON, paths, oversize, tokens,
#     slow clients): each gets its status and the service stays up;
#  5. SIGTERM closes and syncs the open block and exits 0;
#  6. examples/serve_client.py submits s1.pmtx in batches (POST /v1/txs,
#     one at a time, then two in flight with ?stream=1)
#     while another of it follows the blocks over SSE, reconnecting with
#     Last-Event-ID after a kill -9 and restart: its rejects are
#     s1.b32.rejects.csv and the blocks it received are s1.b32.pmbk's;
#  7. --block-interval closes a block that is old enough with no flush;
#  8. TLS (--tls-cert, --tls-key): HTTPS answers, plain HTTP does not;
#  9. blocks from a peer (POST /v1/block) and disconnection (POST
#     /v1/disconnect): s1.b32's blocks connected make s1.b32.pmbk byte for
#     byte, 409 while a transaction waits, bad blocks refused; a restart
#     (also after kill -9) resumes on that chain;
# 10. a journal whose sync fails (tests/faultfs) under two streamed bodies
#     in flight: answers are whole and true, or cut short (?stream=1) or
#     503, nothing after the first failure is answered, and a restart keeps
#     every answered record at its index.
# Every server started here is stopped on exit (trap).
# Usage: cli_serve.sh POSTMARK VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
need_vectors
. "$(dirname "$0")/support/serve_lib.sh"
post() { python3 -c "
import http.client, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1])); c.request('POST', sys.argv[2])
r = c.getresponse(); print(r.status, r.read().decode())" "$PORT" "$1"; }

# 1. One request at a time.
start one --chain "$T/one.pmbk" --init "$V/s1.pmtx" --block-txs 32 --threads 2 || bad "start"
$CHECK one "$PORT" "$V/s1.pmtx" "$T/one.csv" && ok || bad "one at a time: answers"
cmp -s "$T/one.csv" "$V/s1.b32.rejects.csv" && ok || bad "one at a time: verdicts differ from s1.b32.rejects.csv"
[ "$(post /v1/flush)" = '200 {"height":8}' ] && ok || bad "flush did not close block 8"
[ "$(post /v1/flush)" = '200 {"height":-1}' ] && ok || bad "second flush closed a block"
cmp -s "$T/one.pmbk" "$V/s1.b32.pmbk" && ok || bad "one at a time: chain differs from s1.b32.pmbk"
$CHECK queries "$PORT" "$V" "$T/one.pmbk" && ok || bad "queries"
$CHECK explorer "$PORT" "$V" && ok || bad "explorer pages"
# GET /v1/holdings/KEY is the object of holdings --json.
key=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[1]['owner'])" "$V/s1.b32.traces.json")
"$PM" holdings "$T/one.pmbk" "$key" --json > "$T/holdings.json"
python3 -c "
import json, sys, urllib.request
got = json.load(urllib.request.urlopen('http://127.0.0.1:%s/v1/holdings/%s' % (sys.argv[1], sys.argv[2])))
exp = json.load(open(sys.argv[3]))
got.pop('seconds'); exp.pop('seconds')
sys.exit(got != exp)" "$PORT" "$key" "$T/holdings.json" && ok || bad "holdings differ from holdings --json"
stop && ok || bad "SIGTERM: exit status"
cmp -s "$T/one.pmbk.journal.pmtx.rejects.csv" "$V/s1.b32.rejects.csv" && ok || bad "the service's rejects file"
"$PM" pack "$T/one.pmbk.journal.pmtx" --chain "$T/one.audit.pmbk" --block-txs 32 --quiet &&
    cmp -s "$T/one.audit.pmbk" "$V/s1.b32.pmbk" && ok || bad "pack of the journal does not rebuild the chain"
cmp -s <(tail -c +61 "$T/one.pmbk.journal.pmtx") <(tail -c +61 "$V/s1.pmtx") && ok || bad "journal body differs from s1.pmtx"
# A restart validates the chain, finds nothing to resume, admits nothing twice.
start one2 --chain "$T/one.pmbk" --block-txs 32 || bad "restart"
$CHECK queries "$PORT" "$V" "$T/one.pmbk" restarted && ok || bad "queries after a restart"
stop && ok || bad "second SIGTERM"
cmp -s "$T/one.pmbk" "$V/s1.b32.pmbk" && ok || bad "restart changed the chain"
[ "$(stat -c %s "$T/one.pmbk.journal.pmtx")" = "$(stat -c %s "$V/s1.pmtx")" ] && ok || bad "restart changed the journal"
# Without --init a chain must exist; an empty one needs --init.
"$PM" serve --chain "$T/missing.pmbk" --listen 127.0.0.1:0 2>/dev/null; [ $? -eq 1 ] && ok || bad "missing chain without --init"
"$PM" serve --chain "$T/one.pmbk" --block-txs 0 2>/dev/null; [ $? -eq 2 ] && ok || bad "usage error"

# 2. Eight concurrent clients.
start many --chain "$T/many.pmbk" --init "$V/s1.pmtx" --block-txs 32 --threads 2 || bad "start many"
$CHECK many "$PORT" "$V/s1.pmtx" 8 "$T/many.answers" && ok || bad "8 clients"
[ "$(wc -l < "$T/many.answers")" = 300 ] && ok || bad "8 clients: not 300 answers"
post /v1/flush > /dev/null
$CHECK journal "$T/many.pmbk.journal.pmtx" "$T/many.answers" > /dev/null && ok || bad "8 clients: journal order is not the answered order"
# Group commit: requests waiting together shared a journal sync.
batches=$(python3 -c "import json, sys, urllib.request; print(json.load(urllib.request.urlopen('http://127.0.0.1:%s/v1/stats' % sys.argv[1]))['batches'])" "$PORT")
[ "$batches" -lt 300 ] && ok || bad "8 clients: $batches batches for 300 records (no group commit)"
stop && ok || bad "SIGTERM after 8 clients"
"$PM" pack "$T/many.pmbk.journal.pmtx" --chain "$T/many.audit.pmbk" --block-txs 32 --rejects "$T/many.audit.csv" --quiet &&
    cmp -s "$T/many.audit.pmbk" "$T/many.pmbk" && ok || bad "8 clients: pack of the journal is not the service's chain"
cmp -s "$T/many.audit.csv" "$T/many.pmbk.journal.pmtx.rejects.csv" && ok || bad "8 clients: rejects differ from pack's"

# 3. kill -9 during a burst, then restart.
"$PM" gen --shape market --txs 4000 --seed 11 -o "$T/burst.pmtx" > /dev/null 2>&1 || bad "gen"
start burst --chain "$T/burst.pmbk" --init "$T/burst.pmtx" --block-txs 32 --threads 2 || bad "start burst"
$CHECK burst "$PORT" "$T/burst.pmtx" 8 "$T/burst.answers" &
client=$!
# Kill once answers flow (a few hundred given), mid-burst.
for _ in $(seq 1 200); do
    [ -f "$T/burst.answers" ] && [ "$(wc -l < "$T/burst.answers")" -ge 300 ] && break
    sleep 0.05
done
{ kill -9 "$PID" && wait "$PID"; } 2>/dev/null
wait "$client"
answered=$(wc -l < "$T/burst.answers")
[ "$answered" -gt 0 ] && ok || bad "no answer before the kill"
$CHECK journal "$T/burst.pmbk.journal.pmtx" "$T/burst.answers" > /dev/null && ok || bad "an answered record is not in the journal"
start burst2 --chain "$T/burst.pmbk" --block-txs 32 --threads 2 || bad "restart after kill -9"
stop && ok || bad "SIGTERM after the restart"
"$PM" pack "$T/burst.pmbk.journal.pmtx" --chain "$T/burst.audit.pmbk" --block-txs 32 --rejects "$T/burst.audit.csv" --quiet &&
    cmp -s "$T/burst.audit.pmbk" "$T/burst.pmbk" && ok || bad "after kill -9: chain differs from pack of the journal"
cmp -s "$T/burst.audit.csv" "$T/burst.pmbk.journal.pmtx.rejects.csv" && ok || bad "after kill -9: rejects differ from pack of the journal"
echo "kill -9 test: $answered answers before the kill, $(python3 -c "
import sys; sys.path.insert(0, '$HERE/support'); import serve_check
print(len(serve_check.records('$T/burst.pmbk.journal.pmtx')))") journal records"

# 4. Bad requests, with a token.
echo "s3cret-token" > "$T/token"
start bad --chain "$T/bad.pmbk" --init "$V/s1.pmtx" --token-file "$T/token" --max-body 200000 --timeout 2 --request-timeout 3 || bad "start bad"
$CHECK bad "$PORT" s3cret-token && ok || bad "bad requests"
kill -0 "$PID" && ok || bad "the service died"
stop && ok || bad "SIGTERM after bad requests"
"$PM" serve --chain "$T/bad.pmbk" --listen 0.0.0.0:0 2>/dev/null; [ $? -eq 1 ] && ok || bad "non-loopback without a token"

# 5. SIGTERM with an open block: it is closed and synced.
start term --chain "$T/term.pmbk" --init "$V/s1.pmtx" --block-txs 4096 || bad "start term"
$CHECK one "$PORT" "$V/s1.pmtx" "$T/term.csv" || bad "term: answers"
stop && ok || bad "SIGTERM with an open block"
cmp -s "$T/term.pmbk" "$V/s1.b4096.pmbk" && ok || bad "SIGTERM: the open block is not s1.b4096.pmbk"
# 6. The example client: submit in batches, follow over SSE across a restart.
CLIENT="python3 $HERE/../examples/serve_client.py"
start ex --chain "$T/ex.pmbk" --init "$V/s1.pmtx" --block-txs 32 --token-file "$T/token" || bad "start ex"
$CLIENT "http://127.0.0.1:$PORT" follow --count 9 --raw "$T/ex.blocks" > "$T/ex.follow" 2> "$T/ex.follow.err" &
follower=$!
# The first 200 records, a crash and a restart on the same port (the
# follower reconnects with Last-Event-ID), the rest.
python3 -c "
import sys, struct
d = open(sys.argv[1], 'rb').read(); at = 60
for i in range(200):
    at += 4 + struct.unpack_from('<I', d, at)[0]
open(sys.argv[2], 'wb').write(d[:at]); open(sys.argv[3], 'wb').write(d[:60] + d[at:])" \
    "$V/s1.pmtx" "$T/ex1.pmtx" "$T/ex2.pmtx"
$CLIENT "http://127.0.0.1:$PORT" submit "$T/ex1.pmtx" --batch 64 --token s3cret-token --rejects "$T/ex1.csv" --one-at-a-time > /dev/null && ok || bad "example client: submit"
{ kill -9 "$PID" && wait "$PID"; } 2>/dev/null
start ex2 --chain "$T/ex.pmbk" --block-txs 32 --token-file "$T/token" --listen "127.0.0.1:$PORT" || bad "restart ex"
$CLIENT "http://127.0.0.1:$PORT" submit "$T/ex2.pmtx" --batch 64 --token s3cret-token --rejects "$T/ex2.csv" --flush > /dev/null && ok || bad "example client: submit the rest"
# The follower ends after its 9 blocks (it is killed if it hangs).
for _ in $(seq 1 1200); do kill -0 "$follower" 2>/dev/null || break; sleep 0.1; done
kill "$follower" 2>/dev/null
wait "$follower" && ok || bad "example client: follow"
stop && ok || bad "SIGTERM ex2"
cmp -s "$T/ex.pmbk" "$V/s1.b32.pmbk" && ok || bad "example client: chain differs from s1.b32.pmbk"
cmp -s <(head -c 60 "$V/s1.b32.pmbk"; cat "$T/ex.blocks") "$V/s1.b32.pmbk" && ok || bad "example client: the blocks followed are not s1.b32.pmbk's"
cmp -s <(cat "$T/ex1.csv"; tail -n +2 "$T/ex2.csv") "$V/s1.b32.rejects.csv" && ok || bad "example client: rejects differ"
grep -q "resuming after block" "$T/ex.follow.err" && ok || bad "example client: the follower did not reconnect"

# 7. --block-interval: the open block closes by age.
start iv --chain "$T/iv.pmbk" --init "$V/s1.pmtx" --block-interval 300 || bad "start iv"
$CLIENT "http://127.0.0.1:$PORT" submit "$T/ex1.pmtx" --batch 64 > /dev/null || bad "iv: submit"
sleep 1
python3 -c "
import json, sys, urllib.request
tip = json.load(urllib.request.urlopen('http://127.0.0.1:%s/v1/tip' % sys.argv[1]))
sys.exit(not (tip['pending'] == 0 and tip['blocks'] >= 1))" "$PORT" && ok || bad "--block-interval: the open block did not close"
stop && ok || bad "SIGTERM iv"
"$PM" replay "$T/iv.pmbk" --quiet > /dev/null && ok || bad "--block-interval: the chain does not replay"
# 8. TLS with a self-signed certificate for 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 > /dev/null 2>&1 || bad "openssl"
start tls --chain "$T/tls.pmbk" --init "$V/s1.pmtx" --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" || bad "start tls"
SSL_CERT_FILE="$T/cert.pem" $CLIENT "https://127.0.0.1:$PORT" submit "$T/ex1.pmtx" --batch 64 --flush > "$T/tls.out" &&
    grep -q "^flush: closed block 0" "$T/tls.out" && ok || bad "TLS: submit over HTTPS"
python3 -c "
import http.client, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=10)
try:
    c.request('GET', '/v1/tip'); r = c.getresponse(); sys.exit(r.status == 200)
except (OSError, http.client.HTTPException):
    sys.exit(0)" "$PORT" && ok || bad "TLS: plain HTTP was answered"
stop && ok || bad "SIGTERM tls"
"$PM" serve --chain "$T/tls.pmbk" --tls-cert "$T/cert.pem" 2>/dev/null; [ $? -eq 2 ] && ok || bad "--tls-cert without --tls-key"
# 9. Peers' blocks and a disconnection, then restarts.
start peer --chain "$T/peer.pmbk" --init "$V/s1.pmtx" || bad "start peer"
$CHECK peers "$PORT" "$V" && ok || bad "peer blocks"
stop && ok || bad "SIGTERM peer"
cmp -s "$T/peer.pmbk" "$V/s1.b32.pmbk" && ok || bad "peer blocks: chain differs from s1.b32.pmbk"
start peer2 --chain "$T/peer.pmbk" || bad "restart after peer blocks"
# s1's second half again: all of it is in the chain already.
$CLIENT "http://127.0.0.1:$PORT" submit "$V/s1.half2.pmtx" --batch 16 > "$T/peer2.out" &&
    grep -q ": 0 accepted" "$T/peer2.out" && ok || bad "peer2: $(cat "$T/peer2.out")"
{ kill -9 "$PID" && wait "$PID"; } 2>/dev/null
start peer3 --chain "$T/peer.pmbk" || bad "restart after kill -9 on peer blocks"
stop && ok || bad "SIGTERM peer3"
cmp -s "$T/peer.pmbk" "$V/s1.b32.pmbk" && ok || bad "peer3: chain changed"
# 10. The journal's third sync fails, and every one after it.
SHIM=$(cd "$(dirname "$PM")" && pwd)/faultfs.so
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
LD_PRELOAD="$SHIM" PM_FAULT_PATH=jf.pmbk.journal.pmtx PM_FAULT_OP=fdatasync PM_FAULT_N=3 \
    PM_FAULT_STICKY=1 PM_FAULT_LOG="$T/jf.fault" start jf --chain "$T/jf.pmbk" --init "$V/s1.pmtx" \
    --block-txs 32 || bad "start jf"
python3 - "$PORT" "$V/s1.pmtx" "$T/jf.answers" "$HERE/support" <<'PY' && ok || bad "journal sync failure: answers"
import http.client, json, struct, sys
port, stream, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path.insert(0, sys.argv[4])
from pmtx import records
recs = records(stream)
bodies = [b''.join(struct.pack('<I', len(r)) + r for r in recs[i:i + 40]) for i in range(0, len(recs), 40)]
conns = [http.client.HTTPConnection('127.0.0.1', port, timeout=30) for _ in range(2)]
def read(resp):
    try:
        data = resp.read()
    except http.client.IncompleteRead:
        return 'cut'
    if resp.status == 503:
        return '503'
    try:
        return json.loads(data)['results']
    except ValueError:
        return 'cut'
got, waiting = [], None
for k, body in enumerate(bodies):
    try:
        conns[k % 2].request('POST', '/v1/txs?stream=1', body=body)
        resp = conns[k % 2].getresponse()
    except (OSError, http.client.HTTPException):
        break
    if waiting is not None:
        got.append(read(waiting))
    waiting = resp
if waiting is not None:
    got.append(read(waiting))
failed = [i for i, g in enumerate(got) if isinstance(g, str)]
whole = [g for g in got if not isinstance(g, str)]
# Something was answered, something failed, and nothing after the first failure was answered.
ok = whole and failed and all(isinstance(g, str) for g in got[failed[0]:])
json.dump([v for g in whole for v in g], open(out, 'w'))
print('journal sync failure: %d answers whole, then %s' % (len(whole), ' '.join(got[i] for i in failed[:4])), file=sys.stderr)
sys.exit(0 if ok else 1)
PY
[ -s "$T/jf.fault" ] && ok || bad "journal sync failure: the fault never fired"
{ kill -9 "$PID" && wait "$PID"; } 2>/dev/null
start jf2 --chain "$T/jf.pmbk" --block-txs 32 || bad "restart after the journal failure"
stop && ok || bad "SIGTERM jf2"
python3 - "$T/jf.answers" "$T/jf.pmbk.journal.pmtx" "$V/s1.pmtx" "$HERE/support" <<'PY' && ok || bad "journal sync failure: an answered record is not in the journal at its index"
import json, sys
sys.path.insert(0, sys.argv[4])
from pmtx import records
answers = json.load(open(sys.argv[1]))
journal, stream = records(sys.argv[2]), records(sys.argv[3])
sys.exit(0 if answers and all(v['index'] == i and journal[i] == stream[i] for i, v in enumerate(answers)) else 1)
PY
finish
