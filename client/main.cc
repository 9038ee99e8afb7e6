// segqat: the command-line client of segqatd. Jobs: train [--quant], eval,
// export, ptq, sensitivity, diff (their flags: job/job_flags.h, the table
// segqat-worker parses too); then report, get, watch, logs, cancel, delete,
// list, workers, download (kUsage below).
// Common flags: --server HOST:PORT (default 127.0.0.1:50051), --timeout SECONDS
// (per call, default 30), --json (protobuf's JSON mapping, for pipelines),
// --token-file FILE (else $SEGQAT_TOKEN), --tls-ca FILE [--tls-cert F --tls-key F].
// Job submission also takes --wait (block until the job ends; exit 1 unless
// it succeeded), --priority N, --label KEY=VALUE, --request-id ID.
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/cli.h"
#include "client/client.h"
#include "client/progress_printer.h"
#include "client/report.h"
#include "common/channel.h"
#include "job/flags.h"
#include "job/job_flags.h"
#include "job/job_spec.h"

namespace segqat::client {
namespace {

constexpr char kUsage[] =
    "usage: segqat [--server HOST:PORT] COMMAND ...\n"
    "  train [--quant] --cfg FILE [--not_quant_pattern P ...] [--do_eval] [--use_gpu | --gpus N]\n"
    "        [--workers N (data-parallel ranks)] [--wait]\n"
    "        [--log_steps N] [--priority N] [--label K=V] [--request-id ID] [KEY VALUE ...]\n"
    "  eval --cfg FILE [--convert] [--wait] [KEY VALUE ...]\n"
    "  export --cfg FILE [--wait] [KEY VALUE ...]\n"
    "  ptq --cfg FILE [--not_quant_pattern P ...] [--calib abs_max|percentile|kl]\n"
    "        [--calib-batches N] [--do_eval] [--wait] [KEY VALUE ...]\n"
    "  sensitivity --cfg FILE [--budget POINTS] [--calib M] [--calib-batches N] [--wait]\n"
    "        [KEY VALUE ...]\n"
    "  diff --cfg FILE [--images N] [--wait] TEST.TEST_MODEL DIR [KEY VALUE ...]\n"
    "  report JOB ... -o DIR\n"
    "  get JOB | watch JOB [--after N] | logs [-f] JOB | cancel JOB | delete JOB\n"
    "  list [--state S] [--kind K] [--label K=V] [--page-size N]\n"
    "  workers\n"
    "  download JOB [ARTIFACT ...] -o DIR\n"
    "common flags: --timeout SECONDS, --json, --token-file FILE (else $SEGQAT_TOKEN),\n"
    "              --tls-ca FILE [--tls-cert FILE --tls-key FILE]\n";

int Report(const std::vector<std::string>& in) {
  // Flags first, then the jobs: -o DIR may come anywhere.
  std::vector<std::string> args, jobs;
  for (size_t i = 0; i < in.size(); ++i) {
    const bool value_flag = in[i] == "-o" || in[i] == "--output" || IsCommonValueFlag(in[i]);
    if (value_flag && i + 1 < in.size()) {
      args.push_back(in[i] == "-o" ? "--output" : in[i]);
      args.push_back(in[++i]);
    } else if (absl::StartsWith(in[i], "--")) {
      args.push_back(in[i]);
    } else {
      jobs.push_back(in[i]);
    }
  }
  auto f = ParseFlags(args, With({{"--output", true}}));
  if (!f.ok()) return Fail(f.status());
  ReportOptions o;
  o.jobs = jobs;
  o.out_dir = f->Get("--output", "");
  auto client = ConnectFromFlags(*f);
  if (auto st = WriteReport(*client, o); !st.ok()) return Fail(st);
  std::cout << "wrote " << (std::filesystem::path(o.out_dir) / "report.md").string() << "\n";
  return 0;
}

// A job from the command line: the job's flags as segqat-worker parses them
// (job/job_flags.h), checked here by the rules segqatd applies, then sent.
int Submit(job::JobKind kind, const std::vector<std::string>& args) {
  std::vector<FlagSpec> flags = job::JobFlags(kind);
  flags.insert(flags.end(), {{"--gpus", true},
                             {"--workers", true},
                             {"--priority", true},
                             {"--label", true, true},
                             {"--request-id", true},
                             {"--wait", false}});
  auto f = ParseFlags(args, With(flags));
  if (!f.ok()) return Fail(f.status());
  job::JobRequest request;
  request.kind = kind;
  if (auto st = job::ApplyJobFlags(*f, &request); !st.ok()) return Fail(st);
  // The flags' values before the spec, where 0 means "the default"
  // (--images 0 is refused, not turned into 16).
  auto cfg = job::AssembleConfig(request);
  if (!cfg.ok()) return Fail(cfg.status());
  if (auto st = job::CheckJob(request, *cfg); !st.ok()) return Fail(st);
  v1::CreateJobRequest req;
  v1::JobSpec* spec = req.mutable_spec();
  *spec = job::ToSpec(request);
  int n = 0;
  if (f->Has("--gpus")) {
    if (!absl::SimpleAtoi(f->Get("--gpus"), &n)) {
      return Fail(absl::InvalidArgumentError("--gpus: expects a number of GPUs"));
    }
    spec->set_gpus(n);
  }
  if (f->Has("--workers")) {
    if (!absl::SimpleAtoi(f->Get("--workers"), &n)) {
      return Fail(absl::InvalidArgumentError("--workers: expects a number of ranks"));
    }
    spec->set_workers(n);
  }
  // Refused here as segqatd would refuse it (the same rules, job/job_spec.h),
  // and as segqat-worker refuses the same command line.
  if (auto checked = job::CheckSpec(*spec); !checked.ok()) return Fail(checked.status());
  if (f->Has("--priority") && absl::SimpleAtoi(f->Get("--priority"), &n)) req.set_priority(n);
  if (f->Has("--label")) {
    for (const auto& kv : f->values.at("--label")) {
      std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
      (*req.mutable_labels())[p.first] = p.second;
    }
  }
  req.set_request_id(f->Get("--request-id"));
  auto client = ConnectFromFlags(*f);
  auto job = client->CreateJob(req);
  if (!job.ok()) return Fail(job.status());
  if (!f->Has("--wait")) {
    PrintJob(*job, f->Has("--json"));
    return 0;
  }
  if (!f->Has("--json")) std::cerr << "created " << job->name() << "\n";
  int code = WaitFor(*client, job->name(), 0, false, false, !f->Has("--json"));
  if (f->Has("--json")) {
    auto final_job = client->GetJob(job->name());
    if (final_job.ok()) PrintJob(*final_job, true);
  }
  return code;
}

// JOB [ARTIFACT ...] with flags anywhere: -o/--out DIR, --after N, -f/--follow.
struct JobArgs {
  std::vector<std::string> positional;
  ParsedFlags flags;
};

absl::StatusOr<JobArgs> ParseJobArgs(const std::vector<std::string>& args) {
  JobArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-f" || a == "--follow" || a == "--json") {
      out.flags.values[a];
    } else if (a == "-o" || a == "--out" || a == "--after" || IsCommonValueFlag(a)) {
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(a + " needs a value");
      out.flags.values[a == "--out" ? "-o" : a].push_back(args[++i]);
    } else if (a.rfind("-", 0) == 0) {
      return absl::InvalidArgumentError(a + ": unknown flag");
    } else {
      out.positional.push_back(a);
    }
  }
  return out;
}

