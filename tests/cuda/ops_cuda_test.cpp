// CPU-vs-CUDA tests of the elementwise, reduction and indexing kernels: each case runs the CPU and
// the CUDA kernel (through the kernel table) on the same inputs, on odd, empty, strided and
// broadcast shapes, for every dtype the kernel takes. Copies, integer results, selections and
// Philox uniforms must match exactly; math within a per-dtype tolerance. Inputs that are sums of
// small whole numbers make float accumulation exact, so atomics' order cannot change them.
// Every test skips with a message when no GPU is visible.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "mt/core/device.h"
#include "mt/ops/kernel_table.h"
#include "mt/ops/ops.h"

namespace mt {
namespace {

#define MT_REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: this test needs a GPU"

const std::vector<DType> kFloating = {DType::kF32, DType::kF64, DType::kBF16, DType::kF16};
const std::vector<DType> kNumeric = {DType::kF32, DType::kF64, DType::kBF16, DType::kF16, DType::kI32, DType::kI64};
const std::vector<DType> kAll = {DType::kF32, DType::kF64, DType::kBF16, DType::kF16, DType::kI32, DType::kI64, DType::kBool};

Device gpu() { return Device::cuda(0); }

// Values in [lo, hi) as `dtype` on the CPU; `whole` truncates to whole numbers (always for integer
// dtypes); bool is value >= the middle of the range.
Tensor make_input(const Shape& shape, DType dtype, double lo, double hi, uint64_t seed, bool whole = false) {
  // (Tensor::is_contiguous() calls an empty tensor with a 0 inside its shape non-contiguous, which
  // uniform_ refuses.)
  if (shape.numel() == 0) return Tensor::empty(shape, dtype);
  Generator g(seed);
  Tensor f = uniform(shape, lo, hi, g, {DType::kF64, Device::cpu()});
  if (dtype == DType::kBool) return ge(f, scalar_tensor((lo + hi) / 2, {DType::kF64}));
  if (whole || !is_floating(dtype)) f = cast(cast(f, DType::kI64), DType::kF64);
  return cast(f, dtype);
}

// An index tensor (i64) of `n` values in [0, bound), with repeats when n > bound.
Tensor make_index(const Shape& shape, int64_t bound, uint64_t seed) {
  return make_input(shape, DType::kI64, 0, static_cast<double>(bound), seed);
}

std::string label(const std::string& what, DType t) { return what + " [" + dtype_name(t) + "]"; }

void expect_equal(const Tensor& cpu, const Tensor& cuda, const std::string& what) {
  ASSERT_EQ(cpu.shape(), cuda.shape()) << what;
  ASSERT_EQ(cpu.dtype(), cuda.dtype()) << what;
  ASSERT_TRUE(cuda.device().is_cuda()) << what;
  std::vector<double> a = cpu.to_vector<double>(), b = cuda.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))) continue;
    ADD_FAILURE() << what << ": element " << i << " of " << a.size() << " differs: cpu " << a[i] << ", cuda " << b[i];
    return;
  }
}

// The same bytes (after making both contiguous on the host).
void expect_same_bits(const Tensor& cpu, const Tensor& cuda, const std::string& what) {
  ASSERT_EQ(cpu.shape(), cuda.shape()) << what;
  Tensor a = cpu.contiguous(), b = cuda.to(Device::cpu()).contiguous();
  size_t es = a.element_size();
  for (int64_t i = 0; i < a.numel(); ++i) {
    if (std::memcmp(static_cast<char*>(a.data_ptr()) + i * es, static_cast<char*>(b.data_ptr()) + i * es, es) != 0) {
      ADD_FAILURE() << what << ": element " << i << " of " << a.numel() << " has different bits: cpu "
                    << a.to_vector<double>()[i] << ", cuda " << b.to_vector<double>()[i];
      return;
    }
  }
}

struct Tol {
  double rtol, atol;
};

// Tolerance for results of math in `t`: f32 1e-5, bf16 1e-2, f16 1e-3 relative.
Tol tol_for(DType t) {
  switch (t) {
    case DType::kF32: return {1e-5, 1e-6};
    case DType::kF64: return {1e-12, 1e-13};
    case DType::kBF16: return {1e-2, 1e-3};
    case DType::kF16: return {1e-3, 1e-4};
    default: return {0, 0};
  }
}

void expect_close(const Tensor& cpu, const Tensor& cuda, Tol tol, const std::string& what) {
  ASSERT_EQ(cpu.shape(), cuda.shape()) << what;
  ASSERT_EQ(cpu.dtype(), cuda.dtype()) << what;
  std::vector<double> a = cpu.to_vector<double>(), b = cuda.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::isinf(a[i]) && a[i] == b[i]) continue;
    if (std::abs(a[i] - b[i]) <= tol.atol + tol.rtol * std::abs(a[i])) continue;
    ADD_FAILURE() << what << ": element " << i << " of " << a.size() << ": cpu " << a[i] << ", cuda " << b[i]
                  << " (rtol " << tol.rtol << ", atol " << tol.atol << ")";
    return;
  }
}

Tensor empty_like_on(const Tensor& t, Device d) { return Tensor::empty(t.shape(), t.dtype(), d); }

const std::vector<Shape> kOddShapes = {{3, 1037}, {1}, {0}, {2, 0, 5}, {}};

// ---------------------------------------------------------------------------- creation

TEST(CudaOps, FillStoresTheCpuBits) {
  MT_REQUIRE_GPU();
  for (DType t : kAll)
    for (const Shape& s : kOddShapes)
      for (double v : {0.0, 1.5, -2.75, 0.1, 70000.3, 1e-30}) {
        Tensor c = Tensor::empty(s, t), g = Tensor::empty(s, t, gpu());
        kernels().fill.cpu(c, v);
        kernels().fill.cuda(g, v);
        expect_same_bits(c, g, label("fill " + std::to_string(v), t));
      }
}

