// Bad input through the real CLI and RPC, and `gangway local`.
#include <grpcpp/generic/generic_stub.h>

#include <condition_variable>
#include <mutex>
#include <random>
#include <regex>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

struct BadSpec {
  const char* name;
  const char* yaml;
  const char* field;  // what the message must name
  const char* line;   // and where
};

TEST(InputIntegration, BadSpecsAreRefusedWithFieldAndLine) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const BadSpec cases[] = {
      {"malformed", "name: bad\nreplicas: 1\ncommand: [sh, -c\nprocsPerNode: 1\n", "", "line "},
      {"unknown-field",
       "name: unknown\nreplicas: 1\nprocsPerNode: 1\nresources:\n  cpus: 1\n  memroy: 64Mi\n"
       "command: [\"true\"]\n",
       "memroy", "line 6"},
      {"wrong-type", "name: wrongtype\nreplicas: two\nprocsPerNode: 1\ncommand: [\"true\"]\n",
       "replicas", "line 2"},
      {"too-many-gpus",
       "name: gpus\nreplicas: 1\nprocsPerNode: 1\ncommand: [\"true\"]\nresources:\n  cpus: 1\n"
       "  gpus: 1\n",
       "resources.gpus", "line 7"},
  };
  for (const BadSpec& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = cluster.WriteSpec(std::string(c.name) + ".yaml", c.yaml);
    RunResult r = cluster.Cli({"submit", path});
    EXPECT_NE(r.code, 0) << r.out;
    EXPECT_NE(r.err.find(c.field), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.line), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }

  // Nothing was stored.
  std::optional<v1::ListJobsResponse> all = cluster.ListJobs(true);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->jobs_size(), 0);
  RunResult list = cluster.Cli({"list", "-a"});
  ASSERT_EQ(list.code, 0) << list.err;
  for (const BadSpec& c : cases) {
    EXPECT_EQ(list.out.find(std::string(c.name) + "-"), std::string::npos) << list.out;
  }
}

// Bytes that are no protobuf message at all, and well-formed messages with
// wrong contents, on every service: refused, and the coordinator lives on.
// gRPC answers an unparsable payload itself, before any handler; well-formed
// but wrong requests get INVALID_ARGUMENT naming the field.
TEST(InputIntegration, MalformedRequestsAreRefusedAndTheCoordinatorStaysUp) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  auto channel = grpc::CreateChannel(cluster.address(), grpc::InsecureChannelCredentials());
  grpc::GenericStub generic(channel);
  std::mt19937 rng(7);
  const std::vector<std::string> methods = {
      "/gangway.v1.Control/SubmitJob", "/gangway.v1.Control/GetJob",
      "/gangway.v1.Control/CancelJob", "/gangway.v1.Sweeps/SubmitSweep",
      "/gangway.v1.Metrics/Report",    "/gangway.v1.Studies/CreateStudy",
      "/gangway.v1.Rendezvous/Set"};
  for (const std::string& method : methods) {
    for (int i = 0; i < 20; ++i) {
      std::string bytes(1 + rng() % 64, '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
      // A string field (tag 1, length-delimited) holding invalid UTF-8 never
      // parses in proto3.
      if (i == 0) bytes = std::string("\x0a\x02\xff\xfe", 4);
      // A well-formed GetJobRequest for a job that does not exist.
      const bool valid = i == 1 && method == "/gangway.v1.Control/GetJob";
      if (valid) {
        v1::GetJobRequest get;
        get.set_id("nope");
        bytes = get.SerializeAsString();
      }
      grpc::Slice slice(bytes);
      grpc::ByteBuffer request(&slice, 1), response;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      grpc::Status status;
      generic.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                        [&](grpc::Status s) {
                          std::lock_guard lock(mu);
                          status = s;
                          done = true;
                          cv.notify_one();
                        });
      std::unique_lock lock(mu);
      ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; }));
      if (i == 0) {
        // gRPC 1.51's callback server refuses a payload it cannot parse
        // before any handler runs, as UNIMPLEMENTED (docs/limits.md).
        EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << method;
      }
      if (valid) {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
      }
      // Whatever random bytes decode to, nothing is accepted as a job.
      EXPECT_NE(status.error_code(), grpc::StatusCode::UNAVAILABLE) << method;
    }
  }
  // A well-formed request with wrong contents.
  v1::SubmitJobRequest bad;
  bad.mutable_spec()->set_name("Not_A_Label");
  bad.mutable_spec()->add_command("true");
  v1::Job job;
  grpc::ClientContext ctx;
  grpc::Status s = v1::Control::NewStub(channel)->SubmitJob(&ctx, bad, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("name"), std::string::npos) << s.error_message();

  EXPECT_EQ(cluster.ReadyNodes(), 2);
  std::optional<v1::ListJobsResponse> all = cluster.ListJobs(true);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->jobs_size(), 0);
}

