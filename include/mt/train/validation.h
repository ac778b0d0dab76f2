// Token batches as the model takes them, and the mean validation loss over a loader's batches: what
// the trainer's periodic evaluation and `moetrain eval` both report.
#pragma once
#include <cstdint>
#include <vector>

#include "mt/core/tensor.h"
#include "mt/data/token_loader.h"
#include "mt/nn/gpt.h"

namespace mt {

struct TokenBatch {
  Tensor inputs, targets;  // (B, T) i64
};

// rows: B windows of T + 1 tokens, as TokenLoader::next_batch gives them; targets are inputs shifted by one.
TokenBatch to_token_batch(const std::vector<int32_t>& rows, int64_t batch, int64_t seq_len, Device device);

// Mean cross-entropy over the loader's next `steps` batches, in eval mode and without gradients (the
// model's train/eval mode is restored after).
double validation_loss(GPT& model, TokenLoader& loader, int64_t steps, Device device);

}  // namespace mt