TEST(CudaOps, ArangeMatchesExactly) {
  MT_REQUIRE_GPU();
  for (DType t : kAll)
    for (int64_t n : {1, 1037, 0}) {
      Tensor c = Tensor::empty({n}, t), g = Tensor::empty({n}, t, gpu());
      kernels().arange.cpu(c, -3.25, 0.37);
      kernels().arange.cuda(g, -3.25, 0.37);
      expect_same_bits(c, g, label("arange n=" + std::to_string(n), t));
    }
}

TEST(CudaOps, UniformIsBitIdentical) {
  MT_REQUIRE_GPU();
  for (DType t : kFloating)
    for (const Shape& s : kOddShapes)
      for (uint64_t offset : {0ull, 5ull, 4003ull}) {
        Tensor c = Tensor::empty(s, t), g = Tensor::empty(s, t, gpu());
        kernels().uniform.cpu(c, 1234, offset, nullptr, -2.0, 3.0);
        kernels().uniform.cuda(g, 1234, offset, nullptr, -2.0, 3.0);
        expect_same_bits(c, g, label("uniform offset " + std::to_string(offset), t));
        // The offset split into a device base (a multiple of 4) and the rest, as a captured step draws.
        Tensor base = Tensor::from_vector<int64_t>({4000}, {1}, DType::kI64, gpu());
        Tensor g2 = Tensor::empty(s, t, gpu());
        kernels().uniform.cpu(c, 1234, offset + 4000, nullptr, -2.0, 3.0);
        kernels().uniform.cuda(g2, 1234, offset, static_cast<const uint64_t*>(base.data_ptr()), -2.0, 3.0);
        expect_same_bits(c, g2, label("uniform offset base 4000 + " + std::to_string(offset), t));
      }
  // Through the public op, whose generator reserves the offsets.
  Generator gc(77), gg(77);
  Tensor a = uniform({5, 333}, 0.0, 1.0, gc), b = uniform({5, 333}, 0.0, 1.0, gg, {DType::kF32, gpu()});
  Tensor a2 = rand({7}, gc), b2 = rand({7}, gg, {DType::kF32, gpu()});
  expect_same_bits(a, b, "uniform op");
  expect_same_bits(a2, b2, "rand op after uniform");
}

TEST(CudaOps, NormalMatchesWithinFloatRounding) {
  MT_REQUIRE_GPU();
  for (DType t : kFloating)
    for (const Shape& s : kOddShapes) {
      Tensor c = Tensor::empty(s, t), g = Tensor::empty(s, t, gpu());
      Tensor base = Tensor::from_vector<int64_t>({4}, {1}, DType::kI64, gpu());
      kernels().normal.cpu(c, 99, 8, nullptr, 0.5, 2.0);
      kernels().normal.cuda(g, 99, 4, static_cast<const uint64_t*>(base.data_ptr()), 0.5, 2.0);  // 4 + 4
      // Box-Muller runs in f32 (logf, cosf) on both sides, so f64 output only carries f32 accuracy.
      Tol tol = t == DType::kF64 ? Tol{1e-5, 1e-5} : Tol{tol_for(t).rtol, std::max(tol_for(t).atol, 1e-5)};
      expect_close(c, g, tol, label("normal", t));
    }
}

// ---------------------------------------------------------------------------- copy

TEST(CudaOps, CopyCastsEveryDtypePairExactly) {
  MT_REQUIRE_GPU();
  for (DType from : kAll)
    for (DType to : kAll) {
      std::string what = std::string("copy ") + dtype_name(from) + " -> " + dtype_name(to);
      Tensor src = make_input({37, 29}, from, -100, 100, 11);
      Tensor gsrc = src.to(gpu());
      // dense
      Tensor c = Tensor::empty({37, 29}, to), g = Tensor::empty({37, 29}, to, gpu());
      kernels().copy.cpu(src, c);
      kernels().copy.cuda(gsrc, g);
      expect_same_bits(c, g, what + " dense");
      // strided source
      Tensor ct = Tensor::empty({29, 37}, to), gt = Tensor::empty({29, 37}, to, gpu());
      kernels().copy.cpu(src.transpose(0, 1), ct);
      kernels().copy.cuda(gsrc.transpose(0, 1), gt);
      expect_same_bits(ct, gt, what + " transposed source");
      // strided destination inside a larger buffer: the rest must stay untouched
      Tensor cbig = zeros({40, 50}, {to}), gbig = zeros({40, 50}, {to, gpu()});
      kernels().copy.cpu(src, cbig.narrow(0, 2, 37).narrow(1, 3, 29));
      kernels().copy.cuda(gsrc, gbig.narrow(0, 2, 37).narrow(1, 3, 29));
      expect_same_bits(cbig, gbig, what + " strided destination");
      // broadcast source (stride 0), offset view
      Tensor crow = src.narrow(0, 5, 1).expand({37, 29});
      Tensor grow = gsrc.narrow(0, 5, 1).expand({37, 29});
      kernels().copy.cpu(crow, c);
      kernels().copy.cuda(grow, g);
      expect_same_bits(c, g, what + " broadcast source");
      // each row's element broadcast along 32 columns (vectors of one repeated element), from an offset view
      Tensor cwide = Tensor::empty({37, 32}, to), gwide = Tensor::empty({37, 32}, to, gpu());
      kernels().copy.cpu(src.narrow(1, 5, 1).expand({37, 32}), cwide);
      kernels().copy.cuda(gsrc.narrow(1, 5, 1).expand({37, 32}), gwide);
      expect_same_bits(cwide, gwide, what + " broadcast along rows");
      // one element and none
      Tensor c1 = Tensor::empty({1}, to), g1 = Tensor::empty({1}, to, gpu());
      kernels().copy.cpu(src.narrow(0, 3, 1).narrow(1, 7, 1).reshape({1}), c1);
      kernels().copy.cuda(gsrc.narrow(0, 3, 1).narrow(1, 7, 1).reshape({1}), g1);
      expect_same_bits(c1, g1, what + " one element");
      Tensor g0 = Tensor::empty({0, 3}, to, gpu());
      kernels().copy.cuda(Tensor::empty({0, 3}, from, gpu()), g0);
    }
}

