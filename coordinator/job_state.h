// The job lifecycle: one enum (gangway.v1.JobState), one transition check,
// and the restart-policy decision. Pure functions.
//
//   Pending ──▶ Scheduled ──▶ Running ──────────────▶ Succeeded
//    │  ▲           │            │
//    │  │           ▼            ▼        (a rank failed, the node was lost,
//    │  └────── Restarting ◀─────┤         and the policy retries)
//    │                           ▼
//    │                       Stopping ──▶ Failed | Cancelled
//    └──────────────────────────────────▶ Failed | Cancelled   (never launched)
//
// Restarting and Stopping exist because stopping a gang is a side effect
// that takes time: every rank on every node must be confirmed gone before
// its resources are freed or the gang is launched again.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::coordinator {

bool IsTerminal(v1::JobState state);
// True while the job holds resources on nodes.
bool HoldsResources(v1::JobState state);
const char* StateName(v1::JobState state);

// OK when `from -> to` is an edge of the diagram; FAILED_PRECONDITION else.
absl::Status CheckTransition(v1::JobState from, v1::JobState to);

enum class FailureAction { kRestart, kFail };

struct FailureDecision {
  FailureAction action = FailureAction::kFail;
  std::string reason;
};

// What the restart policy says after a rank ended with `exit_code` (-1 when
// its node was lost and the code is unknown, which counts as retryable, like
// a signal) given the restarts already made.
FailureDecision DecideOnFailure(const v1::JobSpec& spec, int exit_code, int restarts_so_far);

// How long the `restarts`-th restart (1 = the first) waits before the gang
// is placed again: the first not at all (a one-off failure costs nothing),
// then base_ms, 2 * base_ms, 4 * base_ms ... at most max_ms.
int64_t RestartBackoffMs(int32_t restarts, int64_t base_ms, int64_t max_ms);

}  // namespace gangway::coordinator
