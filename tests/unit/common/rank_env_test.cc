#include "common/rank_env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace gangway::common {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A 2 x 4 job (two nodes, four processes each, two GPUs per process).
v1::Job TwoByFour() {
  v1::Job job;
  job.set_id("train-7");
  job.set_attempt(3);
  job.set_master_addr("node-a.example");
  job.set_master_port(29500);
  v1::JobSpec* spec = job.mutable_spec();
  spec->set_name("train");
  spec->set_replicas(2);
  spec->set_procs_per_node(4);
  spec->mutable_resources()->set_milli_cpus(4000);
  spec->mutable_resources()->set_gpus(2);
  spec->add_command("python");
  spec->add_command("train.py");
  return job;
}

// Rank 5 of TwoByFour: replica 1, local rank 1, GPUs 2 and 3 on node b.
v1::RankStatus Rank5() {
  v1::RankStatus rank;
  rank.set_rank(5);
  rank.set_replica(1);
  rank.set_local_rank(1);
  rank.set_node("node-b");
  rank.add_gpu_indices(2);
  rank.add_gpu_indices(3);
  return rank;
}

// Last value wins, as when the list is turned into a process environment.
std::map<std::string, std::string> AsMap(const EnvList& env) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : env) out[k] = v;
  return out;
}

int Count(const EnvList& env, const std::string& name) {
  int n = 0;
  for (const auto& kv : env) n += kv.first == name;
  return n;
}

TEST(RankEnvironmentTest, TorchrunVariables) {
  auto env = AsMap(RankEnvironment(TwoByFour(), Rank5(), "coord:7070"));
  EXPECT_EQ(env["MASTER_ADDR"], "node-a.example");
  EXPECT_EQ(env["MASTER_PORT"], "29500");
  EXPECT_EQ(env["WORLD_SIZE"], "8");
  EXPECT_EQ(env["RANK"], "5");
  EXPECT_EQ(env["LOCAL_RANK"], "1");
  EXPECT_EQ(env["LOCAL_WORLD_SIZE"], "4");
  EXPECT_EQ(env["GROUP_RANK"], "1");
  EXPECT_EQ(env["NODE_RANK"], "1");
  EXPECT_EQ(env["NNODES"], "2");
}

TEST(RankEnvironmentTest, PetVariablesForOneTorchrunPerNode) {
  auto env = AsMap(RankEnvironment(TwoByFour(), Rank5(), ""));
  EXPECT_EQ(env["PET_NNODES"], "2");
  EXPECT_EQ(env["PET_NPROC_PER_NODE"], "4");
  EXPECT_EQ(env["PET_NODE_RANK"], "1");
  EXPECT_EQ(env["PET_MASTER_ADDR"], "node-a.example");
  EXPECT_EQ(env["PET_MASTER_PORT"], "29500");
}

TEST(RankEnvironmentTest, GangwayVariables) {
  v1::Job job = TwoByFour();
  job.mutable_spec()->set_trial("sweep-1-t4");
  (*job.mutable_spec()->mutable_params())["lr"] = "0.01";
  (*job.mutable_spec()->mutable_params())["model.depth"] = "50";
  auto env = AsMap(RankEnvironment(job, Rank5(), "coord:7070"));
  EXPECT_EQ(env["GANGWAY_JOB"], "train-7");
  EXPECT_EQ(env["GANGWAY_TRIAL"], "sweep-1-t4");
  EXPECT_EQ(env["GANGWAY_ATTEMPT"], "3");
  EXPECT_EQ(env["GANGWAY_RDZV"], "coord:7070");
  EXPECT_EQ(env["GANGWAY_PARAM_LR"], "0.01");
  EXPECT_EQ(env["GANGWAY_PARAM_MODEL_DEPTH"], "50");
}

TEST(RankEnvironmentTest, CudaVisibleDevicesListsTheRanksGpus) {
  auto env = AsMap(RankEnvironment(TwoByFour(), Rank5(), ""));
  EXPECT_EQ(env["CUDA_VISIBLE_DEVICES"], "2,3");
}

TEST(RankEnvironmentTest, CpuRankSeesNoGpu) {
  v1::Job job = TwoByFour();
  job.mutable_spec()->mutable_resources()->set_gpus(0);
  v1::RankStatus rank = Rank5();
  rank.clear_gpu_indices();
  EnvList env = RankEnvironment(job, rank, "");
  // Set, and empty: an unset variable would expose every GPU.
  ASSERT_EQ(Count(env, "CUDA_VISIBLE_DEVICES"), 1);
  EXPECT_EQ(AsMap(env)["CUDA_VISIBLE_DEVICES"], "");
}

TEST(RankEnvironmentTest, OmpThreadsFollowCpusAndIsAtLeastOne) {
  EXPECT_EQ(AsMap(RankEnvironment(TwoByFour(), Rank5(), ""))["OMP_NUM_THREADS"], "4");
  v1::Job job = TwoByFour();
  job.mutable_spec()->mutable_resources()->set_milli_cpus(500);
  EXPECT_EQ(AsMap(RankEnvironment(job, Rank5(), ""))["OMP_NUM_THREADS"], "1");
}

