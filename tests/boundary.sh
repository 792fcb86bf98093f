#!/usr/bin/env bash
# boundary.sh — the line between the library and everything else, as
# built:
#  - no file under tools/ (the program and postmark_tools) includes an
#    engine header or the internal one: they use include/postmark.h only;
#  - libpostmark.so exports exactly the PM_API functions of postmark.h
#    and pm_context_static, no more and no fewer;
#  - it links neither liburing (ingest is the tools') nor jemalloc (loaded
#    at run time);
#  - nothing in it is unreachable from what it exports: the same objects
#    linked with --gc-sections (the pm_gc_probe target) keep every symbol
#    and the same code and data sizes.
#
# Usage: bash boundary.sh SOURCE_DIR LIBPOSTMARK_SO [GC_PROBE_SO]
# (registered by CMakeLists.txt; no probe in sanitizer builds, whose
# instrumentation adds sections of its own).
set -u
src=${1:?usage: boundary.sh SOURCE_DIR LIBPOSTMARK_SO [GC_PROBE_SO]}
so=${2:?usage: boundary.sh SOURCE_DIR LIBPOSTMARK_SO [GC_PROBE_SO]}
probe=${3:-}

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pm-boundary.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# ---- the tools include no engine header ---------------------------------
# An engine header is any header file under engine/ (by name, as a quoted
# include resolves it) or any path through engine/ or internal/.
engine_headers=$(cd "$src/engine" && ls -- *.h)
[ -n "$engine_headers" ] || fail "no headers found under $src/engine"
# Every include line under tools/, as FILE:LINE:TEXT, then the included
# name alone.
grep -rnE --include='*.c' --include='*.h' '^[[:space:]]*#[[:space:]]*include' "$src/tools" \
    >"$tmp/includes"
[ -s "$tmp/includes" ] || fail "no include lines found under $src/tools"
found=0
while IFS= read -r hit; do
    inc=$(sed -n 's/.*#[[:space:]]*include[[:space:]]*["<]\([^">]*\)[">].*/\1/p' <<<"$hit")
    base=${inc##*/}
    if grep -qxF -- "$base" <<<"$engine_headers" || [[ $inc == *engine/* ]] ||
       [[ $inc == *internal/* ]] || [ "$base" = postmark_internal.h ]; then
        fail "includes an engine header: ${hit#"$src"/}"
        found=1
    fi
done <"$tmp/includes"
[ $found = 0 ] && pass "no file under tools/ includes an engine header"

# ---- exports: exactly the PM_API functions and pm_context_static --------
nm -D --defined-only "$so" | awk '{print $NF}' | grep -v '^__odr_asan\.' | sort -u >"$tmp/exported"
sed -n -e 's/.*PM_API[^(]*[ *]\(pm_[a-z0-9_]*\) *(.*/\1/p' \
       -e 's/^PM_API extern [^(]*[ *]\(pm_[a-z0-9_]*\);.*/\1/p' \
    "$src/include/postmark.h" | sort -u >"$tmp/declared"
if ! grep -qx pm_context_static "$tmp/declared"; then
    fail "postmark.h declares no PM_API pm_context_static"
fi
if [ "$(wc -l <"$tmp/declared")" -lt 40 ]; then
    fail "only $(wc -l <"$tmp/declared") PM_API names read from postmark.h (the pattern broke?)"
fi
stray=$(comm -23 "$tmp/exported" "$tmp/declared")
missing=$(comm -13 "$tmp/exported" "$tmp/declared")
if [ -z "$stray" ] && [ -z "$missing" ]; then
    pass "exports exactly the $(wc -l <"$tmp/declared") PM_API names of postmark.h"
else
    [ -n "$stray" ] && fail "exported but not PM_API in postmark.h: $(echo $stray)"
    [ -n "$missing" ] && fail "PM_API in postmark.h but not exported: $(echo $missing)"
fi

# ---- link-time dependencies ---------------------------------------------
needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p' | tr '\n' ' ')
if grep -q uring <<<"$needed"; then fail "libpostmark needs liburing: $needed"; else pass "no liburing ($needed)"; fi
if grep -q jemalloc <<<"$needed"; then fail "libpostmark links jemalloc: $needed"; else pass "no jemalloc"; fi

# ---- nothing unreachable -------------------------------------------------
if [ -n "$probe" ]; then
    symbols() { nm --defined-only "$1" | awk '$2 ~ /^[tTdDbBrR]$/ {print $3}' | sort; }
    sizes() { readelf -SW "$1" | awk '$2 ~ /^\.(text|rodata|data|data\.rel\.ro|bss)$/ {print $2, $6}'; }
    symbols "$so" >"$tmp/all"
    symbols "$probe" >"$tmp/kept"
    gone=$(comm -23 "$tmp/all" "$tmp/kept")
    if [ ! -s "$tmp/all" ]; then
        fail "no symbols in $so (stripped?)"
    elif [ -z "$gone" ]; then
        pass "--gc-sections keeps all $(wc -l <"$tmp/all") functions and objects"
    else
        fail "unreachable from the exported functions (--gc-sections drops them): $(echo $gone)"
    fi
    if [ "$(sizes "$so")" = "$(sizes "$probe")" ]; then
        pass "--gc-sections leaves code and data sizes unchanged: $(sizes "$so" | tr '\n' ' ')"
    else
        fail "sizes differ with --gc-sections: $(sizes "$so" | tr '\n' ' ') vs $(sizes "$probe" | tr '\n' ' ')"
    fi
fi

echo "boundary: $passed passed, $failed failed"
exit $((failed > 0))
