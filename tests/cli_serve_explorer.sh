#!/usr/bin/env bash
# The explorer page of `postmark serve` in a real browser: s1.pmtx is
# submitted (--block-txs 32), then headless Chromium (chromium-driver +
# python3-selenium, tests/support/explorer_check.py) loads GET /, searches
# each stamp of s1.b32.traces.json with the search box and finds its owners
# in the trace's order, and follows the owner to its holdings page.
# Screenshots (desktop and 390px phone width) are kept as CI artifacts in
# $PM_ARTIFACTS, else in artifacts/ beside the program. The server and the
# browser are stopped on exit (trap).
# Usage: cli_serve_explorer.sh POSTMARK VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
need_vectors
. "$(dirname "$0")/support/serve_lib.sh"
need_tools chromium chromedriver
# Debian's python3-selenium is in the system's Python, which may not be the
# first python3 on PATH.
PY=
for py in python3 /usr/bin/python3; do
    "$py" -c "import selenium" 2> /dev/null && { PY=$py; break; }
done
[ -n "$PY" ] || { bad "python3-selenium is not installed"; finish; }
ART=${PM_ARTIFACTS:-$(cd "$(dirname "$PM")" && pwd)/artifacts}

start x --chain "$T/x.pmbk" --init "$V/s1.pmtx" --block-txs 32 || bad "start"
python3 "$HERE/../examples/serve_client.py" "http://127.0.0.1:$PORT" submit "$V/s1.pmtx" --batch 50 --flush > /dev/null || bad "submit"
cmp -s "$T/x.pmbk" "$V/s1.b32.pmbk" && ok || bad "the chain is not s1.b32.pmbk"

# The browser runs in its own process group so that a failed check or a
# signal still stops chromedriver and every chromium process it started.
set -m
"$PY" "$HERE/support/explorer_check.py" "http://127.0.0.1:$PORT" "$V/s1.b32.traces.json" "$ART" > "$T/browser.out" 2>&1 &
browser=$!
set +m
trap 'kill -9 -- -$browser 2>/dev/null; cleanup' EXIT
wait "$browser"
rc=$?
cat "$T/browser.out" >&2
line=$(tail -n 1 "$T/browser.out")
if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]] && [ "$rc" -eq 0 ]; then
    passes=$((passes + BASH_REMATCH[1]))
else
    bad "the browser checks (exit $rc)"
fi
[ -s "$ART/explorer.png" ] && ok || bad "no screenshot in $ART"
kill -0 "$PID" && ok || bad "the server died"
stop && ok || bad "SIGTERM"
finish
