// rnnlab's native CPU scans: element-wise linear recurrences over time, forward and backward.
//
// The recurrences of rnnlab.nn.modern (minGRU, minLSTM, IndRNN) mix nothing across hidden
// units: every element (b, j) of the (B, H) state runs its own recurrence over time. The
// work is therefore split between threads by (batch row, column block) tasks with no
// barrier between steps; a thread runs its consecutive rows of one block as a group, time
// loop outermost and rows inside, so each step reads a time-major tensor in memory order
// (batch-major memory, batch_first: row after row).
// Inside a row the columns are a contiguous vector (`#pragma omp simd` over `__restrict__`
// pointers, the cells branch-free functions of plain values; float loops checked with
// -fopt-info-vec, the double ones call std::exp and stay scalar). Gates are computed inside the loop from the
// pre-activations of the layer's one input projection, so forward reads the projection
// once and writes the output once, and backward reads projection, output and output
// gradient once and writes the projection's gradient once: no intermediate (T, B, H)
// tensors. Backward needs no saved activation: the gates are recomputed from the
// pre-activations (cheaper than storing them, as the loop is bound by memory traffic).
//
//   linear:  h_t = a_t h_{t-1} + b_t                                   (a, b given)
//   minGRU:  z = sigmoid(p_z), h~ = g(p_h),  h_t = (1 - z) h_{t-1} + z h~
//   minLSTM: f' = f / (f + i) with f = sigmoid(p_f), i = sigmoid(p_i), h~ = g(p_h),
//            h_t = f' h_{t-1} + (1 - f') h~
//   IndRNN:  h_t = act(p_t + u h_{t-1}),  act = relu or tanh
// with g(x) = x + 1/2 for x >= 0, sigmoid(x) otherwise (Feng et al. 2024).
//
// Backward, c_t = dL/dh_t (total): c_t = dout_t + a_{t+1} c_{t+1}, starting from dh_n at
// the last step; d a_t = c_t h_{t-1}, d b_t = c_t, and the chain rule into the gates.
//
// Layout: every (T, B, N) argument is a strided view whose last dimension is contiguous
// (stride 1): time and batch strides are free, so a batch-first projection (B, T, G) is
// read in place. `lengths` (int64, B) freezes a sequence's state past its length: the
// outputs there are zero and h_n is the state at its last valid step; `reverse` runs
// t = len - 1 ... 0 (the reverse direction starts at each sequence's own last step).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

namespace rnnlab_scan {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

#define RNNLAB_SIMD _Pragma("omp simd")

// e^x in float, branch-free so the loops calling it vectorize: x = n ln2 + r, |r| <= ln2/2,
// e^r by a degree-6 Taylor polynomial (relative error < 2e-7), 2^n through the exponent
// bits. x is clamped to [-87, 88] (float's normal range); callers only pass x <= 0 or
// values whose clamp does not change the result they use.
inline float exp_f(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float y = x * 1.44269504f;
  const int32_t n = static_cast<int32_t>(y + (y < 0.0f ? -0.5f : 0.5f));  // round
  const float k = static_cast<float>(n);
  const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f;  // ln 2 in two parts
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const uint32_t bits = (static_cast<uint32_t>(n) + 127u) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// float: the polynomial above; double (gradcheck, reference runs): std::exp.
template <typename T>
inline T exp_of(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return exp_f(x);
  } else {
    return std::exp(x);
  }
}

// sigmoid through e^{-|x|} <= 1 (never overflows), selected by sign.
template <typename T>
inline T sigmoid_of(T x) {
  const T e = exp_of<T>(-std::fabs(x));
  const T s = T(1) / (T(1) + e);
  return x >= T(0) ? s : e * s;
}

// a where take_a, b elsewhere, through the bits. Both operands are computed
// unconditionally: with a plain `?:` whose one side is used nowhere else, GCC moves that
// side's computation into a branch, and a loop with a branch is not vectorized.
template <typename T>
inline T blend(bool take_a, T a, T b) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  static_assert(sizeof(U) == sizeof(T));
  U ua, ub;
  std::memcpy(&ua, &a, sizeof a);
  std::memcpy(&ub, &b, sizeof b);
  const U mask = U(0) - static_cast<U>(take_a);
  const U r = (ua & mask) | (ub & ~mask);
  T out;
  std::memcpy(&out, &r, sizeof out);
  return out;
}

