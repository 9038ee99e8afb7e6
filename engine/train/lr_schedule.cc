#include "engine/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace segqat {

double LearningRate(const Config& cfg, int64_t step, int64_t steps_per_epoch, int64_t total_steps) {
  const double base = cfg.Float("SOLVER.LR");
  const std::string& policy = cfg.Str("SOLVER.LR_POLICY");
  const double t = total_steps > 0 ? std::min(1.0, static_cast<double>(step) / total_steps) : 0;
  double lr = base;
  if (policy == "poly") {
    lr = base * std::pow(1.0 - t, cfg.Float("SOLVER.POWER"));
  } else if (policy == "cosine") {
    lr = base * (std::cos(M_PI * t) + 1.0) / 2.0;
  } else if (policy == "piecewise") {
    const int64_t epoch = step / std::max<int64_t>(1, steps_per_epoch);
    for (int64_t boundary : cfg.Ints("SOLVER.DECAY_EPOCH")) {
      if (epoch >= boundary) lr *= cfg.Float("SOLVER.GAMMA");
    }
  }
  const int64_t warmup = cfg.Int("SOLVER.LR_WARMUP_STEPS");
  if (cfg.Bool("SOLVER.LR_WARMUP") && step < warmup) {
    lr *= static_cast<double>(step + 1) / warmup;
  }
  return lr;
}

}  // namespace segqat
