#include "coordinator/job_state.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace gangway::coordinator {

using v1::JobState;

bool IsTerminal(JobState state) {
  switch (state) {
    case v1::JOB_STATE_SUCCEEDED:
    case v1::JOB_STATE_FAILED:
    case v1::JOB_STATE_CANCELLED:
      return true;
    case v1::JOB_STATE_UNSPECIFIED:
    case v1::JOB_STATE_PENDING:
    case v1::JOB_STATE_SCHEDULED:
    case v1::JOB_STATE_RUNNING:
    case v1::JOB_STATE_RESTARTING:
    case v1::JOB_STATE_STOPPING:
    case v1::JobState_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::JobState_INT_MAX_SENTINEL_DO_NOT_USE_:
      return false;
  }
  return false;
}

bool HoldsResources(JobState state) {
  switch (state) {
    case v1::JOB_STATE_SCHEDULED:
    case v1::JOB_STATE_RUNNING:
    case v1::JOB_STATE_RESTARTING:
    case v1::JOB_STATE_STOPPING:
      return true;
    case v1::JOB_STATE_UNSPECIFIED:
    case v1::JOB_STATE_PENDING:
    case v1::JOB_STATE_SUCCEEDED:
    case v1::JOB_STATE_FAILED:
    case v1::JOB_STATE_CANCELLED:
    case v1::JobState_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::JobState_INT_MAX_SENTINEL_DO_NOT_USE_:
      return false;
  }
  return false;
}

const char* StateName(JobState state) {
  switch (state) {
    case v1::JOB_STATE_PENDING:
      return "Pending";
    case v1::JOB_STATE_SCHEDULED:
      return "Scheduled";
    case v1::JOB_STATE_RUNNING:
      return "Running";
    case v1::JOB_STATE_RESTARTING:
      return "Restarting";
    case v1::JOB_STATE_STOPPING:
      return "Stopping";
    case v1::JOB_STATE_SUCCEEDED:
      return "Succeeded";
    case v1::JOB_STATE_FAILED:
      return "Failed";
    case v1::JOB_STATE_CANCELLED:
      return "Cancelled";
    case v1::JOB_STATE_UNSPECIFIED:
    case v1::JobState_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::JobState_INT_MAX_SENTINEL_DO_NOT_USE_:
      return "Unknown";
  }
  return "Unknown";
}

absl::Status CheckTransition(JobState from, JobState to) {
  bool ok = false;
  switch (from) {
    case v1::JOB_STATE_UNSPECIFIED:
      ok = to == v1::JOB_STATE_PENDING;
      break;
    case v1::JOB_STATE_PENDING:
      ok = to == v1::JOB_STATE_SCHEDULED || to == v1::JOB_STATE_FAILED ||
           to == v1::JOB_STATE_CANCELLED;
      break;
    case v1::JOB_STATE_SCHEDULED:
      ok = to == v1::JOB_STATE_RUNNING || to == v1::JOB_STATE_RESTARTING ||
           to == v1::JOB_STATE_STOPPING;
      break;
    case v1::JOB_STATE_RUNNING:
      ok = to == v1::JOB_STATE_SUCCEEDED || to == v1::JOB_STATE_RESTARTING ||
           to == v1::JOB_STATE_STOPPING;
      break;
    case v1::JOB_STATE_RESTARTING:
      // A cancel or a deadline during a restart turns it into a stop.
      ok = to == v1::JOB_STATE_PENDING || to == v1::JOB_STATE_STOPPING;
      break;
    case v1::JOB_STATE_STOPPING:
      ok = to == v1::JOB_STATE_FAILED || to == v1::JOB_STATE_CANCELLED;
      break;
    case v1::JOB_STATE_SUCCEEDED:
    case v1::JOB_STATE_FAILED:
    case v1::JOB_STATE_CANCELLED:
    case v1::JobState_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::JobState_INT_MAX_SENTINEL_DO_NOT_USE_:
      ok = false;
      break;
  }
  if (ok) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("job cannot go from ", StateName(from), " to ", StateName(to)));
}

FailureDecision DecideOnFailure(const v1::JobSpec& spec, int exit_code, int restarts_so_far) {
  const std::string what =
      exit_code < 0 ? std::string("its node was lost") : absl::StrCat("exit code ", exit_code);
  bool retryable = false;
  switch (spec.restart_policy()) {
    case v1::RESTART_POLICY_ON_FAILURE:
      retryable = true;
      break;
    case v1::RESTART_POLICY_EXIT_CODE:
      // Kubeflow's rule: 1-127 are the program's own verdict (permanent),
      // 128-255 mean a signal killed it (retryable), as does a lost node.
      retryable = exit_code < 0 || exit_code >= 128;
      break;
    case v1::RESTART_POLICY_NEVER:
    case v1::RESTART_POLICY_UNSPECIFIED:
    case v1::RestartPolicy_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::RestartPolicy_INT_MAX_SENTINEL_DO_NOT_USE_:
      retryable = false;
      break;
  }
  if (!retryable) {
    return {FailureAction::kFail, absl::StrCat("a rank failed (", what, ")")};
  }
  if (restarts_so_far >= spec.backoff_limit()) {
    return {FailureAction::kFail, absl::StrCat("BackoffLimitExceeded: a rank failed (", what,
                                               ") after ", restarts_so_far, " restarts")};
  }
  return {FailureAction::kRestart, absl::StrCat("restarting: a rank failed (", what, "), restart ",
                                                restarts_so_far + 1, " of ", spec.backoff_limit())};
}

int64_t RestartBackoffMs(int32_t restarts, int64_t base_ms, int64_t max_ms) {
  if (restarts <= 1 || base_ms <= 0) return 0;
  int64_t delay = base_ms;
  for (int32_t i = 2; i < restarts && delay < max_ms; ++i) delay *= 2;
  return std::min(delay, max_ms);
}

}  // namespace gangway::coordinator
