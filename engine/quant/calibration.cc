#include "engine/quant/calibration.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "engine/quant/activation_quantizer.h"
#include "engine/quant/quant_add.h"
#include "engine/quant/quant_layers.h"

namespace segqat::quant {

absl::StatusOr<CalibMethod> ParseCalibMethod(const std::string& text, const std::string& flag) {
  if (text == "abs_max") return CalibMethod::kAbsMax;
  if (text == "percentile") return CalibMethod::kPercentile;
  if (text == "kl") return CalibMethod::kKl;
  return absl::InvalidArgumentError(
      absl::StrCat(flag, ": '", text, "' is not one of abs_max, percentile, kl"));
}

std::string CalibMethodName(CalibMethod method) {
  switch (method) {
    case CalibMethod::kAbsMax:
      return "abs_max";
    case CalibMethod::kPercentile:
      return "percentile";
    case CalibMethod::kKl:
      return "kl";
  }
  return "?";
}

float PercentileThreshold(const std::vector<double>& hist, float max, double percentile) {
  double total = 0;
  for (double c : hist) total += c;
  if (total <= 0 || hist.empty()) return max;
  const double target = total * percentile / 100.0;
  double seen = 0;
  for (size_t b = 0; b < hist.size(); ++b) {
    seen += hist[b];
    if (seen >= target) return max * static_cast<float>(b + 1) / static_cast<float>(hist.size());
  }
  return max;
}

float KlThreshold(const std::vector<double>& hist, float max, int bits) {
  const size_t bins = hist.size();
  const size_t levels = size_t{1} << (bits - 1);
  if (bins <= levels) return max;
  std::vector<double> tail(bins + 1, 0.0);  // tail[i] = sum of hist[i..bins)
  for (size_t i = bins; i-- > 0;) tail[i] = tail[i + 1] + hist[i];
  if (tail[0] <= 0) return max;
  double best_kl = std::numeric_limits<double>::infinity();
  size_t best_i = bins;
  std::vector<double> q(bins);
  for (size_t i = levels; i <= bins; ++i) {
    // P: the first i bins, with everything beyond folded into the last (clipped).
    // Q: those i bins merged into `levels` quantization steps, each step's
    // count spread evenly over the bins of it that P has non-empty.
    std::fill(q.begin(), q.begin() + i, 0.0);
    for (size_t j = 0; j < levels; ++j) {
      const size_t begin = j * i / levels;
      const size_t end = (j + 1) * i / levels;
      double sum = 0;
      size_t nonzero = 0;
      for (size_t k = begin; k < end; ++k) {
        sum += hist[k];
        if (hist[k] > 0) ++nonzero;
      }
      if (nonzero == 0) continue;
      for (size_t k = begin; k < end; ++k) {
        if (hist[k] > 0) q[k] = sum / static_cast<double>(nonzero);
      }
    }
    const double p_total = tail[0];  // P keeps every count
    const double q_total = tail[0] - tail[i];
    if (q_total <= 0) continue;
    double kl = 0;
    for (size_t k = 0; k < i; ++k) {
      const double p = (k + 1 == i ? hist[k] + tail[i] : hist[k]) / p_total;
      if (p <= 0) continue;
      // A clipped last bin that Q leaves empty is smoothed, as TensorRT does.
      const double qk = std::max(q[k] / q_total, 1e-4 / static_cast<double>(i));
      kl += p * std::log(p / qk);
    }
    if (kl < best_kl) {
      best_kl = kl;
      best_i = i;
    }
  }
  return max * static_cast<float>(best_i) / static_cast<float>(bins);
}

namespace {

struct Observed {
  std::string name;
  std::shared_ptr<ActivationQuantizerImpl> quantizer;
  float abs_max = 0;
  int64_t count = 0;
  std::vector<double> hist;
};

// While calibrating, every fake-quant layer and add computes in float, so
// each quantizer sees the float model's activations (whichever layers are
// quantized); removes the observers and restores the layers when
// calibration ends, however it ends.
class CalibrationScope {
 public:
  CalibrationScope(torch::nn::Module& model, std::vector<Observed>& observed)
      : observed_(observed) {
    for (const auto& m : model.modules()) {
      if (auto layer = std::dynamic_pointer_cast<QuantizableLayer>(m);
          layer && layer->mode() == LayerMode::kFakeQuant) {
        layers_.emplace_back(layer, layer->simulated());
        layer->set_simulated(false);
      }
      if (auto add = std::dynamic_pointer_cast<QAddImpl>(m);
          add && add->mode() == LayerMode::kFakeQuant) {
        adds_.emplace_back(add, add->simulated());
        add->set_simulated(false);
      }
    }
  }
  ~CalibrationScope() {
    for (Observed& o : observed_) o.quantizer->set_observer(nullptr);
    for (auto& [layer, on] : layers_) layer->set_simulated(on);
    for (auto& [add, on] : adds_) add->set_simulated(on);
  }

