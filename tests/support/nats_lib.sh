# nats_lib.sh — sourced by the cluster tests after cli_lib.sh: three
# nats-servers (JetStream, clustered by routes) on free loopback ports,
# their stores under $T. Every server started here is killed on exit
# (the trap also runs serve_lib.sh's cleanup when that was sourced).
# Sets NATS_URLS (all three, comma-separated), NATS_PIDS[i], NATS_PORT[i].
NATS_PIDS=(0 0 0)
NATS_PORT=()
NATS_ROUTE=()
nats_cleanup() {
    local p
    for p in "${NATS_PIDS[@]}"; do [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    # PM_KEEP=DIR: keep the run's files (logs, chains, stores) for a post-mortem.
    [ -n "${PM_KEEP:-}" ] && rm -rf "$PM_KEEP" && cp -r "$T" "$PM_KEEP"
    if declare -F cleanup > /dev/null; then cleanup; else rm -rf "$T"; fi
}
trap nats_cleanup EXIT

# Six free ports (client and route for each server), chosen by the kernel.
nats_ports() {
    python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
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

# nats_leader STREAM: the index (0..2) of the server leading STREAM.
nats_leader() {
    local name
    name=$("$PM" cluster status --nats "$NATS_URLS" --stream "$1" --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["stream"]["leader"])')
    echo "${name#n}"
}
