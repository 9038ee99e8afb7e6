#include "server/watch_reactor.h"

#include "common/grpc_status.h"
#include "common/job_name.h"
#include "server/job_service.h"
#include "server/job_state.h"

namespace segqat::server {

WatchReactor::WatchReactor(JobStore* store, EventBus* bus, const v1::WatchJobRequest& request,
                           std::function<void(const grpc::Status&)> record,
                           std::shared_ptr<void> slot)
    : slot_(std::move(slot)),
      store_(store),
      bus_(bus),
      record_(std::move(record)),
      last_seq_(std::max<int64_t>(0, request.after_seq())) {
  auto id = ParseJobName(request.name());
  absl::Status st = id.status();
  if (id.ok()) st = store_->Get(*id).status();
  if (!st.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    FinishOnce(ToGrpc(st));
    return;
  }
  job_id_ = *id;
  guard_ = std::make_shared<Guard>();
  guard_->reactor = this;
  std::shared_ptr<Guard> guard = guard_;
  token_ = bus_->Subscribe(job_id_, [guard] {
    std::lock_guard<std::mutex> g(guard->mu);
    if (guard->reactor == nullptr) return;
    std::lock_guard<std::mutex> lock(guard->reactor->mu_);
    guard->reactor->Pump();
  });
  std::lock_guard<std::mutex> lock(mu_);
  Pump();
}

void WatchReactor::Pump() {
  if (finished_ || writing_) return;
  if (pending_.empty()) {
    if (saw_final_) return FinishOnce(grpc::Status::OK);
    auto events = store_->ReadEvents(job_id_, last_seq_, 256);
    if (!events.ok()) return FinishOnce(ToGrpc(events.status()));
    if (events->empty()) {
      // Nothing new: the job may have ended before this watcher attached
      // after its last event. A final state is committed together with its
      // event, so a final job has nothing more to send.
      auto job = store_->Get(job_id_);
      if (!job.ok()) return FinishOnce(ToGrpc(job.status()));
      if (!IsFinal(job->state())) return;  // wait for the bus
      events = store_->ReadEvents(job_id_, last_seq_, 256);
      if (!events.ok()) return FinishOnce(ToGrpc(events.status()));
      if (events->empty()) return FinishOnce(grpc::Status::OK);
    }
    for (auto& e : *events) {
      last_seq_ = e.seq();
      if (e.has_state() && IsFinal(e.state().state())) saw_final_ = true;
      pending_.push_back(std::move(e));
    }
  }
  current_ = std::move(pending_.front());
  pending_.pop_front();
  writing_ = true;
  StartWrite(&current_);
}

void WatchReactor::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
  if (!ok) return FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "stream broken"));
  Pump();
}

void WatchReactor::OnCancel() {
  std::lock_guard<std::mutex> lock(mu_);
  FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled"));
}

void WatchReactor::FinishOnce(const grpc::Status& status) {
  if (finished_) return;
  finished_ = true;
  if (record_) record_(status);
  Finish(status);
}

void WatchReactor::OnDone() {
  if (token_ != 0) bus_->Unsubscribe(job_id_, token_);
  if (guard_) {
    std::lock_guard<std::mutex> g(guard_->mu);
    guard_->reactor = nullptr;
  }
  delete this;
}

}  // namespace segqat::server
