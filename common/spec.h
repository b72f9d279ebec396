// Job spec loading: YAML text to a validated gangway.v1.JobSpec.
//
// Every error is INVALID_ARGUMENT and names the field path and the YAML line,
// e.g. `line 7: resources.gpus: must be an integer, got "two"`. Unknown fields
// are errors (a typo must not silently change a job).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::common {

// Largest spec text accepted, in bytes.
inline constexpr size_t kMaxSpecBytes = 1 << 20;

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
// procsPerNode 0 -> 1, restartPolicy UNSPECIFIED -> Never. backoffLimit is left
// alone: in a proto, 0 (no retries) cannot be told from unset. Call before
// ValidateJobSpec on specs that did not come from ParseJobSpec.
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
