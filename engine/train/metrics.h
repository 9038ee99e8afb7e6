// Segmentation metrics from a confusion matrix, as PaddleSeg computes them
// (pdseg/metrics.py): rows are labels, columns predictions, ignored pixels
// never counted.
//   IoU_c = cm[c][c] / (row_c + col_c - cm[c][c]); a class with an empty
//           union counts 0, and mIoU averages over all classes.
//   acc_c = cm[c][c] / col_c (PaddleSeg's "Category Acc", i.e. precision;
//           0 when nothing was predicted as c).
//   acc   = trace / total;  kappa = (po - pe) / (1 - pe).
// Thread-compatible.
#ifndef SEGQAT_ENGINE_TRAIN_METRICS_H_
#define SEGQAT_ENGINE_TRAIN_METRICS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace segqat {

struct SegMetrics {
  double miou = 0;
  double acc = 0;
  double kappa = 0;
  std::vector<double> class_iou;
  std::vector<double> class_acc;
  int64_t images = 0;
  int64_t pixels = 0;  // non-ignored pixels counted

  // {"miou": ..., "acc": ..., "kappa": ..., "class_iou": [...],
  //  "class_acc": [...], "images": N}
  std::string ToJson() const;
};

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int num_classes);

  // Adds n pixels; labels equal to ignore_index are skipped. A label or
  // prediction outside [0, num_classes) that is not ignored is skipped too
  // (callers validate labels when loading).
  void Add(const uint8_t* labels, const int64_t* predictions, int64_t n, int ignore_index);
  // Adds a whole matrix (same num_classes), e.g. one computed on a device.
  void AddCounts(const std::vector<int64_t>& counts);
  void AddImages(int64_t n) { images_ += n; }

  int num_classes() const { return num_classes_; }
  int64_t at(int label, int prediction) const { return counts_[label * num_classes_ + prediction]; }
  SegMetrics Compute() const;

 private:
  int num_classes_;
  std::vector<int64_t> counts_;
  int64_t images_ = 0;
};

}  // namespace segqat

#endif  // SEGQAT_ENGINE_TRAIN_METRICS_H_
