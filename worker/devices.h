// What this worker has, and whether a job fits it: its devices as the
// protocol describes them, and the memory a training step needs against the
// memory of the device the job was placed on.
#ifndef SEGQAT_WORKER_DEVICES_H_
#define SEGQAT_WORKER_DEVICES_H_

#include <vector>

#include "absl/status/status.h"
#include "engine/config/config.h"
#include "engine/runtime/device_info.h"
#include "engine/runtime/job_runner.h"
#include "segqat/v1/workers.pb.h"

namespace segqat::agent {

// This machine's devices as the protocol describes them: one "cuda" entry
// per ordinal in `gpus` (name, memory and compute capability from `info`), or
// a single "cpu".
std::vector<v1::Device> DescribeDevices(const std::vector<int>& gpus,
                                        const runtime::RuntimeInfo& info);

// FailedPrecondition naming BATCH_SIZE and TRAIN_CROP_SIZE when a training
// job cannot fit in the memory of the device it was placed on (each of
// `world` ranks trains its share of the batch): refused by name instead of
// taking the worker (or segqatd, for an embedded one) down with it.
absl::Status CheckTrainingFits(const runtime::JobRequest& request, const Config& cfg, int world);

}  // namespace segqat::agent

#endif  // SEGQAT_WORKER_DEVICES_H_
