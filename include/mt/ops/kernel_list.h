// The one list of kernel slots (an X-macro): each entry names a slot, its signature type, the OpCategory
// `moetrain bench step` counts its time as, and its signature, under the slot's contract. The Kernels::
// signatures and KernelTable slots (mt/ops/kernel_table.h), each backend's declarations
// (src/ops/cpu/cpu_kernels.h, src/ops/cuda/cuda_kernels.h) and registrations (src/ops/*/register.cpp)
// all expand from it. Usage: `#define MT_KERNEL(slot, Sig, category, ...) <expansion>` then include this
// file; it undefines MT_KERNEL at its end, so it has no include guard and may be included many times.
// (Name the parameters apart from the expansion's own tokens: with a parameter `category`, the member in
// `t.slot.category` would be replaced too.)
//
// Note [One list of kernels]
// Adding an op touches the op's own files (the public op in src/ops/*.cpp and its header, the CPU kernel in
// src/ops/cpu/, the CUDA wrapper in src/ops/cuda/ and its kernels/*.cu, the tests) plus one entry here:
//   // <contract>
//   MT_KERNEL(my_op, MyOp, kOther, void(const Tensor& in, const Tensor& out))
// That entry declares Kernels::MyOp, adds KernelTable::my_op with its category, declares cpu::my_op and
// cuda::my_op (the backends' files define them) and registers both. The signature is the last argument
// (variadic), so a type with a top-level comma (a template argument list) needs no parentheses.
//
// Note [Every backend fills every slot]
// Every slot has a CPU and a CUDA kernel (checked: all of them did before this list existed), so the list
// has no per-backend flag: each backend registers every slot, and a kernel a backend forgot to define is a
// link error naming it (e.g. `mt::cuda::my_op`), not a slot found empty at run time. The CPU backend must
// stay complete (CI has no GPU, and CPU f64 is the reference of the CPU-vs-CUDA tests). Should an op ever
// truly have no CUDA kernel, give it its own macro, `MT_KERNEL_CPU_ONLY(...)`, defaulting to MT_KERNEL here
// and defined empty by src/ops/cuda/*; KernelSlot::get then fails naming the op and device, as it does today
// for every CUDA slot in a build without CUDA.
//
// Kernel contracts: outputs are allocated by the caller, contiguous unless stated; inputs are contiguous
// unless stated "strided"; all tensors of one call are on the same device. Types used here (Tensor, UnaryOp,
// OptimTensors, ...) are declared in mt/ops/kernel_table.h before the list is expanded.

#ifndef MT_KERNEL
#error "define MT_KERNEL(slot, Sig, category, ...) before including mt/ops/kernel_list.h"
#endif

// ---- Creation, copies, elementwise (elementwise_cpu.cpp, elementwise_cuda.cpp)
// out = value. out: any dtype, contiguous.
MT_KERNEL(fill, Fill, kElementwise, void(const Tensor& out, double value))
// out[i] = start + i * step.
MT_KERNEL(arange, Arange, kOther, void(const Tensor& out, double start, double step))
// Philox(seed, offset + i) -> uniform [lo, hi) or normal(mean, std); CPU and CUDA give equal numbers. With
// offset_base (device memory of the output's device, Generator::device_base), the kernel adds *offset_base to
// offset when it runs (Note [The captured step]); offset_base's value and offset are multiples of 4.
MT_KERNEL(uniform, Uniform, kOther,
          void(const Tensor& out, uint64_t seed, uint64_t offset, const uint64_t* offset_base, double lo, double hi))
MT_KERNEL(normal, Normal, kOther,
          void(const Tensor& out, uint64_t seed, uint64_t offset, const uint64_t* offset_base, double mean, double std))
