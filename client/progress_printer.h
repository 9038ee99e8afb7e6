// Shows a job's events to a person (a progress line with epoch, step, loss,
// mIoU and ETA, redrawn in place on a terminal) or to a program (one JSON
// object per event). With logs_only, prints just the log lines.
#ifndef SEGQAT_CLIENT_PROGRESS_PRINTER_H_
#define SEGQAT_CLIENT_PROGRESS_PRINTER_H_

#include "segqat/v1/jobs.pb.h"

namespace segqat::client {

class ProgressPrinter {
 public:
  ProgressPrinter(bool json, bool logs_only, bool terminal)
      : json_(json), logs_only_(logs_only), terminal_(terminal) {}
  void Print(const v1::JobEvent& event);
  // Ends a progress line left open on the terminal.
  void Done();

 private:
  bool json_, logs_only_, terminal_;
  bool open_line_ = false;
  double best_miou_ = -1;
};

}  // namespace segqat::client

#endif  // SEGQAT_CLIENT_PROGRESS_PRINTER_H_
