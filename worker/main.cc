// segqat-worker: the QAT engine on the command line, as PaddleSeg's
// slim/quantization scripts are used:
//   segqat-worker train [--quant] --cfg FILE [--not_quant_pattern P ...] [--do_eval]
//                       [--log_steps N] [--use_gpu] [KEY VALUE ...]
//   segqat-worker eval --cfg FILE [--convert [--save_int8 DIR]] [--metrics-json FILE]
//                      TEST.TEST_MODEL DIR [KEY VALUE ...]
//   segqat-worker export --cfg FILE TEST.TEST_MODEL DIR [FREEZE.SAVE_DIR OUT] [KEY VALUE ...]
//   segqat-worker ptq --cfg FILE TRAIN.PRETRAINED_MODEL_DIR DIR [--not_quant_pattern P ...]
//                     [--calib abs_max|percentile|kl] [--calib-batches N] [--do_eval]
//                     [--metrics-json FILE] [KEY VALUE ...]
//   segqat-worker sensitivity --cfg FILE TEST.TEST_MODEL DIR [--budget POINTS]
//                     [--calib M] [--calib-batches N] [--json FILE] [KEY VALUE ...]
//   segqat-worker diff --cfg FILE TEST.TEST_MODEL DIR [--images N] [--json FILE]
//                      [--runtime engine|onnx|torchscript [--python PY]]
//                      [--integer-kernels]
//                      [KEY VALUE ...]
//   segqat-worker predict --model DIR --image IN.png -o OUT.png [--format color|overlay|labels]
//                         [--float]
//   segqat-worker make-dataset --out DIR [--train N] [--val N] [--height H] [--width W] [--seed S]
//   segqat-worker serve --server HOST:PORT [--gpus all|none|0,1] [--name NAME] [--work-dir DIR]
//                       [--token-file FILE] [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/quote.h"
#include "engine/config/config.h"
#include "engine/data/image_io.h"
#include "engine/data/synthetic.h"
#include "engine/export/exporter.h"
#include "engine/infer/engine.h"
#include "engine/infer/predictor.h"
#include "engine/runtime/device_info.h"
#include "engine/runtime/job_runner.h"
#include "engine/runtime/layer_diff.h"
#include "engine/train/checkpoint.h"
#include "engine/train/dataset.h"
#include "engine/train/evaluator.h"
#include "engine/train/model_loader.h"
#include "engine/train/trainer.h"
#include "job/flags.h"
#include "job/job_flags.h"
#include "worker/serve.h"

