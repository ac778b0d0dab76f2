// CausalSelfAttention: qkv Linear (d -> 3d), causal scaled dot-product attention over its heads (read
// in place, Note [Packed QKV]), proj Linear (d -> d), residual dropout. forward_cached serves generation:
// it appends the new keys/values to a KVCache and lets the new queries attend to everything cached,
// giving the same outputs as a full forward over the whole sequence.
#pragma once
#include <memory>

#include "mt/nn/dropout.h"
#include "mt/nn/linear.h"

namespace mt {

// One layer's keys and values seen so far, (B, H, T, D); empty until the first forward_cached.
struct KVCache {
  Tensor keys, values;
  int64_t length() const { return keys.defined() ? keys.size(2) : 0; }
  void clear() { keys = values = Tensor(); }
};

class CausalSelfAttention : public Module {
 public:
  CausalSelfAttention(int64_t dim, int64_t heads, double dropout, Generator& gen, DType dtype = DType::kF32);
  Tensor forward(const Tensor& x) const;  // (B, T, dim) -> (B, T, dim)
  // x (B, T_new, dim) are the tokens after the cache's; returns their outputs (B, T_new, dim).
  Tensor forward_cached(const Tensor& x, KVCache& cache) const;
  int64_t heads() const { return heads_; }
  Linear& qkv() const { return *qkv_; }
  Linear& proj() const { return *proj_; }

 private:
  struct Heads {
    Tensor q, k, v;  // (B, H, T, D)
  };
  void check_input(const Tensor& x) const;   // (B, T, dim)
  Heads split_heads(const Tensor& x) const;  // x (B, T, dim) -> qkv -> (B, H, T, D) each
  Tensor project(const Tensor& y) const;     // (B, T, dim) -> proj and dropout -> (B, T, dim)

  int64_t dim_, heads_;
  std::shared_ptr<Linear> qkv_, proj_;
  std::shared_ptr<Dropout> dropout_;
};

}  // namespace mt
