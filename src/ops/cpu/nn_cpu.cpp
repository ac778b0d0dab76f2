// CPU kernels for the row-wise neural-network functions: softmax/log_softmax, layer norm (alone or with
// the residual add before it), fused cross-entropy, the distillation loss and dropout. Rows run in
// parallel; each row accumulates in f32 (f64 for f64).
// Statistics (layer-norm mean/rstd, logsumexp, per-row losses) are f32, or f64 for f64 inputs.
#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu_kernels.h"
#include "cpu_loops.h"
#include "mt/math/philox.h"

namespace mt::cpu {

namespace {

// Rows per parallel chunk so a chunk holds about 16K elements.
int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)); }

// The statistics type for element type T: f64 for f64, f32 otherwise.
template <typename T>
using stat_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// Checks targets before any parallel loop (an exception must not leave an OpenMP region).
void check_targets(const Tensor& targets, int64_t classes, int64_t ignore_index, const char* op) {
  const int64_t* t = targets.data<int64_t>();
  for (int64_t i = 0; i < targets.numel(); ++i)
    MT_CHECK(t[i] == ignore_index || (t[i] >= 0 && t[i] < classes), op, ": target ", t[i], " at row ", i,
             " out of range [0, ", classes, ") (ignore_index ", ignore_index, ")");
}

// logsumexp(scale * x[0..v)) for scale > 0, in A. The sum is kept in f64: over a 50K vocabulary an f32
// running sum drifts by ~1e-5 relative, more than the CUDA kernels' tree sums.
template <typename A, typename T>
A scaled_logsumexp(const T* x, int64_t v, A scale) {
  A mx = -std::numeric_limits<A>::infinity();
  for (int64_t j = 0; j < v; ++j) mx = std::max(mx, static_cast<A>(x[j]));
  mx *= scale;
  if (mx == -std::numeric_limits<A>::infinity()) return mx;
  double s = 0;
  for (int64_t j = 0; j < v; ++j) s += std::exp(static_cast<A>(x[j]) * scale - mx);
  return mx + static_cast<A>(std::log(s));
}

// dr[0..v) = g * (exp(xr[j] - lse) - (j == target)); dr may be xr (each element is read, then written).
template <typename T, typename A>
void write_ce_grad_row(const T* xr, T* dr, int64_t v, int64_t target, A g, A lse) {
  for (int64_t j = 0; j < v; ++j) {
    A p = std::exp(static_cast<A>(xr[j]) - lse);
    dr[j] = static_cast<T>(g * (p - (j == target ? A(1) : A(0))));
  }
}

}  // namespace

void softmax(const Tensor& in, const Tensor& out, SoftmaxKind kind) {
  const bool log = kind == SoftmaxKind::kLogSoftmax;
  int64_t m = in.size(0), n = in.size(1);
  dispatch_floating(in.dtype(), "softmax", [&]<typename T>() {
    using A = acc_t<T>;
    const T* x = in.data<T>();
    T* y = out.data<T>();
    parallel_range(m, row_grain(n), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* xr = x + r * n;
        T* yr = y + r * n;
        A mx = -std::numeric_limits<A>::infinity();
        for (int64_t j = 0; j < n; ++j) mx = std::max(mx, static_cast<A>(xr[j]));
        A s = 0;
        for (int64_t j = 0; j < n; ++j) s += std::exp(static_cast<A>(xr[j]) - mx);
        if (log) {
          A lse = mx + std::log(s);
          for (int64_t j = 0; j < n; ++j) yr[j] = static_cast<T>(static_cast<A>(xr[j]) - lse);
        } else {
          A inv = A(1) / s;
          for (int64_t j = 0; j < n; ++j) yr[j] = static_cast<T>(std::exp(static_cast<A>(xr[j]) - mx) * inv);
        }
      }
    });
  });
}

void softmax_backward(const Tensor& grad_out, const Tensor& y, const Tensor& grad_in, SoftmaxKind kind) {
  const bool log = kind == SoftmaxKind::kLogSoftmax;
  int64_t m = y.size(0), n = y.size(1);
  dispatch_floating(y.dtype(), "softmax backward", [&]<typename T>() {
    using A = acc_t<T>;
    const T* g = grad_out.data<T>();
    const T* yv = y.data<T>();
    T* gi = grad_in.data<T>();
    parallel_range(m, row_grain(n), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* gr = g + r * n;
        const T* yr = yv + r * n;
        T* out = gi + r * n;
        A s = 0;
        for (int64_t j = 0; j < n; ++j) s += log ? static_cast<A>(gr[j]) : static_cast<A>(gr[j]) * static_cast<A>(yr[j]);
        for (int64_t j = 0; j < n; ++j) {
          A gj = static_cast<A>(gr[j]), yj = static_cast<A>(yr[j]);
          out[j] = static_cast<T>(log ? gj - std::exp(yj) * s : yj * (gj - s));
        }
      }
    });
  });
}

