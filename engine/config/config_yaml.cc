// Writing a config as YAML (engine/config/config.h): one value (Config::Text)
// or the whole config as nested mappings in the schema's order (ToYaml).
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/config/config.h"
#include "engine/config/schema.h"

namespace segqat {
namespace {

std::string FormatDouble(double x) {
  char buf[40];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // stays a float
  return s;
}

YAML::Node ToNode(const ConfigValue& v) {
  YAML::Node n;
  if (auto* b = std::get_if<bool>(&v)) n = *b ? "True" : "False";
  if (auto* i = std::get_if<int64_t>(&v)) n = *i;
  if (auto* d = std::get_if<double>(&v)) n = FormatDouble(*d);
  if (auto* s = std::get_if<std::string>(&v)) n = *s;
  if (auto* l = std::get_if<std::vector<int64_t>>(&v)) {
    for (auto x : *l) n.push_back(x);
  }
  if (auto* l = std::get_if<std::vector<double>>(&v)) {
    for (auto x : *l) n.push_back(FormatDouble(x));
  }
  if (auto* l = std::get_if<std::vector<std::string>>(&v)) {
    for (const auto& x : *l) n.push_back(x);
  }
  if (n.IsSequence()) n.SetStyle(YAML::EmitterStyle::Flow);
  if (!n.IsDefined() || n.IsNull())
    n = YAML::Node(YAML::NodeType::Sequence), n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}

using KeyPath = std::pair<std::vector<std::string>, const ConfigValue*>;

// Emits keys[begin, end), which share their first `depth` parts, as nested
// mappings in schema order.
void EmitTree(YAML::Emitter& out, const std::vector<KeyPath>& keys, size_t begin, size_t end,
              size_t depth) {
  out << YAML::BeginMap;
  size_t i = begin;
  while (i < end) {
    const std::string& head = keys[i].first[depth];
    size_t j = i;
    while (j < end && keys[j].first[depth] == head) ++j;
    out << YAML::Key << head << YAML::Value;
    if (keys[i].first.size() == depth + 1) {
      out << ToNode(*keys[i].second);
    } else {
      EmitTree(out, keys, i, j, depth + 1);
    }
    i = j;
  }
  out << YAML::EndMap;
}

}  // namespace

std::string Config::Text(const std::string& key) const {
  YAML::Emitter out;
  out << ToNode(Get(key));
  return out.c_str();
}

std::string Config::ToYaml() const {
  // Group by dotted prefix; a stable sort keeps the schema's order inside groups.
  std::vector<KeyPath> keys;
  for (const KeySpec& spec : Schema()) {
    keys.emplace_back(absl::StrSplit(spec.key, '.'), &values_.at(spec.key));
  }
  std::vector<std::string> first_seen;
  for (const auto& k : keys) {
    if (std::find(first_seen.begin(), first_seen.end(), k.first[0]) == first_seen.end()) {
      first_seen.push_back(k.first[0]);
    }
  }
  // Sort key: the section's first appearance, then the sub-section names
  // (empty for plain keys, so they come first); stable inside a group.
  auto sort_key = [&](const KeyPath& k) {
    auto pos = std::find(first_seen.begin(), first_seen.end(), k.first[0]) - first_seen.begin();
    std::vector<std::string> key{absl::StrCat(1000 + pos)};
    for (size_t d = 1; d + 1 < k.first.size(); ++d) key.push_back(k.first[d]);
    key.emplace_back();
    return key;
  };
  std::stable_sort(keys.begin(), keys.end(),
                   [&](const KeyPath& a, const KeyPath& b) { return sort_key(a) < sort_key(b); });
  YAML::Emitter out;
  EmitTree(out, keys, 0, keys.size(), 0);
  return std::string(out.c_str()) + "\n";
}

}  // namespace segqat
