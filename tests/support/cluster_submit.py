"""cluster_submit.py STREAM.pmtx PORT_A PORT_B OUT.json: submit a stream's
records through two nodes' HTTP APIs at once (POST /v1/txs, 200 records a
body, alternate halves), plus a resubmitter sending every 20th record
(5%) again to node A; retries a body on 503 or a dropped connection (a
node restarting). Writes {"answers": [[record_index, seq, verdict], ...]}.
"""
import http.client, json, struct, sys, threading, time

def records(path):
    b = open(path, 'rb').read()
    out, o = [], 60
    while o < len(b):
        n = struct.unpack_from('<I', b, o)[0]
        out.append(b[o + 4:o + 4 + n]); o += 4 + n
    return out

recs = records(sys.argv[1])
ports = [int(sys.argv[2]), int(sys.argv[3])]
answers, lock, errors = [], threading.Lock(), []

def post(port, idx):
    body = b''.join(struct.pack('<I', len(recs[i])) + recs[i] for i in idx)
    for _ in range(600):
        try:
            c = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
            c.request('POST', '/v1/txs', body, {'Content-Type': 'application/octet-stream'})
            r = c.getresponse(); data = r.read()
            if r.status == 200:
                res = json.loads(data)['results']
                with lock:
                    for i, a in zip(idx, res):
                        answers.append([i, a.get('seq'), a['verdict']])
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    errors.append('gave up on a body')

def worker(which):
    for start in range(which * 200, len(recs), 400):
        post(ports[which], list(range(start, min(start + 200, len(recs)))))

def resubmitter():
    again = list(range(0, len(recs), 20))
    for k in range(0, len(again), 100):
        post(ports[0], again[k:k + 100])

ts = [threading.Thread(target=worker, args=(0,)), threading.Thread(target=worker, args=(1,)),
      threading.Thread(target=resubmitter)]
for t in ts: t.start()
for t in ts: t.join()
json.dump({"answers": answers, "errors": errors}, open(sys.argv[4], 'w'))
sys.exit(1 if errors else 0)
