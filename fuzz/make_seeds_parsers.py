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


# ---- json ----------------------------------------------------------------------------------

def seeds_json():
    d = out_dir("json")
    import json
    ds = {
        "00080005": {"vr": "CS", "Value": ["ISO_IR 192"]},
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
        "00080020": {"vr": "DA", "Value": ["20240102"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane", "Ideographic": "\u5c71\u7530^\u592a\u90ce",
                                           "Phonetic": "yamada"}]},
        "00100020": {"vr": "LO", "Value": ["PID\\1", None, "x"]},
        "00181050": {"vr": "DS", "Value": [1.5, -2e-3, 42]},
        "00200013": {"vr": "IS", "Value": [7]},
        "00280010": {"vr": "US", "Value": [512]},
        "00189219": {"vr": "SS", "Value": [-32768]},
        "00081160": {"vr": "UL", "Value": [4294967295]},
        "0040A30A": {"vr": "FD", "Value": [1.7976931348623157e308]},
        "00189089": {"vr": "FL", "Value": [3.4028234663852886e38]},
        "00209165": {"vr": "AT", "Value": ["00100020"]},
        "00081115": {"vr": "SQ", "Value": [{"0020000E": {"vr": "UI", "Value": ["1.2.3"]},
                                            "00081199": {"vr": "SQ", "Value": [{}]}}]},
        "7FE00010": {"vr": "OW", "InlineBinary": "AAECAwQFBgc="},
        "00420011": {"vr": "OB", "BulkDataURI": "http://x/bulk/1"},
        "00091010": {"vr": "UN", "InlineBinary": "AQ=="},
        "00080096": {"vr": "UV", "Value": [18446744073709551615]},
    }
    write(d, "dicom.json", json.dumps(ds).encode())
    write(d, "dicom-array.json", json.dumps([ds, {"00100010": {"vr": "PN"}}], indent=1).encode())
    deep = {}
    for _ in range(70):
        deep = {"00081115": {"vr": "SQ", "Value": [deep]}}
    write(d, "dicom-deep.json", json.dumps(deep).encode())
    write(d, "dicom-bad.json", b'{"00100010":{"vr":"PN","Value":[{"Alphabetic":"\ud800"}]},"0010":1e999}')
    write(d, "share.json", json.dumps({"study": "1.2.3", "recipient": {"name": "Dr. \u00e9", "email": "a@b.c"},
                                       "series": ["1.2.3.4", "1.2.3.5"], "days": 30, "pin": True,
                                       "note": None}).encode())
    write(d, "share-escapes.json", rb'{"a":"\\\"\/\b\f\n\r\t\u0041\ud83d\ude00","b":[[1,2],{"c":-0.5e+3}]}')
    write(d, "share-deep.json", b'{"a":{"b":{"c":{"d":{"e":[1]}}}}}')
    write(d, "share-many.json", ("{\"s\":[" + ",".join(["1"] * 1200) + "]}").encode())


# ---- multipart -----------------------------------------------------------------------------

def mp_input(boundary, body, seed=7):
    """fuzz_multipart's layout: boundary length - 1, boundary, 2 bytes of chunk seed, body."""
    return bytes([len(boundary) - 1]) + boundary + struct.pack("<H", seed) + body


