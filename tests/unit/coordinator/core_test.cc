// Drives the coordinator core as the agents and the CLI would: registrations,
// agent messages and session closes go in; what the core sends to agents is
// recorded by a fake sink, and time is a FakeClock advanced by the test.
#include "coordinator/core.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/rank_env.h"
#include "coordinator/job_state.h"
#include "coordinator/sqlite_store.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

using ::gangway::coordinator::fakes::FakeStore;
using ::gangway::coordinator::fakes::RecordingSink;
using ::gangway::coordinator::fakes::Sent;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr int64_t kGi = int64_t{1} << 30;
constexpr int32_t kPort = 29500;
using Kind = v1::CoordinatorMessage::MsgCase;
constexpr Kind kLaunch = v1::CoordinatorMessage::kLaunch;
constexpr Kind kStop = v1::CoordinatorMessage::kStop;
constexpr Kind kForget = v1::CoordinatorMessage::kForget;

// ---------------------------------------------------------------------------
// Fakes

// The messages of one kind sent to one session.
std::vector<v1::CoordinatorMessage> To(const std::vector<Sent>& sent, int64_t session, Kind kind) {
  std::vector<v1::CoordinatorMessage> out;
  for (const Sent& s : sent) {
    if (s.session == session && s.msg.msg_case() == kind) out.push_back(s.msg);
  }
  return out;
}

int CountKind(const std::vector<Sent>& sent, Kind kind) {
  return static_cast<int>(std::count_if(sent.begin(), sent.end(),
                                        [&](const Sent& s) { return s.msg.msg_case() == kind; }));
}

// A launched rank's environment, as the agent builds it.
std::map<std::string, std::string> EnvOf(const v1::LaunchGang& launch, const v1::RankLaunch& rl) {
  const common::EnvList env = common::LaunchEnvironment(launch, rl);
  return {env.begin(), env.end()};
}

v1::NodeInventory Inventory(int gpus, int64_t milli_cpus = 64000, int64_t memory = 256 * kGi) {
  v1::NodeInventory inv;
  inv.set_milli_cpus(milli_cpus);
  inv.set_memory_bytes(memory);
  for (int i = 0; i < gpus; ++i) {
    v1::GpuInfo* g = inv.add_gpus();
    g->set_index(i);
    g->set_uuid(absl::StrCat("GPU-", i));
  }
  return inv;
}

// A job spec; `extra` is appended (restartPolicy, backoffLimit, ...).
std::string Yaml(const std::string& name, int replicas, int procs, int gpus,
                 const std::string& extra = "") {
  return absl::StrCat("name: ", name, "\nreplicas: ", replicas, "\nprocsPerNode: ", procs,
                      "\nresources:\n  cpus: 1\n  memory: 1Gi\n  gpus: ", gpus,
                      "\ncommand: [python, train.py]\nargs: [--lr, \"0.1\"]\n", extra);
}

// ---------------------------------------------------------------------------
// Fixture

class CoreTest : public ::testing::Test {
 protected:
  CoreTest() { MakeCore(&store_); }

  static CoreOptions Options() {
    CoreOptions o;
    o.heartbeat_interval_ms = 1000;
    o.node_timeout_ms = 5000;
    o.stop_grace_ms = 2000;
    o.rendezvous_endpoint = "coord:7070";
    // Relaunches at once: the backoff has its own tests
    // (restart_backoff_test.cc), and these count attempts, not waits.
    o.restart_backoff_ms = 0;
    // No lease: a silent node's ranks are lost at node_timeout_ms, and
    // agents get no heartbeat acks. The lease has its own tests
    // (lease_test.cc).
    o.lease_ms = 0;
    return o;
  }

  void MakeCore(Store* store) {
    core_ = std::make_unique<Core>(store, &sink_, &clock_, Options());
    sessions_.clear();
    silent_.clear();
  }

  // ---- Agents --------------------------------------------------------------

  void Register(const std::string& name, int64_t session, v1::NodeInventory inv,
                const std::vector<v1::RankRecord>& ranks = {}) {
    v1::Register reg;
    reg.set_node_name(name);
    reg.set_address(name + ".cluster");
    *reg.mutable_inventory() = std::move(inv);
    for (const auto& r : ranks) *reg.add_ranks() = r;
    absl::StatusOr<v1::RegisterAck> ack = core_->OnRegister(session, reg);
    ASSERT_TRUE(ack.ok()) << ack.status();
    EXPECT_EQ(ack->heartbeat_interval_ms(), 1000);
    sessions_[name] = session;
  }
  void Register(const std::string& name, int64_t session, int gpus) {
    Register(name, session, Inventory(gpus));
  }

  int64_t SessionOf(const std::string& node) const {
    auto it = sessions_.find(node);
    return it == sessions_.end() ? -1 : it->second;
  }

  void CloseSession(const std::string& node) {
    core_->OnSessionClosed(SessionOf(node));
    sessions_.erase(node);
  }

  // What the agent answers once it started the ranks of `launch`.
  void Started(int64_t session, const v1::LaunchGang& launch, int32_t port) {
    core_->OnAgentMessage(session, fakes::GangStartedMessage(launch, port));
  }

  void Exited(int64_t session, const std::string& job, int32_t attempt, int32_t rank, int code) {
    core_->OnAgentMessage(session, fakes::RankExitedMessage(job, attempt, rank, code));
  }

  // Every live rank of `id` on `node` exits with `code`, as after a StopGang.
  void ExitLive(const std::string& id, const std::string& node, int code) {
    const v1::Job job = Get(id);
    for (const auto& r : job.ranks()) {
      if (r.node() == node &&
          (r.state() == v1::RANK_STATE_RUNNING || r.state() == v1::RANK_STATE_LAUNCHING)) {
        Exited(SessionOf(node), id, job.attempt(), r.rank(), code);
      }
    }
  }

  void Heartbeat(int64_t session) {
    v1::AgentMessage msg;
    msg.mutable_heartbeat();
    core_->OnAgentMessage(session, msg);
  }

  // The records an agent on `node` holds for `id`'s current attempt.
  std::vector<v1::RankRecord> RecordsOn(const std::string& id, const std::string& node,
                                        bool exited = false, int code = 0) {
    std::vector<v1::RankRecord> out;
    const v1::Job job = Get(id);
    for (const auto& r : job.ranks()) {
      if (r.node() != node) continue;
      v1::RankRecord rec;
      rec.set_job_id(id);
      rec.set_attempt(job.attempt());
      rec.set_rank(r.rank());
      rec.set_pid(1000 + r.rank());
      rec.set_exited(exited);
      rec.set_exit_code(code);
      out.push_back(rec);
    }
    return out;
  }

  // Advances the clock a second at a time; every connected node not in
  // silent_ heartbeats each second; then Tick() and Settle().
  void Advance(int64_t ms) {
    while (ms > 0) {
      const int64_t step = std::min<int64_t>(ms, 1000);
      clock_.Advance(step);
      ms -= step;
      for (const auto& [node, session] : sessions_) {
        if (!silent_.count(node)) Heartbeat(session);
      }
      core_->Tick();
      core_->Settle();
    }
  }

  // ---- Control ---------------------------------------------------------------

  absl::StatusOr<v1::Job> SubmitRequest(const v1::SubmitJobRequest& req) {
    std::optional<absl::StatusOr<v1::Job>> answer;
    core_->Submit(req, [&](absl::StatusOr<v1::Job> job) {
      EXPECT_FALSE(answer.has_value()) << "answered twice";
      answer = std::move(job);
    });
    core_->Settle();
    if (!answer) return absl::InternalError("Submit was not answered by Settle");
    return *std::move(answer);
  }
  absl::StatusOr<v1::Job> Submit(const std::string& yaml) {
    v1::SubmitJobRequest req;
    req.set_yaml(yaml);
    return SubmitRequest(req);
  }
  // Submits a spec that must be accepted and returns its id.
  std::string MustSubmit(const std::string& yaml) {
    absl::StatusOr<v1::Job> job = Submit(yaml);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? job->id() : "";
  }

