#!/usr/bin/env python3
"""split_records.py — cut a Postmark file (POSTMKTX stream or POSTMKBK chain)
into seed inputs for the fuzzers.

Writes into OUTDIR:
  NAME-rNNNNN   each whole record's bytes (a transaction, or a block),
  NAME-head     the 60-byte file header followed by the first K records
                (a small but complete file, for fuzzers that read files).
Stops at the first partial record. Usage:
  split_records.py FILE OUTDIR [--max N] [--head K]
"""
import argparse
import os
import struct
import sys

HEADER = 60


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("outdir")
    ap.add_argument("--max", type=int, default=1000, help="records to write (1000)")
    ap.add_argument("--head", type=int, default=8, help="records in NAME-head (8)")
    args = ap.parse_args()

    data = open(args.file, "rb").read()
    if len(data) < HEADER or data[:8] not in (b"POSTMKTX", b"POSTMKBK"):
        sys.exit(f"{args.file}: not a Postmark file")
    name = os.path.basename(args.file).replace(".", "_")
    os.makedirs(args.outdir, exist_ok=True)

    pos, n, head_end = HEADER, 0, HEADER
    while pos + 4 <= len(data) and n < args.max:
        (length,) = struct.unpack_from("<I", data, pos)
        if pos + 4 + length > len(data):
            break
        with open(os.path.join(args.outdir, f"{name}-r{n:05d}"), "wb") as f:
            f.write(data[pos + 4 : pos + 4 + length])
        pos += 4 + length
        n += 1
        if n == args.head:
            head_end = pos
    if n < args.head:
        head_end = pos
    with open(os.path.join(args.outdir, f"{name}-head"), "wb") as f:
        f.write(data[:head_end])
    print(f"{args.file}: {n} records -> {args.outdir}")
    if n == 0:
        sys.exit(f"{args.file}: no whole record")


if __name__ == "__main__":
    main()
