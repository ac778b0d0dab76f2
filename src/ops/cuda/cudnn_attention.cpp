// cuDNN fused causal attention (cudnn_attention.h): the SDPA forward and backward graphs as cudnn-frontend
// lowers them for cuDNN 9 (Note [SDPA graphs]), one execution plan per shape built on first use and kept,
// workspace from the caching allocator, scalars passed by value.
#include "cudnn_attention.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "cuda_launch.h"
#include "cudnn_graph.h"

namespace mt::cuda {

// Note [SDPA graphs]: cuDNN recognises fused attention as an operation graph of matmuls, pointwise ops
// and reductions (cudnn-frontend's CompositeSDPANode / CompositeSDPABackwardNode emit the same ops for
// cuDNN < 9.21; later versions also accept single SDPA / softmax / band-mask operations, which 9.14 does
// not have). K and V enter as their transposes: K^T is K's buffer with the last two dims and strides
// swapped (no copy). With S = scale * Q K^T and the causal mask keeping column j <= row i:
//   forward:  M = rowmax(S), E = exp(S - M), Z = rowsum(E), stats = M + log Z (natural log, = our lse),
//             P = E / Z (bf16/f16), O = P V.
//   backward: E = exp(S - stats) = P; dV = P^T dO; delta = rowsum(dO * O) (kept in workspace);
//             dS = scale * P * (dO V^T - delta); dK = dS^T Q; dQ = dS K.
// The mask is GEN_INDEX(row), GEN_INDEX(col), CMP_GE(row, col), BINARY_SELECT(S, -inf, keep), computed
// on the scaled scores (before the max in the forward, after subtracting stats in the backward).
// The graphs here match, op for op and tensor for tensor (dtypes, dims, strides, virtual or not), the ones
// cudnn-frontend 1.x builds for cuDNN 9.19 (checked by diffing cuDNN's API logs of both); cuDNN matches
// patterns, so a deviation that looks harmless can make it refuse the graph.
// dQ: Note [Deterministic attention backward] in mt/ops/attention_backend.h. With kNotRequired, dQ is
// accumulated into an f32 buffer (atomics) and an IDENTITY op converts it; with kRequired, the matmul
// writes dQ directly, which cuDNN serves with its deterministic (dP-in-workspace) kernels.

namespace {

using cudnn::Graph;
using cudnn::TensorKind;
using cudnn::TensorLayout;

// Uids of the tensors named in the variant pack; virtual tensors count up from kFirstVirtual.
enum Uid : int64_t {
  kQ = 1,
  kK,  // K^T in the graphs
  kV,  // V in the forward, V^T in the backward
  kO,
  kStats,
  kScale,
  kNegInf,
  kDO,
  kDQ,
  kDK,
  kDV,
  kOne,
  kDelta,    // rowsum(dO * O), f32 (B, H, T, 1), in the workspace
  kDQAccum,  // f32 (B, H, T, D), in the workspace (kNotRequired only)
  kFirstVirtual = 100,
};

// The shape and the two layouts of one attention call: Q, K, V (and dQ, dK, dV) share one set of
// (B, H, T, D) strides, O and dO another: contiguous (B, H, T, D), or the (B, T, H, D) rows of a packed
// QKV projection and its output (Note [Packed QKV]).
struct Shape4 {
  int64_t b, h, t, d;
  std::array<int64_t, 4> in, out;  // strides of Q/K/V and of O/dO
};

TensorLayout bhtd(const Shape4& s, const std::array<int64_t, 4>& st) {
  return {{s.b, s.h, s.t, s.d}, {st[0], st[1], st[2], st[3]}};
}
TensorLayout qkv(const Shape4& s) { return bhtd(s, s.in); }
TensorLayout output(const Shape4& s) { return bhtd(s, s.out); }
TensorLayout contiguous(const Shape4& s) { return bhtd(s, {s.h * s.t * s.d, s.t * s.d, s.d, 1}); }
// (B, H, D, T): K or V as its transpose, the same buffer with the last two dims and strides swapped.
TensorLayout transposed(const Shape4& s) { return {{s.b, s.h, s.d, s.t}, {s.in[0], s.in[1], s.in[3], s.in[2]}}; }
TensorLayout scores(const Shape4& s) { return {{s.b, s.h, s.t, s.t}, {s.h * s.t * s.t, s.t * s.t, s.t, 1}}; }
TensorLayout scores_transposed(const Shape4& s) {
  return {{s.b, s.h, s.t, s.t}, {s.h * s.t * s.t, s.t * s.t, 1, s.t}};
}
TensorLayout rows(const Shape4& s) { return {{s.b, s.h, s.t, 1}, {s.h * s.t, s.t, 1, 1}}; }
const TensorLayout kScalar{{1, 1, 1, 1}, {1, 1, 1, 1}};

// A graph plus a counter for its virtual tensors' uids.
struct SdpaGraph {
  Graph g;
  int64_t next = kFirstVirtual;
  explicit SdpaGraph(std::string name) : g(std::move(name)) {}
  int64_t virt(const char* name, cudnnDataType_t dtype, const TensorLayout& layout) {
    g.tensor(next, name, dtype, layout, TensorKind::kVirtual);
    return next++;
  }
  int64_t pointwise(const char* name, cudnnPointwiseMode_t mode, int64_t x, int64_t b, const TensorLayout& out,
                    cudnnDataType_t out_type = CUDNN_DATA_FLOAT) {
    int64_t y = virt(name, out_type, out);
    g.pointwise(name, mode, x, y, b);
    return y;
  }
  // Scores with every column after the row set to the kNegInf scalar (Note [SDPA graphs]).
  int64_t causal_mask(int64_t s, const TensorLayout& layout) {
    int64_t row = virt("row index", CUDNN_DATA_INT32, layout), col = virt("column index", CUDNN_DATA_INT32, layout);
    g.pointwise("gen_row_index", CUDNN_POINTWISE_GEN_INDEX, s, row, -1, -1, CUDNN_DATA_FLOAT, 2);
    g.pointwise("gen_col_index", CUDNN_POINTWISE_GEN_INDEX, s, col, -1, -1, CUDNN_DATA_FLOAT, 3);
    int64_t keep = virt("row >= column", CUDNN_DATA_BOOLEAN, layout);
    g.pointwise("row_ge_col", CUDNN_POINTWISE_CMP_GE, row, keep, col, -1, CUDNN_DATA_BOOLEAN);
    int64_t masked = virt("masked scores", CUDNN_DATA_FLOAT, layout);
    g.pointwise("causal_select", CUDNN_POINTWISE_BINARY_SELECT, s, masked, kNegInf, keep);
    return masked;
  }
};

// The tensors both graphs share: Q, K^T, V (as V or V^T: `v_name`, `v`), O, the stats, and the scalars.
void add_common_tensors(Graph& g, const Shape4& s, cudnnDataType_t io, const char* v_name, const TensorLayout& v) {
  g.tensor(kQ, "Q", io, qkv(s), TensorKind::kDevice);
  g.tensor(kK, "K^T", io, transposed(s), TensorKind::kDevice);
  g.tensor(kV, v_name, io, v, TensorKind::kDevice);
  g.tensor(kO, "O", io, output(s), TensorKind::kDevice);
  g.tensor(kStats, "stats", CUDNN_DATA_FLOAT, rows(s), TensorKind::kDevice);
  g.tensor(kScale, "scale", CUDNN_DATA_FLOAT, kScalar, TensorKind::kByValue);
  g.tensor(kNegInf, "-inf", CUDNN_DATA_FLOAT, kScalar, TensorKind::kByValue);
}

Graph forward_graph(const Shape4& s, cudnnDataType_t io) {
  SdpaGraph sg("SDPA forward");
  Graph& g = sg.g;
  add_common_tensors(g, s, io, "V", qkv(s));
  TensorLayout sl = scores(s), rl = rows(s);
  int64_t qk = sg.virt("Q K^T", CUDNN_DATA_FLOAT, sl);
  g.matmul("Q_KT", kQ, kK, qk);
  int64_t scaled = sg.pointwise("scale", CUDNN_POINTWISE_MUL, qk, kScale, sl);
  int64_t masked = sg.causal_mask(scaled, sl);
  int64_t max = sg.virt("row max", CUDNN_DATA_FLOAT, rl);
  g.reduction("row_max", CUDNN_REDUCE_TENSOR_MAX, masked, max);
  int64_t centred = sg.pointwise("sub_max", CUDNN_POINTWISE_SUB, masked, max, sl);
  int64_t e = sg.pointwise("exp", CUDNN_POINTWISE_EXP, centred, -1, sl);
  int64_t sum = sg.virt("row sum", CUDNN_DATA_FLOAT, rl);
  g.reduction("row_sum", CUDNN_REDUCE_TENSOR_ADD, e, sum);
  int64_t log_sum = sg.pointwise("log", CUDNN_POINTWISE_LOG, sum, -1, rl);
  g.pointwise("stats", CUDNN_POINTWISE_ADD, max, kStats, log_sum);
  int64_t p = sg.pointwise("softmax", CUDNN_POINTWISE_DIV, e, sum, sl, io);  // P in the I/O type for P V
  g.matmul("P_V", p, kV, kO);
  return std::move(sg.g);
}

Graph backward_graph(const Shape4& s, cudnnDataType_t io, Determinism determinism) {
  SdpaGraph sg(determinism == Determinism::kRequired ? "SDPA backward (deterministic)" : "SDPA backward");
  Graph& g = sg.g;
  add_common_tensors(g, s, io, "V^T", transposed(s));
  g.tensor(kDO, "dO", io, output(s), TensorKind::kDevice);
  g.tensor(kDQ, "dQ", io, qkv(s), TensorKind::kDevice);
  g.tensor(kDK, "dK", io, qkv(s), TensorKind::kDevice);
  g.tensor(kDV, "dV", io, qkv(s), TensorKind::kDevice);
  g.tensor(kDelta, "delta", CUDNN_DATA_FLOAT, rows(s), TensorKind::kDevice);
  g.tensor(kOne, "1", CUDNN_DATA_FLOAT, kScalar, TensorKind::kByValue);
  TensorLayout sl = scores(s), rl = rows(s);

  // delta = rowsum(dO * O), written to the workspace through a multiply by 1. The virtual product has the
  // (B, T, H, D) strides cudnn-frontend gives it (Note [SDPA graphs]: graphs are kept op for op as it emits).
  TensorLayout dout_o_layout{{s.b, s.h, s.t, s.d}, {s.h * s.t * s.d, s.t * s.d, s.h * s.d, 1}};
  int64_t dout_o = sg.pointwise("dO_times_O", CUDNN_POINTWISE_MUL, kDO, kO, dout_o_layout);
  int64_t row_dot = sg.virt("rowsum(dO * O)", CUDNN_DATA_FLOAT, rl);
  g.reduction("rowsum_dO_O", CUDNN_REDUCE_TENSOR_ADD, dout_o, row_dot);
  g.pointwise("delta", CUDNN_POINTWISE_MUL, row_dot, kDelta, kOne);

  // P = exp(scale * Q K^T - stats), masked; dV = P^T dO.
  int64_t qk = sg.virt("Q K^T", CUDNN_DATA_FLOAT, sl);
  g.matmul("Q_KT", kQ, kK, qk);
  int64_t scaled = sg.pointwise("scale", CUDNN_POINTWISE_MUL, qk, kScale, sl);
  int64_t centred = sg.pointwise("sub_stats", CUDNN_POINTWISE_SUB, scaled, kStats, sl);
  int64_t masked = sg.causal_mask(centred, sl);
  int64_t p = sg.pointwise("exp", CUDNN_POINTWISE_EXP, masked, -1, sl);
  int64_t p_t = sg.virt("P^T", io, scores_transposed(s));
  g.reshape("P_transpose", p, p_t);
  g.matmul("PT_dO", p_t, kDO, kDV);

  // dS = scale * P * (dO V^T - delta); dK = dS^T Q.
  int64_t dp = sg.virt("dO V^T", CUDNN_DATA_FLOAT, sl);
  g.matmul("dO_VT", kDO, kV, dp);
  int64_t dp_centred = sg.pointwise("sub_delta", CUDNN_POINTWISE_SUB, dp, kDelta, sl);
  int64_t ds_unscaled = sg.pointwise("times_P", CUDNN_POINTWISE_MUL, dp_centred, p, sl);
  int64_t ds = sg.pointwise("scale_dS", CUDNN_POINTWISE_MUL, ds_unscaled, kScale, sl);
  int64_t ds_t = sg.virt("dS^T", io, scores_transposed(s));
  g.reshape("dS_transpose", ds, ds_t);
  g.matmul("dST_Q", ds_t, kQ, kDK);

  // dQ = dS K, K being K^T's buffer viewed as (B, H, T, D) again (an f32 view, as cudnn-frontend declares it).
  int64_t k = sg.virt("K", CUDNN_DATA_FLOAT, qkv(s));
  g.reshape("K_from_KT", kK, k);
  if (determinism == Determinism::kRequired) {
    g.matmul("dS_K", ds, k, kDQ);
  } else {
    g.tensor(kDQAccum, "dQ accumulator", CUDNN_DATA_FLOAT, contiguous(s), TensorKind::kDevice);
    g.matmul("dS_K", ds, k, kDQAccum);
    g.pointwise("dQ_convert", CUDNN_POINTWISE_IDENTITY, kDQAccum, kDQ);
  }
  return std::move(sg.g);
}

// ---- plan cache ----

enum class Pass { kForward, kBackward, kBackwardDeterministic };

struct PlanKey {
  int device;
  DType dtype;
  int64_t b, h, t, d;
  std::array<int64_t, 4> in, out;  // strides (Shape4)
  Pass pass;
  auto operator<=>(const PlanKey&) const = default;
};

struct PlanEntry {
  std::optional<cudnn::ExecutionPlan> plan;
  std::string refusal;  // why there is no plan
};

std::string describe(const PlanKey& k) {
  const char* pass = k.pass == Pass::kForward    ? "forward"
                     : k.pass == Pass::kBackward ? "backward"
                                                 : "backward (deterministic)";
  bool packed = k.in[2] != k.d || k.out[2] != k.d;
  return str_cat("causal attention ", pass, " B", k.b, " H", k.h, " T", k.t, " D", k.d, packed ? " (packed)" : "", " ",
                 dtype_name(k.dtype), " on cuda:", k.device);
}

// The cached plan for `key`, built on first use (under the lock: building takes milliseconds, once).
const PlanEntry& plan_for(const PlanKey& key) {
  static std::mutex mu;
  static auto* cache = new std::map<PlanKey, std::unique_ptr<PlanEntry>>();  // Note [CUDA singletons live until exit]
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache->find(key);
  if (it != cache->end()) return *it->second;
  auto entry = std::make_unique<PlanEntry>();
  Shape4 s{key.b, key.h, key.t, key.d, key.in, key.out};
  cudnnDataType_t io = key.dtype == DType::kBF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
  try {
    Graph g = key.pass == Pass::kForward ? forward_graph(s, io)
                                         : backward_graph(s, io, key.pass == Pass::kBackwardDeterministic
                                                                     ? Determinism::kRequired
                                                                     : Determinism::kNotRequired);
    entry->plan.emplace(std::move(g).build(cudnn_handle(key.device)));
    std::fprintf(stderr, "moetrain: cuDNN plan for %s: engine %lld, workspace %.1f MiB (cuDNN %zu)\n",
                 describe(key).c_str(), static_cast<long long>(entry->plan->engine()),
                 entry->plan->workspace_bytes() / 1048576.0, cudnnGetVersion());
  } catch (const cudnn::GraphError& e) {
    entry->refusal = e.what();
  }
  return *cache->emplace(key, std::move(entry)).first->second;
}

std::array<int64_t, 4> strides4(const Tensor& t) {
  return {t.strides()[0], t.strides()[1], t.strides()[2], t.strides()[3]};
}

// Why cuDNN's SDPA cannot take these tensors at all (before any graph is built); empty if it may. `inputs`
// (Q, K, V, and dQ, dK, dV) must share one layout and `outputs` (O, dO) another, each with a unit last stride.
std::string unfit(const Tensor& q, const Tensor& lse, std::initializer_list<const Tensor*> inputs,
                  std::initializer_list<const Tensor*> outputs) {
  if (q.dtype() != DType::kBF16 && q.dtype() != DType::kF16)
    return str_cat("cuDNN's fused attention takes bf16 or f16, got ", dtype_name(q.dtype()));
  int64_t d = q.size(3);
  if (d % 8 != 0 || d > 128) return str_cat("cuDNN's fused attention takes head dims 8, 16, ..., 128; got ", d);
  if (lse.dtype() != DType::kF32 || !lse.is_contiguous())
    return str_cat("the logsumexp must be contiguous f32, got ", lse.describe());
  for (auto group : {inputs, outputs}) {
    const Tensor& first = **group.begin();
    for (const Tensor* t : group) {
      if (strides4(*t) != strides4(first) || t->strides()[3] != 1)
        return str_cat("cuDNN's fused attention takes q, k, v (and dq, dk, dv) in one layout and out, dout in one ",
                       "layout, each with a unit last stride; got strides ", t->strides(), " and ", first.strides());
      if (reinterpret_cast<uintptr_t>(t->data_ptr()) % 16 != 0)
        return "cuDNN's fused attention needs 16-byte aligned tensors; one starts at " +
               std::to_string(reinterpret_cast<uintptr_t>(t->data_ptr()));
    }
  }
  return {};
}

// Handles a case cuDNN does not take: an error for kCudnn, a one-time message per `what` for kAuto.
bool decline(const std::string& what, const std::string& why, AttentionBackend mode) {
  MT_CHECK(mode != AttentionBackend::kCudnn, "MT_ATTENTION=cudnn: ", what, " cannot run on cuDNN: ", why);
  static std::mutex mu;
  static auto* told = new std::map<std::string, bool>();  // Note [CUDA singletons live until exit]
  std::lock_guard<std::mutex> lock(mu);
  if (!(*told)[what]) {
    (*told)[what] = true;
    std::fprintf(stderr, "moetrain: %s runs on our own kernels, not cuDNN: %s\n", what.c_str(), why.c_str());
  }
  return false;
}

// A workspace of `bytes` from the caching allocator, freed in stream order after the op.
constexpr int64_t kAlign = 256;
int64_t aligned(int64_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }
Tensor workspace(int64_t bytes, Device device) {
  return Tensor::empty({std::max<int64_t>(bytes, 1)}, DType::kBool, device);  // bytes
}

float negative_infinity() {
  // cudnn-frontend passes lowest() rather than -inf to cuDNN before 9.10 (get_negative_inf_value).
  return cudnnGetVersion() < 91000 ? std::numeric_limits<float>::lowest() : -std::numeric_limits<float>::infinity();
}

}  // namespace

bool cudnn_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, const Tensor& out,
                             const Tensor& lse, AttentionBackend mode) {
  PlanKey key{q.device().index, q.dtype(), q.size(0), q.size(1), q.size(2), q.size(3), strides4(q), strides4(out),
              Pass::kForward};
  std::string what = describe(key);
  if (std::string why = unfit(q, lse, {&q, &k, &v}, {&out}); !why.empty()) return decline(what, why, mode);
  stream_for(q);  // makes q's device current; the handle is bound to its stream
  const PlanEntry& entry = plan_for(key);
  if (!entry.plan) return decline(what, entry.refusal, mode);
  Tensor ws = workspace(entry.plan->workspace_bytes(), q.device());
  float scale_f = static_cast<float>(scale), neg_inf = negative_infinity();
  cudnn::execute(cudnn_handle(key.device), *entry.plan, {kQ, kK, kV, kO, kStats, kScale, kNegInf},
                 {q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), lse.data_ptr(), &scale_f, &neg_inf},
                 ws.data_ptr(), what);
  return true;
}

