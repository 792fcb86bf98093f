# nats_lib.sh — sourced by the cluster tests after cli_lib.sh: three
# nats-servers (JetStream, clustered by routes) on free loopback ports,
# their stores under $T. Every server started here is killed on exit
# (the trap also runs serve_lib.sh's cleanup when that was sourced).
# Sets NATS_URLS (all three, comma-separated), NATS_PIDS[i], NATS_PORT[i],
# NATS_MON[i] (the monitoring port: /jsz answers without JetStream, so
# also while a stream has no leader).
NATS_PIDS=(0 0 0)
NATS_PORT=()
NATS_ROUTE=()
NATS_MON=()
nats_cleanup() {
    local p
    for p in "${NATS_PIDS[@]}"; do [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    # PM_KEEP=DIR: keep the run's files (logs, chains, stores) for a post-mortem.
    [ -n "${PM_KEEP:-}" ] && rm -rf "$PM_KEEP" && cp -r "$T" "$PM_KEEP"
    if declare -F cleanup > /dev/null; then cleanup; else rm -rf "$T"; fi
}
trap nats_cleanup EXIT

# Nine free ports (client, route and monitoring for each server), chosen by
# the kernel.
nats_ports() {
    python3 -c '
import socket
ss = [socket.socket() for _ in range(9)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'
}

nats_config() {
    local i=$1 routes="" j
    for j in 0 1 2; do
        [ "$j" = "$i" ] || routes="$routes${routes:+, }nats-route://127.0.0.1:${NATS_ROUTE[$j]}"
    done
    mkdir -p "$T/nats$i"
    cat > "$T/nats$i.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:${NATS_PORT[$i]}
http: 127.0.0.1:${NATS_MON[$i]}
jetstream { store_dir: "$T/nats$i" }
cluster {
  name: pm
  listen: 127.0.0.1:${NATS_ROUTE[$i]}
  routes: [$routes ]
}
CONF
}

# nats_run I: start (or restart) server I.
nats_run() {
    local i=$1
    nats-server -c "$T/nats$i.conf" >> "$T/nats$i.log" 2>&1 &
    NATS_PIDS[$i]=$!
}

# nats_start_all: the three servers, then wait until JetStream has a meta
# leader (a stream can be created).
nats_start_all() {
    command -v nats-server > /dev/null || { bad "nats-server is not installed (scripts/setup.sh installs it)"; finish; }
    local ports i
    read -r -a ports <<< "$(nats_ports)"
    for i in 0 1 2; do
        NATS_PORT[$i]=${ports[$i]}
        NATS_ROUTE[$i]=${ports[$((i + 3))]}
        NATS_MON[$i]=${ports[$((i + 6))]}
    done
    for i in 0 1 2; do nats_config "$i"; nats_run "$i"; done
    NATS_URLS="nats://127.0.0.1:${NATS_PORT[0]},nats://127.0.0.1:${NATS_PORT[1]},nats://127.0.0.1:${NATS_PORT[2]}"
    for _ in $(seq 1 100); do
        grep -q "JetStream cluster new metadata leader\|Self is new JetStream cluster metadata leader" \
            "$T"/nats*.log 2>/dev/null && return 0
        sleep 0.2
    done
    echo "nats-servers did not elect a JetStream meta leader:" >&2
    tail -n 20 "$T"/nats*.log >&2
    return 1
}

# nats_kill I: kill -9 server I.
nats_kill() {
    kill -9 "${NATS_PIDS[$1]}" 2>/dev/null
    wait "${NATS_PIDS[$1]}" 2>/dev/null
    NATS_PIDS[$1]=0
}

# nats_jsz STREAM: "LEADER CURRENT" from the servers' monitoring ports, at
# once (a JetStream request waits out its timeout while the stream has no
# leader): LEADER the index (0..2) of the server that says it leads
# STREAM ("-" when none does), CURRENT 1 when all three servers run, hold
# the leader's last sequence and the leader sees every replica current.
nats_jsz() {
    python3 - "$1" "${NATS_MON[@]}" "${NATS_PIDS[@]}" <<'PY'
import json, sys, urllib.request
name, mon, pids = sys.argv[1], sys.argv[2:5], sys.argv[5:8]
views = {}
for i in range(3):
    if pids[i] == "0":
        continue
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{mon[i]}/jsz?streams=true", timeout=2) as r:
            j = json.load(r)
    except (OSError, ValueError):
        continue
    for a in j.get("account_details") or []:
        for st in a.get("stream_detail") or []:
            if st["name"] == name:
                views[i] = st
leader = next((i for i, st in views.items() if (st.get("cluster") or {}).get("leader") == f"n{i}"), None)
current = 0
if leader is not None and len(views) == 3 and "0" not in pids:
    last = views[leader]["state"]["last_seq"]
    reps = views[leader]["cluster"].get("replicas") or []
    current = int(len(reps) == 2 and all(r.get("current") and not r.get("offline") for r in reps)
                  and all(st["state"]["last_seq"] == last for st in views.values()))
print("-" if leader is None else leader, current)
PY
}

# nats_leader STREAM: the index (0..2) of the server leading STREAM.
nats_leader() {
    local l c
    read -r l c <<< "$(nats_jsz "$1")"
    echo "$l"
}

# nats_same STREAM: the three servers' copies of STREAM hold the same
# messages, bytes and sequences (from /jsz; retried for a few seconds while
# a replica catches up). Prints the states when they differ.
nats_same() {
    python3 - "$1" "${NATS_MON[@]}" <<'PY'
import json, sys, time, urllib.request
name, mon = sys.argv[1], sys.argv[2:5]
for _ in range(50):
    states = []
    for m in mon:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{m}/jsz?streams=true", timeout=2) as r:
                j = json.load(r)
            st = [s["state"] for a in j.get("account_details") or [] for s in a.get("stream_detail") or []
                  if s["name"] == name]
            states.append({k: st[0].get(k) for k in ("messages", "bytes", "first_seq", "last_seq")} if st else None)
        except (OSError, ValueError):
            states.append(None)
    if None not in states and all(s == states[0] for s in states):
        sys.exit(0)
    time.sleep(0.2)
print(states, file=sys.stderr)
sys.exit(1)
PY
}
