// The command line of segqat-worker (and later segqat): flags as PaddleSeg's
// scripts take them, then trailing KEY VALUE config overrides.
#ifndef SEGQAT_JOB_FLAGS_H_
#define SEGQAT_JOB_FLAGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace segqat {

struct FlagSpec {
  std::string name;    // "--cfg"
  bool takes_value;    // --cfg FILE
  bool multi = false;  // --not_quant_pattern P [P ...]
};

struct ParsedFlags {
  std::map<std::string, std::vector<std::string>> values;  // flag -> values ("" for switches)
  std::vector<std::string> overrides;                      // KEY VALUE ...
  bool Has(const std::string& flag) const { return values.count(flag) > 0; }
  std::string Get(const std::string& flag, const std::string& fallback = "") const;
};

// Parses args (without the program and subcommand). A multi-value flag takes
// words until the next flag or config key. Unknown flags, missing values and
// an odd number of override words are InvalidArgument naming the word.
absl::StatusOr<ParsedFlags> ParseFlags(const std::vector<std::string>& args,
                                       const std::vector<FlagSpec>& specs);

}  // namespace segqat

#endif  // SEGQAT_JOB_FLAGS_H_
