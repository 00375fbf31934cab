#!/usr/bin/python3
"""make_seeds_parsers.py - (re)build the seed corpora of the parser fuzzers (fuzz/seeds-<target>/).

    /usr/bin/python3 fuzz/make_seeds_parsers.py [target...]

zip: archives written with Python's zipfile (stored, deflated, ZIP64, comments, directories)
and hand-made hostile ones (overlapping entries, lying sizes, a small bomb, encrypted flag).
Deterministic (fixed timestamps, no randomness): the committed corpora only change when this
script does. Standard library only.
"""
import io
import os
import shutil
import struct
import sys
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DATE = (2024, 1, 2, 3, 4, 6)
DICOM = b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\0"


def out_dir(target):
    d = os.path.join(HERE, "seeds-" + target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- zip -----------------------------------------------------------------------------------

def pyzip(entries, comment=b"", force64=False):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.comment = comment
        for name, data, method in entries:
            info = zipfile.ZipInfo(name, DATE)
            info.compress_type = method
            with z.open(info, "w", force_zip64=force64) as f:
                f.write(data)
    return b.getvalue()


def raw_zip(entries, cd_extra=b"", count=None):
    """entries: (name, payload as stored, method, usize, crc, local_off or None); the central
    directory is written from these values, true or not."""
    body = b""
    cd = b""
    for name, payload, method, usize, crc, off in entries:
        local = len(body) if off is None else off
        if off is None:
            body += struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, 0, method, 0, 0, crc, len(payload),
                                usize, len(name), 0) + name + payload
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 20, 20, 0, method, 0, 0, crc, len(payload),
                          usize, len(name), 0, 0, 0, 0, 0, local) + name
    cd += cd_extra
    n = len(entries) if count is None else count
    end = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, n, n, len(cd), len(body), 0)
    return body + cd + end


def seeds_zip():
    d = out_dir("zip")
    text = b"radshare " * 200
    write(d, "stored.zip", pyzip([("a.dcm", DICOM, zipfile.ZIP_STORED)]))
    write(d, "deflated.zip", pyzip([("dir/", b"", zipfile.ZIP_STORED), ("dir/b.dcm", DICOM + text, zipfile.ZIP_DEFLATED),
                                    ("readme.txt", text, zipfile.ZIP_DEFLATED)], comment=b"a comment"))
    write(d, "zip64.zip", pyzip([("x.dcm", DICOM, zipfile.ZIP_DEFLATED), ("y", b"", zipfile.ZIP_STORED)], force64=True))
    write(d, "empty.zip", pyzip([]))
    write(d, "nested.zip", pyzip([("inner.zip", pyzip([("a", b"a", zipfile.ZIP_STORED)]), zipfile.ZIP_STORED)]))
    write(d, "deep.zip", pyzip([("/".join("d" * 20) + "/f", b"x", zipfile.ZIP_STORED),
                                ("..\\..\\evil\x01name", b"y", zipfile.ZIP_STORED)]))
    zeros = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = zeros.compress(b"\0" * (1 << 20)) + zeros.flush()
    crc0 = zlib.crc32(b"\0" * (1 << 20))
    # declared honestly: the ratio limit refuses it before inflating
    write(d, "bomb-ratio.zip", raw_zip([(b"zeros", bomb, 8, 1 << 20, crc0, None)]))
    # declared small: inflation must stop at the declared size
    write(d, "bomb-lying.zip", raw_zip([(b"zeros", bomb, 8, 2000, crc0, None)]))
    # many central entries over the same local data (an overlapping-entry bomb)
    one = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = b"DICM" * 2000
    part = one.compress(data) + one.flush()
    first = raw_zip([(b"e0", part, 8, len(data), zlib.crc32(data), None)])
    body = first[:30 + 2 + len(part)]
    over = [(b"e%d" % i, part, 8, len(data), zlib.crc32(data), 0) for i in range(40)]
    cd = raw_zip(over)[0:]  # entries with off=0 write no local data
    write(d, "overlap.zip", body + cd[:-22] + struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 40, 40, len(cd) - 22,
                                                          len(body), 0))
    write(d, "lying-crc.zip", raw_zip([(b"a", b"abc", 0, 3, 0x12345678, None)]))
    write(d, "stored-size-differs.zip", raw_zip([(b"a", b"abcdef", 0, 3, zlib.crc32(b"abc"), None)]))
    write(d, "encrypted.zip", pyzip([("s", b"secret", zipfile.ZIP_STORED)]).replace(b"\x14\x00\x00\x00\x00\x00", b"\x14\x00\x01\x00\x00\x00", 2))
    write(d, "method-bzip2.zip", raw_zip([(b"a", b"BZh", 12, 3, 0, None)]))
    write(d, "count-lies.zip", raw_zip([(b"a", b"a", 0, 1, zlib.crc32(b"a"), None)], count=0xFFFF))


TARGETS = {"zip": seeds_zip}

if __name__ == "__main__":
    for t in sys.argv[1:] or TARGETS:
        TARGETS[t]()
        print("fuzz/seeds-%s: %d files" % (t, len(os.listdir(os.path.join(HERE, "seeds-" + t)))))
