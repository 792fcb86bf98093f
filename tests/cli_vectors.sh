#!/usr/bin/env bash
# The `pack` and `replay` commands reproduce every file of the vectors
# folder byte for byte, at 1, 2 and 8 threads: chains, rejects CSVs, the
# pack/replay JSON summaries, the two-step halves chain and every
# s1.bad.* verdict. Usage: cli_vectors.sh POSTMARK VECTORS_DIR
. "$(dirname "$0")/support/cli_lib.sh" "$@"
need_vectors
for threads in 1 2 8; do
    for n in 32 4096; do
        rm -f "$T/c.pmbk"
        "$PM" pack "$V/s1.pmtx" --chain "$T/c.pmbk" --block-txs $n --threads $threads \
            --rejects "$T/r.csv" --json --quiet > "$T/p.json"
        [ $? -eq 0 ] && ok || bad "pack b$n t$threads exit"
        cmp -s "$T/c.pmbk" "$V/s1.b$n.pmbk" && ok || bad "chain s1.b$n t$threads differs"
        cmp -s "$T/r.csv" "$V/s1.b$n.rejects.csv" && ok || bad "rejects s1.b$n t$threads differ"
        json_subset "$V/s1.b$n.json" "$T/p.json" block_txs && ok || bad "pack json s1.b$n t$threads"
        "$PM" replay "$T/c.pmbk" --threads $threads --json --quiet > "$T/r.json"
        [ $? -eq 0 ] && ok || bad "replay s1.b$n t$threads exit"
        json_subset "$V/s1.b$n.json" "$T/r.json" block_txs,accepted,rejected && ok || bad "replay json s1.b$n t$threads"
    done

    rm -f "$T/h.pmbk"
    "$PM" pack "$V/s1.half1.pmtx" --chain "$T/h.pmbk" --block-txs 32 --threads $threads --quiet > /dev/null \
        && ok || bad "pack half1 t$threads"
    "$PM" pack "$V/s1.half2.pmtx" --chain "$T/h.pmbk" --block-txs 32 --threads $threads \
        --rejects "$T/r2.csv" --json --quiet > "$T/h.json" && ok || bad "pack half2 t$threads"
    cmp -s "$T/h.pmbk" "$V/s1.halves.b32.pmbk" && ok || bad "halves chain t$threads differs"
    cmp -s "$T/r2.csv" "$V/s1.halves.b32.rejects2.csv" && ok || bad "halves rejects t$threads differ"
    json_subset "$V/s1.halves.b32.json" "$T/h.json" block_txs && ok || bad "halves json t$threads"

    for f in "$V"/s1.bad.*.pmbk; do
        name=$(basename "$f" .pmbk)
        av=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('assume_valid',''))" "$V/$name.json")
        "$PM" replay "$f" --threads $threads --json --quiet ${av:+--assume-valid "$av"} > "$T/b.json"
        rc=$?
        want=$(python3 -c "import json,sys; print(0 if json.load(open(sys.argv[1]))['valid'] else 1)" "$V/$name.json")
        [ $rc -eq "$want" ] && ok || bad "$name t$threads exit $rc, want $want"
        json_subset "$V/$name.json" "$T/b.json" assume_valid && ok || bad "$name t$threads verdict"
    done
done
finish