TEST(CudaOps, CopyOfManyDimsMergesContiguousOnesAndRejectsTooMany) {
  MT_REQUIRE_GPU();
  Shape ten = {2, 3, 2, 2, 3, 2, 2, 1, 2, 3};
  Tensor src = make_input(ten, DType::kF32, -5, 5, 3);
  Tensor gsrc = src.to(gpu());
  Tensor c = Tensor::empty(ten, DType::kBF16), g = Tensor::empty(ten, DType::kBF16, gpu());
  kernels().copy.cpu(src, c);
  kernels().copy.cuda(gsrc, g);
  expect_same_bits(c, g, "10-d dense copy");
  // A permutation that leaves 9 non-mergeable dims.
  Shape nine = {2, 3, 2, 3, 2, 3, 2, 3, 2};
  Tensor x = make_input(nine, DType::kF32, -5, 5, 4).to(gpu());
  Tensor xp = x.permute({8, 7, 6, 5, 4, 3, 2, 1, 0});
  Tensor out = Tensor::empty(xp.shape(), DType::kF32, gpu());
  try {
    kernels().copy.cuda(xp, out);
    FAIL() << "expected an error for 9 strided dims";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("at most 8"), std::string::npos) << e.what();
  }
}

TEST(CudaOps, CastAndToThroughThePublicOps) {
  MT_REQUIRE_GPU();
  Tensor x = make_input({17, 31}, DType::kF32, -3, 3, 5);
  Tensor gx = x.to(gpu());
  for (DType t : kAll) expect_equal(cast(x, t), cast(gx, t), label("cast", t));
  expect_equal(x.transpose(0, 1).contiguous(), gx.transpose(0, 1).contiguous(), "contiguous of a transpose");
  Tensor back = gx.to(Device::cpu());
  expect_same_bits(x, back.to(gpu()), "host -> device -> host");
}

TEST(CudaOps, PermutedCopiesWithAContiguousInnerDimMatchTheCpu) {
  MT_REQUIRE_GPU();
  // Attention's head split and merge, (B, T, H, D) <-> (B, H, T, D): the vectorised strided path when D
  // divides into 16-byte vectors (D 64), the per-element one otherwise (D 12; a view one element in).
  for (int64_t d : {64, 12}) {
    for (DType from : {DType::kBF16, DType::kF32, DType::kF16}) {
      Tensor x = make_input({3, 5, 4, d}, from, -3, 3, 11);
      Tensor gx = x.to(gpu());
      for (DType to : {from, DType::kF32, DType::kBF16}) {
        const std::string what = str_cat("permute(0, 2, 1, 3) D ", d, " ", dtype_name(from), "->", dtype_name(to));
        Tensor c = Tensor::empty({3, 4, 5, d}, to), g = Tensor::empty({3, 4, 5, d}, to, gpu());
        kernels().copy.cpu(x.permute({0, 2, 1, 3}), c);
        kernels().copy.cuda(gx.permute({0, 2, 1, 3}), g);
        expect_same_bits(c, g, what);
        Tensor cm = Tensor::empty({3, 4, 5, d - 1}, to), gm = Tensor::empty({3, 4, 5, d - 1}, to, gpu());
        kernels().copy.cpu(x.permute({0, 2, 1, 3}).narrow(3, 1, d - 1), cm);
        kernels().copy.cuda(gx.permute({0, 2, 1, 3}).narrow(3, 1, d - 1), gm);
        expect_same_bits(cm, gm, what + ", a misaligned view");
      }
    }
  }
}

// ---------------------------------------------------------------------------- unary

struct UnaryCase {
  UnaryOp op;
  const char* name;
  double lo, hi, alpha;
};

const std::vector<UnaryCase> kUnaryCases = {
    {UnaryOp::kNeg, "neg", -4, 4, 0},      {UnaryOp::kExp, "exp", -4, 4, 0},
    {UnaryOp::kLog, "log", 0.1, 5, 0},     {UnaryOp::kSqrt, "sqrt", 0, 5, 0},
    {UnaryOp::kRsqrt, "rsqrt", 0.1, 5, 0}, {UnaryOp::kTanh, "tanh", -4, 4, 0},
    {UnaryOp::kRelu, "relu", -4, 4, 0},    {UnaryOp::kGelu, "gelu", -4, 4, 0},
    {UnaryOp::kSilu, "silu", -4, 4, 0},    {UnaryOp::kSigmoid, "sigmoid", -4, 4, 0},
    {UnaryOp::kAbs, "abs", -4, 4, 0},      {UnaryOp::kPow, "pow", 0.1, 3, 2.5},
    {UnaryOp::kScale, "scale", -4, 4, -1.75}, {UnaryOp::kAddScalar, "add_scalar", -4, 4, 0.625},
};

TEST(CudaOps, UnaryMatchesOnFloatingDtypes) {
  MT_REQUIRE_GPU();
  for (const UnaryCase& u : kUnaryCases)
    for (DType t : kFloating)
      for (const Shape& s : kOddShapes) {
        Tensor x = make_input(s, t, u.lo, u.hi, 21);
        Tensor gx = x.to(gpu());
        Tensor c = empty_like_on(x, Device::cpu()), g = empty_like_on(x, gpu());
        kernels().unary.cpu(u.op, x, c, u.alpha);
        kernels().unary.cuda(u.op, gx, g, u.alpha);
        expect_close(c, g, tol_for(t), label(u.name, t));
      }
}

