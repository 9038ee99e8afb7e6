// The units the data layer passes around: one decoded sample and one entry of
// a dataset list. Both are plain values.
#ifndef SEGQAT_ENGINE_DATA_SAMPLE_H_
#define SEGQAT_ENGINE_DATA_SAMPLE_H_

#include <opencv2/core.hpp>
#include <string>

namespace segqat::data {

struct Sample {
  cv::Mat image;           // CV_8UC3, RGB order (converted from OpenCV's BGR)
  cv::Mat label;           // CV_8UC1, train ids 0..num_classes-1, ignore_index elsewhere
  std::string image_path;  // for error messages
};

// One dataset entry. Paths are ready to open (already joined with the data
// directory). label_path is empty for unlabelled (test/inference) lists.
struct ListEntry {
  std::string image_path;
  std::string label_path;
  // For an entry read from a file list, "LIST line N": errors name that and
  // never the paths, which are the list file's bytes (a list may be any file
  // the worker can read). Empty for entries found by scanning folders.
  std::string origin = "";
};

// How errors name an entry's image or label: its origin, or its path.
inline std::string EntryName(const ListEntry& entry, bool label = false) {
  if (entry.origin.empty()) return label ? entry.label_path : entry.image_path;
  return entry.origin + (label ? " (its label)" : " (its image)");
}

inline bool operator==(const ListEntry& a, const ListEntry& b) {
  return a.image_path == b.image_path && a.label_path == b.label_path;
}

}  // namespace segqat::data

#endif  // SEGQAT_ENGINE_DATA_SAMPLE_H_
