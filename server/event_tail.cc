#include "server/event_tail.h"

#include <algorithm>

namespace segqat::server {

EventTail::EventTail(size_t events_per_job, size_t jobs)
    : events_per_job_(std::max<size_t>(1, events_per_job)), jobs_(std::max<size_t>(1, jobs)) {}

void EventTail::Add(const std::string& job_id, const v1::JobEvent& event) {
  auto it = runs_.find(job_id);
  if (it == runs_.end()) {
    if (runs_.size() >= jobs_) {
      auto oldest = std::min_element(runs_.begin(), runs_.end(), [](const auto& a, const auto& b) {
        return a.second.touched < b.second.touched;
      });
      runs_.erase(oldest);
    }
    it = runs_.emplace(job_id, Run()).first;
  }
  Run& run = it->second;
  // A gap (events added while this job was evicted) restarts the run.
  if (!run.events.empty() && run.events.back().seq() + 1 != event.seq()) run.events.clear();
  run.events.push_back(event);
  if (run.events.size() > events_per_job_) run.events.pop_front();
  run.touched = ++clock_;
}

bool EventTail::Read(const std::string& job_id, int64_t after_seq, int limit,
                     std::vector<v1::JobEvent>* out) const {
  auto it = runs_.find(job_id);
  if (it == runs_.end() || it->second.events.empty()) return false;
  const auto& events = it->second.events;
  if (after_seq + 1 < events.front().seq()) return false;
  for (const v1::JobEvent& e : events) {
    if (static_cast<int>(out->size()) >= limit) break;
    if (e.seq() > after_seq) out->push_back(e);
  }
  return true;
}

}  // namespace segqat::server
