#!/usr/bin/env bash
# A table of bad files, each with the outcome the protocol (§2, §6) and the
# command contract define: the exit code, the reason, and a one-line
# message naming the file, the record and the byte offset.
# Usage: cli_badfiles.sh POSTMARK VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
need_vectors
# Build the files: $T/NAME.pmbk for replay, $T/NAME.pmtx for pack.
python3 - "$V" "$T" <<'PY'
import os, random, struct, sys
V, T = sys.argv[1], sys.argv[2]
chain = open(f"{V}/s1.b32.pmbk", "rb").read()
stream = open(f"{V}/s1.pmtx", "rb").read()
hc, hs = chain[:60], stream[:60]
first_block_end = 60 + 4 + struct.unpack("<I", chain[60:64])[0]
rnd = random.Random(5)
files = {
    "empty": b"",
    "short_header": hc[:59],
    "header_only": hc,
    "wrong_magic": b"POSTMKXX" + chain[8:],
    "wrong_version": chain[:8] + struct.pack("<I", 2) + chain[12:],
    "len_zero": hc + struct.pack("<I", 0),
    "len_4g": chain[:first_block_end] + struct.pack("<I", 0xFFFFFFFF) + b"\x01" * 100,
    "cut_prefix": chain[:first_block_end] + b"\x10\x00",
    "cut_record": chain[:first_block_end + 200],
    "random": bytes(rnd.getrandbits(8) for _ in range(5000)),
    "random_after_header": hc + bytes(rnd.getrandbits(8) for _ in range(5000)),
}
for name, data in files.items():
    open(f"{T}/{name}.pmbk", "wb").write(data)
sfiles = {
    "empty": b"",
    "short_header": hs[:30],
    "header_only": hs,
    "wrong_magic": b"POSTMKBK" + stream[8:],
    "wrong_version": stream[:8] + struct.pack("<I", 7) + stream[12:],
    "len_zero": hs + struct.pack("<I", 0) + stream[60:],
    "len_4g": stream + struct.pack("<I", 0xFFFFFFFF) + b"\x01" * 10,
    "cut_prefix": stream + b"\x05",
    "cut_record": stream[:-10],
    "random": bytes(rnd.getrandbits(8) for _ in range(5000)),
    "random_after_header": hs + bytes(rnd.getrandbits(8) for _ in range(3000)),
    "other_network": stream[:12] + b"upu-dpg-main\0\0\0\0" + stream[28:],
}
for name, data in sfiles.items():
    open(f"{T}/{name}.pmtx", "wb").write(data)
PY

# replay: NAME EXIT REASON HEIGHT [MESSAGE-REGEX]
replay_case() {
    local name=$1 want_rc=$2 want_reason=$3 want_height=$4 want_msg=${5:-}
    "$PM" replay "$T/$name.pmbk" --json > "$T/out.json" 2> "$T/err.txt"
    local rc=$?
    [ $rc -eq "$want_rc" ] || { bad "replay $name: exit $rc, want $want_rc"; return; }
    python3 - "$T/out.json" "$want_reason" "$want_height" <<'PY' || { bad "replay $name: JSON $(cat "$T/out.json")"; return; }
import json, sys
o = json.load(open(sys.argv[1]))
want, height = sys.argv[2], int(sys.argv[3])
if want == "VALID":
    assert o["valid"] is True and o["blocks"] == height, o
else:
    assert o["valid"] is False and o["reason"] == want and o["height"] == height, o
PY
    if [ -n "$want_msg" ]; then
        [ "$(wc -l < "$T/err.txt")" -eq 1 ] && grep -Eq "$want_msg" "$T/err.txt" \
            || { bad "replay $name: message: $(cat "$T/err.txt")"; return; }
    fi
    ok
}
replay_case empty 1 BAD_HEADER 0 "empty\.pmbk: record 0 at byte 0: BAD_HEADER"
replay_case short_header 1 BAD_HEADER 0 "short_header\.pmbk: .*BAD_HEADER"
replay_case header_only 0 VALID 0
replay_case wrong_magic 1 BAD_HEADER 0 "wrong_magic\.pmbk: record 0 at byte 0: BAD_HEADER"
replay_case wrong_version 1 BAD_HEADER 0 "wrong_version\.pmbk: record 0 at byte 8: BAD_HEADER"
replay_case len_zero 1 BLOCK_MALFORMED 0 "len_zero\.pmbk: block 0 at byte 60: BLOCK_MALFORMED"
replay_case len_4g 1 TRUNCATED 1 "len_4g\.pmbk: block 1 at byte [0-9]+: TRUNCATED"
replay_case cut_prefix 1 TRUNCATED 1 "cut_prefix\.pmbk: block 1 at byte [0-9]+: TRUNCATED"
replay_case cut_record 1 TRUNCATED 1 "TRUNCATED"
replay_case random 1 BAD_HEADER 0 "random\.pmbk: .*BAD_HEADER"
replay_case random_after_header 1 TRUNCATED 0 "random_after_header\.pmbk: block 0 at byte 60: TRUNCATED"
# A stream is not a chain.
cp "$V/s1.pmtx" "$T/stream_as_chain.pmbk"
replay_case stream_as_chain 1 BAD_HEADER 0 "BAD_HEADER"

