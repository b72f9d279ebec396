#include "cli/format.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "coordinator/job_state.h"
#include "google/protobuf/util/json_util.h"

namespace gangway::cli {

absl::StatusOr<Output> ParseOutput(const std::string& text) {
  if (text.empty() || text == "table") return Output::kTable;
  if (text == "wide") return Output::kWide;
  if (text == "json") return Output::kJson;
  if (text == "yaml") return Output::kYaml;
  if (text == "name") return Output::kName;
  return absl::InvalidArgumentError(
      absl::StrCat("-o: unknown output format '", text, "' (use table, wide, json, yaml or name)"));
}

std::string ToJson(const google::protobuf::Message& msg) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(msg, &out, options);
  return out;
}

std::string ToYaml(const google::protobuf::Message& msg) {
  // JSON is YAML; yaml-cpp re-emits it in block style.
  YAML::Emitter out;
  out << YAML::Load(ToJson(msg));
  return std::string(out.c_str()) + "\n";
}

std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 3, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string Age(int64_t ms) {
  if (ms < 0) ms = 0;
  int64_t s = ms / 1000;
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrCat(s / 60, "m", s % 60, "s");
  if (s < 86400) return absl::StrCat(s / 3600, "h", (s % 3600) / 60, "m");
  return absl::StrCat(s / 86400, "d", (s % 86400) / 3600, "h");
}

std::string StateName(v1::JobState state) { return std::string(coordinator::StateName(state)); }

namespace {

std::string RanksSummary(const v1::Job& job) {
  int running = 0;
  for (const auto& r : job.ranks()) running += r.state() == v1::RANK_STATE_RUNNING;
  const int total = job.spec().replicas() * job.spec().procs_per_node();
  return absl::StrCat(running, "/", total);
}

std::string RankState(const v1::RankStatus& r) {
  switch (r.state()) {
    case v1::RANK_STATE_LAUNCHING:
      return "Launching";
    case v1::RANK_STATE_RUNNING:
      return "Running";
    case v1::RANK_STATE_EXITED:
      return r.exit_code() < 0 ? "NotStarted" : absl::StrCat("Exited(", r.exit_code(), ")");
    case v1::RANK_STATE_LOST:
      return "Lost";
    default:
      return "Unknown";
  }
}

}  // namespace

std::string JobsTable(const std::vector<v1::Job>& jobs, int64_t now_ms) {
  std::vector<std::vector<std::string>> rows{
      {"ID", "STATE", "RANKS", "ATTEMPT", "RESTARTS", "AGE", "REASON"}};
  for (const auto& j : jobs) {
    rows.push_back({j.id(), StateName(j.state()), RanksSummary(j), absl::StrCat(j.attempt()),
                    absl::StrCat(j.restarts()), Age(now_ms - j.create_time_ms()), j.reason()});
  }
  return Table(rows);
}

std::string JobDetail(const v1::Job& job, int64_t now_ms) {
  std::string out = JobsTable({job}, now_ms);
  out += absl::StrCat("OWNER ", job.owner().empty() ? "-" : job.owner(), "\n");
  if (job.ranks_size() == 0) return out;
  out += absl::StrCat("\nMASTER ", job.master_addr(), ":", job.master_port(), "\n");
  std::vector<std::vector<std::string>> rows{
      {"RANK", "GROUP", "LOCAL", "NODE", "GPUS", "STATE", "PID"}};
  for (const auto& r : job.ranks()) {
    rows.push_back({absl::StrCat(r.rank()), absl::StrCat(r.replica()), absl::StrCat(r.local_rank()),
                    r.node(), r.gpu_indices().empty() ? "-" : absl::StrJoin(r.gpu_indices(), ","),
                    RankState(r), r.pid() ? absl::StrCat(r.pid()) : "-"});
  }
  return out + Table(rows);
}

std::string MemoryUsage(int64_t used, int64_t total) {
  constexpr int64_t kGi = int64_t{1} << 30;
  if (total < 10 * kGi) return absl::StrCat(used >> 20, "/", total >> 20, "Mi");
  auto gi = [](int64_t bytes) {
    return absl::StrFormat("%g", std::round(static_cast<double>(bytes) / kGi * 10) / 10);
  };
  return absl::StrCat(gi(used), "/", gi(total), "Gi");
}

std::vector<std::string> GpuRow(const v1::Node& node, const v1::GpuInfo& g) {
  std::vector<std::string> links;
  std::vector<std::string> p2p;
  for (int j = 0; j < g.nvlinks_size(); ++j) {
    if (g.nvlinks(j) > 0) links.push_back(absl::StrCat(j, "x", g.nvlinks(j)));
  }
  for (int j = 0; j < g.peer_access_size(); ++j) {
    if (!g.peer_access(j) || (j < g.nvlinks_size() && g.nvlinks(j) > 0)) continue;
    p2p.push_back(j < g.peer_performance_rank_size()
                      ? absl::StrCat(j, ":r", g.peer_performance_rank(j))
                      : absl::StrCat(j));
  }
  auto or_dash = [](std::string text) { return text.empty() ? std::string("-") : text; };
  const bool used = std::find(node.allocated_gpus().begin(), node.allocated_gpus().end(),
                              g.index()) != node.allocated_gpus().end();
  return {node.name(),
          absl::StrCat(g.index()),
          or_dash(g.model()),
          g.memory_bytes() > 0 ? absl::StrCat(g.memory_bytes() >> 30, "Gi") : "-",
          g.numa_node() >= 0 ? absl::StrCat(g.numa_node()) : "-",
          or_dash(g.cpu_set()),
          or_dash(g.pci_bus_id()),
          or_dash(g.pci_switch()),
          or_dash(absl::StrJoin(links, ",")),
          or_dash(absl::StrJoin(p2p, ",")),
          used ? "yes" : "no"};
}

std::string NodesTable(const std::vector<v1::Node>& nodes, bool wide) {
  std::vector<std::vector<std::string>> rows{
      {"NAME", "STATE", "CPUS", "MEMORY", "GPUS", "RANKS", "ADDRESS"}};
  // Mixed versions stay visible during a rolling upgrade.
  if (wide) rows[0].push_back("VERSION");
  std::vector<std::vector<std::string>> gpu_rows{
      {"NODE", "GPU", "MODEL", "MEMORY", "NUMA", "CPUS", "PCI", "SWITCH", "NVLINK", "P2P", "USED"}};
  for (const auto& n : nodes) {
    const auto& inv = n.inventory();
    rows.push_back(
        {n.name(),
         absl::StrCat(n.state() == v1::NODE_STATE_READY ? "Ready" : "NotReady",
                      n.draining() ? ",Draining" : ""),
         absl::StrCat(n.allocated().milli_cpus() / 1000.0, "/", inv.milli_cpus() / 1000.0),
         MemoryUsage(n.allocated().memory_bytes(), inv.memory_bytes()),
         absl::StrCat(n.allocated().gpus(), "/", inv.gpus_size()), absl::StrCat(n.running_ranks()),
         n.address()});
    if (wide) rows.back().push_back(n.agent_version().empty() ? "-" : n.agent_version());
    for (const auto& g : inv.gpus()) gpu_rows.push_back(GpuRow(n, g));
  }
  std::string out = Table(rows);
  if (wide && gpu_rows.size() > 1) out += "\n" + Table(gpu_rows);
  return out;
}

}  // namespace gangway::cli
