// The kernel table: one slot per op and device type. Public ops (src/ops/*.cpp) check inputs,
// allocate outputs and call kernels().<op>.get(device); each backend fills its slots in one
// registration file (src/ops/cpu/register.cpp, src/ops/cuda/register.cpp), so coverage is visible.
// Kernel contracts: outputs are allocated by the caller, contiguous unless stated; inputs are
// contiguous unless stated "strided"; all tensors of one call are on the same device.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "mt/core/error.h"
#include "mt/core/tensor.h"
#include "mt/ops/op_profiler.h"

namespace mt {

enum class UnaryOp : uint8_t { Neg, Exp, Log, Sqrt, Rsqrt, Tanh, Relu, Gelu, Silu, Sigmoid, Abs, Pow, Scale, AddScalar };
// Backward of a unary op: grad_in = grad_out * f'(x). `x` is the op's input.
enum class UnaryGradOp : uint8_t { Tanh, Relu, Gelu, Silu, Sigmoid };
enum class BinaryOp : uint8_t { Add, Sub, Mul, Div, Pow, Max, Min, Eq, Ne, Lt, Le, Gt, Ge };
enum class ReduceOp : uint8_t { Sum, Max, Min, ArgMax, SumSquares };
enum class Transpose : uint8_t { kNo, kYes };
enum class Accumulate : uint8_t { kNo, kYes };

struct AdamWHyper {
  float lr, beta1, beta2, eps, weight_decay;
  float bias_correction1, bias_correction2;  // 1 - beta^t
};

// One parameter's state for the fused optimizer kernels. master is undefined unless param is bf16/f16.
struct OptimTensors {
  Tensor param, grad, exp_avg, exp_avg_sq, master;
};

struct Kernels {
  // out = value. out: any dtype, contiguous.
  using Fill = void(const Tensor& out, double value);
  // out[i] = start + i * step.
  using Arange = void(const Tensor& out, double start, double step);
  // Philox(seed, offset + i) -> uniform [lo, hi) or normal(mean, std); CPU and CUDA give equal numbers.
  using Uniform = void(const Tensor& out, uint64_t seed, uint64_t offset, double lo, double hi);
  using Normal = void(const Tensor& out, uint64_t seed, uint64_t offset, double mean, double std);
  // dst = src with cast; both strided, same shape, same device.
  using Copy = void(const Tensor& src, const Tensor& dst);
  // out = op(in) (alpha: Pow exponent, Scale factor, AddScalar addend). in/out same shape; out dtype = in dtype.
  using Unary = void(UnaryOp op, const Tensor& in, const Tensor& out, double alpha);
  // grad_in = grad_out * op'(x); all same shape and dtype.
  using UnaryBackward = void(UnaryGradOp op, const Tensor& grad_out, const Tensor& x, const Tensor& grad_in);
  // out = op(a, b). a, b strided views already expanded to out's shape (stride 0 where broadcast);
  // a, b same dtype; out has that dtype, or bool for comparisons.
  using Binary = void(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
  // out = cond ? a : b. cond (bool), a, b strided, expanded to out's shape.
  using Where = void(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out);
  // Row reduction: in (M, K) -> out (M). ArgMax writes i64 (first index of the max); the others keep
  // in's dtype for out, accumulating in f32 (f64 for f64). SumSquares: sum of x^2 (out f32, or f64).
  using ReduceRows = void(ReduceOp op, const Tensor& in, const Tensor& out);
  // out (B, M, N) = op(a) @ op(b) (+ bias) (+ out if Accumulate::kYes).
  // a: (Ba, M, K), or (Ba, K, M) when ta = kYes; b: (Bb, K, N), or (Bb, N, K) when tb = kYes; Ba, Bb in {1, B}.
  // bias: contiguous, N elements (shared by every batch entry) or B * N (one (N) row per batch entry).
  // Same dtype for a, b, out, bias; f32 accumulation.
  using Matmul = void(const Tensor& a, Transpose ta, const Tensor& b, Transpose tb, const Tensor& out,
                      const Tensor& bias, Accumulate acc);
  // Over the last dim: out = softmax(in) or log_softmax(in). in/out (M, N).
  using Softmax = void(const Tensor& in, const Tensor& out, bool log);
  // grad_in = y * (g - sum(g*y)) for softmax; g - exp(y) * sum(g) for log_softmax. All (M, N).
  using SoftmaxBackward = void(const Tensor& grad_out, const Tensor& y, const Tensor& grad_in, bool log);
  // x (M, N), w/b (N) (b may be undefined) -> y (M, N), mean/rstd (M) f32 (f64 when x is f64).
  using LayerNormForward = void(const Tensor& x, const Tensor& w, const Tensor& b, double eps, const Tensor& y,
                                const Tensor& mean, const Tensor& rstd);
  // dx (M, N); dw/db (N) in w's dtype, overwritten (db undefined if no bias).
  using LayerNormBackward = void(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                                 const Tensor& rstd, const Tensor& dx, const Tensor& dw, const Tensor& db);
  // Rows: in viewed as (outer, n, inner), index (m) i64 in [0, n) -> out (outer, m, inner).
  using IndexSelect = void(const Tensor& in, int64_t outer, int64_t n, int64_t inner, const Tensor& index,
                           const Tensor& out);
  // Rows, accumulating: out (outer, n, inner) += src (outer, m, inner) at rows index (m) i64.
  using IndexAdd = void(const Tensor& out, int64_t outer, int64_t n, int64_t inner, const Tensor& index,
                        const Tensor& src);
  // torch.gather/scatter_add along `dim` with index (i64, same ndim): out[..i..] = in[..index[..i..]..].
  using Gather = void(const Tensor& in, int dim, const Tensor& index, const Tensor& out);
  using ScatterAdd = void(const Tensor& out, int dim, const Tensor& index, const Tensor& src);
  // Last dim: in (M, N) -> values (M, k) descending, indices (M, k) i64; ties: lower index first.
  using TopK = void(const Tensor& in, int64_t k, const Tensor& values, const Tensor& indices);
  // Last dim inclusive prefix sum: in (M, N) -> out (M, N); int dtypes exact, floats accumulate in f32/f64.
  using Cumsum = void(const Tensor& in, const Tensor& out);
  // logits (N, V), targets (N) i64; rows whose target == ignore_index give loss 0.
  // losses (N) f32, lse (N) f32 (logsumexp of the row); both f64 when logits are f64.
  using CrossEntropyForward = void(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                                   const Tensor& losses, const Tensor& lse);
  // dlogits (N, V) = grad_losses[n] * (softmax(logits[n]) - onehot(target[n])); zero for ignored rows.
  // grad_losses (N) in the losses' dtype.
  using CrossEntropyBackward = void(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                                    const Tensor& lse, const Tensor& grad_losses, const Tensor& dlogits);
  // Knowledge distillation at temperature T (inv_temperature = 1 / T > 0): student, teacher (N, V) of one
  // dtype; kl (N) = KL(softmax(teacher[n] / T) || softmax(student[n] / T)), terms where the teacher's
  // probability is 0 counting 0; lse_student, lse_teacher (N) the rows' logsumexp of logits / T. kl and
  // both lse f32 (f64 for f64).
  using DistillationForward = void(const Tensor& student, const Tensor& teacher, double inv_temperature,
                                   const Tensor& kl, const Tensor& lse_student, const Tensor& lse_teacher);
  // dstudent (N, V) = grad_kl[n] / T * (softmax(student[n] / T) - softmax(teacher[n] / T)); grad_kl in kl's dtype.
  using DistillationBackward = void(const Tensor& student, const Tensor& teacher, double inv_temperature,
                                    const Tensor& lse_student, const Tensor& lse_teacher, const Tensor& grad_kl,
                                    const Tensor& dstudent);
  // Causal attention. q, k, v, out: (B, H, T, D); lse (B, H, T) f32 (f64 for f64). scale multiplies q.k.
  // Backward recomputes the probabilities from lse and writes every element of dq, dk, dv.
  using AttentionForward = void(const Tensor& q, const Tensor& k, const Tensor& v, double scale, const Tensor& out,
                                const Tensor& lse);
  using AttentionBackward = void(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                 const Tensor& dout, const Tensor& lse, double scale, const Tensor& dq,
                                 const Tensor& dk, const Tensor& dv);
  // out = in * keep / (1 - p), keep[i] = uniform(seed, offset + i) >= p; mask (bool) records keep.
  using Dropout = void(const Tensor& in, double p, uint64_t seed, uint64_t offset, const Tensor& out,
                       const Tensor& mask);
  // MoE routing, fused (Note [Fused routing] in src/nn/moe_routing.cpp). logits (S, E) f32 or f64; noise (S, E)
  // of that dtype or undefined. Choice 0 is the argmax of the logits (of logits + noise when k = 1), choice j > 0
  // the argmax of logits + noise over the experts not chosen yet; ties go to the lower expert. Slots per expert
  // fill choice level by level, tokens in order; a choice whose slot would be >= capacity is dropped (slot -1).
  // Outputs: expert, slot (S, k) i64; weight (S, k): the softmax probability of each kept choice (0 if dropped),
  // divided by the sum over the token's kept choices (at least epsilon) when k > 1; counts (2, E) i64: choices
  // routed to each expert, and kept; lse (S): logsumexp of each row; stats (2E + 2): mean softmax per expert,
  // fraction of first choices per expert, aux loss E * sum(mean * fraction), mean of lse^2. Floats: logits dtype.
  using MoeRoute = void(const Tensor& logits, const Tensor& noise, int64_t capacity, const Tensor& expert,
                        const Tensor& slot, const Tensor& weight, const Tensor& counts, const Tensor& lse,
                        const Tensor& stats);
  // buffer_choice (E * capacity) i64: -1, then buffer_choice[expert[c] * capacity + slot[c]] = c for every kept
  // choice c (= token * k + j) of expert, slot (S, k) i64.
  using MoeBufferMap = void(const Tensor& expert, const Tensor& slot, int64_t capacity, const Tensor& buffer_choice);
  // in (S, d) -> out (R, d): row r = c >= 0 ? scale * in[c / top_k] : 0, c = buffer_choice[r] (R) i64,
  // scale = weight[c] (weight (S * k)) or 1 when weight is undefined. weight: f32, f64 for f64 in.
  using MoePermute = void(const Tensor& in, const Tensor& buffer_choice, int64_t top_k, const Tensor& weight,
                          const Tensor& out);
  // in (R, d) -> out (S, d): row t = sum over the kept choices j of scale * in[expert[t, j] * capacity + slot[t, j]],
  // scale = weight[t, j] or 1 when undefined; 0 for a token with no kept choice. expert, slot, weight (S, k).
  using MoeUnpermute = void(const Tensor& in, const Tensor& expert, const Tensor& slot, int64_t capacity,
                            const Tensor& weight, const Tensor& out);
  // grad_weight (S, k) = slot >= 0 ? dot(grad_out[t], in[expert * capacity + slot]) : 0; grad_out (S, d), in (R, d).
  using MoeUnpermuteWeightGrad = void(const Tensor& grad_out, const Tensor& in, const Tensor& expert,
                                      const Tensor& slot, int64_t capacity, const Tensor& grad_weight);
  // Fused AdamW over many tensors (decoupled weight decay on the f32 master where present).
  using AdamW = void(std::vector<OptimTensors>& tensors, const AdamWHyper& h);
  // SGD with momentum (exp_avg is the momentum buffer); weight decay added to the gradient.
  using Sgd = void(std::vector<OptimTensors>& tensors, float lr, float momentum, float weight_decay);
};

// A kernel bound to its device and category: calling it runs the kernel through OpProfiler::time.
template <typename Fn>
class KernelCall;
template <typename... Args>
class KernelCall<void(Args...)> {
 public:
  KernelCall(void (*fn)(Args...), Device device, OpCategory category, const char* op)
      : fn_(fn), device_(device), category_(category), op_(op) {}
  void operator()(Args... args) const {
    OpProfiler::time(category_, device_, [&] { fn_(std::forward<Args>(args)...); }, op_);
  }

