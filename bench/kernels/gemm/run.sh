#!/bin/bash
# Builds and runs the standalone GEMM / AdamW / head-CE check + timing program with plain nvcc.
# Usage (from the repository root, or a folder holding src/ops/cuda and bench/kernels/gemm):
#   bash bench/kernels/gemm/run.sh [ROOT] [--check]
set -euo pipefail
ROOT=${1:-.}
shift || true
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
OUTDIR=${OUT:-/tmp}
"$NVCC" -O3 -std=c++20 -gencode arch=compute_90a,code=sm_90a -Xcompiler -ffp-contract=off \
    -I"$ROOT/src" -I"$ROOT/include" "$ROOT/bench/kernels/gemm/gemm_bench.cu" "$ROOT/src/ops/cuda/gemm_lt.cu" \
    "$ROOT/src/ops/cuda/adamw_kernel.cu" "$ROOT/src/ops/cuda/head_ce_kernel.cu" \
    -L/usr/local/cuda/lib64 -lcublasLt -o "$OUTDIR/gemm_bench"
LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-} "$OUTDIR/gemm_bench" "$@" \
    | tee "$OUTDIR/gemm_bench.txt"
