// Admission: a submitted job's spec parsed, bounded and validated, and
// judged against what the registered nodes can hold, before it is stored.
// Part of Core (core.h); split from core.cc to keep each file to one concern.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/spec.h"
#include "coordinator/core.h"
#include "coordinator/scheduler.h"

namespace gangway::coordinator {
namespace {

std::string Quantity(int64_t milli_cpus, int64_t memory, int32_t gpus) {
  return absl::StrCat("{cpus: ", milli_cpus / 1000.0, ", memory: ", memory, ", gpus: ", gpus, "}");
}

// A replica fits some node, but can all of them fit at once? The scheduler's
// own verdict on the known nodes as if empty, so submit and scheduling
// agree on "never fits" (a job of 1024 x 256 ranks on 3 nodes waited
// forever).
absl::Status CheckClusterHolds(const std::vector<const v1::Node*>& known, const v1::JobSpec& spec,
                               const std::string& where) {
  ClusterSnapshot empty;
  empty.nodes.reserve(known.size());
  for (const v1::Node* node : known) {
    const auto& inv = node->inventory();
    NodeView v;
    v.name = node->name();
    v.total_milli_cpus = v.free_milli_cpus = inv.milli_cpus();
    v.total_memory_bytes = v.free_memory_bytes = inv.memory_bytes();
    v.total_gpus = std::min(inv.gpus_size(), 64);
    v.free_gpu_mask = v.total_gpus == 64 ? ~uint64_t{0} : (uint64_t{1} << v.total_gpus) - 1;
    empty.nodes.push_back(std::move(v));
  }
  const PendingJob job{"submitted",
                       0,
                       0,
                       spec.replicas(),
                       spec.procs_per_node(),
                       spec.resources().milli_cpus(),
                       spec.resources().memory_bytes(),
                       spec.resources().gpus(),
                       false};
  PlacementOptions options;
  options.topology_scoring = false;  // only whether it fits matters here
  const PlacementResult result = Place(empty, std::span(&job, 1), options);
  if (result.decisions.empty() || result.decisions[0].verdict != Verdict::kNeverFits) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      where, ": the ", known.size(), known.size() == 1 ? " registered node" : " registered nodes",
      " can never hold this job: ", result.decisions[0].reason));
}

}  // namespace

absl::Status Core::CheckCapacity(const common::ParsedJobSpec* parsed,
                                 const v1::JobSpec& spec) const {
  // Only nodes that registered since this coordinator started say what the
  // cluster holds: after a restart, the nodes named by recovered jobs are
  // stand-ins without an inventory until they register again, and judging a
  // job by them refused valid jobs ("the largest node has 0 cpus"). With no
  // node known the job is accepted and waits Pending (nodes may still join).
  std::vector<const v1::Node*> known;
  for (const auto& [name, rec] : nodes_) {
    if (rec.node.has_inventory()) known.push_back(&rec.node);
  }
  if (known.empty()) return absl::OkStatus();
  const int64_t p = spec.procs_per_node();
  const int64_t cpus = p * spec.resources().milli_cpus();
  const int64_t mem = p * spec.resources().memory_bytes();
  const int64_t gpus = p * spec.resources().gpus();
  int64_t max_cpus = 0, max_mem = 0, max_gpus = 0;
  bool one_fits = false;
  for (const v1::Node* node : known) {
    const auto& inv = node->inventory();
    if (inv.milli_cpus() >= cpus && inv.memory_bytes() >= mem && inv.gpus_size() >= gpus) {
      one_fits = true;
      break;
    }
    max_cpus = std::max(max_cpus, inv.milli_cpus());
    max_mem = std::max(max_mem, inv.memory_bytes());
    max_gpus = std::max<int64_t>(max_gpus, inv.gpus_size());
  }
  auto where = [&](const std::string& path) { return parsed ? parsed->Where(path) : path; };
  if (one_fits) return CheckClusterHolds(known, spec, where("replicas"));
  std::string what;
  if (gpus > max_gpus) {
    what =
        absl::StrCat(where("resources.gpus"), ": a replica needs ", gpus, " GPUs (procsPerNode ", p,
                     " x gpus ", spec.resources().gpus(), ") but the largest node has ", max_gpus);
  } else if (cpus > max_cpus) {
    what =
        absl::StrCat(where("resources.cpus"), ": a replica needs ", cpus / 1000.0,
                     " cpus (procsPerNode ", p, " x cpus ", spec.resources().milli_cpus() / 1000.0,
                     ") but the largest node has ", max_cpus / 1000.0);
  } else if (mem > max_mem) {
    what = absl::StrCat(where("resources.memory"), ": a replica needs ", mem,
                        " bytes of memory (procsPerNode ", p, " x memory ",
                        spec.resources().memory_bytes(), ") but the largest node has ", max_mem);
  } else {
    what =
        absl::StrCat(where("resources"), ": no node has ", Quantity(cpus, mem, gpus), " at once");
  }
  return absl::InvalidArgumentError(what);
}

void Core::Submit(const v1::SubmitJobRequest& request, JobCallback done, const Principal& who) {
  common::ParsedJobSpec parsed;
  const bool from_yaml = !request.yaml().empty();
  if (from_yaml) {
    if (request.yaml().size() > common::kMaxSpecBytes) {
      done(absl::ResourceExhaustedError(absl::StrCat(
          "spec is ", request.yaml().size(), " bytes; the limit is ", common::kMaxSpecBytes)));
      return;
    }
    absl::StatusOr<common::ParsedJobSpec> p = common::ParseJobSpec(request.yaml());
    if (!p.ok()) {
      done(p.status());
      return;
    }
    parsed = std::move(*p);
  } else {
    // A proto leaves unset what YAML defaults (replicas, procsPerNode,
    // restartPolicy): spec.h asks for the defaults before validation, else a
    // spec giving only name and command is refused for "replicas: 0".
    // A proto has no text to bound before parsing; bound what it holds, as
    // for YAML, so one job cannot crowd `list` past gRPC's message limit.
    if (const size_t bytes = request.spec().ByteSizeLong(); bytes > common::kMaxSpecBytes) {
      done(absl::ResourceExhaustedError(absl::StrCat(
          "spec is ", bytes, " bytes serialized; the limit is ", common::kMaxSpecBytes)));
      return;
    }
    parsed.spec = request.spec();
    common::ApplyJobSpecDefaults(&parsed.spec);
    if (absl::Status s = common::ValidateJobSpec(parsed.spec); !s.ok()) {
      done(s);
      return;
    }
  }
  if (absl::Status s = CheckCapacity(from_yaml ? &parsed : nullptr, parsed.spec); !s.ok()) {
    done(s);
    return;
  }
  const std::string id = AddJob(std::move(parsed.spec), "", who.ToString());
  after_write_.push_back([this, id, done = std::move(done)](bool stored) {
    if (stored) return done(jobs_.at(id));
    // Refuse what could not be stored, so nothing acknowledged is lost.
    pending_.erase(id);
    dirty_.erase(id);
    jobs_.erase(id);
    done(absl::UnavailableError("the store could not save the job; it was not accepted"));
  });
}

}  // namespace gangway::coordinator
