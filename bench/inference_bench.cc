// Prints float and INT8 inference latency of the seed's model
// (DeepLabv3+/MobileNetV2, output stride 16, no ASPP, no decoder, every conv
// and residual add quantized) side by side in one run with one thread count,
// rounds interleaved across processes, medians:
//   segqat  the float graph (BN folded) and the INT8 engine, for 8-bit
//           activations (a8, the default) and 7-bit ones (a7), with the
//           rule this CPU gets (vnni / no-vnni); --all adds the no-VNNI
//           rule on a VNNI CPU and QNNPACK
//   PyTorch the same network quantized by PyTorch's own eager QAT and
//           convert (bench/pytorch_int8.py, in the project's .venv), its x86
//           engine and qconfig
//   ORT     ONNX Runtime (tests/export/ort/run_onnx.py, .venv) on the float
//           and the QDQ model.onnx (also with FREEZE.ONNX_INT8_WEIGHTS), and the
//           exact form (FREEZE.ONNX_FORM exact)
// The peers run as child processes that time one inference per request;
// each timed run starts 200 ms after the previous one, so one runtime's
// spinning thread pool does not slow the next. The model has random weights;
// activation scales come from a few QAT forward passes on random images
// (latency does not depend on the values).
//   bench_inference [--rounds N] [--height H] [--width W] [--threads T]
//                   [--all] [--no-peers] [--profile] [--torch-qconfig x86|onednn|fbgemm]
// --profile prints each segqat engine's slowest nodes afterwards.
// One program over 400 lines: its engines, peer processes and table are
// measured side by side in one run and belong together.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "engine/config/config.h"
#include "engine/export/exporter.h"
#include "engine/export/onnx_model.h"
#include "engine/infer/engine.h"
#include "engine/models/deeplab.h"
#include "engine/quant/quant_aware.h"

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

// The peers get the allocator setting segqat's RetainFreedMemory gives this
// process (glibc keeps freed blocks instead of unmapping them): without it,
// PyTorch's INT8 faulted its activations in anew each run and took 2x as long.
constexpr char kPeerMalloc[] = "MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 ";

// Lets the previous run's thread pool (ours or a peer's, whose OpenMP
// threads spin a while after their work) go idle before the next one is timed.
void Settle() { std::this_thread::sleep_for(std::chrono::milliseconds(200)); }

// A timing process in another runtime (PyTorch, ONNX Runtime) that prints
// "ready ..." once loaded, then the milliseconds of one inference per "run"
// line on its stdin, so that its rounds interleave with segqat's.
class Peer {
 public:
  // False when the command cannot start or never says "ready" (its stderr
  // goes to ours, and why it failed with it).
  bool Start(const std::string& command) {
    int to_child[2], from_child[2];
    // Close-on-exec, so that later peers do not hold this one's pipes open.
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) return false;
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      dup2(to_child[0], 0);
      dup2(from_child[1], 1);
      close(to_child[1]);
      close(from_child[0]);
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    in_ = fdopen(to_child[1], "w");
    out_ = fdopen(from_child[0], "r");
    const std::string first = ReadLine();
    if (first.rfind("ready", 0) != 0) return false;
    banner_ = first.size() > 6 ? first.substr(6) : "";
    return true;
  }
  // The milliseconds of one inference, or -1.
  double Run() {
    if (!in_) return -1;
    std::fputs("run\n", in_);
    std::fflush(in_);
    const std::string line = ReadLine();
    return line.empty() ? -1 : std::atof(line.c_str());
  }
  const std::string& banner() const { return banner_; }
  ~Peer() {
    if (in_) std::fclose(in_);
    if (out_) std::fclose(out_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }

 private:
  std::string ReadLine() {
    char buf[256];
    if (!out_ || !std::fgets(buf, sizeof buf, out_)) return "";
    std::string s(buf);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
  }
  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
  std::string banner_;
};

