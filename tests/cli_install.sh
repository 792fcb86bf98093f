#!/usr/bin/env bash
# cli_install.sh — `cmake --install` into a temporary prefix, then build and
# run tests/install/consumer.c against the installed copy, the three ways an
# embedding program would: pkg-config (shared), pkg-config --static
# (libpostmark.a plus Requires.private/Libs.private), and a CMake project
# using find_package(postmark) (postmark::postmark and
# postmark::postmark_static). Also checks the shared library's SONAME, that
# it exports only pm_ functions declared PM_API in postmark.h, and that it
# does not link jemalloc (which must never replace the host's malloc).
# Then builds examples/ against the installed copy (find_package) and runs
# each on the protocol vectors, checking what it prints against them.
#
# Usage: bash cli_install.sh BUILD_DIR SOURCE_DIR [CC] [EXTRA_FLAGS] [VECTORS_DIR]
# (registered by CMakeLists.txt; EXTRA_FLAGS are the build's sanitizer
# flags, so an instrumented library goes into an instrumented program).
set -u
usage="usage: cli_install.sh BUILD_DIR SOURCE_DIR [CC] [EXTRA_FLAGS] [VECTORS_DIR]"
build=${1:?$usage}
src=${2:?$usage}
cc=${3:-cc}
read -r -a extra <<<"${4:-}"
vectors=${5:-$src/../shared/vectors}

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
finish() {
    echo "cli_install: $passed passed, $failed failed"
    exit $((failed > 0))
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pm-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

if cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
    pass "cmake --install --prefix $prefix"
else
    cat "$tmp/install.log" >&2
    fail "cmake --install"
    finish
fi

pc=$(find "$prefix" -name postmark.pc -path '*/pkgconfig/*' | head -n 1)
if [ -z "$pc" ]; then
    fail "no postmark.pc installed"
    finish
fi
libdir=$(dirname "$(dirname "$pc")")
for f in "$libdir/libpostmark.so.2" "$libdir/libpostmark.so" "$libdir/libpostmark.a" \
         "$prefix/include/postmark.h" "$libdir/cmake/postmark/postmarkConfig.cmake" \
         "$libdir/cmake/postmark/postmarkConfigVersion.cmake" \
         "$libdir/cmake/postmark/postmarkTargets.cmake"; do
    if [ -e "$f" ]; then pass "installed ${f#"$prefix"/}"; else fail "missing ${f#"$prefix"/}"; fi
done
if cmp -s "$prefix/include/postmark.h" "$src/include/postmark.h"; then
    pass "installed postmark.h is the source's"
else
    fail "installed postmark.h differs from include/postmark.h"
fi

# ---- man pages -------------------------------------------------------------
# Installed, naming every subcommand of tools/postmark.c, and rendered
# without a warning (groff -ww: every warning; man -l as a user reads it).
for page in man1/postmark.1 man3/postmark.3; do
    f=$prefix/share/man/$page
    if [ ! -f "$f" ]; then
        fail "missing share/man/$page"
        continue
    fi
    pass "installed share/man/$page"
    if ! command -v groff >/dev/null; then
        fail "groff is not installed (apt-get install groff-base): cannot check $page"
        continue
    fi
    warnings=$(groff -man -ww -z "$f" 2>&1)
    if command -v man >/dev/null; then
        warnings+=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
    fi
    if [ -z "$warnings" ]; then pass "$page renders without warnings"; else fail "$page: $warnings"; fi
done
commands=$(sed -n 's/^ *{"\([a-z]*\)", pm_cmd_.*/\1/p' "$src/tools/postmark.c")
[ -n "$commands" ] || fail "no subcommands read from tools/postmark.c"
undocumented=""
for c in $commands; do
    grep -q "^\.BI\{0,1\} \"\{0,1\}$c\b" "$prefix/share/man/man1/postmark.1" 2>/dev/null ||
        undocumented+=" $c"
done
if [ -z "$undocumented" ]; then
    pass "postmark(1) documents every subcommand:" $commands
else
    fail "postmark(1) does not document:$undocumented"
fi

# ---- the shared library itself -----------------------------------------
so=$libdir/libpostmark.so.2
soname=$(readelf -d "$so" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$soname" = libpostmark.so.2 ]; then pass "SONAME $soname"; else fail "SONAME '$soname', expected libpostmark.so.2"; fi
if readelf -d "$so" | grep -q 'NEEDED.*jemalloc'; then
    fail "libpostmark links jemalloc (it must dlopen it)"
else
    pass "no link-time jemalloc dependency"
fi

# Exported (defined, dynamic) symbols: every one must be a pm_ function or
# object (pm_context_static) declared with PM_API in the public header.
# (ASan exports an __odr_asan.NAME indicator beside each exported object.)
nm -D --defined-only "$so" | awk '{print $NF}' | grep -v '^__odr_asan\.' | sort -u >"$tmp/exported"
sed -n -e 's/.*PM_API[^(]*[ *]\(pm_[a-z0-9_]*\) *(.*/\1/p' \
       -e 's/^PM_API extern [^(]*[ *]\(pm_[a-z0-9_]*\);.*/\1/p' \
    "$src/include/postmark.h" | sort -u >"$tmp/declared"
if [ ! -s "$tmp/exported" ]; then
    fail "the shared library exports nothing"
else
    pass "exports $(wc -l <"$tmp/exported") symbols"
fi
stray=$(comm -23 "$tmp/exported" "$tmp/declared")
if [ -z "$stray" ]; then
    pass "every exported symbol is PM_API in postmark.h"
else
    fail "exported but not PM_API in postmark.h: $(echo $stray)"
fi
missing=$(comm -13 "$tmp/exported" "$tmp/declared")
if [ -n "$missing" ]; then
    # Not a failure while engine modules are being written; listed so that
    # a gap in the finished library is visible.
    echo "note: declared in postmark.h but not (yet) in the library: $(echo $missing)"
fi

# ---- consumer via pkg-config, shared ------------------------------------
export PKG_CONFIG_PATH=$libdir/pkgconfig
cflags=(-std=c17 -Wall -Wextra -Werror "${extra[@]}")
run() { # NAME PROGRAM [env...]: run a built consumer and check its verdict
    local name=$1 prog=$2
    shift 2
    if out=$(env "$@" "$prog" 2>&1) && grep -q "chain id 74801713de9759e22bfb4a8734a7aa04f3a05b4d197af055deae67a1b4965323 ok" <<<"$out"; then
        pass "$name runs: $out"
    else
        fail "$name: $out"
    fi
}

read -r -a pc_shared <<<"$(pkg-config --cflags --libs postmark)"
if "$cc" "${cflags[@]}" "$src/tests/install/consumer.c" -o "$tmp/consumer_pc" "${pc_shared[@]}" 2>"$tmp/cc.log"; then
    pass "pkg-config build: $cc ... ${pc_shared[*]}"
    resolved=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/consumer_pc" | awk '/libpostmark.so.2/ {print $3}')
    if [ "$resolved" -ef "$so" ]; then pass "loads the installed libpostmark.so.2"; else fail "libpostmark.so.2 resolves to '$resolved'"; fi
    run "consumer (pkg-config, shared)" "$tmp/consumer_pc" LD_LIBRARY_PATH="$libdir"
else
    cat "$tmp/cc.log" >&2
    fail "pkg-config build"
fi

# The library example of README.md compiles against the installed header.
if [ -f "$src/README.md" ]; then
    awk '/^```c$/ {f = 1; next} /^```$/ {f = 0} f' "$src/README.md" >"$tmp/readme_example.c"
    if [ ! -s "$tmp/readme_example.c" ]; then
        fail "README.md has no C example"
    elif "$cc" "${cflags[@]}" -c "$tmp/readme_example.c" -o "$tmp/readme_example.o" \
            $(pkg-config --cflags postmark) 2>"$tmp/cc.log"; then
        pass "README.md's C example compiles against the installed postmark.h"
    else
        cat "$tmp/cc.log" >&2
        fail "README.md's C example does not compile"
    fi
fi

# ---- consumer via pkg-config --static -----------------------------------
# Only the flags pkg-config gives, with -lpostmark pinned to the archive:
# proves Requires.private / Libs.private name every dependency.
read -r -a pc_static <<<"$(pkg-config --cflags --static --libs postmark | sed 's/-lpostmark\b/-l:libpostmark.a/')"
if "$cc" "${cflags[@]}" "$src/tests/install/consumer.c" -o "$tmp/consumer_pc_static" "${pc_static[@]}" 2>"$tmp/cc.log"; then
    pass "pkg-config --static build: ${pc_static[*]}"
    if readelf -d "$tmp/consumer_pc_static" | grep -q 'NEEDED.*libpostmark'; then
        fail "static consumer still needs libpostmark.so"
    else
        pass "static consumer does not need libpostmark.so"
    fi
    run "consumer (pkg-config, static)" "$tmp/consumer_pc_static"
else
    cat "$tmp/cc.log" >&2
    fail "pkg-config --static build"
fi

# ---- consumer via find_package(postmark) ---------------------------------
cmake_project() { # SOURCE BUILD LOG: configure and build a project using the install
    cmake -S "$1" -B "$2" -DCMAKE_PREFIX_PATH="$prefix" \
          -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DCMAKE_C_FLAGS="${extra[*]}" -DCMAKE_EXE_LINKER_FLAGS="${extra[*]}" >"$3" 2>&1 &&
        cmake --build "$2" >>"$3" 2>&1
}
if cmake_project "$src/tests/install" "$tmp/cmake-consumer" "$tmp/cmake.log"; then
    pass "find_package(postmark) project builds"
    run "consumer (find_package, postmark::postmark)" "$tmp/cmake-consumer/consumer_shared" LD_LIBRARY_PATH="$libdir"
    run "consumer (find_package, postmark::postmark_static)" "$tmp/cmake-consumer/consumer_static"
    if readelf -d "$tmp/cmake-consumer/consumer_shared" | grep -q 'NEEDED.*libpostmark.so.2'; then
        pass "postmark::postmark is the shared library"
    else
        fail "postmark::postmark did not link libpostmark.so.2"
    fi
else
    cat "$tmp/cmake.log" >&2
    fail "find_package(postmark) project"
fi

# ---- examples/, built against the installed copy and run -----------------
# Each example's output is checked against the vectors: the pack summary
# and tip of s1.b32.json, the replayed tip, UTXO count and digest, the
# rejects of s1.b32.rejects.csv (index and reason), a snapshot round trip.
json() { # FILE KEY: a scalar of a vectors summary
    sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" "$1"
}
if cmake_project "$src/examples" "$tmp/examples" "$tmp/examples.log"; then
    pass "examples/ build against the installed library"
    ex=$tmp/examples
    b32=$vectors/s1.b32.json
    tip=$(json "$b32" tip)
    digest=$(json "$b32" utxo_digest)
    [ -n "$tip" ] && [ -n "$digest" ] || fail "cannot read the tip and digest of $b32"
    expect() { # NAME WANTED COMMAND...: run an example, compare its last line
        local name=$1 want=$2
        shift 2
        local out
        out=$(LD_LIBRARY_PATH="$libdir" "$@" 2>&1 | tail -n 1)
        if [ "$out" = "$want" ]; then pass "$name: $out"; else fail "$name: '$out', expected '$want'"; fi
    }
    expect "embed_pack s1.pmtx 32" \
        "accepted $(json "$b32" accepted) rejected $(json "$b32" rejected) blocks $(json "$b32" blocks) tip $tip" \
        "$ex/embed_pack" "$vectors/s1.pmtx" 32
    expect "replay_dump s1.b32.pmbk" \
        "height $(json "$b32" height) tip $tip utxos $(json "$b32" utxo_count) digest $digest" \
        "$ex/replay_dump" "$vectors/s1.b32.pmbk"
    bad=$vectors/s1.bad.duplicate_input.json
    expect "replay_dump s1.bad.duplicate_input.pmbk" \
        "block $(json "$bad" height) invalid: $(json "$bad" reason) (tx $(json "$bad" tx))" \
        "$ex/replay_dump" "$vectors/s1.bad.duplicate_input.pmbk"
    LD_LIBRARY_PATH="$libdir" "$ex/check_admission" "$vectors/s1.pmtx" >"$tmp/admission" 2>&1
    tail -n +2 "$vectors/s1.b32.rejects.csv" | awk -F, '{print $1, $3}' >"$tmp/rejects"
    if [ -s "$tmp/rejects" ] && head -n -1 "$tmp/admission" | cmp -s - "$tmp/rejects"; then
        pass "check_admission refuses exactly the rejects of s1.b32.rejects.csv: $(tail -n 1 "$tmp/admission")"
    else
        fail "check_admission: $(head -n -1 "$tmp/admission" | diff - "$tmp/rejects" | head -n 5)"
    fi
    expect "snapshot_roundtrip s1.b32.pmbk" \
        "loaded height $(json "$b32" height) tip $tip digest $digest same" \
        "$ex/snapshot_roundtrip" "$vectors/s1.b32.pmbk" "$tmp/s1.snapshot"
else
    cat "$tmp/examples.log" >&2
    fail "examples/ build"
fi

# A version the package does not satisfy must be refused.
if cmake -S "$src/tests/install" -B "$tmp/cmake-v2" -DCMAKE_PREFIX_PATH="$prefix" \
         -DCMAKE_C_COMPILER="$cc" -DPM_CONSUMER_VERSION=3.0 >"$tmp/cmake2.log" 2>&1; then
    fail "find_package(postmark 3.0) accepted this 2.x package"
else
    pass "find_package(postmark 3.0) refused (SameMajorVersion)"
fi

finish
