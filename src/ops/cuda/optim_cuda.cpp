// CUDA fused optimizers (contracts in mt/ops/kernel_list.h): tensors are grouped by device and
// parameter/gradient dtype, each group's chunk table lives in device memory and is uploaded again
// only when the group's pointers change, then one launch updates the whole group.
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "cuda_launch.h"
#include "cuda_kernels.h"
#include "mt/math/step_control.h"
#include "optim.h"

namespace mt::cuda {

namespace {

enum class OptimKind { kAdamW, kSgd };

struct Group {
  std::vector<gpu::OptimTensorPtrs> tensors;
  std::vector<gpu::OptimChunk> chunks;
};

// The device copy of one group's tables, kept while its pointers stay the same.
struct DeviceTable {
  std::vector<gpu::OptimTensorPtrs> tensors;
  std::vector<gpu::OptimChunk> chunks;
  Tensor buffer;  // i64 elements holding tensors then chunks
};

using GroupKey = std::tuple<int, DType, DType, OptimKind>;  // device, param dtype, grad dtype, optimizer

class TableCache {
 public:
  // Device pointers to the group's (tensors, chunks): during a capture a table of its own, otherwise the
  // group key's cached table, uploaded again when its pointers changed.
  std::pair<const gpu::OptimTensorPtrs*, const gpu::OptimChunk*> upload(const GroupKey& key, Group& g,
                                                                                      Device device, cudaStream_t s) {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t tensor_bytes = g.tensors.size() * sizeof(gpu::OptimTensorPtrs);
    const size_t chunk_bytes = g.chunks.size() * sizeof(gpu::OptimChunk);
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    MT_CUDA_CHECK(cudaStreamIsCapturing(s, &capture));
    if (capture != cudaStreamCaptureStatusNone) {
      // Note [The captured step] (mt/train/train_step.h): a captured step reads its table at every replay, so
      // it gets one of its own, never freed or rewritten (an eager step of another model, or of this one with
      // other gradient buffers, replaces the cached table: that freed the captured step's table, and its
      // replays read what was written there next: illegal addresses in AdamW on the H100). Written now,
      // once, outside the stream; not from the graph's pool, whose blocks the captured work reuses.
      GraphPoolPause pause(device.index);
      Tensor buffer = Tensor::empty({static_cast<int64_t>((tensor_bytes + chunk_bytes + 7) / 8)}, DType::kI64, device);
      char* dst = static_cast<char*>(buffer.data_ptr());
      MT_CUDA_CHECK(cudaMemcpy(dst, g.tensors.data(), tensor_bytes, cudaMemcpyHostToDevice));
      MT_CUDA_CHECK(cudaMemcpy(dst + tensor_bytes, g.chunks.data(), chunk_bytes, cudaMemcpyHostToDevice));
      MT_CUDA_CHECK(cudaStreamSynchronize(cudaStreamLegacy));  // a pageable copy may return before its DMA ends
      captured_.push_back(buffer);
      return pointers(buffer, tensor_bytes);
    }
    DeviceTable& t = tables_[key];
    bool same = t.buffer.defined() && t.tensors.size() == g.tensors.size() && t.chunks.size() == g.chunks.size() &&
                std::memcmp(t.tensors.data(), g.tensors.data(), tensor_bytes) == 0 &&
                std::memcmp(t.chunks.data(), g.chunks.data(), chunk_bytes) == 0;
    if (!same) {
      t.tensors = std::move(g.tensors);
      t.chunks = std::move(g.chunks);
      t.buffer = Tensor::empty({static_cast<int64_t>((tensor_bytes + chunk_bytes + 7) / 8)}, DType::kI64, device);
      char* dst = static_cast<char*>(t.buffer.data_ptr());
      // From pageable memory: the call returns once the bytes are staged, after earlier work on `s`.
      MT_CUDA_CHECK(cudaMemcpyAsync(dst, t.tensors.data(), tensor_bytes, cudaMemcpyHostToDevice, s));
      MT_CUDA_CHECK(cudaMemcpyAsync(dst + tensor_bytes, t.chunks.data(), chunk_bytes, cudaMemcpyHostToDevice, s));
    }
    return pointers(t.buffer, tensor_bytes);
  }

 private:
  static std::pair<const gpu::OptimTensorPtrs*, const gpu::OptimChunk*> pointers(const Tensor& buffer,
                                                                                  size_t tensor_bytes) {
    const char* base = static_cast<const char*>(buffer.data_ptr());
    return {reinterpret_cast<const gpu::OptimTensorPtrs*>(base),
            reinterpret_cast<const gpu::OptimChunk*>(base + tensor_bytes)};
  }

