#include "cli/local.h"

#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>

#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "agent/inventory.h"
#include "cli/commands.h"
#include "cli/sweeps.h"
#include "common/spec.h"
#include "coordinator/server.h"
#include "gpu/inventory.h"

namespace gangway::cli {
namespace {

// Waits until `n` nodes are Ready. Polls: this is a start-up wait on real
// daemons, bounded, not a test.
bool WaitForNodes(v1::Control::Stub& stub, int n, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    grpc::ClientContext rpc;
    rpc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::ListNodesResponse resp;
    if (stub.ListNodes(&rpc, v1::ListNodesRequest(), &resp).ok()) {
      int ready = 0;
      for (const auto& node : resp.nodes()) ready += node.state() == v1::NODE_STATE_READY;
      if (ready >= n) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// A sweep: submit, show progress, then the trials and the best one.
int RunLocalSweep(Context& ctx, const LocalOptions& options, const std::string& yaml) {
  v1::SubmitSweepRequest req;
  req.set_yaml(yaml);
  v1::Sweep sweep;
  grpc::ClientContext rpc;
  auto stub = v1::Sweeps::NewStub(ctx.channel);
  grpc::Status s = stub->SubmitSweep(&rpc, req, &sweep);
  if (!s.ok()) {
    *ctx.err << options.spec_file << ": " << s.error_message() << "\n";
    return 2;
  }
  *ctx.out << "sweep/" << sweep.id() << " submitted\n";
  const int code = WatchSweep(ctx, sweep.id(), ctx.terminal);
  GetSweep(ctx, sweep.id());
  return code;
}

}  // namespace

int RunLocal(const LocalOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::string> spec_text = ReadSpecFile(options.spec_file);
  if (!spec_text.ok()) {
    err << "error: " << spec_text.status().message() << "\n";
    return 2;
  }
  if (options.nodes < 1 || options.nodes > 64) {
    err << "error: --nodes: must be 1-64, got " << options.nodes << "\n";
    return 2;
  }
  v1::NodeInventory host = agent::DetectHostInventory();
  int64_t cpus = std::max<int64_t>(2000, host.milli_cpus() / options.nodes / 1000 * 1000);
  int64_t memory = host.memory_bytes() / options.nodes;
  if (!options.node_cpus.empty()) {
    auto v = common::ParseMilliCpus(options.node_cpus);
    if (!v.ok()) {
      err << "error: --node-cpus: " << v.status().message() << "\n";
      return 2;
    }
    cpus = *v;
  }
  if (!options.node_memory.empty()) {
    auto v = common::ParseBytes(options.node_memory);
    if (!v.ok()) {
      err << "error: --node-memory: " << v.status().message() << "\n";
      return 2;
    }
    memory = *v;
  }

  if (!options.node_topology.empty() && options.node_gpus != 0) {
    err << "error: --node-topology and --node-gpus: give one (the topology has its own GPUs)\n";
    return 2;
  }
  v1::NodeInventory node_inventory;
  if (options.node_topology.empty()) {
    node_inventory = agent::SimulatedInventory(cpus, memory, options.node_gpus, "simulated-gpu",
                                               int64_t{16} << 30);
  } else {
    gpu::InventoryOptions detect;
    detect.topology_xml = options.node_topology;
    absl::StatusOr<v1::NodeInventory> described = gpu::DetectInventory(detect);
    if (!described.ok()) {
      err << "error: --node-topology: " << described.status().message() << "\n";
      return 2;
    }
    node_inventory = *std::move(described);
    if (!options.node_cpus.empty()) node_inventory.set_milli_cpus(cpus);
    if (!options.node_memory.empty()) node_inventory.set_memory_bytes(memory);
    cpus = node_inventory.milli_cpus();
  }

  coordinator::ServerOptions server_options;
  server_options.listen = options.listen;
  server_options.state_dir = options.state_dir;
  auto server = coordinator::CoordinatorServer::Start(server_options);
  if (!server.ok()) {
    err << "error: " << server.status().message() << "\n";
    return 1;
  }
  const std::string address = (*server)->address();
  std::vector<std::unique_ptr<agent::Agent>> agents;
  for (int i = 0; i < options.nodes; ++i) {
    agent::AgentOptions a;
    a.coordinator = address;
    a.name = absl::StrCat("local-", i);
    a.address = "127.0.0.1";
    a.state_dir = (std::filesystem::path(options.state_dir) / "agents" / a.name).string();
    a.inventory = node_inventory;
    // One user on their own machine: ranks run as that user with their
    // whole environment (virtualenv, CUDA paths), as torchrun's do, not as
    // a node's workload user with a clean one.
    a.workload.run_as_agent_user = true;
    a.environment.inherit_all = true;
    agents.push_back(std::make_unique<agent::Agent>(std::move(a)));
    agents.back()->Start();
  }
  out << "gangway local: coordinator " << address << ", state " << options.state_dir << ", "
      << options.nodes << " nodes of " << cpus / 1000.0 << " cpus\n";

  Context ctx;
  ctx.coordinator = address;
  ctx.out = &out;
  ctx.err = &err;
  (void)Connect(ctx);
  int code = 1;
  if (!WaitForNodes(*ctx.stub, options.nodes, std::chrono::seconds(10))) {
    err << "error: the local nodes did not register within 10 s\n";
    return 1;
  }
  absl::StatusOr<std::string> kind = common::SpecKind(*spec_text);
  if (!kind.ok()) {
    err << options.spec_file << ": " << kind.status().message() << "\n";
    return 2;
  }
  if (*kind == "Sweep") {
    ctx.terminal = options.terminal;
    code = RunLocalSweep(ctx, options, *spec_text);
    agents.clear();
    (*server)->Shutdown();
    return code;
  }
  v1::SubmitJobRequest req;
  req.set_yaml(*spec_text);
  v1::Job job;
  grpc::ClientContext rpc;
  grpc::Status s = ctx.stub->SubmitJob(&rpc, req, &job);
  if (!s.ok()) {
    err << options.spec_file << ": " << s.error_message() << "\n";
    return 2;
  }
  out << "job/" << job.id() << " submitted\n";

  // Ctrl-C cancels the job; the watch then ends and everything shuts down.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &set, &old);
  std::atomic<bool> done{false};
  std::thread canceller([&] {
    while (!done) {
      timespec wait{0, 100'000'000};
      if (sigtimedwait(&set, nullptr, &wait) > 0) {
        Context c2;
        c2.coordinator = address;
        std::ostringstream sink;
        c2.out = &sink;
        c2.err = &err;
        (void)Connect(c2);
        err << "\ncancelling job/" << job.id() << "\n";
        Cancel(c2, job.id());
      }
    }
  });
  code = Watch(ctx, job.id());
  done = true;
  canceller.join();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);

  if (options.show_logs) {
    grpc::ClientContext get;
    v1::GetJobRequest get_req;
    get_req.set_id(job.id());
    if (ctx.stub->GetJob(&get, get_req, &job).ok()) {
      for (const auto& rank : job.ranks()) {
        out << "--- rank " << rank.rank() << " on " << rank.node() << " ---\n";
        Logs(ctx, job.id(), rank.rank(), 0, false);
      }
    }
  }
  agents.clear();
  (*server)->Shutdown();
  return code;
}

}  // namespace gangway::cli
