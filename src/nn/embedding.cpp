// Embedding layer: registers the table and calls the embedding op.
#include "mt/nn/embedding.h"

#include "mt/nn/init.h"
#include "mt/ops/ops.h"

namespace mt {

Embedding::Embedding(int64_t num_embeddings, int64_t dim, DType dtype) {
  MT_CHECK(num_embeddings > 0 && dim > 0, "Embedding: sizes must be > 0, got ", num_embeddings, " x ", dim);
  weight_ = register_parameter("weight", zeros({num_embeddings, dim}, {dtype}), ParamKind::kEmbedding);
}

Tensor Embedding::forward(const Tensor& ids) const { return embedding(weight_, ids); }

void Embedding::reset_parameters(double std, Generator& gen) { init::normal_(weight_, std, gen); }

}  // namespace mt
