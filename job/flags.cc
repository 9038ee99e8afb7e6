#include "job/flags.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/config/config.h"

namespace segqat {

std::string ParsedFlags::Get(const std::string& flag, const std::string& fallback) const {
  auto it = values.find(flag);
  return it == values.end() || it->second.empty() ? fallback : it->second.back();
}

absl::StatusOr<ParsedFlags> ParseFlags(const std::vector<std::string>& args,
                                       const std::vector<FlagSpec>& specs) {
  ParsedFlags out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!absl::StartsWith(a, "--")) {
      out.overrides.push_back(a);  // KEY VALUE; the config checks the keys
      continue;
    }
    std::string name = a, inline_value;
    bool has_inline = false;
    if (size_t eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      inline_value = a.substr(eq + 1);
      has_inline = true;
    }
    auto spec =
        std::find_if(specs.begin(), specs.end(), [&](const FlagSpec& s) { return s.name == name; });
    if (spec == specs.end())
      return absl::InvalidArgumentError(absl::StrCat(name, ": unknown flag"));
    if (!out.overrides.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": flags go before the KEY VALUE overrides"));
    }
    auto& vals = out.values[name];
    if (!spec->takes_value) {
      if (has_inline) return absl::InvalidArgumentError(absl::StrCat(name, " takes no value"));
      continue;
    }
    if (has_inline) {
      vals.push_back(inline_value);
      continue;
    }
    size_t taken = 0;
    while (i + 1 < args.size() && !absl::StartsWith(args[i + 1], "--") &&
           !(taken > 0 && IsConfigKey(args[i + 1])) && (spec->multi || taken == 0)) {
      vals.push_back(args[++i]);
      ++taken;
    }
    if (taken == 0) return absl::InvalidArgumentError(absl::StrCat(name, " needs a value"));
  }
  if (auto st = CheckOverridePairs(out.overrides); !st.ok()) return st;
  return out;
}

}  // namespace segqat
