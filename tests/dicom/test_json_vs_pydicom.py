#!/usr/bin/python3
"""Every file of python3-pydicom's test corpus that pydicom reads must give the same DICOM JSON
model through `radshare dump --json` as pydicom's Dataset.to_json_dict(): same tags, VRs and
values. Binary payloads may be inline in one and bulk in the other; when both are inline and the
source is little endian, the bytes must match too. One TAP line per file.

Normalisations (each one a difference of form the standard allows, not of content):
  - an empty SQ may be written without "Value" (PS3.18 F.2.5) where pydicom writes [];
  - empty PN component groups are omitted (F.2.2), pydicom keeps "Alphabetic": "";
  - an empty value inside a multi-valued string is null (F.2.5), pydicom writes "";
  - numbers compare as numbers (DS "80" == 80.0);
  - trailing spaces of one value of a multi-valued string are padding (PS3.5 6.2).
"""
import base64
import glob
import json
import os
import subprocess
import sys
import warnings

import pydicom

RADSHARE = os.environ.get("RADSHARE", "build/radshare")
DATA = "/usr/lib/python3/dist-packages/pydicom/data"
TEXT = {"LT", "ST", "UT", "UR"}
BINARY = {"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW", "US or SS or OW"}


def corpus():
    files = []
    for root in (DATA + "/test_files", DATA + "/charset_files"):
        for dirpath, _, names in os.walk(root):
            for n in names:
                p = os.path.join(dirpath, n)
                if n.endswith((".txt", ".json", ".dump", ".gz", ".py")):
                    continue
                files.append(p)
    return sorted(files)


def norm_value(vr, v):
    if v is None:
        return None
    if vr == "PN":
        if isinstance(v, dict):
            d = {k: x for k, x in v.items() if x not in ("", None)}
            return d or None
        return v
    if isinstance(v, str) and vr not in TEXT:
        # padding is not significant in string VRs (PS3.5 6.2); pydicom strips it only at
        # the end of the whole value, so "DERIVED \\PRIMARY" keeps a space, radshare does not
        v = v.rstrip(" ")
    if isinstance(v, str) and v == "":
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return v


def norm_elem(e, little_endian):
    vr = e.get("vr")
    out = {"vr": vr}
    if vr == "SQ":
        out["Value"] = [norm_ds(x, little_endian) for x in e.get("Value", [])]
        return out
    if "InlineBinary" in e or "BulkDataURI" in e or vr in BINARY:
        out["has_payload"] = "InlineBinary" in e or "BulkDataURI" in e
        if "InlineBinary" in e and little_endian:
            out["inline"] = base64.b64decode(e["InlineBinary"])
        return out
    vals = [norm_value(vr, x) for x in e.get("Value", [])]
    while vals and vals[-1] is None and len(vals) == 1:
        vals.pop()
    if vals:
        out["Value"] = vals
    return out


def norm_ds(d, little_endian):
    return {k.upper(): norm_elem(v, little_endian) for k, v in d.items()}


def diff(a, b, path=""):
    """First difference between two normalised models, as text; None when equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                return f"{path}/{k}: only in radshare: {str(b[k])[:120]}"
            if k not in b:
                return f"{path}/{k}: missing in radshare (pydicom: {str(a[k])[:120]})"
            if k == "inline" and "inline" in a and "inline" in b:
                if a[k] != b[k]:
                    return f"{path}: inline binary differs"
                continue
            r = diff(a[k], b[k], f"{path}/{k}")
            if r:
                return r
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} values in pydicom, {len(b)} in radshare: {str(a)[:100]} vs {str(b)[:100]}"
        for i, (x, y) in enumerate(zip(a, b)):
            r = diff(x, y, f"{path}[{i}]")
            if r:
                return r
        return None
    if isinstance(a, float) and isinstance(b, float):
        if a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b)):
            return None
        return f"{path}: pydicom {a!r} radshare {b!r}"
    if a != b:
        return f"{path}: pydicom {str(a)[:100]!r} radshare {str(b)[:100]!r}"
    return None


def pydicom_model(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path)
        except pydicom.errors.InvalidDicomError:
            if not path.endswith(".dcm"):
                raise  # e.g. a README next to the files: forcing would "read" any text
            # no preamble/meta: pydicom reads raw datasets when forced, and so does radshare
            ds = pydicom.dcmread(path, force=True)
            ds.to_json_dict()  # forced reads of non-DICOM fail here, not later
            if not any(pydicom.datadict.dictionary_has_tag(t) for t in ds.keys()):
                # forced onto bytes that are not a dataset (no_meta.dcm starts with a stray
                # byte), pydicom returns one big unknown element: that is not a reading
                raise pydicom.errors.InvalidDicomError("no known tag in a forced read")
        # pydicom leaves the file meta out of to_json_dict like radshare does
        return ds.to_json_dict(bulk_data_threshold=1 << 30), ds.is_little_endian


def main():
    files = corpus()
    n = 0
    failed = 0
    for path in files:
        name = os.path.relpath(path, DATA)
        try:
            ref, le = pydicom_model(path)
        except Exception as exc:  # pydicom cannot read it: covered by the broken-files test
            print(f"# skip {name}: pydicom cannot read it ({type(exc).__name__})")
            continue
        n += 1
        p = subprocess.run([RADSHARE, "dump", "--json", "--quiet", "--inline-max", "100000000", path],
                           capture_output=True, timeout=60)
        if p.returncode != 0:
            failed += 1
            print(f"not ok {n} json {name}: exit {p.returncode}: {p.stderr.decode(errors='replace').strip()}")
            continue
        try:
            ours = json.loads(p.stdout)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            failed += 1
            print(f"not ok {n} json {name}: invalid JSON: {exc}")
            continue
        d = diff(norm_ds(ref, le), norm_ds(ours, le))
        if d:
            failed += 1
            print(f"not ok {n} json {name}: {d}")
        else:
            print(f"ok {n} json {name}")
    if n < 60:
        print(f"not ok {n + 1} corpus too small: only {n} files compared")
        failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
