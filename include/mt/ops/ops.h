// The public ops: check inputs (shapes, dtypes, devices named in errors), allocate outputs,
// dispatch to the device's kernel and record autograd. Implemented in src/ops/<group>.cpp.
#pragma once
#include <optional>
#include <vector>

#include "mt/core/generator.h"
#include "mt/core/tensor.h"

namespace mt {

struct TensorOptions {
  DType dtype = DType::kF32;
  Device device = Device::cpu();
};

// ---- creation (src/ops/creation.cpp) ----
Tensor zeros(const Shape& shape, TensorOptions o = {});
Tensor ones(const Shape& shape, TensorOptions o = {});
Tensor full(const Shape& shape, double value, TensorOptions o = {});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor arange(double start, double end, double step = 1.0, TensorOptions o = {});
Tensor rand(const Shape& shape, Generator& gen, TensorOptions o = {});   // U[0, 1)
Tensor randn(const Shape& shape, Generator& gen, TensorOptions o = {});  // N(0, 1)
Tensor normal(const Shape& shape, double mean, double std, Generator& gen, TensorOptions o = {});
Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, TensorOptions o = {});
Tensor scalar_tensor(double value, TensorOptions o = {});
// n ones (n) as a read-only view of a vector kept per dtype and device (Note [Shared ones]): the bias
// gradients' and column sums' GEMMs of ones (1, n) @ rows (n, m) without a fill each time.
Tensor shared_ones(int64_t n, TensorOptions o = {});
// In-place fills (not differentiable; bump the version).
void fill_(const Tensor& t, double value);
void normal_(const Tensor& t, double mean, double std, Generator& gen);
void uniform_(const Tensor& t, double lo, double hi, Generator& gen);

// ---- elementwise (src/ops/elementwise.cpp); binary ops broadcast ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor pow(const Tensor& a, double exponent);
Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor rsqrt(const Tensor& a);
Tensor tanh(const Tensor& a);
Tensor relu(const Tensor& a);
Tensor gelu(const Tensor& a);  // tanh approximation, as GPT-2
Tensor silu(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor abs(const Tensor& a);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor cast(const Tensor& a, DType dtype);  // differentiable between floating types
// In-place (not differentiable; refuse tensors that require grad while grad mode is on).
void add_(const Tensor& a, const Tensor& b, double alpha = 1.0);
void mul_(const Tensor& a, double s);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }

// ---- reductions (src/ops/reduction.cpp) ----
Tensor sum(const Tensor& a);  // all elements -> 0-d
Tensor sum(const Tensor& a, const std::vector<int>& dims, bool keepdim = false);
Tensor mean(const Tensor& a);
Tensor mean(const Tensor& a, const std::vector<int>& dims, bool keepdim = false);
Tensor max(const Tensor& a, int dim, bool keepdim = false);     // values; gradient to the first max
Tensor min(const Tensor& a, int dim, bool keepdim = false);
Tensor argmax(const Tensor& a, int dim, bool keepdim = false);  // i64
Tensor sum_to_shape(const Tensor& a, const Shape& shape);      // reverse of broadcasting

// ---- linear algebra (src/ops/linalg.cpp) ----
Tensor matmul(const Tensor& a, const Tensor& b);  // (.., M, K) @ (.., K, N), batch dims broadcast; 1-d/2-d as numpy
Tensor bmm(const Tensor& a, const Tensor& b);     // (B, M, K) @ (B, K, N)
// y = x @ w^T + b; x (.., in), w (out, in), b (out) or undefined.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());
// x @ w^T in f32 from bf16/f16 x and w (f32 accumulation, no rounding to the half type): the MoE gate's
// logits without f32 copies of x and w. The backward takes the output gradient in x's dtype.
Tensor linear_f32_out(const Tensor& x, const Tensor& w);
// GPT-2's MLP without its dropout: gelu(x @ w1^T + b1) @ w2^T + b2 (GELU in its tanh form); x (.., d),
// w1 (hidden, d), b1 (hidden), w2 (d, hidden), b2 (d) -> (.., d). GELU rides on the GEMMs where the
// backend can (Note [GELU in the GEMM epilogue]).
Tensor mlp_gelu(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2);
// The MoE experts' MLP, the same with a batch of experts and weights stored (in, out): x (E, C, d),
// w1 (E, d, hidden), b1 (E, 1, hidden), w2 (E, hidden, d), b2 (E, 1, d) -> (E, C, d).
Tensor experts_mlp_gelu(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2);
// The same over a packed buffer (Note [Packed dropless buffer]): x (N, d) holds expert e's expert_rows[e]
// rows after those of experts 0 .. e-1 (sum N); -> (N, d).
Tensor experts_mlp_gelu_packed(const Tensor& x, const std::vector<int64_t>& expert_rows, const Tensor& w1,
                               const Tensor& b1, const Tensor& w2, const Tensor& b2);

