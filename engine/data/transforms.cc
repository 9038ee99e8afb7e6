#include "engine/data/transforms.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "engine/data/random.h"

namespace segqat::data {
namespace {

absl::Status CheckSize(const char* name, cv::Size size) {
  if (size.width <= 0 || size.height <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be positive, got (", size.width, ", ", size.height, ")"));
  }
  return absl::OkStatus();
}

// Resizes image (bilinear) and label (nearest) to `size`, unless unchanged.
void ResizePair(cv::Mat& image, cv::Mat& label, cv::Size size) {
  size.width = std::max(size.width, 1);
  size.height = std::max(size.height, 1);
  if (size == image.size()) return;
  cv::resize(image, image, size, 0, 0, cv::INTER_LINEAR);
  cv::resize(label, label, size, 0, 0, cv::INTER_NEAREST);
}

// Scales so the long side becomes `long_side` (cv2.resize with fx = fy).
void ResizeLongSide(cv::Mat& image, cv::Mat& label, int long_side) {
  const double scale = static_cast<double>(long_side) / std::max(image.cols, image.rows);
  ResizePair(image, label, cv::Size(cvRound(image.cols * scale), cvRound(image.rows * scale)));
}

// Pads bottom/right so the pair is at least `size`.
void PadPair(cv::Mat& image, cv::Mat& label, cv::Size size, const AugmentOptions& opt) {
  const int pad_h = std::max(size.height - image.rows, 0);
  const int pad_w = std::max(size.width - image.cols, 0);
  if (pad_h == 0 && pad_w == 0) return;
  cv::copyMakeBorder(image, image, 0, pad_h, 0, pad_w, cv::BORDER_CONSTANT, opt.padding_value);
  cv::copyMakeBorder(label, label, 0, pad_h, 0, pad_w, cv::BORDER_CONSTANT,
                     cv::Scalar(opt.ignore_index));
}

double DrawStepScale(const AugmentOptions& opt, std::mt19937& rng) {
  if (opt.min_scale == opt.max_scale) return opt.min_scale;
  if (opt.scale_step <= 0) return UniformReal(rng, opt.min_scale, opt.max_scale);
  const std::vector<double> factors = StepScaleFactors(opt);
  return factors[UniformInt(rng, static_cast<int>(factors.size()))];
}

}  // namespace

absl::Status ValidateAugmentOptions(const AugmentOptions& opt) {
  if (absl::Status s = CheckSize("TRAIN_CROP_SIZE", opt.train_crop); !s.ok()) return s;
  if (absl::Status s = CheckSize("EVAL_CROP_SIZE", opt.eval_crop); !s.ok()) return s;
  switch (opt.method) {
    case AugMethod::kUnpadding:
      if (absl::Status s = CheckSize("AUG.FIX_RESIZE_SIZE", opt.fix_resize); !s.ok()) return s;
      break;
    case AugMethod::kStepScaling:
      if (opt.min_scale <= 0 || opt.min_scale > opt.max_scale) {
        return absl::InvalidArgumentError(
            absl::StrCat("AUG.MIN_SCALE_FACTOR (", opt.min_scale,
                         ") must be > 0 and <= AUG.MAX_SCALE_FACTOR (", opt.max_scale, ")"));
      }
      break;
    case AugMethod::kRangeScaling:
      if (opt.min_resize_value <= 0 || opt.min_resize_value > opt.max_resize_value) {
        return absl::InvalidArgumentError(
            absl::StrCat("AUG.MIN_RESIZE_VALUE (", opt.min_resize_value,
                         ") must be > 0 and <= AUG.MAX_RESIZE_VALUE (", opt.max_resize_value, ")"));
      }
      if (opt.inf_resize_value <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("AUG.INF_RESIZE_VALUE must be positive, got ", opt.inf_resize_value));
      }
      break;
  }
  if (!(opt.flip_ratio >= 0.0 && opt.flip_ratio <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("AUG.FLIP_RATIO must be in [0, 1], got ", opt.flip_ratio));
  }
  for (float s : opt.std) {
    if (s == 0.0f) return absl::InvalidArgumentError("MEAN/STD: std must not be zero");
  }
  if (opt.ignore_index < 0 || opt.ignore_index > 255) {
    return absl::InvalidArgumentError(
        absl::StrCat("DATASET.IGNORE_INDEX must be in [0, 255], got ", opt.ignore_index));
  }
  return absl::OkStatus();
}

