// How the CLI shows jobs and nodes: aligned tables for people, JSON or YAML
// (-o json|yaml) for scripts.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gangway/v1/gangway.pb.h"
#include "google/protobuf/message.h"

namespace gangway::cli {

enum class Output { kTable, kWide, kJson, kYaml, kName };

// "", "table", "wide", "json", "yaml", "name".
absl::StatusOr<Output> ParseOutput(const std::string& text);

std::string ToJson(const google::protobuf::Message& msg);
std::string ToYaml(const google::protobuf::Message& msg);

// Rows of cells to columns padded to the widest cell.
std::string Table(const std::vector<std::vector<std::string>>& rows);

std::string JobsTable(const std::vector<v1::Job>& jobs, int64_t now_ms);
// One job with its ranks.
std::string JobDetail(const v1::Job& job, int64_t now_ms);
// A node's memory as "used/total": in Mi below 10 GiB of total ("512/4096Mi"),
// else in Gi to a tenth ("12.5/1024Gi").
std::string MemoryUsage(int64_t used, int64_t total);
// The nodes; `wide` adds a table of their GPUs (GpuRow).
std::string NodesTable(const std::vector<v1::Node>& nodes, bool wide);
// One GPU of `node` for `nodes -o wide`: NODE, GPU, MODEL, MEMORY, NUMA,
// CPUS (near it), PCI, SWITCH, NVLINK (peer x links, e.g. "1x12"), P2P
// (peers reached over PCIe with CUDA's performance rank, lower is faster,
// e.g. "2:r1"), USED; "-" where unknown or none.
std::vector<std::string> GpuRow(const v1::Node& node, const v1::GpuInfo& gpu);
// "12s", "3m4s", "2h5m".
std::string Age(int64_t ms);
std::string StateName(v1::JobState state);

}  // namespace gangway::cli
