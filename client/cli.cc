#include "client/cli.h"

#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "absl/strings/numbers.h"
#include "client/progress_printer.h"
#include "common/channel.h"
#include "common/job_name.h"

namespace segqat::client {
namespace {

const std::vector<FlagSpec> kCommon = {
    {"--server", true}, {"--timeout", true},  {"--json", false},  {"--token-file", true},
    {"--tls-ca", true}, {"--tls-cert", true}, {"--tls-key", true}};

}  // namespace

const std::vector<FlagSpec>& CommonFlags() { return kCommon; }

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = false;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

bool IsCommonValueFlag(const std::string& a) {
  return a == "--server" || a == "--timeout" || a == "--token-file" || a == "--tls-ca" ||
         a == "--tls-cert" || a == "--tls-key";
}

std::vector<FlagSpec> With(std::vector<FlagSpec> specs) {
  specs.insert(specs.end(), kCommon.begin(), kCommon.end());
  return specs;
}

int Fail(const absl::Status& st) {
  std::fprintf(stderr, "segqat: %s: %s\n", absl::StatusCodeToString(st.code()).c_str(),
               std::string(st.message()).c_str());
  return 1;
}

std::string JobNameOf(const std::string& arg) { return JobName(JobIdOf(arg)); }

std::unique_ptr<Client> ConnectFromFlags(const ParsedFlags& f) {
  int seconds = 30;
  if (f.Has("--timeout")) (void)absl::SimpleAtoi(f.Get("--timeout"), &seconds);
  ChannelOptions options;
  auto token = ReadToken(f.Get("--token-file", ""));
  if (!token.ok()) std::exit(Fail(token.status()));
  options.token = *token;
  options.tls_ca = f.Get("--tls-ca", "");
  options.tls_cert = f.Get("--tls-cert", "");
  options.tls_key = f.Get("--tls-key", "");
  auto channel = segqat::client::Connect(f.Get("--server", "127.0.0.1:50051"), options);
  if (!channel.ok()) std::exit(Fail(channel.status()));
  return std::make_unique<Client>(*channel, std::chrono::seconds(std::max(1, seconds)));
}

void PrintJob(const v1::Job& job, bool json) {
  if (json) {
    std::cout << Json(job) << "\n";
    return;
  }
  std::cout << job.name() << "  " << v1::JobKind_Name(job.kind()) << "  "
            << v1::JobState_Name(job.state()) << "  attempt " << job.attempt();
  const auto& p = job.progress();
  if (p.step() > 0) {
    std::cout << "  epoch " << p.epoch() << " step " << p.step() << "/" << p.total_steps()
              << " loss " << p.last_loss();
  }
  if (p.best_miou() >= 0) std::cout << "  best mIoU " << p.best_miou();
  std::cout << "\n";
  if (!job.error().empty()) std::cout << "  error: " << job.error() << "\n";
  for (const auto& a : job.artifacts()) {
    std::cout << "  " << a.name() << "  " << a.size_bytes() << " bytes  sha256 " << a.sha256()
              << "\n";
  }
}

int WaitFor(Client& client, const std::string& name, int64_t after, bool json, bool logs_only,
            bool summary, int64_t until_seq) {
  ProgressPrinter printer(json, logs_only, isatty(STDERR_FILENO) != 0);
  absl::Status st = client.Watch(name, after, [&](const v1::JobEvent& e) {
    printer.Print(e);
    return until_seq <= 0 || e.seq() < until_seq;
  });
  printer.Done();
  if (!st.ok() && !(until_seq > 0 && absl::IsCancelled(st))) return Fail(st);
  if (until_seq > 0) return 0;  // printed what was stored
  auto job = client.GetJob(name);
  if (!job.ok()) return Fail(job.status());
  if (summary && !json && !logs_only) PrintJob(*job, false);
  return job->state() == v1::SUCCEEDED ? 0 : 1;
}

}  // namespace segqat::client
