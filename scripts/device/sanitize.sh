#!/usr/bin/env bash
# On the GPU machine: test_cuda under compute-sanitizer, memcheck and racecheck, suite group by
# suite group, one summary line each; the full reports go to $OUT (or /tmp/goose_sanitize).
# Run it through run_bundle.sh so test_cuda and its libraries are found:
#
#   bash .devrun/NAME/run_bundle.sh .devrun/NAME/bundle.tar.xz bash scripts/device/sanitize.sh [FILTER]
#
# FILTER (a gtest filter) replaces the default groups with one group. Exit status: the number of
# groups that reported errors, hazards or failed tests. Racecheck's hazards inside cuBLASLt's own
# kernels (nvjet_*) are listed but not counted: they are not Goose code.
set -uo pipefail
cs=${COMPUTE_SANITIZER:-/usr/local/cuda/bin/compute-sanitizer}
[[ -x $cs ]] || cs=$(command -v compute-sanitizer) || { echo "sanitize: no compute-sanitizer" >&2; exit 2; }
command -v test_cuda > /dev/null || { echo "sanitize: test_cuda is not on PATH" >&2; exit 2; }
out=${OUT:-/tmp/goose_sanitize}
mkdir -p "$out"

groups=(
    "memcheck conformance Ops/CudaConformance.*"
    "memcheck kernels CudaWkv7.*:CudaPrepWkv7.*:CudaFused.*:CudaFusedRows.*:CudaRows.*:CudaMixGrads.*:CudaHeadCE.*:CudaAdamW.*:CudaLoss.*:CudaGraph.*:CudaLoraChains.*"
    "memcheck ops CudaCore.*:CudaBinary.*:CudaUnary.*:CudaSelect.*:CudaMatmul.*:CudaLinear.*:CudaSequence.*:CudaReduce.*:CudaAttention.*:CudaParallel.*"
    "racecheck conformance Ops/CudaConformance.*"
    "racecheck kernels CudaWkv7.*:CudaPrepWkv7.*:CudaFused.*:CudaFusedRows.*:CudaRows.*:CudaMixGrads.*:CudaHeadCE.*"
)
if [[ $# -ge 1 ]]; then
    groups=("memcheck filter $1" "racecheck filter $1")
fi

bad=0
for g in "${groups[@]}"; do
    read -r tool name filter <<< "$g"
    log=$out/${tool}_$name.txt
    "$cs" --tool "$tool" --print-limit 50 test_cuda --gtest_brief=1 --gtest_filter="$filter" \
        > "$log" 2>&1
    tests=$(grep -E '^\[  (PASSED|FAILED)  \]' "$log" | tr '\n' ' ')
    ours=$(grep -E 'Race reported|Invalid|Program hit|Error:|Warning:' "$log" | grep -vc nvjet)
    theirs=$(grep -E 'Race reported' "$log" | grep -c nvjet)
    summary=$(grep -E '(ERROR|RACECHECK) SUMMARY' "$log" | sed 's/^=* *//')
    echo "$tool $name: ${tests:-no test summary} | $summary | ours $ours, cuBLASLt's $theirs"
    if [[ $ours -ne 0 || -z $tests || $tests == *FAILED* ]]; then
        bad=$((bad + 1))
        grep -E 'Race reported|Invalid|Program hit|Error:|Warning:' "$log" | grep -v nvjet | sort | uniq -c |
            head -8
    fi
done
exit "$bad"
