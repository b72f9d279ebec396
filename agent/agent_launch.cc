// Starting a gang's ranks on this node: their user, environment, log and
// metrics file, under a keeper or the supervisor. Part of Agent::Impl
// (agent_impl.h).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "agent/agent_impl.h"
#include "agent/placement.h"
#include "common/log.h"
#include "common/rank_env.h"

namespace gangway::agent {
namespace {

// Best effort, as the supervisor does: the log is where a user looks first
// when a rank never ran.
void AppendToLog(const std::string& path, const std::string& line) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::ofstream(path, std::ios::app) << "gangway: " << line << "\n";
}

}  // namespace

absl::StatusOr<int> ReservePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("reserve port: ", strerror(err)));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

void Agent::Impl::Launch(const v1::LaunchGang& launch) {
  int port = launch.master_port();
  if (port == 0) {
    absl::StatusOr<int> reserved = ReservePort();
    if (!reserved.ok()) {
      GW_LOG_ERROR("node={} job={}: {}", options.name, launch.job_id(),
                   std::string(reserved.status().message()));
    }
    port = reserved.ok() ? *reserved : 0;
  }
  v1::AgentMessage started;
  auto* gs = started.mutable_gang_started();
  gs->set_job_id(launch.job_id());
  gs->set_attempt(launch.attempt());
  gs->set_master_port(port);
  std::vector<v1::AgentMessage> failures;
  // The node's policy decides, with its own passwd database.
  const absl::StatusOr<UserIdentity> user =
      policy.ok() ? policy->ForJob(launch.user(), options.name) : policy.status();
  if (!user.ok()) {
    GW_LOG_WARN("node={} job={}: {}", options.name, launch.job_id(),
                std::string(user.status().message()));
  }
  for (const v1::RankLaunch& rl : launch.ranks()) {
    RankKey key{launch.job_id(), launch.attempt(), rl.rank()};
    if (records.count(key)) continue;  // a repeated launch never makes a second copy
    LaunchRequest req;
    if (user.ok()) req.user = *user;
    if (!ca_pem.empty()) req.env.emplace_back("GANGWAY_TLS_CA", ca_pem);
    req.argv = common::LaunchArgv(launch, rl);
    // The gang's environment, the rank's own on top.
    for (auto& [k, v] : common::LaunchEnvironment(launch, rl)) {
      const bool port_var = k == "MASTER_PORT" || k == "PET_MASTER_PORT";
      if (k == "GANGWAY_RDZV" && v.empty()) {
        // A coordinator listening on every address cannot tell which of
        // them reaches this node; the one this agent reaches it at does.
        req.env.emplace_back(k, options.coordinator);
        continue;
      }
      req.env.emplace_back(k, port_var && launch.master_port() == 0 ? std::to_string(port) : v);
    }
    req.working_dir = launch.working_dir();
    req.log_path = Agent::LogPath(options.state_dir, launch.job_id(), launch.attempt(), rl.rank());
    const std::string metrics_file =
        (std::filesystem::path(options.state_dir) / "metrics" / launch.job_id() /
         absl::StrCat("attempt-", launch.attempt()) / absl::StrCat("rank-", rl.rank(), ".jsonl"))
            .string();
    const bool collect = rl.rank() == 0 && !launch.metrics().kind().empty();
    if (collect && launch.metrics().kind() == "file" && user.ok()) {
      const std::filesystem::path dir = std::filesystem::path(metrics_file).parent_path();
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      // The rank creates the file as the workload user; the directories
      // above must let it through (a state dir of 0755 or 0711).
      if (::geteuid() == 0 && user->uid != 0 && ::chown(dir.c_str(), user->uid, user->gid) != 0) {
        GW_LOG_WARN("node={} job={}: chown {}: {}", options.name, launch.job_id(), dir.string(),
                    strerror(errno));
      }
      req.env.emplace_back("GANGWAY_METRICS_FILE", metrics_file);
    }
    // Only a detected inventory describes this machine's cores and NUMA
    // nodes; a simulated or --topology one describes another.
    if (options.inventory.source() == "hwloc") {
      req.cpu_affinity = AffinityFor(options.inventory, rl);
      req.memory_nodes = MemoryNodesFor(options.inventory, rl);
    }
    if (!user.ok()) AppendToLog(req.log_path, std::string(user.status().message()));
    std::string keeper_id;
    absl::StatusOr<pid_t> pid = absl::InternalError("not launched");
    if (!user.ok()) {
      pid = user.status();
    } else if (keepers) {
      v1::KeeperRecord tag;
      tag.set_job_id(launch.job_id());
      tag.set_attempt(launch.attempt());
      tag.set_rank(rl.rank());
      if (collect) {
        *tag.mutable_metrics() = launch.metrics();
        tag.set_metrics_json(launch.metrics().kind() == "file");
        tag.set_metrics_path(tag.metrics_json() ? metrics_file : req.log_path);
      }
      absl::StatusOr<Keepers::Kept> kept = keepers->Launch(req, std::move(tag));
      if (kept.ok()) keeper_id = kept->id;
      pid = kept.ok() ? absl::StatusOr<pid_t>(kept->pid) : kept.status();
    } else {
      // Capped as under a keeper: the supervisor reads the rank's output
      // on this loop and the writer rotates it.
      if (options.log_max_bytes > 0) {
        absl::StatusOr<RankLogWriter> log =
            RankLogWriter::Open(req.log_path, options.log_max_bytes);
        if (log.ok()) {
          auto writer = std::make_shared<RankLogWriter>(*std::move(log));
          req.on_output = [writer](std::string_view data) { writer->Write(data); };
        }
      }
      pid = supervisor->Launch(req);
    }
    Record& rec = records[key];
    rec.keeper_id = keeper_id;
    v1::RankRecord* r = gs->add_ranks();
    r->set_job_id(launch.job_id());
    r->set_attempt(launch.attempt());
    r->set_rank(rl.rank());
    if (options.rank_events) options.rank_events->RankLaunched(launch, rl, pid.ok());
    if (pid.ok()) {
      rec.pid = *pid;
      by_pid[*pid] = key;
      r->set_pid(*pid);
      if (collect && launch.metrics().kind() != "push") {
        const bool json = launch.metrics().kind() == "file";
        absl::StatusOr<MetricsTail> tail =
            MetricsTail::Create(json ? metrics_file : req.log_path, launch.metrics(), json);
        if (tail.ok()) {
          tails.emplace(key, *std::move(tail));
          ScheduleMetricsPoll();
        } else {
          GW_LOG_WARN("node={} job={}: metrics: {}", options.name, launch.job_id(),
                      std::string(tail.status().message()));
        }
      }
      continue;
    }
    GW_LOG_WARN("node={} job={} rank={} launch failed: {}", options.name, launch.job_id(),
                rl.rank(), std::string(pid.status().message()));
    rec.exited = true;
    rec.exit_code = 127;  // as a shell reports a command it cannot run
    v1::AgentMessage exit;
    *exit.mutable_rank_exited()->mutable_rank() = *r;
    exit.mutable_rank_exited()->mutable_rank()->set_exited(true);
    exit.mutable_rank_exited()->mutable_rank()->set_exit_code(127);
    failures.push_back(std::move(exit));
  }
  Write(started);
  for (const auto& f : failures) Write(f);
}

}  // namespace gangway::agent