TEST(CudaOps, UnaryInPlaceAndMisaligned) {
  MT_REQUIRE_GPU();
  for (DType t : kFloating) {
    Tensor x = make_input({1037}, t, -4, 4, 22);
    Tensor gx = x.to(gpu());
    // An offset of one element defeats the vectorised path.
    Tensor xs = x.narrow(0, 1, 1035), gxs = gx.narrow(0, 1, 1035);
    Tensor c = Tensor::empty({1035}, t), g = Tensor::empty({1035}, t, gpu());
    kernels().unary.cpu(UnaryOp::kGelu, xs, c, 0);
    kernels().unary.cuda(UnaryOp::kGelu, gxs, g, 0);
    expect_close(c, g, tol_for(t), label("gelu misaligned", t));
    kernels().unary.cpu(UnaryOp::kScale, x, x, 3.0);
    kernels().unary.cuda(UnaryOp::kScale, gx, gx, 3.0);
    expect_close(x, gx, tol_for(t), label("scale in place", t));
  }
}

// bf16/f16 gelu and its derivative have their own f32 formulas (elementwise.cu, GeluHalfFn, GeluGradHalfFn):
// check them far into both tails and at the infinities, on a length with a scalar tail after the vector body.
TEST(CudaOps, GeluAndItsDerivativeOnHalfTypesMatchOverAWideRange) {
  MT_REQUIRE_GPU();
  for (DType t : {DType::kBF16, DType::kF16}) {
    Tensor x = make_input({4099}, t, -12, 12, 24);
    Tensor c = empty_like_on(x, Device::cpu()), g = empty_like_on(x, gpu());
    kernels().unary.cpu(UnaryOp::kGelu, x, c, 0);
    kernels().unary.cuda(UnaryOp::kGelu, x.to(gpu()), g, 0);
    expect_close(c, g, tol_for(t), label("gelu on [-12, 12]", t));
    Tensor ends = Tensor::from_vector<double>({-INFINITY, INFINITY, -30, -5, -0.0, 1e-3, 5, 30}, {8}, t);
    Tensor ce = empty_like_on(ends, Device::cpu()), ge = empty_like_on(ends, gpu());
    kernels().unary.cpu(UnaryOp::kGelu, ends, ce, 0);
    kernels().unary.cuda(UnaryOp::kGelu, ends.to(gpu()), ge, 0);
    expect_close(ce, ge, tol_for(t), label("gelu at the ends", t));
    // The derivative's own form (GeluGradHalfFn), with upstream gradients of both signs.
    for (const Tensor& at : {x, ends}) {
      Tensor gout = make_input(at.shape(), t, -2, 2, 25);
      Tensor cg = empty_like_on(at, Device::cpu()), gg = empty_like_on(at, gpu());
      kernels().unary_backward.cpu(UnaryGradOp::kGelu, gout, at, cg);
      kernels().unary_backward.cuda(UnaryGradOp::kGelu, gout.to(gpu()), at.to(gpu()), gg);
      expect_close(cg, gg, tol_for(t), label("gelu' on " + std::to_string(at.numel()) + " points", t));
    }
  }
}

TEST(CudaOps, UnaryOnIntegersIsExactAndOthersAreRejected) {
  MT_REQUIRE_GPU();
  for (DType t : {DType::kI32, DType::kI64}) {
    Tensor x = make_input({3, 1037}, t, -1000, 1000, 23);
    Tensor gx = x.to(gpu());
    for (auto [op, alpha] : std::vector<std::pair<UnaryOp, double>>{
             {UnaryOp::kNeg, 0}, {UnaryOp::kAbs, 0}, {UnaryOp::kScale, 3.9}, {UnaryOp::kAddScalar, -7.2}}) {
      Tensor c = empty_like_on(x, Device::cpu()), g = empty_like_on(x, gpu());
      kernels().unary.cpu(op, x, c, alpha);
      kernels().unary.cuda(op, gx, g, alpha);
      expect_equal(c, g, label("integer unary " + std::to_string(static_cast<int>(op)), t));
    }
    Tensor g = empty_like_on(x, gpu());
    EXPECT_THROW(kernels().unary.cuda(UnaryOp::kExp, gx, g, 0), Error);
  }
}

TEST(CudaOps, UnaryBackwardMatches) {
  MT_REQUIRE_GPU();
  for (UnaryGradOp op : {UnaryGradOp::kTanh, UnaryGradOp::kRelu, UnaryGradOp::kGelu, UnaryGradOp::kSilu, UnaryGradOp::kSigmoid})
    for (DType t : kFloating)
      for (const Shape& s : kOddShapes) {
        Tensor gout = make_input(s, t, -1, 1, 31), x = make_input(s, t, -4, 4, 32);
        Tensor c = empty_like_on(x, Device::cpu()), g = empty_like_on(x, gpu());
        kernels().unary_backward.cpu(op, gout, x, c);
        kernels().unary_backward.cuda(op, gout.to(gpu()), x.to(gpu()), g);
        expect_close(c, g, tol_for(t), label("unary backward " + std::to_string(static_cast<int>(op)), t));
      }
}

// ---------------------------------------------------------------------------- binary, where

const std::vector<BinaryOp> kArith = {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul, BinaryOp::kDiv,
                                      BinaryOp::kPow, BinaryOp::kMax, BinaryOp::kMin};
const std::vector<BinaryOp> kCompare = {BinaryOp::kEq, BinaryOp::kNe, BinaryOp::kLt,
                                        BinaryOp::kLe, BinaryOp::kGt, BinaryOp::kGe};

// Runs op on (view(a), b) expanded to `shape` on both devices (`view` applied on each device, so that an
// offset view stays one on the GPU).
void check_binary(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& shape, const std::string& what,
                  const std::function<Tensor(const Tensor&)>& view = [](const Tensor& t) { return t; }) {
  bool compare = op >= BinaryOp::kEq;
  DType out_t = compare ? DType::kBool : a.dtype();
  Tensor c = Tensor::empty(shape, out_t), g = Tensor::empty(shape, out_t, gpu());
  kernels().binary.cpu(op, view(a).expand(shape), b.expand(shape), c);
  kernels().binary.cuda(op, view(a.to(gpu())).expand(shape), b.to(gpu()).expand(shape), g);
  if (compare || !is_floating(a.dtype())) expect_equal(c, g, what);
  else expect_close(c, g, tol_for(a.dtype()), what);
}