// The graph's structure for bench/pytorch_int8.py (no weights: latency does
// not depend on them).
void WriteGraphJson(const segqat::exports::DeployGraph& g, const fs::path& path) {
  std::ofstream f(path);
  auto names = [](const std::vector<std::string>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ",\"" : "\"") + v[i] + "\"";
    return s + "]";
  };
  f << "{\"input\":\"" << g.input << "\",\"output\":\"" << g.output << "\",\"nodes\":[";
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const auto& n = g.nodes[i];
    f << (i ? ",\n" : "\n") << "{\"kind\":\"" << segqat::exports::OpKindName(n.kind)
      << "\",\"name\":\"" << n.name << "\",\"inputs\":" << names(n.inputs) << ",\"output\":\""
      << n.output << "\"";
    if (n.kind == segqat::exports::OpKind::kConv) {
      const auto& c = n.conv;
      f << ",\"in\":" << c.weight.size(1) * c.groups << ",\"out\":" << c.weight.size(0)
        << ",\"kernel\":" << c.weight.size(2) << ",\"stride\":" << c.stride
        << ",\"padding\":" << c.padding << ",\"dilation\":" << c.dilation
        << ",\"groups\":" << c.groups << ",\"act\":\""
        << (c.act == segqat::exports::Act::kNone ? "none" : "relu") << "\"";
    }
    f << "}";
  }
  f << "]}\n";
}

// The Python that runs the peers: $SEGQAT_PYTHON, else the project's .venv
// (scripts/install-python.sh).
std::string PeerPython(const fs::path& src) {
  const char* env = std::getenv("SEGQAT_PYTHON");
  if (env != nullptr && *env != '\0') return env;
  return (src / ".venv/bin/python").string();
}