  v1::Job Get(const std::string& id) const {
    absl::StatusOr<v1::Job> job = core_->GetJob(id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : v1::Job();
  }

  v1::Node NodeNamed(const std::string& name) const {
    for (const v1::Node& n : core_->ListNodes()) {
      if (n.name() == name) return n;
    }
    ADD_FAILURE() << "no node " << name;
    return v1::Node();
  }

  // Plays the agents through a launch that Settle() just sent: rank 0's node
  // answers with `port`, then every other node is launched with it.
  void StartGang(const std::string& id, int32_t port = kPort) {
    const v1::Job job = Get(id);
    ASSERT_EQ(job.state(), v1::JOB_STATE_SCHEDULED);
    const int64_t master = SessionOf(job.ranks(0).node());
    std::vector<Sent> sent = sink_.Take();
    auto launches = To(sent, master, kLaunch);
    ASSERT_EQ(launches.size(), 1u);
    ASSERT_EQ(launches[0].launch().master_port(), 0);
    Started(master, launches[0].launch(), port);
    core_->Settle();
    for (const Sent& s : sink_.Take()) {
      if (s.msg.has_launch() && s.msg.launch().job_id() == id) {
        EXPECT_EQ(s.msg.launch().master_port(), port);
        Started(s.session, s.msg.launch(), port);
      }
    }
    core_->Settle();
    ASSERT_EQ(Get(id).state(), v1::JOB_STATE_RUNNING);
    sink_.Take();
  }

  // Nodes a and b, 8 GPUs each, and a running 2 x 4 job with 2 GPUs per
  // process: one replica fills each node (ranks 0-3 on a, 4-7 on b).
  std::string RunTwoNodeJob(const std::string& extra = "") {
    Register("a", 1, 8);
    Register("b", 2, 8);
    const std::string id = MustSubmit(Yaml("train", 2, 4, 2, extra));
    StartGang(id);
    const v1::Job job = Get(id);
    EXPECT_EQ(job.ranks(0).node(), "a");
    EXPECT_EQ(job.ranks(4).node(), "b");
    return id;
  }

  common::FakeClock clock_;
  FakeStore store_;
  RecordingSink sink_;
  std::unique_ptr<Core> core_;
  std::map<std::string, int64_t> sessions_;  // node -> its current session
  std::set<std::string> silent_;             // nodes that stop heartbeating
};

// ---------------------------------------------------------------------------
// Submission and the launch handshake

TEST_F(CoreTest, SubmitYamlIsPendingUntilANodeJoins) {
  absl::StatusOr<v1::Job> job = Submit(Yaml("train", 1, 2, 1));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->id(), "train-1");
  EXPECT_EQ(job->state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(job->spec().procs_per_node(), 2);
  EXPECT_EQ(job->create_time_ms(), clock_.NowMs());
  EXPECT_EQ(store_.jobs.at("train-1").state(), v1::JOB_STATE_PENDING);
  EXPECT_THAT(sink_.sent, IsEmpty());
  EXPECT_EQ(Get("train-1").state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(Get("train-1").reason(), "no nodes registered");

  Register("a", 1, 8);
  core_->Settle();
  EXPECT_EQ(Get("train-1").state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(To(sink_.sent, 1, kLaunch).size(), 1u);
}

TEST_F(CoreTest, SubmitAnswersPendingThenLaunchesOnlyRankZerosNodeWithPortZero) {
  Register("a", 1, 8);
  Register("b", 2, 8);
  absl::StatusOr<v1::Job> answer = Submit(Yaml("train", 2, 4, 2));
  ASSERT_TRUE(answer.ok()) << answer.status();
  // The answer is the job as stored; scheduling happens later in Settle().
  EXPECT_EQ(answer->state(), v1::JOB_STATE_PENDING);
  EXPECT_THAT(store_.StatesOf(answer->id()),
              ElementsAre(v1::JOB_STATE_PENDING, v1::JOB_STATE_SCHEDULED));

  const v1::Job job = Get(answer->id());
  EXPECT_EQ(job.state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_EQ(job.master_addr(), "a.cluster");
  EXPECT_EQ(job.master_port(), 0);
  ASSERT_EQ(job.ranks_size(), 8);
  for (int r = 0; r < 8; ++r) {
    EXPECT_EQ(job.ranks(r).rank(), r);
    EXPECT_EQ(job.ranks(r).replica(), r / 4);
    EXPECT_EQ(job.ranks(r).local_rank(), r % 4);
    EXPECT_EQ(job.ranks(r).node(), r < 4 ? "a" : "b");
    EXPECT_EQ(job.ranks(r).state(), v1::RANK_STATE_LAUNCHING);
    EXPECT_EQ(job.ranks(r).gpu_indices_size(), 2);
  }

  // Only rank 0's node is launched: it must reserve MASTER_PORT first.
  std::vector<Sent> sent = sink_.Take();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_EQ(sent[0].session, 1);
  ASSERT_TRUE(sent[0].msg.has_launch());
  const v1::LaunchGang& launch = sent[0].msg.launch();
  EXPECT_EQ(launch.job_id(), job.id());
  EXPECT_EQ(launch.attempt(), 1);
  EXPECT_EQ(launch.master_port(), 0);
  ASSERT_EQ(launch.ranks_size(), 4);
  std::set<std::string> gpus;
  for (int i = 0; i < 4; ++i) {
    const v1::RankLaunch& rl = launch.ranks(i);
    EXPECT_EQ(rl.rank(), i);
    EXPECT_THAT(common::LaunchArgv(launch, rl), ElementsAre("python", "train.py", "--lr", "0.1"));
    auto env = EnvOf(launch, rl);
    EXPECT_EQ(env["RANK"], absl::StrCat(i));
    EXPECT_EQ(env["WORLD_SIZE"], "8");
    EXPECT_EQ(env["MASTER_ADDR"], "a.cluster");
    EXPECT_EQ(env["MASTER_PORT"], "0");
    EXPECT_EQ(env["GANGWAY_RDZV"], "coord:7070");
    EXPECT_EQ(env["GANGWAY_ATTEMPT"], "1");
    gpus.insert(env["CUDA_VISIBLE_DEVICES"]);
  }
  EXPECT_EQ(gpus.size(), 4u) << "each rank sees its own GPUs";
}

TEST_F(CoreTest, GangStartedPortLaunchesTheOtherNodesThenRunning) {
  Register("a", 1, 8);
  Register("b", 2, 8);
  const std::string id = MustSubmit(Yaml("train", 2, 4, 2));
  auto launches = To(sink_.Take(), 1, kLaunch);
  ASSERT_EQ(launches.size(), 1u);

  clock_.Advance(250);
  Started(1, launches[0].launch(), kPort);
  core_->Settle();
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(job.master_port(), kPort);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(job.ranks(r).state(), v1::RANK_STATE_RUNNING);
    EXPECT_EQ(job.ranks(r).pid(), 1000 + r);
    EXPECT_EQ(job.ranks(r).start_time_ms(), clock_.NowMs());
  }
  std::vector<Sent> sent = sink_.Take();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_EQ(sent[0].session, 2);
  const v1::LaunchGang& other = sent[0].msg.launch();
  EXPECT_EQ(other.master_port(), kPort);
  ASSERT_EQ(other.ranks_size(), 4);
  EXPECT_EQ(other.ranks(0).rank(), 4);
  auto env = EnvOf(other, other.ranks(0));
  EXPECT_EQ(env["MASTER_PORT"], "29500");
  EXPECT_EQ(env["PET_MASTER_PORT"], "29500");
  EXPECT_EQ(env["MASTER_ADDR"], "a.cluster");
  EXPECT_EQ(env["GROUP_RANK"], "1");

  Started(2, other, kPort);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(store_.jobs.at(id).state(), v1::JOB_STATE_RUNNING);
  EXPECT_THAT(sink_.sent, IsEmpty());
}

TEST_F(CoreTest, EveryRankExitingZeroSucceedsForgetsAndFreesResources) {
  const std::string id = RunTwoNodeJob();
  EXPECT_EQ(NodeNamed("a").allocated().gpus(), 8);
  EXPECT_EQ(NodeNamed("a").running_ranks(), 4);

  for (int r = 0; r < 7; ++r) Exited(r < 4 ? 1 : 2, id, 1, r, 0);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_RUNNING);
  EXPECT_THAT(sink_.sent, IsEmpty());

  clock_.Advance(10);
  Exited(2, id, 1, 7, 0);
  core_->Settle();
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job.end_time_ms(), clock_.NowMs());
  EXPECT_EQ(store_.jobs.at(id).state(), v1::JOB_STATE_SUCCEEDED);
  std::vector<Sent> sent = sink_.Take();
  ASSERT_EQ(To(sent, 1, kForget).size(), 1u);
  ASSERT_EQ(To(sent, 2, kForget).size(), 1u);
  EXPECT_EQ(To(sent, 1, kForget)[0].forget().job_id(), id);
  EXPECT_EQ(To(sent, 1, kForget)[0].forget().attempt(), 1);
  EXPECT_EQ(CountKind(sent, kStop), 0);
  for (const char* name : {"a", "b"}) {
    v1::Node n = NodeNamed(name);
    EXPECT_EQ(n.allocated().gpus(), 0);
    EXPECT_EQ(n.allocated().milli_cpus(), 0);
    EXPECT_EQ(n.allocated().memory_bytes(), 0);
    EXPECT_THAT(n.allocated_gpus(), IsEmpty());
    EXPECT_EQ(n.running_ranks(), 0);
  }
  EXPECT_THAT(core_->ListJobs(false), IsEmpty());
  EXPECT_EQ(core_->ListJobs(true).size(), 1u);
}

TEST_F(CoreTest, SubmitProtoSpecGetsTheYamlDefaults) {
  Register("a", 1, 8);
  v1::SubmitJobRequest req;
  req.mutable_spec()->set_name("proto");
  req.mutable_spec()->add_command("python");
  req.mutable_spec()->mutable_resources()->set_gpus(1);
  absl::StatusOr<v1::Job> job = SubmitRequest(req);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->id(), "proto-1");
  EXPECT_EQ(job->spec().replicas(), 1);
  EXPECT_EQ(job->spec().procs_per_node(), 1);
  EXPECT_EQ(job->spec().restart_policy(), v1::RESTART_POLICY_NEVER);
  EXPECT_EQ(Get("proto-1").state(), v1::JOB_STATE_SCHEDULED);
  auto launches = To(sink_.Take(), 1, kLaunch);
  ASSERT_EQ(launches.size(), 1u);
  EXPECT_EQ(launches[0].launch().ranks_size(), 1);
}

