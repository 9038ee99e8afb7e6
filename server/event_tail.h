// EventTail: the newest events of recently active jobs, kept in memory so
// that many watchers following a job read its new events without each
// querying SQLite. JobStore feeds it every event right after committing it
// and asks it first in ReadEvents; it answers only when it holds every
// event after the asked seq, so an answer is the same as the database's.
// Thread-compatible: JobStore calls it under its own mutex.
#ifndef SEGQAT_SERVER_EVENT_TAIL_H_
#define SEGQAT_SERVER_EVENT_TAIL_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "segqat/v1/jobs.pb.h"

namespace segqat::server {

class EventTail {
 public:
  explicit EventTail(size_t events_per_job = 512, size_t jobs = 256);

  // `event` was just committed as the job's newest event.
  void Add(const std::string& job_id, const v1::JobEvent& event);
  // Events with seq > after_seq, at most `limit`, into *out; false (and *out
  // untouched) when the tail does not hold all of them.
  bool Read(const std::string& job_id, int64_t after_seq, int limit,
            std::vector<v1::JobEvent>* out) const;

 private:
  struct Run {
    std::deque<v1::JobEvent> events;  // contiguous seqs
    uint64_t touched = 0;
  };
  size_t events_per_job_, jobs_;
  uint64_t clock_ = 0;
  std::map<std::string, Run> runs_;
};

}  // namespace segqat::server

#endif  // SEGQAT_SERVER_EVENT_TAIL_H_
