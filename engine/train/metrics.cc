#include "engine/train/metrics.h"

#include <cstdio>
#include <sstream>

namespace segqat {

ConfusionMatrix::ConfusionMatrix(int num_classes)
    : num_classes_(num_classes), counts_(static_cast<size_t>(num_classes) * num_classes, 0) {}

void ConfusionMatrix::Add(const uint8_t* labels, const int64_t* predictions, int64_t n,
                          int ignore_index) {
  for (int64_t i = 0; i < n; ++i) {
    const int l = labels[i];
    const int64_t p = predictions[i];
    if (l == ignore_index || l >= num_classes_ || p < 0 || p >= num_classes_) continue;
    ++counts_[l * num_classes_ + p];
  }
}

void ConfusionMatrix::AddCounts(const std::vector<int64_t>& counts) {
  for (size_t i = 0; i < counts_.size() && i < counts.size(); ++i) counts_[i] += counts[i];
}

SegMetrics ConfusionMatrix::Compute() const {
  const int c = num_classes_;
  SegMetrics m;
  m.images = images_;
  std::vector<double> row(c, 0), col(c, 0);
  double total = 0, diag = 0;
  for (int i = 0; i < c; ++i) {
    for (int j = 0; j < c; ++j) {
      const double v = static_cast<double>(counts_[i * c + j]);
      row[i] += v;
      col[j] += v;
      total += v;
    }
    diag += static_cast<double>(counts_[i * c + i]);
  }
  m.pixels = static_cast<int64_t>(total);
  double iou_sum = 0, pe = 0;
  for (int i = 0; i < c; ++i) {
    const double tp = static_cast<double>(counts_[i * c + i]);
    const double uni = row[i] + col[i] - tp;
    m.class_iou.push_back(uni > 0 ? tp / uni : 0.0);
    m.class_acc.push_back(col[i] > 0 ? tp / col[i] : 0.0);
    iou_sum += m.class_iou.back();
    pe += row[i] * col[i];
  }
  m.miou = c > 0 ? iou_sum / c : 0;
  if (total > 0) {
    m.acc = diag / total;
    pe /= total * total;
    m.kappa = pe < 1 ? (m.acc - pe) / (1 - pe) : 0;
  }
  return m;
}

namespace {
std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6f", v);
  return buf;
}
std::string List(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + Num(v[i]);
  return s + "]";
}
}  // namespace

std::string SegMetrics::ToJson() const {
  std::ostringstream o;
  o << "{\"miou\": " << Num(miou) << ", \"acc\": " << Num(acc) << ", \"kappa\": " << Num(kappa)
    << ", \"class_iou\": " << List(class_iou) << ", \"class_acc\": " << List(class_acc)
    << ", \"images\": " << images << "}\n";
  return o.str();
}

}  // namespace segqat
