#include "coordinator/job_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace gangway::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using v1::JobState;

// Every state of the enum, sentinels aside.
std::vector<JobState> AllStates() {
  std::vector<JobState> out;
  for (int s = v1::JobState_MIN; s <= v1::JobState_MAX; ++s) {
    if (v1::JobState_IsValid(s)) out.push_back(static_cast<JobState>(s));
  }
  return out;
}

// The edges of the diagram in job_state.h, written out independently.
const std::set<std::pair<JobState, JobState>>& AllowedEdges() {
  static const auto* edges = new std::set<std::pair<JobState, JobState>>{
      {v1::JOB_STATE_UNSPECIFIED, v1::JOB_STATE_PENDING},
      {v1::JOB_STATE_PENDING, v1::JOB_STATE_SCHEDULED},
      {v1::JOB_STATE_PENDING, v1::JOB_STATE_FAILED},
      {v1::JOB_STATE_PENDING, v1::JOB_STATE_CANCELLED},
      {v1::JOB_STATE_SCHEDULED, v1::JOB_STATE_RUNNING},
      {v1::JOB_STATE_SCHEDULED, v1::JOB_STATE_RESTARTING},
      {v1::JOB_STATE_SCHEDULED, v1::JOB_STATE_STOPPING},
      {v1::JOB_STATE_RUNNING, v1::JOB_STATE_SUCCEEDED},
      {v1::JOB_STATE_RUNNING, v1::JOB_STATE_RESTARTING},
      {v1::JOB_STATE_RUNNING, v1::JOB_STATE_STOPPING},
      {v1::JOB_STATE_RESTARTING, v1::JOB_STATE_PENDING},
      {v1::JOB_STATE_RESTARTING, v1::JOB_STATE_STOPPING},
      {v1::JOB_STATE_STOPPING, v1::JOB_STATE_FAILED},
      {v1::JOB_STATE_STOPPING, v1::JOB_STATE_CANCELLED},
  };
  return *edges;
}

TEST(JobStateTest, EnumHasTheNineStatesTheTestsAssume) { EXPECT_EQ(AllStates().size(), 9u); }

TEST(JobStateTest, CheckTransitionIsExhaustivelyTheDiagram) {
  int allowed = 0;
  for (JobState from : AllStates()) {
    for (JobState to : AllStates()) {
      absl::Status s = CheckTransition(from, to);
      const bool want = AllowedEdges().count({from, to}) > 0;
      SCOPED_TRACE(std::string(StateName(from)) + " -> " + StateName(to));
      if (want) {
        EXPECT_TRUE(s.ok()) << s;
        ++allowed;
      } else {
        EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
        EXPECT_THAT(s.message(), HasSubstr(StateName(from)));
        EXPECT_THAT(s.message(), HasSubstr(StateName(to)));
      }
    }
  }
  EXPECT_EQ(allowed, static_cast<int>(AllowedEdges().size()));
}

TEST(JobStateTest, NoStateGoesToItself) {
  for (JobState s : AllStates()) EXPECT_FALSE(CheckTransition(s, s).ok()) << StateName(s);
}

TEST(JobStateTest, TerminalStatesHaveNoWayOut) {
  for (JobState from : AllStates()) {
    if (!IsTerminal(from)) continue;
    for (JobState to : AllStates()) EXPECT_FALSE(CheckTransition(from, to).ok());
  }
}

TEST(JobStateTest, IsTerminal) {
  const std::set<JobState> terminal = {v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED,
                                       v1::JOB_STATE_CANCELLED};
  for (JobState s : AllStates()) EXPECT_EQ(IsTerminal(s), terminal.count(s) > 0) << StateName(s);
}

TEST(JobStateTest, HoldsResources) {
  const std::set<JobState> holding = {v1::JOB_STATE_SCHEDULED, v1::JOB_STATE_RUNNING,
                                      v1::JOB_STATE_RESTARTING, v1::JOB_STATE_STOPPING};
  for (JobState s : AllStates()) EXPECT_EQ(HoldsResources(s), holding.count(s) > 0) << StateName(s);
}

TEST(JobStateTest, StateNames) {
  EXPECT_STREQ(StateName(v1::JOB_STATE_UNSPECIFIED), "Unknown");
  EXPECT_STREQ(StateName(v1::JOB_STATE_PENDING), "Pending");
  EXPECT_STREQ(StateName(v1::JOB_STATE_SCHEDULED), "Scheduled");
  EXPECT_STREQ(StateName(v1::JOB_STATE_RUNNING), "Running");
  EXPECT_STREQ(StateName(v1::JOB_STATE_RESTARTING), "Restarting");
  EXPECT_STREQ(StateName(v1::JOB_STATE_STOPPING), "Stopping");
  EXPECT_STREQ(StateName(v1::JOB_STATE_SUCCEEDED), "Succeeded");
  EXPECT_STREQ(StateName(v1::JOB_STATE_FAILED), "Failed");
  EXPECT_STREQ(StateName(v1::JOB_STATE_CANCELLED), "Cancelled");
}

