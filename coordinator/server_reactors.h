// The coordinator's gRPC stream reactors (callback API): an agent's session,
// watches of a job or sweep, and streams refused before they start. Used by
// server.cc alone; apart so that file keeps to wiring the services.
//
// Threads: gRPC's callback threads run the reactors' On* methods; Send,
// Close and Update are called from the coordinator's loop; each class
// guards what both touch with its own mutex.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "coordinator/core.h"
#include "coordinator/job_state.h"
#include "coordinator/principal.h"
#include "gangway/v1/gangway.grpc.pb.h"

namespace gangway::coordinator::internal {

// One agent's stream. Reads post into the loop; writes come from the loop and
// are queued here because gRPC allows one write in flight per stream.
//
// The queue is bounded: an agent that heartbeats but stops reading (its own
// inbound queue full behind a slow loop) would otherwise grow the
// coordinator by every launch, stop and ack meant for it. When more than
// `max_queued_bytes` would wait and no write has completed for `stall`, the
// session ends with RESOURCE_EXHAUSTED and the loop forgets it at once; the
// agent reconnects, and registering again reconciles what the dropped
// messages carried (launches resent, stops repeated, unacknowledged metrics
// resent). The stall matters: the burst of launches that a registration
// sends may well exceed the bound, and an agent that reads it must keep its
// session.
class SessionReactor : public grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage> {
 public:
  using Post = std::function<void(std::function<void(Core&)>)>;

  using Audit = std::function<void(const std::string& node, const absl::Status& outcome)>;

  // `who` is the caller as the edge identified it: a node certificate
  // limits the session to the names it carries.
  // `on_closed` tells the loop the session is gone; it may run twice (at
  // an overflow, then when gRPC is done with the stream).
  SessionReactor(int64_t id, Principal who, Post post, Audit audit,
                 std::function<void(int64_t)> on_closed, int64_t max_queued_bytes,
                 std::chrono::milliseconds stall)
      : id_(id),
        who_(std::move(who)),
        post_(std::move(post)),
        audit_(std::move(audit)),
        on_closed_(std::move(on_closed)),
        max_queued_bytes_(max_queued_bytes),
        stall_(stall) {}

  void Begin(std::shared_ptr<SessionReactor> self) {
    self_ = std::move(self);
    StartRead(&in_);
  }

  void Send(const v1::CoordinatorMessage& msg) {
    std::lock_guard lock(mu_);
    if (finishing_) return;
    const int64_t size = static_cast<int64_t>(msg.ByteSizeLong());
    const auto now = std::chrono::steady_clock::now();
    if (writing_ && queued_bytes_ + size > max_queued_bytes_ && now - progress_ >= stall_) {
      OverflowLocked(size, now);
      return;
    }
    queued_bytes_ += size;
    queue_.push_back(msg);
    if (!writing_) {
      writing_ = true;
      progress_ = now;
      StartWrite(&queue_.front());
    }
  }

  void Close(const absl::Status& why) {
    std::lock_guard lock(mu_);
    if (finishing_) return;
    finishing_ = true;
    finish_status_ = common::ToGrpc(why);
    if (!writing_) {
      finished_ = true;
      Finish(finish_status_);
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Close(absl::OkStatus());
      return;
    }
    if (overflowed_.load()) return;  // the loop has forgotten this session
    v1::AgentMessage msg = std::move(in_);
    in_.Clear();
    if (!registered_) {
      if (msg.msg_case() != v1::AgentMessage::kRegister) {
        Close(absl::InvalidArgumentError("the first message of a session must be register"));
        return;
      }
      registered_ = true;
      {
        std::lock_guard lock(mu_);
        node_ = msg.register_().node_name();
      }
      if (absl::Status s = CheckName(msg.register_().node_name()); !s.ok()) {
        audit_(msg.register_().node_name(), s);
        Close(s);
        return;
      }
      std::shared_ptr<SessionReactor> self = self_;
      post_([self, reg = std::move(*msg.mutable_register_())](Core& core) {
        absl::StatusOr<v1::RegisterAck> ack = core.OnRegister(self->id_, reg);
        self->audit_(reg.node_name(), ack.status());
        if (!ack.ok()) {
          self->Close(ack.status());
          return;
        }
        v1::CoordinatorMessage out;
        *out.mutable_register_ack() = *ack;
        self->Send(out);
      });
    } else {
      const int64_t id = id_;
      post_([id, msg = std::move(msg)](Core& core) { core.OnAgentMessage(id, msg); });
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    queued_bytes_ -= static_cast<int64_t>(queue_.front().ByteSizeLong());
    queue_.pop_front();
    progress_ = std::chrono::steady_clock::now();
    if (ok && !queue_.empty() && !finishing_) {
      StartWrite(&queue_.front());
      return;
    }
    writing_ = false;
    if (!ok && !finishing_) {
      finishing_ = true;
      finish_status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed");
    }
    if (finishing_ && !finished_) {
      finished_ = true;
      Finish(finish_status_);
    }
  }

  void OnDone() override {
    on_closed_(id_);
    self_.reset();  // posted work may still hold the object; it dies with the last
  }

 private:
  // Drops what waits behind the write in flight and finishes now rather than
  // after that write: a peer that does not read may never complete it. The
  // status follows the message in flight, so an agent that reads again
  // learns why.
  void OverflowLocked(int64_t size, std::chrono::steady_clock::time_point now) {
    const std::string why = absl::StrCat(
        "node '", node_, "' has read nothing for ",
        std::chrono::duration_cast<std::chrono::milliseconds>(now - progress_).count() / 1000.0,
        " s while ", queued_bytes_ + size, " bytes would wait for it (limit ", max_queued_bytes_,
        ", --session-queue-max-bytes); reconnect to reconcile");
    GW_LOG_WARN("{}", why);
    while (queue_.size() > 1) {
      queued_bytes_ -= static_cast<int64_t>(queue_.back().ByteSizeLong());
      queue_.pop_back();
    }
    finishing_ = true;
    finished_ = true;
    overflowed_.store(true);
    finish_status_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, why);
    Finish(finish_status_);
    on_closed_(id_);
  }

