// rnnlab's native CPU recurrence: the time loops of rnnlab.nn.fused_bptt in C++.
//
// The Python autograd Functions in rnnlab/nn/fused_bptt.py allocate every buffer, compute
// the input projections before the loop and the weight gradients after it (a few large
// matrix multiplies). What is left, the loop over time, is here: per step one matrix
// multiply (BLAS: MKL on a weight packed once per loop, see StepGemm) and one fused pass
// over the batch rows (layer norm, gate activations, cell update, zoneout, lengths,
// recurrent dropout; sigmoid and tanh through a vectorized polynomial exp in float); each
// thread owns a block of rows for the whole loop, so steps need no barrier. Backward is
// hand-derived backpropagation through time, in the same shape; it needs no transcendental
// function, only the activations saved by forward.
//
// Threads: every split here goes through at::parallel_for, a header template that is
// parallel only in a file compiled with OpenMP (rnnlab/nn/native.py builds with -fopenmp,
// and parallel_threads() reports what the build got); the BLAS calls inside a thread's
// block then run on that thread alone.
//
// Conventions (as in fused_bptt.py): tensors are contiguous, time-major ``(T, B, N)``;
// ``valid`` is a ``(T, B)`` bool tensor (false past a sequence's end: the state is held and
// the output is zero); ``zone`` is the weight of the previous value, ``(T, B, N)``, float
// weights (evaluation: the constant p) or a bool mask (training: true keeps the previous value):
//   state_t = zone * state_{t-1} + (1 - zone) * new_t.
// Layer norm over the last dimension: y = (a - mean) * rstd * gain + bias,
// rstd = 1 / sqrt(var + eps), var biased.

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

namespace rnnlab_native {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

constexpr double kLayerNormEps = 1e-5;

// `#pragma omp simd` for loops inside AT_DISPATCH's macro argument (a #pragma cannot go there).
#define RNNLAB_SIMD _Pragma("omp simd")

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

// y = a * mask, elementwise over `count` values (the masked initial state).
template <typename T>
void masked_copy(const T* a, const T* mask, T* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) y[i] = a[i] * mask[i];
}

// Zoneout weights of step t as a T pointer to the whole (B, N) plane: into the (T, B, N)
// float weights themselves, or a bool mask's step (true keeps the previous value) converted
// into `scratch`, elements [lo, hi) only (a thread's rows).
template <typename T>
const T* zone_at(const OptTensor& zone, int64_t t, int64_t plane, std::vector<T>& scratch,
                 int64_t lo, int64_t hi) {
  if (!has(zone)) return nullptr;
  if (zone->scalar_type() != at::kBool) return zone->data_ptr<T>() + t * plane;
  // bool's bytes are 0 or 1: read as uint8 so the conversion vectorizes (a `? :` on the
  // random mask compiled to branches and cost 4 ms of an 11 ms RNN forward at B=128, H=256).
  const auto* mask = reinterpret_cast<const uint8_t*>(zone->data_ptr<bool>() + t * plane);
  scratch.resize(plane);
  T* weights = scratch.data();
#pragma omp simd
  for (int64_t j = lo; j < hi; ++j) weights[j] = static_cast<T>(mask[j]);
  return weights;
}

int64_t step_at(int64_t s, int64_t steps, bool reverse) { return reverse ? steps - 1 - s : s; }

// The threads at::parallel_for splits this library's loops between: ATen's parallel_for is
// a header template, parallel only where the including file is compiled with OpenMP (the
// build's -fopenmp); without it every loop here ran on one thread (the BLAS calls inside
// still used all of them), which is what this reports as 1.
int64_t parallel_threads() {
#ifdef INTRA_OP_PARALLEL
  return at::get_num_threads();
#else
  return 1;
#endif
}

// ----------------------------------------------------------------------------- row kernels
//
// Every cell's step works row by row: one batch row's gates, cell, layer norm, zoneout and
// lengths at a time. The rows (sequences) of a batch never interact, so each thread owns a
// block of rows for the whole time loop (see row_block).

// Rows per thread when a whole time loop is split between the threads by batch rows: the
// rows of a recurrence never meet, so each thread runs every step on its own rows (its own
// small matrix multiply, then its rows' elementwise work) with no barrier between steps.
// Below 2 x kMinBlockRows rows one block runs, and the matrix multiply inside it uses the
// threads instead (for small batches BLAS splits the weight better than rows can).
constexpr int64_t kMinBlockRows = 8;

inline int64_t row_block(int64_t rows) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  if (threads == 1 || rows < 2 * kMinBlockRows) return std::max<int64_t>(rows, 1);
  return std::max<int64_t>(kMinBlockRows, (rows + threads - 1) / threads);
}

// ----------------------------------------------------------------------------- step GEMM
//
// Every step of a loop multiplies a thread's block of rows by the same weight, C = A W with
// W (K, N). BLAS copies ("packs") W into its panel layout at every call; at a small row block
// that copy is a large share of the call (a 64-row block times a 1024 x 1024 weight packs
// 4 MB for 134 MFLOP, a 16-row block times 256 x 1024 packs 1 MB for 8 MFLOP). Where torch
// carries MKL (its x86 builds) the weight is packed once per loop with MKL's packed-GEMM
// API, and every step of every thread reads that one copy; elsewhere (and for double)
// ATen's mm_out. The symbols are declared weak: a torch without MKL leaves them null.

extern "C" {
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k) __attribute__((weak));
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha,
                      const float* src, int ld, float* dest) __attribute__((weak));
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k,
                         const float* a, int lda, const float* b, int ldb, float beta, float* c,
                         int ldc) __attribute__((weak));
// BLAS's matrix-vector product, Fortran interface (column-major; MKL exports it uppercase).
void SGEMV(const char* trans, const int* m, const int* n, const float* alpha, const float* a,
           const int* lda, const float* x, const int* incx, const float* beta, float* y,
           const int* incy) __attribute__((weak));
}

// MKL's CBLAS enum values (mkl_cblas.h): row-major layout, no transpose, packed operand, B.
constexpr int kCblasRowMajor = 101, kCblasNoTrans = 111, kCblasPacked = 151, kCblasB = 162;

// RNNLAB_PACKED_GEMM=0 turns the packing off (ATen's mm_out at every step), for comparison.
bool packed_gemm_available() {
  const char* setting = std::getenv("RNNLAB_PACKED_GEMM");
  if (setting != nullptr && std::strcmp(setting, "0") == 0) return false;
  return cblas_sgemm_pack_get_size != nullptr && cblas_sgemm_pack != nullptr &&
         cblas_sgemm_compute != nullptr;
}

class StepGemm {
 public:
  // weight: (K, N); rows: the most rows one call multiplies.
  StepGemm(const Tensor& weight, int64_t rows) : weight_(weight.contiguous()) {
    k_ = weight_.size(0);
    n_ = weight_.size(1);
    const int64_t limit = std::numeric_limits<int>::max();
    use_blas_ = packed_gemm_available() && k_ > 0 && n_ > 0 && k_ < limit && n_ < limit;
    // One row is a matrix-vector product, which BLAS does without packing anything.
    if (weight_.scalar_type() != at::kFloat || !packed_gemm_available() || rows <= 1 ||
        k_ <= 0 || n_ <= 0 || k_ >= limit || n_ >= limit || rows >= limit)
      return;
    const size_t bytes = cblas_sgemm_pack_get_size(kCblasB, static_cast<int>(rows),
                                                   static_cast<int>(n_), static_cast<int>(k_));
    packed_ = at::empty({static_cast<int64_t>((bytes + sizeof(float) - 1) / sizeof(float))},
                        weight_.options());
    cblas_sgemm_pack(kCblasRowMajor, kCblasB, kCblasNoTrans, static_cast<int>(rows),
                     static_cast<int>(n_), static_cast<int>(k_), 1.0f,
                     weight_.data_ptr<float>(), static_cast<int>(n_), packed_.data_ptr<float>());
  }

