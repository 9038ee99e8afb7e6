#include "engine/infer/resize.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace segqat::infer {
namespace {

// For each output index along one axis: the two source indices and their
// weights, as PyTorch's area_pixel_compute_source_index gives them for
// linear modes without align_corners.
struct Taps {
  std::vector<int64_t> i0, i1;
  std::vector<float> w0, w1;
};

Taps ComputeTaps(int64_t in, int64_t out) {
  Taps t;
  t.i0.resize(out);
  t.i1.resize(out);
  t.w0.resize(out);
  t.w1.resize(out);
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t d = 0; d < out; ++d) {
    // One rounding, as LibTorch 2.x computes it: its CPU kernels are built for
    // AVX2/AVX-512, where scale * (d + 0.5) - 0.5 compiles to a fused
    // multiply-add (with two roundings a 13 -> 5 resize differed by 5 ulp).
    float src = std::fma(scale, static_cast<float>(d) + 0.5f, -0.5f);
    if (src < 0) src = 0;
    const auto i0 = static_cast<int64_t>(src);
    const float l1 = src - static_cast<float>(i0);
    t.i0[d] = i0;
    t.i1[d] = i0 + (i0 < in - 1 ? 1 : 0);
    t.w0[d] = 1.0f - l1;
    t.w1[d] = l1;
  }
  return t;
}

}  // namespace

at::Tensor ResizeBilinear(const at::Tensor& x, int64_t height, int64_t width) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.dim() == 4 && height > 0 && width > 0,
              "ResizeBilinear takes a 4-D float tensor and a positive size");
  at::Tensor in = x.contiguous();
  const int64_t planes = in.size(0) * in.size(1), h = in.size(2), w = in.size(3);
  at::Tensor out = at::empty({in.size(0), in.size(1), height, width}, in.options());
  if (planes == 0) return out;
  const Taps tx = ComputeTaps(w, width), ty = ComputeTaps(h, height);
  // Pass 1: every input row interpolated along W.
  at::Tensor rows = at::empty({planes, h, width}, in.options());
  const float* src = in.data_ptr<float>();
  float* mid = rows.data_ptr<float>();
  at::parallel_for(0, planes * h, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* s = src + r * w;
      float* m = mid + r * width;
      for (int64_t d = 0; d < width; ++d) {
        m[d] = tx.w0[d] * s[tx.i0[d]] + tx.w1[d] * s[tx.i1[d]];
      }
    }
  });
  // Pass 2: every output row a blend of two of those rows.
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, planes * height, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t plane = r / height, y = r % height;
      const float* a = mid + (plane * h + ty.i0[y]) * width;
      const float* b = mid + (plane * h + ty.i1[y]) * width;
      const float l0 = ty.w0[y], l1 = ty.w1[y];
      float* o = dst + r * width;
      for (int64_t d = 0; d < width; ++d) o[d] = l0 * a[d] + l1 * b[d];
    }
  });
  return out;
}

}  // namespace segqat::infer