// dst = src with cast; both strided, same shape, same device.
MT_KERNEL(copy, Copy, kElementwise, void(const Tensor& src, const Tensor& dst))
// out = op(in) (alpha: Pow exponent, Scale factor, AddScalar addend). in/out same shape; out dtype = in dtype.
MT_KERNEL(unary, Unary, kElementwise, void(UnaryOp op, const Tensor& in, const Tensor& out, double alpha))
// grad_in = grad_out * op'(x); all same shape and dtype.
MT_KERNEL(unary_backward, UnaryBackward, kElementwise,
          void(UnaryGradOp op, const Tensor& grad_out, const Tensor& x, const Tensor& grad_in))
// out = op(a, b). a, b strided views already expanded to out's shape (stride 0 where broadcast);
// a, b same dtype; out has that dtype, or bool for comparisons.
MT_KERNEL(binary, Binary, kElementwise, void(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out))
// out = cond ? a : b. cond (bool), a, b strided, expanded to out's shape.
MT_KERNEL(where, Where, kElementwise, void(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out))

// ---- Reductions (reduction_cpu.cpp, reduction_cuda.cpp)
// Row reduction: in (M, K) -> out (M). ArgMax writes i64 (first index of the max); the others keep
// in's dtype for out, accumulating in f32 (f64 for f64). SumSquares: sum of x^2 (out f32, or f64).
MT_KERNEL(reduce_rows, ReduceRows, kOther, void(ReduceOp op, const Tensor& in, const Tensor& out))
// out[i] = sum of x^2 over every element of tensors[i] (contiguous, one floating dtype, on out's device):
// out (n) f32 (f64 for f64 tensors). A few launches for any number of tensors (the gradient norm).
MT_KERNEL(sum_squares_many, SumSquaresMany, kOptimizer, void(const std::vector<Tensor>& tensors, const Tensor& out))

// ---- GEMM (linalg_cpu.cpp, matmul_cuda.cpp)
// out (B, M, N) = op(a) @ op(b) (+ bias) (+ out if Accumulate::kYes).
// a: (Ba, M, K), or (Ba, K, M) when ta = kYes; b: (Bb, K, N), or (Bb, N, K) when tb = kYes; Ba, Bb in {1, B}.
// bias: contiguous, N elements (shared by every batch entry) or B * N (one (N) row per batch entry).
// Same dtype for a, b, out, bias; f32 accumulation. Or out f32 from bf16/f16 a and b, without bias
// (Note [f32 weight gradients], src/ops/linalg.cpp).
MT_KERNEL(matmul, Matmul, kGemm,
          void(const Tensor& a, Transpose ta, const Tensor& b, Transpose tb, const Tensor& out, const Tensor& bias,
               Accumulate acc))

// The MLP's GEMMs with GELU fused in (Note [GELU in the GEMM epilogue], src/ops/linalg.cpp); GELU in its
// tanh form, as UnaryOp::kGelu. Each returns false, writing nothing, where the backend has no fused kernel
// for the operands (always on the CPU): the op then runs the parts. All contiguous, one dtype, B batch
// entries; b (B, N, K) when tb = kYes, (B, K, N) when kNo.
// Forward: pre (B, M, N) = a (B, M, K) @ op(b) + bias (B, 1, N), out (B, M, N) = gelu(pre).
MT_KERNEL(matmul_bias_gelu, MatmulBiasGelu, kGemm,
          bool(const Tensor& a, const Tensor& b, Transpose tb, const Tensor& bias, const Tensor& pre,
               const Tensor& out))
// Backward: out (B, M, N) = (a (B, M, K) @ op(b)) * gelu'(pre (B, M, N)), bias_grad (B, 1, N) = column sums
// of each entry's out (in out's dtype or f32).
MT_KERNEL(matmul_dgelu_bgrad, MatmulDgeluBgrad, kGemm,
          bool(const Tensor& a, const Tensor& b, Transpose tb, const Tensor& pre, const Tensor& out,
               const Tensor& bias_grad))

// ---- Softmax, layer norm (nn_cpu.cpp, nn_cuda.cpp)
// Over the last dim: out = softmax(in) or log_softmax(in). in/out (M, N).
MT_KERNEL(softmax, Softmax, kOther, void(const Tensor& in, const Tensor& out, SoftmaxKind kind))
// grad_in = y * (g - sum(g*y)) for softmax; g - exp(y) * sum(g) for log_softmax. All (M, N).
MT_KERNEL(softmax_backward, SoftmaxBackward, kOther,
          void(const Tensor& grad_out, const Tensor& y, const Tensor& grad_in, SoftmaxKind kind))