# pack: NAME EXIT [ACCEPTED MALFORMED-REJECTS] [MESSAGE-REGEX]
pack_case() {
    local name=$1 want_rc=$2 want_acc=$3 want_mal=$4 want_msg=${5:-}
    rm -f "$T/p.pmbk" "$T/p.pmbk.runs"
    "$PM" pack "$T/$name.pmtx" --chain "$T/p.pmbk" --rejects "$T/p.csv" --json > "$T/out.json" 2> "$T/err.txt"
    local rc=$?
    [ $rc -eq "$want_rc" ] || { bad "pack $name: exit $rc, want $want_rc: $(cat "$T/err.txt")"; return; }
    if [ "$want_rc" -eq 0 ]; then
        python3 - "$T/out.json" "$want_acc" "$want_mal" "$T/p.csv" <<'PY' || { bad "pack $name: $(cat "$T/out.json")"; return; }
import json, sys
o = json.load(open(sys.argv[1]))
acc, mal = sys.argv[2], int(sys.argv[3])
if acc != "*":
    assert o["accepted"] == int(acc), o
lines = open(sys.argv[4]).read().splitlines()
assert lines[0] == "index,txid,reason"
assert sum(1 for l in lines[1:] if l.endswith(",MALFORMED")) >= mal, lines[:5]
PY
    else
        [ "$(wc -l < "$T/err.txt")" -eq 1 ] && grep -Eq "$want_msg" "$T/err.txt" \
            || { bad "pack $name: message: $(cat "$T/err.txt")"; return; }
    fi
    ok
}
pack_case empty 1 - - "empty\.pmtx: record 0 at byte 0: BAD_HEADER"
pack_case short_header 1 - - "short_header\.pmtx: .*BAD_HEADER"
pack_case header_only 0 0 0
[ "$(stat -c %s "$T/p.pmbk")" -eq 60 ] && ok || bad "header-only pack: new chain is not just a header"
pack_case wrong_magic 1 - - "wrong_magic\.pmtx: .*BAD_HEADER"
pack_case wrong_version 1 - - "wrong_version\.pmtx: record 0 at byte 8: BAD_HEADER"
pack_case len_zero 0 "*" 1
pack_case len_4g 0 257 4
pack_case cut_prefix 0 257 4
pack_case cut_record 0 "*" 1
pack_case random 1 - - "random\.pmtx: .*BAD_HEADER"
pack_case random_after_header 0 0 1
# Another network's stream onto an existing chain.
cp "$V/s1.b32.pmbk" "$T/net.pmbk"
"$PM" pack "$T/other_network.pmtx" --chain "$T/net.pmbk" 2> "$T/err.txt" > /dev/null
[ $? -eq 1 ] && grep -q "different chains" "$T/err.txt" && ok || bad "other network: $(cat "$T/err.txt")"
cmp -s "$T/net.pmbk" "$V/s1.b32.pmbk" && ok || bad "other network: the chain was modified"
# An invalid chain is refused by pack too.
cp "$V/s1.bad.wrong_prev.pmbk" "$T/inv.pmbk"
"$PM" pack "$V/s1.pmtx" --chain "$T/inv.pmbk" 2> "$T/err.txt" > /dev/null
[ $? -eq 1 ] && grep -Eq "block 4 at byte [0-9]+: invalid chain: BAD_LINK" "$T/err.txt" && ok || bad "invalid chain: $(cat "$T/err.txt")"
# Usage errors exit 2.
"$PM" pack "$V/s1.pmtx" 2> /dev/null; [ $? -eq 2 ] && ok || bad "pack without --chain"
"$PM" pack "$V/s1.pmtx" --chain "$T/u.pmbk" --block-txs 0 2> /dev/null; [ $? -eq 2 ] && ok || bad "--block-txs 0"
"$PM" pack "$V/s1.pmtx" --chain "$T/u.pmbk" --block-txs 65537 2> /dev/null; [ $? -eq 2 ] && ok || bad "--block-txs 65537"
"$PM" replay "$V/s1.b32.pmbk" --threads x 2> /dev/null; [ $? -eq 2 ] && ok || bad "--threads x"
"$PM" replay "$V/s1.b32.pmbk" --assume-valid 12 2> /dev/null; [ $? -eq 2 ] && ok || bad "--assume-valid short"
"$PM" replay "$V/s1.b32.pmbk" --bogus 2> /dev/null; [ $? -eq 2 ] && ok || bad "unknown option"
"$PM" nosuchcommand 2> /dev/null; [ $? -eq 2 ] && ok || bad "unknown command"
for c in pack replay; do "$PM" $c --help > /dev/null; [ $? -eq 0 ] && ok || bad "$c --help"; done
finish
