#!/usr/bin/env bash
# The inputs of `pack` and `replay`: a file, stdin ("-") through a pipe, a
# Unix stream socket a node writes a stream into (unix:PATH), and the
# read(2) fallback forced (PM_INGEST=read) must all give the vectors'
# chain byte for byte; and --block-interval closes blocks on a live feed.
# Usage: cli_inputs.sh POSTMARK VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
need_vectors
# stdin
cat "$V/s1.pmtx" | "$PM" pack - --chain "$T/a.pmbk" --block-txs 32 --rejects "$T/a.csv" --quiet \
    && cmp -s "$T/a.pmbk" "$V/s1.b32.pmbk" && cmp -s "$T/a.csv" "$V/s1.b32.rejects.csv" \
    && ok || bad "pack from stdin"
cat "$V/s1.b32.pmbk" | "$PM" replay - --json --quiet > "$T/r.json" \
    && grep -q '"valid": true' "$T/r.json" && ok || bad "replay from stdin"

# the read(2) fallback, forced
PM_INGEST=read "$PM" pack "$V/s1.pmtx" --chain "$T/b.pmbk" --block-txs 32 --quiet \
    && cmp -s "$T/b.pmbk" "$V/s1.b32.pmbk" && ok || bad "pack with the read(2) fallback"
PM_INGEST=read "$PM" replay "$V/s1.bad.truncated.pmbk" --json --quiet > "$T/t.json"
[ $? -eq 1 ] && grep -q '"TRUNCATED"' "$T/t.json" && ok || bad "replay with the read(2) fallback"

# a Unix socket: the node connects and writes the stream in slow pieces
"$PM" pack "unix:$T/feed.sock" --chain "$T/c.pmbk" --block-txs 32 --quiet &
pid=$!
for i in $(seq 1 50); do [ -S "$T/feed.sock" ] && break; sleep 0.1; done
python3 - "$T/feed.sock" "$V/s1.pmtx" <<'PY' || bad "socket writer"
import socket, sys, time
data = open(sys.argv[2], "rb").read()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
for i in range(0, len(data), 7777):
    s.sendall(data[i:i + 7777])
    time.sleep(0.01)
s.close()
PY
wait $pid && cmp -s "$T/c.pmbk" "$V/s1.b32.pmbk" && ok || bad "pack from a unix socket"

# --block-interval: a live feed that pauses gets its block before the limit
mkfifo "$T/fifo"
"$PM" pack "$T/fifo" --chain "$T/d.pmbk" --block-interval 200 --json --quiet > "$T/d.json" &
pid=$!
python3 - "$T/fifo" "$V/s1.pmtx" <<'PY'
import sys, time, struct
data = open(sys.argv[2], "rb").read()
f = open(sys.argv[1], "wb")
f.write(data[:60])
o, n = 60, 0
while o < len(data):
    ln = struct.unpack("<I", data[o:o + 4])[0]
    f.write(data[o:o + 4 + ln]); o += 4 + ln; n += 1
    if n % 100 == 0:
        f.flush(); time.sleep(0.5)
f.close()
PY
wait $pid
python3 -c "
import json,sys; o=json.load(open(sys.argv[1]))
assert o['accepted'] == 257 and o['blocks_added'] >= 2, o" "$T/d.json" && ok || bad "--block-interval did not close blocks on time: $(cat "$T/d.json")"
"$PM" replay "$T/d.pmbk" --quiet && ok || bad "chain made with --block-interval is invalid"

# --block-interval on a feed that goes quiet: the block is closed while the
# feed is idle, not when the next record arrives.
rm -f "$T/fifo"
mkfifo "$T/fifo"
"$PM" pack "$T/fifo" --chain "$T/e.pmbk" --block-interval 300 --quiet &
pid=$!
python3 - "$T/fifo" "$V/s1.pmtx" "$T/e.pmbk" <<'PY' > "$T/idle.txt"
import os, sys, time, struct
data = open(sys.argv[2], "rb").read()
f = open(sys.argv[1], "wb")
o, n = 60, 0
while n < 40:
    ln = struct.unpack("<I", data[o:o + 4])[0]; o += 4 + ln; n += 1
f.write(data[:o]); f.flush()
time.sleep(1.5)          # the feed is quiet: the open block must be closed
print(os.path.getsize(sys.argv[3]))
f.write(data[o:]); f.close()
PY
wait $pid
[ "$(cat "$T/idle.txt")" -gt 60 ] && ok || bad "no block while the feed was idle (chain size $(cat "$T/idle.txt"))"
"$PM" replay "$T/e.pmbk" --quiet && ok || bad "chain made on an idle feed is invalid"
finish
