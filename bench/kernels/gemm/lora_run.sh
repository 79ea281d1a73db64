#!/bin/bash
# Builds and runs the LoRA GEMM lab (lora_lab.cu) with plain nvcc, cuBLASLt and cuBLAS.
# Usage (repository root, or a folder holding src/ and include/ and bench/kernels/gemm):
#   bash bench/kernels/gemm/lora_run.sh [ROOT] [M ...]
set -euo pipefail
ROOT=${1:-.}
shift || true
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
OUTDIR=${OUT:-/tmp}
"$NVCC" -O3 -std=c++20 -gencode arch=compute_90a,code=sm_90a -I"$ROOT/src" -I"$ROOT/include" \
    "$ROOT/bench/kernels/gemm/lora_lab.cu" "$ROOT/src/ops/cuda/gemm_lt.cu" \
    -L/usr/local/cuda/lib64 -lcublasLt -lcublas -o "$OUTDIR/lora_lab"
LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-} "$OUTDIR/lora_lab" "$@" \
    | tee "$OUTDIR/lora_lab.txt"
