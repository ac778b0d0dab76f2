// Sampling: one full forward over the prompt fills the KV caches, then one token per step.
#include "mt/train/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "mt/math/philox.h"
#include "mt/graph/grad_mode.h"
#include "mt/nn/attention.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

int32_t pick(const std::vector<float>& logits, int32_t vocab, const SamplingOptions& o, uint64_t draw) {
  if (o.temperature <= 0) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.begin() + vocab) - logits.begin());
  }
  std::vector<int32_t> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  int32_t k = o.top_k > 0 ? std::min(o.top_k, vocab) : vocab;
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  double mx = logits[ids[0]];
  std::vector<double> p(k);
  double total = 0;
  for (int32_t i = 0; i < k; ++i) total += p[i] = std::exp((logits[ids[i]] - mx) / o.temperature);
  double u = philox_uniform(o.seed, draw) * total;
  for (int32_t i = 0; i < k; ++i) {
    u -= p[i];
    if (u <= 0) return ids[i];
  }
  return ids[k - 1];
}

}  // namespace

std::vector<int32_t> generate_tokens(GPT& model, const std::vector<int32_t>& prompt, const SamplingOptions& o) {
  MT_CHECK(!prompt.empty(), "generate: the prompt encodes to no tokens");
  NoGradGuard ng;
  bool was_training = model.is_training();
  model.eval();
  Device device = model.parameters().front().device();
  int32_t vocab = model.config().vocab_size;
  int64_t max_len = model.config().seq_len;
  std::vector<int32_t> out = prompt;
  if (static_cast<int64_t>(out.size()) > max_len) out.erase(out.begin(), out.end() - max_len);
  std::vector<KVCache> caches = model.make_kv_caches();
  std::vector<int64_t> ids(out.begin(), out.end());
  Tensor logits = model.forward_cached(Tensor::from_vector<int64_t>(ids, {1, static_cast<int64_t>(ids.size())}, DType::kI64, device), caches);
  for (int t = 0; t < o.max_tokens; ++t) {
    std::vector<float> last = logits.select(1, logits.size(1) - 1).to(DType::kF32).to_vector<float>();
    int32_t next = pick(last, vocab, o, static_cast<uint64_t>(t));
    out.push_back(next);
    if (next == o.stop_token) break;
    if (static_cast<int64_t>(caches.front().length()) >= max_len) break;  // the context is full
    logits = model.forward_cached(Tensor::from_vector<int64_t>({next}, {1, 1}, DType::kI64, device), caches);
  }
  if (was_training) model.train();
  return out;
}

}  // namespace mt