  // out (m, N) = rows (m, K) @ W; both row blocks of row-major matrices.
  void into(Tensor out, const Tensor& rows) const {
    if (rows.stride(1) != 1 || out.stride(1) != 1) {
      at::mm_out(out, rows, weight_);
      return;
    }
    AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "rnnlab_step_gemm", [&] {
      rows_into<scalar_t>(out.data_ptr<scalar_t>(), out.stride(0), rows.data_ptr<scalar_t>(),
                          rows.stride(0), rows.size(0));
    });
  }

  // out (m, N) = rows (m, K) @ W on raw row-major blocks, row strides ldo and ldi: MKL's
  // gemv for one row (ATen's mm costs a few microseconds of dispatch per call, a step's share
  // at batch 1; row-major W (K, N) is the column-major (N, K) matrix that multiplies the
  // row), MKL's packed GEMM for more, ATen's mm otherwise. The time loops call this at every
  // step with pointers into their buffers, so no tensor view is made per step; only the ATen
  // fallback wraps the blocks.
  template <typename T>
  void rows_into(T* out, int64_t ldo, const T* rows, int64_t ldi, int64_t m) const {
    if (m <= 0) return;
    if constexpr (std::is_same_v<T, float>) {
      if (m == 1 && SGEMV != nullptr && use_blas_) {
        const int n = static_cast<int>(n_), k = static_cast<int>(k_), one = 1;
        const float alpha = 1.0f, beta = 0.0f;
        SGEMV("N", &n, &k, &alpha, weight_.data_ptr<float>(), &n, rows, &one, &beta, out, &one);
        return;
      }
      if (packed_.defined()) {
        cblas_sgemm_compute(kCblasRowMajor, kCblasNoTrans, kCblasPacked, static_cast<int>(m),
                            static_cast<int>(n_), static_cast<int>(k_), rows,
                            static_cast<int>(ldi), packed_.data_ptr<float>(),
                            static_cast<int>(n_), 0.0f, out, static_cast<int>(ldo));
        return;
      }
    }
    const auto options = weight_.options();
    Tensor out_block = at::from_blob(out, {m, n_}, {ldo, 1}, options);
    const Tensor in_block = at::from_blob(const_cast<T*>(rows), {m, k_}, {ldi, 1}, options);
    at::mm_out(out_block, in_block, weight_);
  }

 private:
  Tensor weight_, packed_;
  int64_t k_ = 0, n_ = 0;
  bool use_blas_ = false;
};

// e^x in float: x = k ln2 + r with |r| <= ln2 / 2, e^r by its Taylor polynomial of degree 6
// (truncation error below 2e-7 relative), 2^k through the exponent bits. Branch-free, so the
// loops that call it vectorize (with -fno-trapping-math: GCC keeps the clamps as branches
// otherwise). Inputs are clamped to [-87, 88] (float's normal range).
inline float exp_poly(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float y = x * 1.44269504f;  // k = round(x / ln 2), by truncation (std::floor does not vectorize)
  const int32_t n = static_cast<int32_t>(y + std::copysign(0.5f, y));
  const float k = static_cast<float>(n);
  const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f;  // ln 2 split in two parts
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const uint32_t bits = (static_cast<uint32_t>(n) + 127u) << 23;  // NaN in: NaN out (p)
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// sigmoid and tanh: through exp_poly in float, std:: functions in double (gradcheck).
template <typename T>
inline T sigmoid_of(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return 1.0f / (1.0f + exp_poly(-x));
  } else {
    return T(1) / (T(1) + std::exp(-x));
  }
}

template <typename T>
inline T tanh_of(T x) {
  if constexpr (std::is_same_v<T, float>) {
    const float e = exp_poly(-2.0f * std::fabs(x));  // tanh|x| = (1 - e) / (1 + e)
    const float m = (1.0f - e) / (1.0f + e);
    return x < 0.0f ? -m : m;
  } else {
    return std::tanh(x);
  }
}

// In place on one row of LSTM gates [i, f, g, o]: sigmoid, sigmoid, tanh, sigmoid.
template <typename T>
inline void activate_gates(T* g, int64_t hidden) {
#pragma omp simd
  for (int64_t j = 0; j < 2 * hidden; ++j) g[j] = sigmoid_of<T>(g[j]);
  T* cand = g + 2 * hidden;
#pragma omp simd
  for (int64_t j = 0; j < hidden; ++j) cand[j] = tanh_of<T>(cand[j]);
  T* out_gate = g + 3 * hidden;
#pragma omp simd
  for (int64_t j = 0; j < hidden; ++j) out_gate[j] = sigmoid_of<T>(out_gate[j]);
}

template <typename T>
inline void tanh_row(const T* x, T* y, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) y[j] = tanh_of<T>(x[j]);
}

// Mean and 1 / sqrt(biased variance + eps) of one row.
template <typename T>
inline void row_moments(const T* x, int64_t n, T& mean, T& rstd) {
  using acc_t = at::opmath_type<T>;
  acc_t sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) sum += x[j];
  const acc_t mu = sum / n;
  acc_t squares = 0;
#pragma omp simd reduction(+ : squares)
  for (int64_t j = 0; j < n; ++j) squares += (x[j] - mu) * (x[j] - mu);
  mean = static_cast<T>(mu);
  rstd = static_cast<T>(acc_t(1) / std::sqrt(squares / n + acc_t(kLayerNormEps)));
}

// y = (x - mean) * rstd * gain + bias (gain, bias may be null).
template <typename T>
inline void normalize_row(const T* x, T mean, T rstd, const T* gain, const T* bias, T* y,
                          int64_t n) {
  if (gain != nullptr && bias != nullptr) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) y[j] = (x[j] - mean) * rstd * gain[j] + bias[j];
  } else {
    for (int64_t j = 0; j < n; ++j) {
      T v = (x[j] - mean) * rstd;
      if (gain != nullptr) v *= gain[j];
      if (bias != nullptr) v += bias[j];
      y[j] = v;
    }
  }
}

// y += x + bias (bias may be null).
template <typename T>
inline void add_inputs_row(T* y, const T* x, const T* bias, int64_t n) {
  if (bias != nullptr) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) y[j] += x[j] + bias[j];
  } else {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) y[j] += x[j];
  }
}

// grad = d_prev + d_rec * mask (mask may be null), one row.
template <typename T>
inline void add_masked_row(const T* d_prev, const T* d_rec, const T* mask, T* grad, int64_t n) {
  if (mask != nullptr) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) grad[j] = d_prev[j] + d_rec[j] * mask[j];
  } else {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) grad[j] = d_prev[j] + d_rec[j];
  }
}

// h_rec = h * mask on rows [row_begin, row_end) of width `width` (nothing without a mask).
template <typename T>
void mask_rows(const T* h, const T* mask, T* h_rec, int64_t row_begin, int64_t row_end,
               int64_t width) {
  if (mask == nullptr) return;
  const int64_t o = row_begin * width;
  masked_copy<T>(h + o, mask + o, h_rec + o, (row_end - row_begin) * width);
}

// grad = d_prev + d_rec * mask on rows [row_begin, row_end): the state's two paths summed.
template <typename T>
void sum_state_grads(const T* d_prev, const T* d_rec, const T* mask, T* grad, int64_t row_begin,
                     int64_t row_end, int64_t width) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t o = r * width;
    add_masked_row<T>(d_prev + o, d_rec + o, mask == nullptr ? nullptr : mask + o, grad + o, width);
  }
}

// The gradient of a layer's outputs as autograd hands it over, read in place: (T, B, N) with
// any step and row strides and an element stride of 1, or 0 (a gradient broadcast along the
// row, as `out.sum()` or `out.mean()` give: no need to materialize it).
template <typename T>
struct OutputGrad {
  const T* base;
  int64_t step_stride, row_stride, element_stride;

  explicit OutputGrad(const Tensor& d_out)
      : base(d_out.data_ptr<T>()),
        step_stride(d_out.stride(0)),
        row_stride(d_out.stride(1)),
        element_stride(d_out.stride(2)) {}
  const T* row(int64_t t, int64_t r) const { return base + t * step_stride + r * row_stride; }
};

void check_output_grad(const Tensor& d_out) {
  TORCH_CHECK(d_out.dim() == 3 && (d_out.stride(2) == 1 || d_out.stride(2) == 0),
              "rnnlab_native: the outputs' gradient needs 3 dimensions and an element stride "
              "of 1 or 0, got strides ", d_out.strides());
}

// Backward of mix_row: the gradients of the step's fresh value and of the previous state.
// grad_out (may be null) is read with element stride out_step, 1 or 0.
template <typename T>
inline void unmix_row(const T* grad_state, const T* grad_out, int64_t out_step, const T* zone,
                      bool inside, T* d_new, T* d_prev, int64_t n) {
  if (!inside) {  // the state was held: its gradient passes to the previous state whole
    std::copy(grad_state, grad_state + n, d_prev);
    std::fill(d_new, d_new + n, T(0));
    return;
  }
  if (grad_out != nullptr && out_step == 1) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) d_new[j] = grad_state[j] + grad_out[j];
  } else if (grad_out != nullptr) {  // broadcast along the row
    const T shared = grad_out[0];
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) d_new[j] = grad_state[j] + shared;
  } else {
    std::copy(grad_state, grad_state + n, d_new);
  }
  if (zone != nullptr) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      d_prev[j] = zone[j] * d_new[j];
      d_new[j] = (T(1) - zone[j]) * d_new[j];
    }
  } else {
    std::fill(d_prev, d_prev + n, T(0));
  }
}

// One row of zoneout then lengths: state <- mix(state, fresh) where the row is inside its
// sequence (else the state is held); out (may be null) <- the new state, or 0 outside.
template <typename T>
inline void mix_row(const T* fresh, const T* zone, bool inside, T* state, T* out, int64_t n) {
  if (!inside) {
    if (out != nullptr) std::fill(out, out + n, T(0));
    return;
  }
  if (zone != nullptr) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) state[j] = zone[j] * state[j] + (T(1) - zone[j]) * fresh[j];
  } else {
    std::copy(fresh, fresh + n, state);
  }
  if (out != nullptr) std::copy(state, state + n, out);
}

