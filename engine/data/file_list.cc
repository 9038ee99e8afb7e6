#include "engine/data/file_list.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "engine/data/confined_read.h"

namespace segqat::data {
namespace fs = std::filesystem;
namespace {

constexpr absl::string_view kImageSuffix = "_leftImg8bit.png";
constexpr absl::string_view kTrainIdsSuffix = "_gtFine_labelTrainIds.png";
constexpr absl::string_view kLabelIdsSuffix = "_gtFine_labelIds.png";

std::string ResolvePath(absl::string_view field, const std::string& data_dir) {
  const fs::path path{std::string(field)};
  if (path.is_absolute() || data_dir.empty()) return path.string();
  return (fs::path(data_dir) / path).string();
}

bool IsAllWhitespace(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isspace(c); });
}

absl::Status CheckListFile(const std::string& list_path) {
  std::error_code ec;
  const fs::file_status status = fs::status(list_path, ec);
  if (!fs::exists(status)) {
    return absl::NotFoundError(absl::StrCat("file list ", list_path, " does not exist"));
  }
  if (!fs::is_regular_file(status)) {
    return absl::InvalidArgumentError(
        absl::StrCat("file list ", list_path, " is not a regular file"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<ListEntry>> ReadFileList(const std::string& list_path,
                                                    const std::string& data_dir,
                                                    const std::string& separator) {
  if (separator.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("file list ", list_path, ": the separator is empty"));
  }
  if (absl::Status status = CheckListFile(list_path); !status.ok()) return status;
  absl::StatusOr<std::string> text = ReadJobFile(list_path, absl::StrCat("file list ", list_path));
  if (!text.ok()) return text.status();
  std::istringstream in(*std::move(text));

  const bool whitespace_separator = IsAllWhitespace(separator);
  std::vector<ListEntry> entries;
  std::string line;
  for (int line_number = 1; std::getline(in, line); ++line_number) {
    absl::string_view text = line;
    if (line_number == 1 && absl::StartsWith(text, "\xEF\xBB\xBF")) text.remove_prefix(3);
    text = absl::StripAsciiWhitespace(text);  // Also drops a trailing '\r'.
    if (text.empty()) continue;

    std::vector<absl::string_view> fields;
    if (whitespace_separator) {
      fields = absl::StrSplit(text, separator, absl::SkipWhitespace());
    } else {
      fields = absl::StrSplit(text, separator);
    }
    const std::string where = absl::StrCat(list_path, ":", line_number, ": ");
    if (fields.size() > 2) {
      return absl::InvalidArgumentError(absl::StrCat(where, "expected \"image", separator,
                                                     "label\" or \"image\", got ", fields.size(),
                                                     " fields"));
    }
    for (absl::string_view& field : fields) {
      field = absl::StripAsciiWhitespace(field);
      if (field.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "an empty path (separator \"", separator, "\")"));
      }
    }
    ListEntry entry;
    entry.image_path = ResolvePath(fields[0], data_dir);
    if (fields.size() == 2) entry.label_path = ResolvePath(fields[1], data_dir);
    entry.origin = absl::StrCat(list_path, " line ", line_number);
    entries.push_back(std::move(entry));
  }
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat("file list ", list_path, " cannot be read"));
  }
  return entries;
}

absl::StatusOr<std::vector<ListEntry>> ScanCityscapes(const std::string& data_dir,
                                                      const std::string& split) {
  const fs::path image_root = fs::path(data_dir) / "leftImg8bit" / split;
  const fs::path label_root = fs::path(data_dir) / "gtFine" / split;
  std::error_code ec;
  if (!fs::is_directory(image_root, ec)) {
    return absl::NotFoundError(
        absl::StrCat("Cityscapes split folder ", image_root.string(), " does not exist"));
  }

  std::vector<fs::path> images;
  for (fs::recursive_directory_iterator it(image_root, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (absl::EndsWith(name, kImageSuffix) && it->is_regular_file(ec)) {
      images.push_back(it->path());
    }
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot list ", image_root.string(), ": ", ec.message()));
  }
  if (images.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no *", kImageSuffix, " images under ", image_root.string()));
  }
  std::sort(images.begin(), images.end());

  std::vector<ListEntry> entries;
  entries.reserve(images.size());
  for (const fs::path& image : images) {
    const std::string name = image.filename().string();
    const std::string stem = name.substr(0, name.size() - kImageSuffix.size());
    const fs::path label_dir = label_root / image.parent_path().lexically_relative(image_root);
    const fs::path train_ids = label_dir / absl::StrCat(stem, kTrainIdsSuffix);
    const fs::path label_ids = label_dir / absl::StrCat(stem, kLabelIdsSuffix);
    ListEntry entry{image.string(), ""};
    if (fs::is_regular_file(train_ids, ec)) {
      entry.label_path = train_ids.string();
    } else if (fs::is_regular_file(label_ids, ec)) {
      entry.label_path = label_ids.string();
    } else {
      return absl::NotFoundError(absl::StrCat("image ", image.string(), " has no label: neither ",
                                              train_ids.string(), " nor ", label_ids.string(),
                                              " exists"));
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace segqat::data
