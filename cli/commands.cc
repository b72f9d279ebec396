#include "cli/commands.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/sweeps.h"
#include "common/clock.h"
#include "common/grpc_status.h"
#include "common/list_jobs.h"
#include "common/spec.h"
#include "coordinator/job_state.h"

namespace gangway::cli {
namespace {

constexpr auto kRpcTimeout = std::chrono::seconds(10);

void SetDeadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
}

// Whether an UNAVAILABLE came from not reaching the coordinator, rather than
// from a coordinator that answered (e.g. "the store could not save the
// job"): only then is "is a coordinator running?" the right hint. A channel
// that reached its server stays READY after the call; one that could not
// connect is in TRANSIENT_FAILURE (or still connecting/idle).
bool Unreachable(const Context& ctx) {
  return !ctx.channel || ctx.channel->GetState(false) != GRPC_CHANNEL_READY;
}

int Fail(Context& ctx, const grpc::Status& s) {
  std::string hint;
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE && Unreachable(ctx)) {
    hint = absl::StrCat(
        " (is a coordinator running at ", ctx.coordinator,
        "? set --coordinator or GANGWAY_COORDINATOR",
        ctx.tls.enabled() ? "" : "; one serving TLS needs --tls-ca or GANGWAY_TLS_CA", ")");
  }
  *ctx.err << "error: " << s.error_message() << hint << "\n";
  switch (s.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 2;
    default:
      return 1;
  }
}

int64_t Now() { return common::SystemClock().NowMs(); }

// "2 running, 2 exited" over the current attempt's ranks.
std::string RankCounts(const v1::Job& job) {
  int launching = 0, running = 0, exited = 0, lost = 0;
  for (const auto& r : job.ranks()) {
    launching += r.state() == v1::RANK_STATE_LAUNCHING;
    running += r.state() == v1::RANK_STATE_RUNNING;
    exited += r.state() == v1::RANK_STATE_EXITED;
    lost += r.state() == v1::RANK_STATE_LOST;
  }
  std::vector<std::string> parts;
  if (launching) parts.push_back(absl::StrCat(launching, " launching"));
  if (running) parts.push_back(absl::StrCat(running, " running"));
  if (exited) parts.push_back(absl::StrCat(exited, " exited"));
  if (lost) parts.push_back(absl::StrCat(lost, " lost"));
  if (parts.empty()) return "none yet";
  return absl::StrJoin(parts, ", ");
}

void PrintJob(Context& ctx, const v1::Job& job) {
  switch (ctx.output) {
    case Output::kJson:
      *ctx.out << ToJson(job);
      break;
    case Output::kYaml:
      *ctx.out << ToYaml(job);
      break;
    case Output::kName:
      *ctx.out << "job/" << job.id() << "\n";
      break;
    case Output::kTable:
    case Output::kWide:
      *ctx.out << JobDetail(job, Now());
      break;
  }
}

}  // namespace

