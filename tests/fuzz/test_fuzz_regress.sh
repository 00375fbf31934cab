#!/usr/bin/env bash
# Every committed fuzzing input (seeds and past crashes) through each libFuzzer target once,
# built with ASan+UBSan+LeakSanitizer: a fixed bug that comes back fails here.
set -u
cd "$(dirname "$0")/../.."
n=0; failed=0
for t in reader pdu codec zip json multipart report accept; do
    n=$((n + 1))
    if out=$(FUZZ_TARGETS=$t fuzz/run.sh --regress 2>&1); then
        echo "ok $n fuzz regressions ($t): $(echo "$out" | tail -1)"
    else
        failed=$((failed + 1))
        echo "not ok $n fuzz regressions ($t)"
        echo "$out" | tail -20 | sed 's/^/# /'
    fi
done
[ "$failed" -eq 0 ]
