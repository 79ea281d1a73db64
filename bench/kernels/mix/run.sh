#!/bin/bash
# Builds and runs the token_mix backward lab (mix_lab.cu) with plain nvcc.
# Usage (repository root, or a folder holding src/ include/ bench/kernels/mix): run.sh [ROOT] [B T C]
set -euo pipefail
ROOT=${1:-.}
shift || true
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
OUTDIR=${OUT:-/tmp}
"$NVCC" -O3 -std=c++20 --expt-relaxed-constexpr -gencode arch=compute_90a,code=sm_90a \
    -I"$ROOT/src" -I"$ROOT/include" "$ROOT/bench/kernels/mix/mix_lab.cu" -o "$OUTDIR/mix_lab"
"$OUTDIR/mix_lab" "$@" | tee "$OUTDIR/mix_lab.txt"