absl::Status Connect(Context& ctx) {
  if (ctx.coordinator.empty()) {
    return absl::InvalidArgumentError("--coordinator: no coordinator address");
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      common::MakeChannel(ctx.coordinator, ctx.tls, ctx.token);
  if (!channel.ok()) return channel.status();
  ctx.channel = std::move(*channel);
  ctx.stub = v1::Control::NewStub(ctx.channel);
  return absl::OkStatus();
}

int ExitCodeFor(const v1::Job& job) { return job.state() == v1::JOB_STATE_SUCCEEDED ? 0 : 1; }

absl::StatusOr<std::string> ReadSpecFile(const std::string& path) {
  std::stringstream buf;
  if (path == "-") {
    buf << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", strerror(errno)));
    buf << in.rdbuf();
  }
  std::string text = buf.str();
  if (text.size() > common::kMaxSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", text.size(), " bytes; a spec may have at most ", common::kMaxSpecBytes));
  }
  return text;
}

int Submit(Context& ctx, const std::string& file) {
  absl::StatusOr<std::string> text = ReadSpecFile(file);
  if (!text.ok()) {
    *ctx.err << "error: " << text.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::string> kind = common::SpecKind(*text);
  if (!kind.ok()) {
    *ctx.err << file << ": " << kind.status().message() << "\n";
    return 2;
  }
  if (*kind == "Sweep") return SubmitSweepYaml(ctx, file, *text);
  v1::SubmitJobRequest req;
  req.set_yaml(*text);
  v1::Job job;
  grpc::ClientContext rpc;
  SetDeadline(rpc);
  grpc::Status s = ctx.stub->SubmitJob(&rpc, req, &job);
  if (!s.ok()) {
    *ctx.err << file << ": ";
    return Fail(ctx, s);
  }
  if (ctx.output == Output::kTable || ctx.output == Output::kWide) {
    *ctx.out << "job/" << job.id() << " submitted\n";
  } else {
    PrintJob(ctx, job);
  }
  return 0;
}

int Get(Context& ctx, const std::string& id) {
  v1::GetJobRequest req;
  req.set_id(id);
  v1::Job job;
  grpc::ClientContext rpc;
  SetDeadline(rpc);
  grpc::Status s = ctx.stub->GetJob(&rpc, req, &job);
  // Jobs and sweeps share one id space: an id that is no job may be a sweep.
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return GetSweep(ctx, id);
  if (!s.ok()) return Fail(ctx, s);
  PrintJob(ctx, job);
  return 0;
}

int List(Context& ctx, bool all) {
  v1::ListJobsResponse resp;
  grpc::Status s = common::ListAllJobs(*ctx.stub, all, kRpcTimeout, &resp);
  if (!s.ok()) return Fail(ctx, s);
  if (ctx.output == Output::kTable || ctx.output == Output::kWide) {
    if (int code = ListSweeps(ctx, all); code != 0) return code;
  }
  switch (ctx.output) {
    case Output::kJson:
      *ctx.out << ToJson(resp);
      break;
    case Output::kYaml:
      *ctx.out << ToYaml(resp);
      break;
    case Output::kName:
      for (const auto& j : resp.jobs()) *ctx.out << "job/" << j.id() << "\n";
      break;
    case Output::kTable:
    case Output::kWide:
      *ctx.out << JobsTable({resp.jobs().begin(), resp.jobs().end()}, Now());
      break;
  }
  return 0;
}

int Cancel(Context& ctx, const std::string& id) {
  v1::CancelJobRequest req;
  req.set_id(id);
  v1::Job job;
  grpc::ClientContext rpc;
  SetDeadline(rpc);
  grpc::Status s = ctx.stub->CancelJob(&rpc, req, &job);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return CancelSweep(ctx, id);
  if (!s.ok()) return Fail(ctx, s);
  if (ctx.output == Output::kTable || ctx.output == Output::kWide) {
    *ctx.out << "job/" << job.id() << " cancelling (" << StateName(job.state()) << ")\n";
  } else {
    PrintJob(ctx, job);
  }
  return 0;
}

int Nodes(Context& ctx) {
  v1::ListNodesResponse resp;
  grpc::ClientContext rpc;
  SetDeadline(rpc);
  grpc::Status s = ctx.stub->ListNodes(&rpc, v1::ListNodesRequest(), &resp);
  if (!s.ok()) return Fail(ctx, s);
  switch (ctx.output) {
    case Output::kJson:
      *ctx.out << ToJson(resp);
      break;
    case Output::kYaml:
      *ctx.out << ToYaml(resp);
      break;
    case Output::kName:
      for (const auto& n : resp.nodes()) *ctx.out << "node/" << n.name() << "\n";
      break;
    case Output::kTable:
    case Output::kWide:
      *ctx.out << NodesTable({resp.nodes().begin(), resp.nodes().end()},
                             ctx.output == Output::kWide);
      break;
  }
  return 0;
}

int Logs(Context& ctx, const std::string& id, int rank, int attempt, bool follow, int64_t offset) {
  v1::GetLogsRequest req;
  req.set_id(id);
  req.set_rank(rank);
  req.set_attempt(attempt);
  req.set_follow(follow);
  // Without -f the log is read kLogCallBytes per call, each call with its
  // own deadline: one deadline for the whole read cut a 2 GB log short.
  if (!follow) req.set_max_bytes(kLogCallBytes);
  while (true) {
    req.set_offset(offset);
    grpc::ClientContext rpc;
    if (!follow) SetDeadline(rpc);
    auto reader = ctx.stub->GetLogs(&rpc, req);
    v1::LogChunk chunk;
    int64_t read = 0;
    while (reader->Read(&chunk)) {
      *ctx.out << chunk.data();
      ctx.out->flush();
      offset = chunk.offset() + static_cast<int64_t>(chunk.data().size());
      read += static_cast<int64_t>(chunk.data().size());
    }
    grpc::Status s = reader->Finish();
    if (!s.ok()) {
      const int code = Fail(ctx, s);
      if (offset > 0) {
        *ctx.err << "stopped at byte " << offset << "; resume with --offset " << offset << "\n";
      }
      return code;
    }
    if (follow || read < kLogCallBytes) return 0;  // the end of the log
  }
}

int Watch(Context& ctx, const std::string& id) {
  v1::WatchJobRequest req;
  req.set_id(id);
  grpc::ClientContext rpc;
  {
    // A sweep id watches the sweep.
    v1::GetJobRequest get;
    get.set_id(id);
    v1::Job probe;
    grpc::ClientContext probe_rpc;
    SetDeadline(probe_rpc);
    if (ctx.stub->GetJob(&probe_rpc, get, &probe).error_code() == grpc::StatusCode::NOT_FOUND) {
      return WatchSweep(ctx, id, ctx.terminal);
    }
  }
  auto reader = ctx.stub->WatchJob(&rpc, req);
  v1::Job job;
  std::string last;
  bool any = false;
  while (reader->Read(&job)) {
    any = true;
    if (ctx.output == Output::kJson) {
      *ctx.out << ToJson(job);
      continue;
    }
    if (ctx.output == Output::kYaml) {
      *ctx.out << "---\n" << ToYaml(job);
      continue;
    }
    std::string line =
        absl::StrCat(job.id(), "  ", StateName(job.state()), "  attempt ", job.attempt(),
                     "  ranks: ", RankCounts(job), "  ", job.reason());
    if (line != last) {
      *ctx.out << Age(Now() - job.create_time_ms()) << "  " << line << "\n";
      ctx.out->flush();
      last = std::move(line);
    }
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) return Fail(ctx, s);
  if (!any || !coordinator::IsTerminal(job.state())) {
    *ctx.err << "error: the watch ended before the job did\n";
    return 1;
  }
  return ExitCodeFor(job);
}

}  // namespace gangway::cli
