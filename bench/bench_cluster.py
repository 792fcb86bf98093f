#!/usr/bin/env python3
"""bench_cluster.py — a 3-server R3 JetStream cluster with 3 Postmark nodes
on this machine, beside `postmark pack` of the same stream on the same cores.

    bench_cluster.py --postmark BIN [--txs N] [--batch B] [--reps K]

1. Throughput: a generated market of N records (no repeated records, so
   every record is one message) is published with `postmark submit --batch
   B` (async publish, B messages in flight: the batching chosen), then a
   cut; the time is from the first publish to the moment all three nodes
   have packed the cut (their /metrics postmark_cluster_seq). Accepted tx/s
   = accepted records / that time. Then `postmark pack` of `cluster
   export` (the same records) with the same --block-txs; the ratio
   cluster/pack is the figure. Best of K.
2. Failover: with records waiting in the nodes' open block, the stream
   leader is killed -9 and a cut is requested from a node at once (POST
   /v1/flush: it publishes, retrying until a new leader answers); the time
   from the kill to that node's next committed block. Median of K.

Skips with a message (exit 0) when nats-server or cluster mode is missing.
Standard library only; prints a text report (other-cluster.txt).
"""
import argparse, http.client, json, os, re, shutil, socket, struct, subprocess, sys, tempfile, time

def free_ports(n):
    ss = [socket.socket() for _ in range(n)]
    for s in ss: s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in ss]
    for s in ss: s.close()
    return ports

class Cluster:
    def __init__(self, pm, tmp):
        self.pm, self.tmp, self.procs, self.nats = pm, tmp, [], [None] * 3
        p = free_ports(6)
        self.cport, self.rport = p[:3], p[3:]
        self.urls = ",".join("nats://127.0.0.1:%d" % c for c in self.cport)
        for i in range(3):
            routes = ", ".join("nats-route://127.0.0.1:%d" % self.rport[j] for j in range(3) if j != i)
            with open(os.path.join(tmp, "n%d.conf" % i), "w") as f:
                f.write('server_name: n%d\nlisten: 127.0.0.1:%d\njetstream { store_dir: "%s/n%d" }\n'
                        'cluster { name: b, listen: 127.0.0.1:%d, routes: [%s] }\n'
                        % (i, self.cport[i], tmp, i, self.rport[i], routes))
            self.run_nats(i)

    def run_nats(self, i):
        log = open(os.path.join(self.tmp, "n%d.log" % i), "a")
        self.nats[i] = subprocess.Popen(["nats-server", "-c", os.path.join(self.tmp, "n%d.conf" % i)],
                                        stdout=log, stderr=log)

    def kill_nats(self, i):
        self.nats[i].kill(); self.nats[i].wait()

    def cli(self, *args, check=True):
        r = subprocess.run([self.pm, *args], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(args[:2]), r.stderr.strip()))
        return r

    def status(self, stream):
        r = self.cli("cluster", "status", "--nats", self.urls, "--stream", stream, "--json", check=False)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def node(self, i, stream, init):
        err = open(os.path.join(self.tmp, "node%d.err" % i), "w+")
        p = subprocess.Popen([self.pm, "serve", "--listen", "127.0.0.1:0", "--chain",
                              os.path.join(self.tmp, "c%d.pmbk" % i), "--init", init, "--nats", self.urls,
                              "--stream", stream, "--node", "node%d" % i, "--block-txs", "512",
                              "--threads", "1"], stderr=err)
        self.procs.append(p)
        for _ in range(600):
            err.seek(0); text = err.read()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            if m and "ready at height" in text:
                return int(m.group(1))
            if p.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("node %d did not start: %s" % (i, text))

    def stop(self):
        for p in self.procs + [n for n in self.nats if n]:
            if p.poll() is None:
                p.kill(); p.wait()

def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("GET", path); r = c.getresponse(); return r.read().decode()

