# serve_lib.sh — sourced by the tests of `postmark serve` after cli_lib.sh:
# start / stop servers, every one of them killed on exit (trap), and the
# Python client of the checks ($CHECK).
CHECK="python3 $HERE/support/serve_check.py"
SERVERS=()
cleanup() {
    local p
    for p in "${SERVERS[@]}"; do kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT

# start NAME ARGS...: run `postmark serve ARGS` on a free port; sets PID and
# PORT once it listens and has loaded its chain and journal (the line
# "ready at height H"; before it, requests get 503). Its stderr is in
# $T/NAME.err.
start() {
    local name=$1
    shift
    "$PM" serve --listen 127.0.0.1:0 "$@" 2> "$T/$name.err" &
    PID=$!
    SERVERS+=("$PID")
    PORT=
    for _ in $(seq 1 600); do
        PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/$name.err")
        [ -n "$PORT" ] && grep -q '^ready at height' "$T/$name.err" && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "server $name did not start:" >&2
    cat "$T/$name.err" >&2
    return 1
}
# stop: SIGTERM, and the exit status must be 0.
stop() {
    kill -TERM "$PID" && wait "$PID"
}
# need_tools TOOL...: every one is on PATH, or the test fails (never skips).
need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" > /dev/null || { bad "$tool is not installed (scripts/setup.sh installs it)"; finish; }
    done
}