TEST_F(CoreTest, SubmitProtoSpecIsValidated) {
  v1::SubmitJobRequest req;
  req.mutable_spec()->set_name("Bad_Name");
  req.mutable_spec()->add_command("python");
  absl::StatusOr<v1::Job> job = SubmitRequest(req);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(job.status().message(), HasSubstr("name"));
  EXPECT_THAT(core_->ListJobs(true), IsEmpty());
}

TEST_F(CoreTest, InvalidYamlIsRefusedWithItsLine) {
  absl::StatusOr<v1::Job> job = Submit("name: x\nreplicas: two\ncommand: [a]\n");
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(job.status().message(), HasSubstr("line 2"));
  EXPECT_THAT(core_->ListJobs(true), IsEmpty());
  EXPECT_EQ(store_.calls, 0);
}

TEST_F(CoreTest, ReplicaLargerThanEveryNodeIsRefusedNamingFieldAndLine) {
  Register("a", 1, 4);
  Register("b", 2, 8);
  // Line 7 is "  gpus: 8"; a replica needs 2 x 8 = 16 GPUs.
  absl::StatusOr<v1::Job> job = Submit(Yaml("big", 1, 2, 8));
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(job.status().message(), AllOf(HasSubstr("line 7: resources.gpus"),
                                            HasSubstr("16 GPUs"), HasSubstr("largest node has 8")));
  EXPECT_THAT(core_->ListJobs(true), IsEmpty());
  EXPECT_THAT(sink_.sent, IsEmpty());

  // Proto submissions name the field without a line.
  v1::SubmitJobRequest req;
  req.mutable_spec()->set_name("big");
  req.mutable_spec()->add_command("python");
  req.mutable_spec()->mutable_resources()->set_gpus(9);
  job = SubmitRequest(req);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(job.status().message(), AllOf(HasSubstr("resources.gpus"), Not(HasSubstr("line"))));
}

TEST_F(CoreTest, ReplicaNeedingMoreCpusThanEveryNodeIsRefused) {
  Register("a", 1, Inventory(0, 4000));
  absl::StatusOr<v1::Job> job = Submit(Yaml("cpu", 1, 8, 0));
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(job.status().message(),
              AllOf(HasSubstr("line 5: resources.cpus"), HasSubstr("largest node has 4")));
}

