#!/usr/bin/env python3
"""serve_client.py — a client of `postmark serve`, in the standard library only.

It shows a node author in any language everything needed to use the service:

  * submit transactions: POST /v1/txs with a stream file's body (records, each
    a u32 little-endian length then the bytes); the answer holds one verdict
    per record, in order: {"index", "txid", "verdict": "accepted"|"rejected",
    "reason"}. One transaction alone: POST /v1/tx with its bytes
    (application/octet-stream) or {"tx": HEX}; a ledger reject is status 422.
  * close the open block: POST /v1/flush -> {"height": H} (-1: nothing open).
  * follow blocks: GET /v1/blocks?from=H is a text/event-stream with one event
    per block ("id: HEIGHT", "data: {"height", "hash", "raw"}"); after a
    dropped connection, reconnect with the header Last-Event-ID: the last
    height seen, and the stream goes on with the next block. A block taken
    back (POST /v1/disconnect) comes as an event named "disconnect" before
    the blocks in its place.
  * submit fast, in order: POST /v1/txs?stream=1 answers with its status line
    as soon as the body is admitted (its records' place in the journal is then
    fixed) and streams the verdicts as they are decided and synced. Send the
    next body on a second connection once that status line has come: the
    service decides one body while the next one travels, and the journal keeps
    the order sent. An answer cut short (no closing "]}") means the service
    could not finish it: treat it as a 503.
  * with `serve --token-file`, every POST carries "Authorization: Bearer TOKEN".

Usage:
  serve_client.py URL submit STREAM.pmtx [--batch N] [--token T] [--rejects FILE.csv] [--flush]
                                        [--one-at-a-time]
  serve_client.py URL follow [--from H] [--count N] [--raw FILE] [--token T]

  submit  sends the records of STREAM in requests of N records (default 256) and
          prints a summary; --rejects writes index,txid,reason of each reject
          (as `postmark pack --rejects` does); --flush closes the open block at
          the end. Two requests are in flight (?stream=1, above) unless
          --one-at-a-time.
  follow  prints one line per block (height, hash, bytes); --raw appends each
          block as a chain file record (u32 length + bytes: the chain file
          after its 60-byte header); --count stops after N blocks.
URL is the service's address, e.g. http://127.0.0.1:8750.
"""
import argparse
import http.client
import json
import struct
import sys
import time
import urllib.parse


def connect(url):
    u = urllib.parse.urlsplit(url)
    cls = http.client.HTTPSConnection if u.scheme == 'https' else http.client.HTTPConnection
    return cls(u.hostname, u.port or (443 if u.scheme == 'https' else 80), timeout=120)


def file_records(path):
    """The records of a Postmark file (protocol section 2), a stream's
    transactions or a chain's blocks: a 60-byte header, then u32
    little-endian length + bytes each. A cut last record is left out."""
    with open(path, 'rb') as f:
        data = f.read()
    if data[:8] not in (b'POSTMKTX', b'POSTMKBK'):
        sys.exit('%s: not a Postmark stream or chain' % path)
    at, out = 60, []
    while at + 4 <= len(data):
        n = struct.unpack_from('<I', data, at)[0]
        if at + 4 + n > len(data):
            break
        out.append(data[at + 4:at + 4 + n])
        at += 4 + n
    return out


def send(conn, path, body, token):
    """POST; returns the response once its status line and headers came."""
    headers = {'Content-Type': 'application/octet-stream'}
    if token:
        headers['Authorization'] = 'Bearer ' + token
    conn.request('POST', path, body=body, headers=headers)
    return conn.getresponse()


def answer(path, resp):
    """The JSON answer of a response from send(); exits on an error."""
    data = resp.read()
    try:
        obj = json.loads(data or b'{}')
    except ValueError:
        sys.exit('POST %s: the answer was cut short (%d bytes): the service failed' %
                 (path, len(data)))
    if resp.status not in (200, 422):
        sys.exit('POST %s: %d %s' % (path, resp.status, obj.get('error', '')))
    return obj


def post(conn, path, body, token):
    return answer(path, send(conn, path, body, token))


def verdicts(resp):
    return answer('/v1/txs', resp)['results']


