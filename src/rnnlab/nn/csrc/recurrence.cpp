// rnnlab's native CPU recurrence: the time loops of rnnlab.nn.fused_bptt in C++.
//
// The Python autograd Functions in rnnlab/nn/fused_bptt.py allocate every buffer, compute
// the input projections before the loop and the weight gradients after it (a few large
// matrix multiplies). What is left, the loop over time, is here: per step one matrix
// multiply (BLAS through ATen), the vectorized ATen sigmoid/tanh on the gate block, and
// one pass of fused elementwise work in plain loops (gate products, layer norm, zoneout,
// lengths, recurrent dropout). Backward is hand-derived backpropagation through time; it
// needs no transcendental function, only the activations saved by forward.
//
// Conventions (as in fused_bptt.py): tensors are contiguous, time-major ``(T, B, N)``;
// ``valid`` is a ``(T, B)`` bool tensor (false past a sequence's end: the state is held and
// the output is zero); ``zone`` is the weight of the previous value, ``(T, B, N)``:
//   state_t = zone * state_{t-1} + (1 - zone) * new_t.
// Layer norm over the last dimension: y = (a - mean) * rstd * gain + bias,
// rstd = 1 / sqrt(var + eps), var biased.

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

namespace rnnlab_native {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

constexpr double kLayerNormEps = 1e-5;

template <typename T>
T* data_or_null(const OptTensor& t) {
  return t.has_value() && t->defined() ? t->data_ptr<T>() : nullptr;
}

template <typename T>
T* step_or_null(const OptTensor& t, int64_t step, int64_t stride) {
  T* base = data_or_null<T>(t);
  return base == nullptr ? nullptr : base + step * stride;
}

bool has(const OptTensor& t) { return t.has_value() && t->defined(); }

// Elements per thread below which a step's elementwise work runs on one thread: per step it is
// small (B x G*H), and waking a second thread costs more than it saves (measured on 2 cores:
// an LSTM with H=256, B=32 ran 1.3x slower with a 16K grain than serially).
constexpr int64_t kParallelGrain = 65536;

// Runs fn(row_begin, row_end) over `rows` rows of `width` elements, in parallel when large.
template <typename F>
void for_rows(int64_t rows, int64_t width, const F& fn) {
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(width, 1));
  at::parallel_for(0, rows, grain, fn);
}

// ----------------------------------------------------------------------------- layer norm

// out = LN(a) row by row (rows of n), with the statistics kept for backward.
template <typename T>
void layer_norm_rows(const T* a, T* out, T* mean, T* rstd, const T* gain, const T* bias,
                     int64_t rows, int64_t n) {
  using acc_t = at::opmath_type<T>;
  for_rows(rows, n, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* x = a + r * n;
      T* y = out + r * n;
      acc_t sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < n; ++j) sum += x[j];
      const acc_t mu = sum / n;
      acc_t squares = 0;
#pragma omp simd reduction(+ : squares)
      for (int64_t j = 0; j < n; ++j) squares += (x[j] - mu) * (x[j] - mu);
      const acc_t inv = acc_t(1) / std::sqrt(squares / n + acc_t(kLayerNormEps));
      const T m = static_cast<T>(mu), s = static_cast<T>(inv);
      mean[r] = m;
      rstd[r] = s;
      for (int64_t j = 0; j < n; ++j) {
        T v = (x[j] - m) * s;
        if (gain != nullptr) v *= gain[j];
        if (bias != nullptr) v += bias[j];
        y[j] = v;
      }
    }
  });
}

// Input gradient of layer norm: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gain.
// With `grad_gain`/`grad_bias` given, also adds sum_rows dy * xhat and sum_rows dy to them.
template <typename T>
void layer_norm_input_grad(const T* dy, const T* a, const T* mean, const T* rstd, const T* gain,
                           T* dx, int64_t rows, int64_t n, double* grad_gain, double* grad_bias) {
  using acc_t = at::opmath_type<T>;
  for_rows(rows, n, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* g_in = dy + r * n;
      const T* x = a + r * n;
      T* out = dx + r * n;
      const T m = mean[r], s = rstd[r];
      acc_t sum_g = 0, sum_gx = 0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
      for (int64_t j = 0; j < n; ++j) {
        const T g = gain != nullptr ? g_in[j] * gain[j] : g_in[j];
        sum_g += g;
        sum_gx += g * ((x[j] - m) * s);
      }
      const T mean_g = static_cast<T>(sum_g / n), mean_gx = static_cast<T>(sum_gx / n);
      for (int64_t j = 0; j < n; ++j) {
        const T g = gain != nullptr ? g_in[j] * gain[j] : g_in[j];
        out[j] = s * (g - mean_g - (x[j] - m) * s * mean_gx);
      }
    }
  });
  if (grad_gain == nullptr && grad_bias == nullptr) return;
  // Serial (every row adds into the same vectors): this step's sums over the rows in T, then
  // into the double accumulators that sum over steps.
  std::vector<T> part_gain(n, T(0)), part_bias(n, T(0));
  T* pg = part_gain.data();
  T* pb = part_bias.data();
  for (int64_t r = 0; r < rows; ++r) {
    const T* g_in = dy + r * n;
    const T* x = a + r * n;
    const T m = mean[r], s = rstd[r];
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      pg[j] += g_in[j] * ((x[j] - m) * s);
      pb[j] += g_in[j];
    }
  }
  if (grad_gain != nullptr) {
    for (int64_t j = 0; j < n; ++j) grad_gain[j] += static_cast<double>(pg[j]);
  }
  if (grad_bias != nullptr) {
    for (int64_t j = 0; j < n; ++j) grad_bias[j] += static_cast<double>(pb[j]);
  }
}

