"""serve_check.py — the client side of tests/cli_serve.sh (standard library).

    serve_check.py one PORT STREAM VERDICTS.csv      one request per record, in order
    serve_check.py many PORT STREAM CLIENTS ANSWERS  CLIENTS threads share the records
    serve_check.py burst PORT STREAM CLIENTS ANSWERS as many, until the server dies
    serve_check.py journal JOURNAL ANSWERS           every answered record is in the
                                                     journal at its index
    serve_check.py queries PORT VECTORS CHAIN [fresh|restarted]
                                                     tip, tx, block, blocks (SSE), stamp
    serve_check.py bad PORT TOKEN                    the table of bad requests
    serve_check.py explorer PORT VECTORS             the HTML pages (GET /, stamp, holdings)
    serve_check.py peers PORT VECTORS                blocks from a peer, a disconnection

ANSWERS lines: index,hex of the submitted bytes,verdict (written as answers
arrive, flushed each time: a killed server leaves the answers it gave).
Exit status 0 when every check holds; failures are printed.
"""
import html.parser
import http.client
import json
import os
import socket
import sys
import threading
import time

# The example client's reader of stream and chain files.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'examples'))
from serve_client import file_records as records  # noqa: E402


def submit(conn, rec):
    conn.request('POST', '/v1/tx', body=rec, headers={'Content-Type': 'application/octet-stream'})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    return resp.status, body


failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what, file=sys.stderr)


def cmd_one(port, stream, out):
    conn = http.client.HTTPConnection('127.0.0.1', int(port), timeout=60)
    with open(out, 'w') as f:
        f.write('index,txid,reason\n')
        for i, rec in enumerate(records(stream)):
            status, body = submit(conn, rec)
            check(body['index'] == i, 'record %d answered index %s' % (i, body['index']))
            if body['verdict'] == 'rejected':
                check(status == 422, 'reject %d has status %d' % (i, status))
                f.write('%d,%s,%s\n' % (i, body['txid'], body['reason']))
            else:
                check(status == 200 and body['verdict'] == 'accepted', 'record %d: %s' % (i, body))


