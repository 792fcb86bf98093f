#!/usr/bin/env python3
"""Seed the fuzz corpora from the protocol vectors.

usage: seed_from_vectors.py VECTORS_DIR OUT_DIR [--small]

Writes OUT_DIR/fuzz_tx/ (one file per transaction record: every record of
every .pmtx and every transaction inside every .pmbk block),
OUT_DIR/fuzz_block/ (one file per block record of every .pmbk) and
OUT_DIR/fuzz_header/ (each vector file cut after a few records). Files are
named by the SHA-1 of their content, so duplicates collapse. With --small
it keeps only a handful per target (the committed fuzz/corpus/).
"""
import hashlib
import os
import struct
import sys


def records(data, start):
    pos = start
    while pos + 4 <= len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        if pos + 4 + n > len(data):
            return
        yield pos, data[pos + 4:pos + 4 + n]
        pos += 4 + n


def put(folder, blob):
    os.makedirs(folder, exist_ok=True)
    name = hashlib.sha1(blob).hexdigest()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(blob)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    vectors, out = sys.argv[1], sys.argv[2]
    small = "--small" in sys.argv[3:]
    txs, blocks, files = [], [], []
    for name in sorted(os.listdir(vectors)):
        path = os.path.join(vectors, name)
        if not (name.endswith(".pmtx") or name.endswith(".pmbk")):
            continue
        data = open(path, "rb").read()
        ends = []
        for pos, rec in records(data, 60):
            ends.append(pos + 4 + len(rec))
            if name.endswith(".pmtx"):
                txs.append(rec)
            else:
                blocks.append(rec)
                txs.extend(r for _, r in records(rec, 80))
        cut = ends[2] if len(ends) > 2 else len(data)
        files.append(data[:cut] + (data[cut:cut + 7] if small else b""))
    if small:
        # Per type byte pair the two smallest and a middle-sized
        # transaction, the smallest block, two file prefixes.
        by_type = {}
        for t in txs:
            by_type.setdefault(t[:2], set()).add(t)
        txs = []
        for group in by_type.values():
            group = sorted(group, key=len)
            txs += group[:2] + [t for t in group[len(group) // 2:][:1] if len(t) < 4000]
        blocks = sorted(blocks, key=len)[:1]
        files = [min((f for f in files if f[:8] == magic), key=len)[:2064]
                 for magic in (b"POSTMKTX", b"POSTMKBK")]
    for t in txs:
        put(os.path.join(out, "fuzz_tx"), t)
    for b in blocks:
        put(os.path.join(out, "fuzz_block"), b)
    for f in files:
        put(os.path.join(out, "fuzz_header"), f)


if __name__ == "__main__":
    main()
