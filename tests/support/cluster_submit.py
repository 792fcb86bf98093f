"""cluster_submit.py STREAM.pmtx PORTS_FILE OUT.json LATE_S: submit a
stream's records through two nodes' HTTP APIs at once (POST /v1/txs, 200
records a body, alternate bodies), plus a resubmitter sending every 20th
record (5%) again: half of them while the others run (deduplicated by the
stream when inside its window), the other half LATE_S seconds after the
two submitters finished (outside a shortened window: packed again, and
rejected).

PORTS_FILE holds "PORT_A PORT_B" and is rewritten by the test when a node
restarts on another port. A body that fails (a dropped connection, 503:
the node is down, restarting or its publish timed out) is sent again to
the other node, read afresh from PORTS_FILE: its records' message ids
make the resend a duplicate of whatever was already published.
Writes {"answers": [[record_index, seq, verdict, phase], ...],
"retries": N, "seconds": S}; phase is "first", "again" or "late".
"""
import http.client, json, os, struct, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmtx import records  # noqa: E402

recs = records(sys.argv[1])
ports_file, late_s = sys.argv[2], float(sys.argv[4])
answers, lock, errors, retries = [], threading.Lock(), [], [0]

def ports():
    return [int(p) for p in open(ports_file).read().split()]

def post(which, idx, phase):
    body = b''.join(struct.pack('<I', len(recs[i])) + recs[i] for i in idx)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection('127.0.0.1', ports()[which], timeout=90)
            c.request('POST', '/v1/txs', body, {'Content-Type': 'application/octet-stream'})
            r = c.getresponse(); data = r.read()
            if r.status == 200:
                res = json.loads(data)['results']
                with lock:
                    for i, a in zip(idx, res):
                        answers.append([i, a.get('seq'), a['verdict'], phase])
                return
        except (OSError, http.client.HTTPException, ValueError):
            pass
        with lock:
            retries[0] += 1
        which ^= 1  # the other node
        time.sleep(0.3)
    errors.append('gave up on a body')

def worker(which):
    for start in range(which * 200, len(recs), 400):
        post(which, list(range(start, min(start + 200, len(recs)))), 'first')

again = list(range(0, len(recs), 20))
early, late = again[0::2], again[1::2]

def resubmitter():
    for k in range(0, len(early), 100):
        post(0, early[k:k + 100], 'again')

t0 = time.time()
ts = [threading.Thread(target=worker, args=(0,)), threading.Thread(target=worker, args=(1,)),
      threading.Thread(target=resubmitter)]
for t in ts: t.start()
for t in ts: t.join()
time.sleep(late_s)
for k in range(0, len(late), 100):
    post(k // 100 % 2, late[k:k + 100], 'late')
json.dump({"answers": answers, "errors": errors, "retries": retries[0],
           "seconds": time.time() - t0}, open(sys.argv[3], 'w'))
sys.exit(1 if errors else 0)
