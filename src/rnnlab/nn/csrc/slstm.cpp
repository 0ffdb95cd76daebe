// rnnlab's native CPU time loops of sLSTM (rnnlab.nn.modern.slstm_bptt), forward and backward.
//
// Same inputs and outputs as the TorchScript loops `_forward_loop` and `_backward_loop` of
// slstm_bptt.py (equations and derivative there): per step, the block-diagonal recurrent
// matmul (one small matmul per head: a hand loop for a single batch row, one ATen baddbmm /
// bmm over the heads for more) and then ONE fused pass over (heads, B, d) for all the gate
// arithmetic (exponential gating, stabilizer m, c, n, h in forward; the whole chain rule
// in backward), with no per-step ATen element-wise op. The recurrent weight's gradient is
// left to one bmm over all steps after the backward loop (in Python, as for TorchScript).
//
// Layout (heads first): pre / gates (T, NH, B, 4d) with each head's pre-activations in the
// order i, f, z, o (d each); weight (NH, d, 4d); states (NH, B, d); saved states
// hs, cs, ns, ms (T + 1, NH, B, d); valid (T, B) bool or none: a padded step keeps the state
// (its gradient passes through unchanged and its pre-activations get none).
//
// float: branch-free exp / log1p so the fused passes vectorize (relative error ~2e-7);
// double (gradcheck): the std:: functions.

#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <tuple>
#include <type_traits>
#include <vector>

