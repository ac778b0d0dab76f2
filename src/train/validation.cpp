// Token batches and the mean validation loss.
#include "mt/train/validation.h"

#include "mt/graph/grad_mode.h"
#include "mt/ops/ops.h"

namespace mt {

TokenBatch to_token_batch(const std::vector<int32_t>& rows, int64_t batch, int64_t seq_len, Device device) {
  Tensor all = Tensor::from_vector<int32_t>(rows, {batch, seq_len + 1}, DType::kI64, device);  // (B, T + 1)
  return {all.narrow(1, 0, seq_len).contiguous(), all.narrow(1, 1, seq_len).contiguous()};
}

double validation_loss(GPT& model, TokenLoader& loader, int64_t steps, Device device) {
  NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  const TokenLoaderOptions& options = loader.options();
  double total = 0;
  for (int64_t step = 0; step < steps; ++step) {
    TokenBatch batch = to_token_batch(loader.next_batch(), options.batch_size, options.seq_len, device);
    Tensor logits = model.forward(batch.inputs);  // (B, T, V)
    total += cross_entropy(logits.view({-1, logits.size(-1)}), batch.targets.view({-1})).item();
  }
  if (was_training) model.train();
  return total / static_cast<double>(steps);
}

}  // namespace mt
