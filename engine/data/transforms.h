// PaddleSeg's augmentation (pdseg/data_aug.py and reader.py semantics) for
// one sample: resizing by AUG_METHOD, padding, random crop, mirror and flip,
// and the final normalisation into the network's planar float layout.
//
// All functions are thread-safe; TrainTransform's randomness comes only from
// the rng passed in, drawn through random.h, so the result is the same for the
// same rng state on every platform.
#ifndef SEGQAT_ENGINE_DATA_TRANSFORMS_H_
#define SEGQAT_ENGINE_DATA_TRANSFORMS_H_

#include <array>
#include <opencv2/core.hpp>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/data/sample.h"

namespace segqat::data {

enum class AugMethod { kUnpadding, kStepScaling, kRangeScaling };

struct AugmentOptions {
  AugMethod method = AugMethod::kStepScaling;
  cv::Size train_crop{769, 769};   // (width, height)
  cv::Size eval_crop{2049, 1025};  // (width, height)
  cv::Size fix_resize{500, 500};   // unpadding
  // rangescaling: the long side is resized to this (eval) or to a value drawn
  // from [min, max] (train).
  int inf_resize_value = 500, max_resize_value = 600, min_resize_value = 400;
  double min_scale = 0.5, max_scale = 2.0, scale_step = 0.25;  // stepscaling
  bool mirror = true;                                          // horizontal flip with p 0.5
  bool flip = false;                                           // vertical flip with p flip_ratio
  double flip_ratio = 0.5;
  cv::Scalar padding_value{127.5, 127.5, 127.5};  // RGB, saturated to 8 bits
  int ignore_index = 255;
  std::array<float, 3> mean{0.5f, 0.5f, 0.5f};  // applied to image/255, RGB order
  std::array<float, 3> std{0.5f, 0.5f, 0.5f};
};

// InvalidArgument naming the offending field (in PaddleSeg's config spelling,
// e.g. "AUG.MIN_SCALE_FACTOR") when the options cannot be used: non-positive
// crop or resize sizes, min_scale <= 0 or min_scale > max_scale, a resize
// range with min <= 0 or min > max, flip_ratio outside [0, 1], a zero std,
// ignore_index outside [0, 255].
absl::Status ValidateAugmentOptions(const AugmentOptions& opt);

// The scale factors stepscaling draws from: num = int((max - min) / step + 1)
// values evenly spaced from min to max ({0.5, 0.75, ..., 2.0} by default);
// {min} when min == max. Empty when step <= 0 (continuous scaling).
std::vector<double> StepScaleFactors(const AugmentOptions& opt);

// Training augmentation, in this order:
//  1. resize per method (image bilinear, label nearest):
//     unpadding    -> fix_resize;
//     stepscaling  -> a factor drawn uniformly from StepScaleFactors(opt), or
//                     uniformly from [min_scale, max_scale] when step <= 0;
//                     new size int(size * factor + 0.5);
//     rangescaling -> long side to int(uniform(min, max) + 0.5);
//  2. pad bottom/right to at least train_crop (image with padding_value,
//     label with ignore_index);
//  3. a uniformly placed train_crop window;
//  4. mirror (p 0.5, when enabled), then vertical flip (p flip_ratio, when
//     enabled), applied to image and label together.
// The output owns its pixels (never shares them with `in`).
// REQUIRES: ValidateAugmentOptions(opt).ok(); in.image is non-empty CV_8UC3
// and in.label CV_8UC1 of the same size. OpenCV may throw cv::Exception
// otherwise; callers that cannot guarantee this catch it.
Sample TrainTransform(const Sample& in, const AugmentOptions& opt, std::mt19937& rng);

// Evaluation: unpadding -> resize to fix_resize; rangescaling -> long side to
// inf_resize_value; stepscaling -> unchanged; then pad bottom/right to exactly
// eval_crop (image with padding_value, label with ignore_index).
// Errors: InvalidArgument naming the image and EVAL_CROP_SIZE when the
// (resized) image is larger than eval_crop; InvalidArgument for invalid
// options or input (also when OpenCV throws).
absl::StatusOr<Sample> EvalTransform(const Sample& in, const AugmentOptions& opt);

// Writes (rgb / 255 - mean[c]) / std[c] as planar CHW float32 into out:
// out[c * H * W + y * W + x] for channel c of pixel (x, y).
// REQUIRES: rgb is CV_8UC3; out has room for 3 * rgb.rows * rgb.cols floats.
void NormalizeToChw(const cv::Mat& rgb, const AugmentOptions& opt, float* out);

}  // namespace segqat::data

#endif  // SEGQAT_ENGINE_DATA_TRANSFORMS_H_
