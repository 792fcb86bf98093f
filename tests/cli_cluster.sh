#!/usr/bin/env bash
# The cluster (../shared/spec/serve.md, "cluster (NATS JetStream)"; design
# in docs/cluster.md), on three real nats-servers (JetStream, routes,
# loopback, free ports; stores under $T), R3 stream:
#  1. cluster init: the header is seq 1; init again with the same header is
#     a no-op, another chain's header is refused; status --json shape;
#  2. submit of a generated market (invalid records included): every
#     record acknowledged; submitting it again adds nothing (message id =
#     SHA-256 of the record: all duplicates); export writes the stream's
#     records in order = the file with repeated byte strings dropped (the
#     stream deduplicates identical records inside its window);
#  3. export of a stream with no header, and of an unknown stream, fail.
# Registered only when libnats is built. Every server started is stopped
# on exit (trap).
# Usage: cli_cluster.sh POSTMARK VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
. "$(dirname "$0")/support/nats_lib.sh"
nats_start_all || { bad "nats-servers did not start"; finish; }
"$PM" gen --shape market --txs 4000 --seed 11 -o "$T/m.pmtx" 2> /dev/null || bad "gen"
"$PM" gen --shape market --txs 10 --seed 11 --network other-net -o "$T/other.pmtx" 2> /dev/null || bad "gen other"

# 1. init (the meta leader may still be settling: a few tries).
for _ in $(seq 1 50); do
    "$PM" cluster init --nats "$NATS_URLS" --stream S1 --init "$T/m.pmtx" 2> "$T/init.err" && break
    sleep 0.3
done
grep -q "stream S1 ready (R3)" "$T/init.err" && ok || bad "init: $(cat "$T/init.err")"
"$PM" cluster init --nats "$NATS_URLS" --stream S1 --init "$T/m.pmtx" 2> /dev/null && ok || bad "init again with the same header"
"$PM" cluster init --nats "$NATS_URLS" --stream S1 --init "$T/other.pmtx" 2> "$T/e" && bad "init with another header accepted" || ok
grep -q "another chain" "$T/e" && ok || bad "init with another header: $(cat "$T/e")"
"$PM" cluster status --nats "$NATS_URLS" --stream S1 --json > "$T/st.json" || bad "status"
python3 - "$T/st.json" <<'PY' && ok || bad "status --json: $(cat "$T/st.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["nodes"] == [] and s["agree"] is True and s["stream"]["last_seq"] == 1, s
PY

# 2. submit, again, export.
"$PM" submit "$NATS_URLS" "$T/m.pmtx" --stream S1 --json --quiet > "$T/sub1.json" || bad "submit"
"$PM" submit "$NATS_URLS" "$T/m.pmtx" --stream S1 --json --quiet > "$T/sub2.json" || bad "submit again"
"$PM" cluster export --nats "$NATS_URLS" --stream S1 -o "$T/exp.pmtx" 2> /dev/null || bad "export"
python3 - "$T/m.pmtx" "$T/exp.pmtx" "$T/sub1.json" "$T/sub2.json" <<'PY' && ok || bad "export / submit counts"
import json, struct, sys
def records(path):
    b = open(path, 'rb').read()
    out, o = [], 60
    while o < len(b):
        n = struct.unpack_from('<I', b, o)[0]
        out.append(b[o + 4:o + 4 + n]); o += 4 + n
    return b[:60], out
h1, r1 = records(sys.argv[1]); h2, r2 = records(sys.argv[2])
seen, want = set(), []
for r in r1:
    if r not in seen:
        seen.add(r); want.append(r)
assert h1 == h2, "header"
assert r2 == want, (len(r2), len(want))
s1 = json.load(open(sys.argv[3])); s2 = json.load(open(sys.argv[4]))
assert s1["published"] == len(r1) and s1["duplicates"] == len(r1) - len(want), s1
assert s2["published"] == len(r1) and s2["duplicates"] == len(r1), s2
PY
"$PM" pack "$T/exp.pmtx" --chain "$T/exp.pmbk" --quiet > /dev/null 2>&1 && ok || bad "pack of the export"

# 3. Failures.
"$PM" cluster export --nats "$NATS_URLS" --stream NOPE -o "$T/x.pmtx" 2> /dev/null && bad "export of an unknown stream" || ok
"$PM" submit "$NATS_URLS" "$T/other.pmtx" --stream S1 --quiet 2> /dev/null && bad "submit of another chain's records" || ok
finish