TEST(CudaOps, BinaryArithmeticOnDenseBroadcastAndScalarOperands) {
  MT_REQUIRE_GPU();
  for (BinaryOp op : kArith)
    for (DType t : kNumeric) {
      // Integer pow goes through the device's double pow, which is not exact: skipped.
      if (op == BinaryOp::kPow && !is_floating(t)) continue;
      bool positive = op == BinaryOp::kPow || op == BinaryOp::kDiv;
      double lo = positive ? 0.5 : -50, hi = positive ? 3 : 50;
      std::string what = label("binary " + std::to_string(static_cast<int>(op)), t);
      Tensor a = make_input({3, 1037}, t, lo, hi, 41), b = make_input({3, 1037}, t, op == BinaryOp::kDiv ? 1 : lo, hi, 42);
      check_binary(op, a, b, {3, 1037}, what + " dense");
      Tensor a3 = make_input({37, 1, 29}, t, lo, hi, 43), b3 = make_input({1, 41, 29}, t, op == BinaryOp::kDiv ? 1 : lo, hi, 44);
      check_binary(op, a3, b3, {37, 41, 29}, what + " broadcast");
      // Rows of whole 16-byte vectors take the vector path: a per-row scale (N, d) x (N, 1) broadcast along
      // the innermost dim, a batch-broadcast row block (B, T, d) + (1, T, d), and an offset view.
      const double lo_b = op == BinaryOp::kDiv ? 1 : lo;  // a divisor's range
      Tensor rows = make_input({37, 64}, t, lo, hi, 49), col = make_input({37, 1}, t, lo_b, hi, 50);
      check_binary(op, rows, col, {37, 64}, what + " per-row");
      check_binary(op, col, make_input({37, 64}, t, lo_b, hi, 54), {37, 64}, what + " per-row, first operand");
      Tensor batch = make_input({3, 5, 64}, t, lo, hi, 51), block = make_input({1, 5, 64}, t, lo_b, hi, 52);
      check_binary(op, batch, block, {3, 5, 64}, what + " batch broadcast");
      check_binary(op, make_input({37, 72}, t, lo, hi, 53), col, {37, 64}, what + " per-row, offset view",
                   [](const Tensor& x) { return x.narrow(1, 8, 64); });
      Tensor at = make_input({29, 37}, t, lo, hi, 45).transpose(0, 1);
      check_binary(op, at, b3.reshape({41, 29}).narrow(0, 0, 37), {37, 29}, what + " transposed");
      Tensor s = make_input({}, t, op == BinaryOp::kDiv ? 1 : lo, hi, 46);
      check_binary(op, a, s, {3, 1037}, what + " scalar");
      check_binary(op, make_input({0, 4}, t, lo, hi, 47), make_input({4}, t, lo, hi, 48), {0, 4}, what + " empty");
    }
}

TEST(CudaOps, BinaryComparisonsOnEveryDtype) {
  MT_REQUIRE_GPU();
  for (BinaryOp op : kCompare)
    for (DType t : kAll) {
      std::string what = label("compare " + std::to_string(static_cast<int>(op)), t);
      // Whole numbers in a small range, so equal pairs are common.
      Tensor a = make_input({3, 1037}, t, -3, 3, 51, true), b = make_input({3, 1037}, t, -3, 3, 52, true);
      check_binary(op, a, b, {3, 1037}, what + " dense");
      Tensor a3 = make_input({37, 1, 29}, t, -3, 3, 53, true), b3 = make_input({1, 41, 29}, t, -3, 3, 54, true);
      check_binary(op, a3, b3, {37, 41, 29}, what + " broadcast");
      check_binary(op, a.transpose(0, 1), make_input({1}, t, -3, 3, 55, true), {1037, 3}, what + " transposed vs scalar");
      check_binary(op, make_input({37, 64}, t, -3, 3, 56, true), make_input({37, 1}, t, -3, 3, 57, true), {37, 64},
                   what + " per-row");
    }
}

TEST(CudaOps, BinaryInPlaceAddAndBoolArithmeticIsRejected) {
  MT_REQUIRE_GPU();
  for (DType t : kNumeric) {
    Tensor a = make_input({5, 333}, t, -9, 9, 61, true), b = make_input({333}, t, -9, 9, 62, true);
    Tensor ga = a.to(gpu()), gb = b.to(gpu());
    kernels().binary.cpu(BinaryOp::kAdd, a, b.expand({5, 333}), a);
    kernels().binary.cuda(BinaryOp::kAdd, ga, gb.expand({5, 333}), ga);
    expect_equal(a, ga, label("add in place", t));
  }
  Tensor x = make_input({4}, DType::kBool, 0, 1, 63).to(gpu());
  Tensor out = Tensor::empty({4}, DType::kBool, gpu());
  EXPECT_THROW(kernels().binary.cuda(BinaryOp::kAdd, x, x, out), Error);
}

TEST(CudaOps, WhereSelectsExactly) {
  MT_REQUIRE_GPU();
  for (DType t : kAll) {
    Tensor cond = make_input({37, 1}, DType::kBool, 0, 1, 71);
    Tensor a = make_input({29, 37}, t, -9, 9, 72).transpose(0, 1);
    Tensor b = make_input({}, t, -9, 9, 73);
    Shape s = {37, 29};
    Tensor c = Tensor::empty(s, t), g = Tensor::empty(s, t, gpu());
    kernels().where.cpu(cond.expand(s), a, b.expand(s), c);
    kernels().where.cuda(cond.to(gpu()).expand(s), a.to(gpu()).transpose(0, 1).contiguous().transpose(0, 1),
                         b.to(gpu()).expand(s), g);
    expect_same_bits(c, g, label("where", t));
    Tensor w = where(cond.to(gpu()), a.to(gpu()), b.to(gpu()));
    expect_same_bits(c, w, label("where op", t));
  }
}

