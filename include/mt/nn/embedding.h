// Embedding: a (num_embeddings, dim) table looked up by integer ids. Starts at zero;
// init_gpt2 draws it from N(0, std).
#pragma once
#include "mt/nn/module.h"

namespace mt {

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, DType dtype = DType::kF32);
  Tensor forward(const Tensor& ids) const;  // ids (..) i32/i64 -> (.., dim)
  void reset_parameters(double std, Generator& gen) override;
  const Tensor& weight() const { return weight_; }

 private:
  Tensor weight_;
};

}  // namespace mt