  // Kubernetes' node authorizer in small: a node certificate registers only
  // the node it names, so one stolen key cannot impersonate the fleet.
  absl::Status CheckName(const std::string& name) const {
    if (who_.kind != Principal::Kind::kNode || name == who_.name) return absl::OkStatus();
    for (const std::string& alias : who_.aliases) {
      if (name == alias) return absl::OkStatus();
    }
    return absl::PermissionDeniedError(absl::StrCat("this certificate names node '", who_.name,
                                                    "'; it cannot register as '", name, "'"));
  }

  const int64_t id_;
  const Principal who_;
  Post post_;
  Audit audit_;
  std::function<void(int64_t)> on_closed_;
  const int64_t max_queued_bytes_;
  const std::chrono::milliseconds stall_;
  std::shared_ptr<SessionReactor> self_;
  v1::AgentMessage in_;
  bool registered_ = false;  // reader side only
  std::atomic<bool> overflowed_{false};
  std::mutex mu_;
  std::string node_;  // as registered
  std::deque<v1::CoordinatorMessage> queue_;
  int64_t queued_bytes_ = 0;
  // The last write started on an empty queue or completed.
  std::chrono::steady_clock::time_point progress_;
  bool writing_ = false;
  bool finishing_ = false;
  bool finished_ = false;  // Finish called: gRPC aborts on a second
  grpc::Status finish_status_;
};

// Streams refused before they start: finished at once, deleted by gRPC's
// OnDone (callback reactors that gRPC does not own delete themselves).
template <typename Msg>
class RefusedWriter final : public grpc::ServerWriteReactor<Msg> {
 public:
  explicit RefusedWriter(const absl::Status& why) { this->Finish(common::ToGrpc(why)); }
  void OnDone() override { delete this; }
};

class RefusedSession final
    : public grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage> {
 public:
  explicit RefusedSession(const absl::Status& why) { Finish(common::ToGrpc(why)); }
  void OnDone() override { delete this; }
};

bool Ended(const v1::Job& job) { return IsTerminal(job.state()); }
bool Ended(const v1::Sweep& sweep) { return sweep.state() != v1::SWEEP_STATE_RUNNING; }

// Writes a job (or sweep) whenever it changes; coalesces to the newest
// version while a write is in flight, and ends after the terminal state is
// written.
template <typename Msg>
class WatchReactor : public grpc::ServerWriteReactor<Msg> {
 public:
  explicit WatchReactor(std::function<void()> on_done) : on_done_(std::move(on_done)) {}

  void Begin(std::shared_ptr<WatchReactor> self) { self_ = std::move(self); }

  void Update(const Msg& job) {
    std::lock_guard lock(mu_);
    if (done_writing_) return;
    if (writing_) {
      next_ = job;
      return;
    }
    StartLocked(job);
  }

  void Fail(const absl::Status& s) {
    std::lock_guard lock(mu_);
    if (done_writing_) return;
    done_writing_ = true;
    this->Finish(common::ToGrpc(s));
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    // Already finished (a cancel came while this write was in flight): a
    // second Finish aborts the process in gRPC (callback_common.h
    // "call_ == nullptr").
    if (done_writing_) return;
    if (!ok) {
      done_writing_ = true;
      this->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      return;
    }
    if (next_) {
      Msg job = std::move(*next_);
      next_.reset();
      StartLocked(job);
    } else if (Ended(current_)) {
      done_writing_ = true;
      this->Finish(grpc::Status::OK);
    }
  }

  void OnCancel() override { Fail(absl::CancelledError("watch cancelled")); }

  void OnDone() override {
    on_done_();
    self_.reset();
  }

 private:
  void StartLocked(const Msg& job) {
    current_ = job;
    writing_ = true;
    this->StartWrite(&current_);
  }

  std::function<void()> on_done_;
  std::shared_ptr<WatchReactor> self_;
  std::mutex mu_;
  Msg current_;
  std::optional<Msg> next_;
  bool writing_ = false;
  bool done_writing_ = false;
};

}  // namespace gangway::coordinator::internal
