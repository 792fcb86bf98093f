#!/usr/bin/env python3
"""bench_serve.py — `postmark serve` beside `postmark pack`, same stream, same cores.

    bench_serve.py --postmark BIN --data DIR [--txs N] [--threads T] [--batch B]
                   [--clients C] [--no-pipeline] [--rate R] [--seconds S] [--reps K]

1. Throughput: a generated market stream of N records is submitted to a
   fresh `postmark serve` as POST /v1/txs bodies of B records, in the
   stream's order, then a flush. By default as examples/serve_client.py
   submits: two bodies in flight on two connections, the next sent as soon
   as the one before is admitted (the status line of its ?stream=1 answer),
   so the engine decides one body while the next travels and the journal
   keeps the stream's order. --no-pipeline waits for each whole answer
   first. --clients C > 1: the first tenth (the setup) in order, the rest by
   C clients at once; the journal then keeps the order bodies arrive in,
   not the stream's, and a market's verdicts depend on order (a transfer
   before the issue it spends is rejected), so that measures another
   workload: the rejects are printed. The limit is `postmark pack` of
   serve's own journal: the same records in the same order; the two chains
   must be identical, byte for byte, or the run fails. Both with
   --threads T, wall time from the first record to the last block synced.
   Per run the ratio serve/pack; the median of K runs.
2. Latency: single POST /v1/tx requests at a fixed offered rate R per second
   for S seconds (an open loop: each request is timed from the moment it was
   due, so a slow answer is not hidden by sending the next one later);
   p50/p99/max. Transfers from the same stream after its setup.

3. Latency with a real HTTP load generator: wrk (4.1: no fixed-rate mode,
   so a fixed number of connections, 1 and 8, each sending its next
   request when the answer arrives: a closed loop) running
   bench/serve_latency.lua, which posts one distinct record a request from
   the same stream after its setup; p50/p99/max as wrk measures them.
   Skipped, with a line saying so, when wrk is not installed.

Standard library only. Prints a text report (bench/run.sh keeps it as
other-serve.txt) and exits 1 when a run fails.
"""
import argparse
import filecmp
import http.client
import os
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

# The example client's reader of stream files.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'examples'))
from serve_client import file_records as records, submit_in_order  # noqa: E402


class Server:
    def __init__(self, postmark, work, stream, threads):
        self.err = open(os.path.join(work, 'serve.err'), 'w+')
        self.proc = subprocess.Popen(
            [postmark, 'serve', '--chain', os.path.join(work, 'serve.pmbk'), '--init', stream,
             '--listen', '127.0.0.1:0', '--threads', str(threads), '--quiet'],
            stderr=self.err)
        for _ in range(600):
            self.err.seek(0)
            for line in self.err.read().splitlines():
                if line.startswith('listening on '):
                    self.port = int(line.rsplit(':', 1)[1])
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError('serve did not start')

    def conn(self):
        return http.client.HTTPConnection('127.0.0.1', self.port, timeout=300)

    def stop(self):
        """Stop it; returns the CPU seconds (user + system) it used."""
        self.proc.terminate()
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = rc = os.waitstatus_to_exitcode(status)
        self.err.close()
        if rc != 0:
            raise RuntimeError('serve exited %d' % rc)
        return usage.ru_utime + usage.ru_stime


def post(conn, path, body):
    conn.request('POST', path, body=body, headers={'Content-Type': 'application/octet-stream'})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status not in (200, 422):
        raise RuntimeError('POST %s: %d %s' % (path, resp.status, data[:200]))
    return data


def whole_answer(resp):
    """Read an answer without parsing it (the client shares the server's
    cores): a 200 that ends as the JSON does."""
    data = resp.read()
    if resp.status != 200 or not data.endswith(b']}'):
        raise RuntimeError('POST /v1/txs: %d, %d bytes, cut short or refused: %s'
                           % (resp.status, len(data), data[:200]))


