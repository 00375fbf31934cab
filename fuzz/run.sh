#!/usr/bin/env bash
# run.sh - build and run the libFuzzer targets (see fuzz/README.md).
#
#   fuzz/run.sh              fuzz each target for FUZZ_SECONDS (default 60) over build/fuzz/corpus-*
#   fuzz/run.sh --regress    run every committed input of each target once (for tests)
#   FUZZ_TARGETS="reader"    only some targets (reader: the DICOM reader; pdu: the PDU codec;
#                            codec: codec_open and the pixel decoders; zip: the ZIP reader;
#                            json: the DICOM JSON and share API JSON readers;
#                            multipart: the STOW-RS multipart parser in random chunk splits;
#                            accept: the WADO-RS Accept negotiation;
#                            report: HL7 ACK parsing, ORU^R01 and report e-mail building from hostile fields)
#
# Exits non-zero when the fuzzer found a crash, leak, timeout or invariant failure
# (reproducers in build/fuzz/artifacts/), or when a regression input fails.
# Environment: FUZZ_SECONDS, FUZZ_JOBS (parallel fuzzing processes, default 1), CLANG (default clang).
set -u
cd "$(dirname "$0")/.."

CLANG=${CLANG:-clang}
OUT=build/fuzz
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_TARGETS=${FUZZ_TARGETS:-reader pdu codec zip json multipart report accept}
FUZZ_JOBS=${FUZZ_JOBS:-1}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

mkdir -p "$OUT"

run_target() {
TARGET=$1
LIBS=()
# ---- build (only when a source is newer than the binary) -----------------------------------
# the reader and its consumers live in src/dicom and src/util; the rest of src (store, net) has
# other dependencies (sqlite, libcrypto) the target does not need
case "$TARGET" in
    reader) mapfile -t SRCS < <(find src/dicom src/util -name '*.c' | sort)
            mapfile -t HDRS < <(find src/dicom src/util -name '*.h' | sort)
            INPUT_DIRS=(fuzz/seeds fuzz/regressions) ;;
    pdu)    mapfile -t SRCS < <(ls src/net/pdu.c; find src/util -name '*.c' | sort)
            mapfile -t HDRS < <(ls src/net/pdu.h; find src/util -name '*.h' | sort)
            INPUT_DIRS=(tests/data/pdu fuzz/regressions-pdu) ;;
    codec)  mapfile -t SRCS < <(find src/dicom src/util src/codec -name '*.c' | sort)
            mapfile -t HDRS < <(find src/dicom src/util src/codec -name '*.h' | sort)
            mapfile -t LIBS < <(pkg-config --cflags --libs libjpeg charls libopenjp2 | tr " " "\n" | grep .)
            INPUT_DIRS=(fuzz/seeds fuzz/regressions-codec) ;;
    # the parsers of other untrusted bytes: the module, src/util, seeds from make_seeds_parsers.py
    zip)    mapfile -t SRCS < <(find src/util -name '*.c' | sort)
            mapfile -t HDRS < <(find src/util -name '*.h' | sort)
            INPUT_DIRS=(fuzz/seeds-zip fuzz/regressions-zip) ;;
    json)   mapfile -t SRCS < <(ls src/share/jsonin.c; find src/dicom src/util -name '*.c' | sort)
            mapfile -t HDRS < <(ls src/share/jsonin.h; find src/dicom src/util -name '*.h' | sort)
            INPUT_DIRS=(fuzz/seeds-json fuzz/regressions-json) ;;
    multipart) SRCS=(src/http/multipart.c src/util/buf.c src/util/err.c)
            HDRS=(src/http/multipart.h src/util/buf.h src/util/err.h)
            INPUT_DIRS=(fuzz/seeds-multipart fuzz/regressions-multipart) ;;
    accept) mapfile -t SRCS < <(ls src/http/transcode.c; find src/dicom src/util src/codec -name '*.c' | sort)
            mapfile -t HDRS < <(ls src/http/transcode.h; find src/dicom src/util src/codec -name '*.h' | sort)
            mapfile -t LIBS < <(pkg-config --cflags --libs libjpeg charls libopenjp2 | tr " " "\n" | grep .)
            INPUT_DIRS=(fuzz/seeds-accept fuzz/regressions-accept) ;;
    report) SRCS=(src/report/hl7.c src/report/smtp.c src/util/buf.c src/util/err.c)
            HDRS=(src/report/hl7.h src/report/smtp.h src/util/buf.h src/util/err.h)
            mapfile -t LIBS < <(pkg-config --cflags --libs libcurl | tr " " "\n" | grep .)
            INPUT_DIRS=(fuzz/seeds-report fuzz/regressions-report) ;;
    *) echo "fuzz: unknown target $TARGET" >&2; return 2 ;;
esac
BIN=$OUT/fuzz_$TARGET
CORPUS=$OUT/corpus-$TARGET
ARTIFACTS=$OUT/artifacts-$TARGET/
LOG=$OUT/fuzz-$TARGET.log
rebuild=0
if [ ! -x "$BIN" ]; then
    rebuild=1
