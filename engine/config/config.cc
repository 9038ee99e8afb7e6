// Config (engine/config/config.h): parsing YAML and KEY VALUE overrides into
// the schema's typed values and checking them, key by key. Over 400 lines
// because each value type's parsing and its error message sit together;
// writing a config back out is config_yaml.cc.
#include "engine/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/config/schema.h"

namespace segqat {
namespace {

absl::Status KeyError(const std::string& key, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", what));
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

absl::Status UnknownKey(const std::string& key) {
  std::string best;
  size_t best_d = 4;  // suggest only near misses
  for (const KeySpec& spec : Schema()) {
    size_t d = EditDistance(key, spec.key);
    if (d < best_d) best_d = d, best = spec.key;
  }
  return KeyError(key, best.empty()
                           ? "unknown config key"
                           : absl::StrCat("unknown config key (did you mean ", best, "?)"));
}

const char* Article(const std::string& noun) {
  return std::string("aeiou").find(noun[0]) != std::string::npos ? "an " : "a ";
}

// Removes Python-style quotes: 'x', "x", u"x", u'x'.
std::string Unquote(std::string s) {
  if (s.size() >= 3 && s[0] == 'u' && (s[1] == '"' || s[1] == '\'') && s.back() == s[1]) {
    return s.substr(2, s.size() - 3);
  }
  if (s.size() >= 2 && (s[0] == '"' || s[0] == '\'') && s.back() == s[0]) {
    return s.substr(1, s.size() - 2);
  }
  return s;
}

bool ParseBool(std::string s, bool* out) {
  s = std::string(absl::StripAsciiWhitespace(s));
  if (s == "True" || s == "true") return *out = true, true;
  if (s == "False" || s == "false") return *out = false, true;
  return false;
}

bool ParseInt(const std::string& text, int64_t* out) {
  std::string s(absl::StripAsciiWhitespace(text));
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

bool ParseFloat(const std::string& text, double* out) {
  std::string s(absl::StripAsciiWhitespace(text));
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

// "(769, 769)", "[1, 2]", "1,2" or "7" -> {"769", "769"}.
std::vector<std::string> SplitList(const std::string& text) {
  std::string s(absl::StripAsciiWhitespace(text));
  if (s.size() >= 2 &&
      ((s.front() == '(' && s.back() == ')') || (s.front() == '[' && s.back() == ']'))) {
    s = s.substr(1, s.size() - 2);
  }
  std::vector<std::string> items;
  if (absl::StripAsciiWhitespace(s).empty()) return items;
  for (absl::string_view part : absl::StrSplit(s, ',')) {
    std::string item(absl::StripAsciiWhitespace(part));
    if (!item.empty()) items.push_back(Unquote(item));
  }
  return items;
}

absl::StatusOr<ConfigValue> ParseItems(const KeySpec& spec, const std::vector<std::string>& items) {
  auto bad = [&](const std::string& item) {
    return KeyError(spec.key, absl::StrCat("expects ", Article(TypeName(spec)), TypeName(spec),
                                           ", got '", item, "'"));
  };
  switch (spec.type) {
    case ConfigType::kInts: {
      std::vector<int64_t> v;
      for (const auto& item : items) {
        int64_t x;
        if (!ParseInt(item, &x)) return bad(item);
        v.push_back(x);
      }
      return ConfigValue(std::move(v));
    }
    case ConfigType::kFloats: {
      std::vector<double> v;
      for (const auto& item : items) {
        double x;
        if (!ParseFloat(item, &x)) return bad(item);
        v.push_back(x);
      }
      return ConfigValue(std::move(v));
    }
    case ConfigType::kStrings:
      return ConfigValue(items);
    default:
      break;
  }
  if (items.size() != 1) return bad(absl::StrJoin(items, ","));
  const std::string& text = items[0];
  switch (spec.type) {
    case ConfigType::kBool: {
      bool b;
      if (!ParseBool(text, &b)) return bad(text);
      return ConfigValue(b);
    }
    case ConfigType::kInt: {
      int64_t x;
      if (!ParseInt(text, &x)) return bad(text);
      return ConfigValue(x);
    }
    case ConfigType::kFloat: {
      double x;
      if (!ParseFloat(text, &x)) return bad(text);
      return ConfigValue(x);
    }
    default:
      return ConfigValue(text);
  }
}

bool IsListType(ConfigType t) {
  return t == ConfigType::kInts || t == ConfigType::kFloats || t == ConfigType::kStrings;
}

// A command-line or YAML scalar in its textual form.
absl::StatusOr<ConfigValue> ParseText(const KeySpec& spec, const std::string& raw) {
  if (spec.type == ConfigType::kString) {
    // Both YAML scalars and command-line words may carry Python quoting
    // (PaddleSeg configs write u"path"); white space is kept (SEPARATOR " ").
    std::string s = Unquote(raw);
    if (s == "None" || s == "~") s.clear();
    return ConfigValue(s);
  }
  if (IsListType(spec.type)) {
    std::string s(absl::StripAsciiWhitespace(raw));
    if (s == "None" || s.empty()) return ParseItems(spec, {});
    return ParseItems(spec, SplitList(s));
  }
  return ParseItems(spec, {raw});
}

absl::StatusOr<ConfigValue> ParseYamlNode(const KeySpec& spec, const YAML::Node& node) {
  if (node.IsNull()) return ParseText(spec, "None");
  if (node.IsSequence()) {
    if (!IsListType(spec.type)) {
      return KeyError(spec.key, absl::StrCat("expects ", Article(TypeName(spec)), TypeName(spec),
                                             ", got a list"));
    }
    std::vector<std::string> items;
    for (const auto& item : node) {
      if (!item.IsScalar()) return KeyError(spec.key, "list items must be scalars");
      items.push_back(item.Scalar());
    }
    return ParseItems(spec, items);
  }
  if (node.IsMap()) {
    return KeyError(spec.key, absl::StrCat("expects ", Article(TypeName(spec)), TypeName(spec),
                                           ", got a mapping"));
  }
  return ParseText(spec, node.Scalar());
}

absl::Status CheckBounds(const KeySpec& spec, const ConfigValue& v) {
  auto out_of_range = [&](double x) {
    std::string range = spec.max >= 1e299 ? absl::StrCat(">= ", spec.min)
                                          : absl::StrCat("in [", spec.min, ", ", spec.max, "]");
    return KeyError(spec.key, absl::StrCat("value ", x, " out of range (must be ", range, ")"));
  };
  auto check = [&](double x) -> absl::Status {
    if (!(x >= spec.min && x <= spec.max)) return out_of_range(x);  // NaN too
    return absl::OkStatus();
  };
  auto check_choice = [&](const std::string& s) -> absl::Status {
    if (spec.choices.empty() ||
        std::find(spec.choices.begin(), spec.choices.end(), s) != spec.choices.end()) {
      return absl::OkStatus();
    }
    return KeyError(spec.key,
                    absl::StrCat("'", s, "' is not one of: ", absl::StrJoin(spec.choices, ", ")));
  };
  auto check_len = [&](size_t n) -> absl::Status {
    if (spec.length && n != spec.length) {
      return KeyError(spec.key, absl::StrCat("expects ", Article(TypeName(spec)), TypeName(spec),
                                             ", got ", n, n == 1 ? " value" : " values"));
    }
    return absl::OkStatus();
  };
  if (auto* x = std::get_if<int64_t>(&v)) return check(static_cast<double>(*x));
  if (auto* x = std::get_if<double>(&v)) return check(*x);
  if (auto* s = std::get_if<std::string>(&v)) return check_choice(*s);
  if (auto* l = std::get_if<std::vector<int64_t>>(&v)) {
    if (auto st = check_len(l->size()); !st.ok()) return st;
    for (int64_t x : *l) {
      if (auto st = check(static_cast<double>(x)); !st.ok()) return st;
    }
  }
  if (auto* l = std::get_if<std::vector<double>>(&v)) {
    if (auto st = check_len(l->size()); !st.ok()) return st;
    for (double x : *l) {
      if (auto st = check(x); !st.ok()) return st;
    }
  }
  if (auto* l = std::get_if<std::vector<std::string>>(&v)) {
    for (const auto& s : *l) {
      if (auto st = check_choice(s); !st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyYaml(Config* cfg, const YAML::Node& node, const std::string& prefix) {
  if (!node.IsMap()) {
    return KeyError(prefix.empty() ? "<top level>" : prefix, "expects a mapping of keys");
  }
  for (const auto& kv : node) {
    std::string key =
        prefix.empty() ? kv.first.Scalar() : absl::StrCat(prefix, ".", kv.first.Scalar());
    const KeySpec* spec = FindKey(key);
    if (spec != nullptr) {
      auto value = ParseYamlNode(*spec, kv.second);
      if (!value.ok()) return value.status();
      if (auto st = cfg->Set(key, *std::move(value)); !st.ok()) return st;
    } else if (kv.second.IsMap()) {
      if (auto st = ApplyYaml(cfg, kv.second, key); !st.ok()) return st;
    } else {
      return UnknownKey(key);
    }
  }
  return absl::OkStatus();
}

}  // namespace

Config::Config() {
  for (const KeySpec& spec : Schema()) values_[spec.key] = spec.default_value;
}

absl::Status Config::Set(const std::string& key, ConfigValue value) {
  const KeySpec* spec = FindKey(key);
  if (spec == nullptr) return UnknownKey(key);
  // Promote ints written where floats are expected.
  if (spec->type == ConfigType::kFloat) {
    if (auto* i = std::get_if<int64_t>(&value)) value = static_cast<double>(*i);
  }
  if (spec->type == ConfigType::kFloats) {
    if (auto* l = std::get_if<std::vector<int64_t>>(&value)) {
      value = std::vector<double>(l->begin(), l->end());
    }
  }
  if (value.index() != spec->default_value.index()) {
    return KeyError(key, absl::StrCat("expects ", Article(TypeName(*spec)), TypeName(*spec)));
  }
  if (auto st = CheckBounds(*spec, value); !st.ok()) return st;
  values_[key] = std::move(value);
  return absl::OkStatus();
}

absl::Status Config::SetFromString(const std::string& key, const std::string& value) {
  const KeySpec* spec = FindKey(key);
  if (spec == nullptr) return UnknownKey(key);
  auto parsed = ParseText(*spec, value);
  if (!parsed.ok()) return parsed.status();
  return Set(key, *std::move(parsed));
}

absl::Status Config::Validate() const {
  if (Float("AUG.MIN_SCALE_FACTOR") > Float("AUG.MAX_SCALE_FACTOR")) {
    return KeyError("AUG.MIN_SCALE_FACTOR", "must not exceed AUG.MAX_SCALE_FACTOR");
  }
  if (Int("AUG.MIN_RESIZE_VALUE") > Int("AUG.MAX_RESIZE_VALUE")) {
    return KeyError("AUG.MIN_RESIZE_VALUE", "must not exceed AUG.MAX_RESIZE_VALUE");
  }
  int64_t os = Int("MODEL.DEEPLAB.OUTPUT_STRIDE");
  if (os != 8 && os != 16 && os != 32) {
    return KeyError("MODEL.DEEPLAB.OUTPUT_STRIDE", absl::StrCat("must be 8, 16 or 32, got ", os));
  }
  if (Bool("AUG.RICH_CROP.ENABLE")) {
    return KeyError("AUG.RICH_CROP.ENABLE", "rich crop is not supported by segqat; set False");
  }
  if (Bool("MODEL.FP16"))
    return KeyError("MODEL.FP16", "FP16 training is not supported; set False");
  if (Strs("SLIM.quantize_op_types").empty()) {
    return KeyError("SLIM.quantize_op_types", "must name at least one op type");
  }
  if (Str("DATASET.SEPARATOR").empty()) return KeyError("DATASET.SEPARATOR", "must not be empty");
  // One training batch's pixels bound what a step asks of a worker's memory:
  // at most 32 Mi pixels, e.g. 16 crops of 1024x2048 (the seed's recipe
  // trains 4 crops of 769x769 a step).
  const std::vector<int64_t> crop = Ints("TRAIN_CROP_SIZE");
  const double pixels = static_cast<double>(Int("BATCH_SIZE")) * static_cast<double>(crop[0]) *
                        static_cast<double>(crop[1]);
  if (pixels > kMaxBatchPixels) {
    return KeyError("BATCH_SIZE", absl::StrCat("BATCH_SIZE x TRAIN_CROP_SIZE is ", pixels / 1e6,
                                               " Mpixel a step; at most ", kMaxBatchPixels / 1e6,
                                               " (lower either)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Config> Config::FromYamlText(const std::string& yaml_text,
                                            const std::vector<std::string>& overrides) {
  Config cfg;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config is not valid YAML: ", e.what()));
  }
  if (root.IsDefined() && !root.IsNull()) {
    if (auto st = ApplyYaml(&cfg, root, ""); !st.ok()) return st;
  }
  if (auto st = CheckOverridePairs(overrides); !st.ok()) return st;
  for (size_t i = 0; i + 1 < overrides.size(); i += 2) {
    if (auto st = cfg.SetFromString(overrides[i], overrides[i + 1]); !st.ok()) return st;
  }
  if (auto st = cfg.Validate(); !st.ok()) return st;
  return cfg;
}

absl::StatusOr<Config> Config::Load(const std::string& yaml_path,
                                    const std::vector<std::string>& overrides) {
  std::ifstream in(yaml_path);
  if (!in) return absl::NotFoundError(absl::StrCat("--cfg: cannot read config file ", yaml_path));
  std::stringstream text;
  text << in.rdbuf();
  auto cfg = FromYamlText(text.str(), overrides);
  if (!cfg.ok()) {
    return absl::Status(cfg.status().code(),
                        absl::StrCat(cfg.status().message(), " (in ", yaml_path, ")"));
  }
  return cfg;
}

absl::Status CheckOverridePairs(const std::vector<std::string>& overrides) {
  if (overrides.size() % 2 != 0) {
    return KeyError(overrides.back(), "override has no value (overrides are KEY VALUE pairs)");
  }
  return absl::OkStatus();
}

bool IsConfigKey(const std::string& key) { return FindKey(key) != nullptr; }

const ConfigValue& Config::Get(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) {
    std::fprintf(stderr, "segqat: internal error: config key %s is not in the schema\n",
                 key.c_str());
    std::abort();
  }
  return it->second;
}

template <typename T>
static const T& As(const ConfigValue& v, const std::string& key) {
  const T* p = std::get_if<T>(&v);
  if (p == nullptr) {
    std::fprintf(stderr, "segqat: internal error: config key %s read with the wrong type\n",
                 key.c_str());
    std::abort();
  }
  return *p;
}

bool Config::Bool(const std::string& key) const { return As<bool>(Get(key), key); }
int64_t Config::Int(const std::string& key) const { return As<int64_t>(Get(key), key); }
double Config::Float(const std::string& key) const { return As<double>(Get(key), key); }
const std::string& Config::Str(const std::string& key) const {
  return As<std::string>(Get(key), key);
}
const std::vector<int64_t>& Config::Ints(const std::string& key) const {
  return As<std::vector<int64_t>>(Get(key), key);
}
const std::vector<double>& Config::Floats(const std::string& key) const {
  return As<std::vector<double>>(Get(key), key);
}
const std::vector<std::string>& Config::Strs(const std::string& key) const {
  return As<std::vector<std::string>>(Get(key), key);
}

const std::vector<std::string>& ArtifactReferenceKeys() {
  static const auto* keys = new std::vector<std::string>{
      "TRAIN.PRETRAINED_MODEL_DIR", "TRAIN.RESUME_MODEL_DIR", "TEST.TEST_MODEL"};
  return *keys;
}

}  // namespace segqat
