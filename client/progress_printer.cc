#include "client/progress_printer.h"

#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <iostream>
#include <string>

namespace segqat::client {
namespace {

std::string Clock(double seconds) {
  const long long s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  return buf;
}

}  // namespace

void ProgressPrinter::Done() {
  if (open_line_) std::cerr << "\n";
  open_line_ = false;
}

void ProgressPrinter::Print(const v1::JobEvent& e) {
  if (json_) {
    std::string out;
    (void)google::protobuf::util::MessageToJsonString(e, &out);
    std::cout << out << std::endl;
    return;
  }
  if (logs_only_) {
    // The job's log as PaddleSeg prints it: steps, evaluations, messages.
    if (e.has_log()) std::cout << e.log().text() << std::endl;
    if (e.has_step()) {
      const auto& s = e.step();
      std::printf("epoch=%lld step=%lld lr=%.5f loss=%.4f | ETA %s\n",
                  static_cast<long long>(s.epoch()), static_cast<long long>(s.step()),
                  s.learning_rate(), s.loss(), Clock(s.eta_seconds()).c_str());
      std::fflush(stdout);
    }
    if (e.has_evaluation()) {
      const auto& v = e.evaluation();
      std::printf("[EVAL] epoch=%lld #image=%lld acc=%.4f IoU=%.4f kappa=%.4f\n",
                  static_cast<long long>(v.epoch()), static_cast<long long>(v.images()), v.acc(),
                  v.miou(), v.kappa());
      std::fflush(stdout);
    }
    if (e.has_state()) {
      std::printf("state %s%s\n", v1::JobState_Name(e.state().state()).c_str(),
                  e.state().reason().empty() ? "" : (": " + e.state().reason()).c_str());
      std::fflush(stdout);
    }
    return;
  }
  char line[256];
  if (e.has_step()) {
    const auto& s = e.step();
    const int width = 20;
    const int filled =
        s.total_steps() > 0 ? static_cast<int>(width * s.step() / s.total_steps()) : 0;
    std::string bar(filled, '#');
    bar.resize(width, '-');
    std::snprintf(line, sizeof(line),
                  "epoch %lld [%s] step %lld/%lld loss %.4f lr %.5f %.1f img/s mIoU %s ETA %s",
                  static_cast<long long>(s.epoch()), bar.c_str(), static_cast<long long>(s.step()),
                  static_cast<long long>(s.total_steps()), s.loss(), s.learning_rate(),
                  s.images_per_second(),
                  best_miou_ >= 0 ? std::to_string(best_miou_).substr(0, 6).c_str() : "-",
                  Clock(s.eta_seconds()).c_str());
    if (terminal_) {
      std::cerr << "\r" << line << "\033[K" << std::flush;
      open_line_ = true;
    } else {
      std::cerr << line << "\n";
    }
    return;
  }
  Done();
  if (e.has_evaluation()) {
    const auto& v = e.evaluation();
    best_miou_ = std::max(best_miou_, v.miou());
    std::snprintf(line, sizeof(line), "[EVAL] epoch %lld #image=%lld acc=%.4f mIoU=%.4f kappa=%.4f",
                  static_cast<long long>(v.epoch()), static_cast<long long>(v.images()), v.acc(),
                  v.miou(), v.kappa());
    std::cerr << line << "\n";
  } else if (e.has_state()) {
    std::cerr << "state " << v1::JobState_Name(e.state().state())
              << (e.state().reason().empty() ? "" : ": " + e.state().reason()) << "\n";
  } else if (e.has_log()) {
    std::cerr << e.log().text() << "\n";
  } else if (e.has_artifact()) {
    std::cerr << "artifact " << e.artifact().name() << " (" << e.artifact().size_bytes()
              << " bytes)\n";
  }
}

}  // namespace segqat::client