// Writes x where tests/export/ort/run_onnx.py reads its inputs.
void WriteOrtInput(const at::Tensor& x, const fs::path& in) {
  fs::create_directories(in);
  at::Tensor c = x.contiguous();
  std::ofstream(in / "x.f32", std::ios::binary)
      .write(static_cast<const char*>(c.data_ptr()), c.numel() * 4);
  std::ofstream(in / "x.json") << "{\"shape\": [1, 3, " << x.size(2) << ", " << x.size(3) << "]}";
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5, threads = at::get_num_threads();
  int64_t height = 512, width = 1024;
  bool profile = false, all = false, peers = true;
  std::string torch_qconfig = "x86";
  for (int i = 1; i < argc; ++i) {
    profile = profile || !std::strcmp(argv[i], "--profile");
    all = all || !std::strcmp(argv[i], "--all");
    peers = peers && std::strcmp(argv[i], "--no-peers") != 0;
    if (i + 1 >= argc) continue;
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--height")) height = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--width")) width = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--torch-qconfig")) torch_qconfig = argv[i + 1];
  }
  at::set_num_threads(threads);
  segqat::infer::RetainFreedMemory();
  auto cfg = Config::Load(
      std::string(SEGQAT_SOURCE_DIR) + "/configs/deeplabv3p_mobilenetv2_cityscapes.yaml", {});
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", std::string(cfg.status().message()).c_str());
    return 1;
  }
  at::manual_seed(0);
  namespace m = segqat::models;
  using segqat::infer::X86Int8Rule;
  m::DeepLabV3Plus float_model(m::DeepLabOptions::FromConfig(*cfg));
  float_model->eval();
  Config cfg7 = *cfg;
  if (!cfg7.SetFromString("SLIM.activation_bits", "7").ok()) return 1;
  auto graph = QatGraph(*cfg);
  auto graph7 = QatGraph(cfg7);
  auto float_graph = Graph(*float_model, *cfg);
  const bool vnni = segqat::infer::CpuHasVnni();
  // name, engine, its quantized engine ("" for float)
  struct Entry {
    std::string name, qengine;
    std::unique_ptr<segqat::infer::Engine> engine;
  };
  std::vector<Entry> engines;
  engines.push_back(
      {"float", "", *segqat::infer::Engine::Create(float_graph, segqat::infer::Precision::kFloat)});
  // The default engine: every quantized conv on its codes in float, the
  // simulation's arithmetic (converted == simulated, code for code).
  for (const auto* g : {&graph, &graph7}) {
    auto e = segqat::infer::Engine::Create(*g, segqat::infer::Precision::kInt8);
    if (!e.ok()) continue;
    engines.push_back(
        {std::string("INT8 exact") + (g == &graph7 ? " a7" : " a8"), "", *std::move(e)});
  }
  // LibTorch's integer kernels (EngineOptions::integer_kernels), faster
  // where they run, requantizing with their own arithmetic.
  for (const char* qengine : {"onednn", "qnnpack"}) {
    if (!all && std::string(qengine) == "qnnpack") continue;  // 5-8x slower than float on x86
    setenv("SEGQAT_QENGINE", qengine, 1);
    for (const auto* g : {&graph, &graph7}) {
      for (auto rule : {X86Int8Rule::kDetect, X86Int8Rule::kNoVnni}) {
        if (rule == X86Int8Rule::kNoVnni && (!vnni || !all || std::string(qengine) == "qnnpack")) {
          continue;
        }
        segqat::infer::EngineOptions options;
        options.x86_rule = rule;
        options.integer_kernels = true;
        auto e = segqat::infer::Engine::Create(*g, segqat::infer::Precision::kInt8, options);
        if (!e.ok() || (*e)->qengine() != qengine) continue;
        engines.push_back(
            {"INT8 " + std::string(qengine) + (g == &graph7 ? " a7 " : " a8 ") + (*e)->int8_rule(),
             qengine, *std::move(e)});
      }
    }
  }
  unsetenv("SEGQAT_QENGINE");
  at::Tensor x = at::randn({1, 3, height, width});

  // The peers: PyTorch's eager INT8 of the same network, ONNX Runtime on
  // the float and QDQ model.onnx.
  const fs::path dir = fs::temp_directory_path() / ("segqat_bench_" + std::to_string(getpid()));
  fs::create_directories(dir);
  struct PeerEntry {
    std::string name;
    std::unique_ptr<Peer> peer;
  };
  std::vector<PeerEntry> others;
  const fs::path src(SEGQAT_SOURCE_DIR);
  const std::string python = PeerPython(src);
  if (peers && !fs::exists(python)) {
    std::printf("  (peers not run: %s missing; scripts/install-python.sh makes it)\n",
                python.c_str());
    peers = false;
  }
  if (peers) {
    WriteGraphJson(graph, dir / "graph.json");
    auto torch_peer = std::make_unique<Peer>();
    // PyTorch 2.x's default x86 engine and qconfig unless --torch-qconfig names another.
    const std::string qconfig = torch_qconfig;
    if (torch_peer->Start(std::string(kPeerMalloc) + python + " " +
                          (src / "bench/pytorch_int8.py").string() + " " +
                          (dir / "graph.json").string() + " --height " + std::to_string(height) +
                          " --width " + std::to_string(width) + " --threads " +
                          std::to_string(threads) + " --qconfig " + qconfig)) {
      others.push_back({"PyTorch int8", std::move(torch_peer)});
    } else {
      std::printf("  (PyTorch int8 not run: %s has no torch)\n", python.c_str());
    }
    const fs::path ort_script = src / "tests/export/ort/run_onnx.py";
    {
      WriteOrtInput(x, dir / "in");
      struct OrtModel {
        std::string name;
        const segqat::exports::DeployGraph* graph;
        bool int8_weights;               // FREEZE.ONNX_INT8_WEIGHTS
        segqat::exports::OnnxForm form;  // FREEZE.ONNX_FORM
      };
      using segqat::exports::OnnxForm;
      for (const auto& [name, g, int8_weights, form] :
           std::vector<OrtModel>{{"ORT float", &float_graph, false, OnnxForm::kQdq},
                                 {"ORT QDQ a8", &graph, false, OnnxForm::kQdq},
                                 {"ORT QDQ a8 int8 weights", &graph, true, OnnxForm::kQdq},
                                 {"ORT QDQ a7", &graph7, false, OnnxForm::kQdq},
                                 {"ORT exact a8", &graph, false, OnnxForm::kExact}}) {
        std::string file = name.substr(4);
        std::replace(file.begin(), file.end(), ' ', '_');
        file = (dir / (file + ".onnx")).string();
        segqat::exports::OnnxOptions options;
        options.int8_weights_everywhere = int8_weights;
        options.form = form;
        if (!segqat::exports::WriteOnnx(*g, file, options).ok()) continue;
        auto p = std::make_unique<Peer>();
        if (p->Start(std::string(kPeerMalloc) + python + " " + ort_script.string() + " " + file +
                     " " + (dir / "in").string() + " " + (dir / "out").string() + " --threads " +
                     std::to_string(threads) + " --serve")) {
          others.push_back({name, std::move(p)});
        } else {
          std::printf("  (%s not run: %s has no onnxruntime)\n", name.c_str(), python.c_str());
        }
      }
    }
  }

  std::vector<std::vector<double>> times(engines.size()), peer_times(others.size());
  for (auto& e : engines) (void)e.engine->Run(x);  // warm up
  for (auto& o : others) (void)o.peer->Run();
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < engines.size(); ++i) {
      // The quantized engine is process-wide: pick this engine's again.
      if (!engines[i].qengine.empty()) {
        at::globalContext().setQEngine(engines[i].qengine == "onednn" ? at::QEngine::ONEDNN
                                                                      : at::QEngine::QNNPACK);
      }
      Settle();
      auto t0 = std::chrono::steady_clock::now();
      (void)engines[i].engine->Run(x);
      times[i].push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    for (size_t i = 0; i < others.size(); ++i) {
      Settle();
      peer_times[i].push_back(others[i].peer->Run());
    }
  }
  std::printf("1x3x%lldx%lld, %d threads, %d rounds interleaved, median ms; CPU %s VNNI\n",
              static_cast<long long>(height), static_cast<long long>(width), threads, rounds,
              vnni ? "with" : "without");
  const double base = Median(times[0]);
  for (size_t i = 0; i < engines.size(); ++i) {
    std::printf("  segqat %-22s %8.1f ms  %5.2fx vs float  (%d integer convs, %d int8 sums)\n",
                engines[i].name.c_str(), Median(times[i]), base / Median(times[i]),
                engines[i].engine->integer_convs(), engines[i].engine->integer_sum_convs());
  }
  double ort_float = -1, torch_int8 = -1;
  for (size_t i = 0; i < others.size(); ++i) {
    const double t = Median(peer_times[i]);
    if (t <= 0) continue;
    if (others[i].name == "ORT float") ort_float = t;
    if (others[i].name == "PyTorch int8") torch_int8 = t;
    const bool ort = others[i].name.rfind("ORT", 0) == 0;
    const double ref = ort && others[i].name != "ORT float" ? ort_float : base;
    std::printf("  %-29s %8.1f ms  %5.2fx vs %s  %s\n", others[i].name.c_str(), t,
                ref > 0 ? ref / t : 0.0, ref == base ? "float" : "ORT float",
                others[i].peer->banner().c_str());
  }
  if (torch_int8 > 0) {
    for (size_t i = 1; i < engines.size(); ++i) {
      std::printf("  segqat %-22s %5.2fx vs PyTorch int8\n", engines[i].name.c_str(),
                  torch_int8 / Median(times[i]));
    }
  }
  others.clear();
  std::error_code ec;
  if (!std::getenv("SEGQAT_BENCH_KEEP")) fs::remove_all(dir, ec);
  if (profile) {
    for (auto& e : engines) {
      e.engine->set_profile(true);
      if (!e.qengine.empty()) {
        at::globalContext().setQEngine(e.qengine == "onednn" ? at::QEngine::ONEDNN
                                                             : at::QEngine::QNNPACK);
      }
      for (int r = 0; r < rounds; ++r) (void)e.engine->Run(x);
      const auto& nodes = e.engine->graph().nodes;
      const auto& ms = e.engine->node_ms();
      std::vector<size_t> order(ms.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ms[a] > ms[b]; });
      double total = 0;
      for (double t : ms) total += t / rounds;
      std::map<std::string, double> by_kind;
      for (size_t i = 0; i < ms.size(); ++i) {
        by_kind[segqat::exports::OpKindName(nodes[i].kind)] += ms[i] / rounds;
      }
      std::string kinds;
      for (const auto& [kind, t] : by_kind)
        kinds += " " + kind + " " + std::to_string(t).substr(0, 5);
      std::printf("profile %s: %.1f ms in nodes (by kind:%s); slowest:\n", e.name.c_str(), total,
                  kinds.c_str());
      for (size_t k = 0; k < std::min<size_t>(12, order.size()); ++k) {
        const auto& n = nodes[order[k]];
        std::printf("  %6.2f ms  %-10s %s\n", ms[order[k]] / rounds,
                    segqat::exports::OpKindName(n.kind), n.name.c_str());
      }
    }
  }
  return 0;
}
