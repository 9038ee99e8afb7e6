// `segqat report JOB... -o DIR`: a folder a user can open as a page, built
// from what segqatd stored for the jobs (events, metrics.json,
// sensitivity.json, model files):
//   report.md          the models' mIoU, acc, kappa, size and INT8/float
//                      latency in one table; IoU per class; the sensitivity
//                      scans; the jobs it came from
//   curves.png         loss and val mIoU over global steps (training jobs)
//   class_iou.png      IoU per class, one bar per model
//   sensitivity_ID.png each scan's worst layers
//   report_data.json   the numbers behind the plots
//   jobs/ID/...        the metrics.json / sensitivity.json files used
// The plots are drawn by matplotlib (client/plot_report.py, embedded).
#ifndef SEGQAT_CLIENT_REPORT_H_
#define SEGQAT_CLIENT_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/client.h"

namespace segqat::client {

struct ReportOptions {
  std::vector<std::string> jobs;  // "jobs/ID" (or "ID")
  std::string out_dir;
  std::string python;  // the interpreter with matplotlib; empty: $SEGQAT_PYTHON, /usr/bin/python3
};

// NotFound naming an unknown job; FailedPrecondition naming a job that has
// no metrics yet (or is of a kind a report cannot show). Nothing is
// written to out_dir before every job has been read.
absl::Status WriteReport(Client& client, const ReportOptions& options);

}  // namespace segqat::client

#endif  // SEGQAT_CLIENT_REPORT_H_
