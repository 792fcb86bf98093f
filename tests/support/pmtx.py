"""pmtx.py — a Postmark stream or chain file as Python sees it in tests:
the 60-byte header and the records, each framed by its u32le size (§2)."""
import struct

HEADER_SIZE = 60


def read(path):
    """(header bytes, [record bytes, ...]); a cut last record is left out."""
    b = open(path, 'rb').read()
    out, o = [], HEADER_SIZE
    while o + 4 <= len(b):
        n = struct.unpack_from('<I', b, o)[0]
        if o + 4 + n > len(b):
            break
        out.append(b[o + 4:o + 4 + n])
        o += 4 + n
    return b[:HEADER_SIZE], out


def records(path):
    return read(path)[1]