// ----------------------------------------------------------------------------- cells
//
// Each cell maps one element: forward, its K inputs at one step (x0, x1, x2; the unused ones
// are zero) and h_{t-1} to h_t; backward, c_t (dL/dh_t) to c_{t-1}, writing the gradient of
// its inputs (d0, d1, d2) and of its recurrent weight (du, IndRNN). Plain values in and out,
// no pointers and no branches the compiler cannot turn into selects: the loops calling them
// are vectorized over the columns. `kU`: the cell reads the recurrent weight u; `kReadsX`:
// backward reads the inputs.

template <typename T>
struct Linear {
  static constexpr int K = 2;  // a, b
  static constexpr bool kU = false, kReadsX = true;
  static inline T forward(T a, T b, T, T hp, T) { return a * hp + b; }
  static inline T backward(T a, T, T, T hp, T, T c, T, T& d0, T& d1, T&, T&) {
    d0 = c * hp;
    d1 = c;
    return c * a;
  }
};

template <typename T>
struct MinGRU {
  static constexpr int K = 2;  // p_z, p_h
  static constexpr bool kU = false, kReadsX = true;
  static inline T forward(T pz, T ph, T, T hp, T) {
    const T z = sigmoid_of<T>(pz);
    const T cand = blend<T>(ph >= T(0), ph + T(0.5), sigmoid_of<T>(ph));
    return hp + z * (cand - hp);
  }
  static inline T backward(T pz, T ph, T, T hp, T, T c, T, T& d0, T& d1, T&, T&) {
    const T z = sigmoid_of<T>(pz);
    const T s = sigmoid_of<T>(ph);
    const T pos = ph >= T(0) ? T(1) : T(0);
    const T cand = ph >= T(0) ? ph + T(0.5) : s;
    const T dcand = pos + (T(1) - pos) * (s * (T(1) - s));
    d0 = c * (cand - hp) * z * (T(1) - z);
    d1 = c * z * dcand;
    return c * (T(1) - z);
  }
};

// f' = f / (f + i) = B / (A + B) with A = 1 + e^{-p_f}, B = 1 + e^{-p_i}, both scaled by
// e^{-m}, m = max(0, -p_f, -p_i): every exponent is <= 0 and A + B >= 1 after scaling, so
// there is no overflow and no 0 / 0 for any pre-activation.
template <typename T>
struct MinLSTMGates {
  T fp, one_minus_f, one_minus_i;
  static inline MinLSTMGates of(T pf, T pi) {
    T m = -pf > -pi ? -pf : -pi;
    m = m > T(0) ? m : T(0);
    const T e0 = exp_of<T>(-m), ef = exp_of<T>(-pf - m), ei = exp_of<T>(-pi - m);
    const T a = e0 + ef, b = e0 + ei;
    return {b / (a + b), ef / a, ei / b};  // 1 - f = e^{-p_f} / (1 + e^{-p_f})
  }
};

template <typename T>
struct MinLSTM {
  static constexpr int K = 3;  // p_f, p_i, p_h
  static constexpr bool kU = false, kReadsX = true;
  static inline T forward(T pf, T pi, T ph, T hp, T) {
    const T fp = MinLSTMGates<T>::of(pf, pi).fp;
    const T cand = blend<T>(ph >= T(0), ph + T(0.5), sigmoid_of<T>(ph));
    return fp * hp + (T(1) - fp) * cand;
  }
  static inline T backward(T pf, T pi, T ph, T hp, T, T c, T, T& d0, T& d1, T& d2, T&) {
    const MinLSTMGates<T> g = MinLSTMGates<T>::of(pf, pi);
    const T s = sigmoid_of<T>(ph);
    const T pos = ph >= T(0) ? T(1) : T(0);
    const T cand = ph >= T(0) ? ph + T(0.5) : s;
    const T dcand = pos + (T(1) - pos) * (s * (T(1) - s));
    // f' = sigmoid(log f - log i): d f' = f'(1 - f') (d log f - d log i),
    // d log f / d p_f = 1 - f, d log i / d p_i = 1 - i.
    const T dd = c * (hp - cand) * g.fp * (T(1) - g.fp);
    d0 = dd * g.one_minus_f;
    d1 = -dd * g.one_minus_i;
    d2 = c * (T(1) - g.fp) * dcand;
    return c * g.fp;
  }
};

