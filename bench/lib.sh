# bench/lib.sh - helpers shared by the bench/ scripts that run servers (bench/ingest, bench/render).
# Sourced, not run. The caller sets BENCH (its name, for messages) and `here` (the bench/ directory)
# first; this file sets root, work, PY and RADSHARE (after bench_build).

root=$(dirname "$here")
work=$here/work
PY=/usr/bin/python3          # Debian's, where python3-pydicom is (not a pyenv shim earlier in PATH)
[ -x "$PY" ] || PY=python3

die() { echo "bench/$BENCH: $*" >&2; exit 1; }
note() { echo "bench/$BENCH: $*" >&2; }

# bench_build: build/radshare (make -s), into RADSHARE
bench_build() {
    make -s -C "$root" >&2 || die "make failed"
    RADSHARE=$root/build/radshare
    [ -x "$RADSHARE" ] || die "$RADSHARE missing after make"
}

# bench_need CMD...: each command must be there (after the packages were installed)
bench_need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || die "$t not found after installing packages"
    done
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# orthanc_config FILE DIR AET DICOM_PORT HTTP_PORT [EXTRA_JSON_LINES]: a configuration that sets
# only what differs from Orthanc's built-in defaults - storage, index and temporary directories
# under DIR, ports, loopback only, no authentication, no Lua - plus the durability settings spelled
# out at their defaults (SyncStorageArea true; the SQLite index is WAL + synchronous=NORMAL,
# hard-coded, no option). EXTRA_JSON_LINES ('"Key" : value,' lines) come first, so a caller may
# add keys (Plugins, DicomWeb, thread counts); it must not repeat a key set below.
orthanc_config() {
    local file=$1 dir=$2 aet=$3 dport=$4 hport=$5 extra=${6:-}
    mkdir -p "$dir/storage" "$dir/tmp"
    cat >"$file" <<EOF_JSON
{
$extra
  "Name" : "bench-$BENCH",
  "StorageDirectory" : "$dir/storage",
  "IndexDirectory" : "$dir/storage",
  "TemporaryDirectory" : "$dir/tmp",
  "DicomAet" : "$aet",
  "DicomPort" : $dport,
  "HttpPort" : $hport,
  "HttpServerEnabled" : true,
  "RemoteAccessAllowed" : false,
  "AuthenticationEnabled" : false,
  "LuaScripts" : [ ],
  "StorageCompression" : false,
  "SyncStorageArea" : true,
  "OverwriteInstances" : false
}
EOF_JSON
}

# wait_dicom NAME AET PORT PID LOG: poll with C-ECHO until the server answers (30 s); die with
# its log if it exits or does not answer
wait_dicom() {
    local name=$1 aet=$2 port=$3 pid=$4 log=$5 i
    for ((i = 0; i < 300; i++)); do
        echoscu -aec "$aet" 127.0.0.1 "$port" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    die "$name did not start (log above)"
}

# wait_http NAME URL PID LOG: the same with an HTTP GET that must answer 2xx
wait_http() {
    local name=$1 url=$2 pid=$3 log=$4 i
    for ((i = 0; i < 300; i++)); do
        curl -fs -o /dev/null "$url" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    die "$name did not answer $url (log above)"
}