TEST_F(CoreTest, StoreWriteFailureRefusesSubmitAndKeepsNothing) {
  Register("a", 1, 8);
  store_.fail = true;
  absl::StatusOr<v1::Job> job = Submit(Yaml("train", 1, 1, 1));
  EXPECT_EQ(job.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(core_->ListJobs(true), IsEmpty());
  EXPECT_EQ(core_->GetJob("train-1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(sink_.sent, IsEmpty()) << "a refused job must not be launched";
  EXPECT_EQ(NodeNamed("a").allocated().gpus(), 0);

  store_.fail = false;
  core_->Settle();
  EXPECT_THAT(store_.jobs, IsEmpty());
  job = Submit(Yaml("train", 1, 1, 1));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(Get(job->id()).state(), v1::JOB_STATE_SCHEDULED);
}

// A decision is sent to agents only once it is stored: telling an agent to
// forget exits the store does not hold would lose them in a crash.
TEST_F(CoreTest, MessagesWaitForTheStoreWhenAWriteFails) {
  Register("a", 1, 8);
  const std::string id = MustSubmit(Yaml("train", 1, 1, 1));
  StartGang(id);
  std::vector<v1::JobState> watched;
  ASSERT_TRUE(core_->Watch(id, [&](const v1::Job& j) { watched.push_back(j.state()); }).ok());

  store_.fail = true;
  Exited(1, id, 1, 0, 0);
  core_->Settle();
  EXPECT_THAT(sink_.sent, IsEmpty());
  EXPECT_EQ(store_.jobs.at(id).state(), v1::JOB_STATE_RUNNING);
  EXPECT_THAT(watched, ElementsAre(v1::JOB_STATE_RUNNING));

  store_.fail = false;
  Advance(1000);
  EXPECT_EQ(store_.jobs.at(id).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(To(sink_.Take(), 1, kForget).size(), 1u);
  EXPECT_THAT(watched, ElementsAre(v1::JOB_STATE_RUNNING, v1::JOB_STATE_SUCCEEDED));
}

// ---------------------------------------------------------------------------
// Gang scheduling

TEST_F(CoreTest, GangThatDoesNotFitStaysPendingAndNeverStartsPartly) {
  Register("a", 1, 4);
  Register("b", 2, 4);
  const std::string small = MustSubmit(Yaml("small", 1, 1, 4));
  StartGang(small);
  // Two replicas of 4 GPUs: only b has room now.
  const std::string gang = MustSubmit(Yaml("gang", 2, 1, 4));
  v1::Job job = Get(gang);
  EXPECT_EQ(job.state(), v1::JOB_STATE_PENDING);
  // The scheduler's reason: what it waits for and how much fits now.
  EXPECT_THAT(job.reason(), HasSubstr("waiting for 2 replicas of "));
  EXPECT_THAT(job.reason(), HasSubstr("gpus: 4"));
  EXPECT_THAT(job.reason(), HasSubstr("; 1 fits now"));
  EXPECT_THAT(job.ranks(), IsEmpty());
  EXPECT_EQ(job.attempt(), 0);
  EXPECT_THAT(sink_.sent, IsEmpty());
  EXPECT_EQ(NodeNamed("b").allocated().gpus(), 0);
  EXPECT_EQ(NodeNamed("b").running_ranks(), 0);

  // Time passing and more nodes' heartbeats change nothing.
  Advance(3000);
  EXPECT_EQ(Get(gang).state(), v1::JOB_STATE_PENDING);
  EXPECT_THAT(sink_.sent, IsEmpty());

  // Capacity frees: the gang starts whole.
  Exited(1, small, 1, 0, 0);
  core_->Settle();
  EXPECT_EQ(Get(small).state(), v1::JOB_STATE_SUCCEEDED);
  job = Get(gang);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(job.ranks_size(), 2);
  EXPECT_NE(job.ranks(0).node(), job.ranks(1).node());
  EXPECT_EQ(NodeNamed("a").allocated().gpus(), 4);
  EXPECT_EQ(NodeNamed("b").allocated().gpus(), 4);
}

// A large gang behind a stream of small jobs: backfilled past at first,
// then, once it has waited reserve_after_ms (60 s by default), what it needs
// is held for it and it starts when the running jobs end.
TEST_F(CoreTest, AGangWaitingPastReserveAfterIsNotStarvedBySmallJobs) {
  Register("a", 1, 8);
  const std::string filler = MustSubmit(Yaml("filler", 1, 1, 4));
  StartGang(filler);
  const std::string big = MustSubmit(Yaml("big", 1, 1, 8));
  EXPECT_EQ(Get(big).state(), v1::JOB_STATE_PENDING);
  const std::string early = MustSubmit(Yaml("early", 1, 1, 2));
  StartGang(early);  // backfilled: the gang has not waited long yet

  Advance(59'000);
  const std::string before = MustSubmit(Yaml("before", 1, 1, 1));
  StartGang(before);
  EXPECT_THAT(Get(big).reason(), Not(HasSubstr("holding")));

  Advance(2'000);
  const std::string late = MustSubmit(Yaml("late", 1, 1, 1));
  EXPECT_EQ(Get(late).state(), v1::JOB_STATE_PENDING);
  EXPECT_THAT(Get(big).reason(), HasSubstr("holding a for it"));

  // The running jobs end one by one; the freed GPUs go to the gang only.
  ExitLive(filler, "a", 0);
  ExitLive(early, "a", 0);
  core_->Settle();
  EXPECT_EQ(Get(late).state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(Get(big).state(), v1::JOB_STATE_PENDING);
  ExitLive(before, "a", 0);
  core_->Settle();
  EXPECT_EQ(Get(big).state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(Get(late).state(), v1::JOB_STATE_PENDING);
}

TEST_F(CoreTest, FullNodeIsNotDoubleBooked) {
  Register("a", 1, 8);
  const std::string first = MustSubmit(Yaml("first", 1, 8, 1));
  const std::string second = MustSubmit(Yaml("second", 1, 1, 1));
  EXPECT_EQ(Get(first).state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(Get(second).state(), v1::JOB_STATE_PENDING);
  v1::Node a = NodeNamed("a");
  EXPECT_EQ(a.allocated().gpus(), 8);
  EXPECT_THAT(a.allocated_gpus(), UnorderedElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
}

TEST_F(CoreTest, JobsPackOntoTheFullestNode) {
  Register("a", 1, 8);
  Register("b", 2, 8);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(MustSubmit(Yaml(absl::StrCat("j", i), 1, 1, 1)));
  // A two-replica gang that fits on one node goes on one node.
  const std::string gang = MustSubmit(Yaml("gang", 2, 1, 2));
  for (const std::string& id : ids) EXPECT_EQ(Get(id).ranks(0).node(), "a") << id;
  EXPECT_EQ(Get(gang).ranks(0).node(), "a");
  EXPECT_EQ(Get(gang).ranks(1).node(), "a");
  EXPECT_EQ(NodeNamed("a").allocated().gpus(), 8);
  EXPECT_EQ(NodeNamed("b").allocated().gpus(), 0);
  std::set<int32_t> gpus;
  for (const std::string& id : ids) {
    // Named: a range-for over a member of the temporary Get() returns reads
    // freed memory (the temporary dies before the loop body).
    const v1::Job job = Get(id);
    for (int32_t g : job.ranks(0).gpu_indices()) EXPECT_TRUE(gpus.insert(g).second);
  }
}

// Many jobs, random shapes, random exits and failures, seeded: after every
// Settle() no node holds more than it has, and what ListNodes reports equals
// the sum over the jobs that hold resources.
TEST_F(CoreTest, RandomChurnNeverDoubleBooks) {
  std::mt19937 rng(20240611);
  const std::vector<std::pair<std::string, int>> nodes = {
      {"n0", 8}, {"n1", 8}, {"n2", 4}, {"n3", 2}};
  for (size_t i = 0; i < nodes.size(); ++i) {
    Register(nodes[i].first, static_cast<int64_t>(i + 1),
             Inventory(nodes[i].second, 16000, 64 * kGi));
  }
  struct Proc {
    std::string job;
    int32_t attempt;
    int32_t rank;
    int64_t session;
  };
  std::vector<Proc> running;
  int next_port = 20000;
  // Plays every agent for the messages of one Settle().
  auto deliver = [&](const std::vector<Sent>& sent) {
    for (const Sent& s : sent) {
      if (s.msg.has_launch()) {
        const v1::LaunchGang& l = s.msg.launch();
        for (const auto& rl : l.ranks())
          running.push_back({l.job_id(), l.attempt(), rl.rank(), s.session});
        Started(s.session, l, l.master_port() == 0 ? next_port++ : l.master_port());
      } else if (s.msg.has_stop()) {
        const v1::StopGang& st = s.msg.stop();
        for (auto it = running.begin(); it != running.end();) {
          if (it->job == st.job_id() && it->attempt == st.attempt() && it->session == s.session) {
            Exited(it->session, it->job, it->attempt, it->rank, 143);
            it = running.erase(it);
          } else {
            ++it;
          }
        }
      }
    }
  };
  auto check = [&] {
    std::map<std::string, v1::Resources> want;
    std::map<std::string, std::multiset<int32_t>> want_gpus;
    for (const v1::Job& job : core_->ListJobs(true)) {
      if (!HoldsResources(job.state())) continue;
      for (const auto& r : job.ranks()) {
        v1::Resources& w = want[r.node()];
        w.set_milli_cpus(w.milli_cpus() + job.spec().resources().milli_cpus());
        w.set_memory_bytes(w.memory_bytes() + job.spec().resources().memory_bytes());
        w.set_gpus(w.gpus() + job.spec().resources().gpus());
        for (int32_t g : r.gpu_indices()) want_gpus[r.node()].insert(g);
      }
    }
    for (const v1::Node& n : core_->ListNodes()) {
      const v1::Resources& a = n.allocated();
      ASSERT_GE(a.milli_cpus(), 0) << n.name();
      ASSERT_LE(a.milli_cpus(), n.inventory().milli_cpus()) << n.name();
      ASSERT_LE(a.memory_bytes(), n.inventory().memory_bytes()) << n.name();
      ASSERT_LE(a.gpus(), n.inventory().gpus_size()) << n.name();
      ASSERT_EQ(a.milli_cpus(), want[n.name()].milli_cpus()) << n.name();
      ASSERT_EQ(a.memory_bytes(), want[n.name()].memory_bytes()) << n.name();
      ASSERT_EQ(a.gpus(), want[n.name()].gpus()) << n.name();
      const auto& g = want_gpus[n.name()];
      ASSERT_EQ(std::set<int32_t>(g.begin(), g.end()).size(), g.size())
          << "GPU shared on " << n.name();
      ASSERT_EQ(std::multiset<int32_t>(n.allocated_gpus().begin(), n.allocated_gpus().end()), g);
      for (int32_t i : g) ASSERT_LT(i, n.inventory().gpus_size());
    }
  };
  auto pump = [&] {
    for (int i = 0; i < 50; ++i) {
      core_->Settle();
      check();
      if (HasFatalFailure()) return;
      std::vector<Sent> sent = sink_.Take();
      if (sent.empty()) return;
      deliver(sent);
    }
    FAIL() << "messages never settled";
  };

  std::vector<std::string> ids;
  int submitted = 0;
  size_t max_pending = 0;
  for (int step = 0; step < 3000 && !HasFatalFailure(); ++step) {
    if (submitted < 60 && rng() % 3 == 0) {
      const int replicas = 1 + static_cast<int>(rng() % 3);
      const int procs = 1 + static_cast<int>(rng() % 4);
      const int gpus = static_cast<int>(rng() % 3);
      const std::string policy = rng() % 2 ? "restartPolicy: OnFailure\nbackoffLimit: 2\n"
                                           : "restartPolicy: ExitCode\nbackoffLimit: 1\n";
      absl::StatusOr<v1::Job> job =
          Submit(Yaml(absl::StrCat("j", submitted++), replicas, procs, gpus, policy));
      // A replica of 4 x 2 GPUs fits only n0 and n1; more replicas of it
      // than the nodes hold even when empty are refused at submit.
      if (job.ok()) {
        ids.push_back(job->id());
      } else {
        ASSERT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << job.status();
        ASSERT_THAT(job.status().message(), HasSubstr("can never hold this job")) << job.status();
      }
    } else if (!running.empty()) {
      const size_t i = rng() % running.size();
      const Proc p = running[i];
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
      const int roll = static_cast<int>(rng() % 10);
      Exited(p.session, p.job, p.attempt, p.rank, roll < 7 ? 0 : (roll < 9 ? 137 : 1));
    } else if (submitted >= 60) {
      break;
    }
    pump();
    size_t pending = 0;
    for (const v1::Job& job : core_->ListJobs(false))
      pending += job.state() == v1::JOB_STATE_PENDING;
    max_pending = std::max(max_pending, pending);
  }
  ASSERT_FALSE(HasFatalFailure());
  // Whatever did not fit yet waits, untouched; cancel it.
  for (const std::string& id : ids) {
    const v1::Job job = Get(id);
    if (IsTerminal(job.state())) continue;
    EXPECT_EQ(job.state(), v1::JOB_STATE_PENDING) << id;
    ASSERT_TRUE(core_->Cancel(id).ok());
  }
  pump();
  std::map<v1::JobState, int> ended;
  int restarted = 0;
  for (const std::string& id : ids) {
    const v1::Job job = Get(id);
    EXPECT_TRUE(IsTerminal(job.state())) << id;
    ++ended[job.state()];
    restarted += job.restarts() > 0;
  }
  // The run exercised what it claims to: queueing, restarts, both endings.
  EXPECT_GE(ended[v1::JOB_STATE_SUCCEEDED], 20);
  EXPECT_GE(ended[v1::JOB_STATE_FAILED], 1);
  EXPECT_GE(restarted, 5);
  EXPECT_GE(max_pending, 3);
  for (const v1::Node& n : core_->ListNodes()) {
    EXPECT_EQ(n.allocated().gpus(), 0);
    EXPECT_EQ(n.allocated().milli_cpus(), 0);
    EXPECT_EQ(n.running_ranks(), 0);
  }
  EXPECT_TRUE(running.empty());
}

// ---------------------------------------------------------------------------
// Failures and the restart policy

TEST_F(CoreTest, FailedRankStopsTheGangAndRelaunchesAsAttemptTwo) {
  const std::string id = RunTwoNodeJob("restartPolicy: OnFailure\nbackoffLimit: 1\n");
  Exited(2, id, 1, 5, 1);
  core_->Settle();
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_RESTARTING);
  EXPECT_EQ(job.restarts(), 1);
  EXPECT_THAT(job.reason(), AllOf(HasSubstr("rank 5"), HasSubstr("exit code 1")));
  EXPECT_EQ(job.ranks(5).state(), v1::RANK_STATE_EXITED);
  EXPECT_EQ(job.ranks(5).exit_code(), 1);
  std::vector<Sent> sent = sink_.Take();
  for (int64_t session : {1, 2}) {
    auto stops = To(sent, session, kStop);
    ASSERT_EQ(stops.size(), 1u) << session;
    EXPECT_EQ(stops[0].stop().job_id(), id);
    EXPECT_EQ(stops[0].stop().attempt(), 1);
    EXPECT_EQ(stops[0].stop().grace_ms(), 2000);
  }
  EXPECT_EQ(CountKind(sent, kForget), 0);
  // Resources stay held until every rank is confirmed gone.
  EXPECT_EQ(NodeNamed("a").allocated().gpus(), 8);

  ExitLive(id, "a", 143);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_RESTARTING);
  EXPECT_THAT(sink_.sent, IsEmpty());

  ExitLive(id, "b", 143);
  core_->Settle();
  EXPECT_THAT(store_.StatesOf(id), ElementsAre(v1::JOB_STATE_PENDING, v1::JOB_STATE_SCHEDULED,
                                               v1::JOB_STATE_RUNNING, v1::JOB_STATE_RESTARTING,
                                               v1::JOB_STATE_PENDING, v1::JOB_STATE_SCHEDULED));
  job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(job.attempt(), 2);
  EXPECT_EQ(job.master_port(), 0);
  for (const auto& r : job.ranks()) EXPECT_EQ(r.state(), v1::RANK_STATE_LAUNCHING);
  sent = sink_.sent;
  ASSERT_EQ(To(sent, 1, kForget).size(), 1u);
  ASSERT_EQ(To(sent, 2, kForget).size(), 1u);
  EXPECT_EQ(To(sent, 1, kForget)[0].forget().attempt(), 1);
  auto launches = To(sent, 1, kLaunch);
  ASSERT_EQ(launches.size(), 1u);
  EXPECT_EQ(launches[0].launch().attempt(), 2);
  EXPECT_EQ(launches[0].launch().master_port(), 0);
  EXPECT_EQ(EnvOf(launches[0].launch(), launches[0].launch().ranks(0))["GANGWAY_ATTEMPT"], "2");
  EXPECT_THAT(To(sent, 2, kLaunch), IsEmpty());

  // The second failure exhausts backoffLimit 1.
  StartGang(id);
  Exited(1, id, 2, 0, 1);
  core_->Settle();
  job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_STOPPING);
  EXPECT_EQ(job.restarts(), 1);
  ExitLive(id, "a", 143);
  ExitLive(id, "b", 143);
  core_->Settle();
  job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(job.reason(), HasSubstr("BackoffLimitExceeded"));
  EXPECT_EQ(NodeNamed("a").allocated().gpus(), 0);
  EXPECT_EQ(NodeNamed("b").allocated().gpus(), 0);
}

TEST_F(CoreTest, ExitCodePolicyFailsOnProgramCodes) {
  const std::string id = RunTwoNodeJob("restartPolicy: ExitCode\nbackoffLimit: 3\n");
  Exited(1, id, 1, 2, 3);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_STOPPING);
  EXPECT_EQ(CountKind(sink_.Take(), kStop), 2);
  ExitLive(id, "a", 143);
  ExitLive(id, "b", 143);
  core_->Settle();
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(job.restarts(), 0);
  EXPECT_THAT(job.reason(), HasSubstr("exit code 3"));
}

TEST_F(CoreTest, ExitCodePolicyRestartsOnSignals) {
  const std::string id = RunTwoNodeJob("restartPolicy: ExitCode\nbackoffLimit: 3\n");
  Exited(2, id, 1, 6, 137);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_RESTARTING);
  ExitLive(id, "a", 143);
  ExitLive(id, "b", 143);
  core_->Settle();
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(job.attempt(), 2);
  EXPECT_EQ(job.restarts(), 1);
}

TEST_F(CoreTest, NeverPolicyFails) {
  const std::string id = RunTwoNodeJob("restartPolicy: Never\n");
  Exited(1, id, 1, 0, 137);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_STOPPING);
  ExitLive(id, "a", 143);
  ExitLive(id, "b", 143);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(Get(id).reason(), HasSubstr("exit code 137"));
}

TEST_F(CoreTest, NegativeExitCodeFromAnAgentIsNotSuccess) {
  Register("a", 1, 8);
  const std::string id = MustSubmit(Yaml("train", 1, 1, 1));
  StartGang(id);
  Exited(1, id, 1, 0, -9);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(Get(id).ranks(0).exit_code(), 0);
}

TEST_F(CoreTest, FailureBeforeTheOtherNodesLaunchedStopsOnlyRankZerosNode) {
  Register("a", 1, 8);
  Register("b", 2, 8);
  const std::string id = MustSubmit(Yaml("train", 2, 4, 2, "restartPolicy: OnFailure\n"));
  auto launches = To(sink_.Take(), 1, kLaunch);
  ASSERT_EQ(launches.size(), 1u);
  Started(1, launches[0].launch(), 0 /* port not known yet */);
  Exited(1, id, 1, 1, 1);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_RESTARTING);
  std::vector<Sent> sent = sink_.Take();
  EXPECT_EQ(To(sent, 1, kStop).size(), 1u);
  EXPECT_THAT(To(sent, 2, kStop), IsEmpty()) << "b was never launched";
  ExitLive(id, "a", 143);
  core_->Settle();
  EXPECT_EQ(Get(id).attempt(), 2);
}

// ---------------------------------------------------------------------------
// Cancel

TEST_F(CoreTest, CancelPendingEndsAtOnce) {
  const std::string id = MustSubmit(Yaml("train", 1, 1, 1));
  absl::StatusOr<v1::Job> job = core_->Cancel(id);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::JOB_STATE_CANCELLED);
  core_->Settle();
  EXPECT_EQ(store_.jobs.at(id).state(), v1::JOB_STATE_CANCELLED);
  // A node joining later does not launch it.
  Register("a", 1, 8);
  core_->Settle();
  EXPECT_THAT(sink_.sent, IsEmpty());
}

TEST_F(CoreTest, CancelRunningStopsTheGangFirst) {
  const std::string id = RunTwoNodeJob();
  absl::StatusOr<v1::Job> job = core_->Cancel(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::JOB_STATE_STOPPING);
  EXPECT_EQ(job->stop_target(), v1::JOB_STATE_CANCELLED);
  core_->Settle();
  std::vector<Sent> sent = sink_.Take();
  EXPECT_EQ(To(sent, 1, kStop).size(), 1u);
  EXPECT_EQ(To(sent, 2, kStop).size(), 1u);
  ExitLive(id, "a", 143);
  ExitLive(id, "b", 143);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(CountKind(sink_.Take(), kForget), 2);
  EXPECT_EQ(NodeNamed("a").allocated().gpus(), 0);
}

TEST_F(CoreTest, CancelRestartingEndsCancelled) {
  const std::string id = RunTwoNodeJob("restartPolicy: OnFailure\n");
  Exited(1, id, 1, 0, 1);
  core_->Settle();
  ASSERT_EQ(Get(id).state(), v1::JOB_STATE_RESTARTING);
  ASSERT_TRUE(core_->Cancel(id).ok());
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_STOPPING);
  ExitLive(id, "a", 143);
  ExitLive(id, "b", 143);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(To(sink_.sent, 1, kLaunch), IsEmpty());
}

TEST_F(CoreTest, CancelFinishedOrUnknownIsRefused) {
  Register("a", 1, 8);
  const std::string id = MustSubmit(Yaml("train", 1, 1, 1));
  StartGang(id);
  Exited(1, id, 1, 0, 0);
  core_->Settle();
  ASSERT_EQ(Get(id).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(core_->Cancel(id).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(core_->Cancel("nope-9").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CoreTest, CancelDuringAFailureStopEndsCancelled) {
  const std::string id = RunTwoNodeJob("restartPolicy: Never\n");
  Exited(1, id, 1, 0, 1);
  core_->Settle();
  ASSERT_EQ(Get(id).state(), v1::JOB_STATE_STOPPING);
  sink_.Take();
  absl::StatusOr<v1::Job> job = core_->Cancel(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->stop_target(), v1::JOB_STATE_CANCELLED);
  core_->Settle();
  EXPECT_EQ(store_.jobs.at(id).stop_target(), v1::JOB_STATE_CANCELLED);
  ExitLive(id, "a", 143);
  ExitLive(id, "b", 143);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_CANCELLED);
}

TEST_F(CoreTest, CancelBeforeThePortIsKnownStopsOnlyRankZerosNode) {
  Register("a", 1, 8);
  Register("b", 2, 8);
  const std::string id = MustSubmit(Yaml("train", 2, 4, 2));
  sink_.Take();
  ASSERT_TRUE(core_->Cancel(id).ok());
  core_->Settle();
  std::vector<Sent> sent = sink_.Take();
  EXPECT_EQ(To(sent, 1, kStop).size(), 1u);
  EXPECT_THAT(To(sent, 2, kStop), IsEmpty());
  // The agent had launched before it read the stop.
  ExitLive(id, "a", 143);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(NodeNamed("b").allocated().gpus(), 0);
}

// ---------------------------------------------------------------------------
// Deadlines

TEST_F(CoreTest, DeadlineFailsAPendingJob) {
  Register("a", 1, 8);
  const std::string blocker = MustSubmit(Yaml("blocker", 1, 8, 1));
  StartGang(blocker);
  const std::string id = MustSubmit(Yaml("late", 1, 1, 1, "activeDeadlineSeconds: 10\n"));
  ASSERT_EQ(Get(id).state(), v1::JOB_STATE_PENDING);
  Advance(9000);
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_PENDING);
  Advance(1000);
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(job.reason(), HasSubstr("DeadlineExceeded"));
  EXPECT_EQ(store_.jobs.at(id).state(), v1::JOB_STATE_FAILED);
  // Capacity freeing later does not resurrect it.
  Exited(1, blocker, 1, 0, 0);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(To(sink_.sent, 1, kLaunch), IsEmpty());
}

TEST_F(CoreTest, DeadlineStopsARunningJob) {
  const std::string id = RunTwoNodeJob("activeDeadlineSeconds: 5\nrestartPolicy: OnFailure\n");
  Advance(4000);
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_RUNNING);
  Advance(1000);
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_STOPPING);
  std::vector<Sent> sent = sink_.Take();
  EXPECT_EQ(To(sent, 1, kStop).size(), 1u);
  EXPECT_EQ(To(sent, 2, kStop).size(), 1u);
  ExitLive(id, "a", 143);
  ExitLive(id, "b", 143);
  core_->Settle();
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(job.reason(), HasSubstr("DeadlineExceeded"));
  EXPECT_EQ(job.restarts(), 0) << "SIGTERM exits of a stop are not failures";
}

