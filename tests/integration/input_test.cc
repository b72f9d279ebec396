// Bad input through the real CLI and RPC, and `gangway local`.
#include <grpcpp/generic/generic_stub.h>

#include <condition_variable>
#include <mutex>
#include <random>
#include <regex>

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
