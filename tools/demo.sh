#!/usr/bin/env bash
# demo.sh - what `make demo` shows: radshare's DICOM core on a sample CT image, then the archive:
# a server on a throw-away data directory that DCMTK's stock tools store into and query.
# (The share-link viewer will be added to this demo when it exists.)
set -euo pipefail
RADSHARE=${1:-build/radshare}
DATA=/usr/lib/python3/dist-packages/pydicom/data/test_files
SAMPLE=$DATA/CT_small.dcm
[ -f "$SAMPLE" ] || { echo "demo: sample $SAMPLE missing (package python3-pydicom)" >&2; exit 1; }
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "== radshare dump $SAMPLE (first 30 lines)"
"$RADSHARE" dump "$SAMPLE" | head -30
echo
echo "== radshare dump --json --no-pixels (first 400 characters)"
"$RADSHARE" dump --json --no-pixels "$SAMPLE" | head -c 400; echo " ..."
echo
echo "== radshare convert --ts explicit-be, then read back"
"$RADSHARE" convert --ts explicit-be "$SAMPLE" "$work/ct-be.dcm"
"$RADSHARE" dump "$work/ct-be.dcm" | grep -A1 "^# Dicom-Data-Set" | tail -1

# a free port, then the archive
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo
echo "== radshare serve --data $work/data --dicom-port $port"
"$RADSHARE" serve --data "$work/data" --dicom-port "$port" 2>"$work/server.log" &
server=$!
for _ in $(seq 50); do echoscu -aec RADSHARE 127.0.0.1 "$port" 2>/dev/null && break; sleep 0.1; done
echo "== storescu: three studies"
storescu -aec RADSHARE 127.0.0.1 "$port" "$SAMPLE" "$DATA/MR_small.dcm" "$DATA/rtplan.dcm"
echo "== findscu: every study (patient, date, modalities, instances)"
findscu -S -aec RADSHARE -k QueryRetrieveLevel=STUDY -k PatientName -k StudyDate -k ModalitiesInStudy \
    -k NumberOfStudyRelatedInstances 127.0.0.1 "$port" 2>&1 | grep -a -E "PatientName|StudyDate|Modalities|NumberOf" || true
kill -TERM "$server"; wait "$server" || true; server=
echo "== server log"
cat "$work/server.log"
echo
echo "Run it yourself: $RADSHARE serve --data ./radshare-data   (see README.md)"