// ---------------------------------------------------------------------------- reductions

// Warp-per-row (k <= 1024), block-per-row, and split (few rows of k >= 32768) reductions.
const std::vector<std::pair<int64_t, int64_t>> kRowShapes = {{3, 1037}, {5, 1}, {1037, 3}, {2, 5000},
                                                             {1, 1},    {0, 7}, {2, 40000}};

TEST(CudaOps, ReduceRowsMatchesForEveryOpAndDtype) {
  MT_REQUIRE_GPU();
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kMin, ReduceOp::kArgMax, ReduceOp::kSumSquares})
    for (DType t : kNumeric)
      for (auto [m, k] : kRowShapes) {
        std::string what = label("reduce " + std::to_string(static_cast<int>(op)) + " (" + std::to_string(m) + ", " +
                                     std::to_string(k) + ")", t);
        // Whole numbers in [-8, 8): sums are exact in every dtype, ties are frequent for argmax.
        Tensor x = make_input({m, k}, t, -8, 8, 81, true);
        DType out_t = op == ReduceOp::kArgMax ? DType::kI64 : t;
        Tensor c = Tensor::empty({m}, out_t), g = Tensor::empty({m}, out_t, gpu());
        kernels().reduce_rows.cpu(op, x, c);
        kernels().reduce_rows.cuda(op, x.to(gpu()), g);
        // Exact even for bf16/f16: both sides round the same exact f32 (or i64) total.
        expect_equal(c, g, what);
      }
}

TEST(CudaOps, ReduceRowsOfEmptyRowsSumToZero) {
  MT_REQUIRE_GPU();
  for (DType t : kNumeric) {
    Tensor g = full({4}, 5.0, {t, gpu()});
    kernels().reduce_rows.cuda(ReduceOp::kSum, Tensor::empty({4, 0}, t, gpu()), g);
    expect_equal(zeros({4}, {t}), g, label("sum of empty rows", t));
  }
}

TEST(CudaOps, ReduceRowsOfOneLongRowSplitAcrossBlocks) {
  MT_REQUIRE_GPU();
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kMin, ReduceOp::kArgMax, ReduceOp::kSumSquares})
    for (DType t : {DType::kF32, DType::kBF16, DType::kI64}) {
      // Whole numbers in [-2, 2): sums (of squares too) stay exact in f32.
      Tensor x = make_input({1, (1 << 20) + 3}, t, -2, 2, 84, true);
      DType out_t = op == ReduceOp::kArgMax ? DType::kI64 : t;
      Tensor c = Tensor::empty({1}, out_t), g = Tensor::empty({1}, out_t, gpu());
      kernels().reduce_rows.cpu(op, x, c);
      kernels().reduce_rows.cuda(op, x.to(gpu()), g);
      expect_equal(c, g, label("split reduce " + std::to_string(static_cast<int>(op)), t));
    }
}

TEST(CudaOps, ReduceRowsFloatSumsWithinTolerance) {
  MT_REQUIRE_GPU();
  // Up to 5000 terms: the CPU's sequential f32 sum stays well within 1e-5 of the exact one.
  for (DType t : kFloating)
    for (auto [m, k] : std::vector<std::pair<int64_t, int64_t>>{{3, 1037}, {5, 1}, {1037, 3}, {2, 5000}}) {
      Tensor x = make_input({m, k}, t, 0, 1, 82);
      Tensor c = Tensor::empty({m}, t), g = Tensor::empty({m}, t, gpu());
      kernels().reduce_rows.cpu(ReduceOp::kSum, x, c);
      kernels().reduce_rows.cuda(ReduceOp::kSum, x.to(gpu()), g);
      Tol tol = t == DType::kF64 ? Tol{1e-12, 1e-12} : tol_for(t);
      expect_close(c, g, tol, label("float sum (" + std::to_string(m) + ", " + std::to_string(k) + ")", t));
    }
}

// sum over leading dims (a broadcast's gradient, the wpe gradient's batch) runs as a GEMM of ones on the
// rows in place: against the CPU's, in every floating dtype, odd sizes and the wpe gradient's shape.
TEST(CudaOps, SumOverLeadingDimsMatchesCpu) {
  MT_REQUIRE_GPU();
  for (DType t : kFloating)
    for (const Shape& s : {Shape{7, 3, 5}, Shape{16, 1024, 768}, Shape{1037, 1, 3}}) {
      Tensor x = make_input(s, t, -1, 1, 83);
      Tensor c = sum(x, {0}), g = sum(x.to(gpu()), {0});
      // Sums of k terms in [-1, 1] in two orders differ by ~eps sqrt(k) absolute, whatever the (cancelling) sum.
      Tol base = t == DType::kF64 ? Tol{1e-12, 1e-12} : tol_for(t);
      auto tol = [&](int64_t k) { return Tol{base.rtol, base.rtol * std::sqrt(static_cast<double>(k))}; };
      expect_close(c, g, tol(s[0]), label("sum over dim 0 of (" + std::to_string(s[0]) + ", ...)", t));
      expect_close(sum(x, {0, 1}, true), sum(x.to(gpu()), {0, 1}, true), tol(s[0] * s[1]),
                   label("sum over dims 0, 1", t));
    }
}

