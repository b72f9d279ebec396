#include "coordinator/server.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/metric_limits.h"
#include "common/tls.h"
#include "coordinator/audit.h"
#include "coordinator/auth.h"
#include "coordinator/job_state.h"
#include "coordinator/job_tokens.h"
#include "coordinator/rendezvous.h"
#include "coordinator/rendezvous_service.h"
#include "coordinator/server_reactors.h"
#include "coordinator/sqlite_store.h"
#include "coordinator/studies.h"
#include "coordinator/telemetry.h"
#include "gangway/v1/gangway.grpc.pb.h"

namespace gangway::coordinator {
namespace asio = boost::asio;

namespace {

using internal::RefusedSession;
using internal::RefusedWriter;
using internal::SessionReactor;
using internal::WatchReactor;

constexpr int64_t kLogChunkBytes = 64 * 1024;
constexpr int kMaxPushedPoints = 10'000;
constexpr auto kLogFollowPoll = std::chrono::milliseconds(200);

}  // namespace

struct CoordinatorServer::Impl final : public AgentSink,
                                       public v1::Control::CallbackService,
                                       public v1::Sweeps::CallbackService,
                                       public v1::Metrics::CallbackService,
                                       public v1::Studies::CallbackService,
                                       public v1::AgentSession::CallbackService {
  ServerOptions options;
  common::SystemClock clock;
  std::unique_ptr<JobTokens> job_tokens;
  std::unique_ptr<Authenticator> auth;
  std::unique_ptr<AuditLog> audit;
  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<CoordinatorTelemetry> telemetry;  // with metrics_listen
  std::unique_ptr<TimedStore> timed_store;          // the store, timed into telemetry
  std::unique_ptr<Core> core;
  asio::io_context io;
  Rendezvous rendezvous;  // loop thread
  std::unique_ptr<RendezvousService> rendezvous_service;
  Studies studies;  // loop thread
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  asio::steady_timer tick{io};
  std::thread loop;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  bool settle_posted = false;  // loop thread only
  std::atomic<int64_t> next_session{1};
  std::unordered_map<int64_t, std::shared_ptr<SessionReactor>> sessions;  // loop thread only
  std::once_flag shutdown_once;

  // ---- Loop ----------------------------------------------------------------
  void Post(std::function<void(Core&)> fn) {
    asio::post(io, [this, fn = std::move(fn)] {
      fn(*core);
      if (!settle_posted) {
        settle_posted = true;
        // Runs after every event already queued: one flush per batch.
        asio::post(io, [this] {
          settle_posted = false;
          core->Settle();
        });
      }
    });
  }

  void ScheduleTick() {
    tick.expires_after(std::chrono::milliseconds(options.tick_ms));
    tick.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      core->Tick();
      core->Settle();
      ScheduleTick();
    });
  }

  // ---- AgentSink (loop thread) ---------------------------------------------
  void Send(int64_t session, const v1::CoordinatorMessage& msg) override {
    auto it = sessions.find(session);
    if (it != sessions.end()) it->second->Send(msg);
  }
  void Close(int64_t session, const absl::Status& why) override {
    auto it = sessions.find(session);
    if (it != sessions.end()) it->second->Close(why);
  }

  // ---- AgentSession ----------------------------------------------------------
  grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage>* Session(
      grpc::CallbackServerContext* ctx) override {
    constexpr absl::string_view kMethod = "gangway.v1.AgentSession/Session";
    absl::StatusOr<Principal> who = Admit(*ctx, kMethod, "");
    if (!who.ok()) return new RefusedSession(who.status());
    const int64_t id = next_session++;
    auto reactor = std::make_shared<SessionReactor>(
        id, *who, [this](std::function<void(Core&)> fn) { Post(std::move(fn)); },
        [this, who = who->ToString(), kMethod](const std::string& node, const absl::Status& s) {
          audit->Record(who, kMethod, node, s);
        },
        [this](int64_t sid) {
          Post([this, sid](Core& c) {
            sessions.erase(sid);
            c.OnSessionClosed(sid);
          });
        },
        options.session_queue_max_bytes, std::chrono::milliseconds(options.core.node_timeout_ms));
    asio::post(io, [this, id, reactor] { sessions.emplace(id, reactor); });
    reactor->Begin(reactor);
    return reactor.get();
  }

  // ---- Control ---------------------------------------------------------------
  // ---- Authorization (any thread) -------------------------------------------
  // The caller, or the refusal; refusals are audited whatever the method.
  absl::StatusOr<Principal> Admit(const grpc::CallbackServerContext& ctx, absl::string_view method,
                                  absl::string_view target) {
    absl::StatusOr<Principal> who = auth->Admit(ctx, method);
    if (!who.ok()) audit->Record(ctx.peer(), method, target, who.status());
    return who;
  }
  // Records an audited method's outcome.
  void Audited(absl::string_view method, const Principal& who, absl::string_view target,
               const absl::Status& outcome) {
    if (const MethodRule* rule = FindRule(method); rule != nullptr && rule->audited) {
      audit->Record(who.ToString(), method, target, outcome);
    }
  }
  grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* ctx, const absl::Status& why) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(common::ToGrpc(why));
    return reactor;
  }

  grpc::ServerUnaryReactor* SubmitJob(grpc::CallbackServerContext* ctx,
                                      const v1::SubmitJobRequest* req, v1::Job* resp) override {
    constexpr absl::string_view kMethod = "gangway.v1.Control/SubmitJob";
    absl::StatusOr<Principal> who = Admit(*ctx, kMethod, "");
    if (!who.ok()) return Refuse(ctx, who.status());
    auto* reactor = ctx->DefaultReactor();
    Post([this, req, resp, reactor, who = *who, kMethod](Core& c) {
      c.Submit(
          *req,
          [this, resp, reactor, who, kMethod](absl::StatusOr<v1::Job> job) {
            Audited(kMethod, who, job.ok() ? job->id() : std::string(), job.status());
            if (job.ok()) *resp = std::move(*job);
            reactor->Finish(common::ToGrpc(job.status()));
          },
          who);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx, const v1::GetJobRequest* req,
                                   v1::Job* resp) override {
    return Answer(ctx, "gangway.v1.Control/GetJob", req->id(), resp,
                  [req](Core& c, const Principal&) { return c.GetJob(req->id()); });
  }

  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                      const v1::CancelJobRequest* req, v1::Job* resp) override {
    return AnswerStored(ctx, "gangway.v1.Control/CancelJob", req->id(), resp,
                        [req](Core& c, const Principal& who) { return c.Cancel(req->id(), who); });
  }

  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const v1::ListJobsRequest* req,
                                     v1::ListJobsResponse* resp) override {
    return Answer(ctx, "gangway.v1.Control/ListJobs", "", resp,
                  [req](Core& c, const Principal&) { return c.ListJobsPage(*req); });
  }

  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* ctx, const v1::ListNodesRequest*,
                                      v1::ListNodesResponse* resp) override {
    return Answer(ctx, "gangway.v1.Control/ListNodes", "", resp,
                  [](Core& c, const Principal&) -> absl::StatusOr<v1::ListNodesResponse> {
                    v1::ListNodesResponse out;
                    for (auto& node : c.ListNodes()) *out.add_nodes() = std::move(node);
                    return out;
                  });
  }

  // Admits the call, runs fn(core, caller) on the loop and answers with its
  // result; audited methods are logged with it.
  template <typename Resp, typename Fn>
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* ctx, absl::string_view method,
                                   const std::string& target, Resp* resp, Fn fn) {
    absl::StatusOr<Principal> who = Admit(*ctx, method, target);
    if (!who.ok()) return Refuse(ctx, who.status());
    auto* reactor = ctx->DefaultReactor();
    Post([this, method, target, who = *who, resp, reactor, fn = std::move(fn)](Core& c) {
      absl::StatusOr<Resp> r = fn(c, who);
      Audited(method, who, target, r.status());
      if (r.ok()) *resp = std::move(*r);
      reactor->Finish(common::ToGrpc(r.status()));
    });
    return reactor;
  }

  // As Answer, for a call that changes state: the answer waits for the
  // Settle() that writes the change, so what a client was told survives a
  // crash. When that write fails the change stays in memory and a later
  // Settle() writes it, but the caller hears UNAVAILABLE: not acknowledged.
  template <typename Resp, typename Fn>
  grpc::ServerUnaryReactor* AnswerStored(grpc::CallbackServerContext* ctx, absl::string_view method,
                                         const std::string& target, Resp* resp, Fn fn) {
    absl::StatusOr<Principal> who = Admit(*ctx, method, target);
    if (!who.ok()) return Refuse(ctx, who.status());
    auto* reactor = ctx->DefaultReactor();
    Post([this, method, target, who = *who, resp, reactor, fn = std::move(fn)](Core& c) {
      absl::StatusOr<Resp> r = fn(c, who);
      if (!r.ok()) {
        Audited(method, who, target, r.status());
        reactor->Finish(common::ToGrpc(r.status()));
        return;
      }
      c.AfterWrite([this, method, target, who, resp, reactor, done = std::move(*r)](bool stored) {
        const absl::Status s =
            stored ? absl::OkStatus()
                   : absl::UnavailableError(
                         "the store could not save the change (is its disk full?); it is kept "
                         "and written later, but check its state before repeating it");
        Audited(method, who, target, s);
        if (stored) *resp = done;
        reactor->Finish(common::ToGrpc(s));
      });
    });
    return reactor;
  }

  grpc::ServerWriteReactor<v1::Job>* WatchJob(grpc::CallbackServerContext* ctx,
                                              const v1::WatchJobRequest* req) override {
    if (auto who = Admit(*ctx, "gangway.v1.Control/WatchJob", req->id()); !who.ok()) {
      return new RefusedWriter<v1::Job>(who.status());
    }
    auto watch_id = std::make_shared<std::atomic<int64_t>>(0);
    auto reactor = std::make_shared<WatchReactor<v1::Job>>(
        [this, watch_id] { Post([watch_id](Core& c) { c.Unwatch(watch_id->load()); }); });
    reactor->Begin(reactor);
    std::weak_ptr<WatchReactor<v1::Job>> weak = reactor;
    Post([id = req->id(), weak, watch_id](Core& c) {
      auto r = weak.lock();
      if (!r) return;
      absl::StatusOr<int64_t> w = c.Watch(id, [weak](const v1::Job& job) {
        if (auto rr = weak.lock()) rr->Update(job);
      });
      if (!w.ok()) {
        r->Fail(w.status());
        return;
      }
      watch_id->store(*w);
    });
    return reactor.get();
  }

  // ---- Sweeps --------------------------------------------------------------
  grpc::ServerUnaryReactor* SubmitSweep(grpc::CallbackServerContext* ctx,
                                        const v1::SubmitSweepRequest* req,
                                        v1::Sweep* resp) override {
    constexpr absl::string_view kMethod = "gangway.v1.Sweeps/SubmitSweep";
    absl::StatusOr<Principal> who = Admit(*ctx, kMethod, "");
    if (!who.ok()) return Refuse(ctx, who.status());
    auto* reactor = ctx->DefaultReactor();
    Post([this, req, resp, reactor, who = *who, kMethod](Core& c) {
      c.SubmitSweep(
          *req,
          [this, resp, reactor, who, kMethod](absl::StatusOr<v1::Sweep> sweep) {
            Audited(kMethod, who, sweep.ok() ? sweep->id() : "", sweep.status());
            if (sweep.ok()) *resp = std::move(*sweep);
            reactor->Finish(common::ToGrpc(sweep.status()));
          },
          who);
    });
    return reactor;
  }
  grpc::ServerUnaryReactor* GetSweep(grpc::CallbackServerContext* ctx,
                                     const v1::GetSweepRequest* req, v1::Sweep* resp) override {
    return Answer(ctx, "gangway.v1.Sweeps/GetSweep", req->id(), resp,
                  [req](Core& c, const Principal&) { return c.GetSweep(req->id()); });
  }
  grpc::ServerUnaryReactor* ListSweeps(grpc::CallbackServerContext* ctx,
                                       const v1::ListSweepsRequest* req,
                                       v1::ListSweepsResponse* resp) override {
    return Answer(ctx, "gangway.v1.Sweeps/ListSweeps", "", resp,
                  [req](Core& c, const Principal&) -> absl::StatusOr<v1::ListSweepsResponse> {
                    v1::ListSweepsResponse out;
                    for (auto& sweep : c.ListSweeps(req->all()))
                      *out.add_sweeps() = std::move(sweep);
                    return out;
                  });
  }
  grpc::ServerUnaryReactor* CancelSweep(grpc::CallbackServerContext* ctx,
                                        const v1::CancelSweepRequest* req,
                                        v1::Sweep* resp) override {
    return AnswerStored(
        ctx, "gangway.v1.Sweeps/CancelSweep", req->id(), resp,
        [req](Core& c, const Principal& who) { return c.CancelSweep(req->id(), who); });
  }
  grpc::ServerUnaryReactor* UpdateSweep(grpc::CallbackServerContext* ctx,
                                        const v1::UpdateSweepRequest* req,
                                        v1::Sweep* resp) override {
    return AnswerStored(ctx, "gangway.v1.Sweeps/UpdateSweep", req->id(), resp,
                        [req](Core& c, const Principal& who) { return c.UpdateSweep(*req, who); });
  }
  grpc::ServerUnaryReactor* GetMetrics(grpc::CallbackServerContext* ctx,
                                       const v1::GetMetricsRequest* req,
                                       v1::GetMetricsResponse* resp) override {
    return Answer(ctx, "gangway.v1.Sweeps/GetMetrics", req->job_id(), resp,
                  [req](Core& c, const Principal&) { return c.GetMetricsPage(*req); });
  }
  grpc::ServerWriteReactor<v1::Sweep>* WatchSweep(grpc::CallbackServerContext* ctx,
                                                  const v1::WatchSweepRequest* req) override {
    if (auto who = Admit(*ctx, "gangway.v1.Sweeps/WatchSweep", req->id()); !who.ok()) {
      return new RefusedWriter<v1::Sweep>(who.status());
    }
    auto watch_id = std::make_shared<std::atomic<int64_t>>(0);
    auto reactor = std::make_shared<WatchReactor<v1::Sweep>>(
        [this, watch_id] { Post([watch_id](Core& c) { c.Unwatch(watch_id->load()); }); });
    reactor->Begin(reactor);
    std::weak_ptr<WatchReactor<v1::Sweep>> weak = reactor;
    Post([id = req->id(), weak, watch_id](Core& c) {
      auto r = weak.lock();
      if (!r) return;
      absl::StatusOr<int64_t> w = c.WatchSweep(id, [weak](const v1::Sweep& sweep) {
        if (auto rr = weak.lock()) rr->Update(sweep);
      });
      if (!w.ok()) {
        r->Fail(w.status());
        return;
      }
      watch_id->store(*w);
    });
    return reactor.get();
  }

  // ---- Metrics pushed by trainers ---------------------------------------------
  grpc::ServerUnaryReactor* Report(grpc::CallbackServerContext* ctx,
                                   const v1::ReportMetricsRequest* req,
                                   v1::ReportMetricsResponse* resp) override {
    constexpr absl::string_view kMethod = "gangway.v1.Metrics/Report";
    return AnswerStored(
        ctx, kMethod, req->job_id(), resp,
        [this, req](Core& c, const Principal& who) -> absl::StatusOr<v1::ReportMetricsResponse> {
          // A job token reports for its own job and attempt, while it runs.
          if (who.name != req->job_id() || who.attempt != req->attempt()) {
            return absl::PermissionDeniedError(
                absl::StrCat(who.ToString(), " may not report metrics of job ", req->job_id(),
                             " attempt ", req->attempt()));
          }
          if (absl::Status s = c.CheckLiveAttempt(req->job_id(), req->attempt()); !s.ok()) return s;
          if (req->points_size() > kMaxPushedPoints) {
            return absl::ResourceExhaustedError(
                absl::StrCat("points: at most ", kMaxPushedPoints, " per report"));
          }
          std::vector<v1::MetricPoint> points(req->points().begin(), req->points().end());
          const int64_t now = clock.NowMs();
          for (size_t i = 0; i < points.size(); ++i) {
            // The bounds the agent applies to what ranks print.
            if (absl::Status s =
                    common::CheckMetricPoint(points[i], absl::StrCat("points[", i, "]"));
                !s.ok()) {
              return s;
            }
            if (points[i].time_ms() == 0) points[i].set_time_ms(now);
          }
          v1::ReportMetricsResponse out;
          out.set_stop(c.OnMetrics(req->job_id(), req->attempt(), req->rank(), points));
          return out;
        });
  }

  // ---- Studies ------------------------------------------------------------------
  grpc::ServerUnaryReactor* CreateStudy(grpc::CallbackServerContext* ctx,
                                        const v1::CreateStudyRequest* req,
                                        v1::Study* resp) override {
    return Answer(ctx, "gangway.v1.Studies/CreateStudy", req->name(), resp,
                  [this, req](Core&, const Principal&) { return studies.Create(*req); });
  }
  grpc::ServerUnaryReactor* Ask(grpc::CallbackServerContext* ctx, const v1::AskRequest* req,
                                v1::AskResponse* resp) override {
    return Answer(ctx, "gangway.v1.Studies/Ask", req->study_id(), resp,
                  [this, req](Core&, const Principal&) { return studies.Ask(*req); });
  }
  grpc::ServerUnaryReactor* Tell(grpc::CallbackServerContext* ctx, const v1::TellRequest* req,
                                 v1::TellResponse* resp) override {
    return Answer(ctx, "gangway.v1.Studies/Tell", req->study_id(), resp,
                  [this, req](Core&, const Principal&) { return studies.Tell(*req); });
  }
  grpc::ServerUnaryReactor* BestTrials(grpc::CallbackServerContext* ctx,
                                       const v1::BestTrialsRequest* req,
                                       v1::BestTrialsResponse* resp) override {
    return Answer(ctx, "gangway.v1.Studies/BestTrials", req->study_id(), resp,
                  [this, req](Core&, const Principal&) { return studies.BestTrials(*req); });
  }

  // Streams a rank's log through its agent, chunk by chunk; with follow, polls
  // for more until the rank's job has ended and the log is drained.
  class LogsReactor : public grpc::ServerWriteReactor<v1::LogChunk> {
   public:
    LogsReactor(Impl* impl, v1::GetLogsRequest req)
        : impl_(impl), req_(std::move(req)), timer_(impl->io), offset_(req_.offset()) {}

    void Begin(std::shared_ptr<LogsReactor> self) {
      self_ = self;
      impl_->Post([self](Core& c) { self->Request(c); });
    }

    // Loop thread.
    void Request(Core& c) {
      if (cancelled_) return FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      std::shared_ptr<LogsReactor> self = self_.lock();
      if (!self) return;
      int64_t bytes = kLogChunkBytes;
      if (!req_.follow() && req_.max_bytes() > 0) {
        // Bounded: this call's share is sent, the client resumes from here.
        // Counted in bytes sent: a rotated log skips offsets (agent/rank_log.h).
        bytes = std::min(bytes, req_.max_bytes() - sent_);
        if (bytes <= 0) return FinishOnce(grpc::Status::OK);
      }
      c.ReadLog(req_.id(), req_.rank(), req_.attempt(), offset_, bytes,
                [self, &c](absl::StatusOr<v1::LogData> data) { self->OnData(c, std::move(data)); });
    }

    void OnData(Core& c, absl::StatusOr<v1::LogData> data) {
      if (data.ok() && !data->error().empty()) {
        data = absl::NotFoundError(data->error());
      }
      if (!data.ok()) return FinishOnce(common::ToGrpc(data.status()));
      if (cancelled_) return FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      if (!data->data().empty()) {
        offset_ = data->offset() + static_cast<int64_t>(data->data().size());
        sent_ += static_cast<int64_t>(data->data().size());
        chunk_.set_data(std::move(*data->mutable_data()));
        chunk_.set_offset(data->offset());
        StartWrite(&chunk_);
        return;
      }
      absl::StatusOr<v1::Job> job = c.GetJob(req_.id());
      const bool ended = !job.ok() || IsTerminal(job->state()) ||
                         (req_.attempt() > 0 && req_.attempt() != job->attempt());
      if (!req_.follow() || ended) return FinishOnce(grpc::Status::OK);
      std::shared_ptr<LogsReactor> self = self_.lock();
      timer_.expires_after(kLogFollowPoll);
      timer_.async_wait([self, &c](const boost::system::error_code& ec) {
        if (ec) return self->FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
        self->Request(c);
      });
    }

    void OnWriteDone(bool ok) override {
      if (!ok) return FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      std::shared_ptr<LogsReactor> self = self_.lock();
      impl_->Post([self](Core& c) { self->Request(c); });
    }

    void OnCancel() override {
      std::shared_ptr<LogsReactor> self = self_.lock();
      impl_->Post([self](Core&) {
        self->cancelled_ = true;
        self->timer_.cancel();
      });
    }

    void OnDone() override {
      // The loop drops its references once pending work has run.
      impl_->Post([keep = holder_](Core&) {});
      holder_.reset();
    }

    std::shared_ptr<LogsReactor> holder_;

   private:
    void FinishOnce(const grpc::Status& status) {
      std::lock_guard lock(mu_);
      if (finished_) return;
      finished_ = true;
      Finish(status);
    }

    std::mutex mu_;
    bool finished_ = false;
    Impl* impl_;
    v1::GetLogsRequest req_;
    asio::steady_timer timer_;
    int64_t offset_;
    int64_t sent_ = 0;  // loop thread
    v1::LogChunk chunk_;
    std::weak_ptr<LogsReactor> self_;
    bool cancelled_ = false;  // loop thread
  };

  grpc::ServerWriteReactor<v1::LogChunk>* GetLogs(grpc::CallbackServerContext* ctx,
                                                  const v1::GetLogsRequest* req) override {
    if (auto who = Admit(*ctx, "gangway.v1.Control/GetLogs", req->id()); !who.ok()) {
      return new RefusedWriter<v1::LogChunk>(who.status());
    }
    if (req->offset() < 0 || req->max_bytes() < 0) {
      return new RefusedWriter<v1::LogChunk>(absl::InvalidArgumentError(
          absl::StrCat(req->offset() < 0 ? "offset" : "max_bytes", ": must not be negative, got ",
                       req->offset() < 0 ? req->offset() : req->max_bytes())));
    }
    auto reactor = std::make_shared<LogsReactor>(this, *req);
    reactor->holder_ = reactor;
    reactor->Begin(reactor);
    return reactor.get();
  }

  void Shutdown() {
    std::call_once(shutdown_once, [this] {
      if (telemetry) telemetry->StopServing();  // a scrape reads through the loop
      if (server) {
        // Streams must end for Shutdown to return: close the sessions first.
        asio::post(io, [this] {
          for (auto& [id, s] : sessions) s->Close(absl::UnavailableError("coordinator stopping"));
        });
        // Calls still open at the deadline are cancelled; an idle client
        // connection would otherwise hold the whole deadline.
        server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
      }
      asio::post(io, [this] { tick.cancel(); });
      work.reset();
      io.stop();
      if (loop.joinable()) loop.join();
    });
  }
};