// Input gradient of layer norm for one row, dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
// with g = dy * gain, adding the row's share of the gain and bias gradients into `grad_gain`
// / `grad_bias` when given. dx may be dy itself.
template <typename T>
inline void layer_norm_row_grad(const T* dy, const T* x, T mean, T rstd, const T* gain, T* dx,
                                int64_t n, double* grad_gain, double* grad_bias) {
  using acc_t = at::opmath_type<T>;
  // The parameter gradients first: dx may be dy itself (overwritten from here on).
  if (grad_gain != nullptr) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) grad_gain[j] += static_cast<double>(dy[j] * ((x[j] - mean) * rstd));
  }
  if (grad_bias != nullptr) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) grad_bias[j] += static_cast<double>(dy[j]);
  }
  // g = dy * gain, into dx first (dx is then overwritten in place).
  if (gain != nullptr) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) dx[j] = dy[j] * gain[j];
  } else {
    std::copy(dy, dy + n, dx);
  }
  acc_t sum_g = 0, sum_gx = 0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
  for (int64_t j = 0; j < n; ++j) {
    sum_g += dx[j];
    sum_gx += dx[j] * ((x[j] - mean) * rstd);
  }
  const T mean_g = static_cast<T>(sum_g / n), mean_gx = static_cast<T>(sum_gx / n);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dx[j] = rstd * (dx[j] - mean_g - (x[j] - mean) * rstd * mean_gx);
}

// Layer-norm parameter gradients summed per thread (double), added up at the end.
struct ThreadNormGrads {
  int64_t n;
  int threads;
  std::vector<double> gain, bias;
  ThreadNormGrads(int64_t size, bool want_gain, bool want_bias)
      : n(size),
        threads(std::max(1, at::get_num_threads())),
        gain(want_gain ? size * threads : 0, 0.0),
        bias(want_bias ? size * threads : 0, 0.0) {}
  double* gain_for(int thread) { return gain.empty() ? nullptr : gain.data() + slot(thread) * n; }
  double* bias_for(int thread) { return bias.empty() ? nullptr : bias.data() + slot(thread) * n; }
  void store(const OptTensor& gain_out, const OptTensor& bias_out) const {
    if (has(gain_out)) write(gain, *gain_out);
    if (has(bias_out)) write(bias, *bias_out);
  }

 private:
  int64_t slot(int thread) const { return std::min(std::max(thread, 0), threads - 1); }
  void write(const std::vector<double>& parts, const Tensor& out) const {
    std::vector<double> total(n, 0.0);
    for (int k = 0; k < threads; ++k) {
      for (int64_t j = 0; j < n; ++j) total[j] += parts[k * n + j];
    }
    Tensor source = at::from_blob(total.data(), {n}, at::TensorOptions().dtype(at::kDouble));
    out.copy_(source);
  }
};


// ----------------------------------------------------------------------------- simple RNN
//
// As the LSTM: per step one matrix multiply, then one fused pass over the batch rows.

Tensor rnn_forward(const Tensor& gx, const Tensor& h0, const Tensor& w_hh, const OptTensor& b_hh,
                   const OptTensor& ln_w, const OptTensor& ln_b, const OptTensor& rec_mask,
                   const OptTensor& zone, const OptTensor& valid, bool relu, bool reverse,
                   bool layer_norm, Tensor out, Tensor acts, const OptTensor& prevs, const OptTensor& a_all,
                   const OptTensor& mean_all, const OptTensor& rstd_all) {
  const int64_t steps = gx.size(0), rows = gx.size(1), hidden = gx.size(2);
  const int64_t plane = rows * hidden;
  Tensor h = h0.contiguous().clone();
  Tensor h_rec = has(rec_mask) ? at::empty_like(h) : h;
  const StepGemm recurrent(w_hh.t(), row_block(rows));  // (H_in, G*H): NN, packed once
  const Tensor scratch =
      layer_norm && !has(a_all) ? at::empty({rows, hidden}, gx.options()) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "rnnlab_rnn_forward", [&] {
    using T = scalar_t;
    T* h_data = h.data_ptr<T>();
    T* h_rec_data = h_rec.data_ptr<T>();
    const T* mask = data_or_null<T>(rec_mask);
    const T* bias = data_or_null<T>(b_hh);
    const T *gain = data_or_null<T>(ln_w), *shift = data_or_null<T>(ln_b);
    const T* gx_p = gx.data_ptr<T>();
    T* acts_p = acts.data_ptr<T>();
    T* out_p = out.data_ptr<T>();
    T* prevs_p = data_or_null<T>(prevs);
    T *mean_p = data_or_null<T>(mean_all), *rstd_p = data_or_null<T>(rstd_all);
    T* a_all_p = data_or_null<T>(a_all);
    T* scratch_p = scratch.defined() ? scratch.data_ptr<T>() : nullptr;
    // Each thread runs the whole time loop on its block of rows [row_begin, row_end).
    at::parallel_for(0, rows, row_block(rows), [&](int64_t row_begin, int64_t row_end) {
    const int64_t block = row_end - row_begin;
    mask_rows<T>(h_data, mask, h_rec_data, row_begin, row_end, hidden);
    std::vector<T> zone_row;  // a bool zoneout mask, one step as T
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = step_at(s, steps, reverse);
      // (B, H): h W^T, in the activations' plane or, with layer norm, LN's input.
      T* a_data = !layer_norm ? acts_p + t * plane : a_all_p != nullptr ? a_all_p + t * plane : scratch_p;
      recurrent.rows_into<T>(a_data + row_begin * hidden, hidden, h_rec_data + row_begin * hidden,
                             hidden, block);
      const bool* v = step_or_null<bool>(valid, t, rows);
      const T* z_t = zone_at<T>(zone, t, plane, zone_row, row_begin * hidden, row_end * hidden);
      {
        for (int64_t r = row_begin; r < row_end; ++r) {
          const int64_t o = r * hidden, row = t * plane + o;
          T* act = acts_p + row;
          if (layer_norm) {
            T mu, rs;
            row_moments<T>(a_data + o, hidden, mu, rs);
            mean_p[t * rows + r] = mu;
            rstd_p[t * rows + r] = rs;
            normalize_row<T>(a_data + o, mu, rs, gain, shift, act, hidden);
          }
          add_inputs_row<T>(act, gx_p + row, bias, hidden);
          if (relu) {
RNNLAB_SIMD
            for (int64_t j = 0; j < hidden; ++j) act[j] = act[j] > T(0) ? act[j] : T(0);
          } else {
            tanh_row<T>(act, act, hidden);
          }
          T* hr = h_data + o;
          if (prevs_p != nullptr) std::copy(hr, hr + hidden, prevs_p + row);
          // acts may be out itself (see fused_bptt): mix_row reads act before it writes out.
          mix_row<T>(act, z_t == nullptr ? nullptr : z_t + o, v == nullptr || v[r], hr,
                     out_p + row, hidden);
          if (mask != nullptr) {
            T* hm = h_rec_data + o;
            const T* m = mask + o;
RNNLAB_SIMD
            for (int64_t j = 0; j < hidden; ++j) hm[j] = hr[j] * m[j];
          }
        }
      }
    }
    });
  });
  return h;
}

