// PaddleSeg-style configuration: a YAML file plus "KEY VALUE" overrides, typed
// and checked against one schema (schema.cc). Keys are dotted paths such as
// "DATASET.NUM_CLASSES" or "SLIM.not_quant_pattern".
//
// Failure behaviour: every error is InvalidArgument (or NotFound for a missing
// file) and its message starts with the offending key.
// Thread safety: a Config is a value; const methods are safe to share.
#ifndef SEGQAT_ENGINE_CONFIG_CONFIG_H_
#define SEGQAT_ENGINE_CONFIG_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace segqat {

using ConfigValue = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>,
                                 std::vector<double>, std::vector<std::string>>;

// The most input pixels one training step may take (BATCH_SIZE x
// TRAIN_CROP_SIZE), checked by Config::Validate.
inline constexpr double kMaxBatchPixels = 32.0 * 1024 * 1024;

class Config {
 public:
  // All keys at their schema defaults.
  Config();

  // Reads a YAML file over the defaults, then applies overrides given as
  // alternating KEY VALUE strings (values parsed like Python literals and
  // typed by the schema). Validates the result (ranges, choices, sizes).
  static absl::StatusOr<Config> Load(const std::string& yaml_path,
                                     const std::vector<std::string>& overrides);
  // Same, from YAML text (used for configs carried in checkpoints and jobs).
  static absl::StatusOr<Config> FromYamlText(const std::string& yaml_text,
                                             const std::vector<std::string>& overrides);

  // Sets one key from its textual form (a command-line override).
  absl::Status SetFromString(const std::string& key, const std::string& value);
  // Sets one key from a typed value; the type must match the schema's.
  absl::Status Set(const std::string& key, ConfigValue value);
  // Checks every cross-key rule (crop sizes, ranges); Load calls it.
  absl::Status Validate() const;

  // Typed reads. REQUIRES: key is in the schema with that type (a
  // programming error otherwise: the process aborts with the key's name).
  bool Bool(const std::string& key) const;
  int64_t Int(const std::string& key) const;
  double Float(const std::string& key) const;
  const std::string& Str(const std::string& key) const;
  const std::vector<int64_t>& Ints(const std::string& key) const;
  const std::vector<double>& Floats(const std::string& key) const;
  const std::vector<std::string>& Strs(const std::string& key) const;

  // One value as YAML text ("True", "16", "[769, 769]").
  std::string Text(const std::string& key) const;

  // The whole config as nested YAML, every key present; FromYamlText of it
  // gives back an equal Config.
  std::string ToYaml() const;

  bool operator==(const Config& other) const { return values_ == other.values_; }

 private:
  const ConfigValue& Get(const std::string& key) const;
  std::map<std::string, ConfigValue> values_;
};

// Splits a command line's trailing "KEY VALUE ..." list; an odd count is an
// error naming the last key.
absl::Status CheckOverridePairs(const std::vector<std::string>& overrides);

// True when `key` is a key of the schema (used by command-line parsers to tell
// flag values from overrides).
bool IsConfigKey(const std::string& key);

// Path-valued keys a job may point at another job's artifacts with
// ("jobs/ID/final"): TRAIN.PRETRAINED_MODEL_DIR, TRAIN.RESUME_MODEL_DIR,
// TEST.TEST_MODEL.
const std::vector<std::string>& ArtifactReferenceKeys();

}  // namespace segqat

#endif  // SEGQAT_ENGINE_CONFIG_CONFIG_H_