int JobCommand(const std::string& cmd, const std::vector<std::string>& args) {
  auto parsed = ParseJobArgs(args);
  if (!parsed.ok()) return Fail(parsed.status());
  const ParsedFlags* f = &parsed->flags;
  const std::vector<std::string>& pos = parsed->positional;
  if (pos.empty()) return Fail(absl::InvalidArgumentError(cmd + ": JOB is required"));
  const std::string name = JobNameOf(pos[0]);
  auto client = ConnectFromFlags(*f);
  const bool json = f->Has("--json");
  if (cmd == "get") {
    auto job = client->GetJob(name);
    if (!job.ok()) return Fail(job.status());
    PrintJob(*job, json);
    return 0;
  }
  if (cmd == "cancel") {
    auto job = client->CancelJob(name);
    if (!job.ok()) return Fail(job.status());
    PrintJob(*job, json);
    return 0;
  }
  if (cmd == "delete") {
    if (auto st = client->DeleteJob(name); !st.ok()) return Fail(st);
    std::cout << "deleted " << name << "\n";
    return 0;
  }
  if (cmd == "watch" || cmd == "logs") {
    int64_t after = 0;
    if (f->Has("--after")) (void)absl::SimpleAtoi(f->Get("--after"), &after);
    int64_t until = 0;
    if (cmd == "logs" && !f->Has("-f") && !f->Has("--follow")) {
      // What is stored so far, without following.
      auto job = client->GetJob(name);
      if (!job.ok()) return Fail(job.status());
      if (job->last_event_seq() <= after) return 0;
      until = job->last_event_seq();
    }
    return WaitFor(*client, name, after, json, cmd == "logs", true, until);
  }
  if (cmd == "download") {
    const std::string out = f->Get("-o", ".");
    auto listed = client->ListArtifacts(name);
    if (!listed.ok()) return Fail(listed.status());
    std::vector<std::string> wanted(pos.begin() + 1, pos.end());
    int count = 0;
    for (const auto& a : listed->artifacts()) {
      bool match = wanted.empty();
      for (const auto& w : wanted)
        match = match || a.name() == w || a.name().rfind(w + "/", 0) == 0;
      if (!match) continue;
      const std::string path = (std::filesystem::path(out) / a.name()).string();
      if (auto st = client->Download(name, a, path); !st.ok()) return Fail(st);
      std::cout << path << "  " << a.size_bytes() << " bytes  sha256 " << a.sha256() << "\n";
      ++count;
    }
    if (count == 0) return Fail(absl::NotFoundError("no matching artifact"));
    return 0;
  }
  return Fail(absl::InvalidArgumentError("unknown command " + cmd));
}