Tensor rnn_backward(const Tensor& d_out, const Tensor& d_h, const Tensor& w_hh,
                    const OptTensor& ln_w, const OptTensor& rec_mask, const OptTensor& zone,
                    const OptTensor& valid, const Tensor& acts, const OptTensor& a_all,
                    const OptTensor& mean_all, const OptTensor& rstd_all, bool relu, bool reverse,
                    bool layer_norm, Tensor d_pre_all, const OptTensor& d_a_all,
                    const OptTensor& d_ln_w, const OptTensor& d_ln_b) {
  check_output_grad(d_out);
  const int64_t steps = acts.size(0), rows = acts.size(1), hidden = acts.size(2);
  const int64_t plane = rows * hidden;
  ThreadNormGrads norm_grads(hidden, has(d_ln_w), has(d_ln_b));
  Tensor grad = d_h.contiguous().clone();
  Tensor d_new = at::empty_like(grad), d_prev = at::empty_like(grad), d_rec = at::empty_like(grad);
  const StepGemm recurrent_grad(w_hh, row_block(rows));  // (G*H, H_in), packed once
  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "rnnlab_rnn_backward", [&] {
    using T = scalar_t;
    const T* mask = data_or_null<T>(rec_mask);
    const T* gain = data_or_null<T>(ln_w);
    T* g_h = grad.data_ptr<T>();
    T* d_new_p = d_new.data_ptr<T>();
    T* d_prev_p = d_prev.data_ptr<T>();
    const T* d_rec_p = d_rec.data_ptr<T>();
    T* d_rec_w = d_rec.data_ptr<T>();  // the step multiply's output
    const OutputGrad<T> d_out_rows(d_out);
    const T* acts_p = acts.data_ptr<T>();
    T* d_pre_p = d_pre_all.data_ptr<T>();
    const T* a_p = data_or_null<T>(a_all);
    const T *mean_p = data_or_null<T>(mean_all), *rstd_p = data_or_null<T>(rstd_all);
    T* d_a_p = data_or_null<T>(d_a_all);
    // Each thread runs the whole time loop on its block of rows [row_begin, row_end).
    at::parallel_for(0, rows, row_block(rows), [&](int64_t row_begin, int64_t row_end) {
    const int64_t block = row_end - row_begin;
    const int thread = at::get_thread_num();
    std::vector<T> zone_row;  // a bool zoneout mask, one step as T
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = step_at(s, steps, !reverse);
      const bool* v = step_or_null<bool>(valid, t, rows);
      const T* z_t = zone_at<T>(zone, t, plane, zone_row, row_begin * hidden, row_end * hidden);
      {
        for (int64_t r = row_begin; r < row_end; ++r) {
          const int64_t o = r * hidden, row = t * plane + o;
          if (s > 0) add_masked_row<T>(d_prev_p + o, d_rec_p + o, mask == nullptr ? nullptr : mask + o, g_h + o, hidden);
          unmix_row<T>(g_h + o, d_out_rows.row(t, r), d_out_rows.element_stride,
                       z_t == nullptr ? nullptr : z_t + o,
                       v == nullptr || v[r], d_new_p + o, d_prev_p + o, hidden);
          const T* act = acts_p + row;
          const T* dn = d_new_p + o;
          T* d_pre = d_pre_p + row;
          if (relu) {
RNNLAB_SIMD
            for (int64_t j = 0; j < hidden; ++j) d_pre[j] = act[j] > T(0) ? dn[j] : T(0);
          } else {
RNNLAB_SIMD
            for (int64_t j = 0; j < hidden; ++j) d_pre[j] = dn[j] * (T(1) - act[j] * act[j]);
          }
          if (layer_norm) {
            layer_norm_row_grad<T>(d_pre, a_p + row, mean_p[t * rows + r], rstd_p[t * rows + r],
                                   gain, d_a_p + row, hidden, norm_grads.gain_for(thread),
                                   norm_grads.bias_for(thread));
          }
        }
      }
      const T* d_a_t = (layer_norm ? d_a_p : d_pre_p) + t * plane;
      recurrent_grad.rows_into<T>(d_rec_w + row_begin * hidden, hidden,
                                  d_a_t + row_begin * hidden, hidden, block);
    }
    if (steps > 0) sum_state_grads<T>(d_prev_p, d_rec_p, mask, g_h, row_begin, row_end, hidden);
    });
  });
  norm_grads.store(d_ln_w, d_ln_b);
  return grad;
}