def submit_in_order(url, bodies, token, pipeline=True, read=verdicts):
    """POST each body to /v1/txs in order; yields read(response) of each
    (by default its verdicts). Pipelined: body k+1 goes out on the other
    connection as soon as body k is admitted (the status line of its
    ?stream=1 answer has come)."""
    if not pipeline:
        conn = connect(url)
        for body in bodies:
            yield read(send(conn, '/v1/txs', body, token))
        return
    conns, waiting = [connect(url), connect(url)], None
    for k, body in enumerate(bodies):
        resp = send(conns[k % 2], '/v1/txs?stream=1', body, token)
        if waiting is not None:
            yield read(waiting)
        waiting = resp
    if waiting is not None:
        yield read(waiting)


def submit(args):
    recs = file_records(args.stream)
    conn = connect(args.url)
    accepted = rejected = 0
    rejects = open(args.rejects, 'w') if args.rejects else None
    if rejects:
        rejects.write('index,txid,reason\n')
    started = time.time()
    bodies = (b''.join(struct.pack('<I', len(r)) + r for r in recs[at:at + args.batch])
              for at in range(0, len(recs), args.batch))
    for results in submit_in_order(args.url, bodies, args.token, not args.one_at_a_time):
        for v in results:
            if v['verdict'] == 'accepted':
                accepted += 1
            else:
                rejected += 1
                if rejects:
                    rejects.write('%d,%s,%s\n' % (v['index'], v['txid'], v['reason']))
    if args.flush:
        height = post(conn, '/v1/flush', b'', args.token)['height']
        print('flush: closed block %d' % height if height >= 0 else 'flush: no open block')
    if rejects:
        rejects.close()
    seconds = time.time() - started
    print('%s: %d accepted, %d rejected in %.2f s (%.0f tx/s)' %
          (args.stream, accepted, rejected, seconds, len(recs) / seconds if seconds else 0))


def events(resp):
    """Server-sent events of a response: (id, data) pairs of the block
    events; comments skipped. A block taken back (the event "disconnect")
    is said on stderr; the blocks in its place follow."""
    ev_id, data, kind = None, [], None
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.decode('utf-8').rstrip('\r\n')
        if line == '':
            if data and kind == 'disconnect':
                print('block %d disconnected' % json.loads(data[0])['height'], file=sys.stderr)
            elif data:
                yield ev_id, '\n'.join(data)
            ev_id, data, kind = None, [], None
        elif line.startswith(':'):
            continue
        else:
            field, _, value = line.partition(':')
            value = value[1:] if value.startswith(' ') else value
            if field == 'id':
                ev_id = value
            elif field == 'event':
                kind = value
            elif field == 'data':
                data.append(value)


def follow(args):
    raw = open(args.raw, 'ab') if args.raw else None
    last, seen = None, 0
    while args.count is None or seen < args.count:
        conn = connect(args.url)
        headers = {'Accept': 'text/event-stream'}
        if last is not None:
            headers['Last-Event-ID'] = str(last)  # resume after the last block seen
        try:
            conn.request('GET', '/v1/blocks?from=%d' % args.from_height, headers=headers)
            resp = conn.getresponse()
            if resp.status != 200:
                sys.exit('GET /v1/blocks: %d %s' % (resp.status, resp.read()[:200]))
            for ev_id, data in events(resp):
                block = json.loads(data)
                blob = bytes.fromhex(block['raw'])
                print('block %d %s %d bytes' % (block['height'], block['hash'], len(blob)),
                      flush=True)
                if raw:
                    raw.write(struct.pack('<I', len(blob)) + blob)
                    raw.flush()
                last = int(ev_id)
                seen += 1
                if args.count is not None and seen >= args.count:
                    break
        except (OSError, http.client.HTTPException) as e:
            print('connection lost (%s); resuming after block %s' % (e, last), file=sys.stderr)
            time.sleep(1)
        finally:
            conn.close()
    if raw:
        raw.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('url')
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('submit')
    s.add_argument('stream')
    s.add_argument('--batch', type=int, default=256)
    s.add_argument('--token')
    s.add_argument('--rejects')
    s.add_argument('--flush', action='store_true')
    s.add_argument('--one-at-a-time', action='store_true',
                   help='wait for each answer before sending the next body')
    f = sub.add_parser('follow')
    f.add_argument('--from', dest='from_height', type=int, default=0)
    f.add_argument('--count', type=int)
    f.add_argument('--raw')
    f.add_argument('--token')
    args = p.parse_args()
    submit(args) if args.cmd == 'submit' else follow(args)


if __name__ == '__main__':
    main()
