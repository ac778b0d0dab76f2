// The kernel table: one slot per op and device type. Public ops (src/ops/*.cpp) check inputs,
// allocate outputs and call kernels().<op>.get(device); each backend fills its slots in one
// registration file (src/ops/cpu/register.cpp, src/ops/cuda/register.cpp). Slots, signatures, categories
// and kernel contracts come from one list, mt/ops/kernel_list.h (Note [One list of kernels]).
#pragma once
#include <type_traits>
#include <cstdint>
#include <utility>
#include <vector>

#include "mt/core/error.h"
#include "mt/core/tensor.h"
#include "mt/ops/op_profiler.h"

namespace mt {

enum class UnaryOp : uint8_t {
  kNeg, kExp, kLog, kSqrt, kRsqrt, kTanh, kRelu, kGelu, kSilu, kSigmoid, kAbs, kPow, kScale, kAddScalar
};
// Backward of a unary op: grad_in = grad_out * f'(x). `x` is the op's input.
enum class UnaryGradOp : uint8_t { kTanh, kRelu, kGelu, kSilu, kSigmoid };
enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv, kPow, kMax, kMin, kEq, kNe, kLt, kLe, kGt, kGe };
enum class ReduceOp : uint8_t { kSum, kMax, kMin, kArgMax, kSumSquares };
enum class Transpose : uint8_t { kNo, kYes };
enum class Accumulate : uint8_t { kNo, kYes };
enum class SoftmaxKind : uint8_t { kSoftmax, kLogSoftmax };

// grad_scale multiplies every gradient as it is read (the clipping coefficient, Note [Clipping in the update]
// in mt/optim/optimizer.h; 1 when nothing is clipped).
// `control`, when set, is Note [Step control]'s array on the tensors' device (mt/optim/step_control.h):
// the kernel takes lr, the bias corrections and grad_scale from it (in place of the fields here) and updates
// nothing when its apply flag is 0, so a step's scalars need not be known on the host when it is queued.
struct AdamWHyper {
  float lr, beta1, beta2, eps, weight_decay;
  float bias_correction1, bias_correction2;  // 1 - beta^t
  float grad_scale = 1.0f;
  const double* control = nullptr;
};
struct SgdHyper {
  float lr, momentum, weight_decay;
  float grad_scale = 1.0f;
  const double* control = nullptr;
};

// One parameter's state for the fused optimizer kernels (Optimizer::step fills it from its slots).
struct OptimTensors {
  Tensor param;  // updated in place (through `master` when it is bf16/f16)
  Tensor grad;   // the parameter's dtype, or f32 for a bf16/f16 parameter; unclipped (see grad_scale)
  // Past gradients, decayed: AdamW's first moment, their running mean (slot "exp_avg"); SGD's momentum
  // buffer, buf = momentum * buf + g (slot "momentum_buffer").
  Tensor momentum;
  // AdamW's running mean of squared gradients, its second moment (slot "exp_avg_sq"); undefined for SGD.
  Tensor grad_sq_avg;
  Tensor master;  // the f32 master copy of a bf16/f16 parameter; undefined otherwise
};

// The kernels' signatures, one per slot, with their contracts in mt/ops/kernel_list.h.
struct Kernels {
#define MT_KERNEL(slot, Sig, category, ...) using Sig = __VA_ARGS__;
#include "mt/ops/kernel_list.h"
};

// A kernel bound to its device and category: calling it runs the kernel through OpProfiler::time and
// returns what the kernel returns.
template <typename Fn>
class KernelCall;
template <typename R, typename... Args>
class KernelCall<R(Args...)> {
 public:
  KernelCall(R (*fn)(Args...), Device device, OpCategory category, const char* op)
      : fn_(fn), device_(device), category_(category), op_(op) {}
  R operator()(Args... args) const {
    if constexpr (std::is_void_v<R>) {
      OpProfiler::time(category_, device_, [&] { fn_(std::forward<Args>(args)...); }, op_);
    } else {
      R result{};
      OpProfiler::time(category_, device_, [&] { result = fn_(std::forward<Args>(args)...); }, op_);
      return result;
    }
  }

 private:
  R (*fn_)(Args...);
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

// One slot per entry of mt/ops/kernel_list.h, with the OpCategory set there.
struct KernelTable {
#define MT_KERNEL(slot, Sig, category, ...) KernelSlot<Kernels::Sig> slot{OpCategory::category};
#include "mt/ops/kernel_list.h"
};

// The table, filled on first use by register_cpu_kernels and (with CUDA) register_cuda_kernels.
const KernelTable& kernels();
void register_cpu_kernels(KernelTable& table);
#ifdef MT_WITH_CUDA
void register_cuda_kernels(KernelTable& table);
#endif

}  // namespace mt