else
    for f in fuzz/fuzz_$TARGET.c fuzz/run.sh "${SRCS[@]}" "${HDRS[@]}"; do
        if [ "$f" -nt "$BIN" ]; then rebuild=1; break; fi
    done
fi
if [ "$rebuild" = 1 ]; then
    command -v "$CLANG" >/dev/null || { echo "fuzz: $CLANG not found (tools/deps.sh fuzz installs it)" >&2; exit 2; }
    echo "fuzz: building $BIN" >&2
    # -fno-sanitize-recover: undefined behaviour stops the run like an ASan error does
    if ! "$CLANG" -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
            -fno-sanitize-recover=undefined -fno-omit-frame-pointer -Isrc \
            fuzz/fuzz_$TARGET.c "${SRCS[@]}" "${LIBS[@]}" -lz -lm -o "$BIN.tmp.$$"; then
        echo "fuzz: build failed" >&2
        rm -f "$BIN.tmp.$$"
        return 2
    fi
    mv -f "$BIN.tmp.$$" "$BIN"
fi

# ---- regression mode: every committed input once -------------------------------------------
if [ "$MODE" = "--regress" ]; then
    inputs=()
    for d in "${INPUT_DIRS[@]}"; do
        [ -d "$d" ] || continue
        while IFS= read -r -d '' f; do inputs+=("$f"); done < <(find "$d" -type f -print0 | sort -z)
    done
    [ ${#inputs[@]} -gt 0 ] || { echo "fuzz: no inputs for $TARGET in ${INPUT_DIRS[*]}" >&2; return 2; }
    # one process per input so the failing file is named (a crash ends the process)
    failed=0
    for f in "${inputs[@]}"; do
        if ! "$BIN" -runs=1 -rss_limit_mb=2048 -timeout=10 "$f" >"$OUT/regress-$TARGET.log" 2>&1; then
            echo "FAIL $f" >&2
            grep -E 'ERROR|SUMMARY|INVARIANT|runtime error|#[0-9]+ 0x' "$OUT/regress-$TARGET.log" | head -15 | sed 's/^/     /' >&2
            failed=$((failed + 1))
        fi
    done
    echo "fuzz --regress $TARGET: ${#inputs[@]} inputs, $failed failed"
    [ "$failed" -eq 0 ]
    return
fi

# ---- fuzzing ---------------------------------------------------------------------------------
mkdir -p "$CORPUS" "$ARTIFACTS"
for d in "${INPUT_DIRS[@]}"; do [ -d "$d" ] && cp -n "$d"/* "$CORPUS"/ 2>/dev/null; done
before=$(find "$ARTIFACTS" -type f | wc -l)

DICT=()
[ -f fuzz/$TARGET.dict ] && DICT=(-dict=fuzz/$TARGET.dict)
args=("${DICT[@]}" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -detect_leaks=1 -max_total_time="$FUZZ_SECONDS"
      -artifact_prefix="$ARTIFACTS" -print_final_stats=1)
if [ "$FUZZ_JOBS" -gt 1 ]; then
    # -fork keeps going after a crash and collects every distinct one in ARTIFACTS
    args+=(-fork="$FUZZ_JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
fi
start=$SECONDS
"$BIN" "${args[@]}" "$CORPUS" >"$LOG" 2>&1
rc=$?
elapsed=$((SECONDS - start))

after=$(find "$ARTIFACTS" -type f | wc -l)
last=$(grep -E '^#[0-9]+' "$LOG" | tail -1)
execs=$(grep -E '^stat::number_of_executed_units' "$LOG" | awk '{s += $2} END {print s + 0}')
[ "$execs" = 0 ] && execs=$(echo "$last" | sed -nE 's/^#([0-9]+).*/\1/p')
eps=$(grep -E '^stat::average_exec_per_sec' "$LOG" | awk '{s += $2} END {print s + 0}')
[ "$eps" = 0 ] && eps=$(echo "$last" | sed -nE 's/.*exec\/s:? ([0-9]+).*/\1/p')
cov=$(echo "$last" | sed -nE 's/.*cov: ([0-9]+).*/\1/p')
ft=$(echo "$last" | sed -nE 's/.*ft: ([0-9]+).*/\1/p')
units=$(find "$CORPUS" -type f | wc -l)
new=$((after - before))
echo "fuzz $TARGET: ${elapsed}s of ${FUZZ_SECONDS}s, ${execs:-?} execs (${eps:-?}/s), cov ${cov:-?} edges, ft ${ft:-?}, corpus $units, exit $rc, $new new artifact(s) in $ARTIFACTS (log $LOG)"
if [ "$rc" -ne 0 ] || [ "$new" -gt 0 ]; then
    grep -E 'ERROR: |SUMMARY: |INVARIANT|runtime error|Test unit written' "$LOG" | head -20 >&2
    return 1
fi
return 0
}

MODE=${1:-}
status=0
for t in $FUZZ_TARGETS; do
    run_target "$t" || status=1
done
exit $status
