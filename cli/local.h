// `gangway local SPEC`: a coordinator, an embedded store and N simulated
// nodes in this one process; submits the spec (a job or a sweep), shows
// progress and every rank's output (a sweep: its trials and the best one),
// and exits with the verdict.
#pragma once

#include <iosfwd>
#include <string>

namespace gangway::cli {

struct LocalOptions {
  std::string spec_file;
  int nodes = 2;
  std::string node_cpus;    // default: max(2, host cores / nodes)
  std::string node_memory;  // default: host memory / nodes
  int node_gpus = 0;        // simulated GPUs per node
  // An hwloc XML topology (with its .links) every node describes instead:
  // its GPUs, NUMA nodes, switches and links, and its cores and memory
  // unless node_cpus / node_memory say otherwise. Excludes node_gpus.
  std::string node_topology;
  std::string state_dir = ".gangway/local";
  std::string listen = "127.0.0.1:0";
  bool show_logs = true;
  bool terminal = false;  // stdout is a terminal: live progress for sweeps
};

// 0 when the job succeeded, 1 when it failed or was cancelled, 2 on bad input.
int RunLocal(const LocalOptions& options, std::ostream& out, std::ostream& err);

}  // namespace gangway::cli
