// Job spec loading: YAML text to a validated gangway.v1.JobSpec.
//
// Every error is INVALID_ARGUMENT and names the field path and the YAML line,
// e.g. `line 7: resources.gpus: must be an integer, got "two"`. Unknown fields
// are errors (a typo must not silently change a job).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::common {

// Largest spec text accepted, in bytes; also the most a spec sent as a
// proto (SubmitJobRequest.spec, SubmitSweepRequest.spec) may serialize to,
// so a job listed with others stays well under gRPC's 4 MiB message limit.
inline constexpr size_t kMaxSpecBytes = 1 << 20;

// What a process reserves when the spec gives no `resources.cpus`: one CPU,
// as Slurm's default of one CPU per task, so jobs that say nothing still
// count against the nodes they run on. Memory defaults to 0 (nothing
// reserved, the node's memory is not counted) and GPUs to 0.
inline constexpr int64_t kDefaultMilliCpus = 1000;

// The most one node's launch message may take: gRPC's default 4 MiB
// message limit, which the agent's stream has. A larger launch never
// arrives, and the node's session fails on every retry. Checked at submit
// with an estimate. The command line and env go once per node
// (LaunchGang), not once per rank.
inline constexpr size_t kMaxLaunchBytes = 4 << 20;
// What the estimate adds once for the variables gangway sets for every
// rank (WORLD_SIZE, MASTER_ADDR, the job token, ...), per rank for its own
// (RANK, CUDA_VISIBLE_DEVICES with up to 64 GPUs, ...), and per string
// for framing.
inline constexpr size_t kGangEnvAllowance = 4 << 10;
inline constexpr size_t kRankEnvAllowance = 512;
inline constexpr size_t kPerStringOverhead = 8;

// The estimated bytes of one node's launch message for `spec`.
size_t EstimateLaunchBytes(const v1::JobSpec& spec);

struct ParsedJobSpec {
  v1::JobSpec spec;
  // Field path ("resources.gpus", "command") to its 1-based YAML line, for
  // errors found later (for example against the cluster's capacity).
  std::map<std::string, int> lines;

  // "line N: path" when the line is known, else "path".
  std::string Where(const std::string& path) const;
};

absl::StatusOr<ParsedJobSpec> ParseJobSpec(std::string_view yaml);

// Checks a spec that did not come from YAML (e.g. a proto sent over gRPC):
// the same rules as ParseJobSpec, errors name the field path.
absl::Status ValidateJobSpec(const v1::JobSpec& spec);

// Fills what a proto leaves unset and YAML would have defaulted: replicas and
// procsPerNode 0 -> 1, restartPolicy UNSPECIFIED -> Never, and with no
// resources message at all, cpus -> kDefaultMilliCpus (a resources message
// is taken as given: inside it, 0 cpus cannot be told from unset).
// backoffLimit is left alone: in a proto, 0 (no retries) cannot be told from
// unset. Call before ValidateJobSpec on specs that did not come from
// ParseJobSpec.
void ApplyJobSpecDefaults(v1::JobSpec* spec);

// Which kind of spec a YAML document holds, from its top-level `kind` field
// alone: "Job" (also when there is no kind) or "Sweep". INVALID_ARGUMENT, with
// a line, for malformed YAML, more than one document, a document that is not
// a mapping, or another kind. For the CLI and the server to pick
// ParseJobSpec or ParseSweepSpec (coordinator/sweep_spec.h).
absl::StatusOr<std::string> SpecKind(std::string_view yaml);

// Kubernetes-style quantities: "500m" or 0.5 cpus to milli-cpus; "512Mi",
// "2G", "1024" to bytes.
absl::StatusOr<int64_t> ParseMilliCpus(std::string_view text);
absl::StatusOr<int64_t> ParseBytes(std::string_view text);

}  // namespace gangway::common