TEST_F(CoreTest, DeadlineDuringARestartFailsTheJob) {
  const std::string id = RunTwoNodeJob("activeDeadlineSeconds: 3\nrestartPolicy: OnFailure\n");
  Exited(1, id, 1, 0, 1);
  core_->Settle();
  ASSERT_EQ(Get(id).state(), v1::JOB_STATE_RESTARTING);
  sink_.Take();
  Advance(3000);
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_STOPPING);
  ExitLive(id, "a", 143);
  ExitLive(id, "b", 143);
  core_->Settle();
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(job.reason(), HasSubstr("DeadlineExceeded"));
  EXPECT_EQ(job.attempt(), 1) << "never relaunched";
  EXPECT_THAT(To(sink_.sent, 1, kLaunch), IsEmpty());
}

// ---------------------------------------------------------------------------
// Nodes: heartbeats, reconnects, reconciliation

TEST_F(CoreTest, SilentNodeIsLostAndTheJobRestarts) {
  const std::string id = RunTwoNodeJob("restartPolicy: OnFailure\n");
  silent_.insert("b");
  Advance(5000);
  EXPECT_EQ(NodeNamed("b").state(), v1::NODE_STATE_READY);
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_RUNNING);
  Advance(1000);
  EXPECT_EQ(NodeNamed("b").state(), v1::NODE_STATE_NOT_READY);
  EXPECT_EQ(NodeNamed("a").state(), v1::NODE_STATE_READY);
  ASSERT_EQ(sink_.closed.size(), 1u);
  EXPECT_EQ(sink_.closed[0].first, 2);
  EXPECT_EQ(sink_.closed[0].second.code(), absl::StatusCode::kUnavailable);
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_RESTARTING);
  EXPECT_THAT(job.reason(), HasSubstr("node was lost"));
  for (int r = 4; r < 8; ++r) EXPECT_EQ(job.ranks(r).state(), v1::RANK_STATE_LOST);
  std::vector<Sent> sent = sink_.Take();
  EXPECT_EQ(To(sent, 1, kStop).size(), 1u);
  EXPECT_THAT(To(sent, 2, kStop), IsEmpty());

  // Messages from the closed session are ignored.
  Exited(2, id, 1, 4, 0);
  EXPECT_EQ(Get(id).ranks(4).state(), v1::RANK_STATE_LOST);

  ExitLive(id, "a", 143);
  core_->Settle();
  job = Get(id);
  // Both replicas need a whole node and b is gone: waiting, with a reason.
  EXPECT_EQ(job.state(), v1::JOB_STATE_PENDING);
  EXPECT_THAT(job.reason(), HasSubstr("waiting for 2 replicas of "));
  EXPECT_THAT(job.reason(), HasSubstr("; 1 fits now"));
  EXPECT_EQ(To(sink_.Take(), 1, kForget).size(), 1u);
  EXPECT_EQ(NodeNamed("a").allocated().gpus(), 0);
  EXPECT_EQ(NodeNamed("b").allocated().gpus(), 0);

  // b comes back with nothing: the gang relaunches.
  Register("b", 12, 8);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(Get(id).attempt(), 2);
}

