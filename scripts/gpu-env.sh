# Sourced ON the GPU machine (no network) by scripts/gpu-test.sh, bench-vs-torch.sh and gpu-multi.sh: unpacks
# the .debs that scripts/gpu-prep.sh carried in .deps/debs, exports the paths and MPI/NCCL settings, and
# defines gpu_build [TARGET...]: configure + build build-gpu for sm_90 (all targets when none named).
# Expects the repository root as the current folder and OUT set (logs go there).
ROOT="$PWD/.deps/root"
mkdir -p "$ROOT"
for f in .deps/debs/*.deb; do dpkg -x "$f" "$ROOT"; done
# dpkg -x runs no maintainer scripts: make the links Debian's alternatives would.
LIB="$ROOT/usr/lib/x86_64-linux-gnu"
ln -sf openblas-openmp/libopenblas.so.0 "$LIB/libopenblas.so"
ln -sf openblas-openmp/libopenblas.so.0 "$LIB/libopenblas.so.0"
export CMAKE_PREFIX_PATH="$ROOT/usr:${CMAKE_PREFIX_PATH:-}"
export LD_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu/openblas-openmp:${LD_LIBRARY_PATH:-}"
export CPATH="$ROOT/usr/include:$ROOT/usr/include/x86_64-linux-gnu/openblas-openmp:${CPATH:-}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 NCCL_NVLS_ENABLE=0
BUILD=build-gpu

gpu_build() {
  cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release -DMT_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu;$ROOT/usr/lib/x86_64-linux-gnu/openblas-openmp" >"$OUT/cmake.log" 2>&1 \
    || { tail -30 "$OUT/cmake.log"; return 1; }
  local targets=()
  (($#)) && targets=(--target "$@")
  cmake --build $BUILD -j "$(nproc)" ${targets[@]+"${targets[@]}"} -- -k >"$OUT/build.log" 2>&1 \
    || { grep -E "error|Error" "$OUT/build.log" | head -40; return 1; }
  grep -E "warning" "$OUT/build.log" | head -20 || true
}