 private:
  std::vector<Observed>& observed_;
  std::vector<std::pair<std::shared_ptr<QuantizableLayer>, bool>> layers_;
  std::vector<std::pair<std::shared_ptr<QAddImpl>, bool>> adds_;
};

}  // namespace

absl::StatusOr<CalibrationReport> Calibrate(torch::nn::Module& model, const CalibOptions& options,
                                            const std::function<absl::Status()>& run_batches) {
  std::vector<Observed> observed;
  for (const auto& item : model.named_modules()) {
    auto q = std::dynamic_pointer_cast<ActivationQuantizerImpl>(item.value());
    if (!q) continue;
    Observed o;
    o.name = item.key();
    o.quantizer = q;
    observed.push_back(std::move(o));
  }
  if (observed.empty()) {
    return absl::FailedPreconditionError("calibration: the model has no quantized layer");
  }
  CalibrationScope scope(model, observed);
  CalibrationReport report;
  try {
    for (Observed& o : observed) {
      o.quantizer->set_observer([&o](const at::Tensor& x) {
        o.abs_max = std::max(o.abs_max, x.abs().max().item<float>());
        o.count += x.numel();
      });
    }
    if (auto st = run_batches(); !st.ok()) return st;
    ++report.passes;
    for (const Observed& o : observed) {
      if (o.count == 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("calibration: no data reached ", o.name, " (an empty calibration set?)"));
      }
    }
    if (options.method != CalibMethod::kAbsMax) {
      for (Observed& o : observed) {
        o.hist.assign(static_cast<size_t>(options.bins), 0.0);
        if (o.abs_max <= 0) continue;
        o.quantizer->set_observer([&o, bins = options.bins](const at::Tensor& x) {
          const at::Tensor a = x.abs().to(at::kFloat);
          at::Tensor h = at::histc(a, bins, 0, o.abs_max).to(at::kCPU, at::kDouble);
          const double* d = h.data_ptr<double>();
          for (int b = 0; b < bins; ++b) o.hist[b] += d[b];
          // Exact zeros (ReLU's) are exact at any scale: they take no part
          // in choosing one (left in, their spike pulls KL to tiny ranges).
          o.hist[0] -= static_cast<double>(a.eq(0).sum().item<int64_t>());
        });
      }
      if (auto st = run_batches(); !st.ok()) return st;
      ++report.passes;
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("calibration: ", e.what_without_backtrace()));
  }
  for (Observed& o : observed) {
    o.quantizer->set_observer(nullptr);
    float s = o.abs_max;
    if (o.abs_max > 0) {
      const int bits = o.quantizer->bits();
      if (options.method == CalibMethod::kPercentile) {
        s = PercentileThreshold(o.hist, o.abs_max, options.percentile);
      } else if (options.method == CalibMethod::kKl) {
        s = KlThreshold(o.hist, o.abs_max, bits);
      }
    }
    // An input that was zero everywhere still needs a positive scale.
    s = std::max(s, 1e-8f);
    o.quantizer->SetScale(s);
    report.ranges.push_back({o.name, o.abs_max, s});
  }
  return report;
}

}  // namespace segqat::quant