 private:
  void (*fn_)(Args...);
  Device device_;
  OpCategory category_;
  const char* op_;
};

template <typename Fn>
struct KernelSlot {
  OpCategory category = OpCategory::kOther;  // what `moetrain bench step` counts the slot's time as
  Fn* cpu = nullptr;
  Fn* cuda = nullptr;
  KernelCall<Fn> get(Device d, const char* op) const {
    Fn* f = d.is_cpu() ? cpu : cuda;
    MT_CHECK(f != nullptr, op, ": no kernel for device ", d);
    return KernelCall<Fn>(f, d, category, op);
  }
};

// Each slot's OpCategory is set here, in one place.
struct KernelTable {
  KernelSlot<Kernels::Fill> fill{OpCategory::kElementwise};
  KernelSlot<Kernels::Arange> arange{OpCategory::kOther};
  KernelSlot<Kernels::Uniform> uniform{OpCategory::kOther};
  KernelSlot<Kernels::Normal> normal{OpCategory::kOther};
  KernelSlot<Kernels::Copy> copy{OpCategory::kElementwise};
  KernelSlot<Kernels::Unary> unary{OpCategory::kElementwise};
  KernelSlot<Kernels::UnaryBackward> unary_backward{OpCategory::kElementwise};
  KernelSlot<Kernels::Binary> binary{OpCategory::kElementwise};
  KernelSlot<Kernels::Where> where{OpCategory::kElementwise};
  KernelSlot<Kernels::ReduceRows> reduce_rows{OpCategory::kOther};
  KernelSlot<Kernels::Matmul> matmul{OpCategory::kGemm};
  KernelSlot<Kernels::Softmax> softmax{OpCategory::kOther};
  KernelSlot<Kernels::SoftmaxBackward> softmax_backward{OpCategory::kOther};
  KernelSlot<Kernels::LayerNormForward> layer_norm_forward{OpCategory::kNorm};
  KernelSlot<Kernels::LayerNormBackward> layer_norm_backward{OpCategory::kNorm};
  KernelSlot<Kernels::IndexSelect> index_select{OpCategory::kIndexing};
  KernelSlot<Kernels::IndexAdd> index_add{OpCategory::kIndexing};
  KernelSlot<Kernels::Gather> gather{OpCategory::kIndexing};
  KernelSlot<Kernels::ScatterAdd> scatter_add{OpCategory::kIndexing};
  KernelSlot<Kernels::TopK> topk{OpCategory::kOther};
  KernelSlot<Kernels::Cumsum> cumsum{OpCategory::kOther};
  KernelSlot<Kernels::CrossEntropyForward> cross_entropy_forward{OpCategory::kLoss};
  KernelSlot<Kernels::CrossEntropyBackward> cross_entropy_backward{OpCategory::kLoss};
  KernelSlot<Kernels::DistillationForward> distillation_forward{OpCategory::kLoss};
  KernelSlot<Kernels::DistillationBackward> distillation_backward{OpCategory::kLoss};
  KernelSlot<Kernels::AttentionForward> attention_forward{OpCategory::kAttention};
  KernelSlot<Kernels::AttentionBackward> attention_backward{OpCategory::kAttention};
  KernelSlot<Kernels::Dropout> dropout{OpCategory::kElementwise};
  KernelSlot<Kernels::MoeRoute> moe_route{OpCategory::kMoeRouter};
  KernelSlot<Kernels::MoeBufferMap> moe_buffer_map{OpCategory::kMoeRouter};
  KernelSlot<Kernels::MoePermute> moe_permute{OpCategory::kMoeDispatch};
  KernelSlot<Kernels::MoeUnpermute> moe_unpermute{OpCategory::kMoeCombine};
  KernelSlot<Kernels::MoeUnpermuteWeightGrad> moe_unpermute_weight_grad{OpCategory::kMoeCombine};
  KernelSlot<Kernels::AdamW> adamw{OpCategory::kOptimizer};
  KernelSlot<Kernels::Sgd> sgd{OpCategory::kOptimizer};
};

// The table, filled on first use by register_cpu_kernels and (with CUDA) register_cuda_kernels.
const KernelTable& kernels();
void register_cpu_kernels(KernelTable& table);
#ifdef MT_WITH_CUDA
void register_cuda_kernels(KernelTable& table);
#endif

}  // namespace mt