template <typename T, bool Relu>
struct IndRNN {
  static constexpr int K = 1;  // p = W x + b
  static constexpr bool kU = true, kReadsX = false;
  static inline T forward(T p, T, T, T hp, T u) {
    const T a = p + u * hp;
    if constexpr (Relu) {
      return a > T(0) ? a : T(0);
    } else {
      const T e = exp_of<T>(T(-2) * std::fabs(a));  // tanh|a| = (1 - e) / (1 + e)
      const T m = (T(1) - e) / (T(1) + e);
      return a < T(0) ? -m : m;
    }
  }
  // act' from the output itself: relu' = [h > 0], tanh' = 1 - h^2.
  static inline T backward(T, T, T, T hp, T h, T c, T u, T& d0, T&, T&, T& du) {
    T d;
    if constexpr (Relu) {
      d = h > T(0) ? c : T(0);
    } else {
      d = c * (T(1) - h * h);
    }
    d0 = d;
    du = d * hp;
    return d * u;
  }
};

// ----------------------------------------------------------------------------- loops

// A strided (T, B, N) view: element (t, b, j) at p[t * st + b * sb + j].
template <typename T>
struct View {
  T* p;
  int64_t st, sb;
  T* at(int64_t t, int64_t b) const { return p + t * st + b * sb; }
};

template <typename T>
View<T> view_of(const Tensor& x, int64_t column_offset = 0) {
  TORCH_CHECK(x.dim() == 3 && (x.size(2) <= 1 || x.stride(2) == 1),
              "rnnlab scan: expected a (T, B, N) tensor with a contiguous last dimension");
  return {x.data_ptr<T>() + column_offset, x.stride(0), x.stride(1)};
}

// Tasks: (column block, batch row). Whole rows where the batch alone gives every thread
// several tasks; narrower blocks (at least 64 columns, a multiple of 16) at small batches.
inline int64_t column_block(int64_t batch, int64_t n) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t wanted = 4 * threads;
  if (threads == 1 || batch >= wanted) return std::max<int64_t>(n, 1);
  const int64_t pieces = (wanted + batch - 1) / batch;
  int64_t block = (n + pieces - 1) / pieces;
  block = ((block + 15) / 16) * 16;
  return std::max<int64_t>(std::min<int64_t>(std::max<int64_t>(block, 64), n), 1);
}

// Tasks are numbered block-major (task = block * batch + row), and each thread's share of
// them is run as groups: the consecutive rows [b_lo, b_hi) of one column block [lo, hi).
// A group runs its time loop outermost and its rows inside it, so each step reads the
// rows of a time-major (T, B, N) tensor in memory order, and the group's state stays in
// cache from one step to the next (batch-major memory: one row after the other).
template <typename Fn>
void for_groups(int64_t batch, int64_t n, const Fn& fn) {
  if (batch <= 0 || n <= 0) return;
  const int64_t block = column_block(batch, n);
  const int64_t blocks = (n + block - 1) / block;
  at::parallel_for(0, batch * blocks, 1, [&](int64_t begin, int64_t end) {
    int64_t task = begin;
    while (task < end) {
      const int64_t lo = (task / batch) * block, b_lo = task % batch;
      const int64_t b_hi = std::min<int64_t>(batch, b_lo + (end - task));
      fn(b_lo, b_hi, lo, std::min(n, lo + block));
      task += b_hi - b_lo;
    }
  });
}

inline int64_t length_of(const int64_t* lengths, int64_t b, int64_t steps) {
  return lengths == nullptr ? steps : std::min<int64_t>(std::max<int64_t>(lengths[b], 0), steps);
}