// ----------------------------------------------------------------------------- LSTM
//
// One step is one matrix multiply (BLAS) and then one fused pass over the batch rows, split
// between the threads by rows: every row's work (layer norm, gates, cell update, zoneout,
// lengths) is independent of the other rows' and stays in L1 while it runs.

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
  const bool projected = has(w_hr);
  Tensor h = h0.contiguous().clone();
  Tensor c = c0.contiguous().clone();
  Tensor h_rec = has(rec_mask) ? at::empty_like(h) : h;
  Tensor c_buffer = layer_norm ? Tensor() : at::empty_like(c);  // c~_t without layer norm
  Tensor h_new = at::empty_like(c);  // o * tanh(c), (B, H)
  Tensor h_proj = projected ? at::empty_like(h) : Tensor();
  const StepGemm recurrent(w_hh.t(), row_block(rows));  // (H_in, G*H): NN, packed once
  const std::optional<StepGemm> projection =
      projected ? std::optional<StepGemm>(std::in_place, w_hr->t(), row_block(rows)) : std::nullopt;
  const Tensor scratch =
      layer_norm && !has(a_all) ? at::empty({rows, width}, gx.options()) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(gx.scalar_type(), "rnnlab_lstm_forward", [&] {
    using T = scalar_t;
    T* h_data = h.data_ptr<T>();
    T* c_data = c.data_ptr<T>();
    T* h_rec_data = h_rec.data_ptr<T>();
    // Base pointers, taken once (data_ptr checks the dtype at every call).
    T* gates_p = gates.data_ptr<T>();
    const T* gx_p = gx.data_ptr<T>();
    T* c_prevs_p = c_prevs.data_ptr<T>();
    T* c_fresh_p = layer_norm ? c_new_all->data_ptr<T>() : c_buffer.data_ptr<T>();
    T* tanh_p = tanh_c.data_ptr<T>();
    T* h_new_p = h_new.data_ptr<T>();
    T* h_proj_p = projected ? h_proj.data_ptr<T>() : nullptr;
    T* out_p = out.data_ptr<T>();
    T *mean_p = data_or_null<T>(mean_all), *rstd_p = data_or_null<T>(rstd_all);
    T *c_mean_p = data_or_null<T>(c_mean), *c_rstd_p = data_or_null<T>(c_rstd);
    const T* mask = data_or_null<T>(rec_mask);
    const T* bias = data_or_null<T>(b_hh);
    const T *gain = data_or_null<T>(ln_w), *shift = data_or_null<T>(ln_b);
    const T *c_gain = data_or_null<T>(lnc_w), *c_shift = data_or_null<T>(lnc_b);
    T* a_all_p = data_or_null<T>(a_all);
    T* scratch_p = scratch.defined() ? scratch.data_ptr<T>() : nullptr;
    // Each thread runs the whole time loop on its block of rows [row_begin, row_end).
    at::parallel_for(0, rows, row_block(rows), [&](int64_t row_begin, int64_t row_end) {
    const int64_t block = row_end - row_begin;
    mask_rows<T>(h_data, mask, h_rec_data, row_begin, row_end, out_size);
    std::vector<T> zone_h_row, zone_c_row;  // bool zoneout masks, one step as T
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = step_at(s, steps, reverse);
      // (B, 4H): h W^T, in the gates' plane (then the activations) or, with layer norm, LN's input.
      T* a_data = !layer_norm ? gates_p + t * plane_g
                  : a_all_p != nullptr ? a_all_p + t * plane_g : scratch_p;
      recurrent.rows_into<T>(a_data + row_begin * width, width, h_rec_data + row_begin * out_size,
                             out_size, block);
      const bool* v = step_or_null<bool>(valid, t, rows);
      const T* zh = zone_at<T>(zone_h, t, plane_p, zone_h_row, row_begin * out_size, row_end * out_size);
      const T* zc = zone_at<T>(zone_c, t, plane_h, zone_c_row, row_begin * hidden, row_end * hidden);
      T* out_t = out_p + t * plane_p;
      T* prevs_t = step_or_null<T>(h_prevs, t, plane_p);
      // h <- mix(h, fresh) for rows [begin, end), with out_t, h_prevs and the masked copy.
      auto hold_h = [&](int64_t begin, int64_t end, const T* fresh_all) {
        for (int64_t r = begin; r < end; ++r) {
          const bool inside = v == nullptr || v[r];
          T* hr = h_data + r * out_size;
          const T* fresh = fresh_all + r * out_size;
          const T* z = zh == nullptr ? nullptr : zh + r * out_size;
          T* y = out_t + r * out_size;
          if (prevs_t != nullptr) std::copy(hr, hr + out_size, prevs_t + r * out_size);
          mix_row<T>(fresh, z, inside, hr, y, out_size);
          if (mask != nullptr) {
            const T* m = mask + r * out_size;
            T* hm = h_rec_data + r * out_size;
RNNLAB_SIMD
            for (int64_t j = 0; j < out_size; ++j) hm[j] = hr[j] * m[j];
          }
        }
      };
      auto cell_rows = [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const int64_t gate_row = t * plane_g + r * width, cell_row = t * plane_h + r * hidden;
          T* g = gates_p + gate_row;
          const T* x = gx_p + gate_row;
          if (layer_norm) {
            const T* a = a_data + r * width;
            T mu, rs;
            row_moments<T>(a, width, mu, rs);
            mean_p[t * rows + r] = mu;
            rstd_p[t * rows + r] = rs;
            normalize_row<T>(a, mu, rs, gain, shift, g, width);
          }
          add_inputs_row<T>(g, x, bias, width);
          activate_gates<T>(g, hidden);
          const T* gi = g;
          const T* gf = g + hidden;
          const T* gg = g + 2 * hidden;
          const T* go = g + 3 * hidden;
          T* c_row = c_data + r * hidden;
          T* c_prev = c_prevs_p + cell_row;
          T* cn = c_fresh_p + (layer_norm ? cell_row : r * hidden);
RNNLAB_SIMD
          for (int64_t j = 0; j < hidden; ++j) {
            c_prev[j] = c_row[j];
            cn[j] = gf[j] * c_row[j] + gi[j] * gg[j];
          }
          T* tc = tanh_p + cell_row;
          if (layer_norm) {
            T mu, rs;
            row_moments<T>(cn, hidden, mu, rs);
            c_mean_p[t * rows + r] = mu;
            c_rstd_p[t * rows + r] = rs;
            normalize_row<T>(cn, mu, rs, c_gain, c_shift, tc, hidden);
            tanh_row<T>(tc, tc, hidden);
          } else {
            tanh_row<T>(cn, tc, hidden);
          }
          T* hn = h_new_p + r * hidden;
RNNLAB_SIMD
          for (int64_t j = 0; j < hidden; ++j) hn[j] = go[j] * tc[j];
          const bool inside = v == nullptr || v[r];
          const T* z = zc == nullptr ? nullptr : zc + r * hidden;
          mix_row<T>(cn, z, inside, c_row, nullptr, hidden);  // c_row still holds c_prev
          if (!projected) hold_h(r, r + 1, h_new_p);
        }
      };
      cell_rows(row_begin, row_end);
      if (projected) {
        Tensor proj_rows = h_proj.narrow(0, row_begin, block);
        projection->into(proj_rows, h_new.narrow(0, row_begin, block));
        hold_h(row_begin, row_end, h_proj_p);
      }
    }
    });
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
  check_output_grad(d_out);
  const int64_t steps = gates.size(0), rows = gates.size(1), width = gates.size(2);
  const int64_t hidden = width / 4, out_size = d_h.size(1);
  const int64_t plane_h = rows * hidden, plane_p = rows * out_size, plane_g = rows * width;
  const bool projected = has(w_hr);
  Tensor grad_h = d_h.contiguous().clone();
  Tensor grad_c = d_c.contiguous().clone();
  Tensor dh_new = at::empty_like(grad_h), dh_prev = at::empty_like(grad_h);
  Tensor dc_new = at::empty_like(grad_c), dc_prev = at::empty_like(grad_c);
  Tensor d_rec = at::empty_like(grad_h);
  Tensor dh_cell = projected ? at::empty_like(grad_c) : dh_new;  // grad of o * tanh(c), (B, H)
  Tensor d_ln_c = layer_norm ? at::empty_like(grad_c) : Tensor();
  ThreadNormGrads norm_grads(width, has(d_ln_w), has(d_ln_b));
  ThreadNormGrads cell_norm_grads(hidden, has(d_lnc_w), has(d_lnc_b));
  const StepGemm recurrent_grad(w_hh, row_block(rows));  // (4H, H_out), packed once
  const std::optional<StepGemm> projection_grad =
      projected ? std::optional<StepGemm>(std::in_place, *w_hr, row_block(rows)) : std::nullopt;
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "rnnlab_lstm_backward", [&] {
    using T = scalar_t;
    const T* mask = data_or_null<T>(rec_mask);
    const T* gain = data_or_null<T>(ln_w);
    const T* c_gain = data_or_null<T>(lnc_w);
    T* g_h = grad_h.data_ptr<T>();
    T* g_c = grad_c.data_ptr<T>();
    const T* dhp = dh_prev.data_ptr<T>();
    const T* drec = d_rec.data_ptr<T>();
    T* d_rec_w = d_rec.data_ptr<T>();  // the step multiply's output
    // Base pointers, taken once (data_ptr checks the dtype at every call).
    const OutputGrad<T> d_out_rows(d_out);
    T* dh_new_p = dh_new.data_ptr<T>();
    T* dh_prev_p = dh_prev.data_ptr<T>();
    T* d_hnew_all_p = data_or_null<T>(d_hnew_all);
    T* dc_new_p = dc_new.data_ptr<T>();
    T* dc_prev_p = dc_prev.data_ptr<T>();
    const T* gates_p = gates.data_ptr<T>();
    const T* tanh_p = tanh_c.data_ptr<T>();
    const T* dh_cell_p = dh_cell.data_ptr<T>();
    T* d_lnc_p = data_or_null<T>(d_lnc_all);
    T* d_ln_c_p = layer_norm ? d_ln_c.data_ptr<T>() : nullptr;
    const T* c_new_p = data_or_null<T>(c_new_all);
    const T *c_mean_p = data_or_null<T>(c_mean), *c_rstd_p = data_or_null<T>(c_rstd);
    T* d_pre_p = d_pre_all.data_ptr<T>();
    const T* c_prevs_p = c_prevs.data_ptr<T>();
    const T* a_p = data_or_null<T>(a_all);
    const T *mean_p = data_or_null<T>(mean_all), *rstd_p = data_or_null<T>(rstd_all);
    T* d_a_p = data_or_null<T>(d_a_all);
    // Each thread runs the whole time loop on its block of rows [row_begin, row_end).
    at::parallel_for(0, rows, row_block(rows), [&](int64_t row_begin, int64_t row_end) {
    const int64_t block = row_end - row_begin;
    std::vector<T> zone_h_row, zone_c_row;  // bool zoneout masks, one step as T
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = step_at(s, steps, !reverse);
      const bool* v = step_or_null<bool>(valid, t, rows);
      const T* zh = zone_at<T>(zone_h, t, plane_p, zone_h_row, row_begin * out_size, row_end * out_size);
      const T* zc = zone_at<T>(zone_c, t, plane_h, zone_c_row, row_begin * hidden, row_end * hidden);
      // grad_h of rows [begin, end): the previous step's two paths summed, then split into
      // the gradient of this step's fresh value and of the state before it.
      auto unmix_h = [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const int64_t o = r * out_size;
          if (s > 0) add_masked_row<T>(dhp + o, drec + o, mask == nullptr ? nullptr : mask + o, g_h + o, out_size);
          unmix_row<T>(g_h + o, d_out_rows.row(t, r), d_out_rows.element_stride,
                       zh == nullptr ? nullptr : zh + o, v == nullptr || v[r],
                       dh_new_p + o, dh_prev_p + o, out_size);
          if (projected) {
            const T* dn = dh_new_p + o;
            std::copy(dn, dn + out_size, d_hnew_all_p + t * plane_p + o);
          }
        }
      };
      auto cell_rows = [&](int64_t begin, int64_t end) {
        const int thread = at::get_thread_num();
        for (int64_t r = begin; r < end; ++r) {
          const int64_t gate_row = t * plane_g + r * width, cell_row = t * plane_h + r * hidden;
          const int64_t o = r * hidden;
          T* dcn = dc_new_p + o;
          T* dcp = dc_prev_p + o;
          unmix_row<T>(g_c + o, nullptr, 0, zc == nullptr ? nullptr : zc + o, v == nullptr || v[r],
                       dcn, dcp, hidden);
          const T* g = gates_p + gate_row;
          const T* gi = g;
          const T* gf = g + hidden;
          const T* gg = g + 2 * hidden;
          const T* go = g + 3 * hidden;
          const T* tc = tanh_p + cell_row;
          const T* dH = dh_cell_p + o;
          if (layer_norm) {
            T* d_normed = d_lnc_p + cell_row;
RNNLAB_SIMD
            for (int64_t j = 0; j < hidden; ++j) d_normed[j] = dH[j] * (go[j] * (T(1) - tc[j] * tc[j]));
            T* extra = d_ln_c_p + o;
            layer_norm_row_grad<T>(d_normed, c_new_p + cell_row,
                                   c_mean_p[t * rows + r],
                                   c_rstd_p[t * rows + r], c_gain, extra, hidden,
                                   cell_norm_grads.gain_for(thread), cell_norm_grads.bias_for(thread));
RNNLAB_SIMD
            for (int64_t j = 0; j < hidden; ++j) dcn[j] += extra[j];
          } else {
RNNLAB_SIMD
            for (int64_t j = 0; j < hidden; ++j) dcn[j] += dH[j] * (go[j] * (T(1) - tc[j] * tc[j]));
          }
          T* di = d_pre_p + gate_row;
          T* df = di + hidden;
          T* dg = di + 2 * hidden;
          T* dout = di + 3 * hidden;
          const T* cp = c_prevs_p + cell_row;
          T* gc = g_c + o;
RNNLAB_SIMD
          for (int64_t j = 0; j < hidden; ++j) {
            const T dc = dcn[j];
            di[j] = dc * (gg[j] * (gi[j] * (T(1) - gi[j])));
            df[j] = dc * (cp[j] * (gf[j] * (T(1) - gf[j])));
            dg[j] = dc * (gi[j] * (T(1) - gg[j] * gg[j]));
            dout[j] = dH[j] * (tc[j] * (go[j] * (T(1) - go[j])));
            gc[j] = dcp[j] + dc * gf[j];
          }
          if (layer_norm) {
            layer_norm_row_grad<T>(di, a_p + gate_row,
                                   mean_p[t * rows + r],
                                   rstd_p[t * rows + r], gain,
                                   d_a_p + gate_row, width,
                                   norm_grads.gain_for(thread), norm_grads.bias_for(thread));
          }
        }
      };
      unmix_h(row_begin, row_end);
      if (projected) {
        Tensor cell_rows_grad = dh_cell.narrow(0, row_begin, block);
        projection_grad->into(cell_rows_grad, dh_new.narrow(0, row_begin, block));
      }
      cell_rows(row_begin, row_end);
      const T* d_a_t = (layer_norm ? d_a_p : d_pre_p) + t * plane_g;
      recurrent_grad.rows_into<T>(d_rec_w + row_begin * out_size, out_size,
                                  d_a_t + row_begin * width, width, block);
    }
    if (steps > 0) sum_state_grads<T>(dhp, drec, mask, g_h, row_begin, row_end, out_size);
    });
  });
  norm_grads.store(d_ln_w, d_ln_b);
  cell_norm_grads.store(d_lnc_w, d_lnc_b);
  return {grad_h, grad_c};
}