namespace rnnlab_slstm {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

// e^x in float: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 Taylor polynomial, 2^n
// through the exponent bits; x clamped to [-87, 88].
inline float exp_f(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float y = x * 1.44269504f;
  const int32_t k = static_cast<int32_t>(y + (y < 0.0f ? -0.5f : 0.5f));
  const float kf = static_cast<float>(k);
  const float r = (x - kf * 0.693359375f) + kf * 2.12194440e-4f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const uint32_t bits = (static_cast<uint32_t>(k) + 127u) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// log(1 + e) for e in [0, 1]: 2 atanh(s), s = e / (2 + e) <= 1/3, by its odd series.
inline float log1p_unit_f(float e) {
  const float s = e / (2.0f + e);
  const float s2 = s * s;
  float p = 1.0f / 17.0f;
  p = p * s2 + 1.0f / 15.0f;
  p = p * s2 + 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return 2.0f * s * p;
}

template <typename T>
inline T exp_of(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return exp_f(x);
  } else {
    return std::exp(x);
  }
}

// sigmoid through e^{-|x|} <= 1, selected by sign.
template <typename T>
inline T sigmoid_of(T x) {
  const T e = exp_of<T>(-std::fabs(x));
  const T s = T(1) / (T(1) + e);
  return x >= T(0) ? s : e * s;
}

// log sigmoid(x) = min(x, 0) - log(1 + e^{-|x|}).
template <typename T>
inline T log_sigmoid_of(T x) {
  const T e = exp_of<T>(-std::fabs(x));
  T l;
  if constexpr (std::is_same_v<T, float>) {
    l = log1p_unit_f(e);
  } else {
    l = std::log1p(e);
  }
  return (x < T(0) ? x : T(0)) - l;
}

template <typename T>
inline T tanh_of(T x) {
  if constexpr (std::is_same_v<T, float>) {
    const T e = exp_of<T>(-2.0f * std::fabs(x));  // tanh |x| = (1 - e) / (1 + e)
    const T t = (1.0f - e) / (1.0f + e);
    return x >= 0.0f ? t : -t;
  } else {
    return std::tanh(x);
  }
}

// Batch rows up to this many run the recurrent matmul as a hand loop; more, one ATen call
// (measured at H = 256, 4 heads, one thread: the hand loop wins at B = 1, MKL from B = 4).
constexpr int64_t kHandRows = 1;

// g (4d) += h (d) @ W (d, 4d), W row-major.
template <typename T>
inline void row_times_weight(const T* h, const T* w, T* g, int64_t d) {
  const int64_t g4 = 4 * d;
  for (int64_t k = 0; k < d; ++k) {
    const T hk = h[k];
    const T* wk = w + k * g4;
#pragma omp simd
    for (int64_t j = 0; j < g4; ++j) g[j] += hk * wk[j];
  }
}

// out (d) = g (4d) @ W^T, W (d, 4d) row-major.
template <typename T>
inline void row_times_weight_t(const T* g, const T* w, T* out, int64_t d) {
  const int64_t g4 = 4 * d;
  for (int64_t k = 0; k < d; ++k) {
    const T* wk = w + k * g4;
    T acc = T(0);
#pragma omp simd reduction(+ : acc)
    for (int64_t j = 0; j < g4; ++j) acc += g[j] * wk[j];
    out[k] = acc;
  }
}

// The forget gate's kind is a template argument: no branch in the fused loops (they vectorize).
template <typename T, bool exp_forget>
void forward_impl(const Tensor& pre, const Tensor& weight, const Tensor& valid_t, bool masked,
                  Tensor& hs, Tensor& cs, Tensor& ns, Tensor& ms,
                  Tensor& gates) {
  const int64_t steps = pre.size(0), heads = pre.size(1), batch = pre.size(2);
  const int64_t d = hs.size(3), g4 = 4 * d;
  const int64_t plane = heads * batch * d;  // one step of a state
  const T* pp = pre.data_ptr<T>();
  const T* wp = weight.data_ptr<T>();
  T* gp = gates.data_ptr<T>();
  T* hp = hs.data_ptr<T>();
  T* cp = cs.data_ptr<T>();
  T* np_ = ns.data_ptr<T>();
  T* mp = ms.data_ptr<T>();
  const bool* vp = masked ? valid_t.data_ptr<bool>() : nullptr;
  const bool hand = batch <= kHandRows;
  for (int64_t t = 0; t < steps; ++t) {
    const int64_t gofs = t * heads * batch * g4;
    const T* h_prev = hp + t * plane;
    if (hand) {
      std::memcpy(gp + gofs, pp + gofs, sizeof(T) * heads * batch * g4);
      for (int64_t q = 0; q < heads; ++q)
        for (int64_t b = 0; b < batch; ++b)
          row_times_weight<T>(h_prev + (q * batch + b) * d, wp + q * d * g4,
                              gp + gofs + (q * batch + b) * g4, d);
    } else {
      Tensor g_t = gates[t];
      at::baddbmm_out(g_t, pre[t], hs[t], weight);
    }
    for (int64_t q = 0; q < heads; ++q) {
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t row = q * batch + b;
        const T* c_prev = cp + t * plane + row * d;
        const T* n_prev = np_ + t * plane + row * d;
        const T* m_prev = mp + t * plane + row * d;
        const T* hr = h_prev + row * d;
        T* h_new = hp + (t + 1) * plane + row * d;
        T* c_new = cp + (t + 1) * plane + row * d;
        T* n_new = np_ + (t + 1) * plane + row * d;
        T* m_new = mp + (t + 1) * plane + row * d;
        if (vp != nullptr && !vp[t * batch + b]) {
          std::memcpy(h_new, hr, sizeof(T) * d);
          std::memcpy(c_new, c_prev, sizeof(T) * d);
          std::memcpy(n_new, n_prev, sizeof(T) * d);
          std::memcpy(m_new, m_prev, sizeof(T) * d);
          continue;
        }
        const T* g = gp + gofs + row * g4;
#pragma omp simd
        for (int64_t u = 0; u < d; ++u) {
          const T i_pre = g[u], f_pre = g[d + u];
          T log_f;
          if constexpr (exp_forget) {
            log_f = f_pre;
          } else {
            log_f = log_sigmoid_of<T>(f_pre);
          }
          const T a = log_f + m_prev[u];
          const T m = a > i_pre ? a : i_pre;
          const T ig = exp_of<T>(i_pre - m);
          const T fg = exp_of<T>(a - m);
          const T c = fg * c_prev[u] + ig * tanh_of<T>(g[2 * d + u]);
          const T n = fg * n_prev[u] + ig;
          m_new[u] = m;
          c_new[u] = c;
          n_new[u] = n;
          h_new[u] = sigmoid_of<T>(g[3 * d + u]) * c / n;
        }
      }
    }
  }
}

