// Bilinear resize (align_corners false), what at::upsample_bilinear2d
// computes, in two separable passes: each input row is interpolated along W
// once, then each output row is a blend of two of those rows. The logits'
// upsampling to the image size (16x at output stride 16) was the engine's
// slowest node; this takes less than half its time. Thread-safe; parallel
// over at::get_num_threads().
#ifndef SEGQAT_ENGINE_INFER_RESIZE_H_
#define SEGQAT_ENGINE_INFER_RESIZE_H_

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace segqat::infer {

// x: float N x C x h x w (any layout). Returns float N x C x height x width,
// contiguous: out = l0 * (m0 * x[y0][x0] + m1 * x[y0][x1]) + l1 * (m0 * x[y1][x0]
// + m1 * x[y1][x1]), with the source indices and weights PyTorch uses.
at::Tensor ResizeBilinear(const at::Tensor& x, int64_t height, int64_t width);

}  // namespace segqat::infer

#endif  // SEGQAT_ENGINE_INFER_RESIZE_H_
