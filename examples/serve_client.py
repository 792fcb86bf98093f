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
  * with `serve --token-file`, every POST carries "Authorization: Bearer TOKEN".

Usage:
  serve_client.py URL submit STREAM.pmtx [--batch N] [--token T] [--rejects FILE.csv] [--flush]
  serve_client.py URL follow [--from H] [--count N] [--raw FILE] [--token T]

  submit  sends the records of STREAM in requests of N records (default 256) and
          prints a summary; --rejects writes index,txid,reason of each reject
          (as `postmark pack --rejects` does); --flush closes the open block at
          the end.
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


def post(conn, path, body, token):
    headers = {'Content-Type': 'application/octet-stream'}
    if token:
        headers['Authorization'] = 'Bearer ' + token
    conn.request('POST', path, body=body, headers=headers)
    resp = conn.getresponse()
    answer = json.loads(resp.read() or b'{}')
    if resp.status not in (200, 422):
        sys.exit('POST %s: %d %s' % (path, resp.status, answer.get('error', '')))
    return answer


def submit(args):
    recs = file_records(args.stream)
    conn = connect(args.url)
    accepted = rejected = 0
    rejects = open(args.rejects, 'w') if args.rejects else None
    if rejects:
        rejects.write('index,txid,reason\n')
    started = time.time()
    for at in range(0, len(recs), args.batch):
        body = b''.join(struct.pack('<I', len(r)) + r for r in recs[at:at + args.batch])
        for v in post(conn, '/v1/txs', body, args.token)['results']:
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
    f = sub.add_parser('follow')
    f.add_argument('--from', dest='from_height', type=int, default=0)
    f.add_argument('--count', type=int)
    f.add_argument('--raw')
    f.add_argument('--token')
    args = p.parse_args()
    submit(args) if args.cmd == 'submit' else follow(args)


if __name__ == '__main__':
    main()