// Parameter-gradient accumulators of one layer norm (double, summed over steps and batch).
struct NormGrads {
  std::vector<double> gain, bias;
  NormGrads(int64_t n, bool want_gain, bool want_bias)
      : gain(want_gain ? n : 0, 0.0), bias(want_bias ? n : 0, 0.0) {}
  double* gain_data() { return gain.empty() ? nullptr : gain.data(); }
  double* bias_data() { return bias.empty() ? nullptr : bias.data(); }
  // Writes the sums into the optional output tensors.
  void store(const OptTensor& gain_out, const OptTensor& bias_out) const {
    if (has(gain_out)) write(gain, *gain_out);
    if (has(bias_out)) write(bias, *bias_out);
  }

 private:
  static void write(const std::vector<double>& sums, const Tensor& out) {
    Tensor source = at::from_blob(const_cast<double*>(sums.data()), {static_cast<int64_t>(sums.size())},
                                  at::TensorOptions().dtype(at::kDouble));
    out.copy_(source);
  }
};

// ----------------------------------------------------------------------------- state update

// Zoneout, then lengths: state <- valid ? mix : state; out <- valid ? mix : 0.
template <typename T>
void mix_and_hold(const T* fresh, T* state, T* out, const T* zone, const bool* valid,
                  int64_t rows, int64_t n) {
  for_rows(rows, n, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const bool inside = valid == nullptr || valid[r];
      const int64_t o = r * n;
      for (int64_t j = 0; j < n; ++j) {
        const T prev = state[o + j];
        T mixed = fresh[o + j];
        if (zone != nullptr) mixed = zone[o + j] * prev + (T(1) - zone[o + j]) * mixed;
        if (inside) state[o + j] = mixed;
        if (out != nullptr) out[o + j] = inside ? mixed : T(0);
      }
    }
  });
}

// Backward of mix_and_hold: the gradient of the step's new value and of the previous state.
template <typename T>
void unmix(const T* grad_state, const T* grad_out, const T* zone, const bool* valid, T* d_new,
           T* d_prev, int64_t rows, int64_t n) {
  for_rows(rows, n, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const bool inside = valid == nullptr || valid[r];
      const int64_t o = r * n;
      for (int64_t j = 0; j < n; ++j) {
        const T g = grad_state[o + j];
        const T total = grad_out != nullptr ? g + grad_out[o + j] : g;
        T mixed = inside ? total : T(0);
        T prev = inside ? T(0) : g;
        if (zone != nullptr) {
          prev += zone[o + j] * mixed;
          mixed = (T(1) - zone[o + j]) * mixed;
        }
        d_new[o + j] = mixed;
        d_prev[o + j] = prev;
      }
    }
  });
}

// y = a * mask (mask may be null: plain copy).
template <typename T>
void masked_copy(const T* a, const T* mask, T* y, int64_t count) {
  for_rows(count, 1, [&](int64_t begin, int64_t end) {
    if (mask == nullptr) {
      std::copy(a + begin, a + end, y + begin);
    } else {
      for (int64_t i = begin; i < end; ++i) y[i] = a[i] * mask[i];
    }
  });
}

// grad = d_prev + d_rec * mask (mask may be null).
template <typename T>
void add_masked(const T* d_prev, const T* d_rec, const T* mask, T* grad, int64_t count) {
  for_rows(count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T rec = mask != nullptr ? d_rec[i] * mask[i] : d_rec[i];
      grad[i] = d_prev[i] + rec;
    }
  });
}

// out_t = gx_t + bias + h W^T, or with layer norm out_t = gx_t + bias + LN(a), a = h W^T
// (kept in a_all[t] for backward when a_all is given, else computed in `scratch`, and
// backward recomputes it). `gx_t` and `bias` may be null (then 0).
template <typename T>
void recurrent_projection(Tensor out_t, const T* gx_t, const T* bias, const Tensor& h_rec,
                          const Tensor& w_t, bool layer_norm, const OptTensor& a_all,
                          const OptTensor& mean_all, const OptTensor& rstd_all,
                          const OptTensor& ln_w, const OptTensor& ln_b, int64_t t,
                          const Tensor& scratch) {
  const int64_t rows = out_t.size(0), n = out_t.size(1);
  T* y = out_t.data_ptr<T>();
  auto add_inputs = [&](bool accumulate) {
    if (gx_t == nullptr && bias == nullptr && accumulate) return;
    for_rows(rows, n, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        T* row = y + r * n;
        const T* g = gx_t == nullptr ? nullptr : gx_t + r * n;
        for (int64_t j = 0; j < n; ++j) {
          T v = accumulate ? row[j] : T(0);
          if (g != nullptr) v += g[j];
          if (bias != nullptr) v += bias[j];
          row[j] = v;
        }
      }
    });
  };
  if (!layer_norm) {
    if (gx_t == nullptr && bias == nullptr) {
      at::mm_out(out_t, h_rec, w_t);
    } else {
      add_inputs(false);
      out_t.addmm_(h_rec, w_t);
    }
    return;
  }
  Tensor a_t = has(a_all) ? a_all->select(0, t) : scratch;
  at::mm_out(a_t, h_rec, w_t);
  layer_norm_rows<T>(a_t.data_ptr<T>(), y, mean_all->data_ptr<T>() + t * rows,
                     rstd_all->data_ptr<T>() + t * rows, data_or_null<T>(ln_w),
                     data_or_null<T>(ln_b), rows, n);
  add_inputs(true);
}

