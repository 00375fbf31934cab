#!/usr/bin/env bash
# demo.sh - what `make demo` shows: radshare's DICOM core on a sample CT image, then the whole
# chain on a throw-away data directory: `radshare serve` (DICOM + HTTP), a synthetic CT head and
# MRI brain study stored with DCMTK's storescu, a share link made through the staff API, and the
# link printed - open it in a browser. HTTPS, with a self-signed certificate radshare makes on
# first start (its fingerprint is printed to compare with the browser's). The server runs until Ctrl-C (DEMO_EXIT=1: stop at once).
set -euo pipefail
RADSHARE=${1:-build/radshare}
PY=/usr/bin/python3   # Debian's, with pydicom and numpy
DATA=$($PY -c 'import os, pydicom.data; print(os.path.join(os.path.dirname(pydicom.data.__file__), "test_files"))')
SAMPLE=$DATA/CT_small.dcm
[ -f "$SAMPLE" ] || { echo "demo: sample $SAMPLE missing (package python3-pydicom)" >&2; exit 1; }
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== radshare dump $SAMPLE (first 20 lines)"
"$RADSHARE" dump "$SAMPLE" | head -20 || true
echo

dport=$(free_port)
hport=${DEMO_HTTP_PORT:-8080}
$PY -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',$hport))" 2>/dev/null || hport=$(free_port)
base="https://localhost:$hport"
echo "== radshare serve --data $work/data --dicom-port $dport --http-port $hport --https-self-signed"
"$RADSHARE" serve --data "$work/data" --dicom-port "$dport" --http-port "$hport" --https-self-signed \
    --public-url "$base" 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do echoscu -aec RADSHARE 127.0.0.1 "$dport" 2>/dev/null && break; sleep 0.1; done
cert="$work/data/tls/https-cert.pem"
fingerprint=$(sed -n 's/.*SHA-256 fingerprint //p' "$work/server.log" | head -1)
echo "   HTTPS with a self-signed certificate made on first start: $cert"
echo "   SHA-256 fingerprint $fingerprint"

echo "== a sample study (synthetic CT head and MRI brain), stored with storescu"
$PY tools/sample-studies.py "$work/sample" | sed 's/^/   /'
storescu -aec RADSHARE +sd +r +sp "*.dcm" 127.0.0.1 "$dport" "$work/sample"
echo "== findscu: the studies in the archive"
findscu -S -aec RADSHARE -k QueryRetrieveLevel=STUDY -k PatientName -k StudyDescription -k ModalitiesInStudy \
    -k NumberOfStudyRelatedInstances 127.0.0.1 "$dport" 2>&1 | grep -a -E "PatientName|StudyDescr|Modalities|NumberOf" || true

echo "== share links through the staff API (POST /api/shares; no account exists yet, so loopback is staff)"
links=$($PY - "$base" "$cert" <<'PYEOF'
import json, ssl, sys, urllib.request
base, tls = sys.argv[1], ssl.create_default_context(cafile=sys.argv[2])
studies = json.load(urllib.request.urlopen(base + "/dicom-web/studies?includefield=StudyDescription", context=tls))
for st in studies:
    uid = st["0020000D"]["Value"][0]
    desc = st.get("00081030", {}).get("Value", [""])[0]
    body = json.dumps({"study": uid, "recipient": {"name": "Dr Demo", "email": "demo@example.org"},
                       "expires_in_days": 7, "download": True}).encode()
    rq = urllib.request.Request(base + "/api/shares", data=body, method="POST",
                                headers={"Content-Type": "application/json"})
    print(f"{desc:<12} {json.load(urllib.request.urlopen(rq, context=tls))['url']}")
PYEOF
)
echo
echo "$links" | sed 's/^/   /'
echo
echo "Open a link above in a browser (a phone on this network works too with --http-bind 0.0.0.0)."
echo "The certificate is self-signed: the browser warns once; accept it if its SHA-256 fingerprint is"
echo "   $fingerprint"
echo "(or import $cert as a trusted authority). A real certificate: --https-cert FILE --https-key FILE."
echo "Staff page: $base/staff   DICOMweb: $base/dicom-web/studies   staff API: $base/api/studies   DICOM: RADSHARE@localhost:$dport"
if [ -n "${DEMO_EXIT:-}" ]; then
    kill -TERM "$server"; wait "$server" || true; server=
    exit 0
fi
echo "The server runs until Ctrl-C (log: $work/server.log)."
wait "$server" || true
server=