CoordinatorServer::CoordinatorServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  const bool loopback = common::IsLoopbackAddress(options.listen);
  const bool secured = options.tls.enabled() && !options.token_file.empty();
  if (!loopback && !secured && !options.insecure) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing to serve ", options.listen,
        " without TLS and tokens: anyone who reaches it could run any command on every node. "
        "Give --tls-cert, --tls-key, --tls-ca and --token-file (gangway certs init, gangway "
        "token create), listen on 127.0.0.1, or pass --insecure to serve plaintext anyway"));
  }
  if (!loopback && !secured) {
    GW_LOG_WARN(
        "INSECURE: serving {} without {}: anyone who reaches this port can submit jobs "
        "that run any command on every node",
        options.listen, options.tls.enabled() ? "a token file" : "TLS");
  }
  std::error_code ec;
  const bool made_state_dir = std::filesystem::create_directories(options.state_dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create state dir ", options.state_dir, ": ", ec.message()));
  }
  // The store holds jobs' environments, the job token key and the audit log.
  if (made_state_dir) {
    std::filesystem::permissions(options.state_dir, std::filesystem::perms::owner_all, ec);
  }
  const std::filesystem::path state(options.state_dir);
  absl::StatusOr<JobTokens> job_tokens = JobTokens::Open((state / "job-token.key").string());
  if (!job_tokens.ok()) return job_tokens.status();
  impl->job_tokens = std::make_unique<JobTokens>(std::move(*job_tokens));
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Authenticator::Create(
      AuthOptions{.tls = options.tls.enabled(), .token_file = options.token_file},
      impl->job_tokens.get());
  if (!auth.ok()) return auth.status();
  impl->auth = std::move(*auth);
  absl::StatusOr<std::unique_ptr<AuditLog>> audit = AuditLog::Open(
      options.audit_log.empty() ? (state / "audit.log").string() : options.audit_log);
  if (!audit.ok()) return audit.status();
  impl->audit = std::move(*audit);
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
      common::MakeServerCredentials(options.tls);
  if (!creds.ok()) return creds.status();
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(
      (std::filesystem::path(options.state_dir) / "gangway.db").string(), options.store_full_sync);
  if (!store.ok()) return store.status();
  impl->store = std::move(*store);
  if (absl::StatusOr<std::string> durability = impl->store->Durability(); durability.ok()) {
    GW_LOG_INFO("store {} {}", options.state_dir, *durability);
  }

  grpc::ServerBuilder builder;
  if (!options.metrics_listen.empty()) {
    Impl* raw = impl.get();
    impl->telemetry = std::make_unique<CoordinatorTelemetry>(
        ReadOnLoop(impl->io, [raw] { return raw->core->Gauges(); }), &impl->clock);
    impl->timed_store = std::make_unique<TimedStore>(impl->store.get(), impl->telemetry.get());
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> icpt;
    icpt.push_back(impl->telemetry->InterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(icpt));
  }
  builder.AddListeningPort(options.listen, *creds, &impl->port);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.RegisterService(static_cast<v1::Control::CallbackService*>(impl.get()));
  builder.RegisterService(static_cast<v1::AgentSession::CallbackService*>(impl.get()));
  builder.RegisterService(static_cast<v1::Sweeps::CallbackService*>(impl.get()));
  builder.RegisterService(static_cast<v1::Metrics::CallbackService*>(impl.get()));
  builder.RegisterService(static_cast<v1::Studies::CallbackService*>(impl.get()));
  impl->rendezvous_service = std::make_unique<RendezvousService>(impl->io, impl->rendezvous);
  Impl* gate_impl = impl.get();
  impl->rendezvous_service->SetGate(RendezvousService::Gate{
      .admit =
          [gate_impl](const grpc::CallbackServerContext& ctx, absl::string_view method,
                      const v1::RdzvScope& scope) {
            absl::StatusOr<Principal> who = gate_impl->Admit(ctx, method, scope.job_id());
            if (!who.ok()) return who.status();
            if (who->name != scope.job_id() || who->attempt != scope.attempt()) {
              return absl::PermissionDeniedError(
                  absl::StrCat(who->ToString(), " may not use the rendezvous of job ",
                               scope.job_id(), " attempt ", scope.attempt()));
            }
            return absl::OkStatus();
          },
      .live =
          [gate_impl](const RdzvScopeId& scope) {
            return gate_impl->core->CheckLiveAttempt(scope.job_id, scope.attempt);
          },
  });
  builder.RegisterService(impl->rendezvous_service.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  CoreOptions core_options = options.core;
  // Keys of a finished job go with it (each attempt has its own scope, so a
  // restarted gang never saw the old ones anyway).
  Impl* raw_impl = impl.get();
  core_options.on_job_ended = [raw_impl](const std::string& job_id) {
    raw_impl->rendezvous.ClearJob(job_id);
  };
  core_options.on_attempt_started = [raw_impl](const std::string& job_id, int32_t attempt) {
    raw_impl->rendezvous.ClearAttemptsBefore(job_id, attempt);
  };
  core_options.job_token = [raw_impl](const std::string& job_id, int32_t attempt) {
    return raw_impl->job_tokens->Mint(job_id, attempt);
  };
  if (core_options.rendezvous_endpoint.empty()) {
    // A wildcard address reaches nothing: left empty, each agent gives its
    // ranks the address it reaches the coordinator at itself.
    const std::string host = options.listen.substr(0, options.listen.rfind(':'));
    if (!host.empty() && host != "0.0.0.0" && host != "[::]" && host != "::") {
      core_options.rendezvous_endpoint = absl::StrCat(host, ":", impl->port);
    }
  }
  Store* core_store = impl->store.get();
  if (impl->telemetry) {
    CoordinatorTelemetry* t = impl->telemetry.get();
    core_options.on_job_state = [t](const v1::Job& job, v1::JobState from) {
      t->OnJobState(job, from);
    };
    core_store = impl->timed_store.get();
  }
  impl->core = std::make_unique<Core>(core_store, impl.get(), &impl->clock, core_options);
  if (absl::Status s = impl->core->Recover(); !s.ok()) {
    impl->server->Shutdown();
    return s;
  }
  if (impl->telemetry) {
    if (absl::Status s = impl->telemetry->Serve(options.metrics_listen); !s.ok()) {
      impl->server->Shutdown();
      return s;
    }
    GW_LOG_INFO("metrics on port {} (/metrics)", impl->telemetry->port());
  }
  impl->studies.set_clock([] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  });
  impl->ScheduleTick();
  Impl* raw = impl.get();
  impl->loop = std::thread([raw] { raw->io.run(); });
  GW_LOG_INFO("coordinator listening on port {} state={}", impl->port, options.state_dir);
  return std::unique_ptr<CoordinatorServer>(new CoordinatorServer(std::move(impl)));
}

std::string CoordinatorServer::address() const { return absl::StrCat("127.0.0.1:", impl_->port); }
int CoordinatorServer::port() const { return impl_->port; }
int CoordinatorServer::metrics_port() const {
  return impl_->telemetry ? impl_->telemetry->port() : 0;
}
void CoordinatorServer::Shutdown() { impl_->Shutdown(); }

bool CoordinatorServer::LoopAnswers(std::chrono::milliseconds timeout) {
  // Shared: a loop that answers late (or never) still holds the promise.
  auto answered = std::make_shared<std::promise<void>>();
  std::future<void> done = answered->get_future();
  asio::post(impl_->io, [answered] { answered->set_value(); });
  return done.wait_for(timeout) == std::future_status::ready;
}

}  // namespace gangway::coordinator
