// Sweeps as the integration tests drive them: submitted through the CLI,
// read over the Sweeps service, and waited for until they end.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {

inline std::unique_ptr<v1::Sweeps::Stub> SweepsStub(const Cluster& cluster) {
  return v1::Sweeps::NewStub(cluster.Channel(cluster.admin_token()));
}

inline std::optional<v1::Sweep> GetSweep(const Cluster& cluster, const std::string& id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  v1::GetSweepRequest req;
  req.set_id(id);
  v1::Sweep sweep;
  if (!SweepsStub(cluster)->GetSweep(&ctx, req, &sweep).ok()) return std::nullopt;
  return sweep;
}

// The id `gangway submit` printed ("sweep/ID submitted"); empty without one.
inline std::string SubmittedId(const RunResult& r, const std::string& kind = "sweep") {
  std::smatch m;
  if (!std::regex_search(r.out, m, std::regex(kind + R"(/(\S+) submitted)"))) return "";
  return m[1];
}

// `gangway submit SPEC` for a sweep; its id goes to `id`.
inline ::testing::AssertionResult SubmitSweep(Cluster& cluster, const std::string& spec,
                                              std::string* id) {
  RunResult submit = cluster.Cli({"submit", spec});
  if (submit.code != 0) {
    return ::testing::AssertionFailure() << "submit exited " << submit.code << ": " << submit.err;
  }
  *id = SubmittedId(submit);
  if (id->empty()) return ::testing::AssertionFailure() << "no sweep id in: " << submit.out;
  return ::testing::AssertionSuccess();
}

// Polls the sweep until it is no longer Running; the last one seen goes to
// `last`.
inline ::testing::AssertionResult WaitForSweepEnd(const Cluster& cluster, const std::string& id,
                                                  std::chrono::milliseconds timeout,
                                                  v1::Sweep* last) {
  const bool ended = WaitFor(
      [&] {
        std::optional<v1::Sweep> s = GetSweep(cluster, id);
        if (!s) return false;
        *last = std::move(*s);
        return last->state() != v1::SWEEP_STATE_RUNNING;
      },
      timeout);
  if (ended) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "sweep " << id << " still Running after " << timeout.count()
         << " ms: " << last->reason() << " (" << last->trials_size() << " trials)";
}

// SubmitSweep, then WaitForSweepEnd.
inline ::testing::AssertionResult RunSweep(Cluster& cluster, const std::string& spec,
                                           std::chrono::milliseconds timeout, std::string* id,
                                           v1::Sweep* last) {
  if (::testing::AssertionResult submitted = SubmitSweep(cluster, spec, id); !submitted) {
    return submitted;
  }
  return WaitForSweepEnd(cluster, *id, timeout, last);
}

}  // namespace gangway::itest