// Backward of one step's recurrent projection: d_a = LN'(d_pre) (d_pre itself without layer
// norm), then grad = d_prev + (d_a W_hh) * mask. d_pre_all is (T, B, G*H); d_rec a buffer.
template <typename T>
void recurrent_projection_backward(const Tensor& d_pre_all, const OptTensor& d_a_all,
                                   bool layer_norm, const OptTensor& a_all,
                                   const OptTensor& mean_all, const OptTensor& rstd_all,
                                   const OptTensor& ln_w, NormGrads& norm_grads,
                                   const Tensor& w_hh, Tensor d_rec, const T* d_prev,
                                   const OptTensor& rec_mask, T* grad, int64_t t) {
  const int64_t rows = d_pre_all.size(1), width = d_pre_all.size(2);
  Tensor d_a_t = d_pre_all.select(0, t);
  if (layer_norm) {
    d_a_t = d_a_all->select(0, t);
    layer_norm_input_grad<T>(d_pre_all.data_ptr<T>() + t * rows * width,
                             a_all->data_ptr<T>() + t * rows * width,
                             mean_all->data_ptr<T>() + t * rows,
                             rstd_all->data_ptr<T>() + t * rows, data_or_null<T>(ln_w),
                             d_a_t.data_ptr<T>(), rows, width, norm_grads.gain_data(),
                             norm_grads.bias_data());
  }
  at::mm_out(d_rec, d_a_t, w_hh);
  add_masked<T>(d_prev, d_rec.data_ptr<T>(), data_or_null<T>(rec_mask), grad, d_rec.numel());
}

int64_t step_at(int64_t s, int64_t steps, bool reverse) { return reverse ? steps - 1 - s : s; }

// ----------------------------------------------------------------------------- simple RNN

Tensor rnn_forward(const Tensor& gx, const Tensor& h0, const Tensor& w_hh, const OptTensor& b_hh,
                   const OptTensor& ln_w, const OptTensor& ln_b, const OptTensor& rec_mask,
                   const OptTensor& zone, const OptTensor& valid, bool relu, bool reverse,
                   bool layer_norm, Tensor out, Tensor acts, const OptTensor& prevs, const OptTensor& a_all,
                   const OptTensor& mean_all, const OptTensor& rstd_all) {
  const int64_t steps = gx.size(0), rows = gx.size(1), hidden = gx.size(2);
  const int64_t plane = rows * hidden;
  Tensor h = h0.contiguous().clone();
  Tensor h_rec = has(rec_mask) ? at::empty_like(h) : h;
  const Tensor w_t = w_hh.t().contiguous();  // (H_in, G*H): a plain NN matrix multiply per step
  const Tensor scratch =
      layer_norm && !has(a_all) ? at::empty({rows, hidden}, gx.options()) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "rnnlab_rnn_forward", [&] {
    using T = scalar_t;
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = step_at(s, steps, reverse);
      T* h_data = h.data_ptr<T>();
      if (has(prevs)) std::copy(h_data, h_data + plane, prevs->data_ptr<T>() + t * plane);
      if (has(rec_mask)) masked_copy<T>(h_data, rec_mask->data_ptr<T>(), h_rec.data_ptr<T>(), plane);
      Tensor act_t = acts.select(0, t);
      recurrent_projection<T>(act_t, gx.data_ptr<T>() + t * plane, data_or_null<T>(b_hh), h_rec,
                              w_t, layer_norm, a_all, mean_all, rstd_all, ln_w, ln_b, t, scratch);
      if (relu) {
        act_t.clamp_min_(0);
      } else {
        act_t.tanh_();
      }
      mix_and_hold<T>(act_t.data_ptr<T>(), h_data, out.data_ptr<T>() + t * plane,
                      step_or_null<T>(zone, t, plane), step_or_null<bool>(valid, t, rows), rows,
                      hidden);
    }
  });
  return h;
}