// x (M, N), w/b (N) (b may be undefined) -> y (M, N), mean/rstd (M) f32 (f64 when x is f64).
MT_KERNEL(layer_norm_forward, LayerNormForward, kNorm,
          void(const Tensor& x, const Tensor& w, const Tensor& b, double eps, const Tensor& y, const Tensor& mean,
               const Tensor& rstd))
// dx (M, N); dw/db (N), overwritten (db undefined if no bias), both in w's dtype or, for bf16/f16 w, both in f32
// (the f32 main gradients of half weights: no rounding of the column sums).
MT_KERNEL(layer_norm_backward, LayerNormBackward, kNorm,
          void(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
               const Tensor& dx, const Tensor& dw, const Tensor& db))
// Residual add fused with layer norm (Note [Residual add fused with LayerNorm], src/ops/nn_functional.cpp):
// h = x + r (M, N), rounded to the dtype, then layer_norm_forward of h.
MT_KERNEL(add_layer_norm_forward, AddLayerNormForward, kNorm,
          void(const Tensor& x, const Tensor& r, const Tensor& w, const Tensor& b, double eps, const Tensor& h,
               const Tensor& y, const Tensor& mean, const Tensor& rstd))
// layer_norm_backward of dy with h as the input, plus dh (M, N) added to dx in the same pass (before dx is
// rounded): dx = dh + LN's input gradient.
MT_KERNEL(add_layer_norm_backward, AddLayerNormBackward, kNorm,
          void(const Tensor& dy, const Tensor& dh, const Tensor& h, const Tensor& w, const Tensor& mean,
               const Tensor& rstd, const Tensor& dx, const Tensor& dw, const Tensor& db))

// ---- Indexing (indexing_cpu.cpp, indexing_cuda.cpp)
// Rows: in viewed as (outer, n, inner), index (m) i64 in [0, n) -> out (outer, m, inner).
MT_KERNEL(index_select, IndexSelect, kIndexing,
          void(const Tensor& in, int64_t outer, int64_t n, int64_t inner, const Tensor& index, const Tensor& out))
// Rows, accumulating: out (outer, n, inner) += src (outer, m, inner) at rows index (m) i64.
MT_KERNEL(index_add, IndexAdd, kIndexing,
          void(const Tensor& out, int64_t outer, int64_t n, int64_t inner, const Tensor& index, const Tensor& src))
// torch.gather/scatter_add along `dim` with index (i64, same ndim): out[..i..] = in[..index[..i..]..].
MT_KERNEL(gather, Gather, kIndexing, void(const Tensor& in, int dim, const Tensor& index, const Tensor& out))
MT_KERNEL(scatter_add, ScatterAdd, kIndexing, void(const Tensor& out, int dim, const Tensor& index, const Tensor& src))
// Last dim: in (M, N) -> values (M, k) descending, indices (M, k) i64; ties: lower index first.
MT_KERNEL(topk, TopK, kOther, void(const Tensor& in, int64_t k, const Tensor& values, const Tensor& indices))
// Last dim inclusive prefix sum: in (M, N) -> out (M, N); int dtypes exact, floats accumulate in f32/f64.
MT_KERNEL(cumsum, Cumsum, kOther, void(const Tensor& in, const Tensor& out))

// ---- Losses (nn_cpu.cpp, nn_cuda.cpp)
// logits (N, V), targets (N) i64; rows whose target == ignore_index give loss 0.
// losses (N) f32, lse (N) f32 (logsumexp of the row); both f64 when logits are f64.
MT_KERNEL(cross_entropy_forward, CrossEntropyForward, kLoss,
          void(const Tensor& logits, const Tensor& targets, int64_t ignore_index, const Tensor& losses,
               const Tensor& lse))