TEST(RankEnvironmentTest, SpecEnvIsSubstitutedAndGangwayWinsOnClash) {
  v1::Job job = TwoByFour();
  auto& env_spec = *job.mutable_spec()->mutable_env();
  env_spec["LR"] = "${trial.lr}";
  env_spec["TAG"] = "run-${trial.lr}-${trial.missing}";
  env_spec["MASTER_ADDR"] = "user-choice";
  (*job.mutable_spec()->mutable_params())["lr"] = "0.5";
  EnvList env = RankEnvironment(job, Rank5(), "");
  auto map = AsMap(env);
  EXPECT_EQ(map["LR"], "0.5");
  EXPECT_EQ(map["TAG"], "run-0.5-${trial.missing}");
  EXPECT_EQ(map["MASTER_ADDR"], "node-a.example");
  // The spec's entries come first, sorted, so the list is deterministic.
  ASSERT_GE(env.size(), 3u);
  EXPECT_EQ(env[0].first, "LR");
  EXPECT_EQ(env[1].first, "MASTER_ADDR");
  EXPECT_EQ(env[2].first, "TAG");
  EXPECT_EQ(RankEnvironment(job, Rank5(), ""), env);
}

TEST(RankEnvironmentTest, SetMasterPortRewritesBothPortVariables) {
  v1::Job job = TwoByFour();
  job.set_master_port(0);
  EnvList env = RankEnvironment(job, Rank5(), "");
  EXPECT_EQ(AsMap(env)["MASTER_PORT"], "0");
  SetMasterPort(env, 41234);
  auto map = AsMap(env);
  EXPECT_EQ(map["MASTER_PORT"], "41234");
  EXPECT_EQ(map["PET_MASTER_PORT"], "41234");
  EXPECT_EQ(map["MASTER_ADDR"], "node-a.example");
}

// A launch carries the shared part once; each rank only what differs.
TEST(RankEnvironmentTest, GangAndRankPartsMakeTheWholeAndRankPartIsSmall) {
  v1::Job job = TwoByFour();
  (*job.mutable_spec()->mutable_env())["DATA"] = std::string(10'000, 'd');
  EnvList own = RankOnlyEnvironment(job, Rank5());
  auto rank = AsMap(own);
  EXPECT_EQ(rank.size(), own.size());
  EXPECT_EQ(rank["RANK"], "5");
  EXPECT_EQ(rank["CUDA_VISIBLE_DEVICES"], "2,3");
  EXPECT_FALSE(rank.contains("DATA"));
  EXPECT_FALSE(rank.contains("WORLD_SIZE"));
  auto gang = AsMap(GangEnvironment(job, "coord:7070"));
  EXPECT_FALSE(gang.contains("RANK"));
  EXPECT_FALSE(gang.contains("CUDA_VISIBLE_DEVICES"));
  EXPECT_EQ(gang["WORLD_SIZE"], "8");
  for (const auto& [k, v] : rank) gang[k] = v;
  EXPECT_EQ(gang, AsMap(RankEnvironment(job, Rank5(), "coord:7070")));
}

TEST(LaunchEnvironmentTest, RankEnvOnTopOfTheGangsAndGangArgvWhenTheRankHasNone) {
  v1::LaunchGang launch;
  (*launch.mutable_env())["A"] = "gang";
  (*launch.mutable_env())["RANK"] = "from-spec";
  launch.add_argv("python");
  launch.add_argv("train.py");
  v1::RankLaunch rl;
  (*rl.mutable_env())["RANK"] = "3";
  (*rl.mutable_env())["B"] = "rank";
  EXPECT_EQ(LaunchEnvironment(launch, rl), (EnvList{{"A", "gang"}, {"B", "rank"}, {"RANK", "3"}}));
  EXPECT_THAT(LaunchArgv(launch, rl), ElementsAre("python", "train.py"));
  // A launch from a coordinator that sent everything per rank.
  rl.add_argv("own");
  EXPECT_THAT(LaunchArgv(launch, rl), ElementsAre("own"));
  EXPECT_EQ(LaunchEnvironment(v1::LaunchGang(), rl), (EnvList{{"B", "rank"}, {"RANK", "3"}}));
}

TEST(RankArgvTest, CommandThenArgsWithTrialSubstitution) {
  v1::JobSpec spec;
  spec.add_command("python");
  spec.add_command("train.py");
  spec.add_args("--lr=${trial.lr}");
  spec.add_args("--opt=${trial.optimizer}/${trial.lr}");
  spec.add_args("${trial.unknown}");
  spec.add_args("${trial.lr");  // unterminated: left alone
  spec.add_args("$trial.lr");
  (*spec.mutable_params())["lr"] = "3e-4";
  (*spec.mutable_params())["optimizer"] = "adamw";
  EXPECT_THAT(RankArgv(spec), ElementsAre("python", "train.py", "--lr=3e-4", "--opt=adamw/3e-4",
                                          "${trial.unknown}", "${trial.lr", "$trial.lr"));
}

TEST(RankArgvTest, WithoutParamsTextIsUnchanged) {
  v1::JobSpec spec;
  spec.add_command("echo");
  spec.add_args("${trial.lr}");
  EXPECT_THAT(RankArgv(spec), ElementsAre("echo", "${trial.lr}"));
}

TEST(RankArgvTest, EmptySpec) { EXPECT_THAT(RankArgv(v1::JobSpec()), IsEmpty()); }

}  // namespace
}  // namespace gangway::common