// ----------------------------------------------------------------------------- GRU
//
// As the LSTM: per step one matrix multiply, then one fused pass over the batch rows.
// Gates [r, z, n]; b_hh's r and z parts add outside the reset product, its n part inside:
//   n = tanh(gx_n + r * (LN(a)_n + b_hn)),  h~ = n + z * (h - n).

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
  Tensor gh = at::empty({rows, width}, gx_all.options());  // LN(h W^T) (or h W^T), one step
  Tensor h_new = at::empty_like(h);
  const StepGemm recurrent(w_hh.t(), row_block(rows));  // (H_in, G*H): NN, packed once
  const Tensor scratch =
      layer_norm && !has(a_all) ? at::empty({rows, width}, gx_all.options()) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(gx_all.scalar_type(), "rnnlab_gru_forward", [&] {
    using T = scalar_t;
    const T* bias = data_or_null<T>(b_hh);
    const T* mask = data_or_null<T>(rec_mask);
    const T *gain = data_or_null<T>(ln_w), *shift = data_or_null<T>(ln_b);
    T* h_data = h.data_ptr<T>();
    T* h_rec_data = h_rec.data_ptr<T>();
    T* gh_p = gh.data_ptr<T>();
    T* fresh_p = h_new.data_ptr<T>();
    const T* gx_p = gx_all.data_ptr<T>();
    T* rz_p = rz_all.data_ptr<T>();
    T* n_p = n_all.data_ptr<T>();
    T* hn_p = hn_all.data_ptr<T>();
    T* out_p = out.data_ptr<T>();
    T* prevs_p = data_or_null<T>(prevs);
    T *mean_p = data_or_null<T>(mean_all), *rstd_p = data_or_null<T>(rstd_all);
    T* a_all_p = data_or_null<T>(a_all);
    T* scratch_p = scratch.defined() ? scratch.data_ptr<T>() : nullptr;
    // Each thread runs the whole time loop on its block of rows [row_begin, row_end).
    at::parallel_for(0, rows, row_block(rows), [&](int64_t row_begin, int64_t row_end) {
    const int64_t block = row_end - row_begin;
    mask_rows<T>(h_data, mask, h_rec_data, row_begin, row_end, hidden);
    std::vector<T> zone_row;  // a bool zoneout mask, one step as T
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = step_at(s, steps, reverse);
      // (B, 3H): h W^T, in the one-step buffer or, with layer norm, LN's input.
      T* a_data = !layer_norm ? gh_p : a_all_p != nullptr ? a_all_p + t * rows * width : scratch_p;
      recurrent.rows_into<T>(a_data + row_begin * width, width, h_rec_data + row_begin * hidden,
                             hidden, block);
      const bool* v = step_or_null<bool>(valid, t, rows);
      const T* z_t = zone_at<T>(zone, t, plane, zone_row, row_begin * hidden, row_end * hidden);
      {
        for (int64_t r = row_begin; r < row_end; ++r) {
          const int64_t o = r * hidden, row = t * plane + o;
          T* g = gh_p + r * width;
          if (layer_norm) {
            T mu, rs;
            row_moments<T>(a_data + r * width, width, mu, rs);
            mean_p[t * rows + r] = mu;
            rstd_p[t * rows + r] = rs;
            normalize_row<T>(a_data + r * width, mu, rs, gain, shift, g, width);
          }
          const T* x = gx_p + t * rows * width + r * width;
          T* rz = rz_p + t * 2 * plane + r * 2 * hidden;
          if (bias != nullptr) {
RNNLAB_SIMD
            for (int64_t j = 0; j < 2 * hidden; ++j) rz[j] = sigmoid_of<T>(x[j] + (g[j] + bias[j]));
          } else {
RNNLAB_SIMD
            for (int64_t j = 0; j < 2 * hidden; ++j) rz[j] = sigmoid_of<T>(x[j] + g[j]);
          }
          T* hn = hn_p + row;
          const T* g_n = g + 2 * hidden;
          if (bias != nullptr) {
            const T* b_n = bias + 2 * hidden;
RNNLAB_SIMD
            for (int64_t j = 0; j < hidden; ++j) hn[j] = g_n[j] + b_n[j];
          } else {
            std::copy(g_n, g_n + hidden, hn);
          }
          T* n = n_p + row;
          const T* x_n = x + 2 * hidden;
          const T* z = rz + hidden;
          T* hr = h_data + o;
          T* fresh = fresh_p + o;
RNNLAB_SIMD
          for (int64_t j = 0; j < hidden; ++j) {
            n[j] = tanh_of<T>(x_n[j] + rz[j] * hn[j]);
            fresh[j] = n[j] + z[j] * (hr[j] - n[j]);
          }
          if (prevs_p != nullptr) std::copy(hr, hr + hidden, prevs_p + row);
          mix_row<T>(fresh, z_t == nullptr ? nullptr : z_t + o, v == nullptr || v[r], hr,
                     out_p + row, hidden);
          if (mask != nullptr) {
            T* hm = h_rec_data + o;
            const T* m = mask + o;
RNNLAB_SIMD
            for (int64_t j = 0; j < hidden; ++j) hm[j] = hr[j] * m[j];
          }
        }
      }
    }
    });
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
  check_output_grad(d_out);
  const int64_t steps = n_all.size(0), rows = n_all.size(1), hidden = n_all.size(2);
  const int64_t width = 3 * hidden, plane = rows * hidden;
  ThreadNormGrads norm_grads(width, has(d_ln_w), has(d_ln_b));
  Tensor grad = d_h.contiguous().clone();
  Tensor d_new = at::empty_like(grad), d_prev = at::empty_like(grad), d_rec = at::empty_like(grad);
  const StepGemm recurrent_grad(w_hh, row_block(rows));  // (G*H, H_in), packed once
  AT_DISPATCH_FLOATING_TYPES(n_all.scalar_type(), "rnnlab_gru_backward", [&] {
    using T = scalar_t;
    const T* mask = data_or_null<T>(rec_mask);
    const T* gain = data_or_null<T>(ln_w);
    T* g_h = grad.data_ptr<T>();
    T* d_new_p = d_new.data_ptr<T>();
    T* d_prev_p = d_prev.data_ptr<T>();
    const T* d_rec_p = d_rec.data_ptr<T>();
    T* d_rec_w = d_rec.data_ptr<T>();  // the step multiply's output
    const OutputGrad<T> d_out_rows(d_out);
    const T* rz_p = rz_all.data_ptr<T>();
    const T* n_p = n_all.data_ptr<T>();
    const T* hn_p = hn_all.data_ptr<T>();
    const T* prevs_p = prevs.data_ptr<T>();
    T* dgx_p = d_gx_all.data_ptr<T>();
    T* dgh_p = d_gh_all.data_ptr<T>();
    const T* a_p = data_or_null<T>(a_all);
    const T *mean_p = data_or_null<T>(mean_all), *rstd_p = data_or_null<T>(rstd_all);
    T* d_a_p = data_or_null<T>(d_a_all);
    // Each thread runs the whole time loop on its block of rows [row_begin, row_end).
    at::parallel_for(0, rows, row_block(rows), [&](int64_t row_begin, int64_t row_end) {
    const int64_t block = row_end - row_begin;
    const int thread = at::get_thread_num();
    std::vector<T> zone_row;  // a bool zoneout mask, one step as T
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = step_at(s, steps, !reverse);
      const bool* v = step_or_null<bool>(valid, t, rows);
      const T* z_t = zone_at<T>(zone, t, plane, zone_row, row_begin * hidden, row_end * hidden);
      {
        for (int64_t r = row_begin; r < row_end; ++r) {
          const int64_t o = r * hidden, row = t * plane + o;
          if (s > 0) add_masked_row<T>(d_prev_p + o, d_rec_p + o, mask == nullptr ? nullptr : mask + o, g_h + o, hidden);
          unmix_row<T>(g_h + o, d_out_rows.row(t, r), d_out_rows.element_stride,
                       z_t == nullptr ? nullptr : z_t + o,
                       v == nullptr || v[r], d_new_p + o, d_prev_p + o, hidden);
          const T* rr = rz_p + t * 2 * plane + r * 2 * hidden;
          const T* z = rr + hidden;
          const T* n = n_p + row;
          const T* hn = hn_p + row;
          const T* prev = prevs_p + row;
          const T* dn = d_new_p + o;
          T* dp = d_prev_p + o;
          T* dgx = dgx_p + t * rows * width + r * width;
          T* dgh = dgh_p + t * rows * width + r * width;
RNNLAB_SIMD
          for (int64_t j = 0; j < hidden; ++j) {
            const T d = dn[j];
            const T d_n_pre = d * ((T(1) - z[j]) * (T(1) - n[j] * n[j]));
            const T d_r_pre = d_n_pre * (hn[j] * (rr[j] * (T(1) - rr[j])));
            const T d_z_pre = d * ((prev[j] - n[j]) * (z[j] * (T(1) - z[j])));
            dgx[j] = d_r_pre;
            dgx[hidden + j] = d_z_pre;
            dgx[2 * hidden + j] = d_n_pre;
            dgh[j] = d_r_pre;
            dgh[hidden + j] = d_z_pre;
            dgh[2 * hidden + j] = d_n_pre * rr[j];
            dp[j] += d * z[j];
          }
          if (layer_norm) {
            layer_norm_row_grad<T>(dgh, a_p + t * rows * width + r * width, mean_p[t * rows + r],
                                   rstd_p[t * rows + r], gain,
                                   d_a_p + t * rows * width + r * width, width,
                                   norm_grads.gain_for(thread), norm_grads.bias_for(thread));
          }
        }
      }
      const T* d_a_t = (layer_norm ? d_a_p : dgh_p) + t * rows * width;
      recurrent_grad.rows_into<T>(d_rec_w + row_begin * hidden, hidden,
                                  d_a_t + row_begin * width, width, block);
    }
    if (steps > 0) sum_state_grads<T>(d_prev_p, d_rec_p, mask, g_h, row_begin, row_end, hidden);
    });
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

// DropConnect with the mask bernoulli_mask(shape, p, seed) would draw, never materialized:
// out[i] = tensor[i] * scale where that draw is 1, else 0. The same map serves the weight
// (forward) and its gradient (backward), so neither pass keeps a mask.
Tensor drop_connect(const Tensor& tensor, double p, int64_t seed, double scale) {
  TORCH_CHECK(tensor.is_contiguous(), "drop_connect: tensor must be contiguous");
  Tensor out = at::empty_like(tensor);
  const int64_t count = tensor.numel();
  const uint64_t threshold = static_cast<uint64_t>(std::llround(std::clamp(p, 0.0, 1.0) * 4294967296.0));
  const uint64_t key = static_cast<uint64_t>(seed);
  AT_DISPATCH_FLOATING_TYPES(tensor.scalar_type(), "rnnlab_drop_connect", [&] {
    const scalar_t* in = tensor.data_ptr<scalar_t>();
    scalar_t* data = out.data_ptr<scalar_t>();
    const scalar_t factor = static_cast<scalar_t>(scale);
    at::parallel_for(0, count, 65536, [&](int64_t begin, int64_t end) {
      RNNLAB_SIMD
      for (int64_t i = begin; i < end; ++i) {
        const uint64_t bits = mix64(key + static_cast<uint64_t>(i + 1) * 0x9E3779B97F4A7C15ULL);
        // Load and scale unconditionally, then select: a load inside `? :` kept the loop
        // scalar (2.5 ms for a 1024 x 256 weight, against 0.23 ms for bernoulli_mask).
        const scalar_t scaled = in[i] * factor;
        data[i] = (bits >> 32) < threshold ? scaled : scalar_t(0);
      }
    });
  });
  return out;
}

// ----------------------------------------------------------------------------- rebuilt activations
//
// The layer-normalized simple RNN and GRU (rnnlab/nn/normalized_rnn.py, normalized_gru.py)
// keep the inputs of both layer norms, a_in = x W_ih^T and a = h_rec W_hh^T, with their
// statistics, and rebuild the activations in backward: one pass over the (T*B) rows, each
// row's two normalized projections in a thread's scratch, then the activations:
//   gx = (a_in - mean_in) * rstd_in * g_in + s_in,   gh = (a - mean) * rstd * g + s
//   simple RNN: h~ = act(gx + gh)
//   GRU: r|z = sigmoid(gx[r|z] + gh[r|z]),  hn = gh[n],  n = tanh(gx[n] + r * hn)
// (s: the layer norm's bias plus the bias added after it.)

template <typename T>
struct NormalizedRows {
  const T *a_in, *in_mean, *in_rstd, *in_gain, *in_shift, *a, *mean, *rstd, *gain, *shift;
  int64_t width;

  NormalizedRows(const Tensor& a_in_, const Tensor& in_mean_, const Tensor& in_rstd_,
                 const OptTensor& in_gain_, const OptTensor& in_shift_, const Tensor& a_,
                 const Tensor& mean_, const Tensor& rstd_, const OptTensor& gain_,
                 const OptTensor& shift_)
      : a_in(a_in_.data_ptr<T>()), in_mean(in_mean_.data_ptr<T>()),
        in_rstd(in_rstd_.data_ptr<T>()), in_gain(data_or_null<T>(in_gain_)),
        in_shift(data_or_null<T>(in_shift_)), a(a_.data_ptr<T>()), mean(mean_.data_ptr<T>()),
        rstd(rstd_.data_ptr<T>()), gain(data_or_null<T>(gain_)), shift(data_or_null<T>(shift_)),
        width(a_.size(-1)) {}

  // Row r's gx and gh into gx_row, gh_row (width each).
  void rows(int64_t r, T* gx_row, T* gh_row) const {
    const int64_t o = r * width;
    normalize_row<T>(a_in + o, in_mean[r], in_rstd[r], in_gain, in_shift, gx_row, width);
    normalize_row<T>(a + o, mean[r], rstd[r], gain, shift, gh_row, width);
  }
};

void check_rebuild_inputs(const Tensor& a_in, const Tensor& a_all, const Tensor& in_mean,
                          const Tensor& mean_all) {
  TORCH_CHECK(a_in.is_contiguous() && a_all.is_contiguous() && in_mean.is_contiguous() &&
                  mean_all.is_contiguous(),
              "rnnlab_native: rebuilt activations need contiguous inputs");
  TORCH_CHECK(a_in.sizes() == a_all.sizes(), "rnnlab_native: a_in and a_all differ in shape");
}

void rnn_rebuild(const Tensor& a_in, const Tensor& in_mean, const Tensor& in_rstd,
                 const OptTensor& in_gain, const OptTensor& in_shift, const Tensor& a_all,
                 const Tensor& mean_all, const Tensor& rstd_all, const OptTensor& ln_w,
                 const OptTensor& ln_shift, bool relu, Tensor acts) {
  check_rebuild_inputs(a_in, a_all, in_mean, mean_all);
  const int64_t width = a_all.size(-1), rows = a_all.numel() / std::max<int64_t>(width, 1);
  AT_DISPATCH_FLOATING_TYPES(a_all.scalar_type(), "rnnlab_rnn_rebuild", [&] {
    using T = scalar_t;
    const NormalizedRows<T> source(a_in, in_mean, in_rstd, in_gain, in_shift, a_all, mean_all,
                                   rstd_all, ln_w, ln_shift);
    T* acts_p = acts.data_ptr<T>();
    at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
      std::vector<T> gh(width);
      for (int64_t r = begin; r < end; ++r) {
        T* y = acts_p + r * width;
        source.rows(r, y, gh.data());
        const T* h = gh.data();
        if (relu) {
RNNLAB_SIMD
          for (int64_t j = 0; j < width; ++j) {
            const T v = y[j] + h[j];
            y[j] = v > T(0) ? v : T(0);
          }
        } else {
RNNLAB_SIMD
          for (int64_t j = 0; j < width; ++j) y[j] = tanh_of<T>(y[j] + h[j]);
        }
      }
    });
  });
}