// dlogits (N, V) = grad_losses[n] * (softmax(logits[n]) - onehot(target[n])); zero for ignored rows.
// grad_losses (N) in the losses' dtype.
MT_KERNEL(cross_entropy_backward, CrossEntropyBackward, kLoss,
          void(const Tensor& logits, const Tensor& targets, int64_t ignore_index, const Tensor& lse,
               const Tensor& grad_losses, const Tensor& dlogits))
// The loss and its gradient at once, for a loss that is the logits' only reader (Note [Fused LM head
// loss], linalg.cpp): losses (N) as cross_entropy_forward's; logits (N, V) are overwritten with
// softmax(logits[n]) - onehot(target[n]) (zero rows where ignored): one read and one write of the logits.
MT_KERNEL(cross_entropy_with_grad, CrossEntropyWithGrad, kLoss,
          void(const Tensor& logits, const Tensor& targets, int64_t ignore_index, const Tensor& losses))
// Knowledge distillation at temperature T (inv_temperature = 1 / T > 0): student, teacher (N, V) of one
// dtype; kl (N) = KL(softmax(teacher[n] / T) || softmax(student[n] / T)), terms where the teacher's
// probability is 0 counting 0; lse_student, lse_teacher (N) the rows' logsumexp of logits / T. kl and
// both lse f32 (f64 for f64).
MT_KERNEL(distillation_forward, DistillationForward, kLoss,
          void(const Tensor& student, const Tensor& teacher, double inv_temperature, const Tensor& kl,
               const Tensor& lse_student, const Tensor& lse_teacher))
// dstudent (N, V) = grad_kl[n] / T * (softmax(student[n] / T) - softmax(teacher[n] / T)); grad_kl in kl's dtype.
MT_KERNEL(distillation_backward, DistillationBackward, kLoss,
          void(const Tensor& student, const Tensor& teacher, double inv_temperature, const Tensor& lse_student,
               const Tensor& lse_teacher, const Tensor& grad_kl, const Tensor& dstudent))

// ---- Attention (attention_cpu.cpp, nn_cuda.cpp)
// Causal attention. q, k, v, out, dout, dq, dk, dv: (B, H, T, D), possibly views with a unit last stride
// (Note [Packed QKV]); lse contiguous (B, H, T) f32 (f64 for f64). scale multiplies q.k.
// Backward recomputes the probabilities from lse and writes every element of dq, dk, dv.
MT_KERNEL(attention_forward, AttentionForward, kAttention,
          void(const Tensor& q, const Tensor& k, const Tensor& v, double scale, const Tensor& out, const Tensor& lse))
MT_KERNEL(attention_backward, AttentionBackward, kAttention,
          void(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& dout,
               const Tensor& lse, double scale, const Tensor& dq, const Tensor& dk, const Tensor& dv))

// ---- Dropout (nn_cpu.cpp, nn_cuda.cpp)
// out = in * keep / (1 - p), keep[i] = uniform(seed, offset + i) >= p; mask (bool) records keep. offset_base as
// for uniform.
MT_KERNEL(dropout, Dropout, kElementwise,
          void(const Tensor& in, double p, uint64_t seed, uint64_t offset, const uint64_t* offset_base,
               const Tensor& out, const Tensor& mask))

// ---- MoE (moe_cpu.cpp, moe_cuda.cpp)
// MoE routing, fused (Note [Fused routing] in src/nn/moe_routing.cpp). logits (S, E) f32 or f64; noise (S, E)
// of that dtype or undefined. Choice 0 is the argmax of the logits (of logits + noise when k = 1), choice j > 0
// the argmax of logits + noise over the experts not chosen yet; ties go to the lower expert. Slots per expert
// fill choice level by level, tokens in order; a choice whose slot would be >= capacity is dropped (slot -1).
// Outputs: expert, slot (S, k) i64; weight (S, k): the softmax probability of each kept choice (0 if dropped),
// divided by the sum over the token's kept choices (at least epsilon) when k > 1; counts (2, E) i64: choices
// routed to each expert, and kept; lse (S): logsumexp of each row; stats (2E + 2): mean softmax per expert,
// fraction of first choices per expert, aux loss E * sum(mean * fraction), mean of lse^2. Floats: logits dtype.
MT_KERNEL(moe_route, MoeRoute, kMoeRouter,
          void(const Tensor& logits, const Tensor& noise, int64_t capacity, const Tensor& expert, const Tensor& slot,
               const Tensor& weight, const Tensor& counts, const Tensor& lse, const Tensor& stats))