std::vector<double> StepScaleFactors(const AugmentOptions& opt) {
  if (opt.min_scale == opt.max_scale) return {opt.min_scale};
  if (opt.scale_step <= 0) return {};
  // The epsilon keeps e.g. (1.0 - 0.1) / 0.1 = 8.999... from losing a step.
  const int num = static_cast<int>((opt.max_scale - opt.min_scale) / opt.scale_step + 1.0 + 1e-9);
  if (num <= 1) return {opt.min_scale};
  std::vector<double> factors(num);
  for (int i = 0; i < num; ++i) {
    factors[i] = opt.min_scale + (opt.max_scale - opt.min_scale) * i / (num - 1);
  }
  return factors;
}

Sample TrainTransform(const Sample& in, const AugmentOptions& opt, std::mt19937& rng) {
  cv::Mat image = in.image;
  cv::Mat label = in.label;
  switch (opt.method) {
    case AugMethod::kUnpadding:
      ResizePair(image, label, opt.fix_resize);
      break;
    case AugMethod::kStepScaling: {
      const double scale = DrawStepScale(opt, rng);
      if (scale != 1.0) {
        ResizePair(image, label,
                   cv::Size(static_cast<int>(image.cols * scale + 0.5),
                            static_cast<int>(image.rows * scale + 0.5)));
      }
      break;
    }
    case AugMethod::kRangeScaling: {
      const int long_side =
          opt.min_resize_value == opt.max_resize_value
              ? opt.min_resize_value
              : static_cast<int>(UniformReal(rng, opt.min_resize_value, opt.max_resize_value) +
                                 0.5);
      ResizeLongSide(image, label, long_side);
      break;
    }
  }

  PadPair(image, label, opt.train_crop, opt);
  const int y0 = UniformInt(rng, image.rows - opt.train_crop.height + 1);
  const int x0 = UniformInt(rng, image.cols - opt.train_crop.width + 1);
  const cv::Rect window(cv::Point(x0, y0), opt.train_crop);

  Sample out;
  out.image_path = in.image_path;
  out.image = image(window).clone();
  out.label = label(window).clone();
  if (opt.mirror && UniformInt(rng, 2) == 1) {
    cv::flip(out.image, out.image, 1);
    cv::flip(out.label, out.label, 1);
  }
  if (opt.flip && Bernoulli(rng, opt.flip_ratio)) {
    cv::flip(out.image, out.image, 0);
    cv::flip(out.label, out.label, 0);
  }
  return out;
}

absl::StatusOr<Sample> EvalTransform(const Sample& in, const AugmentOptions& opt) {
  if (absl::Status s = ValidateAugmentOptions(opt); !s.ok()) return s;
  if (in.image.empty() || in.image.type() != CV_8UC3 || in.label.type() != CV_8UC1 ||
      in.label.size() != in.image.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image ", in.image_path, ": expected an 8-bit RGB image and an 8-bit label of one size"));
  }
  try {
    cv::Mat image = in.image;
    cv::Mat label = in.label;
    if (opt.method == AugMethod::kUnpadding) {
      ResizePair(image, label, opt.fix_resize);
    } else if (opt.method == AugMethod::kRangeScaling) {
      ResizeLongSide(image, label, opt.inf_resize_value);
    }
    if (image.cols > opt.eval_crop.width || image.rows > opt.eval_crop.height) {
      return absl::InvalidArgumentError(
          absl::StrCat("image ", in.image_path, " is ", image.cols, "x", image.rows,
                       " after resizing, larger than EVAL_CROP_SIZE (", opt.eval_crop.width, ", ",
                       opt.eval_crop.height, ")"));
    }
    PadPair(image, label, opt.eval_crop, opt);
    Sample out;
    out.image_path = in.image_path;
    // Clone only when nothing above made a copy.
    out.image = image.data == in.image.data ? image.clone() : image;
    out.label = label.data == in.label.data ? label.clone() : label;
    return out;
  } catch (const cv::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("transforming image ", in.image_path, ": ", e.what()));
  }
}

void NormalizeToChw(const cv::Mat& rgb, const AugmentOptions& opt, float* out) {
  std::array<std::array<float, 256>, 3> lut;
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      lut[c][v] = (static_cast<float>(v) / 255.0f - opt.mean[c]) / opt.std[c];
    }
  }
  const int height = rgb.rows;
  const int width = rgb.cols;
  const size_t plane = static_cast<size_t>(height) * width;
  for (int y = 0; y < height; ++y) {
    const uint8_t* row = rgb.ptr<uint8_t>(y);
    float* r = out + static_cast<size_t>(y) * width;
    float* g = r + plane;
    float* b = g + plane;
    for (int x = 0; x < width; ++x) {
      r[x] = lut[0][row[3 * x]];
      g[x] = lut[1][row[3 * x + 1]];
      b[x] = lut[2][row[3 * x + 2]];
    }
  }
}

}  // namespace segqat::data