namespace {

// Layer norm of the rows of x, or, when res is defined, of h = x + res: each row's sum is rounded to T and
// written to h first (as the add op would), then normalised from h. Stats are S = stat_t<T>.
void layer_norm_rows(const Tensor& x, const Tensor& res, const Tensor& w, const Tensor& b, double eps, const Tensor& h,
                     const Tensor& y, const Tensor& mean, const Tensor& rstd, const char* op) {
  int64_t m = x.size(0), n = x.size(1);
  dispatch_floating(x.dtype(), op, [&]<typename T>() {
    using A = acc_t<T>;
    using S = stat_t<T>;
    const T* xv = x.data<T>();
    const T* resv = res.defined() ? res.data<T>() : nullptr;
    T* hv = res.defined() ? h.data<T>() : nullptr;
    const T* wv = w.data<T>();
    const T* bv = b.defined() ? b.data<T>() : nullptr;
    T* yv = y.data<T>();
    S* mv = mean.data<S>();
    S* rv = rstd.data<S>();
    parallel_range(m, row_grain(n), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* xr = xv + r * n;
        if (resv != nullptr) {
          T* hr = hv + r * n;
          const T* rr = resv + r * n;
          for (int64_t j = 0; j < n; ++j) hr[j] = static_cast<T>(static_cast<A>(xr[j]) + static_cast<A>(rr[j]));
          xr = hr;
        }
        A s = 0;
        for (int64_t j = 0; j < n; ++j) s += static_cast<A>(xr[j]);
        A mu = s / static_cast<A>(n);
        A v = 0;
        for (int64_t j = 0; j < n; ++j) {
          A d = static_cast<A>(xr[j]) - mu;
          v += d * d;
        }
        A rs = A(1) / std::sqrt(v / static_cast<A>(n) + static_cast<A>(eps));
        for (int64_t j = 0; j < n; ++j) {
          A o = (static_cast<A>(xr[j]) - mu) * rs * static_cast<A>(wv[j]);
          if (bv != nullptr) o += static_cast<A>(bv[j]);
          yv[r * n + j] = static_cast<T>(o);
        }
        mv[r] = static_cast<S>(mu);
        rv[r] = static_cast<S>(rs);
      }
    });
  });
}

// Layer-norm backward; when dres is defined it is added to each dx element before the rounding to T.
void layer_norm_backward_rows(const Tensor& dy, const Tensor& dres, const Tensor& x, const Tensor& w,
                              const Tensor& mean, const Tensor& rstd, const Tensor& dx, const Tensor& dw,
                              const Tensor& db, const char* op) {
  int64_t m = x.size(0), n = x.size(1);
  dispatch_floating(x.dtype(), op, [&]<typename T>() {
    using A = acc_t<T>;
    using S = stat_t<T>;
    const T* dyv = dy.data<T>();
    const T* drv = dres.defined() ? dres.data<T>() : nullptr;
    const T* xv = x.data<T>();
    const T* wv = w.data<T>();
    const S* mv = mean.data<S>();
    const S* rv = rstd.data<S>();
    T* dxv = dx.data<T>();
    // dx, row by row: dx = rstd * (w*dy - mean(w*dy) - xhat * mean(w*dy*xhat)) (+ dres).
    parallel_range(m, row_grain(n), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* xr = xv + r * n;
        const T* gr = dyv + r * n;
        A mu = static_cast<A>(mv[r]), rs = static_cast<A>(rv[r]);
        A c1 = 0, c2 = 0;
        for (int64_t j = 0; j < n; ++j) {
          A xhat = (static_cast<A>(xr[j]) - mu) * rs;
          A wdy = static_cast<A>(gr[j]) * static_cast<A>(wv[j]);
          c1 += wdy * xhat;
          c2 += wdy;
        }
        c1 /= static_cast<A>(n);
        c2 /= static_cast<A>(n);
        for (int64_t j = 0; j < n; ++j) {
          A xhat = (static_cast<A>(xr[j]) - mu) * rs;
          A wdy = static_cast<A>(gr[j]) * static_cast<A>(wv[j]);
          A d = rs * (wdy - c2 - xhat * c1);
          if (drv != nullptr) d = static_cast<A>(drv[r * n + j]) + d;
          dxv[r * n + j] = static_cast<T>(d);
        }
      }
    });
    // dw, db: column blocks in parallel, rows summed in order (deterministic); in T, or f32 (G) for the
    // f32 main gradients of half parameters.
    MT_CHECK(dw.dtype() == x.dtype() || (is_half(x.dtype()) && dw.dtype() == DType::kF32), op,
             ": dw must be in the input's dtype or f32 for half inputs, got ", dw.describe());
    MT_CHECK(!db.defined() || db.dtype() == dw.dtype(), op, ": db must have dw's dtype, got ", db.describe());
    auto column_sums = [&]<typename G>() {
      constexpr int64_t kBlock = 64;
      G* dwv = dw.data<G>();
      G* dbv = db.defined() ? db.data<G>() : nullptr;
      parallel_range((n + kBlock - 1) / kBlock, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t blk = lo; blk < hi; ++blk) {
          int64_t j0 = blk * kBlock, j1 = std::min(n, j0 + kBlock);
          A sw[kBlock] = {}, sb[kBlock] = {};
          for (int64_t r = 0; r < m; ++r) {
            A mu = static_cast<A>(mv[r]), rs = static_cast<A>(rv[r]);
            for (int64_t j = j0; j < j1; ++j) {
              A g = static_cast<A>(dyv[r * n + j]);
              sw[j - j0] += g * (static_cast<A>(xv[r * n + j]) - mu) * rs;
              sb[j - j0] += g;
            }
          }
          for (int64_t j = j0; j < j1; ++j) {
            dwv[j] = static_cast<G>(sw[j - j0]);
            if (dbv != nullptr) dbv[j] = static_cast<G>(sb[j - j0]);
          }
        }
      });
    };
    if (dw.dtype() == x.dtype()) column_sums.template operator()<T>();
    else column_sums.template operator()<float>();
  });
}

}  // namespace