int List(const std::vector<std::string>& args) {
  auto f = ParseFlags(args, With({{"--state", true},
                                  {"--kind", true},
                                  {"--label", true, true},
                                  {"--page-size", true},
                                  {"--page-token", true}}));
  if (!f.ok()) return Fail(f.status());
  v1::ListJobsRequest req;
  if (f->Has("--state")) {
    v1::JobState s;
    if (!v1::JobState_Parse(f->Get("--state"), &s)) {
      return Fail(
          absl::InvalidArgumentError("--state: one of QUEUED RUNNING SUCCEEDED FAILED "
                                     "CANCELLING CANCELLED"));
    }
    req.set_state(s);
  }
  if (f->Has("--kind")) {
    v1::JobKind k;
    if (!v1::JobKind_Parse(f->Get("--kind"), &k)) {
      return Fail(absl::InvalidArgumentError(
          "--kind: one of TRAIN QUANT_TRAIN EVAL EXPORT PTQ SENSITIVITY DIFF"));
    }
    req.set_kind(k);
  }
  if (f->Has("--label")) {
    for (const auto& kv : f->values.at("--label")) {
      std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
      (*req.mutable_labels())[p.first] = p.second;
    }
  }
  int n = 0;
  if (f->Has("--page-size") && absl::SimpleAtoi(f->Get("--page-size"), &n)) req.set_page_size(n);
  req.set_page_token(f->Get("--page-token"));
  auto resp = ConnectFromFlags(*f)->ListJobs(req);
  if (!resp.ok()) return Fail(resp.status());
  if (f->Has("--json")) {
    std::cout << Json(*resp) << "\n";
    return 0;
  }
  for (const auto& job : resp->jobs()) PrintJob(job, false);
  if (!resp->next_page_token().empty())
    std::cout << "next page: --page-token " << resp->next_page_token() << "\n";
  return 0;
}

int Workers(const std::vector<std::string>& args) {
  auto f = ParseFlags(args, CommonFlags());
  if (!f.ok()) return Fail(f.status());
  auto resp = ConnectFromFlags(*f)->ListWorkers();
  if (!resp.ok()) return Fail(resp.status());
  if (f->Has("--json")) {
    std::cout << Json(*resp) << "\n";
    return 0;
  }
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  std::cout << "WORKER  HOST  DEVICES  STATE  JOB  LAST REPORT  RUNTIME\n";
  for (const auto& w : resp->workers()) {
    std::vector<std::string> devices;
    for (const auto& d : w.devices()) {
      if (d.kind() != "cuda") {
        devices.push_back(absl::StrCat("cpu (", d.description(), ")"));
        continue;
      }
      std::string about = d.description();
      if (d.memory_bytes() > 0) {
        absl::StrAppend(&about, ", ", (d.memory_bytes() + (int64_t{1} << 29)) >> 30, " GiB");
      }
      if (!d.compute_capability().empty()) absl::StrAppend(&about, ", sm ", d.compute_capability());
      devices.push_back(absl::StrCat("cuda:", d.index(), " (", about, ")"));
    }
    std::cout << w.name() << "  " << (w.host().empty() ? "-" : w.host()) << "  "
              << (devices.empty() ? w.device() : absl::StrJoin(devices, ", ")) << "  " << w.state()
              << "  " << (w.job().empty() ? "-" : w.job()) << "  "
              << std::max<int64_t>(0, now - w.last_report_time().seconds()) << "s ago  "
              << (w.runtime().empty() ? "-" : w.runtime()) << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace segqat::client

int main(int argc, char** argv) {
  using namespace segqat::client;
  std::vector<std::string> args(argv + 1, argv + argc);
  // --server may come before the command.
  std::vector<std::string> lead;
  while (args.size() >= 2 && IsCommonValueFlag(args[0])) {
    lead.push_back(args[0]);
    lead.push_back(args[1]);
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string cmd = args[0];
  std::vector<std::string> rest(lead);
  rest.insert(rest.end(), args.begin() + 1, args.end());
  if (cmd == "train") return Submit(segqat::job::JobKind::kTrain, rest);
  if (cmd == "eval") return Submit(segqat::job::JobKind::kEval, rest);
  if (cmd == "export") return Submit(segqat::job::JobKind::kExport, rest);
  if (cmd == "ptq") return Submit(segqat::job::JobKind::kPtq, rest);
  if (cmd == "sensitivity") return Submit(segqat::job::JobKind::kSensitivity, rest);
  if (cmd == "diff") return Submit(segqat::job::JobKind::kDiff, rest);
  if (cmd == "report") return Report(rest);
  if (cmd == "list") return List(rest);
  if (cmd == "workers") return Workers(rest);
  if (cmd == "get" || cmd == "watch" || cmd == "logs" || cmd == "cancel" || cmd == "delete" ||
      cmd == "download") {
    return JobCommand(cmd, rest);
  }
  std::fprintf(stderr, "segqat: unknown command '%s'\n%s", cmd.c_str(), kUsage);
  return 2;
}