// The gradient norm's kernel: more tensors than one launch batch (64), empty and one-element tensors, and
// tensors long enough to be split over many blocks; per-tensor sums against the CPU's in f64 (a sequential
// f32 sum of 4M squares drifts further than the GPU's tree of partials; f64 sums of 4M terms in different orders
// differ by ~1e-12 relative).
TEST(CudaOps, SumSquaresOfManyTensorsMatchesCpu) {
  MT_REQUIRE_GPU();
  for (DType t : kFloating) {
    std::vector<Tensor> cpu_in, gpu_in;
    for (int i = 0; i < 150; ++i) {
      int64_t n = i == 3 ? 0 : i == 7 ? 1 : i % 50 == 0 ? (1 << 22) + 5 : 37 * i + 3;
      Tensor x = make_input({n}, t, -1, 1, 900 + i);
      cpu_in.push_back(cast(x, DType::kF64));
      gpu_in.push_back(x.to(gpu()));
    }
    DType acc = t == DType::kF64 ? DType::kF64 : DType::kF32;
    Tensor c = Tensor::empty({150}, DType::kF64), g = Tensor::empty({150}, acc, gpu());
    kernels().sum_squares_many.cpu(cpu_in, c);
    kernels().sum_squares_many.cuda(gpu_in, g);
    expect_close(acc == DType::kF64 ? c : cast(c, DType::kF32), g, t == DType::kF64 ? Tol{1e-10, 0} : Tol{1e-5, 0},
                 label("sum_squares_many", t));
    EXPECT_EQ(g.to_vector<double>()[3], 0.0);
  }
}

TEST(CudaOps, ArgMaxPicksTheFirstMaximumAndNanFollowsTheCpu) {
  MT_REQUIRE_GPU();
  std::vector<float> v(2 * 3000, 1.0f);
  v[1234] = 7.0f;
  v[2999] = 7.0f;  // tie later in row 0
  v[3000] = NAN;   // row 1 starts with NaN: the CPU keeps index 0
  v[4000] = 9.0f;
  Tensor x = Tensor::from_vector(v, {2, 3000});
  Tensor c = Tensor::empty({2}, DType::kI64), g = Tensor::empty({2}, DType::kI64, gpu());
  kernels().reduce_rows.cpu(ReduceOp::kArgMax, x, c);
  kernels().reduce_rows.cuda(ReduceOp::kArgMax, x.to(gpu()), g);
  EXPECT_EQ(g.to_vector<int64_t>(), (std::vector<int64_t>{1234, 0}));
  expect_equal(c, g, "argmax with ties and NaN");
}

TEST(CudaOps, ReductionsThroughThePublicOps) {
  MT_REQUIRE_GPU();
  Tensor x = make_input({6, 7, 45}, DType::kF32, -8, 8, 83, true);
  Tensor gx = x.to(gpu());
  expect_equal(sum(x, {0, 2}), sum(gx, {0, 2}), "sum over dims 0, 2");
  expect_equal(max(x, 1), max(gx, 1), "max over dim 1");
  expect_equal(min(x, 0, true), min(gx, 0, true), "min keepdim");
  expect_equal(argmax(x, 2), argmax(gx, 2), "argmax");
  expect_equal(sum(x), sum(gx), "sum of all");
}

// ---------------------------------------------------------------------------- indexing

TEST(CudaOps, IndexSelectMovesRowsOfEveryDtype) {
  MT_REQUIRE_GPU();
  for (DType t : kAll)
    for (auto [outer, n, inner, m] : std::vector<std::array<int64_t, 4>>{
             {3, 17, 1037, 25}, {1, 5, 1, 9}, {4, 6, 3, 6}, {2, 7, 8, 0}, {1, 1, 1, 1}}) {
      Tensor in = make_input({outer, n, inner}, t, -50, 50, 91);
      Tensor idx = make_index({m}, n, 92);
      Tensor c = Tensor::empty({outer, m, inner}, t), g = Tensor::empty({outer, m, inner}, t, gpu());
      kernels().index_select.cpu(in, outer, n, inner, idx, c);
      kernels().index_select.cuda(in.to(gpu()), outer, n, inner, idx.to(gpu()), g);
      expect_same_bits(c, g, label("index_select " + std::to_string(outer) + "x" + std::to_string(n) + "x" +
                                       std::to_string(inner) + " m=" + std::to_string(m), t));
    }
  Tensor w = make_input({11, 13}, DType::kBF16, -1, 1, 93);
  Tensor ids = make_input({2, 5}, DType::kI32, 0, 11, 94);
  expect_same_bits(index_select(w, 0, ids.reshape({10})), index_select(w.to(gpu()), 0, ids.reshape({10}).to(gpu())),
                   "index_select op with i32 ids");
}

TEST(CudaOps, IndexAddAccumulatesDuplicates) {
  MT_REQUIRE_GPU();
  for (DType t : kNumeric)
    for (auto [outer, n, inner, m] : std::vector<std::array<int64_t, 4>>{
             {3, 17, 1037, 40}, {1, 5, 1, 9}, {4, 2, 3, 30}, {2, 7, 8, 0}}) {
      // Whole numbers: sums are exact whatever the atomics' order.
      Tensor base = make_input({outer, n, inner}, t, -8, 8, 101, true);
      Tensor src = make_input({outer, m, inner}, t, -8, 8, 102, true);
      Tensor idx = make_index({m}, n, 103);
      Tensor c = base.clone(), g = base.to(gpu());
      kernels().index_add.cpu(c, outer, n, inner, idx, src);
      kernels().index_add.cuda(g, outer, n, inner, idx.to(gpu()), src.to(gpu()));
      expect_equal(c, g, label("index_add m=" + std::to_string(m), t));
    }
}

TEST(CudaOps, IndexAddFloatValuesWithinTolerance) {
  MT_REQUIRE_GPU();
  Tensor base = make_input({1, 9, 257}, DType::kF32, 0.5, 1, 104);
  Tensor src = make_input({1, 64, 257}, DType::kF32, 0.5, 1, 105);
  Tensor idx = make_index({64}, 9, 106);
  Tensor c = base.clone(), g = base.to(gpu());
  kernels().index_add.cpu(c, 1, 9, 257, idx, src);
  kernels().index_add.cuda(g, 1, 9, 257, idx.to(gpu()), src.to(gpu()));
  expect_close(c, g, tol_for(DType::kF32), "index_add f32 (order of atomics varies)");
}