TEST_F(CoreTest, SilentNodeFailsAJobThatNeverRestarts) {
  const std::string id = RunTwoNodeJob("restartPolicy: Never\n");
  silent_.insert("a");
  Advance(6000);
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_STOPPING);
  ExitLive(id, "b", 143);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(Get(id).reason(), HasSubstr("node was lost"));
}

TEST_F(CoreTest, ReconnectWithinTimeoutRelaunchesNothing) {
  const std::string id = RunTwoNodeJob("restartPolicy: OnFailure\n");
  CloseSession("b");
  Advance(3000);
  EXPECT_EQ(NodeNamed("b").state(), v1::NODE_STATE_READY);
  Register("b", 12, Inventory(8), RecordsOn(id, "b"));
  core_->Settle();
  EXPECT_THAT(sink_.Take(), IsEmpty());
  Advance(10000);
  EXPECT_THAT(sink_.sent, IsEmpty());
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_EQ(job.restarts(), 0);
  EXPECT_EQ(NodeNamed("b").running_ranks(), 4);
  // The new session carries its exits.
  for (int r = 0; r < 8; ++r) Exited(r < 4 ? 1 : 12, id, 1, r, 0);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(CoreTest, ReconnectWithoutALaunchingRankResendsItsLaunch) {
  Register("a", 1, 8);
  Register("b", 2, 8);
  // a's stream broke before the launch went out.
  CloseSession("a");
  const std::string id = MustSubmit(Yaml("train", 2, 4, 2));
  EXPECT_THAT(sink_.Take(), IsEmpty());
  Register("a", 11, Inventory(8));
  core_->Settle();
  std::vector<Sent> sent = sink_.Take();
  auto launches = To(sent, 11, kLaunch);
  ASSERT_EQ(launches.size(), 1u);
  EXPECT_EQ(launches[0].launch().master_port(), 0);
  EXPECT_EQ(launches[0].launch().ranks_size(), 4);
  EXPECT_THAT(To(sent, 2, kLaunch), IsEmpty());

  // Now b loses the launch that carries the port.
  CloseSession("b");
  Started(11, launches[0].launch(), kPort);
  core_->Settle();
  EXPECT_THAT(sink_.Take(), IsEmpty());
  Register("b", 12, Inventory(8));
  core_->Settle();
  launches = To(sink_.Take(), 12, kLaunch);
  ASSERT_EQ(launches.size(), 1u);
  EXPECT_EQ(launches[0].launch().master_port(), kPort);
  Started(12, launches[0].launch(), kPort);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(Get(id).attempt(), 1);
}

TEST_F(CoreTest, ReconnectWithoutARunningRankCountsItLost) {
  const std::string id = RunTwoNodeJob("restartPolicy: OnFailure\n");
  CloseSession("b");
  // The agent restarted and forgot everything.
  Register("b", 12, Inventory(8));
  core_->Settle();
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_RESTARTING);
  for (int r = 4; r < 8; ++r) EXPECT_EQ(job.ranks(r).state(), v1::RANK_STATE_LOST);
  EXPECT_EQ(To(sink_.Take(), 1, kStop).size(), 1u);
}

TEST_F(CoreTest, ReconnectReportingAnExitDuringTheOutageHandlesIt) {
  const std::string id = RunTwoNodeJob("restartPolicy: OnFailure\n");
  CloseSession("b");
  std::vector<v1::RankRecord> recs = RecordsOn(id, "b");
  recs[1].set_exited(true);
  recs[1].set_exit_code(1);
  Register("b", 12, Inventory(8), recs);
  core_->Settle();
  const v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_RESTARTING);
  EXPECT_EQ(job.ranks(5).exit_code(), 1);
  std::vector<Sent> sent = sink_.Take();
  EXPECT_EQ(To(sent, 1, kStop).size(), 1u);
  EXPECT_EQ(To(sent, 12, kStop).size(), 1u);
}

// A StopGang lost with a broken stream is sent again when the node returns
// still running the ranks; otherwise the gang never stops.
TEST_F(CoreTest, ReconnectDuringAStopResendsTheStop) {
  const std::string id = RunTwoNodeJob("restartPolicy: OnFailure\n");
  Exited(1, id, 1, 0, 1);
  CloseSession("b");  // before the stop goes out
  core_->Settle();
  std::vector<Sent> sent = sink_.Take();
  EXPECT_EQ(To(sent, 1, kStop).size(), 1u);
  ASSERT_EQ(Get(id).state(), v1::JOB_STATE_RESTARTING);

  Register("b", 12, Inventory(8), RecordsOn(id, "b"));
  core_->Settle();
  auto stops = To(sink_.Take(), 12, kStop);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].stop().attempt(), 1);
  ExitLive(id, "a", 143);
  ExitLive(id, "b", 143);
  core_->Settle();
  EXPECT_EQ(Get(id).attempt(), 2);
}

