// Matmul algorithm choice on CUDA: cuBLASLt's heuristic first choice (the default, the same in
// every process, so a resumed run repeats the original's bits), or the fastest of its candidates
// timed on first use of each shape (faster, but the choice may differ between processes).
// The environment variable MT_MATMUL_AUTOTUNE=1 turns timing on at start.
#pragma once

namespace mt {

void set_matmul_autotune(bool on);
bool matmul_autotune();

}  // namespace mt
