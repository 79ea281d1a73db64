#!/usr/bin/env bash
# On the GPU machine: unpacks a bundle of scripts/device/bundle.sh to /tmp/goose_bundle and runs
# a command with its binaries on PATH and its libraries (then CUDA's) on LD_LIBRARY_PATH, in the
# current folder (the checkout root, where $OUT is reachable).
#
#   bash .devrun/NAME/run_bundle.sh .devrun/NAME/bundle.tar.xz test_cuda --gtest_brief=1
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 BUNDLE.tar.xz COMMAND [ARGS...]" >&2
    exit 2
fi
bundle=$1
shift
dest=${GOOSE_BUNDLE_DIR:-/tmp/goose_bundle}
rm -rf "$dest"
mkdir -p "$dest"
tar -C "$dest" -xJf "$bundle"
cuda_lib=${CUDA_LIB_DIR:-/usr/local/cuda/lib64}
export LD_LIBRARY_PATH=$dest/lib:$cuda_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PATH=$dest/bin:$PATH
for b in "$dest"/bin/*; do
    if ldd "$b" | grep -q "not found"; then
        echo "run_bundle: $(basename "$b") misses libraries here:" >&2
        ldd "$b" | grep "not found" >&2
    fi
done
exec "$@"