  std::mutex mu_;
  std::map<GroupKey, DeviceTable> tables_;
  std::vector<Tensor> captured_;  // the tables of captured steps (a few hundred bytes each), kept for their replays
};

TableCache& table_cache() {
  static TableCache* cache = new TableCache();  // never destroyed: device buffers must not be freed at static teardown
  return *cache;
}

void check_state(const char* op, const Tensor& state, const char* name, const Tensor& param, DType want) {
  MT_CHECK(state.defined() && state.is_contiguous() && state.numel() == param.numel() && state.dtype() == want &&
               state.device() == param.device(),
           op, ": ", name, " must be a contiguous ", dtype_name(want), " tensor of ", param.numel(),
           " elements on ", param.device(), ", got ", state.defined() ? state.describe() : "undefined");
}

// Groups the tensors by (device, param dtype, grad dtype) and checks each one's state.
std::map<GroupKey, Group> group_tensors(const char* op, OptimKind kind, const std::vector<OptimTensors>& tensors,
                                        bool need_momentum) {
  std::map<GroupKey, Group> groups;
  for (const OptimTensors& t : tensors) {
    const Tensor& p = t.param;
    MT_CHECK(p.defined() && p.device().is_cuda() && p.is_contiguous() && is_floating(p.dtype()), op,
             ": parameters must be contiguous floating CUDA tensors, got ", p.defined() ? p.describe() : "undefined");
    DType moment = p.dtype() == DType::kF64 ? DType::kF64 : DType::kF32;
    MT_CHECK(t.grad.defined() && t.grad.is_contiguous() && t.grad.numel() == p.numel() &&
                 t.grad.device() == p.device() &&
                 (t.grad.dtype() == p.dtype() || (is_half(p.dtype()) && t.grad.dtype() == DType::kF32)),
             op, ": the gradient of ", p.describe(), " must be a contiguous tensor of its dtype (or f32), got ",
             t.grad.defined() ? t.grad.describe() : "undefined");
    if (need_momentum || t.momentum.defined()) check_state(op, t.momentum, "exp_avg", p, moment);
    if (kind == OptimKind::kAdamW) check_state(op, t.grad_sq_avg, "exp_avg_sq", p, moment);
    if (is_half(p.dtype()))
      check_state(op, t.master, "master", p, DType::kF32);
    else
      MT_CHECK(!t.master.defined(), op, ": a ", p.dtype(), " parameter takes no master copy");
    Group& g = groups[{p.device().index, p.dtype(), t.grad.dtype(), kind}];
    auto index = static_cast<int64_t>(g.tensors.size());
    g.tensors.push_back({p.data_ptr(), t.grad.data_ptr(), t.momentum.defined() ? t.momentum.data_ptr() : nullptr,
                         t.grad_sq_avg.defined() ? t.grad_sq_avg.data_ptr() : nullptr,
                         t.master.defined() ? static_cast<float*>(t.master.data_ptr()) : nullptr, p.numel()});
    for (int64_t start = 0; start < p.numel(); start += gpu::kOptimChunk) g.chunks.push_back({index, start});
  }
  return groups;
}

// Calls fn.template operator()<P, G>() with the CUDA types of a (param, grad) dtype pair.
template <typename Fn>
void dispatch_param_grad(DType param, DType grad, const char* op, Fn&& fn) {
  dispatch_device_floating(param, op, [&]<typename P>() {
    if (param == grad)
      fn.template operator()<P, P>();
    else if constexpr (std::is_same_v<P, __nv_bfloat16> || std::is_same_v<P, __half>)
      fn.template operator()<P, float>();
    else
      MT_FAIL(op, ": a ", dtype_name(param), " parameter needs a ", dtype_name(param), " gradient, got ",
              dtype_name(grad));
  });
}

template <typename Launch>
void run_groups(const char* op, std::map<GroupKey, Group>& groups, Launch&& launch) {
  for (auto& [key, group] : groups) {
    auto [device, param, grad, kind] = key;
    set_device(device);
    cudaStream_t s = current_stream(device);
    int64_t num_chunks = static_cast<int64_t>(group.chunks.size());
    auto [tensors, chunks] = table_cache().upload(key, group, Device::cuda(device), s);
    dispatch_param_grad(param, grad, op, [&]<typename P, typename G>() {
      launch.template operator()<P, G>(tensors, chunks, num_chunks, s);
    });
  }
}

}  // namespace

void adamw(std::vector<OptimTensors>& tensors, const AdamWHyper& h) {
  auto groups = group_tensors("adamw (cuda)", OptimKind::kAdamW, tensors, /*need_momentum=*/true);
  const gpu::AdamWArgs args = gpu::adamw_args(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.bias_correction1,
                                              h.bias_correction2, h.grad_scale);
  const gpu::AdamWConstants constants{h.beta1, h.beta2, h.eps, h.weight_decay};
  run_groups("adamw (cuda)", groups, [&]<typename P, typename G>(auto tensors_dev, auto chunks_dev, int64_t n,
                                                                 cudaStream_t s) {
    MT_CUDA_CHECK((gpu::adamw_multi_tensor<P, G>(tensors_dev, chunks_dev, n, args, constants, h.control, s)));
  });
}

void sgd(std::vector<OptimTensors>& tensors, const SgdHyper& h) {
  auto groups = group_tensors("sgd (cuda)", OptimKind::kSgd, tensors, h.momentum != 0.0f);
  gpu::SgdArgs args{h.lr, h.momentum, h.weight_decay, h.grad_scale};
  run_groups("sgd (cuda)", groups, [&]<typename P, typename G>(auto tensors_dev, auto chunks_dev, int64_t n,
                                                               cudaStream_t s) {
    MT_CUDA_CHECK((gpu::sgd_multi_tensor<P, G>(tensors_dev, chunks_dev, n, args, h.control, s)));
  });
}

void step_control(const Tensor& sum_squares, const Tensor& loss, double max_norm, const Tensor& control) {
  for (const Tensor* t : {&sum_squares, &loss, &control})
    MT_CHECK(t->dtype() == DType::kF64 && t->is_contiguous() && t->device() == control.device(),
             "step_control (cuda): expected contiguous f64 tensors on ", control.device(), ", got ", t->describe());
  MT_CHECK(sum_squares.numel() == 1 && loss.numel() == 1 && control.numel() == kStepControlSize,
           "step_control (cuda): expected one sum of squares, one loss and ", static_cast<int>(kStepControlSize),
           " control values, got ", sum_squares.describe(), ", ", loss.describe(), ", ", control.describe());
  MT_CUDA_CHECK(gpu::step_control(sum_squares.data<double>(), loss.data<double>(), max_norm, control.data<double>(),
                                  stream_for(control)));
}

}  // namespace mt::cuda