const int64_t* lengths_ptr(const OptTensor& lengths, Tensor& holder) {
  if (!lengths.has_value() || !lengths->defined()) return nullptr;
  holder = lengths->to(at::kLong).contiguous();
  return holder.data_ptr<int64_t>();
}

// Forward: x[k] are the K input views, out the (T, B, N) output view, h0 / hn (B, N).
template <typename T, typename Cell>
void scan_forward(const std::vector<View<T>>& x, View<T> out, const T* h0, T* hn,
                  const T* u, const int64_t* lengths, int64_t steps, int64_t batch, int64_t n,
                  bool reverse) {
  constexpr int K = Cell::K;
  for_groups(batch, n, [&](int64_t b_lo, int64_t b_hi, int64_t lo, int64_t hi) {
    const int64_t width = hi - lo, rows = b_hi - b_lo;
    std::vector<T> state(static_cast<size_t>(rows * width));
    std::vector<int64_t> lens(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      lens[r] = length_of(lengths, b_lo + r, steps);
      std::copy(h0 + (b_lo + r) * n + lo, h0 + (b_lo + r) * n + hi, state.data() + r * width);
    }
    const T* __restrict__ uu = Cell::kU ? u + lo : nullptr;
    // Time-major memory (batch stride below the time stride): all rows at each step, in
    // memory order; batch-major (batch_first): one row at a time through all its steps.
    const int64_t chunk = x[0].sb <= x[0].st ? rows : 1;
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t r1 = std::min(rows, r0 + chunk);
      const int64_t longest = *std::max_element(lens.begin() + r0, lens.begin() + r1);
      for (int64_t s = 0; s < longest; ++s) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t len = lens[r];
          if (s >= len) continue;
          const int64_t b = b_lo + r, t = reverse ? len - 1 - s : s;
          const T* __restrict__ p0 = x[0].at(t, b) + lo;
          const T* __restrict__ p1 = x[K > 1 ? 1 : 0].at(t, b) + lo;
          const T* __restrict__ p2 = x[K > 2 ? 2 : 0].at(t, b) + lo;
          T* __restrict__ h = state.data() + r * width;
          T* __restrict__ y = out.at(t, b) + lo;
RNNLAB_SIMD
          for (int64_t w = 0; w < width; ++w) {
            const T v = Cell::forward(p0[w], K > 1 ? p1[w] : T(0), K > 2 ? p2[w] : T(0), h[w],
                                      Cell::kU ? uu[w] : T(0));
            h[w] = v;
            y[w] = v;
          }
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t b = b_lo + r;
      for (int64_t t = lens[r]; t < steps; ++t) std::fill(out.at(t, b) + lo, out.at(t, b) + hi, T(0));
      std::copy(state.data() + r * width, state.data() + (r + 1) * width, hn + b * n + lo);
    }
  });
}