def post(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", path); r = c.getresponse(); return r.status, r.read().decode()

def metric(port, name):
    m = re.search(r"^%s (\S+)$" % name, get(port, "/metrics"), re.M)
    return float(m.group(1)) if m else None

def run(pm, txs, batch, reps, tmp_root):
    out = []
    # One market: its first `txs` records are the throughput run, the
    # last 300 wait in the open block when the leader is killed.
    full = os.path.join(tmp_root, "full.pmtx")
    subprocess.run([pm, "gen", "--shape", "market", "--txs", str(txs + 300), "--seed", "5",
                    "--replay-ppm", "0", "-o", full], check=True, capture_output=True)
    b = open(full, "rb").read()
    o = 60
    for _ in range(txs):
        o += 4 + struct.unpack_from("<I", b, o)[0]
    gen, tail = os.path.join(tmp_root, "m.pmtx"), os.path.join(tmp_root, "tail.pmtx")
    open(gen, "wb").write(b[:o])
    open(tail, "wb").write(b[:60] + b[o:])
    best, fails = None, []
    for rep in range(reps):
        tmp = tempfile.mkdtemp(dir=tmp_root)
        c = Cluster(pm, tmp)
        try:
            for _ in range(100):
                if c.cli("cluster", "init", "--nats", c.urls, "--stream", "B", "--init", gen, check=False).returncode == 0:
                    break
                time.sleep(0.3)
            ports = [c.node(i, "B", gen) for i in range(3)]
            t0 = time.time()
            c.cli("submit", c.urls, gen, "--stream", "B", "--batch", str(batch), "--quiet")
            st, body = post(ports[0], "/v1/flush")
            last = c.status("B")["stream"]["last_seq"]
            while any((metric(p, "postmark_cluster_seq") or 0) < last for p in ports):
                time.sleep(0.05)
            secs = time.time() - t0
            accepted = metric(ports[0], 'postmark_transactions_total{verdict="accepted"}')
            exp = os.path.join(tmp, "exp.pmtx")
            c.cli("cluster", "export", "--nats", c.urls, "--stream", "B", "-o", exp)
            t1 = time.time()
            r = c.cli("pack", exp, "--chain", os.path.join(tmp, "p.pmbk"), "--block-txs", "512", "--json", "--quiet")
            psecs = time.time() - t1
            pj = json.loads(r.stdout)
            # Failover: records waiting, the leader killed, a cut asked for at once.
            c.cli("submit", c.urls, tail, "--stream", "B", "--quiet")
            last = c.status("B")["stream"]["last_seq"]
            while any((metric(p, "postmark_cluster_seq") or 0) < last for p in ports):
                time.sleep(0.05)
            h0 = json.loads(get(ports[0], "/v1/tip"))["height"]
            leader = c.status("B")["stream"]["leader"]
            i = int(leader[1:])
            tk = time.time()
            c.kill_nats(i)
            st, body = post(ports[0], "/v1/flush")
            while json.loads(get(ports[0], "/v1/tip"))["height"] == h0 and time.time() - tk < 120:
                time.sleep(0.02)
            fail_s = time.time() - tk
            fails.append((fail_s, st))
            r = dict(secs=secs, accepted=accepted, records=txs, pack_s=psecs, pack_acc=pj["accepted"])
            if best is None or r["secs"] < best["secs"]:
                best = r
        finally:
            c.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    fl = sorted(f for f, _ in fails)
    cl = best["accepted"] / best["secs"]
    pk = best["pack_acc"] / best["pack_s"]
    out.append("3 nats-servers (R3, file store) + 3 postmark serve --nats nodes (--threads 1), one machine")
    out.append("%d records, submit --batch %d (async, %d in flight), best of %d" % (txs, batch, batch, reps))
    out.append("cluster end-to-end: %.0f accepted tx/s (%d accepted in %.2f s, first publish to all 3 nodes packed)"
               % (cl, best["accepted"], best["secs"]))
    out.append("pack of the export:  %.0f accepted tx/s (%d in %.2f s)" % (pk, best["pack_acc"], best["pack_s"]))
    out.append("ratio cluster/pack:  %.2f" % (cl / pk))
    out.append("failover (kill -9 of the stream leader -> next committed block on a node): median %.1f s "
               "(runs: %s)" % (fl[len(fl) // 2], ", ".join("%.1f" % f for f in fl)))
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--postmark", required=True)
    ap.add_argument("--txs", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--data", default=None)
    a = ap.parse_args()
    if not shutil.which("nats-server"):
        print("cluster: skipped (nats-server is not installed; scripts/setup.sh installs it)")
        return 0
    if "cluster" not in subprocess.run([a.postmark, "--help"], capture_output=True, text=True).stdout:
        print("cluster: skipped (postmark was built without libnats)")
        return 0
    tmp = tempfile.mkdtemp(dir=a.data)
    try:
        print("\n".join(run(a.postmark, a.txs, a.batch, a.reps, tmp)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0

if __name__ == "__main__":
    sys.exit(main())
