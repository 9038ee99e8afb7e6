#include "server/job_validation.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/quote.h"
#include "engine/config/config.h"
#include "job/job_spec.h"
#include "server/artifact_store.h"

namespace segqat::server {
namespace {

// "jobs/ID/NAME" must name an artifact (or a prefix of some) of a known job.
absl::Status CheckReference(const std::string& key, const std::string& value, JobStore* store) {
  const std::string rest = value.substr(5);
  const size_t slash = rest.find('/');
  if (slash == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": ", QuoteForMessage(value),
                                                   " must name an artifact, e.g. jobs/ID/final"));
  }
  const std::string id = rest.substr(0, slash), name = rest.substr(slash + 1);
  if (auto st = CheckRelativeName(id, key); !st.ok()) return st;
  if (auto st = CheckRelativeName(name, key); !st.ok()) return st;
  auto job = store->Get(id);
  if (!job.ok()) return absl::InvalidArgumentError(absl::StrCat(key, ": no job ", id));
  for (const v1::Artifact& a : job->artifacts()) {
    if (a.name() == name || absl::StartsWith(a.name(), name + "/")) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(key, ": job ", id, " has no artifact ", name));
}

}  // namespace

std::set<std::string> InputJobIds(const v1::JobSpec& spec) {
  std::set<std::string> ids;
  auto request = job::FromSpec(spec);
  if (!request.ok()) return ids;
  auto cfg = job::AssembleConfig(*request);
  if (!cfg.ok()) return ids;
  for (const std::string& key : ArtifactReferenceKeys()) {
    const std::string& value = cfg->Str(key);
    if (!absl::StartsWith(value, "jobs/")) continue;
    const size_t slash = value.find('/', 5);
    ids.insert(value.substr(5, slash == std::string::npos ? std::string::npos : slash - 5));
  }
  return ids;
}

absl::Status ValidateJobSpec(const v1::JobSpec& spec, JobStore* store) {
  auto cfg = job::CheckSpec(spec);
  if (!cfg.ok()) return cfg.status();
  for (const std::string& key : ArtifactReferenceKeys()) {
    const std::string& value = cfg->Str(key);
    if (absl::StartsWith(value, "jobs/")) {
      if (auto st = CheckReference(key, value, store); !st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateCreateJob(const v1::CreateJobRequest& request, const std::string& owner,
                               const JobLimits& limits, JobStore* store) {
  const v1::JobSpec& spec = request.spec();
  // Every string of the spec counts: it is stored, listed and sent to a
  // worker with the job.
  std::vector<std::pair<const char*, int64_t>> parts = {
      {"spec.config_yaml", static_cast<int64_t>(spec.config_yaml().size())},
      {"spec.config_path", static_cast<int64_t>(spec.config_path().size())},
      {"spec.calib", static_cast<int64_t>(spec.calib().size())},
      {"spec.overrides", 0},
      {"spec.not_quant_pattern", 0}};
  for (const std::string& o : spec.overrides()) parts[3].second += static_cast<int64_t>(o.size());
  for (const std::string& p : spec.not_quant_pattern()) {
    parts[4].second += static_cast<int64_t>(p.size());
  }
  int64_t bytes = 0;
  for (const auto& part : parts) bytes += part.second;
  if (bytes > limits.max_config_bytes) {
    const auto largest =
        *std::max_element(parts.begin(), parts.end(),
                          [](const auto& a, const auto& b) { return a.second < b.second; });
    return absl::InvalidArgumentError(
        absl::StrCat(largest.first, ": the spec's config, path, overrides and patterns take ",
                     bytes, " bytes (", largest.first, " ", largest.second, "), more than the ",
                     limits.max_config_bytes, " allowed (--max-config-bytes)"));
  }
  if (spec.config_path().size() > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.config_path: ", spec.config_path().size(), " bytes; at most 4096"));
  }
  if (spec.overrides_size() > 2 * limits.max_overrides) {
    return absl::InvalidArgumentError(absl::StrCat("spec.overrides: ", spec.overrides_size() / 2,
                                                   " KEY VALUE pairs, more than the ",
                                                   limits.max_overrides, " allowed"));
  }
  if (request.labels_size() > limits.max_labels) {
    return absl::InvalidArgumentError(absl::StrCat("labels: ", request.labels_size(),
                                                   " labels, more than the ", limits.max_labels,
                                                   " allowed"));
  }
  for (const auto& [key, value] : request.labels()) {
    if (static_cast<int>(key.size()) > limits.max_label_bytes ||
        static_cast<int>(value.size()) > limits.max_label_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels: keys and values take at most ", limits.max_label_bytes, " bytes"));
    }
  }
  auto queued = store->CountByState(v1::QUEUED, &owner);
  if (!queued.ok()) return queued.status();
  const int64_t mine = *queued;
  if (mine >= limits.max_queued_per_owner) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "CreateJob: ", mine, " jobs of ", owner.empty() ? "this server's clients" : owner,
        " are queued already, the most allowed (--max-queued-per-token)"));
  }
  return ValidateJobSpec(spec, store);
}

}  // namespace segqat::server