// Backward: d_out may be a null view (no output gradient); dx[k] are written at every step
// (zero past a sequence's length); du_plane (B, N), where the cell has one, accumulates the
// per-element gradient of its recurrent weight (summed over rows by the caller).
template <typename T, typename Cell>
void scan_backward(const std::vector<View<T>>& x, View<T> out, View<T> d_out, const T* d_hn,
                   const T* h0, const std::vector<View<T>>& dx, T* d_h0, const T* u,
                   T* du_plane, const int64_t* lengths, int64_t steps, int64_t batch, int64_t n,
                   bool reverse) {
  constexpr int K = Cell::K;
  for_groups(batch, n, [&](int64_t b_lo, int64_t b_hi, int64_t lo, int64_t hi) {
    const int64_t width = hi - lo, rows = b_hi - b_lo;
    std::vector<T> carry(static_cast<size_t>(rows * width));
    std::vector<T> zeros(static_cast<size_t>(width), T(0));  // the output gradient, if none
    std::vector<int64_t> lens(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t b = b_lo + r;
      lens[r] = length_of(lengths, b, steps);
      std::copy(d_hn + b * n + lo, d_hn + b * n + hi, carry.data() + r * width);
      for (int64_t t = lens[r]; t < steps; ++t) {
        for (int k = 0; k < K; ++k) std::fill(dx[k].at(t, b) + lo, dx[k].at(t, b) + hi, T(0));
      }
    }
    const T* __restrict__ uu = Cell::kU ? u + lo : nullptr;
    // Time-major memory (batch stride below the time stride): all rows at each step, in
    // memory order; batch-major (batch_first): one row at a time through all its steps.
    const int64_t chunk = dx[0].sb <= dx[0].st ? rows : 1;
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t r1 = std::min(rows, r0 + chunk);
      const int64_t longest = *std::max_element(lens.begin() + r0, lens.begin() + r1);
      for (int64_t s = longest - 1; s >= 0; --s) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t len = lens[r];
          if (s >= len) continue;
          const int64_t b = b_lo + r, t = reverse ? len - 1 - s : s;
          const int64_t t_prev = reverse ? t + 1 : t - 1;  // the step before, in processing order
          const T* __restrict__ hp = (s == 0 ? h0 + b * n : out.at(t_prev, b)) + lo;
          const T* __restrict__ h = out.at(t, b) + lo;
          const T* __restrict__ g = d_out.p == nullptr ? zeros.data() : d_out.at(t, b) + lo;
          const T* __restrict__ p0 = Cell::kReadsX ? x[0].at(t, b) + lo : nullptr;
          const T* __restrict__ p1 = Cell::kReadsX ? x[K > 1 ? 1 : 0].at(t, b) + lo : nullptr;
          const T* __restrict__ p2 = Cell::kReadsX ? x[K > 2 ? 2 : 0].at(t, b) + lo : nullptr;
          T* __restrict__ q0 = dx[0].at(t, b) + lo;
          T* __restrict__ q1 = dx[K > 1 ? 1 : 0].at(t, b) + lo;
          T* __restrict__ q2 = dx[K > 2 ? 2 : 0].at(t, b) + lo;
          T* __restrict__ du = Cell::kU ? du_plane + b * n + lo : nullptr;
          T* __restrict__ c = carry.data() + r * width;
RNNLAB_SIMD
          for (int64_t w = 0; w < width; ++w) {
            T d0 = T(0), d1 = T(0), d2 = T(0), dw = T(0);
            const T x0 = Cell::kReadsX ? p0[w] : T(0);
            const T x1 = Cell::kReadsX && K > 1 ? p1[w] : T(0);
            const T x2 = Cell::kReadsX && K > 2 ? p2[w] : T(0);
            c[w] = Cell::backward(x0, x1, x2, hp[w], h[w], c[w] + g[w], Cell::kU ? uu[w] : T(0),
                                  d0, d1, d2, dw);
            q0[w] = d0;
            if constexpr (K > 1) q1[w] = d1;
            if constexpr (K > 2) q2[w] = d2;
            if constexpr (Cell::kU) du[w] += dw;
          }
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      std::copy(carry.data() + r * width, carry.data() + (r + 1) * width,
                d_h0 + (b_lo + r) * n + lo);
    }
  });
}

// ----------------------------------------------------------------------------- ops

// The K input views of a kind: linear takes a and b as two tensors (blocks a, b); the gated
// cells take one projection whose last dimension holds their K blocks of N side by side.
template <typename T>
std::vector<View<T>> blocks_of(const Tensor& pre, int64_t k, int64_t n) {
  std::vector<View<T>> views;
  for (int64_t i = 0; i < k; ++i) views.push_back(view_of<T>(pre, i * n));
  return views;
}

void check_plane(const Tensor& h, int64_t batch, const char* name) {
  TORCH_CHECK(h.dim() == 2 && h.size(0) == batch && h.is_contiguous(), "rnnlab scan: ", name,
              " must be a contiguous (B, N) tensor");
}

enum Kind : int64_t { kMinGRU = 0, kMinLSTM = 1 };

template <typename T, template <typename> class Cell>
Tensor run_forward(const std::vector<View<T>>& x, const Tensor& h0, const OptTensor& lengths,
                   bool reverse, const Tensor& out, const T* u) {
  const int64_t steps = out.size(0), batch = out.size(1), n = out.size(2);
  check_plane(h0, batch, "h0");
  Tensor hn = at::empty_like(h0);
  Tensor holder;
  scan_forward<T, Cell<T>>(x, view_of<T>(out), h0.data_ptr<T>(), hn.data_ptr<T>(), u,
                           lengths_ptr(lengths, holder), steps, batch, n, reverse);
  return hn;
}

