// The gRPC face of the rendezvous store (gangway.v1.Rendezvous).
//
// Threads: gRPC's callback threads run the handlers, which only post onto
// `loop`; the loop thread owns the Rendezvous store and the timer that
// expires its deadlines. No thread waits: a Get or Barrier that must wait
// keeps its reactor open until the store calls back. A client that goes away
// (cancel, its own deadline) is taken out of the store through OnCancel, so a
// retrying client does not pile up waiters.
//
// Deadlines run on the steady clock (the store's `now_ms` is milliseconds of
// std::chrono::steady_clock), so a wall-clock step does not expire them.
//
// Lifetime: construct before the grpc::Server starts; destroy after the
// server has shut down and `loop` no longer runs, since posted work and the
// timer refer to the service. grpc::Server::Shutdown cancels waiting calls;
// their cancellation is posted onto `loop`, so the loop must still run while
// the server shuts down.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "absl/strings/string_view.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "coordinator/rendezvous.h"
#include "gangway/v1/gangway.grpc.pb.h"

namespace gangway::coordinator {

class RendezvousService final : public v1::Rendezvous::CallbackService {
 public:
  RendezvousService(boost::asio::io_context& loop, Rendezvous& store);
  RendezvousService(const RendezvousService&) = delete;
  RendezvousService& operator=(const RendezvousService&) = delete;

  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* ctx, const v1::RdzvSetRequest* req,
                                v1::RdzvSetResponse* resp) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const v1::RdzvGetRequest* req,
                                v1::RdzvGetResponse* resp) override;
  grpc::ServerUnaryReactor* Add(grpc::CallbackServerContext* ctx, const v1::RdzvAddRequest* req,
                                v1::RdzvAddResponse* resp) override;
  grpc::ServerUnaryReactor* Barrier(grpc::CallbackServerContext* ctx,
                                    const v1::RdzvBarrierRequest* req,
                                    v1::RdzvBarrierResponse* resp) override;

  // Milliseconds of the steady clock: the store's timeline.
  static int64_t NowMs();

  // Who may use which scope. `admit` runs on gRPC's thread before a call is
  // posted (the caller's job token names this scope); `live` runs on the
  // loop before the store is touched (the scope's attempt is running), so a
  // scope is never created for an attempt that does not exist. Either may
  // be unset (tests and benchmarks use the store open). Set before the
  // server starts.
  struct Gate {
    std::function<absl::Status(const grpc::CallbackServerContext&, absl::string_view method,
                               const v1::RdzvScope&)>
        admit;
    std::function<absl::Status(const RdzvScopeId&)> live;
  };
  void SetGate(Gate gate) { gate_ = std::move(gate); }

 private:
  class WaitReactor;

  // Loop thread: points the timer at the store's next deadline.
  void Rearm();

  // `method`: "gangway.v1.Rendezvous/Set" and so on.
  absl::Status Admit(const grpc::CallbackServerContext& ctx, absl::string_view method,
                     const v1::RdzvScope& scope) const;
  absl::Status Live(const v1::RdzvScope& scope) const;

  Gate gate_;
  boost::asio::io_context& loop_;
  Rendezvous& store_;
  boost::asio::steady_timer timer_;           // loop thread
  std::optional<int64_t> armed_deadline_ms_;  // loop thread
};

}  // namespace gangway::coordinator