// Returns hs, cs, ns, ms (T + 1, NH, B, d) and the gate pre-activations (T, NH, B, 4d).
std::vector<Tensor> slstm_forward(const Tensor& pre_in, const Tensor& weight_in,
                                  const Tensor& h0, const Tensor& c0, const Tensor& n0,
                                  const Tensor& m0, const OptTensor& valid, bool exp_forget) {
  TORCH_CHECK(pre_in.dim() == 4 && weight_in.dim() == 3 && h0.dim() == 3,
              "slstm_forward: pre (T, NH, B, 4d), weight (NH, d, 4d), states (NH, B, d)");
  const Tensor pre = pre_in.contiguous();
  const Tensor weight = weight_in.contiguous();
  const int64_t steps = pre.size(0), heads = pre.size(1), batch = pre.size(2);
  const int64_t d = h0.size(2);
  TORCH_CHECK(pre.size(3) == 4 * d && weight.size(0) == heads && weight.size(1) == d &&
                  weight.size(2) == 4 * d && h0.size(0) == heads && h0.size(1) == batch,
              "slstm_forward: shapes do not match");
  auto opts = pre.options();
  Tensor hs = at::empty({steps + 1, heads, batch, d}, opts);
  Tensor cs = at::empty_like(hs), ns = at::empty_like(hs), ms = at::empty_like(hs);
  Tensor gates = at::empty_like(pre);
  hs[0].copy_(h0);
  cs[0].copy_(c0);
  ns[0].copy_(n0);
  ms[0].copy_(m0);
  const bool masked = valid.has_value() && valid->defined();
  Tensor valid_t = masked ? valid->reshape({steps, batch}).to(at::kBool).contiguous() : Tensor();
  AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "slstm_forward", [&] {
    if (exp_forget) {
      forward_impl<scalar_t, true>(pre, weight, valid_t, masked, hs, cs, ns, ms, gates);
    } else {
      forward_impl<scalar_t, false>(pre, weight, valid_t, masked, hs, cs, ns, ms, gates);
    }
  });
  return {hs, cs, ns, ms, gates};
}

template <typename T, bool exp_forget>
void backward_impl(const Tensor& gates, const Tensor& weight, const Tensor& hs,
                   const Tensor& cs, const Tensor& ns, const Tensor& ms, const Tensor& gout,
                   const Tensor& valid_t, bool masked, Tensor& grads,
                   Tensor& dh, Tensor& dc, Tensor& dn, Tensor& dm) {
  const int64_t steps = gates.size(0), heads = gates.size(1), batch = gates.size(2);
  const int64_t d = hs.size(3), g4 = 4 * d;
  const int64_t plane = heads * batch * d;
  const T* gp = gates.data_ptr<T>();
  const T* wp = weight.data_ptr<T>();
  const T* hp = hs.data_ptr<T>();
  const T* cp = cs.data_ptr<T>();
  const T* np_ = ns.data_ptr<T>();
  const T* mp = ms.data_ptr<T>();
  const T* op = gout.data_ptr<T>();
  const bool* vp = masked ? valid_t.data_ptr<bool>() : nullptr;
  T* rp = grads.data_ptr<T>();
  T* dhp = dh.data_ptr<T>();
  T* dcp = dc.data_ptr<T>();
  T* dnp = dn.data_ptr<T>();
  T* dmp = dm.data_ptr<T>();
  const bool hand = batch <= kHandRows;
  Tensor dh_next = hand ? Tensor() : at::empty_like(dh);
  const Tensor weight_t = hand ? Tensor() : weight.transpose(1, 2);
  for (int64_t t = steps - 1; t >= 0; --t) {
    const int64_t gofs = t * heads * batch * g4;
    for (int64_t q = 0; q < heads; ++q) {
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t row = q * batch + b;
        T* r = rp + gofs + row * g4;
        if (vp != nullptr && !vp[t * batch + b]) {  // state kept: gradient passes through
          std::memset(r, 0, sizeof(T) * g4);
          continue;
        }
        const T* g = gp + gofs + row * g4;
        const T* c_prev = cp + t * plane + row * d;
        const T* n_prev = np_ + t * plane + row * d;
        const T* m_prev = mp + t * plane + row * d;
        const T* hr = hp + (t + 1) * plane + row * d;
        const T* cr = cp + (t + 1) * plane + row * d;
        const T* nr = np_ + (t + 1) * plane + row * d;
        const T* mr = mp + (t + 1) * plane + row * d;
        const T* go = op + t * plane + row * d;
        T* dhr = dhp + row * d;
        T* dcr = dcp + row * d;
        T* dnr = dnp + row * d;
        T* dmr = dmp + row * d;
#pragma omp simd
        for (int64_t u = 0; u < d; ++u) {
          const T i_pre = g[u], f_pre = g[d + u];
          const T z = tanh_of<T>(g[2 * d + u]);
          const T o = sigmoid_of<T>(g[3 * d + u]);
          T log_f;
          if constexpr (exp_forget) {
            log_f = f_pre;
          } else {
            log_f = log_sigmoid_of<T>(f_pre);
          }
          const T a = log_f + m_prev[u];
          const T m = mr[u];
          const T ig = exp_of<T>(i_pre - m);
          const T fg = exp_of<T>(a - m);
          const T n = nr[u];
          const T dh_t = dhr[u] + go[u];
          const T dc_t = dcr[u] + dh_t * (o / n);
          const T dn_t = dnr[u] - dh_t * (hr[u] / n);
          r[3 * d + u] = dh_t * (cr[u] / n) * o * (T(1) - o);
          r[2 * d + u] = dc_t * ig * (T(1) - z * z);
          const T df = (dc_t * c_prev[u] + dn_t * n_prev[u]) * fg;
          const T di = (dc_t * z + dn_t) * ig;
          const T dm_t = dmr[u] - di - df;
          const bool to_a = a >= i_pre;
          const T da = to_a ? df + dm_t : df;
          r[u] = to_a ? di : di + dm_t;
          if constexpr (exp_forget) {
            r[d + u] = da;
          } else {
            r[d + u] = da * sigmoid_of<T>(-f_pre);
          }
          dcr[u] = dc_t * fg;
          dnr[u] = dn_t * fg;
          dmr[u] = da;
        }
        if (hand) row_times_weight_t<T>(r, wp + q * d * g4, dhr, d);
      }
    }
    if (!hand) {
      at::bmm_out(dh_next, grads[t], weight_t);
      const T* src = dh_next.data_ptr<T>();
      for (int64_t q = 0; q < heads; ++q)
        for (int64_t b = 0; b < batch; ++b)
          if (vp == nullptr || vp[t * batch + b])
            std::memcpy(dhp + (q * batch + b) * d, src + (q * batch + b) * d, sizeof(T) * d);
    }
  }
}