Tensor linear_scan(const Tensor& a, const Tensor& b, const Tensor& h0, const OptTensor& lengths,
                   bool reverse, const Tensor& out) {
  Tensor hn;
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "linear_scan", [&] {
    hn = run_forward<scalar_t, Linear>({view_of<scalar_t>(a), view_of<scalar_t>(b)}, h0,
                                       lengths, reverse, out, nullptr);
  });
  return hn;
}

Tensor gated_scan(int64_t kind, const Tensor& pre, const Tensor& h0, const OptTensor& lengths,
                  bool reverse, const Tensor& out) {
  const int64_t n = out.size(2);
  Tensor hn;
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "gated_scan", [&] {
    if (kind == kMinGRU) {
      hn = run_forward<scalar_t, MinGRU>(blocks_of<scalar_t>(pre, 2, n), h0, lengths, reverse,
                                         out, nullptr);
    } else {
      hn = run_forward<scalar_t, MinLSTM>(blocks_of<scalar_t>(pre, 3, n), h0, lengths, reverse,
                                          out, nullptr);
    }
  });
  return hn;
}

template <typename T>
struct IndRNNRelu : IndRNN<T, true> {};
template <typename T>
struct IndRNNTanh : IndRNN<T, false> {};

Tensor indrnn_scan(const Tensor& pre, const Tensor& u, const Tensor& h0, const OptTensor& lengths,
                   bool reverse, bool relu, const Tensor& out) {
  TORCH_CHECK(u.is_contiguous() && u.numel() == out.size(2), "rnnlab scan: u must be (N)");
  Tensor hn;
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "indrnn_scan", [&] {
    const auto x = blocks_of<scalar_t>(pre, 1, out.size(2));
    hn = relu ? run_forward<scalar_t, IndRNNRelu>(x, h0, lengths, reverse, out, u.data_ptr<scalar_t>())
              : run_forward<scalar_t, IndRNNTanh>(x, h0, lengths, reverse, out, u.data_ptr<scalar_t>());
  });
  return hn;
}

template <typename T, template <typename> class Cell>
Tensor run_backward(const std::vector<View<T>>& x, const Tensor& out, const OptTensor& d_out,
                    const Tensor& d_hn, const Tensor& h0, const std::vector<View<T>>& dx,
                    const OptTensor& lengths, bool reverse, const T* u, T* du_plane) {
  const int64_t steps = out.size(0), batch = out.size(1), n = out.size(2);
  check_plane(h0, batch, "h0");
  check_plane(d_hn, batch, "d_hn");
  Tensor d_h0 = at::empty_like(h0);
  Tensor holder;
  const bool has_out = d_out.has_value() && d_out->defined();
  const View<T> g = has_out ? view_of<T>(*d_out) : View<T>{nullptr, 0, 0};
  scan_backward<T, Cell<T>>(x, view_of<T>(out), g, d_hn.data_ptr<T>(), h0.data_ptr<T>(), dx,
                            d_h0.data_ptr<T>(), u, du_plane, lengths_ptr(lengths, holder), steps,
                            batch, n, reverse);
  return d_h0;
}

Tensor linear_scan_backward(const OptTensor& d_out, const Tensor& d_hn, const Tensor& a,
                            const Tensor& out, const Tensor& h0, const OptTensor& lengths,
                            bool reverse, const Tensor& d_a, const Tensor& d_b) {
  Tensor d_h0;
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "linear_scan_backward", [&] {
    // Linear's backward reads a only (x[1], b, is not needed): pass a twice.
    d_h0 = run_backward<scalar_t, Linear>(
        {view_of<scalar_t>(a), view_of<scalar_t>(a)}, out, d_out, d_hn, h0,
        {view_of<scalar_t>(d_a), view_of<scalar_t>(d_b)}, lengths, reverse, nullptr, nullptr);
  });
  return d_h0;
}

