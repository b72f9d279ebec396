// One node's launch carries what its ranks share once: a 600 KB argument
// with procsPerNode 8 made a 4.8 MB message (past gRPC's 4 MiB limit) that
// never arrived and wedged the node's session.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/rank_env.h"
#include "common/spec.h"
#include "coordinator/core.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

using ::testing::IsEmpty;
using ::testing::SizeIs;

class LaunchSizeTest : public ::testing::Test {
 protected:
  LaunchSizeTest() {
    CoreOptions o;
    o.rendezvous_endpoint = "coord:7070";
    o.job_token = [](const std::string& job, int32_t attempt) {
      return absl::StrCat("token-", job, "-", attempt);
    };
    core_ = std::make_unique<Core>(&store_, &sink_, &clock_, o);
    EXPECT_TRUE(core_->OnRegister(1, fakes::RegisterMessage("n1", 16)).ok());
  }

  absl::StatusOr<v1::Job> Submit(const std::string& yaml) {
    v1::SubmitJobRequest req;
    req.set_yaml(yaml);
    std::optional<absl::StatusOr<v1::Job>> answer;
    core_->Submit(req, [&](absl::StatusOr<v1::Job> job) { answer = std::move(job); });
    core_->Settle();
    if (!answer) return absl::InternalError("no answer");
    return *answer;
  }

  fakes::FakeStore store_;
  fakes::RecordingSink sink_;
  common::FakeClock clock_;
  std::unique_ptr<Core> core_;
};

TEST_F(LaunchSizeTest, LargeArgumentGoesOncePerNodeNotOncePerRank) {
  const std::string yaml = absl::StrCat(
      "name: wide\nprocsPerNode: 8\nresources: {cpus: 0.1}\nenv: {DATA: \"",
      std::string(100'000, 'e'), "\"}\ncommand: [x]\nargs: [", std::string(500'000, 'a'), "]\n");
  absl::StatusOr<v1::Job> job = Submit(yaml);
  ASSERT_TRUE(job.ok()) << job.status();

  std::vector<fakes::Sent> sent = sink_.Take();
  ASSERT_THAT(sent, SizeIs(1));
  ASSERT_TRUE(sent[0].msg.has_launch());
  const v1::LaunchGang& launch = sent[0].msg.launch();
  ASSERT_EQ(launch.ranks_size(), 8);
  const size_t bytes = sent[0].msg.ByteSizeLong();
  // 600 KB of argument and env once, not eight times (4.8 MB).
  EXPECT_LT(bytes, 620'000u) << bytes;
  // The estimate at submit describes this layout: never below what is sent,
  // and not far above it.
  const size_t estimate = common::EstimateLaunchBytes(job->spec());
  EXPECT_GE(estimate, bytes);
  EXPECT_LT(estimate, bytes + 16'000) << estimate << " vs " << bytes;
  // The same launch with everything repeated per rank, as it was sent
  // before: recorded beside the new size (benchmarks/README.md).
  v1::CoordinatorMessage per_rank;
  v1::LaunchGang* old = per_rank.mutable_launch();
  old->set_job_id(launch.job_id());
  old->set_attempt(launch.attempt());
  for (const v1::RankLaunch& rl : launch.ranks()) {
    v1::RankLaunch* r = old->add_ranks();
    r->set_rank(rl.rank());
    for (auto& [k, v] : common::LaunchEnvironment(launch, rl)) (*r->mutable_env())[k] = v;
    for (auto& a : common::LaunchArgv(launch, rl)) r->add_argv(a);
  }
  RecordProperty("launch_bytes", static_cast<int>(bytes));
  RecordProperty("per_rank_layout_bytes", static_cast<int>(per_rank.ByteSizeLong()));
  EXPECT_GT(per_rank.ByteSizeLong(), 4'800'000u);

  EXPECT_THAT(launch.argv(), SizeIs(2));
  EXPECT_EQ(launch.env().at("GANGWAY_JOB_TOKEN"), absl::StrCat("token-", job->id(), "-1"));
  for (int i = 0; i < 8; ++i) {
    const v1::RankLaunch& rl = launch.ranks(i);
    EXPECT_THAT(rl.argv(), IsEmpty()) << "the gang's argv";
    EXPECT_FALSE(rl.env().contains("DATA")) << "the gang's env";
    EXPECT_LE(rl.ByteSizeLong(), common::kRankEnvAllowance);
    // What the rank runs with, as the agent merges it.
    const common::EnvList merged = common::LaunchEnvironment(launch, rl);
    const std::map<std::string, std::string> env(merged.begin(), merged.end());
    EXPECT_EQ(env.at("RANK"), absl::StrCat(i));
    EXPECT_EQ(env.at("LOCAL_RANK"), absl::StrCat(i));
    EXPECT_EQ(env.at("WORLD_SIZE"), "8");
    EXPECT_EQ(env.at("DATA").size(), 100'000u);
    EXPECT_EQ(common::LaunchArgv(launch, rl)[1].size(), 500'000u);
  }
}

TEST_F(LaunchSizeTest, SpecEnvNamingARankVariableIsOverriddenPerRank) {
  absl::StatusOr<v1::Job> job =
      Submit("name: clash\nprocsPerNode: 2\nenv: {RANK: \"7\", KEEP: \"k\"}\ncommand: [x]\n");
  ASSERT_TRUE(job.ok()) << job.status();
  std::vector<fakes::Sent> sent = sink_.Take();
  ASSERT_THAT(sent, SizeIs(1));
  const v1::LaunchGang& launch = sent[0].msg.launch();
  ASSERT_EQ(launch.ranks_size(), 2);
  for (int i = 0; i < 2; ++i) {
    const common::EnvList merged = common::LaunchEnvironment(launch, launch.ranks(i));
    const std::map<std::string, std::string> env(merged.begin(), merged.end());
    EXPECT_EQ(env.at("RANK"), absl::StrCat(i)) << "gangway's variable wins";
    EXPECT_EQ(env.at("KEEP"), "k");
  }
}

}  // namespace
}  // namespace gangway::coordinator
