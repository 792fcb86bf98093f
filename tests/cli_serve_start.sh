#!/usr/bin/env bash
# `postmark serve` listens before it has validated its chain and journal,
# and answers 503 {"error": "starting"} (Retry-After: 1) until then:
#  1. a real chain big enough to take a while (gen --shape market --txs
#     20000, packed with --block-txs 512): requests sent as soon as it
#     listens get 503, then the tip is pack's;
#  2. then the write routes answer as usual, and SIGTERM exits 0.
# Usage: cli_serve_start.sh POSTMARK VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
. "$(dirname "$0")/support/serve_lib.sh"

"$PM" gen --shape market --txs 20000 --seed 7 -o "$T/big.pmtx" 2> /dev/null || bad "gen"
"$PM" pack "$T/big.pmtx" --chain "$T/big.pmbk" --block-txs 512 --json --quiet > "$T/pack.json" || bad "pack"
height=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['height'])" "$T/pack.json")

# One validation thread: the start takes long enough to be seen.
"$PM" serve --chain "$T/big.pmbk" --listen 127.0.0.1:0 --threads 1 --block-txs 512 2> "$T/big.err" &
PID=$!
SERVERS+=("$PID")
if python3 "$HERE/support/serve_starting.py" "$T/big.err" "$PID" "$height" > "$T/starting.out"; then
    ok
else
    bad "503 while starting"
    cat "$T/big.err" >&2
fi
cat "$T/starting.out"
PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/big.err")

# Ready: the write routes work (nothing is open: no block to close).
[ "$(curl -s -X POST "http://127.0.0.1:$PORT/v1/flush")" = '{"height":-1}' ] && ok || bad "POST /v1/flush once ready"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/tip")" = 200 ] && ok || bad "GET /v1/tip once ready"
stop && ok || bad "SIGTERM"
finish