// Returns the pre-activations' gradient (T, NH, B, 4d) and dh0, dc0, dn0, dm0 (NH, B, d).
std::vector<Tensor> slstm_backward(const Tensor& gates_in, const Tensor& weight_in,
                                   const Tensor& hs_in, const Tensor& cs_in,
                                   const Tensor& ns_in, const Tensor& ms_in,
                                   const Tensor& grad_out, const Tensor& dh_in,
                                   const Tensor& dc_in, const Tensor& dn_in,
                                   const Tensor& dm_in, const OptTensor& valid,
                                   bool exp_forget) {
  const Tensor gates = gates_in.contiguous(), weight = weight_in.contiguous();
  const Tensor hs = hs_in.contiguous(), cs = cs_in.contiguous();
  const Tensor ns = ns_in.contiguous(), ms = ms_in.contiguous();
  const Tensor gout = grad_out.contiguous();
  const int64_t steps = gates.size(0), batch = gates.size(2);
  TORCH_CHECK(gout.sizes() == hs.slice(0, 1).sizes(), "slstm_backward: grad_out shape");
  Tensor dh = dh_in.contiguous().clone(), dc = dc_in.contiguous().clone();
  Tensor dn = dn_in.contiguous().clone(), dm = dm_in.contiguous().clone();
  Tensor grads = at::empty_like(gates);
  const bool masked = valid.has_value() && valid->defined();
  Tensor valid_t = masked ? valid->reshape({steps, batch}).to(at::kBool).contiguous() : Tensor();
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "slstm_backward", [&] {
    if (exp_forget) {
      backward_impl<scalar_t, true>(gates, weight, hs, cs, ns, ms, gout, valid_t, masked, grads,
                                    dh, dc, dn, dm);
    } else {
      backward_impl<scalar_t, false>(gates, weight, hs, cs, ns, ms, gout, valid_t, masked, grads,
                                     dh, dc, dn, dm);
    }
  });
  return {grads, dh, dc, dn, dm};
}

}  // namespace rnnlab_slstm

TORCH_LIBRARY(rnnlab_slstm, m) {
  m.def(
      "slstm_forward(Tensor pre, Tensor weight, Tensor h0, Tensor c0, Tensor n0, Tensor m0, "
      "Tensor? valid, bool exp_forget) -> Tensor[]",
      &rnnlab_slstm::slstm_forward);
  m.def(
      "slstm_backward(Tensor gates, Tensor weight, Tensor hs, Tensor cs, Tensor ns, Tensor ms, "
      "Tensor grad_out, Tensor dh, Tensor dc, Tensor dn, Tensor dm, Tensor? valid, "
      "bool exp_forget) -> Tensor[]",
      &rnnlab_slstm::slstm_backward);
}