Tensor gated_scan_backward(int64_t kind, const OptTensor& d_out, const Tensor& d_hn,
                           const Tensor& pre, const Tensor& out, const Tensor& h0,
                           const OptTensor& lengths, bool reverse, const Tensor& d_pre) {
  const int64_t n = out.size(2);
  Tensor d_h0;
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "gated_scan_backward", [&] {
    const int64_t k = kind == kMinGRU ? 2 : 3;
    const auto x = blocks_of<scalar_t>(pre, k, n);
    const auto dx = blocks_of<scalar_t>(d_pre, k, n);
    d_h0 = kind == kMinGRU
               ? run_backward<scalar_t, MinGRU>(x, out, d_out, d_hn, h0, dx, lengths, reverse,
                                                nullptr, nullptr)
               : run_backward<scalar_t, MinLSTM>(x, out, d_out, d_hn, h0, dx, lengths, reverse,
                                                 nullptr, nullptr);
  });
  return d_h0;
}

std::vector<Tensor> indrnn_scan_backward(const OptTensor& d_out, const Tensor& d_hn,
                                         const Tensor& u, const Tensor& out, const Tensor& h0,
                                         const OptTensor& lengths, bool reverse, bool relu,
                                         const Tensor& d_pre) {
  Tensor d_h0;
  Tensor du_plane = at::zeros_like(h0);
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "indrnn_scan_backward", [&] {
    const int64_t n = out.size(2);
    // IndRNN's backward reads only h (out) and u: its input view is a placeholder.
    const auto x = blocks_of<scalar_t>(d_pre, 1, n);
    const auto dx = blocks_of<scalar_t>(d_pre, 1, n);
    const scalar_t* up = u.data_ptr<scalar_t>();
    scalar_t* du = du_plane.data_ptr<scalar_t>();
    d_h0 = relu ? run_backward<scalar_t, IndRNNRelu>(x, out, d_out, d_hn, h0, dx, lengths,
                                                     reverse, up, du)
                : run_backward<scalar_t, IndRNNTanh>(x, out, d_out, d_hn, h0, dx, lengths,
                                                     reverse, up, du);
  });
  return {d_h0, du_plane.sum(0)};
}

int64_t parallel_threads() {
#ifdef INTRA_OP_PARALLEL
  return at::get_num_threads();
#else
  return 1;
#endif
}

}  // namespace rnnlab_scan

TORCH_LIBRARY(rnnlab_scan, m) {
  m.def("parallel_threads() -> int", &rnnlab_scan::parallel_threads);
  m.def(
      "linear_scan(Tensor a, Tensor b, Tensor h0, Tensor? lengths, bool reverse, Tensor(a!) out) "
      "-> Tensor",
      &rnnlab_scan::linear_scan);
  m.def(
      "linear_scan_backward(Tensor? d_out, Tensor d_hn, Tensor a, Tensor out, Tensor h0, "
      "Tensor? lengths, bool reverse, Tensor(a!) d_a, Tensor(b!) d_b) -> Tensor",
      &rnnlab_scan::linear_scan_backward);
  m.def(
      "gated_scan(int kind, Tensor pre, Tensor h0, Tensor? lengths, bool reverse, "
      "Tensor(a!) out) -> Tensor",
      &rnnlab_scan::gated_scan);
  m.def(
      "gated_scan_backward(int kind, Tensor? d_out, Tensor d_hn, Tensor pre, Tensor out, "
      "Tensor h0, Tensor? lengths, bool reverse, Tensor(a!) d_pre) -> Tensor",
      &rnnlab_scan::gated_scan_backward);
  m.def(
      "indrnn_scan(Tensor pre, Tensor u, Tensor h0, Tensor? lengths, bool reverse, bool relu, "
      "Tensor(a!) out) -> Tensor",
      &rnnlab_scan::indrnn_scan);
  m.def(
      "indrnn_scan_backward(Tensor? d_out, Tensor d_hn, Tensor u, Tensor out, Tensor h0, "
      "Tensor? lengths, bool reverse, bool relu, Tensor(a!) d_pre) -> Tensor[]",
      &rnnlab_scan::indrnn_scan_backward);
}
