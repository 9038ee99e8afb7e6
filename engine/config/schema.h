// The configuration schema: every key segqat accepts, its type, its default
// and its allowed values. PaddleSeg's keys keep PaddleSeg's names and defaults
// where segqat implements them; the quantization keys under SLIM are
// PaddleSlim's quant_aware config keys.
#ifndef SEGQAT_ENGINE_CONFIG_SCHEMA_H_
#define SEGQAT_ENGINE_CONFIG_SCHEMA_H_

#include <string>
#include <vector>

#include "engine/config/config.h"

namespace segqat {

enum class ConfigType { kBool, kInt, kFloat, kString, kInts, kFloats, kStrings };

struct KeySpec {
  std::string key;
  ConfigType type;
  ConfigValue default_value;
  std::string help;
  // Numeric bounds (inclusive) for kInt/kFloat and their list forms.
  double min = -1e300;
  double max = 1e300;
  // Allowed values for kString / kStrings; empty means any.
  std::vector<std::string> choices;
  // For list types: required length, 0 for any.
  size_t length = 0;
};

// All keys, in a stable order. Never empty.
const std::vector<KeySpec>& Schema();
// The spec of `key`, or nullptr when the key is unknown.
const KeySpec* FindKey(const std::string& key);
// "int", "float", "list of 2 ints", ... for error messages.
std::string TypeName(const KeySpec& spec);

}  // namespace segqat

#endif  // SEGQAT_ENGINE_CONFIG_SCHEMA_H_
