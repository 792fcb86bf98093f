#!/usr/bin/env bash
# `postmark serve --save-snapshot S --snapshot-every N` and a restart with
# `--from-snapshot S`:
#  1. s1.pmtx submitted (--block-txs 32) and flushed with a snapshot every
#     3 blocks: the snapshot is saved, the chain is s1.b32.pmbk;
#  2. a restart from it gives the same tip (height, hash, UTXO count and
#     digest as s1.b32.json) and goes on admitting; so does a restart from
#     an older snapshot (the blocks after its tip validated on top of it);
#  3. a snapshot of another chain, or one whose tip the chain lacks, is
#     refused (exit 1); --save-snapshot without --snapshot-every is a usage
#     error (exit 2).
# Usage: cli_serve_snapshot.sh POSTMARK VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
need_vectors
. "$(dirname "$0")/support/serve_lib.sh"
CLIENT="python3 $HERE/../examples/serve_client.py"
tip_of() { python3 -c "import json, sys, urllib.request
t = json.load(urllib.request.urlopen('http://127.0.0.1:%s/v1/tip' % sys.argv[1]))
print(t['height'], t['tip'], t['utxo_count'], t['utxo_digest'], t['pending'])" "$1"; }
want=$(python3 -c "import json, sys
t = json.load(open(sys.argv[1]))
print(t['height'], t['tip'], t['utxo_count'], t['utxo_digest'], 0)" "$V/s1.b32.json")

start a --chain "$T/a.pmbk" --init "$V/s1.pmtx" --block-txs 32 --save-snapshot "$T/a.snap" --snapshot-every 3 || bad "start"
$CLIENT "http://127.0.0.1:$PORT" submit "$V/s1.pmtx" --batch 50 --flush > /dev/null || bad "submit"
[ "$(tip_of "$PORT")" = "$want" ] && ok || bad "tip before the restart: $(tip_of "$PORT")"
stop && ok || bad "SIGTERM"
cmp -s "$T/a.pmbk" "$V/s1.b32.pmbk" && ok || bad "the chain is not s1.b32.pmbk"
[ -s "$T/a.snap" ] && ok || bad "no snapshot saved"

# Blocks 0..8: snapshots after the 3rd, 6th and 9th block: its tip is 8.
start b --chain "$T/a.pmbk" --block-txs 32 --from-snapshot "$T/a.snap" || bad "restart from the snapshot"
got=$(tip_of "$PORT")
[ "$got" = "$want" ] && ok || bad "tip after the restart from the snapshot: $got, expected $want"
# Everything is in the chain already: s1's second half is all duplicates.
$CLIENT "http://127.0.0.1:$PORT" submit "$V/s1.half2.pmtx" --batch 16 > "$T/b.out" &&
    grep -q ": 0 accepted" "$T/b.out" && ok || bad "after the restart: $(cat "$T/b.out")"
stop && ok || bad "SIGTERM b"

# An older snapshot (tip 5) on the same chain: blocks 6..8 are validated.
start c --chain "$T/c.pmbk" --init "$V/s1.pmtx" --block-txs 32 --save-snapshot "$T/c.snap" --snapshot-every 6 || bad "start c"
$CLIENT "http://127.0.0.1:$PORT" submit "$V/s1.pmtx" --batch 50 --flush > /dev/null || bad "submit c"
stop && ok || bad "SIGTERM c"
start d --chain "$T/c.pmbk" --block-txs 32 --from-snapshot "$T/c.snap" || bad "restart from the older snapshot"
got=$(tip_of "$PORT")
[ "$got" = "$want" ] && ok || bad "tip from the older snapshot: $got, expected $want"
stop && ok || bad "SIGTERM d"

# Refusals.
: > "$T/empty.pmbk"
"$PM" serve --chain "$T/empty.pmbk" --init "$V/s1.pmtx" --from-snapshot "$T/a.snap" --listen 127.0.0.1:0 2> "$T/e.err"
[ $? -eq 1 ] && grep -q "not in this chain" "$T/e.err" && ok || bad "a snapshot whose tip the chain lacks: $(cat "$T/e.err")"
"$PM" serve --chain "$T/a.pmbk" --save-snapshot "$T/x.snap" 2> /dev/null
[ $? -eq 2 ] && ok || bad "--save-snapshot without --snapshot-every"
finish
