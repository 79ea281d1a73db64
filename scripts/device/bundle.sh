#!/usr/bin/env bash
# Packs goose binaries built here (build-cuda) with the shared libraries the GPU machine lacks,
# for the device `run` tool: <devrun>/NAME/bundle.tar.xz plus run_bundle.sh beside it.
#
#   scripts/device/bundle.sh NAME BIN...     e.g. scripts/device/bundle.sh cuda-core test_cuda goose
#
# BIN: a path, or a name looked up in $BUILD_DIR (default: build-cuda of this checkout).
# <devrun>: $DEVRUN_DIR if set, else .devrun/ in the main checkout of this repository (found
# through git, so this works from any worktree). .devrun/ is git-ignored: name <devrun>/NAME as a
# carried path of the device `run` tool, as the last line printed says.
# Left out (the GPU machine has them, newer): glibc (libc, libm, libdl, libpthread, librt,
# ld-linux), libstdc++, libgcc_s, and the CUDA libraries (libcuda, libcudart, libcublas*,
# libnvidia*), found there in /usr/local/cuda/lib64. Everything else ldd names is carried
# (fmt, OpenBLAS, gfortran, quadmath, gomp, yaml-cpp, ...).
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 NAME BIN... (binaries of build-cuda or paths)" >&2
    exit 2
fi
name=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
build_dir=${BUILD_DIR:-$repo/build-cuda}
if [[ -z "${DEVRUN_DIR:-}" ]]; then
    common=$(git -C "$here" rev-parse --path-format=absolute --git-common-dir)
    DEVRUN_DIR=$(dirname "$common")/.devrun
fi
out=$DEVRUN_DIR/$name
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$out"

skip_lib() {
    case "$1" in
        linux-vdso*|ld-linux*|libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*) return 0 ;;
        libstdc++.so*|libgcc_s.so*) return 0 ;;
        libcuda.so*|libcudart.so*|libcublas.so*|libcublasLt.so*|libnvidia*|libnvrtc*) return 0 ;;
    esac
    return 1
}

for b in "$@"; do
    path=$b
    [[ -f $path ]] || path=$build_dir/$b
    if [[ ! -x $path ]]; then
        echo "bundle: no executable '$b' (looked at $b and $build_dir/$b)" >&2
        exit 1
    fi
    cp -L "$path" "$stage/bin/"
    # "libfoo.so.1 => /path/libfoo.so.1 (0x...)"; "not found" stops the bundle.
    if ldd "$path" | grep -q "not found"; then
        ldd "$path" | grep "not found" >&2
        echo "bundle: $path has unresolved libraries here" >&2
        exit 1
    fi
    while read -r soname arrow lib _; do
        [[ $arrow == "=>" && $lib == /* ]] || continue
        skip_lib "$soname" && continue
        [[ -e $stage/lib/$soname ]] || cp -L "$lib" "$stage/lib/$soname"
    done < <(ldd "$path")
done

tar -C "$stage" -cJf "$out/bundle.tar.xz.tmp" bin lib
mv "$out/bundle.tar.xz.tmp" "$out/bundle.tar.xz"
cp "$here/run_bundle.sh" "$out/run_bundle.sh"
rel=${out#"$(dirname "$DEVRUN_DIR")/"}
echo "bundle: $out/bundle.tar.xz ($(du -h "$out/bundle.tar.xz" | cut -f1)):" \
     "$(ls "$stage/bin" | tr '\n' ' ')+ $(ls "$stage/lib" | wc -l) libs ($(ls "$stage/lib" | tr '\n' ' '))"
echo "device: run(command=\"bash $rel/run_bundle.sh $rel/bundle.tar.xz test_cuda ...\"," \
     "carry=[\"$rel\"])"