void gru_rebuild(const Tensor& a_in, const Tensor& in_mean, const Tensor& in_rstd,
                 const OptTensor& in_gain, const OptTensor& in_shift, const Tensor& a_all,
                 const Tensor& mean_all, const Tensor& rstd_all, const OptTensor& ln_w,
                 const OptTensor& ln_shift, Tensor rz_all, Tensor n_all, Tensor hn_all) {
  check_rebuild_inputs(a_in, a_all, in_mean, mean_all);
  const int64_t width = a_all.size(-1), hidden = width / 3;
  const int64_t rows = a_all.numel() / std::max<int64_t>(width, 1);
  AT_DISPATCH_FLOATING_TYPES(a_all.scalar_type(), "rnnlab_gru_rebuild", [&] {
    using T = scalar_t;
    const NormalizedRows<T> source(a_in, in_mean, in_rstd, in_gain, in_shift, a_all, mean_all,
                                   rstd_all, ln_w, ln_shift);
    T* rz_p = rz_all.data_ptr<T>();
    T* n_p = n_all.data_ptr<T>();
    T* hn_p = hn_all.data_ptr<T>();
    at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
      std::vector<T> gx(width), gh(width);
      for (int64_t r = begin; r < end; ++r) {
        source.rows(r, gx.data(), gh.data());
        const T* x = gx.data();
        const T* h = gh.data();
        T* rz = rz_p + r * 2 * hidden;
        T* n = n_p + r * hidden;
        T* hn = hn_p + r * hidden;
RNNLAB_SIMD
        for (int64_t j = 0; j < 2 * hidden; ++j) rz[j] = sigmoid_of<T>(x[j] + h[j]);
RNNLAB_SIMD
        for (int64_t j = 0; j < hidden; ++j) {
          hn[j] = h[2 * hidden + j];
          n[j] = tanh_of<T>(x[2 * hidden + j] + rz[j] * hn[j]);
        }
      }
    });
  });
}