TEST(InputIntegration, OversizedRequestsAreRefusedAndTheCoordinatorStaysUp) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());

  // Past gRPC's receive limit (4 MiB).
  v1::Job job;
  grpc::Status s = cluster.SubmitYaml("name: big\n#" + std::string(5 << 20, 'x') + "\n", &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // Past the spec limit (1 MiB) but within the message limit.
  s = cluster.SubmitYaml("name: big\n#" + std::string(2 << 20, 'x') + "\n", &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // The CLI refuses a big file itself.
  const std::string big =
      cluster.WriteSpec("big.yaml", "name: big\n#" + std::string(2 << 20, 'x') + "\n");
  RunResult r = cluster.Cli({"submit", big});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("bytes"), std::string::npos) << r.err;

  // Still answering, nothing stored, and still taking work.
  EXPECT_EQ(cluster.ReadyNodes(), 2);
  std::optional<v1::ListJobsResponse> all = cluster.ListJobs(true);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->jobs_size(), 0);
  const std::string id = cluster.Submit(
      "name: small\nreplicas: 1\nprocsPerNode: 1\nresources:\n  cpus: 1\n  memory: 64Mi\n"
      "command: [\"true\"]\n");
  EXPECT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 10s));
}

// Specs and requests found by trying the product, each once refused badly
// or not at all; each now gets a clear error through the real CLI and RPC.
TEST(InputIntegration, HostileSpecsGetClearErrorsFromTheCli) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());

  // Invalid UTF-8 exited 1 with an empty message (the request failed to
  // serialize in the CLI).
  RunResult r = cluster.Cli(
      {"submit", cluster.WriteSpec("latin1.yaml", "name: bad\ncommand: [x]\nargs: [caf\xe9]\n")});
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("line 3 (byte 33): spec is not valid UTF-8 (byte 0xe9)"), std::string::npos)
      << r.err;

  // Aliases: a 104 KB spec of them became a 100 MB stored job.
  r = cluster.Cli(
      {"submit", cluster.WriteSpec("alias.yaml", "name: a\ncommand: &c [x]\nargs: *c\n")});
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("line 3: aliases are not supported"), std::string::npos) << r.err;

  // 600 KB of arguments x 8 processes: a 4.8 MB launch wedged the node.
  // The arguments now go once per node, and the job runs (six arguments
  // of 100 KB: Linux refuses a single one over 128 KiB).
  std::string wide =
      "name: wide\nprocsPerNode: 8\nresources: {cpus: 0.1}\n"
      "command: [sh, -c, 'test $# -eq 6 && test ${#1} -eq 100000', sh]\nargs: [";
  for (int i = 0; i < 6; ++i) absl::StrAppend(&wide, i ? ", " : "", std::string(100'000, 'a'));
  r = cluster.Cli({"submit", cluster.WriteSpec("wide.yaml", wide + "]\n")});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex(R"(job/(\S+) submitted)"))) << r.out;
  EXPECT_TRUE(cluster.WaitForState(m[1].str(), v1::JOB_STATE_SUCCEEDED, 30s));

  // 262,144 ranks on two 2-cpu nodes: accepted, it waited forever.
  r = cluster.Cli({"submit", cluster.WriteSpec("huge.yaml",
                                               "name: huge\nreplicas: 1024\nprocsPerNode: 2\n"
                                               "command: [x]\n")});
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("line 2: replicas: the 2 registered nodes can never hold this job"),
            std::string::npos)
      << r.err;

  // A missing job was reported as a missing sweep.
  r = cluster.Cli({"get", "nope-1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no job or sweep named 'nope-1'"), std::string::npos) << r.err;
  r = cluster.Cli({"cancel", "nope-1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no job or sweep named 'nope-1'"), std::string::npos) << r.err;

  // A spec sent as a proto: two 3 MiB ones made `list` fail for everyone.
  v1::SubmitJobRequest big;
  big.mutable_spec()->set_name("big");
  big.mutable_spec()->add_command("x");
  big.mutable_spec()->add_args(std::string(3 << 20, 'a'));
  v1::Job job;
  grpc::ClientContext ctx;
  grpc::Status s = cluster.stub().SubmitJob(&ctx, big, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find("the limit is 1048576"), std::string::npos) << s.error_message();

  // Nothing else was stored (only the wide job), and `list` works.
  std::optional<v1::ListJobsResponse> all = cluster.ListJobs(true);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->jobs_size(), 1);
  EXPECT_EQ(all->jobs(0).spec().name(), "wide");
  EXPECT_EQ(cluster.Cli({"list", "-a"}).code, 0);
}

