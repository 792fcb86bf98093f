"""cluster_submit.py STREAM.pmtx PORTS_FILE OUT.json PHASE [CALM_FILE]: submit a
stream's records through two nodes' HTTP APIs (POST /v1/txs, 100 records a
body).

PHASE "first": two submitters at once (alternate bodies) plus a
resubmitter sending every 40th record again as soon as it was answered
(inside the stream's duplicate window: deduplicated). PHASE "late", run
by the test once the window has passed: the other half of every 20th
record (5% in all) again (packed again, and rejected); its answers are
added to OUT.json. Until CALM_FILE exists (the test's kills are over) the
two submitters pause 0.15 s between bodies, so that every kill comes
while they run, however long elections take.

PORTS_FILE holds "PORT_A PORT_B" and is rewritten by the test when a node
restarts on another port. A body that fails (a dropped connection, 503:
the node is down, restarting or its publish timed out) is sent again to
the other node, read afresh from PORTS_FILE: its records' message ids
make the resend a duplicate of whatever was already published.
Writes {"answers": [[record_index, seq, verdict, phase, index], ...],
"retries": N, "seconds": S}; phase is "first", "again" or "late", index
the answer's "index" (None when absent).
"""
import http.client, json, os, struct, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmtx import records  # noqa: E402

recs = records(sys.argv[1])
ports_file, out, phase = sys.argv[2], sys.argv[3], sys.argv[4]
calm_file = sys.argv[5] if len(sys.argv) > 5 else None
answers, lock, errors, retries = [], threading.Lock(), [], [0]

def ports():
    return [int(p) for p in open(ports_file).read().split()]

def post(which, idx, phase):
    body = b''.join(struct.pack('<I', len(recs[i])) + recs[i] for i in idx)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            # 45 s: a resend stays well inside the test's duplicate window.
            c = http.client.HTTPConnection('127.0.0.1', ports()[which], timeout=45)
            c.request('POST', '/v1/txs', body, {'Content-Type': 'application/octet-stream'})
            r = c.getresponse(); data = r.read()
            if r.status == 200:
                res = json.loads(data)['results']
                with lock:
                    for i, a in zip(idx, res):
                        answers.append([i, a.get('seq'), a['verdict'], phase, a.get('index')])
                    if phase == 'first':
                        answered.update(idx)
                return
        except (OSError, http.client.HTTPException, ValueError):
            pass
        with lock:
            retries[0] += 1
        which ^= 1  # the other node
        time.sleep(0.3)
    errors.append('gave up on a body')

def worker(which):
    # 100 records a body: the submission outlasts the kills.
    for start in range(which * 100, len(recs), 200):
        post(which, list(range(start, min(start + 100, len(recs)))), 'first')
        if calm_file and not os.path.exists(calm_file):
            time.sleep(0.15)

again = list(range(0, len(recs), 20))
early, late = again[0::2], again[1::2]

answered = set()  # records with a 'first' answer

def resubmitter():
    # Each record as soon as it was answered (up to 100 a body): the resend
    # comes well inside the window, as nats-server 2.9.10 decides a
    # duplicate on each replica, so one near the window's end may be one on
    # some replicas only (docs/cluster.md, "Duplicate window").
    todo, until = list(early), time.time() + 300
    while todo and time.time() < until:
        with lock:
            ready = [i for i in todo if i in answered][:100]
        if not ready:
            time.sleep(0.05)
            continue
        post(0, ready, 'again')
        done = set(ready)
        todo = [i for i in todo if i not in done]
    if todo:
        errors.append('records never answered')

t0 = time.time()
if phase == 'first':
    ts = [threading.Thread(target=worker, args=(0,)), threading.Thread(target=worker, args=(1,)),
          threading.Thread(target=resubmitter)]
    for t in ts: t.start()
    for t in ts: t.join()
    prev = {"answers": [], "retries": 0, "seconds": 0}
else:
    for k in range(0, len(late), 100):
        post(k // 100 % 2, late[k:k + 100], 'late')
    prev = json.load(open(out))
json.dump({"answers": prev["answers"] + answers, "errors": errors,
           "retries": prev["retries"] + retries[0],
           "seconds": prev["seconds"] + time.time() - t0}, open(out, 'w'))
sys.exit(1 if errors else 0)