Tensor rnn_backward(const Tensor& d_out, const Tensor& d_h, const Tensor& w_hh,
                    const OptTensor& ln_w, const OptTensor& rec_mask, const OptTensor& zone,
                    const OptTensor& valid, const Tensor& acts, const OptTensor& a_all,
                    const OptTensor& mean_all, const OptTensor& rstd_all, bool relu, bool reverse,
                    bool layer_norm, Tensor d_pre_all, const OptTensor& d_a_all,
                    const OptTensor& d_ln_w, const OptTensor& d_ln_b) {
  const int64_t steps = acts.size(0), rows = acts.size(1), hidden = acts.size(2);
  const int64_t plane = rows * hidden;
  NormGrads norm_grads(hidden, has(d_ln_w), has(d_ln_b));
  Tensor grad = d_h.contiguous().clone();
  Tensor d_new = at::empty_like(grad), d_prev = at::empty_like(grad), d_rec = at::empty_like(grad);
  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "rnnlab_rnn_backward", [&] {
    using T = scalar_t;
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = step_at(s, steps, !reverse);
      unmix<T>(grad.data_ptr<T>(), d_out.data_ptr<T>() + t * plane, step_or_null<T>(zone, t, plane),
               step_or_null<bool>(valid, t, rows), d_new.data_ptr<T>(), d_prev.data_ptr<T>(),
               rows, hidden);
      T* d_pre = d_pre_all.data_ptr<T>() + t * plane;
      const T* act = acts.data_ptr<T>() + t * plane;
      const T* dn = d_new.data_ptr<T>();
      for_rows(plane, 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const T slope = relu ? (act[i] > T(0) ? T(1) : T(0)) : T(1) - act[i] * act[i];
          d_pre[i] = dn[i] * slope;
        }
      });
      recurrent_projection_backward<T>(d_pre_all, d_a_all, layer_norm, a_all, mean_all,
                                       rstd_all, ln_w, norm_grads, w_hh, d_rec,
                                       d_prev.data_ptr<T>(), rec_mask, grad.data_ptr<T>(), t);
    }
  });
  norm_grads.store(d_ln_w, d_ln_b);
  return grad;
}

// ----------------------------------------------------------------------------- LSTM

std::vector<Tensor> lstm_forward(
    const Tensor& gx, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
    const OptTensor& b_hh, const OptTensor& ln_w, const OptTensor& ln_b, const OptTensor& lnc_w, const OptTensor& lnc_b,
    const OptTensor& w_hr, const OptTensor& rec_mask, const OptTensor& zone_h,
    const OptTensor& zone_c, const OptTensor& valid, bool reverse, bool layer_norm, Tensor out,
    Tensor gates, Tensor tanh_c, const OptTensor& h_prevs, Tensor c_prevs, const OptTensor& c_new_all,
    const OptTensor& c_mean, const OptTensor& c_rstd, const OptTensor& a_all,
    const OptTensor& mean_all, const OptTensor& rstd_all) {
  const int64_t steps = gx.size(0), rows = gx.size(1), width = gx.size(2);
  const int64_t hidden = width / 4, out_size = h0.size(1);
  const int64_t plane_h = rows * hidden, plane_p = rows * out_size, plane_g = rows * width;
  Tensor h = h0.contiguous().clone();
  Tensor c = c0.contiguous().clone();
  Tensor h_rec = has(rec_mask) ? at::empty_like(h) : h;
  Tensor c_buffer = layer_norm ? Tensor() : at::empty_like(c);
  Tensor h_new = at::empty_like(c);  // o * tanh(c), (B, H)
  Tensor h_proj = has(w_hr) ? at::empty_like(h) : Tensor();
  const Tensor w_t = w_hh.t().contiguous();  // (H_in, G*H): a plain NN matrix multiply per step
  const Tensor w_hr_t = has(w_hr) ? w_hr->t() : Tensor();
  const Tensor scratch =
      layer_norm && !has(a_all) ? at::empty({rows, width}, gx.options()) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "rnnlab_lstm_forward", [&] {
    using T = scalar_t;
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = step_at(s, steps, reverse);
      T* h_data = h.data_ptr<T>();
      T* c_data = c.data_ptr<T>();
      if (has(h_prevs)) std::copy(h_data, h_data + plane_p, h_prevs->data_ptr<T>() + t * plane_p);
      std::copy(c_data, c_data + plane_h, c_prevs.data_ptr<T>() + t * plane_h);
      if (has(rec_mask)) masked_copy<T>(h_data, rec_mask->data_ptr<T>(), h_rec.data_ptr<T>(), plane_p);
      Tensor gate_t = gates.select(0, t);  // (B, 4H): pre-activations, then activations
      recurrent_projection<T>(gate_t, gx.data_ptr<T>() + t * plane_g, data_or_null<T>(b_hh),
                              h_rec, w_t, layer_norm, a_all, mean_all, rstd_all, ln_w, ln_b, t,
                              scratch);
      gate_t.narrow(1, 2 * hidden, hidden).tanh_();
      gate_t.narrow(1, 0, 2 * hidden).sigmoid_();
      gate_t.narrow(1, 3 * hidden, hidden).sigmoid_();
      Tensor c_new_t = layer_norm ? c_new_all->select(0, t) : c_buffer;
      const T* g = gate_t.data_ptr<T>();
      T* cn = c_new_t.data_ptr<T>();
      for_rows(rows, hidden, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const T* gi = g + r * width;
          const T* gf = gi + hidden;
          const T* gg = gi + 2 * hidden;
          const T* cp = c_data + r * hidden;
          T* y = cn + r * hidden;
          for (int64_t j = 0; j < hidden; ++j) y[j] = gf[j] * cp[j] + gi[j] * gg[j];
        }
      });
      Tensor tanh_c_t = tanh_c.select(0, t);
      if (layer_norm) {
        layer_norm_rows<T>(cn, tanh_c_t.data_ptr<T>(), c_mean->data_ptr<T>() + t * rows,
                           c_rstd->data_ptr<T>() + t * rows, data_or_null<T>(lnc_w),
                           data_or_null<T>(lnc_b), rows, hidden);
        tanh_c_t.tanh_();
      } else {
        at::tanh_out(tanh_c_t, c_new_t);
      }
      const T* tc = tanh_c_t.data_ptr<T>();
      T* hn = h_new.data_ptr<T>();
      for_rows(rows, hidden, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const T* go = g + r * width + 3 * hidden;
          for (int64_t j = 0; j < hidden; ++j) hn[r * hidden + j] = go[j] * tc[r * hidden + j];
        }
      });
      const T* h_fresh = hn;
      if (has(w_hr)) {
        at::mm_out(h_proj, h_new, w_hr_t);
        h_fresh = h_proj.data_ptr<T>();
      }
      const bool* v = step_or_null<bool>(valid, t, rows);
      mix_and_hold<T>(cn, c_data, nullptr, step_or_null<T>(zone_c, t, plane_h), v, rows, hidden);
      mix_and_hold<T>(h_fresh, h_data, out.data_ptr<T>() + t * plane_p,
                      step_or_null<T>(zone_h, t, plane_p), v, rows, out_size);
    }
  });
  return {h, c};
}

