// Post-training calibration of activation ranges (PaddleSlim's
// quant_post, TensorRT's calibrators): the model, already through
// QuantAware, runs in float on calibration images (weights unquantized too)
// with every activation quantizer observing its input; each quantizer's
// scale is then set by the method:
//   abs_max     the largest |x| seen
//   percentile  the smallest t with at least `percentile` % of the |x| seen
//               at or below t (a histogram of |x| on [0, abs_max])
//   kl          the t whose clipped, quantized histogram of |x| is closest
//               to the seen one in KL divergence (TensorRT's entropy
//               calibration: 2^(bits-1) levels, `bins` histogram bins)
// The histograms leave out exact zeros (a ReLU's many): zero is exact at any
// scale, and its spike would pull KL towards ranges that clip everything else.
// Weights need no calibration: they keep per-channel abs_max, as in QAT.
#ifndef SEGQAT_ENGINE_QUANT_CALIBRATION_H_
#define SEGQAT_ENGINE_QUANT_CALIBRATION_H_

#include <torch/nn/module.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace segqat::quant {

enum class CalibMethod { kAbsMax, kPercentile, kKl };

// "abs_max", "percentile" or "kl"; InvalidArgument naming `flag` otherwise.
absl::StatusOr<CalibMethod> ParseCalibMethod(const std::string& text, const std::string& flag);
std::string CalibMethodName(CalibMethod method);

struct CalibOptions {
  CalibMethod method = CalibMethod::kAbsMax;
  double percentile = 99.99;
  int bins = 2048;
};

struct CalibratedRange {
  std::string name;   // the quantizer's qualified name
  float abs_max = 0;  // the largest |x| seen
  float scale = 0;    // the scale set
};

struct CalibrationReport {
  std::vector<CalibratedRange> ranges;
  int passes = 0;  // times run_batches was called
};

// Histogram-based thresholds on |x| (exposed for tests): `hist` counts |x|
// in `hist.size()` equal bins on [0, max]; both return a value in (0, max].
float PercentileThreshold(const std::vector<double>& hist, float max, double percentile);
float KlThreshold(const std::vector<double>& hist, float max, int bits);

// Sets the scale of every activation quantizer in `model` (which must be in
// eval mode and through QuantAware). run_batches runs the model forward over
// the calibration set once; it is called once for abs_max and twice for the
// histogram methods. Its error is returned as is. FailedPrecondition when
// the model has no activation quantizer, or when a pass saw no data.
absl::StatusOr<CalibrationReport> Calibrate(torch::nn::Module& model, const CalibOptions& options,
                                            const std::function<absl::Status()>& run_batches);

}  // namespace segqat::quant

#endif  // SEGQAT_ENGINE_QUANT_CALIBRATION_H_