TEST(CudaOps, GatherAlongEachDim) {
  MT_REQUIRE_GPU();
  for (DType t : kAll)
    for (int dim : {0, 1, 2}) {
      Tensor in = make_input({4, 7, 5}, t, -50, 50, 111);
      Shape is = {3, 6, 4};
      is[dim] = 9;  // more index entries than the dim has: repeats
      Tensor idx = make_index(is, in.shape()[dim], 112 + dim);
      Tensor c = Tensor::empty(is, t), g = Tensor::empty(is, t, gpu());
      kernels().gather.cpu(in, dim, idx, c);
      kernels().gather.cuda(in.to(gpu()), dim, idx.to(gpu()), g);
      expect_same_bits(c, g, label("gather dim " + std::to_string(dim), t));
    }
  Tensor x = make_input({5, 1037}, DType::kF32, -1, 1, 115);
  Tensor ix = make_index({5, 3}, 1037, 116);
  expect_same_bits(gather(x, 1, ix), gather(x.to(gpu()), 1, ix.to(gpu())), "gather op");
}

TEST(CudaOps, ScatterAddAlongEachDim) {
  MT_REQUIRE_GPU();
  for (DType t : kNumeric)
    for (int dim : {0, 1, 2}) {
      Tensor base = make_input({4, 7, 5}, t, -8, 8, 121, true);
      Shape is = {3, 6, 4};
      is[dim] = 9;
      Tensor idx = make_index(is, base.shape()[dim], 122 + dim);
      Tensor src = make_input(is, t, -8, 8, 125, true);
      Tensor c = base.clone(), g = base.to(gpu());
      kernels().scatter_add.cpu(c, dim, idx, src);
      kernels().scatter_add.cuda(g, dim, idx.to(gpu()), src.to(gpu()));
      expect_equal(c, g, label("scatter_add dim " + std::to_string(dim), t));
    }
}

TEST(CudaOps, TopKOrdersTiesByIndex) {
  MT_REQUIRE_GPU();
  for (DType t : kAll)
    for (auto [m, n, k] : std::vector<std::array<int64_t, 3>>{
             {37, 129, 1}, {37, 129, 2}, {37, 129, 8}, {3, 1037, 5}, {5, 1, 1}, {4, 8, 8}, {0, 6, 2},
             // k > 32 sorts (Note [Top-k by sorting]): random token selection's shape, k = n, a ragged row.
             {8, 16384, 2048}, {3, 500, 500}, {37, 1029, 33}}) {
      // Whole numbers in a small range: many ties.
      Tensor x = make_input({m, n}, t, -4, 4, 131, true);
      Tensor cv = Tensor::empty({m, k}, t), ci = Tensor::empty({m, k}, DType::kI64);
      Tensor gv = Tensor::empty({m, k}, t, gpu()), gi = Tensor::empty({m, k}, DType::kI64, gpu());
      kernels().topk.cpu(x, k, cv, ci);
      kernels().topk.cuda(x.to(gpu()), k, gv, gi);
      std::string what = label("topk (" + std::to_string(m) + ", " + std::to_string(n) + ") k=" + std::to_string(k), t);
      expect_same_bits(cv, gv, what + " values");
      expect_equal(ci, gi, what + " indices");
    }
  // NaN first, -0 tied with +0 (by index), infinities in place: in both the warp kernel and the sort.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::vector<float> special;
  for (int i = 0; i < 80; ++i) special.push_back(std::vector<float>{nan, -0.0f, 0.0f, inf, -inf, 1.5f, -2.0f, -nan}[i % 8]);
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16})
    for (int64_t k : {5, 40, 80}) {
      Tensor x = Tensor::from_vector<float>(special, {2, 40}).to(t);
      Tensor cv = Tensor::empty({2, k > 40 ? 40 : k}, t), ci = Tensor::empty({2, k > 40 ? 40 : k}, DType::kI64);
      Tensor gv = Tensor::empty(cv.shape(), t, gpu()), gi = Tensor::empty(ci.shape(), DType::kI64, gpu());
      kernels().topk.cpu(x, cv.size(1), cv, ci);
      kernels().topk.cuda(x.to(gpu()), cv.size(1), gv, gi);
      expect_same_bits(cv, gv, label("topk of NaN, signed zeros and infinities, k=" + std::to_string(cv.size(1)), t));
      expect_equal(ci, gi, label("topk of NaN, signed zeros and infinities (indices)", t));
    }
  Tensor x = make_input({3, 10, 6}, DType::kF32, -1, 1, 132);
  auto [cv, ci] = topk(x, 3, 1);
  auto [gv, gi] = topk(x.to(gpu()), 3, 1);
  expect_same_bits(cv, gv, "topk op values");
  expect_equal(ci, gi, "topk op indices");
}

TEST(CudaOps, CumsumPerRow) {
  MT_REQUIRE_GPU();
  for (DType t : kNumeric)
    for (auto [m, n] : std::vector<std::pair<int64_t, int64_t>>{{3, 1037}, {1037, 3}, {2, 5000}, {1, 1}, {4, 2049}}) {
      // Whole numbers in [0, 4): every prefix sum is exact in f32 (and in the halves' f32 accumulator).
      Tensor x = make_input({m, n}, t, 0, 4, 141, true);
      Tensor c = Tensor::empty({m, n}, t), g = Tensor::empty({m, n}, t, gpu());
      kernels().cumsum.cpu(x, c);
      kernels().cumsum.cuda(x.to(gpu()), g);
      expect_equal(c, g, label("cumsum (" + std::to_string(m) + ", " + std::to_string(n) + ")", t));
    }
  Tensor x = make_input({6, 1000}, DType::kF32, -1, 1, 142);
  expect_close(cumsum(x, 1), cumsum(x.to(gpu()), 1), {1e-5, 1e-5}, "cumsum f32 fractions");
  Tensor y = make_input({40, 3}, DType::kI64, -100, 100, 143);
  expect_equal(cumsum(y, 0), cumsum(y.to(gpu()), 0), "cumsum op along dim 0");
}

}  // namespace
}  // namespace mt