std::vector<Tensor> lstm_backward(
    const Tensor& d_out, const Tensor& d_h, const Tensor& d_c, const Tensor& w_hh,
    const OptTensor& ln_w, const OptTensor& lnc_w, const OptTensor& w_hr,
    const OptTensor& rec_mask, const OptTensor& zone_h, const OptTensor& zone_c,
    const OptTensor& valid, const Tensor& gates, const Tensor& tanh_c, const Tensor& c_prevs,
    const OptTensor& c_new_all, const OptTensor& c_mean, const OptTensor& c_rstd,
    const OptTensor& a_all, const OptTensor& mean_all, const OptTensor& rstd_all, bool reverse,
    bool layer_norm, Tensor d_pre_all, const OptTensor& d_a_all, const OptTensor& d_lnc_all,
    const OptTensor& d_hnew_all, const OptTensor& d_ln_w, const OptTensor& d_ln_b,
    const OptTensor& d_lnc_w, const OptTensor& d_lnc_b) {
  const int64_t steps = gates.size(0), rows = gates.size(1), width = gates.size(2);
  const int64_t hidden = width / 4, out_size = d_h.size(1);
  const int64_t plane_h = rows * hidden, plane_p = rows * out_size, plane_g = rows * width;
  Tensor grad_h = d_h.contiguous().clone();
  Tensor grad_c = d_c.contiguous().clone();
  Tensor dh_new = at::empty_like(grad_h), dh_prev = at::empty_like(grad_h);
  Tensor dc_new = at::empty_like(grad_c), dc_prev = at::empty_like(grad_c);
  Tensor d_rec = at::empty_like(grad_h);
  Tensor dh_cell = has(w_hr) ? at::empty_like(grad_c) : dh_new;  // grad of o * tanh(c), (B, H)
  Tensor d_ln_c = layer_norm ? at::empty_like(grad_c) : Tensor();
  NormGrads norm_grads(width, has(d_ln_w), has(d_ln_b));
  NormGrads cell_norm_grads(hidden, has(d_lnc_w), has(d_lnc_b));
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "rnnlab_lstm_backward", [&] {
    using T = scalar_t;
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = step_at(s, steps, !reverse);
      const bool* v = step_or_null<bool>(valid, t, rows);
      unmix<T>(grad_h.data_ptr<T>(), d_out.data_ptr<T>() + t * plane_p,
               step_or_null<T>(zone_h, t, plane_p), v, dh_new.data_ptr<T>(),
               dh_prev.data_ptr<T>(), rows, out_size);
      unmix<T>(grad_c.data_ptr<T>(), nullptr, step_or_null<T>(zone_c, t, plane_h), v,
               dc_new.data_ptr<T>(), dc_prev.data_ptr<T>(), rows, hidden);
      if (has(w_hr)) {
        T* keep = d_hnew_all->data_ptr<T>() + t * plane_p;
        std::copy(dh_new.data_ptr<T>(), dh_new.data_ptr<T>() + plane_p, keep);
        at::mm_out(dh_cell, dh_new, *w_hr);
      }
      const T* g = gates.data_ptr<T>() + t * plane_g;
      const T* tc = tanh_c.data_ptr<T>() + t * plane_h;
      const T* dH = dh_cell.data_ptr<T>();
      T* dC = dc_new.data_ptr<T>();
      if (layer_norm) {
        T* d_normed = d_lnc_all->data_ptr<T>() + t * plane_h;
        for_rows(rows, hidden, [&](int64_t begin, int64_t end) {
          for (int64_t r = begin; r < end; ++r) {
            const T* go = g + r * width + 3 * hidden;
            for (int64_t j = 0; j < hidden; ++j) {
              const int64_t i = r * hidden + j;
              d_normed[i] = dH[i] * (go[j] * (T(1) - tc[i] * tc[i]));
            }
          }
        });
        layer_norm_input_grad<T>(d_normed, c_new_all->data_ptr<T>() + t * plane_h,
                                 c_mean->data_ptr<T>() + t * rows, c_rstd->data_ptr<T>() + t * rows,
                                 data_or_null<T>(lnc_w), d_ln_c.data_ptr<T>(), rows, hidden,
                                 cell_norm_grads.gain_data(), cell_norm_grads.bias_data());
        const T* extra = d_ln_c.data_ptr<T>();
        for_rows(plane_h, 1, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) dC[i] += extra[i];
        });
      } else {
        for_rows(rows, hidden, [&](int64_t begin, int64_t end) {
          for (int64_t r = begin; r < end; ++r) {
            const T* go = g + r * width + 3 * hidden;
            for (int64_t j = 0; j < hidden; ++j) {
              const int64_t i = r * hidden + j;
              dC[i] += dH[i] * (go[j] * (T(1) - tc[i] * tc[i]));
            }
          }
        });
      }
      T* d_pre = d_pre_all.data_ptr<T>() + t * plane_g;
      const T* cp = c_prevs.data_ptr<T>() + t * plane_h;
      T* g_c = grad_c.data_ptr<T>();
      const T* dcp = dc_prev.data_ptr<T>();
      for_rows(rows, width, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const T* gi = g + r * width;
          const T* gf = gi + hidden;
          const T* gg = gi + 2 * hidden;
          const T* go = gi + 3 * hidden;
          T* di = d_pre + r * width;
          T* df = di + hidden;
          T* dg = di + 2 * hidden;
          T* dout = di + 3 * hidden;
          for (int64_t j = 0; j < hidden; ++j) {
            const int64_t i = r * hidden + j;
            const T dc = dC[i];
            di[j] = dc * (gg[j] * (gi[j] * (T(1) - gi[j])));
            df[j] = dc * (cp[i] * (gf[j] * (T(1) - gf[j])));
            dg[j] = dc * (gi[j] * (T(1) - gg[j] * gg[j]));
            dout[j] = dH[i] * (tc[i] * (go[j] * (T(1) - go[j])));
            g_c[i] = dcp[i] + dc * gf[j];
          }
        }
      });
      recurrent_projection_backward<T>(d_pre_all, d_a_all, layer_norm, a_all, mean_all,
                                       rstd_all, ln_w, norm_grads, w_hh, d_rec,
                                       dh_prev.data_ptr<T>(), rec_mask, grad_h.data_ptr<T>(), t);
    }
  });
  norm_grads.store(d_ln_w, d_ln_b);
  cell_norm_grads.store(d_lnc_w, d_lnc_b);
  return {grad_h, grad_c};
}

