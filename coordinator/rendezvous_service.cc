#include "coordinator/rendezvous_service.h"

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "boost/asio/post.hpp"
#include "common/grpc_status.h"

namespace gangway::coordinator {
namespace asio = boost::asio;

namespace {

RdzvScopeId ScopeOf(const v1::RdzvScope& scope) { return {scope.job_id(), scope.attempt()}; }

}  // namespace

// A Get or Barrier that may wait. The reactor owns itself until gRPC is done
// with it (OnDone); the store's callback and posted work hold it too, so it
// outlives whichever comes last.
class RendezvousService::WaitReactor final : public grpc::ServerUnaryReactor {
 public:
  static std::shared_ptr<WaitReactor> Make(RendezvousService* service) {
    auto r = std::shared_ptr<WaitReactor>(new WaitReactor(service));
    r->weak_ = r;
    r->self_ = r;
    return r;
  }

  // Loop thread: the store took the call as `id` (0: already answered).
  void Waiting(Rendezvous::WaitId id) {
    if (id != 0 && cancelled_) {
      service_->store_.CancelWait(id);
      return;
    }
    wait_id_ = id;
  }

  // Loop thread, from the store's callback: the call's answer.
  void Done(const absl::Status& status) {
    wait_id_ = 0;
    Finish(common::ToGrpc(status));
  }

  void OnCancel() override {
    std::shared_ptr<WaitReactor> self = weak_.lock();
    if (!self) return;
    asio::post(service_->loop_, [self] {
      self->cancelled_ = true;
      if (self->wait_id_ != 0) {
        self->service_->store_.CancelWait(self->wait_id_);
        self->service_->Rearm();
      }
    });
  }

  void OnDone() override {
    // gRPC is done with it; whoever holds it last (this, the store or posted
    // work) deletes it.
    std::shared_ptr<WaitReactor> last = std::move(self_);
  }

 private:
  explicit WaitReactor(RendezvousService* service) : service_(service) {}

  RendezvousService* const service_;
  std::weak_ptr<WaitReactor> weak_;    // set once in Make
  std::shared_ptr<WaitReactor> self_;  // set in Make, dropped in OnDone
  // Loop thread only.
  Rendezvous::WaitId wait_id_ = 0;
  bool cancelled_ = false;
};

RendezvousService::RendezvousService(asio::io_context& loop, Rendezvous& store)
    : loop_(loop), store_(store), timer_(loop) {}

int64_t RendezvousService::NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void RendezvousService::Rearm() {
  const std::optional<int64_t> next = store_.NextDeadline();
  if (next == armed_deadline_ms_) return;
  armed_deadline_ms_ = next;
  if (!next) {
    timer_.cancel();
    return;
  }
  // Replacing the expiry cancels the previous wait; its handler sees
  // operation_aborted. One that had already fired runs anyway, which is
  // harmless: Expire only ends waiters whose deadline has passed.
  timer_.expires_at(std::chrono::steady_clock::time_point(std::chrono::milliseconds(*next)));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    armed_deadline_ms_.reset();
    store_.Expire(NowMs());
    Rearm();
  });
}

absl::Status RendezvousService::Admit(const grpc::CallbackServerContext& ctx,
                                      absl::string_view method, const v1::RdzvScope& scope) const {
  return gate_.admit ? gate_.admit(ctx, method, scope) : absl::OkStatus();
}

absl::Status RendezvousService::Live(const v1::RdzvScope& scope) const {
  return gate_.live ? gate_.live(ScopeOf(scope)) : absl::OkStatus();
}

grpc::ServerUnaryReactor* RendezvousService::Set(grpc::CallbackServerContext* ctx,
                                                 const v1::RdzvSetRequest* req,
                                                 v1::RdzvSetResponse*) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (absl::Status s = Admit(*ctx, "gangway.v1.Rendezvous/Set", req->scope()); !s.ok()) {
    reactor->Finish(common::ToGrpc(s));
    return reactor;
  }
  asio::post(loop_, [this, req, reactor] {
    absl::Status s = Live(req->scope());
    if (s.ok()) s = store_.Set(ScopeOf(req->scope()), req->key(), req->value());
    Rearm();  // completed waiters no longer hold the earliest deadline
    reactor->Finish(common::ToGrpc(s));
  });
  return reactor;
}

grpc::ServerUnaryReactor* RendezvousService::Get(grpc::CallbackServerContext* ctx,
                                                 const v1::RdzvGetRequest* req,
                                                 v1::RdzvGetResponse* resp) {
  if (absl::Status s = Admit(*ctx, "gangway.v1.Rendezvous/Get", req->scope()); !s.ok()) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(common::ToGrpc(s));
    return reactor;
  }
  std::shared_ptr<WaitReactor> reactor = WaitReactor::Make(this);
  asio::post(loop_, [this, req, resp, reactor] {
    if (absl::Status s = Live(req->scope()); !s.ok()) {
      reactor->Done(s);
      return;
    }
    std::vector<std::string> keys(req->keys().begin(), req->keys().end());
    const Rendezvous::WaitId id =
        store_.Get(ScopeOf(req->scope()), std::move(keys), NowMs(), req->timeout_ms(),
                   [resp, reactor](absl::StatusOr<std::vector<std::string>> values) {
                     if (values.ok()) {
                       for (std::string& v : *values) resp->add_values(std::move(v));
                     }
                     reactor->Done(values.status());
                   });
    reactor->Waiting(id);
    Rearm();
  });
  return reactor.get();
}

grpc::ServerUnaryReactor* RendezvousService::Add(grpc::CallbackServerContext* ctx,
                                                 const v1::RdzvAddRequest* req,
                                                 v1::RdzvAddResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (absl::Status s = Admit(*ctx, "gangway.v1.Rendezvous/Add", req->scope()); !s.ok()) {
    reactor->Finish(common::ToGrpc(s));
    return reactor;
  }
  asio::post(loop_, [this, req, resp, reactor] {
    const absl::Status live = Live(req->scope());
    absl::StatusOr<int64_t> sum = live.ok()
                                      ? store_.Add(ScopeOf(req->scope()), req->key(), req->delta())
                                      : absl::StatusOr<int64_t>(live);
    Rearm();
    if (sum.ok()) resp->set_value(*sum);
    reactor->Finish(common::ToGrpc(sum.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* RendezvousService::Barrier(grpc::CallbackServerContext* ctx,
                                                     const v1::RdzvBarrierRequest* req,
                                                     v1::RdzvBarrierResponse*) {
  if (absl::Status s = Admit(*ctx, "gangway.v1.Rendezvous/Barrier", req->scope()); !s.ok()) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(common::ToGrpc(s));
    return reactor;
  }
  std::shared_ptr<WaitReactor> reactor = WaitReactor::Make(this);
  asio::post(loop_, [this, req, reactor] {
    if (absl::Status s = Live(req->scope()); !s.ok()) {
      reactor->Done(s);
      return;
    }
    const Rendezvous::WaitId id =
        store_.Barrier(ScopeOf(req->scope()), req->name(), req->count(), NowMs(), req->timeout_ms(),
                       [reactor](absl::Status s) { reactor->Done(s); });
    reactor->Waiting(id);
    Rearm();
  });
  return reactor.get();
}

}  // namespace gangway::coordinator
