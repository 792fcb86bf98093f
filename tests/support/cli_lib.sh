# cli_lib.sh — sourced by the tests/cli_*.sh scripts, called as
#   cli_X.sh POSTMARK [VECTORS_DIR]
# Sets PM (the program), V (the vectors folder; a missing one fails the
# test, never skips it), T (a temporary folder removed at exit; TMP is the
# same), counts checks with ok / bad (alias fail), and `finish` prints the
# closing "N passed, N failed" line and sets the exit status.
set -u
PM=${1:?usage: cli_X.sh POSTMARK [VECTORS_DIR]}
V=${2:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=$(mktemp -d)
TMP=$T
trap 'rm -rf "$T"' EXIT
passes=0
fails=0
ok() { passes=$((passes + 1)); }
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }
fail() { bad "$@"; }
finish() {
    echo "$passes passed, $fails failed"
    [ "$fails" -eq 0 ]
    exit
}
need_vectors() {
    if [ -z "$V" ] || [ ! -d "$V" ]; then
        echo "vectors folder missing: ${V:-(none given)}" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
}

# json_subset EXPECTED ACTUAL [SKIP_KEYS]: every key of the EXPECTED JSON
# file (except the comma-separated SKIP_KEYS) has the same value in ACTUAL.
json_subset() {
    python3 - "$1" "$2" "${3:-}" <<'PY'
import json, sys
exp = json.load(open(sys.argv[1]))
act = json.load(open(sys.argv[2]))
skip = set(filter(None, sys.argv[3].split(',')))
diff = {k: (v, act.get(k, '<missing>')) for k, v in exp.items()
        if k not in skip and act.get(k, '<missing>') != v}
if diff:
    print(diff)
    sys.exit(1)
PY
}