// ----------------------------------------------------------------------------- GRU

Tensor gru_forward(const Tensor& gx_all, const Tensor& h0, const Tensor& w_hh,
                   const OptTensor& b_hh, const OptTensor& ln_w, const OptTensor& ln_b,
                   const OptTensor& rec_mask, const OptTensor& zone, const OptTensor& valid,
                   bool reverse, bool layer_norm, Tensor out, Tensor rz_all, Tensor n_all,
                   Tensor hn_all, const OptTensor& prevs, const OptTensor& a_all, const OptTensor& mean_all,
                   const OptTensor& rstd_all) {
  const int64_t steps = gx_all.size(0), rows = gx_all.size(1), width = gx_all.size(2);
  const int64_t hidden = width / 3;
  const int64_t plane = rows * hidden;
  Tensor h = h0.contiguous().clone();
  Tensor h_rec = has(rec_mask) ? at::empty_like(h) : h;
  Tensor gh = at::empty({rows, width}, gx_all.options());
  Tensor h_new = at::empty_like(h);
  const Tensor w_t = w_hh.t().contiguous();  // (H_in, G*H): a plain NN matrix multiply per step
  const Tensor scratch =
      layer_norm && !has(a_all) ? at::empty({rows, width}, gx_all.options()) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(gx_all.scalar_type(), "rnnlab_gru_forward", [&] {
    using T = scalar_t;
    const T* bias = data_or_null<T>(b_hh);  // r and z outside the reset product, n inside
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = step_at(s, steps, reverse);
      T* h_data = h.data_ptr<T>();
      if (has(prevs)) std::copy(h_data, h_data + plane, prevs->data_ptr<T>() + t * plane);
      if (has(rec_mask)) masked_copy<T>(h_data, rec_mask->data_ptr<T>(), h_rec.data_ptr<T>(), plane);
      recurrent_projection<T>(gh, nullptr, nullptr, h_rec, w_t, layer_norm, a_all, mean_all,
                              rstd_all, ln_w, ln_b, t, scratch);
      const T* gx = gx_all.data_ptr<T>() + t * rows * width;
      const T* gr = gh.data_ptr<T>();
      Tensor rz_t = rz_all.select(0, t);
      T* rz = rz_t.data_ptr<T>();
      for_rows(rows, 2 * hidden, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          for (int64_t j = 0; j < 2 * hidden; ++j) {
            const T b = bias != nullptr ? bias[j] : T(0);
            rz[r * 2 * hidden + j] = gx[r * width + j] + (gr[r * width + j] + b);
          }
        }
      });
      rz_t.sigmoid_();
      Tensor n_t = n_all.select(0, t);
      T* n = n_t.data_ptr<T>();
      T* hn = hn_all.data_ptr<T>() + t * plane;
      for_rows(rows, hidden, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          for (int64_t j = 0; j < hidden; ++j) {
            const int64_t i = r * hidden + j;
            T value = gr[r * width + 2 * hidden + j];
            if (bias != nullptr) value += bias[2 * hidden + j];
            hn[i] = value;
            n[i] = gx[r * width + 2 * hidden + j] + rz[r * 2 * hidden + j] * value;
          }
        }
      });
      n_t.tanh_();
      T* fresh = h_new.data_ptr<T>();
      for_rows(rows, hidden, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          for (int64_t j = 0; j < hidden; ++j) {
            const int64_t i = r * hidden + j;
            const T z = rz[r * 2 * hidden + hidden + j];
            fresh[i] = n[i] + z * (h_data[i] - n[i]);
          }
        }
      });
      mix_and_hold<T>(fresh, h_data, out.data_ptr<T>() + t * plane, step_or_null<T>(zone, t, plane),
                      step_or_null<bool>(valid, t, rows), rows, hidden);
    }
  });
  return h;
}

