// TRAIN.SYNC_BATCH_NORM: the WorldSum that SyncBatchNorm2d layers
// (engine/models/layers.h) use to compute global-batch statistics across the
// ranks of a data-parallel run.
#ifndef SEGQAT_ENGINE_TRAIN_SYNC_BATCH_NORM_H_
#define SEGQAT_ENGINE_TRAIN_SYNC_BATCH_NORM_H_

#include "absl/status/status.h"
#include "engine/models/layers.h"
#include "engine/train/collectives.h"

namespace segqat {

// A differentiable all-reduce sum over `c`: forward sums the tensor across
// ranks; backward sums the incoming gradients across ranks, so that, once the
// parameter gradients are averaged, every rank holds the gradient of the
// global batch. Every rank must call it in the same order (forward and
// backward run in graph order, which is the same on every rank). When a
// collective fails, its status goes to *error (kept until the caller reads
// it) and the call throws, unwinding the forward or backward pass.
models::WorldSum CollectiveWorldSum(Collectives& c, absl::Status* error);

}  // namespace segqat

#endif  // SEGQAT_ENGINE_TRAIN_SYNC_BATCH_NORM_H_
