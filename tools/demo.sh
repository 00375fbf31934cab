#!/usr/bin/env bash
# demo.sh - what `make demo` shows. For now radshare is its DICOM core: it reads a sample CT
# image (shipped by Debian's python3-pydicom), prints it as people read it and as DICOM JSON,
# and re-encodes it in another transfer syntax. The server demo grows here with the archive.
set -euo pipefail
RADSHARE=${1:-build/radshare}
SAMPLE=/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm
[ -f "$SAMPLE" ] || { echo "demo: sample $SAMPLE missing (package python3-pydicom)" >&2; exit 1; }
out=$(mktemp -d)
echo "== radshare dump $SAMPLE (first 40 lines)"
"$RADSHARE" dump "$SAMPLE" | head -40
echo
echo "== radshare dump --json --no-pixels (first 600 characters)"
"$RADSHARE" dump --json --no-pixels "$SAMPLE" | head -c 600; echo " ..."
echo
echo "== radshare convert --ts explicit-be, then read back"
"$RADSHARE" convert --ts explicit-be "$SAMPLE" "$out/ct-be.dcm"
"$RADSHARE" dump "$out/ct-be.dcm" | grep -A1 "^# Dicom-Data-Set" | tail -1
ls -l "$SAMPLE" "$out/ct-be.dcm"
rm -rf "$out"
