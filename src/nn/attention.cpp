// Causal self-attention: the full-sequence path uses the fused causal_attention_qkv op; the cached
// path (generation) computes softmax(q k^T * scale + mask) v over the cache explicitly, with the
// mask letting new query i (absolute position past + i) see keys 0 .. past + i.
#include "mt/nn/attention.h"

#include <cmath>
#include <limits>

#include "mt/ops/ops.h"

namespace mt {

CausalSelfAttention::CausalSelfAttention(int64_t dim, int64_t heads, double dropout, Generator& gen, DType dtype)
    : dim_(dim), heads_(heads) {
  MT_CHECK(heads > 0 && dim > 0 && dim % heads == 0, "CausalSelfAttention: dim ", dim,
           " must be a positive multiple of heads ", heads);
  qkv_ = register_module("qkv", std::make_shared<Linear>(dim, 3 * dim, Bias::kYes, dtype));
  proj_ = register_module("proj", std::make_shared<Linear>(dim, dim, Bias::kYes, dtype));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(dropout, gen));
}

void CausalSelfAttention::check_input(const Tensor& x) const {
  MT_CHECK(x.dim() == 3 && x.size(2) == dim_, "CausalSelfAttention: expected input (B, T, ", dim_, "), got ",
           x.shape());
}

CausalSelfAttention::Heads CausalSelfAttention::split_heads(const Tensor& x) const {
  check_input(x);
  int64_t b = x.size(0), t = x.size(1), d = dim_ / heads_;
  Tensor qkv = qkv_->forward(x);  // (B, T, 3C)
  auto head = [&](int i) {        // (B, T, C) -> (B, H, T, D)
    return qkv.narrow(2, i * dim_, dim_).reshape({b, t, heads_, d}).transpose(1, 2).contiguous();
  };
  return {head(0), head(1), head(2)};
}

Tensor CausalSelfAttention::project(const Tensor& y) const { return dropout_->forward(proj_->forward(y)); }

Tensor CausalSelfAttention::forward(const Tensor& x) const {
  check_input(x);
  return project(causal_attention_qkv(qkv_->forward(x), heads_));  // (B, T, 3C) -> (B, T, C), Note [Packed QKV]
}

Tensor CausalSelfAttention::forward_cached(const Tensor& x, KVCache& cache) const {
  Heads h = split_heads(x);
  int64_t past = cache.length();
  if (past > 0) {
    MT_CHECK(cache.keys.size(0) == x.size(0), "forward_cached: the cache holds batch ", cache.keys.size(0),
             " but the input has batch ", x.size(0));
    cache.keys = cat({cache.keys, h.k}, 2);
    cache.values = cat({cache.values, h.v}, 2);
  } else {
    cache.keys = h.k;
    cache.values = h.v;
  }
  int64_t t_new = x.size(1), t_all = past + t_new;
  double scale = 1.0 / std::sqrt(static_cast<double>(dim_ / heads_));
  Tensor scores = mul(matmul(h.q, cache.keys.transpose(2, 3)), scale);  // (B, H, T_new, T_all)
  if (t_new > 1) {
    std::vector<bool> visible(t_new * t_all);
    for (int64_t i = 0; i < t_new; ++i)
      for (int64_t j = 0; j < t_all; ++j) visible[i * t_all + j] = j <= past + i;
    Tensor mask = Tensor::from_vector<bool>(visible, {t_new, t_all}, DType::kBool, x.device());
    Tensor neg_inf = full({}, -std::numeric_limits<double>::infinity(), {scores.dtype(), scores.device()});
    scores = where(mask, scores, neg_inf);
  }
  Tensor y = matmul(softmax(scores, -1), cache.values);  // (B, H, T_new, D)
  return project(y.transpose(1, 2).contiguous().view({x.size(0), t_new, dim_}));  // (B, T_new, C)
}

}  // namespace mt
