// Quantization without training: PTQ (PaddleSlim's quant_post) calibrates a
// float checkpoint's activation ranges on training images and gives a
// checkpoint in the same form as a QAT one (eval --convert, export and
// predict take it unchanged); the sensitivity scan quantizes one layer at a
// time with PTQ ranges and measures each one's mIoU drop on the val split.
#ifndef SEGQAT_ENGINE_TRAIN_POST_TRAINING_H_
#define SEGQAT_ENGINE_TRAIN_POST_TRAINING_H_

#include <c10/core/Device.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/config/config.h"
#include "engine/models/deeplab.h"
#include "engine/quant/calibration.h"
#include "engine/quant/quant_aware.h"
#include "engine/train/metrics.h"
#include "engine/train/progress.h"
#include "job/job_request.h"

namespace segqat {

struct DatasetLists;  // engine/train/dataset.h

struct PtqOptions {
  quant::CalibOptions calib;
  int calib_batches =
      job::kDefaultCalibBatches;  // of BATCH_SIZE training images, in list order, eval transforms
  c10::Device device = c10::Device(c10::kCPU);
  const std::atomic<bool>* stop = nullptr;  // Cancelled when set
  // The file lists the job was checked with (null: read them here).
  const DatasetLists* lists = nullptr;
};

struct PtqModel {
  models::DeepLabV3Plus model{nullptr};  // fake-quant, calibrated, eval mode, on the CPU
  quant::QuantAwareReport quant;
  quant::CalibrationReport calibration;
  int64_t calib_images = 0;
};

// The float checkpoint at `key` (TRAIN.PRETRAINED_MODEL_DIR for PTQ,
// TEST.TEST_MODEL for a scan), through QuantAware with cfg's SLIM keys, its
// activation ranges calibrated. InvalidArgument naming the key for a missing
// or quantized checkpoint, for SLIM.activation_quantize_type abs_max (whose
// ranges are per batch: nothing to calibrate), and for an empty calibration set.
absl::StatusOr<PtqModel> PostTrainingQuantize(const Config& cfg, const std::string& key,
                                              const PtqOptions& options, ProgressSink* sink);

// The checkpoint of a PTQ model: quantized, epoch 0, in `dir` (atomically).
absl::Status SavePtqCheckpoint(const std::string& dir, const PtqModel& ptq, const Config& cfg);

struct LayerSensitivity {
  std::string name;  // the qualified name not_quant_pattern matches
  std::string kind;  // "conv2d", "depthwise_conv2d", "mul" or "add"
  double miou = 0;   // with this layer alone quantized
  double drop = 0;   // float mIoU - miou
};

struct SensitivityReport {
  double float_miou = 0;
  double ptq_miou = 0;                   // every layer quantized
  std::vector<LayerSensitivity> layers;  // worst (largest drop) first
  // Layers kept float, worst first, until the PTQ drop is within the
  // budget (or no layer with a positive drop is left), and the mIoU with
  // exactly the layers that pattern matches kept float.
  double budget = 0;
  std::vector<std::string> suggested_pattern;
  double suggested_miou = 0;
  std::string calib;  // the calibration method
  int64_t calib_images = 0;

  std::string ToJson() const;
};

// Scans `ptq` (from PostTrainingQuantize) on the val split; budget is the
// mIoU drop (a fraction: 0.005 is half a point) a suggestion may leave.
absl::StatusOr<SensitivityReport> ScanSensitivity(PtqModel& ptq, const Config& cfg, double budget,
                                                  c10::Device device, ProgressSink* sink,
                                                  const std::atomic<bool>* stop,
                                                  const DatasetLists* lists = nullptr);

}  // namespace segqat

#endif  // SEGQAT_ENGINE_TRAIN_POST_TRAINING_H_