bool cudnn_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                              const Tensor& dout, const Tensor& lse, double scale, const Tensor& dq, const Tensor& dk,
                              const Tensor& dv, AttentionBackend mode, Determinism determinism) {
  Pass pass = determinism == Determinism::kRequired ? Pass::kBackwardDeterministic : Pass::kBackward;
  PlanKey key{q.device().index, q.dtype(), q.size(0), q.size(1), q.size(2), q.size(3), strides4(q), strides4(out),
              pass};
  std::string what = describe(key);
  if (std::string why = unfit(q, lse, {&q, &k, &v, &dq, &dk, &dv}, {&out, &dout}); !why.empty())
    return decline(what, why, mode);
  cudaStream_t stream = stream_for(q);
  const PlanEntry& entry = plan_for(key);
  if (!entry.plan) return decline(what, entry.refusal, mode);
  // Workspace: cuDNN's own, then delta (B, H, T) f32, then (kNotRequired) the f32 dQ accumulator.
  int64_t rows_bytes = key.b * key.h * key.t * 4;
  int64_t own = aligned(entry.plan->workspace_bytes()), delta_at = own, accum_at = own + aligned(rows_bytes);
  int64_t total = accum_at + (pass == Pass::kBackward ? aligned(rows_bytes * key.d) : 0);
  Tensor ws = workspace(total, q.device());
  auto* base = static_cast<char*>(ws.data_ptr());
  float scale_f = static_cast<float>(scale), neg_inf = negative_infinity(), one = 1.0f;
  std::vector<int64_t> uids{kQ, kK, kV, kO, kDO, kStats, kDQ, kDK, kDV, kDelta, kOne, kScale, kNegInf};
  std::vector<void*> ptrs{q.data_ptr(),  k.data_ptr(),  v.data_ptr(),  out.data_ptr(),   dout.data_ptr(),
                          lse.data_ptr(), dq.data_ptr(), dk.data_ptr(), dv.data_ptr(),   base + delta_at,
                          &one,          &scale_f,      &neg_inf};
  if (pass == Pass::kBackward) {
    // cudnn-frontend clears the accumulator itself before cuDNN 9.6 (later versions clear it in the kernel).
    if (cudnnGetVersion() < 90600)
      MT_CUDA_CHECK(cudaMemsetAsync(base + accum_at, 0, static_cast<size_t>(rows_bytes * key.d), stream));
    uids.push_back(kDQAccum);
    ptrs.push_back(base + accum_at);
  }
  cudnn::execute(cudnn_handle(key.device), *entry.plan, uids, ptrs, base, what);
  return true;
}

}  // namespace mt::cuda