namespace segqat {
namespace {

constexpr char kUsage[] =
    "usage:\n"
    "  segqat-worker train [--quant] --cfg FILE [--not_quant_pattern P ...] [--do_eval]\n"
    "                      [--log_steps N] [--use_gpu]\n"
    "                      [--world-size N --rank R --master HOST:PORT] [--threads N]\n"
    "                      [KEY VALUE ...]\n"
    "  segqat-worker eval --cfg FILE [--convert [--save_int8 DIR]] [--metrics-json FILE]\n"
    "                      TEST.TEST_MODEL DIR [KEY VALUE ...]\n"
    "  segqat-worker export --cfg FILE TEST.TEST_MODEL DIR [FREEZE.SAVE_DIR OUT] [KEY VALUE ...]\n"
    "  segqat-worker diff --cfg FILE TEST.TEST_MODEL DIR [--images N] [--json FILE]\n"
    "                      [--runtime engine|onnx|torchscript [--python PY]]\n"
    "                      [--integer-kernels]\n"
    "                      [KEY VALUE ...]\n"
    "                      (simulated vs INT8 engine, or engine vs ONNX Runtime, by layer)\n"
    "  segqat-worker ptq --cfg FILE TRAIN.PRETRAINED_MODEL_DIR DIR [--not_quant_pattern P ...]\n"
    "                      [--calib abs_max|percentile|kl] [--calib-batches N] [--do_eval]\n"
    "                      [--metrics-json FILE] [--use_gpu] [KEY VALUE ...]\n"
    "  segqat-worker sensitivity --cfg FILE TEST.TEST_MODEL DIR [--budget POINTS]\n"
    "                      [--calib abs_max|percentile|kl] [--calib-batches N] [--json FILE]\n"
    "                      [--use_gpu] [KEY VALUE ...]\n"
    "  segqat-worker predict --model DIR --image IN.png -o OUT.png\n"
    "                      [--format color|overlay|labels] [--float]\n"
    "  segqat-worker make-dataset --out DIR [--train N] [--val N] [--height H] [--width W]\n"
    "                      [--seed S]\n"
    "  segqat-worker version\n"
    "  segqat-worker serve --server HOST:PORT [--gpus all|none|0,1] [--name NAME]\n"
    "                      [--work-dir DIR] [--advertise-address HOST] [--threads N]\n"
    "                      [--token-file FILE (else $SEGQAT_TOKEN)]\n"
    "                      [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]\n";

int Fail(const absl::Status& st) {
  spdlog::error("{}", std::string(st.message()));
  return 1;
}

// What this build runs on: the versions compiled in and the GPUs visible.
int RunVersion() {
  const runtime::RuntimeInfo info = runtime::GetRuntimeInfo();
  std::printf("segqat-worker %s\n%s\n", SEGQAT_VERSION, runtime::DescribeBuild(info).c_str());
  if (info.cuda_devices.empty()) {
    std::printf("GPU: no GPU visible%s\n",
                info.cuda.empty() ? " (this build has no CUDA)" : "; jobs train on the CPU");
  }
  for (const runtime::CudaDeviceInfo& d : info.cuda_devices) {
    std::printf("GPU cuda:%d: %s, %.1f GiB, compute capability %s\n", d.index, d.name.c_str(),
                static_cast<double>(d.memory_bytes) / (1 << 30), d.compute_capability.c_str());
  }
  return 0;
}

// A job command: the job's flags (job/job_flags.h, the table segqat parses
// too) and the command's own, then the job checked as a worker checks a
// service job (runtime::PrepareJob: the rules every entry point applies,
// then the dataset lists, checkpoints and paths on this machine).
struct Command {
  runtime::JobRequest request;
  ParsedFlags flags;
  Config config;  // what the job runs with
};

absl::StatusOr<Command> PrepareCommand(job::JobKind kind, const std::vector<std::string>& args,
                                       std::vector<FlagSpec> own) {
  std::vector<FlagSpec> specs = job::JobFlags(kind);
  specs.insert(specs.end(), own.begin(), own.end());
  auto flags = ParseFlags(args, specs);
  if (!flags.ok()) return flags.status();
  Command c;
  c.flags = *std::move(flags);
  c.request.kind = kind;
  if (auto st = job::ApplyJobFlags(c.flags, &c.request); !st.ok()) return st;
  auto cfg = runtime::PrepareJob(&c.request);
  if (!cfg.ok()) return cfg.status();
  c.config = *std::move(cfg);
  return c;
}

int RunTrain(const std::vector<std::string>& args) {
  auto c = PrepareCommand(
      job::JobKind::kTrain, args,
      {{"--world-size", true}, {"--rank", true}, {"--master", true}, {"--threads", true}});
  if (!c.ok()) return Fail(c.status());
  const ParsedFlags& flags = c->flags;
  int threads = 0;
  if (flags.Has("--threads")) {
    if (!absl::SimpleAtoi(flags.Get("--threads"), &threads) || threads < 1) {
      return Fail(absl::InvalidArgumentError("--threads: expects a number >= 1"));
    }
    at::set_num_threads(threads);  // e.g. ranks sharing one machine's cores
  }
  // Data-parallel, as torchrun's ranks: --world-size N --rank R --master HOST:PORT.
  std::unique_ptr<Collectives> collectives;
  if (flags.Has("--world-size")) {
    DistributedOptions d;
    const std::string master = flags.Get("--master", "127.0.0.1:29500");
    const size_t colon = master.rfind(':');
    if (!absl::SimpleAtoi(flags.Get("--world-size"), &d.world_size) ||
        !absl::SimpleAtoi(flags.Get("--rank", "0"), &d.rank) || colon == std::string::npos ||
        !absl::SimpleAtoi(master.substr(colon + 1), &d.master_port)) {
      return Fail(absl::InvalidArgumentError(
          "--world-size N --rank R --master HOST:PORT expect numbers and a host:port"));
    }
    d.master_addr = master.substr(0, colon);
    // A GPU rank (--use_gpu trains on cuda:0) talks over NCCL, as the agent's ranks do.
    if (flags.Has("--use_gpu")) d.device = c10::Device(c10::kCUDA, 0);
    auto joined = ConnectCollectives(d);
    if (!joined.ok()) return Fail(joined.status());
    collectives = *std::move(joined);
  }
  c->request.collectives = collectives.get();
  auto outcome = runtime::RunJob(c->request, c->config, runtime::JobPaths{}, nullptr, nullptr);
  if (!outcome.ok()) return Fail(outcome.status());
  if (outcome->best_miou) spdlog::info("best mIoU {:.4f}", *outcome->best_miou);
  spdlog::info("training done: {} steps, last checkpoint {}", outcome->steps,
               outcome->last_checkpoint);
  return 0;
}

int RunEval(const std::vector<std::string>& args) {
  auto c =
      PrepareCommand(job::JobKind::kEval, args, {{"--metrics-json", true}, {"--save_int8", true}});
  if (!c.ok()) return Fail(c.status());
  if (c->flags.Has("--save_int8") && !c->flags.Has("--convert")) {
    return Fail(absl::InvalidArgumentError("--save_int8 needs --convert"));
  }
  runtime::JobPaths paths;
  paths.metrics_json = c->flags.Get("--metrics-json", "");
  paths.int8_dir = c->flags.Get("--save_int8", "");
  auto outcome = runtime::RunJob(c->request, c->config, paths, nullptr, nullptr);
  if (!outcome.ok()) return Fail(outcome.status());
  return 0;
}

int RunExport(const std::vector<std::string>& args) {
  auto c = PrepareCommand(job::JobKind::kExport, args, {});
  if (!c.ok()) return Fail(c.status());
  auto outcome = runtime::RunJob(c->request, c->config, runtime::JobPaths{}, nullptr, nullptr);
  if (!outcome.ok()) return Fail(outcome.status());
  return 0;
}

// The layer-by-layer diff of a quantized checkpoint: the simulated model
// against the INT8 engine (--runtime engine), or the engine against ONNX
// Runtime on the exported model (--runtime onnx, run by --python, else
// $SEGQAT_PYTHON, else python3), or against model.ts in LibTorch (--runtime
// torchscript), on the first --images val images (the DIFF
// job's default). --integer-kernels runs the engine on LibTorch's
// requantizing kernels (EngineOptions::integer_kernels). Its table on
// stdout; exit 1 when the two part.
int RunDiff(const std::vector<std::string>& args) {
  auto c = PrepareCommand(
      job::JobKind::kDiff, args,
      {{"--json", true}, {"--runtime", true}, {"--python", true}, {"--integer-kernels", false}});
  if (!c.ok()) return Fail(c.status());
  const std::string runtime = c->flags.Get("--runtime", "engine");
  if (runtime != "engine" && runtime != "onnx" && runtime != "torchscript") {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--runtime: ", QuoteForMessage(runtime), " is not one of engine, onnx, torchscript")));
  }
  infer::EngineOptions engine;
  engine.integer_kernels = c->flags.Has("--integer-kernels");
  if (engine.integer_kernels && runtime != "engine") {
    return Fail(absl::InvalidArgumentError("--integer-kernels: only with --runtime engine"));
  }
  std::string python = c->flags.Get("--python", "");
  if (python.empty() && std::getenv("SEGQAT_PYTHON") != nullptr)
    python = std::getenv("SEGQAT_PYTHON");
  if (python.empty()) python = "python3";
  auto diff =
      runtime == "onnx" ? runtime::DiffOnnxRuntime(c->config, c->request.diff_images, python,
                                                   c->request.lists.get())
      : runtime == "torchscript"
          ? runtime::DiffTorchScript(c->config, c->request.diff_images, c->request.lists.get())
          : runtime::DiffLayers(c->config, c->request.diff_images, c->request.lists.get(), engine);
  if (!diff.ok()) return Fail(diff.status());
  if (engine.integer_kernels) diff->runtime = "engine on LibTorch's integer kernels";
  std::fputs(diff->ToText().c_str(), stdout);
  if (c->flags.Has("--json")) {
    std::ofstream out(c->flags.Get("--json"));
    out << diff->ToJson();
    if (!out) return Fail(absl::InternalError("--json: cannot write " + c->flags.Get("--json")));
  }
  return diff->first_divergence.empty() ? 0 : 1;
}

// PaddleSlim's quant_post: calibrates a float checkpoint; writes
// TRAIN.MODEL_SAVE_DIR/final, a checkpoint as QAT writes.
int RunPtq(const std::vector<std::string>& args) {
  auto c = PrepareCommand(job::JobKind::kPtq, args, {{"--metrics-json", true}});
  if (!c.ok()) return Fail(c.status());
  runtime::JobPaths paths;
  paths.metrics_json = c->flags.Get("--metrics-json", "");
  auto outcome = runtime::RunJob(c->request, c->config, paths, nullptr, nullptr);
  if (!outcome.ok()) return Fail(outcome.status());
  spdlog::info("post-training quantized checkpoint: {}", outcome->last_checkpoint);
  return 0;
}

int RunSensitivity(const std::vector<std::string>& args) {
  auto c = PrepareCommand(job::JobKind::kSensitivity, args, {{"--json", true}});
  if (!c.ok()) return Fail(c.status());
  runtime::JobPaths paths;
  paths.sensitivity_json = c->flags.Get("--json", "");
  auto outcome = runtime::RunJob(c->request, c->config, paths, nullptr, nullptr);
  if (!outcome.ok()) return Fail(outcome.status());
  return 0;
}

int RunPredict(std::vector<std::string> args) {
  for (std::string& a : args) {
    if (a == "-o") a = "--output";
  }
  auto flags = ParseFlags(args, {{"--model", true},
                                 {"--image", true},
                                 {"--output", true},
                                 {"--format", true},
                                 {"--float", false}});
  if (!flags.ok()) return Fail(flags.status());
  if (!flags->overrides.empty()) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("predict: unexpected argument '", flags->overrides[0], "'")));
  }
  for (const char* required : {"--model", "--image", "--output"}) {
    if (!flags->Has(required)) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(required, " is required")));
    }
  }
  const std::string format = flags->Has("--format") ? flags->Get("--format") : "color";
  infer::LabelFormat f;
  if (format == "color") {
    f = infer::LabelFormat::kColor;
  } else if (format == "overlay") {
    f = infer::LabelFormat::kOverlay;
  } else if (format == "labels") {
    f = infer::LabelFormat::kLabels;
  } else {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--format: '", format, "' is not one of color, overlay, labels")));
  }
  auto predictor = infer::Predictor::Load(flags->Get("--model"), flags->Has("--float")
                                                                     ? infer::Precision::kFloat
                                                                     : infer::Precision::kInt8);
  if (!predictor.ok()) return Fail(predictor.status());
  data::ListEntry entry;
  entry.image_path = flags->Get("--image");
  auto sample = data::LoadSample(entry, static_cast<int>(predictor->deploy().num_classes), 255);
  if (!sample.ok()) return Fail(sample.status());
  auto labels = predictor->Predict(sample->image);
  if (!labels.ok()) {
    return Fail(absl::Status(labels.status().code(),
                             absl::StrCat(entry.image_path, ": ", labels.status().message())));
  }
  const cv::Mat out = infer::RenderLabels(*labels, sample->image, f);
  const std::string path = flags->Get("--output");
  bool written = false;
  try {
    written = cv::imwrite(path, out);
  } catch (const cv::Exception& e) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("-o ", path, ": ", e.what())));
  }
  if (!written) return Fail(absl::InternalError(absl::StrCat("-o: cannot write ", path)));
  spdlog::info("wrote {} ({}, {} engine)", path, format,
               predictor->engine().qengine().empty() ? "float" : predictor->engine().qengine());
  return 0;
}

