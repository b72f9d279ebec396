// Bad or hostile input at the coordinator's edges gets a clear error, never a
// crash or an unbounded allocation: specs sent as protos, jobs the cluster
// can never hold, submissions right after a restart, sweep specs with YAML
// aliases, UpdateSweep counts and the Studies service.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/spec.h"
#include "coordinator/core.h"
#include "coordinator/studies.h"
#include "coordinator/sweep_spec.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kGi = int64_t{1} << 30;

class SubmitLimitsTest : public ::testing::Test {
 protected:
  SubmitLimitsTest() { core_ = std::make_unique<Core>(&store_, &sink_, &clock_, CoreOptions()); }

  void Register(const std::string& name, int64_t session, int64_t milli_cpus) {
    v1::Register reg;
    reg.set_node_name(name);
    reg.mutable_inventory()->set_milli_cpus(milli_cpus);
    reg.mutable_inventory()->set_memory_bytes(64 * kGi);
    ASSERT_TRUE(core_->OnRegister(session, reg).ok());
  }

  absl::StatusOr<v1::Job> Submit(const v1::SubmitJobRequest& req) {
    std::optional<absl::StatusOr<v1::Job>> answer;
    core_->Submit(req, [&](absl::StatusOr<v1::Job> job) { answer = std::move(job); });
    core_->Settle();
    if (!answer) return absl::InternalError("no answer");
    return *answer;
  }
  absl::StatusOr<v1::Job> SubmitYaml(const std::string& yaml) {
    v1::SubmitJobRequest req;
    req.set_yaml(yaml);
    return Submit(req);
  }

  common::FakeClock clock_;
  fakes::FakeStore store_;
  fakes::RecordingSink sink_;
  std::unique_ptr<Core> core_;
};

// Two 3 MiB jobs sent as protos used to make every `list` fail.
TEST_F(SubmitLimitsTest, ProtoSpecOverTheSpecLimitIsResourceExhausted) {
  v1::SubmitJobRequest req;
  req.mutable_spec()->set_name("big");
  req.mutable_spec()->add_command("x");
  for (int i = 0; i < 3; ++i) req.mutable_spec()->add_args(std::string(1 << 20, 'a'));
  absl::StatusOr<v1::Job> job = Submit(req);
  ASSERT_EQ(job.status().code(), absl::StatusCode::kResourceExhausted) << job.status();
  EXPECT_THAT(job.status().message(), HasSubstr("bytes serialized; the limit is 1048576"));
  EXPECT_TRUE(store_.jobs.empty());

  v1::SubmitSweepRequest sweep;
  sweep.mutable_spec()->set_name("big");
  sweep.mutable_spec()->mutable_trial_template()->add_command(std::string(3 << 20, 'a'));
  std::optional<absl::StatusOr<v1::Sweep>> answer;
  core_->SubmitSweep(sweep, [&](absl::StatusOr<v1::Sweep> s) { answer = std::move(s); });
  core_->Settle();
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(answer->status().message(), HasSubstr("the limit is 1048576"));
}