Tensor gru_backward(const Tensor& d_out, const Tensor& d_h, const Tensor& w_hh,
                    const OptTensor& ln_w, const OptTensor& rec_mask, const OptTensor& zone,
                    const OptTensor& valid, const Tensor& rz_all, const Tensor& n_all,
                    const Tensor& hn_all, const Tensor& prevs, const OptTensor& a_all,
                    const OptTensor& mean_all, const OptTensor& rstd_all, bool reverse,
                    bool layer_norm, Tensor d_gx_all, Tensor d_gh_all, const OptTensor& d_a_all,
                    const OptTensor& d_ln_w, const OptTensor& d_ln_b) {
  const int64_t steps = n_all.size(0), rows = n_all.size(1), hidden = n_all.size(2);
  const int64_t width = 3 * hidden, plane = rows * hidden;
  NormGrads norm_grads(width, has(d_ln_w), has(d_ln_b));
  Tensor grad = d_h.contiguous().clone();
  Tensor d_new = at::empty_like(grad), d_prev = at::empty_like(grad), d_rec = at::empty_like(grad);
  AT_DISPATCH_FLOATING_TYPES(n_all.scalar_type(), "rnnlab_gru_backward", [&] {
    using T = scalar_t;
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = step_at(s, steps, !reverse);
      unmix<T>(grad.data_ptr<T>(), d_out.data_ptr<T>() + t * plane, step_or_null<T>(zone, t, plane),
               step_or_null<bool>(valid, t, rows), d_new.data_ptr<T>(), d_prev.data_ptr<T>(),
               rows, hidden);
      const T* rz = rz_all.data_ptr<T>() + t * 2 * plane;
      const T* n = n_all.data_ptr<T>() + t * plane;
      const T* hn = hn_all.data_ptr<T>() + t * plane;
      const T* prev = prevs.data_ptr<T>() + t * plane;
      T* dgx = d_gx_all.data_ptr<T>() + t * rows * width;
      T* dgh = d_gh_all.data_ptr<T>() + t * rows * width;
      const T* dn = d_new.data_ptr<T>();
      T* dp = d_prev.data_ptr<T>();
      for_rows(rows, width, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          for (int64_t j = 0; j < hidden; ++j) {
            const int64_t i = r * hidden + j;
            const T rr = rz[r * 2 * hidden + j];
            const T z = rz[r * 2 * hidden + hidden + j];
            const T d = dn[i];
            const T d_n_pre = d * ((T(1) - z) * (T(1) - n[i] * n[i]));
            const T d_r_pre = d_n_pre * (hn[i] * (rr * (T(1) - rr)));
            const T d_z_pre = d * ((prev[i] - n[i]) * (z * (T(1) - z)));
            const int64_t o = r * width;
            dgx[o + j] = d_r_pre;
            dgx[o + hidden + j] = d_z_pre;
            dgx[o + 2 * hidden + j] = d_n_pre;
            dgh[o + j] = d_r_pre;
            dgh[o + hidden + j] = d_z_pre;
            dgh[o + 2 * hidden + j] = d_n_pre * rr;
            dp[i] += d * z;
          }
        }
      });
      recurrent_projection_backward<T>(d_gh_all, d_a_all, layer_norm, a_all, mean_all, rstd_all,
                                       ln_w, norm_grads, w_hh, d_rec, dp, rec_mask,
                                       grad.data_ptr<T>(), t);
    }
  });
  norm_grads.store(d_ln_w, d_ln_b);
  return grad;
}

// ----------------------------------------------------------------------------- masks