int RunMakeDataset(const std::vector<std::string>& args) {
  auto flags = ParseFlags(args, {{"--out", true},
                                 {"--train", true},
                                 {"--val", true},
                                 {"--height", true},
                                 {"--width", true},
                                 {"--seed", true}});
  if (!flags.ok()) return Fail(flags.status());
  data::SyntheticOptions o;
  if (!flags->Has("--out")) return Fail(absl::InvalidArgumentError("--out DIR is required"));
  o.out_dir = flags->Get("--out");
  auto number = [&](const char* flag, auto* out) -> absl::Status {
    if (flags->Has(flag) && !absl::SimpleAtoi(flags->Get(flag), out)) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": expects a number"));
    }
    return absl::OkStatus();
  };
  for (auto st : {number("--train", &o.train_images), number("--val", &o.val_images),
                  number("--height", &o.height), number("--width", &o.width)}) {
    if (!st.ok()) return Fail(st);
  }
  if (auto st = number("--seed", &o.seed); !st.ok()) return Fail(st);
  if (o.train_images < 1 || o.val_images < 1 || o.height < 16 || o.width < 16) {
    return Fail(
        absl::InvalidArgumentError("--train/--val must be >= 1 and --height/--width >= 16"));
  }
  if (auto st = data::MakeSyntheticDataset(o); !st.ok()) return Fail(st);
  spdlog::info("wrote {} train and {} val images ({}x{}) to {}", o.train_images, o.val_images,
               o.width, o.height, o.out_dir);
  return 0;
}

}  // namespace
}  // namespace segqat

int main(int argc, char** argv) {
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S %^%l%$ %v");
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  segqat::runtime::PrepareProcessForJobs();
  if (argc < 2) {
    std::fputs(segqat::kUsage, stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "train") return segqat::RunTrain(args);
  if (cmd == "eval") return segqat::RunEval(args);
  if (cmd == "make-dataset") return segqat::RunMakeDataset(args);
  if (cmd == "export") return segqat::RunExport(args);
  if (cmd == "diff") return segqat::RunDiff(args);
  if (cmd == "ptq") return segqat::RunPtq(args);
  if (cmd == "sensitivity") return segqat::RunSensitivity(args);
  if (cmd == "predict") return segqat::RunPredict(args);
  if (cmd == "serve") return segqat::RunServe(args);
  if (cmd == "version" || cmd == "--version") return segqat::RunVersion();
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::fputs(segqat::kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "segqat-worker: unknown command '%s'\n%s", cmd.c_str(), segqat::kUsage);
  return 2;
}