void layer_norm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, const Tensor& y,
                        const Tensor& mean, const Tensor& rstd) {
  layer_norm_rows(x, Tensor(), w, b, eps, Tensor(), y, mean, rstd, "layer_norm");
}

void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                         const Tensor& dx, const Tensor& dw, const Tensor& db) {
  layer_norm_backward_rows(dy, Tensor(), x, w, mean, rstd, dx, dw, db, "layer_norm backward");
}

void add_layer_norm_forward(const Tensor& x, const Tensor& r, const Tensor& w, const Tensor& b, double eps,
                            const Tensor& h, const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  layer_norm_rows(x, r, w, b, eps, h, y, mean, rstd, "add_layer_norm");
}

void add_layer_norm_backward(const Tensor& dy, const Tensor& dh, const Tensor& h, const Tensor& w, const Tensor& mean,
                             const Tensor& rstd, const Tensor& dx, const Tensor& dw, const Tensor& db) {
  layer_norm_backward_rows(dy, dh, h, w, mean, rstd, dx, dw, db, "add_layer_norm backward");
}

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t ignore_index, const Tensor& losses,
                           const Tensor& lse) {
  int64_t rows = logits.size(0), v = logits.size(1);
  check_targets(targets, v, ignore_index, "cross_entropy");
  dispatch_floating(logits.dtype(), "cross_entropy", [&]<typename T>() {
    using A = acc_t<T>;
    using S = stat_t<T>;
    const T* x = logits.data<T>();
    const int64_t* t = targets.data<int64_t>();
    S* lv = losses.data<S>();
    S* lsev = lse.data<S>();
    parallel_range(rows, row_grain(v), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* xr = x + r * v;
        A l = scaled_logsumexp<A>(xr, v, A(1));
        lsev[r] = static_cast<S>(l);
        lv[r] = t[r] == ignore_index ? S(0) : static_cast<S>(l - static_cast<A>(xr[t[r]]));
      }
    });
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, int64_t ignore_index, const Tensor& lse,
                            const Tensor& grad_losses, const Tensor& dlogits) {
  int64_t rows = logits.size(0), v = logits.size(1);
  check_targets(targets, v, ignore_index, "cross_entropy backward");
  dispatch_floating(logits.dtype(), "cross_entropy backward", [&]<typename T>() {
    using A = acc_t<T>;
    using S = stat_t<T>;
    const T* x = logits.data<T>();
    const int64_t* t = targets.data<int64_t>();
    const S* lsev = lse.data<S>();
    const S* gl = grad_losses.data<S>();
    T* dx = dlogits.data<T>();
    parallel_range(rows, row_grain(v), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        T* dr = dx + r * v;
        if (t[r] == ignore_index) {
          std::fill(dr, dr + v, T(A(0)));
          continue;
        }
        write_ce_grad_row(x + r * v, dr, v, t[r], static_cast<A>(gl[r]), static_cast<A>(lsev[r]));
      }
    });
  });
}

