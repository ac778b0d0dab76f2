// Data-parallel gradient averaging in buckets: the gradients of a model's parameters are packed, in
// parameter order, into flat buffers of about `bucket_bytes` per device and dtype and each buffer is
// all-reduced once, instead of one collective per parameter (GPT-2 124M has 148 of them).
#pragma once
#include <cstddef>
#include <vector>

#include "mt/core/tensor.h"
#include "mt/dist/communicator.h"

namespace mt {

constexpr size_t kDefaultBucketBytes = size_t{25} << 20;

// Averages each parameter's gradient over `comm`'s ranks in place; parameters without a gradient are
// skipped (every rank must have the same ones). A gradient larger than bucket_bytes gets a bucket of
// its own. Returns the number of collectives issued.
int all_reduce_gradients(const std::vector<Tensor>& params, const Communicator& comm,
                         size_t bucket_bytes = kDefaultBucketBytes);

}  // namespace mt
