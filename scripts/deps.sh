#!/usr/bin/env bash
# Installs the Debian packages Goose builds against (only what is missing).
# As root it runs apt-get itself; otherwise it prints the exact command and stops.
# python3-torch and python3-numpy run the PyTorch twins of the tests (tests/reference/);
# python3-matplotlib draws the ICL evaluation plots (python/plot_icl.py).
set -euo pipefail
packages=(
    build-essential cmake ninja-build pkg-config
    libopenblas-dev liblapacke-dev
    libcli11-dev libfmt-dev libyaml-cpp-dev nlohmann-json3-dev libcpp-httplib-dev
    libgtest-dev libxgboost-dev
    python3-numpy python3-torch python3-matplotlib
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "goose: missing Debian packages. Run as root:" >&2
    echo "  apt-get update && $line" >&2
    exit 1
fi
echo "goose: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
$line
