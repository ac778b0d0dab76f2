#!/usr/bin/env bash
# Set-up: installs the Debian packages moetrain needs (when root; otherwise prints the one
# apt-get line), fetches the GPT-2 BPE files, then configures and builds Release with all cores.
# Idempotent: a second run only rebuilds what changed. BUILD_DIR (default build) picks the folder.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(cmake g++ make ccache libopenmpi-dev openmpi-bin libhdf5-dev libyaml-cpp-dev libcli11-dev
          libgtest-dev libopenblas-openmp-dev bible-kjv npm)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  # npm may come with a Node.js that was not installed by dpkg.
  if [[ " ${missing[*]} " == *" npm "* ]] && command -v npm >/dev/null; then
    missing=("${missing[@]/npm}")
    read -ra missing <<<"${missing[*]}"
  fi
fi
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing packages; run as root:"
    echo "  apt-get install -y ${missing[*]}"
    exit 1
  fi
fi

scripts/fetch-gpt2-bpe.sh

BUILD_DIR=${BUILD_DIR:-build}
export CCACHE_BASEDIR="$PWD"
# MT_CUDA=AUTO|ON|OFF (default AUTO: the CUDA backend is built wherever nvcc is found).
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DMT_CUDA="${MT_CUDA:-AUTO}" ${MT_CMAKE_ARGS:-} >/dev/null
# MT_BUILD_TARGETS (e.g. "moetrain") limits the build to those targets; default: everything.
cmake --build "$BUILD_DIR" -j "$(nproc)" ${MT_BUILD_TARGETS:+--target $MT_BUILD_TARGETS}
echo "setup: built $BUILD_DIR (${MT_BUILD_TARGETS:-all targets})"