// ----------------------------------------------------------------------------- layer norm rows
//
// Layer norm over the last dimension of every row, into buffers the caller gives (ATen's
// layer norm allocates its outputs: above glibc's mmap threshold a fresh mapping per call,
// whose pages the kernel faults in one by one), and its backward, in place when d_a is dy.

void check_rows(const Tensor& a, const Tensor& y, const char* what) {
  TORCH_CHECK(a.is_contiguous() && y.is_contiguous() && a.sizes() == y.sizes(),
              "rnnlab_native: ", what, " needs contiguous tensors of one shape");
}

void check_stats(const Tensor& mean, const Tensor& rstd, int64_t rows, const char* what) {
  TORCH_CHECK(mean.is_contiguous() && rstd.is_contiguous() && mean.numel() == rows &&
                  rstd.numel() == rows,
              "rnnlab_native: ", what, " needs one contiguous mean and rstd per row");
}

void layer_norm_rows(const Tensor& a, const OptTensor& gain, const OptTensor& shift, Tensor y,
                     Tensor mean, Tensor rstd) {
  check_rows(a, y, "layer_norm_rows");
  const int64_t width = a.size(-1), rows = a.numel() / std::max<int64_t>(width, 1);
  check_stats(mean, rstd, rows, "layer_norm_rows");
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rnnlab_layer_norm_rows", [&] {
    using T = scalar_t;
    const T* a_p = a.data_ptr<T>();
    const T *gain_p = data_or_null<T>(gain), *shift_p = data_or_null<T>(shift);
    T* y_p = y.data_ptr<T>();
    T *mean_p = mean.data_ptr<T>(), *rstd_p = rstd.data_ptr<T>();
    at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t o = r * width;
        row_moments<T>(a_p + o, width, mean_p[r], rstd_p[r]);
        normalize_row<T>(a_p + o, mean_p[r], rstd_p[r], gain_p, shift_p, y_p + o, width);
      }
    });
  });
}

void layer_norm_rows_backward(const Tensor& dy, const Tensor& a, const Tensor& mean,
                              const Tensor& rstd, const OptTensor& gain, Tensor d_a,
                              const OptTensor& d_gain, const OptTensor& d_shift) {
  check_rows(dy, a, "layer_norm_rows_backward");
  check_rows(a, d_a, "layer_norm_rows_backward");
  const int64_t width = a.size(-1), rows = a.numel() / std::max<int64_t>(width, 1);
  check_stats(mean, rstd, rows, "layer_norm_rows_backward");
  ThreadNormGrads norm_grads(width, has(d_gain), has(d_shift));
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rnnlab_layer_norm_rows_backward", [&] {
    using T = scalar_t;
    const T *dy_p = dy.data_ptr<T>(), *a_p = a.data_ptr<T>();
    const T *mean_p = mean.data_ptr<T>(), *rstd_p = rstd.data_ptr<T>();
    const T* gain_p = data_or_null<T>(gain);
    T* d_a_p = d_a.data_ptr<T>();
    at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
      const int thread = at::get_thread_num();
      for (int64_t r = begin; r < end; ++r) {
        const int64_t o = r * width;
        layer_norm_row_grad<T>(dy_p + o, a_p + o, mean_p[r], rstd_p[r], gain_p, d_a_p + o,
                               width, norm_grads.gain_for(thread), norm_grads.bias_for(thread));
      }
    });
  });
  norm_grads.store(d_gain, d_shift);
}

// ----------------------------------------------------------------------------- recurrent inputs
//
// h_rec_t = state_{t-1} * mask of every step, in run order, from the activations h~ of a
// layer without lengths: state_{-1} = h0, state_t = zone_t ? state_{t-1} : acts_t (a bool
// zoneout mask; without one, state_t = acts_t); mask (B, N) may be null. What the weight
// gradient dW_hh multiplies, built in one pass (the outputs themselves are never formed).
// Every element is its own chain over time, so threads split the elements of a step, and
// each keeps its elements' current state in a buffer of its own.

void recurrent_inputs(const Tensor& acts, const Tensor& h0, const OptTensor& zone,
                      const OptTensor& rec_mask, bool reverse, Tensor h_rec) {
  TORCH_CHECK(acts.is_contiguous() && h_rec.is_contiguous() && acts.sizes() == h_rec.sizes(),
              "rnnlab_native: recurrent_inputs needs contiguous acts and h_rec of one shape");
  const int64_t steps = acts.size(0);
  const int64_t plane = steps == 0 ? 0 : acts[0].numel();
  const Tensor first = h0.contiguous();
  const Tensor zone_c = has(zone) ? zone->contiguous() : Tensor();
  const Tensor mask_c = has(rec_mask) ? rec_mask->contiguous() : Tensor();
  TORCH_CHECK(!zone_c.defined() || zone_c.scalar_type() == at::kBool,
              "rnnlab_native: recurrent_inputs takes a bool zoneout mask");
  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "rnnlab_recurrent_inputs", [&] {
    using T = scalar_t;
    const T* acts_p = acts.data_ptr<T>();
    const T* first_p = first.data_ptr<T>();
    // bool's bytes are 0 or 1, read as uint8 and blended as mix_row does (both exact): a
    // `? :` on the random mask compiles to branches (5.5 ms at T=50, B=128, H=256).
    const auto* zone_p =
        zone_c.defined() ? reinterpret_cast<const uint8_t*>(zone_c.data_ptr<bool>()) : nullptr;
    const T* mask_p = mask_c.defined() ? mask_c.data_ptr<T>() : nullptr;
    T* h_rec_p = h_rec.data_ptr<T>();
    at::parallel_for(0, plane, 4096, [&](int64_t begin, int64_t end) {
      std::vector<T> state(first_p + begin, first_p + end);  // state_{t-1}, elements [begin, end)
      T* prev = state.data() - begin;  // indexed like the plane
      for (int64_t s = 0; s < steps; ++s) {
        const int64_t o = step_at(s, steps, reverse) * plane;
        const T* a = acts_p + o;
        T* y = h_rec_p + o;
        if (mask_p != nullptr) {
RNNLAB_SIMD
          for (int64_t j = begin; j < end; ++j) y[j] = prev[j] * mask_p[j];
        } else {
          std::copy(prev + begin, prev + end, y + begin);
        }
        if (zone_p != nullptr) {
          const uint8_t* z = zone_p + o;
RNNLAB_SIMD
          for (int64_t j = begin; j < end; ++j) {
            const T w = static_cast<T>(z[j]);
            prev[j] = w * prev[j] + (T(1) - w) * a[j];
          }
        } else {
          std::copy(a + begin, a + end, prev + begin);
        }
      }
    });
  });
}

}  // namespace rnnlab_native

TORCH_LIBRARY(rnnlab_native, m) {
  m.def("packed_gemm() -> bool", &rnnlab_native::packed_gemm_available);
  m.def("parallel_threads() -> int", &rnnlab_native::parallel_threads);
  m.def(
      "rnn_rebuild(Tensor a_in, Tensor in_mean, Tensor in_rstd, Tensor? in_gain, "
      "Tensor? in_shift, Tensor a_all, Tensor mean_all, Tensor rstd_all, Tensor? ln_w, "
      "Tensor? ln_shift, bool relu, Tensor(a!) acts) -> ()",
      &rnnlab_native::rnn_rebuild);
  m.def(
      "gru_rebuild(Tensor a_in, Tensor in_mean, Tensor in_rstd, Tensor? in_gain, "
      "Tensor? in_shift, Tensor a_all, Tensor mean_all, Tensor rstd_all, Tensor? ln_w, "
      "Tensor? ln_shift, Tensor(a!) rz_all, Tensor(b!) n_all, Tensor(c!) hn_all) -> ()",
      &rnnlab_native::gru_rebuild);
  m.def(
      "layer_norm_rows(Tensor a, Tensor? gain, Tensor? shift, Tensor(a!) y, Tensor(b!) mean, "
      "Tensor(c!) rstd) -> ()",
      &rnnlab_native::layer_norm_rows);
  m.def(
      "layer_norm_rows_backward(Tensor dy, Tensor a, Tensor mean, Tensor rstd, Tensor? gain, "
      "Tensor(a!) d_a, Tensor(b!)? d_gain, Tensor(c!)? d_shift) -> ()",
      &rnnlab_native::layer_norm_rows_backward);
  m.def(
      "recurrent_inputs(Tensor acts, Tensor h0, Tensor? zone, Tensor? rec_mask, bool reverse, "
      "Tensor(a!) h_rec) -> ()",
      &rnnlab_native::recurrent_inputs);
  m.def("drop_connect(Tensor tensor, float p, int seed, float scale) -> Tensor",
        &rnnlab_native::drop_connect);
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
