// What the agent tests that run a real Agent against an in-process fake
// coordinator (an AgentSession service) share: the launch of one sleeping
// rank tagged with an environment marker, the agent's options, and a count
// of the processes carrying the marker.
#pragma once

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "agent/agent.h"
#include "agent/inventory.h"
#include "gangway/v1/gangway.grpc.pb.h"

namespace gangway::agent::testing {

// Live processes whose environment holds `entry` ("NAME=value").
inline int CountProcessesWith(const std::string& entry) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    if (e.path().filename().string().find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "environ", std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    const std::string env = buf.str();
    for (size_t pos = 0; pos < env.size();) {
      size_t end = env.find('\0', pos);
      if (end == std::string::npos) end = env.size();
      n += env.compare(pos, end - pos, entry) == 0;
      pos = end + 1;
    }
  }
  return n;
}

// Attempt 1 of `job`: one rank running `sleep 30` with NAME=value from
// `marker` in its environment.
inline v1::LaunchGang SleepLaunch(const std::string& job, const std::string& marker) {
  v1::LaunchGang launch;
  launch.set_job_id(job);
  launch.set_attempt(1);
  launch.set_master_port(29500);
  v1::RankLaunch* rank = launch.add_ranks();
  rank->set_rank(0);
  const size_t eq = marker.find('=');
  (*rank->mutable_env())[marker.substr(0, eq)] = marker.substr(eq + 1);
  rank->add_argv("sleep");
  rank->add_argv("30");
  return launch;
}

// An agent for node n1 of `port`'s coordinator, running ranks as this
// process's user with its environment (as `gangway local` does).
inline AgentOptions LocalAgentOptions(int port, const std::string& state_dir) {
  AgentOptions options;
  options.coordinator = "127.0.0.1:" + std::to_string(port);
  options.name = "n1";
  options.address = "127.0.0.1";
  options.state_dir = state_dir;
  options.inventory = SimulatedInventory(2000, int64_t{1} << 30, 0, "", 0);
  options.workload.run_as_agent_user = true;
  options.environment.inherit_all = true;
  return options;
}

// `service` on 127.0.0.1 at a free port (0 in *port when it failed).
inline std::unique_ptr<grpc::Server> Serve(grpc::Service* service, int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), port);
  builder.RegisterService(service);
  return builder.BuildAndStart();
}

}  // namespace gangway::agent::testing
