#include "common/rank_env.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gangway::common {
namespace {

std::string Substitute(const std::string& text, const v1::JobSpec& spec) {
  if (spec.params().empty() || text.find("${trial.") == std::string::npos) return text;
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = text.find("${trial.", pos);
    if (start == std::string::npos) break;
    size_t end = text.find('}', start);
    if (end == std::string::npos) break;
    out.append(text, pos, start - pos);
    std::string name = text.substr(start + 8, end - start - 8);
    auto it = spec.params().find(name);
    if (it != spec.params().end()) {
      out += it->second;
    } else {
      out.append(text, start, end - start + 1);  // unknown names stay visible
    }
    pos = end + 1;
  }
  out.append(text, pos);
  return out;
}

std::string EnvName(const std::string& param) {
  std::string out;
  for (char c : param) {
    out += std::isalnum(static_cast<unsigned char>(c)) ? std::toupper(c) : '_';
  }
  return out;
}

}  // namespace

EnvList GangEnvironment(const v1::Job& job, const std::string& rendezvous_endpoint) {
  const v1::JobSpec& spec = job.spec();
  EnvList env;
  env.reserve(spec.env_size() + spec.params_size() + 20);
  // Sorted so the environment (and its hash, its log line) is deterministic.
  std::vector<std::pair<std::string, std::string>> user(spec.env().begin(), spec.env().end());
  std::sort(user.begin(), user.end());
  for (auto& kv : user) env.emplace_back(kv.first, Substitute(kv.second, spec));

  const int world = spec.replicas() * spec.procs_per_node();
  const std::string port = absl::StrCat(job.master_port());
  auto add = [&env](std::string k, std::string v) { env.emplace_back(std::move(k), std::move(v)); };
  add("MASTER_ADDR", job.master_addr());
  add("MASTER_PORT", port);
  add("WORLD_SIZE", absl::StrCat(world));
  add("LOCAL_WORLD_SIZE", absl::StrCat(spec.procs_per_node()));
  add("NNODES", absl::StrCat(spec.replicas()));
  add("PET_NNODES", absl::StrCat(spec.replicas()));
  add("PET_NPROC_PER_NODE", absl::StrCat(spec.procs_per_node()));
  add("PET_MASTER_ADDR", job.master_addr());
  add("PET_MASTER_PORT", port);
  // The indices are the inventory's, which is in PCI bus order; CUDA's own
  // default order (fastest first) may differ.
  add("CUDA_DEVICE_ORDER", "PCI_BUS_ID");
  int64_t threads = spec.resources().milli_cpus() / 1000;
  add("OMP_NUM_THREADS", absl::StrCat(std::max<int64_t>(1, threads)));
  add("GANGWAY_JOB", job.id());
  add("GANGWAY_TRIAL", spec.trial());
  add("GANGWAY_ATTEMPT", absl::StrCat(job.attempt()));
  add("GANGWAY_RDZV", rendezvous_endpoint);
  std::vector<std::pair<std::string, std::string>> params(spec.params().begin(),
                                                          spec.params().end());
  std::sort(params.begin(), params.end());
  for (auto& kv : params) add("GANGWAY_PARAM_" + EnvName(kv.first), kv.second);
  return env;
}

EnvList RankOnlyEnvironment(const v1::Job& /*job*/, const v1::RankStatus& rank) {
  EnvList env;
  auto add = [&env](std::string k, std::string v) { env.emplace_back(std::move(k), std::move(v)); };
  add("RANK", absl::StrCat(rank.rank()));
  add("LOCAL_RANK", absl::StrCat(rank.local_rank()));
  add("GROUP_RANK", absl::StrCat(rank.replica()));
  add("NODE_RANK", absl::StrCat(rank.replica()));
  add("PET_NODE_RANK", absl::StrCat(rank.replica()));
  // The GPUs a rank may see; an empty value hides every GPU from a CPU rank.
  add("CUDA_VISIBLE_DEVICES", absl::StrJoin(rank.gpu_indices(), ","));
  return env;
}

EnvList RankEnvironment(const v1::Job& job, const v1::RankStatus& rank,
                        const std::string& rendezvous_endpoint) {
  EnvList env = GangEnvironment(job, rendezvous_endpoint);
  EnvList own = RankOnlyEnvironment(job, rank);
  env.insert(env.end(), std::make_move_iterator(own.begin()), std::make_move_iterator(own.end()));
  return env;
}

EnvList LaunchEnvironment(const v1::LaunchGang& launch, const v1::RankLaunch& rank) {
  std::map<std::string, std::string> merged(launch.env().begin(), launch.env().end());
  for (const auto& [k, v] : rank.env()) merged[k] = v;
  return EnvList(merged.begin(), merged.end());
}

std::vector<std::string> LaunchArgv(const v1::LaunchGang& launch, const v1::RankLaunch& rank) {
  const auto& argv = rank.argv().empty() ? launch.argv() : rank.argv();
  return {argv.begin(), argv.end()};
}

void SetMasterPort(EnvList& env, int port) {
  for (auto& kv : env) {
    if (kv.first == "MASTER_PORT" || kv.first == "PET_MASTER_PORT") kv.second = absl::StrCat(port);
  }
}

std::vector<std::string> RankArgv(const v1::JobSpec& spec) {
  std::vector<std::string> argv;
  argv.reserve(spec.command_size() + spec.args_size());
  for (const auto& c : spec.command()) argv.push_back(Substitute(c, spec));
  for (const auto& a : spec.args()) argv.push_back(Substitute(a, spec));
  return argv;
}

}  // namespace gangway::common