// 600 KB of arguments x 8 processes was a 4.8 MB launch, over gRPC's
// limit, refused at submit. The launch now carries the command line and
// the shared environment once per node (common/rank_env.h), so it is
// accepted on both paths; a spec whose launch would still be too large is
// refused by the parser (ParseJobSpecTest.LaunchOverTheGrpcLimitIsRefused),
// and a spec is at most 1 MiB anyway.
TEST_F(SubmitLimitsTest, WideArgumentsTimesProcsPerNodeAreAccepted) {
  Register("n1", 1, 64000);
  const std::string yaml = absl::StrCat("name: wide\nprocsPerNode: 8\ncommand: [x]\nargs: [\"",
                                        std::string(600'000, 'a'), "\"]\n");
  absl::StatusOr<v1::Job> job = SubmitYaml(yaml);
  EXPECT_TRUE(job.ok()) << job.status();
  v1::SubmitJobRequest req;
  req.mutable_spec()->set_name("wide");
  req.mutable_spec()->set_procs_per_node(8);
  req.mutable_spec()->add_command("x");
  req.mutable_spec()->add_args(std::string(600'000, 'a'));
  job = Submit(req);
  EXPECT_TRUE(job.ok()) << job.status();
}

// 1024 replicas x 256 processes fit no 3-node cluster, though one replica fits
// one node: refused with the scheduler's own reason.
TEST_F(SubmitLimitsTest, JobTheRegisteredNodesCanNeverHoldIsRefused) {
  for (int i = 1; i <= 3; ++i) Register(absl::StrCat("n", i), i, 256'000);
  absl::StatusOr<v1::Job> job = SubmitYaml(
      "name: huge\nreplicas: 1024\nprocsPerNode: 256\nresources: {cpus: 1}\ncommand: [x]\n");
  ASSERT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << job.status();
  EXPECT_THAT(job.status().message(),
              HasSubstr("line 2: replicas: the 3 registered nodes can never hold this job: the "
                        "job needs 1024 replicas"));
  EXPECT_THAT(job.status().message(), HasSubstr("holds at most 3"));
  // As many as the nodes hold is accepted (and waits or runs).
  EXPECT_TRUE(SubmitYaml("name: fits\nreplicas: 3\nprocsPerNode: 256\nresources: {cpus: 1}\n"
                         "command: [x]\n")
                  .ok());
}

// No node registered yet: nothing can be judged, the job waits.
TEST_F(SubmitLimitsTest, WithoutNodesAJobIsAcceptedAndWaits) {
  absl::StatusOr<v1::Job> job = SubmitYaml("name: early\nreplicas: 1024\ncommand: [x]\n");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::JOB_STATE_PENDING);
}

// Right after a coordinator restart the nodes of running jobs are stand-ins
// without an inventory until they register again: a valid job was refused
// ("the largest node has 0 cpus"). It is accepted and waits Pending.
TEST_F(SubmitLimitsTest, AfterARestartBeforeNodesRegisterAJobWaits) {
  Register("n1", 1, 8000);
  absl::StatusOr<v1::Job> running = SubmitYaml("name: old\ncommand: [x]\n");
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_FALSE(core_->GetJob(running->id())->ranks().empty()) << "placed on n1";

  fakes::RecordingSink sink;
  core_ = std::make_unique<Core>(&store_, &sink, &clock_, CoreOptions());
  ASSERT_TRUE(core_->Recover().ok());
  absl::StatusOr<v1::Job> job = SubmitYaml("name: new\nresources: {cpus: 2}\ncommand: [x]\n");
  ASSERT_TRUE(job.ok()) << job.status();
  core_->Settle();
  v1::Job now = core_->GetJob(job->id()).value();
  EXPECT_EQ(now.state(), v1::JOB_STATE_PENDING);
  // No node has registered with this coordinator yet: that is what waits,
  // not the job.
  EXPECT_EQ(now.reason(), "no nodes registered");
}

// Jobs that give no resources reserve one CPU per process (as Slurm).
TEST_F(SubmitLimitsTest, DefaultCpuCountsAgainstTheNode) {
  Register("n1", 1, 2000);
  absl::StatusOr<v1::Job> job = SubmitYaml("name: three\nprocsPerNode: 3\ncommand: [x]\n");
  ASSERT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << job.status();
  EXPECT_THAT(job.status().message(), HasSubstr("a replica needs 3 cpus"));
  EXPECT_TRUE(
      SubmitYaml("name: tenth\nprocsPerNode: 3\nresources: {cpus: 0.1}\ncommand: [x]\n").ok());
}

// ---------------------------------------------------------------------------
// Sweeps and studies

TEST(SweepInputTest, AliasesInASweepSpecAreRefusedWithTheirLine) {
  absl::StatusOr<ParsedSweepSpec> parsed = ParseSweepSpec(
      "kind: Sweep\nname: s\nobjective: {metric: loss}\nalgorithm: {name: random}\n"
      "parameters:\n  - &p {name: lr, type: double, min: 0.1, max: 1}\n  - *p\n"
      "trialTemplate: {command: [x]}\n");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(), HasSubstr("line 7: aliases are not supported"));
}

TEST(SweepInputTest, UpdateCountsHaveTheSpecsBounds) {
  EXPECT_TRUE(ValidateTrialCounts(0, 0, 0).ok());
  EXPECT_TRUE(ValidateTrialCounts(1000, 100'000, 100'000).ok());
  absl::Status s = ValidateTrialCounts(0, int64_t{1} << 31, 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("maxTrials: must be between 1 and 100000, got 2147483648"));
  EXPECT_THAT(ValidateTrialCounts(1001, 0, 0).message(), HasSubstr("parallelTrials"));
  EXPECT_THAT(ValidateTrialCounts(0, 0, 100'001).message(), HasSubstr("maxFailedTrials"));
}

v1::CreateStudyRequest Study(const std::string& algorithm) {
  v1::CreateStudyRequest req;
  req.set_name("study");
  v1::ParameterSpec* x = req.add_parameters();
  x->set_name("x");
  x->set_type(v1::ParameterSpec::TYPE_DOUBLE);
  x->set_min(-1);
  x->set_max(1);
  req.mutable_objective()->set_metric("loss");
  req.mutable_algorithm()->set_name(algorithm);
  return req;
}

TEST(StudyInputTest, AlgorithmSettingsAreBoundedAsInASweep) {
  Studies studies;
  v1::CreateStudyRequest req = Study("bayesian");
  (*req.mutable_algorithm()->mutable_settings())["candidates"] = "1000000000";
  absl::StatusOr<v1::Study> study = studies.Create(req);
  ASSERT_EQ(study.status().code(), absl::StatusCode::kInvalidArgument) << study.status();
  EXPECT_THAT(study.status().message(),
              HasSubstr("algorithm.settings.candidates: must be an integer between 0 and 1048576"));
  req = Study("random");
  req.set_name(std::string(64, 'n'));
  EXPECT_EQ(studies.Create(req).status().code(), absl::StatusCode::kInvalidArgument);
  req = Study("random");
  req.set_name("Free Form name");  // studies never required DNS labels
  EXPECT_TRUE(studies.Create(req).ok());
  req.clear_algorithm();  // random, as before
  EXPECT_TRUE(studies.Create(req).ok());
}

TEST(StudyInputTest, CountsAndStepsAreBounded) {
  Studies studies;
  absl::StatusOr<v1::Study> study = studies.Create(Study("random"));
  ASSERT_TRUE(study.ok()) << study.status();
  v1::AskRequest ask;
  ask.set_study_id(study->id());
  ask.set_count(1'000'000'000);
  absl::StatusOr<v1::AskResponse> asked = studies.Ask(ask);
  EXPECT_EQ(asked.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(asked.status().message(), HasSubstr("count: must be between 1 and 1000"));
  ask.set_count(-1);
  EXPECT_EQ(studies.Ask(ask).status().code(), absl::StatusCode::kInvalidArgument);
  // A study hands out at most kMaxTrials trials over its life.
  ask.set_count(Studies::kMaxAskCount);
  for (int64_t i = 0; i < Studies::kMaxTrials / Studies::kMaxAskCount; ++i) {
    ASSERT_TRUE(studies.Ask(ask).ok()) << i;
  }
  ask.set_count(1);
  EXPECT_EQ(studies.Ask(ask).status().code(), absl::StatusCode::kResourceExhausted);

  v1::TellRequest tell;
  tell.set_study_id(study->id());
  tell.set_trial(0);
  tell.set_intermediate(true);
  tell.set_value(1);
  tell.set_step(-5);
  EXPECT_EQ(studies.Tell(tell).status().code(), absl::StatusCode::kInvalidArgument);
  tell.set_step(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(studies.Tell(tell).status().code(), absl::StatusCode::kInvalidArgument);
  tell.set_step(3);
  EXPECT_TRUE(studies.Tell(tell).ok());
}

}  // namespace
}  // namespace gangway::coordinator
