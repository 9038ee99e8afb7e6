// PaddleSeg's learning-rate policies (pdseg/solver.py), per global step:
//   poly:      LR * (1 - step/total)^POWER
//   cosine:    LR * (cos(pi * step/total) + 1) / 2
//   piecewise: LR * GAMMA^k, k = number of DECAY_EPOCH boundaries passed
// with an optional linear warm-up over the first LR_WARMUP_STEPS steps.
#ifndef SEGQAT_ENGINE_TRAIN_LR_SCHEDULE_H_
#define SEGQAT_ENGINE_TRAIN_LR_SCHEDULE_H_

#include <cstdint>

#include "engine/config/config.h"

namespace segqat {

// step is 0-based; steps_per_epoch > 0; total_steps = epochs * steps_per_epoch.
double LearningRate(const Config& cfg, int64_t step, int64_t steps_per_epoch, int64_t total_steps);

}  // namespace segqat

#endif  // SEGQAT_ENGINE_TRAIN_LR_SCHEDULE_H_