def seeds_multipart():
    d = out_dir("multipart")
    b = b"RADSHAREb0undary"
    part = lambda h, data: b"--" + b + b"\r\n" + h + b"\r\n\r\n" + data + b"\r\n"
    ct = b"Content-Type: application/dicom"
    write(d, "one.bin", mp_input(b, part(ct, DICOM) + b"--" + b + b"--\r\n"))
    write(d, "two-preamble-epilogue.bin", mp_input(b, b"preamble\r\n" + part(ct, DICOM) + part(b"", b"x\r\n--RADSHAREb0und")
                                                     + b"--" + b + b"--\r\nepilogue"))
    write(d, "near-misses.bin", mp_input(b, part(ct, b"\r\r\n-\r\n--\r\n--RADSHARE\r\n--RADSHAREb0undar") +
                                          b"--" + b + b"  \t\r\n\r\n\r\ndata\r\n--" + b + b"--"))
    write(d, "cut.bin", mp_input(b, part(ct, DICOM)[:-3], seed=1))
    write(d, "junk-after-delim.bin", mp_input(b, b"--" + b + b"junk\r\n"))
    write(d, "fail.bin", mp_input(b, part(b"X-Fail: 1", b"a") + part(ct, b"b") + b"--" + b + b"--"))
    write(d, "long-headers.bin", mp_input(b"a", b"--a\r\n" + b"H" * 17000 + b"\r\n\r\n"))
    write(d, "short-boundary.bin", mp_input(b"-", b"---\r\n\r\n---\r\n\r\nx\r\n-----"))
    write(d, "content-type.bin", b'multipart/related; type="application/dicom"; boundary="x y"')


# ---- report --------------------------------------------------------------------------------

def seeds_report():
    d = out_dir("report")
    write(d, "ack-aa.hl7", b"MSH|^~\\&|RIS|H|RADSHARE|H|20240102030405||ACK^R01|A1|P|2.5\rMSA|AA|CTRL1|ok\r")
    write(d, "ack-ae-err.hl7", b"MSH|^~\\&|RIS|H|||x||ACK|A2|P|2.5\nERR|||207^Application error\nMSA|AE|CTRL2\n")
    write(d, "ack-odd-sep.hl7", b"MSH#^~\\&#RIS\rMSA#CR#C\x01TRL\r")
    # fields: sending app, facility, receiving app, facility, timestamp/message id, control id/link,
    # patient id, name, birth date, sex, accession, study uid, procedure, study date, author, text
    fields = [b"radshare@example.org", b"Radshare", b"dr.who@example.org", b"Dr Who", b"msg-1",
              b"https://share.example.org/s/abc", b"PID|1^2~3&4\\5", b"DOE^JANE^M^DR^JR=\xe5\xb1\xb1\xe7\x94\xb0",
              b"19700101", b"F", b"ACC1", b"1.2.3.4", b"CT Thorax\r\nBcc: x@y", b"20240102", b"Dr. House",
              b"Findings:\r\nNormal.\n" + "\u00e9".encode() * 150 + b"\nx" * 3]
    write(d, "fields.bin", b"\0".join(fields))
    short = list(fields)
    short[13] = b"20"
    write(d, "fields-short-date.bin", b"\0".join(short))
    long_name = list(fields)
    long_name[3] = b"N" * 1200
    long_name[15] = b"\x80" * 300
    write(d, "fields-long.bin", b"\0".join(long_name))


# ---- accept ----------------------------------------------------------------------------------

def seeds_accept():
    d = out_dir("accept")
    accepts = [b"", b"\xff", b"*/*",
               b'multipart/related; type="application/octet-stream"; transfer-syntax=*',
               b'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2',
               b'multipart/related; type="image/jpeg", multipart/related; type="application/octet-stream"; q=0.5',
               b'multipart/related;type=image/jls;transfer-syntax=1.2.840.10008.1.2.4.80;q=0.9,*/*;q=0',
               b'multipart/related; type="application/dicom"; transfer-syntax="1.2.840.10008.1.2.1", ' * 40,
               b'application/dicom; q=1.5; q=0.001; transfer-syntax=',
               b'multipart/related; type="image/dicom-rle"; transfer-syntax=1.2.840.10008.1.2.5; q=0.' + b'9' * 40]
    for i, a in enumerate(accepts):
        for sel in (0, 1, 8, 19):
            write(d, "a%02d-%02d.bin" % (i, sel), bytes([sel]) + a)


TARGETS = {"zip": seeds_zip, "json": seeds_json, "multipart": seeds_multipart, "report": seeds_report,
           "accept": seeds_accept}

if __name__ == "__main__":
    for t in sys.argv[1:] or TARGETS:
        TARGETS[t]()
        print("fuzz/seeds-%s: %d files" % (t, len(os.listdir(os.path.join(HERE, "seeds-" + t)))))
