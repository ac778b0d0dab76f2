// Elementwise CUDA kernels: fill, arange, copy with casts, unary (+ backward), binary and where.
// Dense operands take a vectorised path (16-byte loads) when aligned; strided ones index through a
// StridedLayout with 32-bit index math when the element count allows, a vector at a time where the innermost
// dimension is contiguous or broadcast (vector_layout). Formulas come from
// mt/math/scalar_math.h and conversions from device_utils.cuh, so results match the CPU kernels; gelu and its
// derivative on bf16/f16 use an equivalent f32 form that keeps the kernel bandwidth-bound (GeluHalfFn).
#include <type_traits>

#include "device_utils.cuh"
#include "elementwise.h"
#include "fast_exp.cuh"
#include "launch_utils.cuh"
#include "mt/math/scalar_math.h"

namespace mt::gpu {

namespace {

// Elements per vector access: 16 bytes of the widest operand, at most 8.
template <typename... Ts>
constexpr int vec_width() {
  constexpr size_t widest = std::max({sizeof(Ts)...});
  return 16 / widest > 8 ? 8 : static_cast<int>(16 / widest);
}

// ---- dense maps: y[i] = f(x[i]) and y[i] = f(a[i], b[i]) ----

template <int kVec, typename F, typename I, typename O>
__global__ void map1_kernel(F f, const I* x, O* y, int64_t n) {
  int64_t nvec = n / kVec;
  const auto* xv = reinterpret_cast<const Pack<I, kVec>*>(x);
  auto* yv = reinterpret_cast<Pack<O, kVec>*>(y);
  for (int64_t v = thread_index(); v < nvec; v += thread_count()) {
    Pack<I, kVec> a = xv[v];
    Pack<O, kVec> r;
#pragma unroll
    for (int k = 0; k < kVec; ++k) r.v[k] = f(a.v[k]);
    yv[v] = r;
  }
  for (int64_t i = nvec * kVec + thread_index(); i < n; i += thread_count()) y[i] = f(x[i]);
}

template <int kVec, typename F, typename I, typename O>
__global__ void map2_kernel(F f, const I* a, const I* b, O* y, int64_t n) {
  int64_t nvec = n / kVec;
  const auto* av = reinterpret_cast<const Pack<I, kVec>*>(a);
  const auto* bv = reinterpret_cast<const Pack<I, kVec>*>(b);
  auto* yv = reinterpret_cast<Pack<O, kVec>*>(y);
  for (int64_t v = thread_index(); v < nvec; v += thread_count()) {
    Pack<I, kVec> x1 = av[v], x2 = bv[v];
    Pack<O, kVec> r;
#pragma unroll
    for (int k = 0; k < kVec; ++k) r.v[k] = f(x1.v[k], x2.v[k]);
    yv[v] = r;
  }
  for (int64_t i = nvec * kVec + thread_index(); i < n; i += thread_count()) y[i] = f(a[i], b[i]);
}

template <typename F, typename I, typename O>
cudaError_t launch_map1(F f, const I* x, O* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  constexpr int kVec = vec_width<I, O>();
  if (kVec > 1 && is_aligned(x, sizeof(I) * kVec) && is_aligned(y, sizeof(O) * kVec)) {
    map1_kernel<kVec><<<grid_for((n + kVec - 1) / kVec), kThreads, 0, stream>>>(f, x, y, n);
  } else {
    map1_kernel<1><<<grid_for(n), kThreads, 0, stream>>>(f, x, y, n);
  }
  return cudaGetLastError();
}

template <typename F, typename I, typename O>
cudaError_t launch_map2(F f, const I* a, const I* b, O* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  constexpr int kVec = vec_width<I, O>();
  if (kVec > 1 && is_aligned(a, sizeof(I) * kVec) && is_aligned(b, sizeof(I) * kVec) &&
      is_aligned(y, sizeof(O) * kVec)) {
    map2_kernel<kVec><<<grid_for((n + kVec - 1) / kVec), kThreads, 0, stream>>>(f, a, b, y, n);
  } else {
    map2_kernel<1><<<grid_for(n), kThreads, 0, stream>>>(f, a, b, y, n);
  }
  return cudaGetLastError();
}

// ---- strided indexing ----

// Element offsets of each operand for the row-major linear index i.
template <int N, typename I>
__device__ __forceinline__ void strided_offsets(const StridedLayout<N>& l, I i, int64_t (&off)[N]) {
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
  if (l.ndim == 1) {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = static_cast<int64_t>(i) * l.stride[k][0];
    return;
  }
#pragma unroll
  for (int d = kMaxDims - 1; d >= 0; --d) {
    if (d < l.ndim) {
      I size = static_cast<I>(l.size[d]);
      I c = i % size;
      i /= size;
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += static_cast<int64_t>(c) * l.stride[k][d];
    }
  }
}

// Runs body(I) with I = uint32_t when n < 2^31, else uint64_t (32-bit division is much cheaper).
// The margin keeps i + thread_count() (at most 2^24 with grid_for's cap) from wrapping around.
template <typename Body>
cudaError_t with_index_type(int64_t n, Body&& body) {
  if (n <= static_cast<int64_t>(INT32_MAX)) return body(uint32_t{});
  return body(uint64_t{});
}

// ---- functors ----

template <typename S, typename D>
struct ConvertFn {
  __device__ D operator()(S v) const { return convert<S, D>(v); }
};

template <typename T>
struct UnaryFn {
  int op;
  acc_t<T> alpha;
  __device__ T operator()(T x) const { return from_acc<T>(math::unary<acc_t<T>>(op, to_acc(x), alpha)); }
};

// gelu for bf16/f16, in f32: math::gelu's 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), is
// x * sigmoid(2u) = x / (1 + 2^(-2u log2(e))), here one hardware exp2 and one fast division. Its error
// (about 1e-6 relative) is far below the half types' rounding. The generic path (tanhf behind the
// per-element op switch) ran 2^28 bf16 elements at 60% of the H200's copy rate.
template <typename T>
struct GeluHalfFn {
  __device__ T operator()(T v) const {
    constexpr float k = -2.0f * 0.7978845608028654f * kLog2e;
    float x = to_acc(v);
    float z = x * fmaf(0.044715f * k, x * x, k);  // -2u log2(e)
    return from_acc<T>(__fdividef(x, 1.0f + ex2_approx(z)));
  }
};

// gelu's derivative for bf16/f16 in the same form: with s = sigmoid(2u), gelu(x) = x s and gelu'(x) =
// s + x s (1 - s) 2u', u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2). For large |x| the exp saturates to s = 0 or
// 1 and the second term to 0, as tanh does. (The generic path ran the experts' (8, 2048, 3072) bf16 pass
// at ~1.4 TB/s on the H100, under half its copy rate.)
template <typename T>
struct GeluGradHalfFn {
  __device__ T operator()(T g, T v) const {
    constexpr float k = -2.0f * 0.7978845608028654f * kLog2e;
    float x = to_acc(v), x2 = x * x;
    float s = __fdividef(1.0f, 1.0f + ex2_approx(x * fmaf(0.044715f * k, x2, k)));  // sigmoid(2u)
    float du2 = 2.0f * 0.7978845608028654f * fmaf(3.0f * 0.044715f, x2, 1.0f);       // 2u'
    return from_acc<T>(to_acc(g) * fmaf(x * s * (1.0f - s), du2, s));
  }
};

template <typename T>
struct UnaryGradFn {
  int op;
  __device__ T operator()(T g, T x) const { return from_acc<T>(math::unary_grad<acc_t<T>>(op, to_acc(g), to_acc(x))); }
};

// Arithmetic when O is T, comparison when O is bool (bool tensors only compare).
template <typename T, typename O>
struct BinaryFn {
  int op;
  __device__ O operator()(T a, T b) const {
    if constexpr (std::is_same_v<O, bool>) {
      return math::binary_compare<acc_t<T>>(op, to_acc(a), to_acc(b));
    } else {
      return from_acc<T>(math::binary<acc_t<T>>(op, to_acc(a), to_acc(b)));
    }
  }
};

// ---- kernels ----

template <int kVec, typename U>
__global__ void fill_kernel(U* out, U bits, int64_t n) {
  Pack<U, kVec> v;
#pragma unroll
  for (int k = 0; k < kVec; ++k) v.v[k] = bits;
  int64_t nvec = n / kVec;
  auto* ov = reinterpret_cast<Pack<U, kVec>*>(out);
  for (int64_t i = thread_index(); i < nvec; i += thread_count()) ov[i] = v;
  for (int64_t i = nvec * kVec + thread_index(); i < n; i += thread_count()) out[i] = bits;
}

template <typename T>
__global__ void arange_kernel(T* out, int64_t n, double start, double step) {
  for (int64_t i = thread_index(); i < n; i += thread_count())
    out[i] = cast_to<T>(__dadd_rn(start, __dmul_rn(static_cast<double>(i), step)));  // no FMA, as on the host
}

template <typename I, typename S, typename D>
__global__ void copy_strided_kernel(const S* src, D* dst, StridedLayout<2> layout, I n) {
  for (I i = static_cast<I>(thread_index()); i < n; i += static_cast<I>(thread_count())) {
    int64_t off[2];
    strided_offsets(layout, i, off);
    dst[off[1]] = convert<S, D>(src[off[0]]);
  }
}

// kVec consecutive elements of operand k at element offset `off`: a whole aligned vector, or, where the
// operand is broadcast along the innermost dimension (its stride there is 0), one element repeated.
template <int kVec, typename T>
__device__ __forceinline__ Pack<T, kVec> load_vec(const T* p, int64_t off, bool broadcast) {
  if (!broadcast) return *reinterpret_cast<const Pack<T, kVec>*>(p + off);
  Pack<T, kVec> r;
  const T v = p[off];
#pragma unroll
  for (int k = 0; k < kVec; ++k) r.v[k] = v;
  return r;
}

// The same as copy_strided_kernel with kVec consecutive elements per access (`layout` from vector_layout).
template <int kVec, typename I, typename S, typename D>
__global__ void copy_strided_vec_kernel(const S* src, D* dst, StridedLayout<2> layout, I n) {
  const bool src_broadcast = layout.stride[0][layout.ndim - 1] == 0;
  for (I i = static_cast<I>(thread_index()); i < n; i += static_cast<I>(thread_count())) {
    int64_t off[2];
    strided_offsets(layout, i, off);
    const Pack<S, kVec> a = load_vec<kVec>(src, off[0], src_broadcast);
    Pack<D, kVec> r;
#pragma unroll
    for (int k = 0; k < kVec; ++k) r.v[k] = convert<S, D>(a.v[k]);
    *reinterpret_cast<Pack<D, kVec>*>(dst + off[1]) = r;
  }
}

// `l` walked kVec elements at a time along its innermost dimension, when there every operand (the last
// one is the output) is contiguous or, for an input, broadcast (stride 0), and each contiguous operand's
// vectors stay whole and aligned. Strides stay in elements; the innermost becomes the step from one
// vector to the next (kVec, or 0). So a permuted copy (attention's head split and merge) or a broadcast
// binary op (a row of position embeddings, a per-row scale) moves 16-byte vectors with one index
// computation each, not 2-byte elements.
template <int kVec, int N>
bool vector_layout(const StridedLayout<N>& l, const void* const (&ptr)[N], const size_t (&elem_bytes)[N],
                   StridedLayout<N>& out) {
  const int last = l.ndim - 1;
  if (kVec <= 1 || l.ndim < 1 || l.size[last] % kVec != 0) return false;
  out = l;
  for (int k = 0; k < N; ++k) {
    const bool broadcast = l.stride[k][last] == 0 && k < N - 1;
    if (broadcast) continue;
    if (l.stride[k][last] != 1 || !is_aligned(ptr[k], elem_bytes[k] * kVec)) return false;
    for (int d = 0; d < last; ++d)
      if (l.stride[k][d] % kVec != 0) return false;
    out.stride[k][last] = kVec;
  }
  out.size[last] = l.size[last] / kVec;
  return true;
}

template <typename I, typename T, typename O>
__global__ void binary_strided_kernel(BinaryFn<T, O> f, const T* a, const T* b, O* out, StridedLayout<3> layout, I n) {
  for (I i = static_cast<I>(thread_index()); i < n; i += static_cast<I>(thread_count())) {
    int64_t off[3];
    strided_offsets(layout, i, off);
    out[off[2]] = f(a[off[0]], b[off[1]]);
  }
}

// The same with kVec consecutive elements per access (`layout` from vector_layout).
template <int kVec, typename I, typename T, typename O>
__global__ void binary_strided_vec_kernel(BinaryFn<T, O> f, const T* a, const T* b, O* out, StridedLayout<3> layout,
                                          I n) {
  const int last = layout.ndim - 1;
  const bool a_broadcast = layout.stride[0][last] == 0, b_broadcast = layout.stride[1][last] == 0;
  for (I i = static_cast<I>(thread_index()); i < n; i += static_cast<I>(thread_count())) {
    int64_t off[3];
    strided_offsets(layout, i, off);
    const Pack<T, kVec> x = load_vec<kVec>(a, off[0], a_broadcast), y = load_vec<kVec>(b, off[1], b_broadcast);
    Pack<O, kVec> r;
#pragma unroll
    for (int k = 0; k < kVec; ++k) r.v[k] = f(x.v[k], y.v[k]);
    *reinterpret_cast<Pack<O, kVec>*>(out + off[2]) = r;
  }
}

template <typename I, typename U>
__global__ void where_kernel(const bool* cond, const U* a, const U* b, U* out, StridedLayout<4> layout, I n) {
  for (I i = static_cast<I>(thread_index()); i < n; i += static_cast<I>(thread_count())) {
    int64_t off[4];
    strided_offsets(layout, i, off);
    out[off[3]] = cond[off[0]] ? a[off[1]] : b[off[2]];
  }
}

}  // namespace

// ---- launchers ----

template <typename U>
cudaError_t fill(U* out, U bits, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  constexpr int kVec = 16 / sizeof(U);
  if (is_aligned(out, 16)) {
    fill_kernel<kVec><<<grid_for((n + kVec - 1) / kVec), kThreads, 0, stream>>>(out, bits, n);
  } else {
    fill_kernel<1><<<grid_for(n), kThreads, 0, stream>>>(out, bits, n);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t arange(T* out, int64_t n, double start, double step, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  arange_kernel<<<grid_for(n), kThreads, 0, stream>>>(out, n, start, step);
  return cudaGetLastError();
}

template <typename S, typename D>
cudaError_t copy_contiguous(const S* src, D* dst, int64_t n, cudaStream_t stream) {
  if constexpr (std::is_same_v<S, D>) {
    if (n == 0) return cudaSuccess;
    return cudaMemcpyAsync(dst, src, n * sizeof(S), cudaMemcpyDeviceToDevice, stream);
  } else {
    return launch_map1(ConvertFn<S, D>{}, src, dst, n, stream);
  }
}

template <typename S, typename D>
cudaError_t copy_strided(const S* src, D* dst, const StridedLayout<2>& layout, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  constexpr int kVec = vec_width<S, D>();
  StridedLayout<2> vec;
  if (vector_layout<kVec>(layout, {src, dst}, {sizeof(S), sizeof(D)}, vec)) {
    const int64_t nvec = n / kVec;
    return with_index_type(nvec, [&](auto index) {
      using I = decltype(index);
      copy_strided_vec_kernel<kVec, I><<<grid_for(nvec), kThreads, 0, stream>>>(src, dst, vec, static_cast<I>(nvec));
      return cudaGetLastError();
    });
  }
  return with_index_type(n, [&](auto index) {
    using I = decltype(index);
    copy_strided_kernel<I><<<grid_for(n), kThreads, 0, stream>>>(src, dst, layout, static_cast<I>(n));
    return cudaGetLastError();
  });
}

template <typename T>
cudaError_t unary(int op, const T* in, T* out, int64_t n, double alpha, cudaStream_t stream) {
  if constexpr (std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>) {
    if (op == kUnaryGelu) return launch_map1(GeluHalfFn<T>{}, in, out, n, stream);
  }
  return launch_map1(UnaryFn<T>{op, static_cast<acc_t<T>>(alpha)}, in, out, n, stream);
}

template <typename T>
cudaError_t unary_backward(int op, const T* grad_out, const T* x, T* grad_in, int64_t n, cudaStream_t stream) {
  if constexpr (std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>) {
    if (op == kUnaryGradGelu) return launch_map2(GeluGradHalfFn<T>{}, grad_out, x, grad_in, n, stream);
  }
  return launch_map2(UnaryGradFn<T>{op}, grad_out, x, grad_in, n, stream);
}

template <typename T, typename O>
cudaError_t binary_contiguous(int op, const T* a, const T* b, O* out, int64_t n, cudaStream_t stream) {
  return launch_map2(BinaryFn<T, O>{op}, a, b, out, n, stream);
}

template <typename T, typename O>
cudaError_t binary_strided(int op, const T* a, const T* b, O* out, const StridedLayout<3>& layout, int64_t n,
                           cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  constexpr int kVec = vec_width<T, O>();
  StridedLayout<3> vec;
  if (vector_layout<kVec>(layout, {a, b, out}, {sizeof(T), sizeof(T), sizeof(O)}, vec)) {
    const int64_t nvec = n / kVec;
    return with_index_type(nvec, [&](auto index) {
      using I = decltype(index);
      binary_strided_vec_kernel<kVec, I><<<grid_for(nvec), kThreads, 0, stream>>>(BinaryFn<T, O>{op}, a, b, out, vec,
                                                                                  static_cast<I>(nvec));
      return cudaGetLastError();
    });
  }
  return with_index_type(n, [&](auto index) {
    using I = decltype(index);
    binary_strided_kernel<I><<<grid_for(n), kThreads, 0, stream>>>(BinaryFn<T, O>{op}, a, b, out, layout,
                                                                   static_cast<I>(n));
    return cudaGetLastError();
  });
}

template <typename U>
cudaError_t where(const bool* cond, const U* a, const U* b, U* out, const StridedLayout<4>& layout, int64_t n,
                  cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  return with_index_type(n, [&](auto index) {
    using I = decltype(index);
    where_kernel<I><<<grid_for(n), kThreads, 0, stream>>>(cond, a, b, out, layout, static_cast<I>(n));
    return cudaGetLastError();
  });
}

// ---- instantiations for the device element types ----

#define MT_GPU_BITS(X) X(uint8_t) X(uint16_t) X(uint32_t) X(uint64_t)
#define MT_GPU_NUMERIC(X) X(float) X(double) X(__nv_bfloat16) X(__half) X(int32_t) X(int64_t)
#define MT_GPU_ALL(X) MT_GPU_NUMERIC(X) X(bool)

#define MT_INST_BITS(U)                                                                        \
  template cudaError_t fill<U>(U*, U, int64_t, cudaStream_t);                                  \
  template cudaError_t where<U>(const bool*, const U*, const U*, U*, const StridedLayout<4>&, int64_t, cudaStream_t);
MT_GPU_BITS(MT_INST_BITS)

#define MT_INST_ALL(T)                                                                               \
  template cudaError_t arange<T>(T*, int64_t, double, double, cudaStream_t);                         \
  template cudaError_t binary_contiguous<T, bool>(int, const T*, const T*, bool*, int64_t, cudaStream_t); \
  template cudaError_t binary_strided<T, bool>(int, const T*, const T*, bool*, const StridedLayout<3>&, int64_t, \
                                               cudaStream_t);
MT_GPU_ALL(MT_INST_ALL)

#define MT_INST_NUMERIC(T)                                                                        \
  template cudaError_t unary<T>(int, const T*, T*, int64_t, double, cudaStream_t);                \
  template cudaError_t binary_contiguous<T, T>(int, const T*, const T*, T*, int64_t, cudaStream_t); \
  template cudaError_t binary_strided<T, T>(int, const T*, const T*, T*, const StridedLayout<3>&, int64_t, cudaStream_t);
MT_GPU_NUMERIC(MT_INST_NUMERIC)

#define MT_INST_FLOATING(T) \
  template cudaError_t unary_backward<T>(int, const T*, const T*, T*, int64_t, cudaStream_t);
MT_INST_FLOATING(float)
MT_INST_FLOATING(double)
MT_INST_FLOATING(__nv_bfloat16)
MT_INST_FLOATING(__half)

#define MT_INST_COPY(S, D)                                                               \
  template cudaError_t copy_contiguous<S, D>(const S*, D*, int64_t, cudaStream_t);       \
  template cudaError_t copy_strided<S, D>(const S*, D*, const StridedLayout<2>&, int64_t, cudaStream_t);
#define MT_INST_COPY_FROM(S) \
  MT_INST_COPY(S, float) MT_INST_COPY(S, double) MT_INST_COPY(S, __nv_bfloat16) MT_INST_COPY(S, __half) \
  MT_INST_COPY(S, int32_t) MT_INST_COPY(S, int64_t) MT_INST_COPY(S, bool)
MT_GPU_ALL(MT_INST_COPY_FROM)

}  // namespace mt::gpu