// The hint "is a coordinator running?" belongs to a coordinator that could
// not be reached, and only there.
TEST(InputIntegration, UnreachableCoordinatorGetsTheHint) {
  TempDir dir;
  const int port = FreePort();
  ASSERT_NE(port, 0);
  RunResult r = RunCommand(
      dir, {CliBinary(), "--coordinator", "127.0.0.1:" + std::to_string(port), "list"}, 30s);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("is a coordinator running at"), std::string::npos) << r.err;
}

// Right after a coordinator restart, before the nodes are back, a valid job
// was refused ("the largest node has 0 cpus"): it waits Pending instead.
TEST(InputIntegration, SubmitRightAfterARestartWaitsForTheNodes) {
  Cluster cluster;
  const int port = FreePort();
  ASSERT_NE(port, 0);
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(cluster.StartCoordinator(listen));
  ASSERT_TRUE(cluster.StartAgent(0));
  ASSERT_TRUE(WaitFor([&] { return cluster.ReadyNodes() == 1; }, 10s));
  const std::string running =
      cluster.Submit("name: running\nresources: {cpus: 1}\ncommand: [sleep, '30']\n");
  ASSERT_TRUE(cluster.WaitForState(running, v1::JOB_STATE_RUNNING, 10s));
  // The node stays away: its agent is stopped before the coordinator is.
  cluster.agent(0).Signal(SIGKILL);
  ASSERT_TRUE(cluster.StopCoordinator());
  ASSERT_TRUE(cluster.StartCoordinator(listen));

  RunResult r = cluster.Cli({"submit", cluster.WriteSpec("after.yaml",
                                                         "name: after\nresources: {cpus: 2}\n"
                                                         "command: [\"true\"]\n")});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  std::optional<v1::ListJobsResponse> all = cluster.ListJobs(true);
  ASSERT_TRUE(all);
  bool found = false;
  for (const v1::Job& j : all->jobs()) {
    if (j.spec().name() != "after") continue;
    found = true;
    EXPECT_EQ(j.state(), v1::JOB_STATE_PENDING);
  }
  EXPECT_TRUE(found);
}

