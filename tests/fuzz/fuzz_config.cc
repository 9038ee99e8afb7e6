// The config parser with overrides, as CreateJob feeds it: YAML text, then
// (after a NUL byte) one override token per line. Whatever parses must write
// out a YAML that parses back to the same config.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "engine/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string yaml = input.substr(0, nul);
  std::vector<std::string> overrides;
  if (nul != std::string::npos) overrides = absl::StrSplit(input.substr(nul + 1), '\n');
  auto cfg = segqat::Config::FromYamlText(yaml, overrides);
  if (!cfg.ok()) return 0;
  const std::string written = cfg->ToYaml();
  auto again = segqat::Config::FromYamlText(written, {});
  if (!again.ok() || again->ToYaml() != written) std::abort();
  return 0;
}
