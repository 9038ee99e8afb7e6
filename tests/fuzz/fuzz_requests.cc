// CreateJob and ReadArtifact request handling before any job runs: a
// serialized request (first byte picks which), validated as segqatd does,
// against a real job store.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/str_split.h"
#include "common/job_name.h"
#include "google/protobuf/stubs/logging.h"
#include "segqat/v1/jobs.pb.h"
#include "server/artifact_store.h"
#include "server/job_service.h"
#include "server/job_store.h"
#include "server/job_validation.h"

namespace {

segqat::server::JobStore* Store() {
  static segqat::server::JobStore* store = [] {
    char tmpl[] = "/tmp/segqat_fuzz_store_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) std::abort();
    auto opened = segqat::server::JobStore::Open(std::string(tmpl) + "/jobs.db",
                                                 segqat::server::SystemClock());
    if (!opened.ok()) std::abort();
    return opened->release();
  }();
  return store;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Invalid UTF-8 in string fields is expected here; protobuf would log each.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int kind = data[0] % 2;
  if (kind == 0) {
    segqat::v1::CreateJobRequest request;
    if (!request.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
    (void)segqat::server::ValidateCreateJob(request, "fuzzer", segqat::server::JobLimits(),
                                            Store());
  } else {
    segqat::v1::ReadArtifactRequest request;
    if (!request.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
    (void)segqat::ParseJobName(request.name());
    const std::string& name = request.artifact();
    if (!segqat::server::CheckRelativeName(name, "artifact").ok()) return 0;
    // What was let through cannot leave the job's folder, nor be cut short.
    if (name.empty() || name[0] == '/' || name.size() > 1024) std::abort();
    for (unsigned char c : name) {
      if (c < 0x20 || c == 0x7f) std::abort();
    }
    for (const auto& part : absl::StrSplit(name, '/')) {
      if (part.empty() || part == "." || part == "..") std::abort();
    }
  }
  return 0;
}