def run_clients(port, stream, clients, out, until_error):
    recs = records(stream)
    lock = threading.Lock()
    nxt = [0]
    f = open(out, 'w')

    def client():
        conn = http.client.HTTPConnection('127.0.0.1', int(port), timeout=60)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(recs):
                return
            try:
                status, body = submit(conn, recs[i])
            except (OSError, http.client.HTTPException, ValueError):
                if until_error:
                    return
                raise
            with lock:
                f.write('%d,%s,%s\n' % (body['index'], recs[i].hex(), body['verdict']))
                f.flush()

    threads = [threading.Thread(target=client) for _ in range(int(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    f.close()


def cmd_journal(journal, answers):
    recs = records(journal)
    n, seen = 0, set()
    for line in open(answers):
        index, hexbytes, _ = line.strip().split(',')
        index = int(index)
        check(index not in seen, 'index %d answered twice' % index)
        seen.add(index)
        check(index < len(recs) and recs[index].hex() == hexbytes,
              'answered record %d is not in the journal at its index' % index)
        n += 1
    check(n > 0, 'no answer at all')
    print('%d answers, %d journal records' % (n, len(recs)))


def get(conn, path, headers=None):
    conn.request('GET', path, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, resp.getheader('Content-Type'), resp.read()


def cmd_queries(port, vectors, chain, fresh='fresh'):
    conn = http.client.HTTPConnection('127.0.0.1', int(port), timeout=60)
    status, _, body = get(conn, '/v1/tip')
    tip = json.loads(body)
    summary = json.load(open(vectors + '/s1.b32.json'))
    for k in ('height', 'tip', 'blocks', 'utxo_count', 'utxo_digest'):
        check(tip.get(k) == summary[k], 'tip %s: %s, not %s' % (k, tip.get(k), summary[k]))
    check(tip.get('pending') == 0, 'pending after the flush: %s' % tip.get('pending'))

    # Transactions: rejected ones by reason, accepted ones in their block.
    for line in open(vectors + '/s1.b32.rejects.csv').read().split('\n')[1:]:
        if not line or line.split(',')[1] == '':
            continue
        _, txid, reason = line.split(',')
        status, _, body = get(conn, '/v1/tx/' + txid.upper())
        st = json.loads(body)
        # A txid rejected once may be accepted later (its resubmission).
        check(status == 200 and (st == {'status': 'rejected', 'reason': reason}
                                 or st.get('status') == 'block'), 'tx %s: %s' % (txid, st))
    blocks = records(chain)
    for h, raw in enumerate(blocks):
        status, ctype, body = get(conn, '/v1/block/%d' % h, {'Accept': 'application/octet-stream'})
        check(status == 200 and body == raw, 'raw block %d' % h)
        status, ctype, body = get(conn, '/v1/block/%d' % h)
        blk = json.loads(body)
        check(blk['height'] == h and blk['tx_count'] == len(blk['txids']), 'block %d json' % h)
        for txid in blk['txids']:
            status, _, body = get(conn, '/v1/tx/' + txid)
            check(json.loads(body) == {'status': 'block', 'height': h}, 'tx %s in block %d' % (txid, h))

    # Blocks as server-sent events, from a height and resumed by Last-Event-ID.
    for path, headers, first in (('/v1/blocks?from=0', {}, 0), ('/v1/blocks?from=2', {}, 2),
                                 ('/v1/blocks', {'Last-Event-ID': '5'}, 6)):
        sse = http.client.HTTPConnection('127.0.0.1', int(port), timeout=60)
        sse.request('GET', path, headers=headers)
        resp = sse.getresponse()
        check(resp.status == 200 and resp.getheader('Content-Type') == 'text/event-stream',
              'SSE %s status' % path)
        got, ev = [], {}
        while len(got) < len(blocks) - first:
            line = resp.readline().decode().rstrip('\n')
            if line.startswith('id: '):
                ev['id'] = int(line[4:])
            elif line.startswith('data: '):
                ev['data'] = json.loads(line[6:])
            elif line == '' and ev:
                got.append(ev)
                ev = {}
        sse.close()
        for k, e in enumerate(got):
            h = first + k
            check(e['id'] == h and e['data']['height'] == h and
                  bytes.fromhex(e['data']['raw']) == blocks[h], 'SSE %s event %d' % (path, h))

    # Provenance: the object of trace --json.
    for t in json.load(open(vectors + '/s1.b32.traces.json')):
        status, _, body = get(conn, '/v1/stamp/' + t['stamp'])
        got = json.loads(body)
        if t.get('never_issued'):
            check(status == 404, 'stamp %s never issued: %d' % (t['stamp'], status))
            continue
        check(status == 200, 'stamp %s: %d' % (t['stamp'], status))
        check(got['owner'] == t['owner'] and got['outpoint'] == t['outpoint'],
              'stamp %s owner/outpoint' % t['stamp'])
        check([(e['height'], e['txid'], e['owner']) for e in got['events']] ==
              [(e['height'], e['txid'], e['owner']) for e in t['events']],
              'stamp %s events' % t['stamp'])
        # The owner holds it, at that outpoint, and the outpoint is unspent.
        status, _, body = get(conn, '/v1/holdings/' + t['owner'])
        check(status == 200 and {'stamp': t['stamp'], 'outpoint': t['outpoint']} in
              [{k: x[k] for k in ('stamp', 'outpoint')} for x in json.loads(body)['stamps']],
              'holdings of %s lack %s' % (t['owner'], t['stamp']))
        status, _, body = get(conn, '/v1/utxo/' + t['outpoint'])
        check(status == 200 and json.loads(body) == {'kind': 'stamp', 'owner': t['owner'],
                                                      'stamp': t['stamp']},
              'utxo %s: %s' % (t['outpoint'], body[:200]))

    status, ctype, body = get(conn, '/metrics')
    text = body.decode()
    check(status == 200 and ctype.startswith('text/plain'), 'metrics status')
    wants = ['postmark_tip_height %d' % summary['height'],
             'postmark_utxo_count %d' % summary['utxo_count']]
    if fresh == 'fresh':  # the counters are this process's
        wants += ['postmark_transactions_total{verdict="accepted"} %d' % summary['accepted'],
                  'postmark_transactions_total{verdict="rejected"} %d' % summary['rejected'],
                  'postmark_http_requests_total{route="tx",code="200"} %d' % summary['accepted'],
                  'postmark_http_requests_total{route="tx",code="422"} %d' % summary['rejected']]
    for want in wants:
        check(want in text, 'metrics lack %r' % want)


class Owners(html.parser.HTMLParser):
    """The text of the elements of class "owner", in document order, and
    every URL the page would load."""
    def __init__(self):
        super().__init__()
        self.owners, self.loads, self.depth = [], [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self.depth:
            self.depth += 1
        elif 'owner' in (a.get('class') or '').split():
            self.depth = 1
            self.owners.append('')
        if tag in ('script', 'img', 'link', 'iframe', 'object', 'embed') or 'src' in a:
            self.loads.append((tag, a))

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.owners[-1] += data.strip()


def cmd_explorer(port, vectors):
    conn = http.client.HTTPConnection('127.0.0.1', int(port), timeout=60)
    summary = json.load(open(vectors + '/s1.b32.json'))
    status, ctype, body = get(conn, '/')
    page = body.decode()
    check(status == 200 and ctype.startswith('text/html'), 'GET / status %d %s' % (status, ctype))
    for want in (summary['tip'], '<svg', 'BAD_SIGNATURE', 'Recent blocks', '<form'):
        check(want in page, 'GET / lacks %r' % want)
    p = Owners()
    p.feed(page)
    check(not p.loads and 'http://' not in page and 'https://' not in page,
          'GET / loads external resources: %s' % p.loads)
    for t in json.load(open(vectors + '/s1.b32.traces.json')):
        status, ctype, body = get(conn, '/explorer/stamp?id=' + t['stamp'])
        if t.get('never_issued'):
            check(status == 404, 'explorer: stamp %s never issued: %d' % (t['stamp'], status))
            continue
        p = Owners()
        p.feed(body.decode())
        # Its owners in order, from the issue on.
        check(status == 200 and p.owners == [e['owner'] for e in t['events']],
              'explorer: stamp %s owners %s' % (t['stamp'], p.owners))
        check(not p.loads, 'explorer: stamp page loads %s' % p.loads)
        status, ctype, body = get(conn, '/explorer/holdings?key=' + t['owner'])
        check(status == 200 and ('id=%s"' % t['stamp']) in body.decode(),
              'explorer: holdings of %s lack %s' % (t['owner'], t['stamp']))
    for path, want in (('/explorer/stamp?id=1:2', 400), ('/explorer/stamp', 400),
                       ('/explorer/stamp?id=%3Cscript%3E', 400),
                       ('/explorer/holdings?key=zz', 400)):
        status, ctype, body = get(conn, path)
        check(status == want and ctype.startswith('text/html'), 'explorer %s: %d' % (path, status))
        check(b'<script>' not in body, 'explorer %s: echoes markup unescaped' % path)


def cmd_peers(port, vectors):
    """On a service with an empty chain: s1.b32's blocks connected one by
    one over transactions waiting in the open block (the re-check drops
    those a block conflicts with, and only those), the tip disconnected and
    connected again, bad blocks refused, 409 for a disconnection while a
    transaction waits."""
    conn = http.client.HTTPConnection('127.0.0.1', int(port), timeout=60)
    blocks = records(vectors + '/s1.b32.pmbk')
    summary = json.load(open(vectors + '/s1.b32.json'))

    def post(path, body=b''):
        conn.request('POST', path, body=body, headers={'Content-Type': 'application/octet-stream'})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())

    status, got = post('/v1/disconnect')
    check(status == 409, 'disconnect with no block: %d %s' % (status, got))
    # The records of each of s1.b32's blocks: the accepted ones, 32 a block.
    stream = records(vectors + '/s1.pmtx')
    with open(vectors + '/s1.b32.rejects.csv') as f:
        rejected = {int(line.split(',')[0]) for line in f.readlines()[1:]}
    accepted = [r for i, r in enumerate(stream) if i not in rejected]
    in_block = [accepted[32 * h:32 * h + 32] for h in range(len(blocks))]
    # A transaction waits in the open block; a peer's block that holds it
    # too is connected, and the re-check drops it.
    status, got = post('/v1/tx', in_block[0][0])
    check(status == 200, 'block 0 tx 0 accepted: %s' % got)
    first = got
    status, got = post('/v1/block', blocks[0])
    check(status == 200 and got['height'] == 0, 'peer block 0 over a waiting tx: %d %s' % (status, got))
    check([(d['index'], d['txid']) for d in got.get('dropped', [])] == [(first['index'], first['txid'])],
          'peer block 0 drops the waiting tx: %s' % got)
    status, _, body = get(conn, '/v1/tx/' + first['txid'])
    check(json.loads(body) == {'status': 'block', 'height': 0}, 'the dropped tx is in block 0: %s' % body)
    # Block 2's transactions submitted on block 0: those valid there wait.
    waiting = {}
    for raw in in_block[2]:
        status, got = post('/v1/tx', raw)
        if status == 200:
            waiting[got['index']] = got['txid']
    check(waiting, 'none of block 2 is valid on block 0')
    status, got = post('/v1/disconnect')
    check(status == 409, 'disconnect while transactions wait: %d %s' % (status, got))
    # Block 1 connected: what it conflicts with is dropped, the rest waits;
    # block 2 then drops exactly those (they are in it).
    status, got = post('/v1/block', blocks[1])
    check(status == 200 and got['height'] == 1, 'peer block 1: %d %s' % (status, got))
    dropped1 = {d['index']: d['txid'] for d in got.get('dropped', [])}
    check(all(waiting.get(i) == t for i, t in dropped1.items()), 'block 1 dropped others: %s' % dropped1)
    kept = {i: t for i, t in waiting.items() if i not in dropped1}
    status, _, body = get(conn, '/v1/tip')
    check(json.loads(body)['pending'] == len(kept), 'pending after block 1: %s, expected %d' % (body, len(kept)))
    status, got = post('/v1/block', blocks[2])
    check(status == 200 and got['height'] == 2, 'peer block 2: %d %s' % (status, got))
    check({d['index']: d['txid'] for d in got.get('dropped', [])} == kept,
          'block 2 drops what still waited: %s, expected %s' % (got.get('dropped'), kept))
    status, _, body = get(conn, '/v1/tip')
    check(json.loads(body)['pending'] == 0, 'pending after block 2: %s' % body)
    print('peers: %d of block 2 waited on block 0, block 1 dropped %d, block 2 dropped %d'
          % (len(waiting), len(dropped1), len(kept)))
    for h, raw in enumerate(blocks[3:], 3):
        status, got = post('/v1/block', raw)
        check(status == 200 and got['height'] == h, 'peer block %d: %d %s' % (h, status, got))
    status, got = post('/v1/block', blocks[3])
    check(status == 422 and got['reason'] == 'BAD_LINK', 'an old block again: %d %s' % (status, got))
    status, got = post('/v1/block', b'\x01\x02')
    check(status == 422 and got['reason'] == 'BLOCK_MALFORMED', 'garbage block: %d %s' % (status, got))
    # A stream that sent the tip hears of its disconnection (an event
    # "disconnect" whose id resumes at its height), then gets the block
    # connected in its place.
    top = summary['height']
    sse = http.client.HTTPConnection('127.0.0.1', int(port), timeout=60)
    sse.request('GET', '/v1/blocks?from=%d' % top)
    resp = sse.getresponse()

    def next_event():
        ev = {}
        while True:
            line = resp.readline().decode().rstrip('\n')
            if line == '' and ev:
                return ev
            if line and not line.startswith(':'):
                field, _, value = line.partition(': ')
                ev[field] = value

    ev = next_event()
    check(ev.get('id') == str(top) and 'event' not in ev, 'SSE: the tip first: %s' % ev)
    status, got = post('/v1/disconnect')
    check(status == 200 and got['height'] == summary['height'] - 1, 'disconnect the tip: %s' % got)
    ev = next_event()
    check(ev.get('event') == 'disconnect' and ev.get('id') == str(top - 1) and
          json.loads(ev.get('data', '{}')) == {'height': top, 'hash': summary['tip']},
          'SSE: the disconnection of the tip: %s' % ev)
    status, got = post('/v1/block', blocks[-1])
    check(status == 200 and got == {'height': summary['height'], 'tip': summary['tip'], 'dropped': []},
          'the tip again: %s' % got)
    ev = next_event()
    check(ev.get('id') == str(top) and 'event' not in ev and
          bytes.fromhex(json.loads(ev['data'])['raw']) == blocks[-1], 'SSE: the tip again: %s' % ev)
    sse.close()
    status, _, body = get(conn, '/v1/tip')
    tip = json.loads(body)
    for k in ('height', 'tip', 'utxo_count', 'utxo_digest'):
        check(tip[k] == summary[k], 'tip %s after peers: %s' % (k, tip[k]))


def raw_request(port, data, wait=5.0):
    """Send bytes, return the status of the answer (0: closed without one)."""
    s = socket.create_connection(('127.0.0.1', int(port)), timeout=wait)
    try:
        s.sendall(data)
        got = b''
        while b'\r\n' not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except OSError:
        got = b''
    finally:
        s.close()
    return int(got.split(b' ')[1]) if got.startswith(b'HTTP/') else 0


def cmd_bad(port, token):
    auth = {'Authorization': 'Bearer ' + token}
    js = dict(auth, **{'Content-Type': 'application/json'})
    raw = dict(auth, **{'Content-Type': 'application/octet-stream'})
    big = b'\0' * 200001
    table = [
        # method, path, headers, body, status
        ('POST', '/v1/tx', js, b'{"tx": "zz"}', 400),
        ('POST', '/v1/tx', js, b'{"tx": "abc"}', 400),
        ('POST', '/v1/tx', js, b'{"tx": ""}', 400),
        ('POST', '/v1/tx', js, b'{"tx": 12}', 400),
        ('POST', '/v1/tx', js, b'{"nottx": "00"}', 400),
        ('POST', '/v1/tx', js, b'["00"]', 400),
        ('POST', '/v1/tx', js, b'{"tx": "0001"', 400),
        ('POST', '/v1/tx', js, b'\xff\xfe', 400),
        ('POST', '/v1/tx', raw, b'', 400),
        ('POST', '/v1/txs', raw, b'\x05\x00\x00\x00ab', 400),
        ('POST', '/v1/txs', raw, b'\x01\x00', 400),
        ('POST', '/v1/tx', raw, big, 413),
        ('POST', '/v1/txs', raw, big, 413),
        ('POST', '/v1/tx', {}, b'\x01\x02', 401),
        ('POST', '/v1/tx', {'Authorization': 'Bearer wrong'}, b'\x01\x02', 403),
        ('POST', '/v1/tx', {'Authorization': token}, b'\x01\x02', 401),
        ('POST', '/v1/flush', {}, b'', 401),
        ('POST', '/v1/txs', {'Authorization': 'Bearer ' + token + 'x'}, b'', 403),
        ('GET', '/v1/tx/xyz', {}, None, 400),
        ('GET', '/v1/tx/' + '0' * 64, {}, None, 404),
        ('GET', '/v1/tx/' + '0' * 63 + 'g', {}, None, 400),
        ('GET', '/v1/block/abc', {}, None, 400),
        ('GET', '/v1/block/-1', {}, None, 400),
        ('GET', '/v1/block/99999', {}, None, 404),
        ('GET', '/v1/blocks?from=x', {}, None, 400),
        ('GET', '/v1/blocks', {'Last-Event-ID': 'nope'}, None, 400),
        ('GET', '/v1/stamp/1:2', {}, None, 400),
        ('GET', '/v1/stamp/1:2:99999999999', {}, None, 400),
        ('GET', '/v1/stamp/1:2:3', {}, None, 404),
        ('GET', '/v1/holdings/abc', {}, None, 400),
        ('GET', '/v1/utxo/' + '0' * 64, {}, None, 400),
        ('GET', '/v1/utxo/' + '0' * 64 + ':70000', {}, None, 400),
        ('GET', '/v1/utxo/' + '0' * 64 + ':0', {}, None, 404),
        ('GET', '/v1/utxo/:0', {}, None, 400),
        ('GET', '/v1/stats', {}, None, 200),
        ('GET', '/nope', {}, None, 404),
        ('GET', '/v1/tx/%ff%00', {}, None, 400),
        ('GET', '/%ff%fe%01', {}, None, 404),
        ('GET', '/v1/stamp/%ff', {}, None, 400),
        ('GET', '/v1/tx', {}, None, 405),
        ('DELETE', '/v1/tip', {}, None, 405),
        # Rejected by the ledger: 422 with the reason.
        ('POST', '/v1/tx', raw, b'\x01\x02\x03', 422),
        ('POST', '/v1/tx', js, b'{"tx": "010203"}', 422),
        # JSON without its content type (curl -d) is still JSON.
        ('POST', '/v1/tx', dict(auth, **{'Content-Type': 'application/x-www-form-urlencoded'}),
         b'{"tx": "0102"}', 422),
        ('POST', '/v1/tx', auth, b'{"tx": "zz"}', 400),
        ('GET', '/v1/tip', {}, None, 200),
    ]
    for method, path, headers, body, want in table:
        conn = http.client.HTTPConnection('127.0.0.1', int(port), timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            status, data = resp.status, resp.read()
        except (ConnectionError, http.client.HTTPException) as e:
            status, data = 0, str(e).encode()
        check(status == want, '%s %s %r: %d, expected %d (%s)' % (method, path, (body or b'')[:20],
                                                                  status, want, data[:200]))
        # Every refusal says why (a stamp never issued answers with its trace).
        if 400 <= want < 500 and want != 422 and status == want and '/v1/stamp/' not in path:
            check('error' in json.loads(data), '%s %s: no error member' % (method, path))
        if want == 422 and status == 422:
            got = json.loads(data)
            check(got['verdict'] == 'rejected' and got['reason'] == 'MALFORMED' and got['txid'] == '',
                  'malformed verdict %s' % got)
        conn.close()

    # Oversize without Content-Length (chunked): 413 once the limit is passed.
    conn = http.client.HTTPConnection('127.0.0.1', int(port), timeout=30)
    conn.request('POST', '/v1/tx', body=iter([big[:100000], big[100000:]]), headers=raw,
                 encode_chunked=True)
    check(conn.getresponse().status == 413, 'chunked oversize')
    conn.close()
    # Garbage instead of HTTP.
    check(raw_request(port, b'\x00\x01garbage\r\n\r\n') in (0, 400), 'garbage request')
    # Slow clients (slowloris): a request that stalls, in its headers or its
    # body, is dropped after the idle timeout, and others are served meanwhile.
    slow = []
    for data in (b'POST /v1/tx HTTP/1.1\r\nHost: x\r\nContent-Le',
                 b'POST /v1/tx HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + token.encode() +
                 b'\r\nContent-Length: 100\r\n\r\nab'):
        s = socket.create_connection(('127.0.0.1', int(port)))
        s.sendall(data)
        slow.append(s)
    t0 = time.time()
    conn = http.client.HTTPConnection('127.0.0.1', int(port), timeout=30)
    status, _, _ = get(conn, '/v1/tip')
    check(status == 200, 'served while slow clients stall')
    for s in slow:
        s.settimeout(20)
        try:
            got = s.recv(4096)
            while got and not got.endswith(b'}') and b'\r\n\r\n' not in got:
                got += s.recv(4096)
        except OSError:
            got = b''
        closed = time.time() - t0
        check(closed < 15, 'a slow client was kept %.1f s' % closed)
        s.close()
    # Trickling clients: a byte every second is never idle for the 2 s idle
    # timeout, but the whole request has 3 s (--request-timeout 3): headers
    # get 408 once they end; a body is cut off (closed, no answer: the
    # HTTP library cannot answer mid-body) well before the trickle ends.
    for head, trickle in ((b'POST /v1/tx HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' +
                           token.encode() + b'\r\nContent-Length: 30\r\n\r\n', b'a' * 30),
                          (b'GET /v1/tip HTTP/1.1\r\n', b'X-Slow: ' + b'b' * 22)):
        s = socket.create_connection(('127.0.0.1', int(port)), timeout=20)
        t0 = time.time()
        s.sendall(head)
        got = b''
        for byte in trickle:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(1)
            s.setblocking(False)
            try:
                got += s.recv(4096)
            except BlockingIOError:
                pass
            except OSError:
                break
            finally:
                s.setblocking(True)
            if got:
                break
        if not got and b'X-Slow' in trickle:
            # The headers end: only now can the server see the request.
            try:
                s.sendall(b'\r\n\r\n')
                got = s.recv(4096)
            except OSError:
                pass
        took = time.time() - t0
        status = int(got.split(b' ')[1]) if got.startswith(b'HTTP/') else 0
        want = 408 if b'X-Slow' in trickle else 0
        check(status == want, 'a trickling client (%r...): status %d, expected %d' % (head[:20], status, want))
        if b'X-Slow' not in trickle:
            check(3 <= took < 8, 'a trickling body was cut off after %.1f s, expected 3..8' % took)
        s.close()
    conn = http.client.HTTPConnection('127.0.0.1', int(port), timeout=30)
    status, _, _ = get(conn, '/v1/tip')
    check(status == 200, 'service up after the bad requests')


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'one':
        cmd_one(*args)
    elif cmd == 'many':
        run_clients(*args, until_error=False)
    elif cmd == 'burst':
        run_clients(*args, until_error=True)
    elif cmd == 'journal':
        cmd_journal(*args)
    elif cmd == 'queries':
        cmd_queries(*args)
    elif cmd == 'bad':
        cmd_bad(*args)
    elif cmd == 'explorer':
        cmd_explorer(*args)
    elif cmd == 'peers':
        cmd_peers(*args)
    else:
        sys.exit('unknown command ' + cmd)
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