// `printf 'loss=\377\n'` in a trial dropped the agent's session every time
// it was printed (the point was not UTF-8, so the message did not
// serialize) and the trial lost its objective.
TEST(InputIntegration, InvalidUtf8MetricKeepsTheSessionAndTheObjective) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string spec = cluster.WriteSpec(
      "bytes.yaml",
      "kind: Sweep\nname: bytes\nobjective: {metric: loss, type: minimize}\n"
      "parameters:\n  - {name: x, type: discrete, values: [1]}\nalgorithm: {name: grid}\n"
      "maxTrials: 1\ntrialTemplate:\n  resources: {cpus: 1, memory: 64Mi}\n"
      "  command: [sh, -c, \"printf 'loss=\\\\377\\\\n'; sleep 0.5; printf 'loss=0.5\\\\n'\"]\n");
  RunResult r = cluster.Cli({"submit", spec});
  ASSERT_EQ(r.code, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex(R"(sweep/(\S+) submitted)"))) << r.out;
  const std::string id = m[1];
  RunResult best;
  EXPECT_TRUE(WaitFor(
      [&] {
        best = cluster.Cli({"best", id});
        return best.code == 0;
      },
      20s))
      << best.err;
  EXPECT_NE(best.out.find("loss=0.5"), std::string::npos) << best.out;
  EXPECT_EQ(cluster.ReadyNodes(), 2);
  const std::string log =
      ReadFile(cluster.dir().Sub("node-0.log")) + ReadFile(cluster.dir().Sub("node-1.log"));
  EXPECT_EQ(log.find("serializ"), std::string::npos) << log;
}

// `gangway local` runs coordinator and agents in one process: no cluster.
class LocalIntegration : public ::testing::Test {
 protected:
  ~LocalIntegration() override {
    for (pid_t pid : FindProcesses({tag_})) ::kill(pid, SIGKILL);
  }

  RunResult Local(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {CliBinary(), "local"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(dir_, argv, 30s, {{"GANGWAY_IT_TAG", dir_.Name()}});
  }

  TempDir dir_;
  const std::string tag_ = "GANGWAY_IT_TAG=" + dir_.Name();
};

TEST_F(LocalIntegration, HelloRunsFourRanks) {
  RunResult r = Local({SourcePath("examples/jobs/hello.yaml"), "--state", dir_.Sub("state")});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  int ranks = 0;
  const std::regex line(R"(^rank (\d) of 4 )");
  for (const std::string& l : Lines(r.out)) ranks += std::regex_search(l, line);
  EXPECT_EQ(ranks, 4) << r.out;
}

TEST_F(LocalIntegration, NodeTopologyGivesEveryNodeTheFilesGpus) {
  // Two 4-GPU ranks on one DGX-like node: each gets one NUMA node's GPUs.
  const std::string spec = dir_.Sub("gpus.yaml");
  WriteFile(spec,
            "name: gpus\nreplicas: 1\nprocsPerNode: 2\nresources:\n  cpus: 1\n  gpus: 4\n"
            "command: [sh, -c, 'echo \"rank $RANK gpus $CUDA_VISIBLE_DEVICES\"']\n");
  RunResult r =
      Local({spec, "--nodes", "1", "--node-topology",
             SourcePath("tests/data/topologies/dgx_like.xml"), "--state", dir_.Sub("state")});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("1 nodes of 16 cpus"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rank 0 gpus 0,1,2,3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rank 1 gpus 4,5,6,7"), std::string::npos) << r.out;

  // The topology has its own GPUs; a missing file is named.
  r = Local({spec, "--node-topology", SourcePath("tests/data/topologies/dgx_like.xml"),
             "--node-gpus", "2", "--state", dir_.Sub("state2")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--node-topology and --node-gpus"), std::string::npos) << r.err;
  r = Local({spec, "--node-topology", dir_.Sub("missing.xml"), "--state", dir_.Sub("state3")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("missing.xml"), std::string::npos) << r.err;
}

TEST_F(LocalIntegration, FailingSpecExitsNonZero) {
  const std::string spec = dir_.Sub("fail.yaml");
  WriteFile(spec,
            "name: fail\nreplicas: 1\nprocsPerNode: 1\nresources:\n  cpus: 1\n  memory: 64Mi\n"
            "command: [sh, -c, 'exit 7']\n");
  RunResult r = Local({spec, "--state", dir_.Sub("state")});
  EXPECT_NE(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("Failed"), std::string::npos) << r.out;

  // A spec that does not parse: refused before anything runs.
  const std::string bad = dir_.Sub("bad.yaml");
  WriteFile(bad, "name: bad\nreplicas: zero\ncommand: [\"true\"]\n");
  r = Local({bad, "--state", dir_.Sub("state2")});
  EXPECT_NE(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("replicas"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace gangway::itest
