// CPU reference kernels for causal scaled dot-product attention, (B, H, T, D) layout (views run on
// contiguous copies).
// Forward keeps the row logsumexp; backward recomputes the probabilities from it, as a flash
// kernel does. Work is split over (batch, head) pairs; each accumulates in f32 (f64 for f64).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu_kernels.h"
#include "cpu_loops.h"
#include "mt/ops/contiguous_run.h"

namespace mt::cpu {

namespace {

template <typename T>
using stat_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, const Tensor& out,
                       const Tensor& lse) {
  if (!all_contiguous({&q, &k, &v, &out}))
    return run_contiguous({q, k, v}, {out}, [&](const std::vector<Tensor>& in, const std::vector<Tensor>& o) {
      attention_forward(in[0], in[1], in[2], scale, o[0], lse);
    });
  int64_t bh = q.size(0) * q.size(1), t = q.size(2), d = q.size(3);
  dispatch_floating(q.dtype(), "causal_attention", [&]<typename T>() {
    using A = acc_t<T>;
    using S = stat_t<T>;
    const T* qv = q.data<T>();
    const T* kv = k.data<T>();
    const T* vv = v.data<T>();
    T* ov = out.data<T>();
    S* lv = lse.data<S>();
    parallel_range(bh, 1, [&](int64_t lo, int64_t hi) {
      std::vector<A> s(t), acc(d);
      for (int64_t p = lo; p < hi; ++p) {
        const T* qp = qv + p * t * d;
        const T* kp = kv + p * t * d;
        const T* vp = vv + p * t * d;
        for (int64_t i = 0; i < t; ++i) {
          A mx = -std::numeric_limits<A>::infinity();
          for (int64_t j = 0; j <= i; ++j) {
            A dot = 0;
            for (int64_t c = 0; c < d; ++c) dot += static_cast<A>(qp[i * d + c]) * static_cast<A>(kp[j * d + c]);
            s[j] = dot * static_cast<A>(scale);
            mx = std::max(mx, s[j]);
          }
          A sum = 0;
          for (int64_t j = 0; j <= i; ++j) sum += std::exp(s[j] - mx);
          A l = mx + std::log(sum);
          std::fill(acc.begin(), acc.end(), A(0));
          for (int64_t j = 0; j <= i; ++j) {
            A pij = std::exp(s[j] - l);
            for (int64_t c = 0; c < d; ++c) acc[c] += pij * static_cast<A>(vp[j * d + c]);
          }
          for (int64_t c = 0; c < d; ++c) ov[p * t * d + i * d + c] = static_cast<T>(acc[c]);
          lv[p * t + i] = static_cast<S>(l);
        }
      }
    });
  });
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& dout,
                        const Tensor& lse, double scale, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  if (!all_contiguous({&q, &k, &v, &out, &dout, &dq, &dk, &dv}))
    return run_contiguous({q, k, v, out, dout}, {dq, dk, dv}, [&](const std::vector<Tensor>& in, const std::vector<Tensor>& d) {
      attention_backward(in[0], in[1], in[2], in[3], in[4], lse, scale, d[0], d[1], d[2]);
    });
  int64_t bh = q.size(0) * q.size(1), t = q.size(2), d = q.size(3);
  dispatch_floating(q.dtype(), "causal_attention backward", [&]<typename T>() {
    using A = acc_t<T>;
    using S = stat_t<T>;
    const T* qv = q.data<T>();
    const T* kv = k.data<T>();
    const T* vv = v.data<T>();
    const T* ov = out.data<T>();
    const T* gv = dout.data<T>();
    const S* lv = lse.data<S>();
    T* dqv = dq.data<T>();
    T* dkv = dk.data<T>();
    T* dvv = dv.data<T>();
    A sc = static_cast<A>(scale);
    parallel_range(bh, 1, [&](int64_t lo, int64_t hi) {
      std::vector<A> dqa(d), dka(t * d), dva(t * d);
      for (int64_t p = lo; p < hi; ++p) {
        int64_t base = p * t * d;
        std::fill(dka.begin(), dka.end(), A(0));
        std::fill(dva.begin(), dva.end(), A(0));
        for (int64_t i = 0; i < t; ++i) {
          const T* qi = qv + base + i * d;
          const T* gi = gv + base + i * d;
          // delta_i = dout_i . out_i = sum_j P_ij (dout_i . v_j)
          A delta = 0;
          for (int64_t c = 0; c < d; ++c) delta += static_cast<A>(gi[c]) * static_cast<A>(ov[base + i * d + c]);
          A l = static_cast<A>(lv[p * t + i]);
          std::fill(dqa.begin(), dqa.end(), A(0));
          for (int64_t j = 0; j <= i; ++j) {
            const T* kj = kv + base + j * d;
            const T* vj = vv + base + j * d;
            A dot = 0, dp = 0;
            for (int64_t c = 0; c < d; ++c) {
              dot += static_cast<A>(qi[c]) * static_cast<A>(kj[c]);
              dp += static_cast<A>(gi[c]) * static_cast<A>(vj[c]);
            }
            A pij = std::exp(dot * sc - l);
            A ds = pij * (dp - delta) * sc;
            for (int64_t c = 0; c < d; ++c) {
              dva[j * d + c] += pij * static_cast<A>(gi[c]);
              dqa[c] += ds * static_cast<A>(kj[c]);
              dka[j * d + c] += ds * static_cast<A>(qi[c]);
            }
          }
          for (int64_t c = 0; c < d; ++c) dqv[base + i * d + c] = static_cast<T>(dqa[c]);
        }
        for (int64_t e = 0; e < t * d; ++e) {
          dkv[base + e] = static_cast<T>(dka[e]);
          dvv[base + e] = static_cast<T>(dva[e]);
        }
      }
    });
  });
}

}  // namespace mt::cpu
