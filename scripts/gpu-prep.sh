#!/usr/bin/env bash
# Run HERE (with network) before a GPU session: downloads the Debian packages the offline GPU
# machine lacks (yaml-cpp, CLI11, OpenBLAS) as .deb files into .deps/debs (ignored by git).
# Pass `.deps` in the device tool's carry list; scripts/gpu-test.sh unpacks them there.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/debs
cd .deps/debs
apt-get download libyaml-cpp0.7 libyaml-cpp-dev libcli11-dev libopenblas0-openmp libopenblas-openmp-dev \
  libopenblas-dev libgfortran5 2>&1 | grep -v "^Get" || true
ls -1 *.deb
