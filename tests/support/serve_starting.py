#!/usr/bin/env python3
"""While `postmark serve` validates its chain, requests get 503 "starting".

    serve_starting.py ERR_FILE PID EXPECTED_HEIGHT

Waits for the "listening on 127.0.0.1:PORT" line in the server's stderr
(ERR_FILE), then at once asks GET /v1/tip and POST /v1/flush over and over
until the tip answers 200. Checks: at least one 503 came first, each with
{"error": "starting"} and a Retry-After header; nothing but 503 before the
first 200; the tip then has EXPECTED_HEIGHT; the "ready" line follows.
Prints failures and "N passed, N failed".
"""
import http.client
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tally import check, summary  # noqa: E402

err_file, pid, want_height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


port = None
deadline = time.time() + 60
while port is None and time.time() < deadline:
    m = re.search(r"^listening on 127\.0\.0\.1:(\d+)$", open(err_file).read(), re.M)
    if m:
        port = int(m.group(1))
    else:
        os.kill(pid, 0)
        time.sleep(0.002)
check(port is not None, "the server never listened")

starting = 0
bad_503 = []
tip = None
while port and time.time() < deadline:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for method, path in (("GET", "/v1/tip"), ("POST", "/v1/flush")):
        c.request(method, path)
        r = c.getresponse()
        body = r.read()
        if r.status == 503:
            starting += 1
            if json.loads(body) != {"error": "starting"} or r.getheader("Retry-After") != "1":
                bad_503.append((path, body, r.getheader("Retry-After")))
        elif path == "/v1/tip":
            check(r.status == 200, "GET /v1/tip after starting: %d %r" % (r.status, body))
            tip = json.loads(body)
            break
    c.close()
    if tip is not None:
        break
    time.sleep(0.005)

check(starting > 0, "no 503 while starting (the chain was validated before listening?)")
check(not bad_503, "503s without {\"error\": \"starting\"} and Retry-After: 1: %r" % bad_503[:3])
check(tip is not None and tip["height"] == want_height,
      "the tip once ready: %r, expected height %d" % (tip, want_height))
check(re.search(r"^ready at height %d$" % want_height, open(err_file).read(), re.M) is not None,
      "no 'ready at height %d' line" % want_height)
sys.exit(summary(" (%d answers 503 while starting)" % starting))
