// Collectives over many tensors in buckets: tensors are packed, in order, into flat buffers of about
// `bucket_bytes` per device and dtype and each buffer takes one collective, instead of one collective
// per tensor (GPT-2 124M has 148 parameters). Used for data-parallel gradient averaging and for
// ZeRO's parameter broadcast.
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

#include "mt/core/tensor.h"
#include "mt/dist/communicator.h"

namespace mt {

constexpr size_t kDefaultBucketBytes = size_t{25} << 20;

// Runs `collective` on flat buffers holding `tensors` (in place when a bucket is one contiguous tensor),
// then copies the results back into the tensors. A tensor larger than bucket_bytes gets a bucket of
// its own; empty tensors are skipped. Returns the number of collectives issued.
int bucketed_collective(const std::vector<Tensor>& tensors, const std::function<void(const Tensor& flat)>& collective,
                        size_t bucket_bytes = kDefaultBucketBytes);

// Sums each parameter's gradient over `comm`'s ranks in place and divides it by `mean_over` ranks (0:
// comm's size, the plain average); parameters without a gradient are skipped (every rank must have
// the same ones). main_grad_reduce: the dtype the f32 main gradients of bf16/f16 parameters (Note
// [f32 main gradients] in mt/graph/node.h) are summed in, f32 or bf16 (half the bytes, each
// partial sum rounded to bf16; the result is f32 again); other gradients reduce in their own dtype.
// Returns the number of collectives issued.
int all_reduce_gradients(const std::vector<Tensor>& params, const Communicator& comm,
                         size_t bucket_bytes = kDefaultBucketBytes, int mean_over = 0,
                         DType main_grad_reduce = DType::kF32);

}  // namespace mt