// The GangStarted of a one-node job was lost with the session; the agent
// reports the ranks running when it registers again.
TEST_F(CoreTest, ReconnectReportingStartedRanksOfAOneNodeJobMakesItRunning) {
  Register("a", 1, 8);
  const std::string id = MustSubmit(Yaml("train", 1, 2, 1));
  ASSERT_EQ(To(sink_.Take(), 1, kLaunch).size(), 1u);
  CloseSession("a");
  Register("a", 11, Inventory(8), RecordsOn(id, "a"));
  core_->Settle();
  EXPECT_THAT(sink_.Take(), IsEmpty()) << "no second copy";
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_RUNNING);
  Exited(11, id, 1, 0, 0);
  Exited(11, id, 1, 1, 0);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(NodeNamed("a").allocated().gpus(), 0);
}

TEST_F(CoreTest, ReconnectReportingFinishedRanksOfAOneNodeJobSucceeds) {
  Register("a", 1, 8);
  const std::string id = MustSubmit(Yaml("train", 1, 2, 1));
  sink_.Take();
  CloseSession("a");
  Register("a", 11, Inventory(8), RecordsOn(id, "a", /*exited=*/true, 0));
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(To(sink_.Take(), 11, kForget).size(), 1u);
  EXPECT_EQ(NodeNamed("a").allocated().gpus(), 0);
  // Cancelling it now is refused and frees nothing twice.
  EXPECT_EQ(core_->Cancel(id).status().code(), absl::StatusCode::kFailedPrecondition);
  core_->Settle();
  EXPECT_EQ(NodeNamed("a").allocated().gpus(), 0);
}

// Rank 0's node started its ranks, but the port it reserved was lost with the
// session: the other nodes can never be launched, so the attempt is replaced
// (without counting against backoffLimit).
TEST_F(CoreTest, ReconnectThatLostTheMasterPortRelaunchesTheGang) {
  Register("a", 1, 8);
  Register("b", 2, 8);
  const std::string id = MustSubmit(Yaml("train", 2, 4, 2, "restartPolicy: Never\n"));
  ASSERT_EQ(To(sink_.Take(), 1, kLaunch).size(), 1u);
  CloseSession("a");
  Register("a", 11, Inventory(8), RecordsOn(id, "a"));
  core_->Settle();
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_RESTARTING);
  EXPECT_EQ(job.restarts(), 0);
  std::vector<Sent> sent = sink_.Take();
  EXPECT_EQ(To(sent, 11, kStop).size(), 1u);
  EXPECT_THAT(To(sent, 2, kStop), IsEmpty());
  ExitLive(id, "a", 143);
  core_->Settle();
  job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(job.attempt(), 2);
  StartGang(id);
}

TEST_F(CoreTest, UnknownJobsAndStaleAttemptsAreStoppedThenForgotten) {
  const std::string id = RunTwoNodeJob("restartPolicy: OnFailure\n");
  // Move the job to attempt 2.
  Exited(1, id, 1, 0, 1);
  core_->Settle();
  ExitLive(id, "a", 143);
  ExitLive(id, "b", 143);
  core_->Settle();
  StartGang(id);
  ASSERT_EQ(Get(id).attempt(), 2);

  CloseSession("b");
  std::vector<v1::RankRecord> recs = RecordsOn(id, "b");
  v1::RankRecord stale = recs[0];
  stale.set_attempt(1);  // attempt 1 still running there
  recs.push_back(stale);
  v1::RankRecord ghost;
  ghost.set_job_id("ghost-99");
  ghost.set_attempt(1);
  ghost.set_rank(0);
  recs.push_back(ghost);
  v1::RankRecord gone = ghost;
  gone.set_job_id("gone-98");
  gone.set_exited(true);
  gone.set_exit_code(0);
  recs.push_back(gone);
  Register("b", 12, Inventory(8), recs);
  core_->Settle();
  std::vector<Sent> sent = sink_.Take();
  std::set<std::pair<std::string, int32_t>> stops, forgets;
  for (const auto& m : To(sent, 12, kStop)) stops.emplace(m.stop().job_id(), m.stop().attempt());
  for (const auto& m : To(sent, 12, kForget)) {
    forgets.emplace(m.forget().job_id(), m.forget().attempt());
  }
  EXPECT_THAT(stops, UnorderedElementsAre(std::make_pair(id, 1), std::make_pair("ghost-99", 1)));
  EXPECT_THAT(forgets, UnorderedElementsAre(std::make_pair("gone-98", 1)));
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(Get(id).attempt(), 2);

  // Their exits are answered with ForgetGang and change nothing.
  Exited(12, "ghost-99", 1, 0, 143);
  Exited(12, id, 1, 4, 143);
  core_->Settle();
  sent = sink_.Take();
  forgets.clear();
  for (const auto& m : To(sent, 12, kForget)) {
    forgets.emplace(m.forget().job_id(), m.forget().attempt());
  }
  EXPECT_THAT(forgets, UnorderedElementsAre(std::make_pair("ghost-99", 1), std::make_pair(id, 1)));
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(Get(id).ranks(4).state(), v1::RANK_STATE_RUNNING);
}

TEST_F(CoreTest, GangStartedForAnUnknownAttemptIsStopped) {
  Register("a", 1, 8);
  v1::LaunchGang launch;
  launch.set_job_id("ghost-1");
  launch.set_attempt(3);
  launch.add_ranks()->set_rank(0);
  Started(1, launch, kPort);
  core_->Settle();
  auto stops = To(sink_.Take(), 1, kStop);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].stop().job_id(), "ghost-1");
  EXPECT_EQ(stops[0].stop().attempt(), 3);
}