// ---- neural-network functions (src/ops/nn_functional.cpp) ----
Tensor softmax(const Tensor& a, int dim = -1);
Tensor log_softmax(const Tensor& a, int dim = -1);
Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps = 1e-5);  // over the last dim
// The pre-LN block's residual add and the next layer norm as one op (Note [Residual add fused with LayerNorm]):
// x, r (.., d) of one shape -> {h = x + r, layer_norm(h, w, b, eps)}, both (.., d).
std::pair<Tensor, Tensor> add_layer_norm(const Tensor& x, const Tensor& r, const Tensor& w, const Tensor& b,
                                         double eps = 1e-5);
Tensor embedding(const Tensor& weight, const Tensor& ids);  // weight (V, d), ids any shape (i32/i64) -> (.., d)
// Mean over non-ignored targets; logits (N, V), targets (N).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100);
// Per-row losses (N) f32 (f64 for f64 logits), zero at ignored rows.
Tensor cross_entropy_per_row(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100);
// cross_entropy(linear(x, w), targets) for x (N, d), w (V, d), with the logits' gradient made in the
// forward pass over them (Note [Fused LM head loss], linalg.cpp): the (N, V) logits are read and written
// once instead of three times. For a loss that is the logits' only use (no distillation beside it).
Tensor linear_cross_entropy(const Tensor& x, const Tensor& w, const Tensor& targets, int64_t ignore_index = -100);
// Mean of per-row losses (N) over the rows whose target is not ignore_index (0 when every row is).
Tensor mean_over_targets(const Tensor& per_row, const Tensor& targets, int64_t ignore_index = -100);
// Knowledge-distillation loss: temperature^2 * mean over rows of KL(softmax(teacher / T) || softmax(student / T)),
// in f32 (f64 for f64 logits); student and teacher (N, V). The teacher is a constant (no gradient flows to it);
// vocabulary entries where the teacher's probability is 0 (a -inf logit) add nothing.
Tensor distillation_loss(const Tensor& student_logits, const Tensor& teacher_logits, double temperature = 1.0);
// Causal scaled dot-product attention; q, k, v (B, H, T, D); scale defaults to 1/sqrt(D).
Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, std::optional<double> scale = {});
// The same on a packed QKV projection (Note [Packed QKV]): qkv (B, T, 3C) whose rows hold q, k, v each as
// (H, D) with C = H * D -> (B, T, C) rows of (H, D); the gradient is one (B, T, 3C) buffer.
Tensor causal_attention_qkv(const Tensor& qkv, int64_t heads, std::optional<double> scale = {});
// Zeroes each element with probability p (from gen's Philox stream), scales the rest by 1/(1-p); p = 0 returns x.
// Training mode is the caller's choice (nn::Dropout skips the op in evaluation).
Tensor dropout(const Tensor& x, double p, Generator& gen);

// ---- indexing and shape (src/ops/indexing.cpp) ----
Tensor index_select(const Tensor& a, int dim, const Tensor& index);          // index (m) i32/i64
Tensor index_add(const Tensor& a, int dim, const Tensor& index, const Tensor& src);  // out-of-place
Tensor gather(const Tensor& a, int dim, const Tensor& index);
Tensor scatter_add(const Tensor& a, int dim, const Tensor& index, const Tensor& src);  // out-of-place
std::pair<Tensor, Tensor> topk(const Tensor& a, int64_t k, int dim = -1);  // values, indices (i64)
Tensor cumsum(const Tensor& a, int dim = -1);
Tensor cat(const std::vector<Tensor>& tensors, int dim = 0);
std::vector<Tensor> split(const Tensor& a, int64_t split_size, int dim = 0);
std::vector<Tensor> split(const Tensor& a, const std::vector<int64_t>& sizes, int dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int dim = 0);

// ---- checks shared by ops (src/ops/checks.cpp) ----
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);

}  // namespace mt