// SplitMix64's finalizer: a bijective mix of 64 bits (Steele, Lea and Flood 2014).
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Bernoulli(p) draws, 1 with probability p: element i is 1 where the top 32 bits of
// mix64(seed + (i + 1) * golden) fall below p * 2^32. Counter-based, so the result depends
// on (seed, shape, p) only, not on the number of threads.
Tensor bernoulli_mask(at::IntArrayRef shape, double p, int64_t seed, at::ScalarType dtype) {
  Tensor out = at::empty(shape, at::TensorOptions().dtype(dtype));
  const int64_t count = out.numel();
  const uint64_t threshold = static_cast<uint64_t>(std::llround(std::clamp(p, 0.0, 1.0) * 4294967296.0));
  const uint64_t key = static_cast<uint64_t>(seed);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBool, dtype, "rnnlab_bernoulli_mask", [&] {
    scalar_t* data = out.data_ptr<scalar_t>();
    at::parallel_for(0, count, 65536, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const uint64_t bits = mix64(key + static_cast<uint64_t>(i + 1) * 0x9E3779B97F4A7C15ULL);
        data[i] = static_cast<scalar_t>((bits >> 32) < threshold);
      }
    });
  });
  return out;
}

}  // namespace rnnlab_native

TORCH_LIBRARY(rnnlab_native, m) {
  m.def("bernoulli_mask(int[] shape, float p, int seed, ScalarType dtype) -> Tensor",
        &rnnlab_native::bernoulli_mask);
  m.def(
      "rnn_forward(Tensor gx, Tensor h0, Tensor w_hh, Tensor? b_hh, Tensor? ln_w, Tensor? ln_b, "
      "Tensor? rec_mask, Tensor? zone, Tensor? valid, bool relu, bool reverse, bool layer_norm, "
      "Tensor(a!) out, Tensor(b!) acts, Tensor(c!)? prevs, Tensor(d!)? a_all, "
      "Tensor(e!)? mean_all, Tensor(f!)? rstd_all) -> Tensor",
      &rnnlab_native::rnn_forward);
  m.def(
      "rnn_backward(Tensor d_out, Tensor d_h, Tensor w_hh, Tensor? ln_w, Tensor? rec_mask, "
      "Tensor? zone, Tensor? valid, Tensor acts, Tensor? a_all, Tensor? mean_all, "
      "Tensor? rstd_all, bool relu, bool reverse, bool layer_norm, Tensor(a!) d_pre_all, "
      "Tensor(b!)? d_a_all, Tensor(c!)? d_ln_w, Tensor(d!)? d_ln_b) -> Tensor",
      &rnnlab_native::rnn_backward);
  m.def(
      "lstm_forward(Tensor gx, Tensor h0, Tensor c0, Tensor w_hh, Tensor? b_hh, Tensor? ln_w, "
      "Tensor? ln_b, "
      "Tensor? lnc_w, Tensor? lnc_b, Tensor? w_hr, Tensor? rec_mask, Tensor? zone_h, "
      "Tensor? zone_c, Tensor? valid, bool reverse, bool layer_norm, Tensor(a!) out, "
      "Tensor(b!) gates, Tensor(c!) tanh_c, Tensor(d!)? h_prevs, Tensor(e!) c_prevs, "
      "Tensor(f!)? c_new_all, Tensor(g!)? c_mean, Tensor(h!)? c_rstd, Tensor(i!)? a_all, "
      "Tensor(j!)? mean_all, Tensor(k!)? rstd_all) -> Tensor[]",
      &rnnlab_native::lstm_forward);
  m.def(
      "lstm_backward(Tensor d_out, Tensor d_h, Tensor d_c, Tensor w_hh, Tensor? ln_w, "
      "Tensor? lnc_w, Tensor? w_hr, Tensor? rec_mask, Tensor? zone_h, Tensor? zone_c, "
      "Tensor? valid, Tensor gates, Tensor tanh_c, Tensor c_prevs, Tensor? c_new_all, "
      "Tensor? c_mean, Tensor? c_rstd, Tensor? a_all, Tensor? mean_all, Tensor? rstd_all, "
      "bool reverse, bool layer_norm, Tensor(a!) d_pre_all, Tensor(b!)? d_a_all, "
      "Tensor(c!)? d_lnc_all, Tensor(d!)? d_hnew_all, Tensor(e!)? d_ln_w, Tensor(f!)? d_ln_b, "
      "Tensor(g!)? d_lnc_w, Tensor(h!)? d_lnc_b) -> Tensor[]",
      &rnnlab_native::lstm_backward);
  m.def(
      "gru_forward(Tensor gx, Tensor h0, Tensor w_hh, Tensor? b_hh, Tensor? ln_w, Tensor? ln_b, "
      "Tensor? rec_mask, Tensor? zone, Tensor? valid, bool reverse, bool layer_norm, "
      "Tensor(a!) out, Tensor(b!) rz_all, Tensor(c!) n_all, Tensor(d!) hn_all, "
      "Tensor(e!)? prevs, Tensor(f!)? a_all, Tensor(g!)? mean_all, Tensor(h!)? rstd_all) -> Tensor",
      &rnnlab_native::gru_forward);
  m.def(
      "gru_backward(Tensor d_out, Tensor d_h, Tensor w_hh, Tensor? ln_w, Tensor? rec_mask, "
      "Tensor? zone, Tensor? valid, Tensor rz_all, Tensor n_all, Tensor hn_all, Tensor prevs, "
      "Tensor? a_all, Tensor? mean_all, Tensor? rstd_all, bool reverse, bool layer_norm, "
      "Tensor(a!) d_gx_all, Tensor(b!) d_gh_all, Tensor(c!)? d_a_all, Tensor(d!)? d_ln_w, "
      "Tensor(e!)? d_ln_b) -> Tensor",
      &rnnlab_native::gru_backward);
}
