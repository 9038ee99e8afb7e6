// Decoding one sample (image + label) from disk.
// Thread-safe: LoadSample only reads files and touches no shared state.
#ifndef SEGQAT_ENGINE_DATA_IMAGE_IO_H_
#define SEGQAT_ENGINE_DATA_IMAGE_IO_H_

#include "absl/status/statusor.h"
#include "engine/data/sample.h"

namespace segqat::data {

// Decodes entry.image_path as 8-bit RGB (greyscale and 16-bit images are
// converted) and entry.label_path as an 8-bit single-channel label image.
// A label file whose name ends in "_labelIds.png" holds Cityscapes label ids
// and is mapped to train ids (cityscapes.h). An entry without label_path
// (an inference list) gets a label filled with ignore_index.
//
// Errors, each naming the file(s):
//   NotFound         a file does not exist;
//   InvalidArgument  a file cannot be decoded (corrupt, not an image); the
//                    label is not single-channel 8-bit (e.g. a colour-palette
//                    PNG); image and label differ in size; a label value
//                    (after mapping) is >= num_classes and != ignore_index
//                    (the message gives the value and NUM_CLASSES);
//                    num_classes not in [1, 256] or ignore_index not in [0, 255].
// OpenCV exceptions are caught and returned as InvalidArgument.
absl::StatusOr<Sample> LoadSample(const ListEntry& entry, int num_classes, int ignore_index);

}  // namespace segqat::data

#endif  // SEGQAT_ENGINE_DATA_IMAGE_IO_H_
