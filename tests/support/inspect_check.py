#!/usr/bin/env python3
"""inspect_check.py — check `postmark inspect --json` output against itself,
independently of the C code: every decoded record is re-encoded from its
fields per protocol §2, §3 and §6 and must give back its "raw" bytes, and
the hashes it reports (chain_id, txid, block hash, merkle root) are
recomputed here with hashlib.

Usage: inspect_check.py FILE.jsonl
Prints one summary line "records=N txs=N blocks=N errors=N truncated=N" and
exits 1 (with the first problems on stderr) when anything disagrees.
"""
import hashlib
import json
import struct
import sys

problems = []


def tagged(tag, data):
    t = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(t + t + data).digest()


def fail(where, what):
    problems.append("%s: %s" % (where, what))


TYPES = {"REGISTER": 1, "SERIES": 2, "ISSUE": 3, "TRANSFER": 4}


def text(s, limit):
    b = s.encode("utf-8")
    assert 1 <= len(b) <= limit, "text length %d" % len(b)
    return bytes([len(b)]) + b


def output(o):
    owner = bytes.fromhex(o["owner"])
    assert len(owner) == 32
    if o["kind"] == "STAMP":
        return bytes([1]) + owner + struct.pack("<III", o["operator"], o["series"], o["serial"])
    if o["kind"] == "CREDIT":
        return bytes([2]) + owner + struct.pack("<IQ", o["issuer"], o["amount"])
    raise ValueError("output kind %r" % o["kind"])


def encode_tx(t):
    """Unsigned part and signatures of a decoded transaction."""
    b = struct.pack("<BB", t["version"], TYPES[t["type"]])
    if t["type"] == "REGISTER":
        b += struct.pack("<QI", t["gov_seq"], t["operator"]) + bytes.fromhex(t["key"])
        b += text(t["name"], 64)
    elif t["type"] == "SERIES":
        b += struct.pack("<QIIIQ", t["op_seq"], t["operator"], t["series"], t["max_supply"],
                         t["face_value"])
        b += bytes.fromhex(t["metadata"]) + text(t["title"], 128)
    elif t["type"] == "ISSUE":
        b += struct.pack("<QIH", t["op_seq"], t["operator"], len(t["outputs"]))
        b += b"".join(output(o) for o in t["outputs"])
    else:
        b += struct.pack("<H", len(t["inputs"]))
        for i in t["inputs"]:
            b += bytes.fromhex(i["txid"]) + struct.pack("<H", i["index"])
        b += struct.pack("<H", len(t["outputs"]))
        b += b"".join(output(o) for o in t["outputs"])
    sigs = b"".join(bytes.fromhex(s) for s in t["sigs"])
    want_sigs = len(t["inputs"]) if t["type"] == "TRANSFER" else 1
    assert len(t["sigs"]) == want_sigs, "%d signatures" % len(t["sigs"])
    assert all(len(bytes.fromhex(s)) == 64 for s in t["sigs"])
    return b, sigs


def check_tx(t, where):
    """Returns (txid, leaf) or None."""
    raw = bytes.fromhex(t["raw"])
    if t.get("length") != len(raw):
        fail(where, "length %r but %d raw bytes" % (t.get("length"), len(raw)))
    if "error" in t:
        return None
    try:
        unsigned, sigs = encode_tx(t)
    except Exception as e:  # a field missing or out of range
        fail(where, "cannot re-encode: %r" % e)
        return None
    if unsigned + sigs != raw:
        fail(where, "re-encoded bytes differ from raw")
        return None
    txid = tagged("postmark/txid", unsigned)
    if t["txid"] != txid.hex():
        fail(where, "txid %s, recomputed %s" % (t["txid"], txid.hex()))
    return txid, tagged("postmark/leaf", txid + sigs)


def merkle(leaves):
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return tagged("postmark/node", merkle(leaves[:k]) + merkle(leaves[k:]))


def main():
    counts = dict(records=0, txs=0, blocks=0, errors=0, truncated=0)
    chain_id = None
    prev = None
    with open(sys.argv[1]) as f:
        for n, line in enumerate(f):
            o = json.loads(line)
            rec = o.get("record")
            where = "line %d (%s %s)" % (n + 1, rec, o.get("index", ""))
            if n == 0:
                if rec != "header":
                    fail(where, "the first object is not the header")
                    break
                raw = bytes.fromhex(o["raw"])
                if "error" in o:
                    counts["errors"] += 1
                    continue
                magic = o["magic"].encode()
                hdr = magic + struct.pack("<I", o["version"]) + bytes.fromhex(o["network_raw"]) + \
                    bytes.fromhex(o["governance_key"])
                if hdr != raw:
                    fail(where, "header re-encodes differently")
                chain_id = tagged("postmark/chain", raw[12:60])
                if o["chain_id"] != chain_id.hex():
                    fail(where, "chain_id differs")
                if o["network"] != raw[12:28].rstrip(b"\0").decode("latin-1"):
                    fail(where, "network name %r" % o["network"])
                continue
            counts["records"] += 1
            if "error" in o:
                counts["errors"] += 1
            if rec == "truncated":
                counts["truncated"] += 1
                continue
            if rec == "tx":
                counts["txs"] += 1
                check_tx(o, where)
                continue
            if rec != "block":
                fail(where, "unknown record kind %r" % rec)
                continue
            counts["blocks"] += 1
            if o["raw"] is None:
                continue
            raw = bytes.fromhex(o["raw"])
            if len(raw) < 80:
                continue
            hdr = struct.pack("<IQ", o["version"], o["height"]) + bytes.fromhex(o["prev_hash"]) + \
                bytes.fromhex(o["merkle_root"]) + struct.pack("<I", o["tx_count"])
            if hdr != raw[:80]:
                fail(where, "block header re-encodes differently")
            bhash = tagged("postmark/block", raw[:80])
            if o["hash"] != bhash.hex():
                fail(where, "block hash differs")
            want_prev = prev if prev is not None else chain_id
            want_height = 0 if prev is None else prev_height + 1
            link = bytes.fromhex(o["prev_hash"]) == want_prev and o["height"] == want_height
            if o["link_ok"] != link:
                fail(where, "link_ok %r, recomputed %r" % (o["link_ok"], link))
            prev, prev_height = bhash, o["height"]
            body = b""
            leaves = []
            for j, t in enumerate(o.get("txs", [])):
                counts["txs"] += 1
                if "error" in t:
                    counts["errors"] += 1
                tr = bytes.fromhex(t["raw"])
                body += struct.pack("<I", len(tr)) + tr
                r = check_tx(t, "%s tx %d" % (where, j))
                leaves.append(r[1] if r else None)
            if "error" in o:
                continue
            if hdr + body != raw:
                fail(where, "block bytes differ from header + transactions")
            if leaves and all(leaves):
                root = merkle(leaves)
                if o["merkle_computed"] != root.hex():
                    fail(where, "merkle root recomputed %s" % root.hex())
                if o["merkle_ok"] != (root == bytes.fromhex(o["merkle_root"])):
                    fail(where, "merkle_ok wrong")
            elif o["merkle_ok"] is not None:
                fail(where, "merkle_ok should be null when a transaction does not parse")
    print(" ".join("%s=%d" % kv for kv in counts.items()))
    for p in problems[:20]:
        print("PROBLEM " + p, file=sys.stderr)
    sys.exit(1 if problems else 0)


main()