TEST_F(CoreTest, RegisterValidatesAndANewSessionReplacesTheOld) {
  v1::Register reg;
  EXPECT_EQ(core_->OnRegister(5, reg).status().code(), absl::StatusCode::kInvalidArgument);
  reg.set_node_name("a");
  *reg.mutable_inventory() = Inventory(65);
  EXPECT_EQ(core_->OnRegister(5, reg).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(core_->ListNodes(), IsEmpty());

  Register("a", 1, 8);
  Register("a", 2, 8);
  ASSERT_EQ(sink_.closed.size(), 1u);
  EXPECT_EQ(sink_.closed[0].first, 1);
  EXPECT_EQ(sink_.closed[0].second.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(core_->ListNodes().size(), 1u);
  EXPECT_EQ(NodeNamed("a").address(), "a.cluster");
  // The closed session's messages are ignored, its close changes nothing.
  core_->OnSessionClosed(1);
  const std::string id = MustSubmit(Yaml("train", 1, 1, 1));
  EXPECT_EQ(To(sink_.sent, 2, kLaunch).size(), 1u);
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_SCHEDULED);
}

// ---------------------------------------------------------------------------
// Watch and logs

TEST_F(CoreTest, WatchSeesEveryStoredStateInOrder) {
  const std::string id = MustSubmit(Yaml("train", 1, 1, 1, "restartPolicy: OnFailure\n"));
  std::vector<v1::JobState> seen;
  absl::StatusOr<int64_t> w = core_->Watch(id, [&](const v1::Job& j) {
    if (seen.empty() || seen.back() != j.state()) seen.push_back(j.state());
  });
  ASSERT_TRUE(w.ok());
  EXPECT_THAT(seen, ElementsAre(v1::JOB_STATE_PENDING));
  Register("a", 1, 8);
  core_->Settle();
  auto launches = To(sink_.Take(), 1, kLaunch);
  ASSERT_EQ(launches.size(), 1u);
  Started(1, launches[0].launch(), kPort);
  core_->Settle();
  Exited(1, id, 1, 0, 137);
  core_->Settle();  // restarting, and one rank only: pending, scheduled again
  StartGang(id);
  Exited(1, id, 2, 0, 0);
  core_->Settle();
  EXPECT_THAT(seen,
              ElementsAre(v1::JOB_STATE_PENDING, v1::JOB_STATE_SCHEDULED, v1::JOB_STATE_RUNNING,
                          v1::JOB_STATE_PENDING, v1::JOB_STATE_SCHEDULED, v1::JOB_STATE_RUNNING,
                          v1::JOB_STATE_SUCCEEDED));
  // Watchers see what the store holds, in the same order. (Restarting lasted
  // less than a loop turn here: the only rank had already exited.)
  EXPECT_EQ(seen, store_.StatesOf(id));
  EXPECT_EQ(core_->Watch("nope-1", [](const v1::Job&) {}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CoreTest, UnwatchInsideTheCallbackIsSafe) {
  const std::string id = MustSubmit(Yaml("train", 1, 1, 1));
  int calls = 0;
  int64_t watch_id = 0;
  absl::StatusOr<int64_t> w = core_->Watch(id, [&](const v1::Job&) {
    if (++calls == 2) core_->Unwatch(watch_id);
  });
  ASSERT_TRUE(w.ok());
  watch_id = *w;
  Register("a", 1, 8);
  core_->Settle();
  ASSERT_TRUE(core_->Cancel(id).ok());
  core_->Settle();
  EXPECT_EQ(calls, 2);
}

TEST_F(CoreTest, ReadLogAsksTheRanksNodeAndAnswersWithItsData) {
  Register("a", 1, 8);
  const std::string id = MustSubmit(Yaml("train", 1, 2, 1));
  StartGang(id);
  std::optional<absl::StatusOr<v1::LogData>> got;
  core_->ReadLog(id, 1, 0, 10, 100, [&](absl::StatusOr<v1::LogData> d) { got = std::move(d); });
  std::vector<Sent> sent = sink_.Take();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_TRUE(sent[0].msg.has_read_log());
  const v1::ReadLog& req = sent[0].msg.read_log();
  EXPECT_EQ(req.rank(), 1);
  EXPECT_EQ(req.attempt(), 1);
  EXPECT_EQ(req.offset(), 10);
  EXPECT_FALSE(got.has_value());
  v1::AgentMessage msg;
  msg.mutable_log_data()->set_request_id(req.request_id());
  msg.mutable_log_data()->set_data("hello");
  core_->OnAgentMessage(1, msg);
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->ok());
  EXPECT_EQ((*got)->data(), "hello");

  // A read pending when the node disconnects fails instead of hanging.
  got.reset();
  core_->ReadLog(id, 0, 0, 0, 100, [&](absl::StatusOr<v1::LogData> d) { got = std::move(d); });
  CloseSession("a");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status().code(), absl::StatusCode::kUnavailable);
  got.reset();
  core_->ReadLog(id, 7, 0, 0, 100, [&](absl::StatusOr<v1::LogData> d) { got = std::move(d); });
  EXPECT_EQ(got->status().code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Recovery over SQLite

class CoreRecoveryTest : public CoreTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(OpenSqlite()); }
  void TearDown() override { core_.reset(); }

  // A fresh store handle and core over the same file, as after a restart.
  void OpenSqlite() {
    core_.reset();
    absl::Status error;
    SqliteStore* store = sqlite_.Reopen(&error);
    ASSERT_NE(store, nullptr) << error;
    MakeCore(store);
  }

  fakes::SqliteDir sqlite_;
};

TEST_F(CoreRecoveryTest, AJobsWaitBeforeARestartStillCountsTowardsHoldingCapacity) {
  Register("a", 1, 8);
  const std::string filler = MustSubmit(Yaml("filler", 1, 1, 4));
  StartGang(filler);
  const std::string big = MustSubmit(Yaml("big", 1, 1, 8));
  Advance(61'000);

  ASSERT_NO_FATAL_FAILURE(OpenSqlite());
  ASSERT_TRUE(core_->Recover().ok());
  Register("a", 21, Inventory(8), RecordsOn(filler, "a"));
  core_->Settle();
  // Never launched: it has waited since it was created, not since the restart.
  const std::string small = MustSubmit(Yaml("small", 1, 1, 1));
  EXPECT_EQ(Get(small).state(), v1::JOB_STATE_PENDING);
  EXPECT_THAT(Get(big).reason(), HasSubstr("holding a for it"));
}

TEST_F(CoreRecoveryTest, RunningJobSurvivesACoordinatorRestart) {
  const std::string id = RunTwoNodeJob("restartPolicy: OnFailure\n");
  const std::string waiting = MustSubmit(Yaml("waiting", 1, 1, 8));
  ASSERT_EQ(Get(waiting).state(), v1::JOB_STATE_PENDING);
  const v1::Job before = Get(id);
  sink_.Take();

  ASSERT_NO_FATAL_FAILURE(OpenSqlite());
  ASSERT_TRUE(core_->Recover().ok());
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job.master_port(), kPort);
  EXPECT_EQ(Get(waiting).state(), v1::JOB_STATE_PENDING);
  // Placeholders until the nodes register; their resources stay held.
  EXPECT_EQ(NodeNamed("a").state(), v1::NODE_STATE_NOT_READY);
  EXPECT_EQ(NodeNamed("a").allocated().gpus(), 8);
  core_->Settle();
  EXPECT_THAT(sink_.sent, IsEmpty());

  Register("a", 21, Inventory(8), RecordsOn(id, "a"));
  Register("b", 22, Inventory(8), RecordsOn(id, "b"));
  core_->Settle();
  EXPECT_THAT(sink_.Take(), IsEmpty()) << "nothing relaunched, nothing stopped";
  Advance(20000);
  EXPECT_THAT(sink_.sent, IsEmpty());
  job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job.attempt(), before.attempt());
  EXPECT_EQ(Get(waiting).state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(NodeNamed("a").allocated().gpus(), 8);

  // New submissions do not reuse ids.
  EXPECT_EQ(MustSubmit(Yaml("train", 1, 1, 0)), "train-3");

  for (int r = 0; r < 8; ++r) Exited(r < 4 ? 21 : 22, id, 1, r, 0);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(Get(waiting).state(), v1::JOB_STATE_SCHEDULED);
}

TEST_F(CoreRecoveryTest, NodeThatNeverReturnsLosesItsRanks) {
  const std::string id = RunTwoNodeJob("restartPolicy: OnFailure\n");
  ASSERT_NO_FATAL_FAILURE(OpenSqlite());
  ASSERT_TRUE(core_->Recover().ok());
  Register("a", 21, Inventory(8), RecordsOn(id, "a"));
  core_->Settle();
  // node_timeout plus the recovery grace for agents still in backoff.
  Advance(10000);
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_RUNNING);
  Advance(1000);
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_RESTARTING);
  for (int r = 4; r < 8; ++r) EXPECT_EQ(job.ranks(r).state(), v1::RANK_STATE_LOST);
  EXPECT_EQ(To(sink_.Take(), 21, kStop).size(), 1u);
  ExitLive(id, "a", 143);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(NodeNamed("b").allocated().gpus(), 0);
  EXPECT_EQ(NodeNamed("a").allocated().gpus(), 0);

  // And it is all on disk.
  ASSERT_NO_FATAL_FAILURE(OpenSqlite());
  ASSERT_TRUE(core_->Recover().ok());
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(Get(id).restarts(), 1);
}

TEST_F(CoreRecoveryTest, StoppingJobIsStoppedAgainAfterARestart) {
  const std::string id = RunTwoNodeJob();
  ASSERT_TRUE(core_->Cancel(id).ok());
  core_->Settle();
  sink_.Take();  // the stops, which the agents never acted on
  ASSERT_NO_FATAL_FAILURE(OpenSqlite());
  ASSERT_TRUE(core_->Recover().ok());
  ASSERT_EQ(Get(id).state(), v1::JOB_STATE_STOPPING);
  Register("a", 21, Inventory(8), RecordsOn(id, "a"));
  Register("b", 22, Inventory(8), RecordsOn(id, "b"));
  core_->Settle();
  std::vector<Sent> sent = sink_.Take();
  EXPECT_EQ(To(sent, 21, kStop).size(), 1u);
  EXPECT_EQ(To(sent, 22, kStop).size(), 1u);
  ExitLive(id, "a", 143);
  ExitLive(id, "b", 143);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_CANCELLED);
}

TEST_F(CoreTest, RecoverReportsAnUnreadableStore) {
  store_.load_error = absl::DataLossError("job x-1 in the store does not parse");
  absl::Status s = core_->Recover();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(core_->ListJobs(true), IsEmpty());
}

}  // namespace
}  // namespace gangway::coordinator

namespace gangway::coordinator {
namespace {

TEST_F(CoreTest, NoPortFromRankZerosNodeFailsTheAttemptByPolicy) {
  Register("a", 1, 8);
  Register("b", 2, 8);
  const std::string id =
      MustSubmit(Yaml("train", 2, 4, 2, "restartPolicy: OnFailure\nbackoffLimit: 1\n"));
  auto launches = To(sink_.Take(), 1, kLaunch);
  ASSERT_EQ(launches.size(), 1u);
  Started(1, launches[0].launch(), 0);
  core_->Settle();
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_RESTARTING);
  EXPECT_EQ(job.restarts(), 1);
  // Node b never got a launch: nothing to stop there.
  std::vector<Sent> sent = sink_.Take();
  EXPECT_THAT(To(sent, 2, kLaunch), IsEmpty());
  EXPECT_EQ(To(sent, 1, kStop).size(), 1u);
}

TEST_F(CoreTest, NothingIsPlacedOnANodeWhoseSessionClosed) {
  Register("a", 1, 8);
  CloseSession("a");
  const std::string id = MustSubmit(Yaml("train", 1, 1, 1));
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_PENDING);
  EXPECT_THAT(sink_.sent, IsEmpty());
  Register("a", 3, 8);
  core_->Settle();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(To(sink_.Take(), 3, kLaunch).size(), 1u);
}

}  // namespace
}  // namespace gangway::coordinator