void cross_entropy_with_grad(const Tensor& logits, const Tensor& targets, int64_t ignore_index, const Tensor& losses) {
  int64_t rows = logits.size(0), v = logits.size(1);
  check_targets(targets, v, ignore_index, "cross_entropy");
  dispatch_floating(logits.dtype(), "cross_entropy", [&]<typename T>() {
    using A = acc_t<T>;
    using S = stat_t<T>;
    T* x = logits.data<T>();
    const int64_t* t = targets.data<int64_t>();
    S* lv = losses.data<S>();
    parallel_range(rows, row_grain(v), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        T* xr = x + r * v;
        if (t[r] == ignore_index) {
          lv[r] = S(0);
          std::fill(xr, xr + v, T(A(0)));
          continue;
        }
        A l = scaled_logsumexp<A>(xr, v, A(1));
        lv[r] = static_cast<S>(l - static_cast<A>(xr[t[r]]));
        write_ce_grad_row(xr, xr, v, t[r], A(1), l);
      }
    });
  });
}

void distillation_forward(const Tensor& student, const Tensor& teacher, double inv_temperature, const Tensor& kl,
                          const Tensor& lse_student, const Tensor& lse_teacher) {
  int64_t rows = student.size(0), v = student.size(1);
  dispatch_floating(student.dtype(), "distillation_loss", [&]<typename T>() {
    using A = acc_t<T>;
    using S = stat_t<T>;
    const T* xs = student.data<T>();
    const T* xt = teacher.data<T>();
    S* klv = kl.data<S>();
    S* lsv = lse_student.data<S>();
    S* ltv = lse_teacher.data<S>();
    A k = static_cast<A>(inv_temperature);
    parallel_range(rows, row_grain(v), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* sr = xs + r * v;
        const T* tr = xt + r * v;
        A ls = scaled_logsumexp<A>(sr, v, k), lt = scaled_logsumexp<A>(tr, v, k);
        // KL = sum_v p_t (log p_t - log p_s) = sum_v p_t (t - s) / T - lt + ls.
        double w = 0;  // f64 as in scaled_logsumexp
        for (int64_t j = 0; j < v; ++j) {
          A pt = std::exp(static_cast<A>(tr[j]) * k - lt);
          if (pt > 0) w += pt * (static_cast<A>(tr[j]) - static_cast<A>(sr[j])) * k;
        }
        lsv[r] = static_cast<S>(ls);
        ltv[r] = static_cast<S>(lt);
        klv[r] = static_cast<S>(static_cast<A>(w) - lt + ls);
      }
    });
  });
}

void distillation_backward(const Tensor& student, const Tensor& teacher, double inv_temperature,
                           const Tensor& lse_student, const Tensor& lse_teacher, const Tensor& grad_kl,
                           const Tensor& dstudent) {
  int64_t rows = student.size(0), v = student.size(1);
  dispatch_floating(student.dtype(), "distillation_loss backward", [&]<typename T>() {
    using A = acc_t<T>;
    using S = stat_t<T>;
    const T* xs = student.data<T>();
    const T* xt = teacher.data<T>();
    const S* lsv = lse_student.data<S>();
    const S* ltv = lse_teacher.data<S>();
    const S* gv = grad_kl.data<S>();
    T* ds = dstudent.data<T>();
    A k = static_cast<A>(inv_temperature);
    parallel_range(rows, row_grain(v), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        A g = static_cast<A>(gv[r]) * k, ls = static_cast<A>(lsv[r]), lt = static_cast<A>(ltv[r]);
        for (int64_t j = r * v; j < (r + 1) * v; ++j) {
          A ps = std::exp(static_cast<A>(xs[j]) * k - ls), pt = std::exp(static_cast<A>(xt[j]) * k - lt);
          ds[j] = static_cast<T>(g * (ps - pt));
        }
      }
    });
  });
}

void dropout(const Tensor& in, double p, uint64_t seed, uint64_t offset, const uint64_t* offset_base, const Tensor& out,
             const Tensor& mask) {
  if (offset_base) offset += *offset_base;
  dispatch_floating(in.dtype(), "dropout", [&]<typename T>() {
    using A = acc_t<T>;
    const T* x = in.data<T>();
    T* y = out.data<T>();
    bool* keep = mask.data<bool>();
    A scale = static_cast<A>(1.0 / (1.0 - p));
    parallel_range(in.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        bool k = static_cast<double>(philox_uniform(seed, offset + i)) >= p;
        keep[i] = k;
        y[i] = static_cast<T>(k ? static_cast<A>(x[i]) * scale : A(0));
      }
    });
  });
}

}  // namespace mt::cpu
