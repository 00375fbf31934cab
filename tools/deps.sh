#!/usr/bin/env bash
# deps.sh - install the Debian packages radshare needs to build, test and demo, when missing.
# Usage: tools/deps.sh [build|check|demo|fuzz|bench]...   (each adds its package set)
# Everything comes from Debian's archive through apt-get; nothing else is downloaded.
set -euo pipefail

pkgs_build="gcc make pkg-config zlib1g-dev libsqlite3-dev libssl-dev libjpeg62-turbo-dev libcharls-dev libopenjp2-7-dev libpng-dev libmicrohttpd-dev libsodium-dev libcurl4-openssl-dev libqrencode-dev"
pkgs_check="$pkgs_build openssl dcmtk dicom3tools unzip libgdcm-tools libopenjp2-tools python3 python3-pydicom python3-numpy python3-aiosmtpd clang libclang-rt-14-dev nodejs chromium zbar-tools"
pkgs_demo="$pkgs_build dcmtk python3-pydicom"
pkgs_fuzz="clang libclang-rt-14-dev"
pkgs_bench="$pkgs_check hyperfine orthanc orthanc-dicomweb wrk"

want=""
for set in "${@:-build}"; do
    v="pkgs_$set"
    want="$want ${!v}"
done

missing=""
for p in $want; do
    case " $missing " in *" $p "*) continue ;; esac
    # Node.js may come from another Debian-compatible package that bundles npm; the command is what counts.
    if [ "$p" = nodejs ] && command -v node >/dev/null && command -v npm >/dev/null; then continue; fi
    if [ "$p" = nodejs ] && ! command -v npm >/dev/null; then missing="$missing npm"; fi
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install:$missing" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2 || true
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
