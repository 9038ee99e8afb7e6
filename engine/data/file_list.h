// Finding a dataset's samples on disk: PaddleSeg file lists and the Cityscapes
// directory layout. Only paths are produced here; nothing is decoded (see
// image_io.h). Both functions are thread-safe (they only read the filesystem).
#ifndef SEGQAT_ENGINE_DATA_FILE_LIST_H_
#define SEGQAT_ENGINE_DATA_FILE_LIST_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/data/sample.h"

namespace segqat::data {

// Reads a PaddleSeg file list: one "image<sep>label" per line, label optional
// (test lists). Relative paths are joined to data_dir; absolute paths are kept.
// Fields are trimmed; blank lines, a UTF-8 byte-order mark and Windows line
// ends are ignored. A whitespace separator (the usual " ") also accepts runs
// of it ("a   b"); any other separator is matched exactly.
// Errors: NotFound when list_path does not exist; InvalidArgument for an
// empty separator, a list that is not a readable file, or a line with more
// than two fields or an empty field; that message reads "<list_path>:<line>: ...".
// An empty list is not an error (the result is empty).
absl::StatusOr<std::vector<ListEntry>> ReadFileList(const std::string& list_path,
                                                    const std::string& data_dir,
                                                    const std::string& separator);

// Scans the Cityscapes layout: every data_dir/leftImg8bit/<split>/<city>/
// <stem>_leftImg8bit.png, paired with data_dir/gtFine/<split>/<city>/
// <stem>_gtFine_labelTrainIds.png when that exists, else with
// <stem>_gtFine_labelIds.png (which LoadSample maps to train ids).
// Entries are sorted by image path, so the order is deterministic.
// Errors: NotFound when the split folder is missing or holds no images, or
// when an image has neither label file (the message names the image and the
// label files looked for); Internal when a folder cannot be listed.
absl::StatusOr<std::vector<ListEntry>> ScanCityscapes(const std::string& data_dir,
                                                      const std::string& split);

}  // namespace segqat::data

#endif  // SEGQAT_ENGINE_DATA_FILE_LIST_H_