// Random token selection's keepers for top-1 choices expert (S, 1) i64 with priorities (S, E) f32 (each
// token's own is priority[s, expert[s]]): each expert keeps its `capacity` tokens of highest priority, ties
// to the lower token (every routed token when it has no more), and the kept tokens take slots 0, 1, ... in
// token order. Outputs: slot (S, 1) i64, -1 where dropped; kept (E) i64, tokens kept per expert.
MT_KERNEL(moe_select, MoeSelect, kMoeRouter,
          void(const Tensor& expert, const Tensor& priority, int64_t capacity, const Tensor& slot, const Tensor& kept))
// buffer_choice (E * capacity) i64: -1, then buffer_choice[expert[c] * capacity + slot[c]] = c for every kept
// choice c (= token * k + j) of expert, slot (S, k) i64.
MT_KERNEL(moe_buffer_map, MoeBufferMap, kMoeRouter,
          void(const Tensor& expert, const Tensor& slot, int64_t capacity, const Tensor& buffer_choice))
// in (S, d) -> out (R, d): row r = c >= 0 ? scale * in[c / top_k] : 0, c = buffer_choice[r] (R) i64,
// scale = weight[c] (weight (S * k)) or 1 when weight is undefined. weight: f32, f64 for f64 in.
MT_KERNEL(moe_permute, MoePermute, kMoeDispatch,
          void(const Tensor& in, const Tensor& buffer_choice, int64_t top_k, const Tensor& weight, const Tensor& out))
// in (R, d) -> out (S, d): row t = sum over the kept choices j of scale * in[expert[t, j] * capacity + slot[t, j]],
// scale = weight[t, j] or 1 when undefined; 0 for a token with no kept choice. expert, slot, weight (S, k).
MT_KERNEL(moe_unpermute, MoeUnpermute, kMoeCombine,
          void(const Tensor& in, const Tensor& expert, const Tensor& slot, int64_t capacity, const Tensor& weight,
               const Tensor& out))
// grad_weight (S, k) = slot >= 0 ? dot(grad_out[t], in[expert * capacity + slot]) : 0; grad_out (S, d), in (R, d).
MT_KERNEL(moe_unpermute_weight_grad, MoeUnpermuteWeightGrad, kMoeCombine,
          void(const Tensor& grad_out, const Tensor& in, const Tensor& expert, const Tensor& slot, int64_t capacity,
               const Tensor& grad_weight))

// ---- Optimizers (optim_cpu.cpp, optim_cuda.cpp)
// Fused AdamW over many tensors (decoupled weight decay on the f32 master where present); each gradient
// read times h.grad_scale.
MT_KERNEL(adamw, AdamW, kOptimizer, void(std::vector<OptimTensors>& tensors, const AdamWHyper& h))
// SGD with momentum (OptimTensors::momentum is the momentum buffer); weight decay added to the gradient times
// h.grad_scale.
MT_KERNEL(sgd, Sgd, kOptimizer, void(std::vector<OptimTensors>& tensors, const SgdHyper& h))
// control[kControlGradScale, kControlApply, kControlGradNorm] = set_step_control(sqrt(sum_squares), loss, max_norm)
// (Note [Step control], mt/math/step_control.h). sum_squares, loss: f64 (1); control: f64 (kStepControlSize); one device.
MT_KERNEL(step_control, StepControl, kOptimizer,
          void(const Tensor& sum_squares, const Tensor& loss, double max_norm, const Tensor& control))

#undef MT_KERNEL
