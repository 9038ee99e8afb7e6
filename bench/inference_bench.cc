// Prints float and INT8 inference latency of the seed's model
// (DeepLabv3+/MobileNetV2, output stride 16, no ASPP, no decoder) at
// 1x3x512x1024, side by side in one run with one thread count:
//   segqat  float graph (BN folded) vs the INT8 engine on each quantized
//           engine LibTorch has (oneDNN, QNNPACK), rounds interleaved, for
//           8-bit activations (a8, the default) and 7-bit ones (a7,
//           SLIM.activation_bits 7, on which oneDNN's kernels are exact
//           everywhere on x86 without VNNI)
//   ORT     ONNX Runtime (onnxruntime-node, tests/export/ort) on the float
//           and the QDQ model.onnx, when node and the package are there
// The model has random weights; activation scales come from a few QAT
// forward passes on random images (latency does not depend on the values).
//   bench_inference [--rounds N] [--height H] [--width W] [--threads T]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "worker/config/config.h"
#include "worker/export/exporter.h"
#include "worker/export/onnx_model.h"
#include "worker/infer/engine.h"
#include "worker/models/deeplab.h"
#include "worker/quant/quant_aware.h"

namespace {

namespace fs = std::filesystem;
using segqat::Config;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

segqat::exports::DeployGraph Graph(const segqat::models::DeepLabV3PlusImpl& model,
                                   const Config& cfg) {
  auto g = segqat::exports::BuildDeployGraph(model, cfg, false);
  if (!g.ok()) {
    std::fprintf(stderr, "%s\n", std::string(g.status().message()).c_str());
    std::exit(1);
  }
  return *std::move(g);
}

// A QAT model of `cfg` with activation scales from a few forward passes on
// random images, converted, as a deploy graph.
segqat::exports::DeployGraph QatGraph(const Config& cfg) {
  namespace m = segqat::models;
  m::DeepLabV3Plus qat(m::DeepLabOptions::FromConfig(cfg));
  if (!segqat::quant::QuantAware(*qat, segqat::quant::QuantConfig::FromConfig(cfg)).ok()) {
    std::exit(1);
  }
  {
    at::NoGradGuard no_grad;
    qat->train();
    for (int i = 0; i < 4; ++i) qat->forward(at::randn({2, 3, 128, 256}));
  }
  qat->eval();
  if (!segqat::quant::Convert(*qat).ok()) std::exit(1);
  return Graph(*qat, cfg);
}

// ONNX Runtime's median in ms, or -1 when it cannot run here.
double OrtMedian(const std::string& model, const fs::path& dir, const at::Tensor& x, int rounds,
                 int threads) {
  const fs::path script = fs::path(SEGQAT_SOURCE_DIR) / "tests/export/ort/run_onnx.js";
  if (!fs::exists(fs::path(SEGQAT_SOURCE_DIR) / "tests/export/ort/node_modules/onnxruntime-node")) {
    return -1;
  }
  const fs::path in = dir / "in", out = dir / "out";
  fs::create_directories(in);
  at::Tensor c = x.contiguous();
  std::ofstream(in / "x.f32", std::ios::binary)
      .write(static_cast<const char*>(c.data_ptr()), c.numel() * 4);
  std::ofstream(in / "x.json") << "{\"shape\": [1, 3, " << x.size(2) << ", " << x.size(3) << "]}";
  const std::string cmd = "node " + script.string() + " " + model + " " + in.string() + " " +
                          out.string() + " --threads " + std::to_string(threads) + " --bench " +
                          std::to_string(rounds) + " > " + (dir / "ort.json").string();
  if (std::system(cmd.c_str()) != 0) return -1;
  std::ifstream f(dir / "ort.json");
  std::string json((std::istreambuf_iterator<char>(f)), {});
  const auto pos = json.find("\"ort_ms_median\":");
  return pos == std::string::npos ? -1 : std::atof(json.c_str() + pos + 16);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5, threads = at::get_num_threads();
  int64_t height = 512, width = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--height")) height = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--width")) width = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
  }
  at::set_num_threads(threads);
  segqat::infer::RetainFreedMemory();
  auto cfg = Config::Load(std::string(SEGQAT_SOURCE_DIR) +
                          "/configs/deeplabv3p_mobilenetv2_cityscapes.yaml", {});
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", std::string(cfg.status().message()).c_str());
    return 1;
  }
  at::manual_seed(0);
  namespace m = segqat::models;
  m::DeepLabV3Plus float_model(m::DeepLabOptions::FromConfig(*cfg));
  float_model->eval();
  Config cfg7 = *cfg;
  if (!cfg7.SetFromString("SLIM.activation_bits", "7").ok()) return 1;
  auto graph = QatGraph(*cfg);
  auto graph7 = QatGraph(cfg7);
  auto float_graph = Graph(*float_model, *cfg);
  // name, engine, its quantized engine ("" for float)
  struct Entry {
    std::string name, qengine;
    std::unique_ptr<segqat::infer::Engine> engine;
  };
  std::vector<Entry> engines;
  engines.push_back({"float", "", *segqat::infer::Engine::Create(
                                      float_graph, segqat::infer::Precision::kFloat)});
  for (const char* qengine : {"onednn", "qnnpack"}) {
    setenv("SEGQAT_QENGINE", qengine, 1);
    for (const auto* g : {&graph, &graph7}) {
      auto e = segqat::infer::Engine::Create(*g, segqat::infer::Precision::kInt8);
      if (!e.ok() || (*e)->qengine() != qengine) continue;
      engines.push_back({std::string(qengine) + (g == &graph7 ? " a7" : " a8"), qengine,
                         *std::move(e)});
    }
  }
  at::Tensor x = at::randn({1, 3, height, width});
  std::vector<std::vector<double>> times(engines.size());
  for (auto& e : engines) (void)e.engine->Run(x);  // warm up
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < engines.size(); ++i) {
      // The quantized engine is process-wide: pick this engine's again.
      if (!engines[i].qengine.empty()) {
        at::globalContext().setQEngine(engines[i].qengine == "onednn" ? at::QEngine::ONEDNN
                                                                       : at::QEngine::QNNPACK);
      }
      auto t0 = std::chrono::steady_clock::now();
      (void)engines[i].engine->Run(x);
      times[i].push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  std::printf("1x3x%lldx%lld, %d threads, %d rounds, median ms\n", static_cast<long long>(height),
              static_cast<long long>(width), threads, rounds);
  const double base = Median(times[0]);
  for (size_t i = 0; i < engines.size(); ++i) {
    std::printf("  segqat %-11s %8.1f ms  %5.2fx vs float  (%d integer convs)\n",
                engines[i].name.c_str(), Median(times[i]), base / Median(times[i]),
                engines[i].engine->integer_convs());
  }
  const fs::path dir = fs::temp_directory_path() / ("segqat_bench_" + std::to_string(getpid()));
  fs::create_directories(dir);
  if (segqat::exports::WriteOnnx(float_graph, (dir / "float.onnx").string()).ok() &&
      segqat::exports::WriteOnnx(graph, (dir / "int8.onnx").string()).ok() &&
      segqat::exports::WriteOnnx(graph7, (dir / "int8_a7.onnx").string()).ok()) {
    const double f = OrtMedian((dir / "float.onnx").string(), dir / "f", x, rounds, threads);
    const double q = OrtMedian((dir / "int8.onnx").string(), dir / "q", x, rounds, threads);
    const double q7 = OrtMedian((dir / "int8_a7.onnx").string(), dir / "q7", x, rounds, threads);
    if (f > 0 && q > 0 && q7 > 0) {
      std::printf("  ORT    float       %8.1f ms  %5.2fx vs segqat float\n", f, base / f);
      std::printf("  ORT    QDQ a8      %8.1f ms  %5.2fx vs ORT float\n", q, f / q);
      std::printf("  ORT    QDQ a7      %8.1f ms  %5.2fx vs ORT float\n", q7, f / q7);
    } else {
      std::printf("  ORT    not run (scripts/install-ort.sh installs it)\n");
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