// ---------------------------------------------------------------------------
// DecideOnFailure

v1::JobSpec Spec(v1::RestartPolicy policy, int backoff_limit) {
  v1::JobSpec spec;
  spec.set_restart_policy(policy);
  spec.set_backoff_limit(backoff_limit);
  return spec;
}

constexpr int kLostNode = -1;

TEST(DecideOnFailureTest, NeverFailsOnEveryCode) {
  for (int code : {1, 127, 128, 137, 255, kLostNode}) {
    FailureDecision d = DecideOnFailure(Spec(v1::RESTART_POLICY_NEVER, 6), code, 0);
    EXPECT_EQ(d.action, FailureAction::kFail) << code;
    EXPECT_THAT(d.reason, Not(HasSubstr("BackoffLimitExceeded")));
  }
}

TEST(DecideOnFailureTest, UnspecifiedPolicyActsAsNever) {
  EXPECT_EQ(DecideOnFailure(Spec(v1::RESTART_POLICY_UNSPECIFIED, 6), 137, 0).action,
            FailureAction::kFail);
}

TEST(DecideOnFailureTest, OnFailureRestartsOnEveryCode) {
  for (int code : {1, 127, 128, 137, 255, kLostNode}) {
    FailureDecision d = DecideOnFailure(Spec(v1::RESTART_POLICY_ON_FAILURE, 6), code, 0);
    EXPECT_EQ(d.action, FailureAction::kRestart) << code;
    EXPECT_THAT(d.reason, HasSubstr("restart 1 of 6"));
  }
}

TEST(DecideOnFailureTest, ExitCodePolicySplitsProgramVerdictsFromSignals) {
  struct Case {
    int code;
    FailureAction want;
  };
  for (const Case& c :
       {Case{1, FailureAction::kFail}, Case{3, FailureAction::kFail},
        Case{127, FailureAction::kFail}, Case{128, FailureAction::kRestart},
        Case{137, FailureAction::kRestart}, Case{143, FailureAction::kRestart},
        Case{255, FailureAction::kRestart}, Case{kLostNode, FailureAction::kRestart}}) {
    EXPECT_EQ(DecideOnFailure(Spec(v1::RESTART_POLICY_EXIT_CODE, 6), c.code, 0).action, c.want)
        << c.code;
  }
}

TEST(DecideOnFailureTest, ReasonNamesTheCodeOrTheLostNode) {
  EXPECT_THAT(DecideOnFailure(Spec(v1::RESTART_POLICY_NEVER, 0), 3, 0).reason,
              HasSubstr("exit code 3"));
  EXPECT_THAT(DecideOnFailure(Spec(v1::RESTART_POLICY_NEVER, 0), kLostNode, 0).reason,
              HasSubstr("node was lost"));
}

TEST(DecideOnFailureTest, BackoffLimitCountsRestarts) {
  const v1::JobSpec spec = Spec(v1::RESTART_POLICY_ON_FAILURE, 3);
  for (int restarts = 0; restarts < 3; ++restarts) {
    FailureDecision d = DecideOnFailure(spec, 1, restarts);
    EXPECT_EQ(d.action, FailureAction::kRestart) << restarts;
    EXPECT_THAT(d.reason, HasSubstr("restart " + std::to_string(restarts + 1) + " of 3"));
  }
  for (int restarts : {3, 4, 100}) {
    FailureDecision d = DecideOnFailure(spec, 1, restarts);
    EXPECT_EQ(d.action, FailureAction::kFail) << restarts;
    EXPECT_THAT(d.reason, HasSubstr("BackoffLimitExceeded"));
  }
}

TEST(DecideOnFailureTest, BackoffLimitZeroNeverRestarts) {
  FailureDecision d = DecideOnFailure(Spec(v1::RESTART_POLICY_ON_FAILURE, 0), 137, 0);
  EXPECT_EQ(d.action, FailureAction::kFail);
  EXPECT_THAT(d.reason, HasSubstr("BackoffLimitExceeded"));
}

TEST(DecideOnFailureTest, ExitCodePolicyHonoursBackoffLimitForSignals) {
  const v1::JobSpec spec = Spec(v1::RESTART_POLICY_EXIT_CODE, 1);
  EXPECT_EQ(DecideOnFailure(spec, 137, 0).action, FailureAction::kRestart);
  EXPECT_EQ(DecideOnFailure(spec, 137, 1).action, FailureAction::kFail);
  // A permanent code fails without mentioning the limit.
  EXPECT_THAT(DecideOnFailure(spec, 2, 0).reason, Not(HasSubstr("BackoffLimitExceeded")));
}

}  // namespace
}  // namespace gangway::coordinator