def throughput(args, stream, recs, work):
    server = Server(args.postmark, work, stream, args.threads)
    bodies = [b''.join(struct.pack('<I', len(r)) + r for r in recs[i:i + args.batch])
              for i in range(0, len(recs), args.batch)]
    setup = max(1, len(bodies) // 10)
    lock = threading.Lock()
    nxt = [setup]
    errors = []

    def client():
        conn = server.conn()
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(bodies):
                return
            try:
                post(conn, '/v1/txs', bodies[i])
            except Exception as e:  # reported below, the run fails
                errors.append(e)
                return

    t0 = time.perf_counter()
    conn = server.conn()
    if args.clients == 1 and args.pipeline:
        # Two bodies in flight, in order (the example client's way).
        for _ in submit_in_order('http://127.0.0.1:%d' % server.port, bodies, None,
                                 read=whole_answer):
            pass
        post(conn, '/v1/flush', b'')
        seconds = time.perf_counter() - t0
        return seconds, server.stop()
    for body in bodies[:setup]:
        post(conn, '/v1/txs', body)
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    post(conn, '/v1/flush', b'')
    seconds = time.perf_counter() - t0
    cpu = server.stop()
    if errors:
        raise errors[0]
    return seconds, cpu


def pack(args, stream, chain):
    """Seconds and CPU seconds for `postmark pack STREAM` into a new CHAIN."""
    for f in (chain, chain + '.runs'):
        if os.path.exists(f):
            os.remove(f)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([args.postmark, 'pack', stream, '--chain', chain, '--threads',
                    str(args.threads), '--block-txs', '4096', '--quiet'], check=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def count_rejects(path):
    with open(path, 'rb') as f:
        return sum(1 for _ in f) - 1  # the header line


def latency(args, stream, recs, work):
    server = Server(args.postmark, work, stream, args.threads)
    # Setup first (operators, series, issues), then the offered load.
    setup = len(recs) // 10
    conn = server.conn()
    for i in range(0, setup, args.batch):
        post(conn, '/v1/txs', b''.join(struct.pack('<I', len(r)) + r
                                       for r in recs[i:i + args.batch]))
    load = recs[setup:setup + int(args.rate * args.seconds)]
    lat = [None] * len(load)
    start = time.perf_counter() + 0.2
    lock = threading.Lock()
    nxt = [0]

    def client():
        c = server.conn()
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(load):
                return
            due = start + i / args.rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            post(c, '/v1/tx', load[i])
            lat[i] = time.perf_counter() - due

    threads = [threading.Thread(target=client) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    server.stop()
    lat.sort()
    return len(lat), lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1]


def wrk_latency(args, stream, recs, work, conns):
    """wrk -t1 -cCONNS for --seconds on a fresh server after the setup:
    (requests, non-2xx, p50 s, p99 s, max s)."""
    server = Server(args.postmark, work, stream, args.threads)
    try:
        setup = len(recs) // 10
        conn = server.conn()
        for i in range(0, setup, args.batch):
            post(conn, '/v1/txs', b''.join(struct.pack('<I', len(r)) + r
                                           for r in recs[i:i + args.batch]))
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'serve_latency.lua')
        out = subprocess.run([args.wrk, '-t1', '-c%d' % conns, '-d%ds' % max(1, int(args.seconds)),
                              '--latency', '-s', script, 'http://127.0.0.1:%d' % server.port,
                              '--', stream, str(setup)],
                             check=True, capture_output=True, text=True).stdout
    finally:
        server.stop()
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == 'wrk-latency':
            v = dict(zip(f[1::2], (int(x) for x in f[2::2])))
            return (v['requests'], v['non2xx'], v['p50_us'] / 1e6, v['p99_us'] / 1e6,
                    v['max_us'] / 1e6)
    raise RuntimeError('wrk printed no result line:\n' + out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--postmark', required=True)
    p.add_argument('--data', default=None)
    p.add_argument('--txs', type=int, default=100000)
    p.add_argument('--threads', type=int, default=os.cpu_count())
    p.add_argument('--batch', type=int, default=2048)
    p.add_argument('--clients', type=int, default=1)
    p.add_argument('--no-pipeline', dest='pipeline', action='store_false',
                   help='one client: wait for each answer before the next body')
    p.add_argument('--rate', type=float, default=200)
    p.add_argument('--seconds', type=float, default=5)
    p.add_argument('--reps', type=int, default=1)
    p.add_argument('--wrk', default=shutil.which('wrk'), help='wrk (default: on PATH)')
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix='bench_serve.', dir=args.data)
    try:
        stream = os.path.join(work, 'market.pmtx')
        subprocess.run([args.postmark, 'gen', '--shape', 'market', '--txs', str(args.txs),
                        '--seed', '3', '-o', stream], check=True, stderr=subprocess.DEVNULL)
        recs = records(stream)
        runs = []  # (pack s, pack CPU s, serve s, serve CPU s, rejects)
        for _ in range(args.reps):
            for f in os.listdir(work):
                if f.startswith('serve.'):
                    os.remove(os.path.join(work, f))
            serve_s, serve_cpu = throughput(args, stream, recs, work)
            chain = os.path.join(work, 'pack.pmbk')
            journal = os.path.join(work, 'serve.pmbk.journal.pmtx')
            pack_s, pack_cpu = pack(args, journal, chain)
            if not filecmp.cmp(chain, os.path.join(work, 'serve.pmbk'), shallow=False):
                raise RuntimeError('serve\'s chain is not pack of its journal')
            runs.append((pack_s, pack_cpu, serve_s, serve_cpu,
                         count_rejects(journal + '.rejects.csv')))
        n = len(recs)
        print('postmark serve, %d-record market stream, --threads %d (median of %d)'
              % (n, args.threads, args.reps))
        for k, (p_s, p_cpu, s_s, s_cpu, rej) in enumerate(runs):
            print('  run %d: pack of the journal %.2f s (%.2f CPU s), serve %.2f s (%.2f CPU s), '
                  'ratio %.3f (%d rejected)' % (k + 1, p_s, p_cpu, s_s, s_cpu, p_s / s_s, rej))
        pack_med = statistics.median(r[0] for r in runs)
        serve_med = statistics.median(r[2] for r in runs)
        print('  pack (the limit)          %9.0f tx/s  (%.2f s)' % (n / pack_med, pack_med))
        print('  serve POST /v1/txs        %9.0f tx/s  (%.2f s; %d records a body, %s)'
              % (n / serve_med, serve_med, args.batch,
                 '%d clients' % args.clients if args.clients > 1
                 else 'two in flight, in order' if args.pipeline else 'one at a time'))
        print('  ratio serve/pack          %9.3f' % statistics.median(r[0] / r[2] for r in runs))
        print('  CPU-time ratio            %9.3f  (pack CPU s / serve CPU s, the server alone)'
              % statistics.median(r[1] / r[3] for r in runs))
        for f in os.listdir(work):
            if f.startswith('serve.'):
                os.remove(os.path.join(work, f))
        count, p50, p99, worst = latency(args, stream, recs, work)
        print('  POST /v1/tx at %.0f/s for %.0f s (%d requests): p50 %.2f ms, p99 %.2f ms, max %.2f ms'
              % (args.rate, args.seconds, count, p50 * 1e3, p99 * 1e3, worst * 1e3))
        if not args.wrk:
            print('  wrk: not installed, its latency skipped')
        for conns in ((1, 8) if args.wrk else ()):
            for f in os.listdir(work):
                if f.startswith('serve.'):
                    os.remove(os.path.join(work, f))
            count, non2xx, p50, p99, worst = wrk_latency(args, stream, recs, work, conns)
            print('  wrk POST /v1/tx, %d connection%s, %.0f s (%d requests, %d rejected 422): '
                  'p50 %.2f ms, p99 %.2f ms, max %.2f ms'
                  % (conns, '' if conns == 1 else 's', max(1, int(args.seconds)), count, non2xx,
                     p50 * 1e3, p99 * 1e3, worst * 1e3))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    try:
        main()
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        print('bench_serve: %s' % e, file=sys.stderr)
        sys.exit(1)
