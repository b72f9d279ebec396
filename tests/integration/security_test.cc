// Security on real binaries: TLS, node certificates, user tokens and roles,
// per-attempt job tokens, owners, the audit log and the listen rule.
#include <grpcpp/generic/generic_stub.h>

#include <future>
#include <regex>

#include "absl/strings/str_cat.h"
#include "coordinator/auth.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

using coordinator::FindRule;
using coordinator::Need;
using coordinator::ProtoMethods;

// Calls any method with an empty request as a bidirectional stream (one
// message, then half-close), which the server answers whatever the method's
// kind; returns the final status.
class AnyCall : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  grpc::Status Run(grpc::GenericStub& stub, const std::string& method) {
    // An empty message is one empty slice (a ByteBuffer without one is not
    // a message at all).
    grpc::Slice empty("", 0);
    request_ = grpc::ByteBuffer(&empty, 1);
    ctx_.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
    stub.PrepareBidiStreamingCall(&ctx_, "/" + method, {}, this);
    StartWrite(&request_);
    StartRead(&response_);
    StartCall();
    return done_.get_future().get();
  }
  void OnWriteDone(bool) override { StartWritesDone(); }
  void OnReadDone(bool ok) override {
    if (ok) StartRead(&response_);
  }
  void OnDone(const grpc::Status& s) override { done_.set_value(s); }

 private:
  grpc::ClientContext ctx_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::promise<grpc::Status> done_;
};

grpc::Status CallAny(const std::shared_ptr<grpc::Channel>& channel, const std::string& method) {
  grpc::GenericStub stub(channel);
  AnyCall call;
  return call.Run(stub, method);
}

ClusterOptions Secure(int agents = 1) {
  ClusterOptions o;
  o.secure = true;
  o.agents = agents;
  return o;
}

std::string SleepJob(const std::string& name) {
  return "name: " + name +
         "\nresources: {cpus: 0.1, memory: 16Mi}\ncommand: [sh, -c, 'sleep 60']\n";
}

// A rank's environment variable, read from /proc as the test's root can.
std::string RankEnv(pid_t pid, const std::string& name) {
  const std::string env = ReadFile("/proc/" + std::to_string(pid) + "/environ");
  for (size_t pos = 0; pos < env.size();) {
    size_t end = env.find('\0', pos);
    if (end == std::string::npos) end = env.size();
    const std::string kv = env.substr(pos, end - pos);
    if (kv.rfind(name + "=", 0) == 0) return kv.substr(name.size() + 1);
    pos = end + 1;
  }
  return "";
}

TEST(SecurityIntegration, EveryRpcRefusesCallsWithoutCredentialsAndViewersCannotMutate) {
  Cluster cluster(Secure());
  ASSERT_TRUE(cluster.Start());
  const std::shared_ptr<grpc::Channel> anonymous = cluster.Channel("");
  const std::shared_ptr<grpc::Channel> viewer = cluster.Channel(cluster.viewer_token());
  const std::vector<std::string> methods = ProtoMethods();
  ASSERT_GE(methods.size(), 23u);
  for (const std::string& method : methods) {
    SCOPED_TRACE(method);
    const coordinator::MethodRule* rule = FindRule(method);
    ASSERT_NE(rule, nullptr) << "no rule: add it to coordinator/auth.cc";
    grpc::Status s = CallAny(anonymous, method);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
    s = CallAny(viewer, method);
    if (rule->need == Need::kViewer) {
      EXPECT_NE(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
      EXPECT_NE(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    } else {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    }
  }
}

TEST(SecurityIntegration, PlaintextClientsAndForeignCertificatesCannotConnect) {
  Cluster cluster(Secure());
  ASSERT_TRUE(cluster.Start());
  auto plaintext = v1::Control::NewStub(
      grpc::CreateChannel(cluster.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  v1::ListJobsResponse resp;
  grpc::Status s = plaintext->ListJobs(&ctx, v1::ListJobsRequest(), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();

  // The CLI says what to do about it.
  RunResult cli = RunCommand(cluster.dir(), {CliBinary(), "--coordinator", cluster.address(),
                                             "--token", cluster.admin_token(), "list"});
  EXPECT_EQ(cli.code, 1);
  EXPECT_NE(cli.err.find("--tls-ca"), std::string::npos) << cli.err;

  // A certificate of another CA does not make a node.
  RunResult other = RunCommand(cluster.dir(), {CliBinary(), "certs", "init",
                                               cluster.dir().Sub("other"), "--node", "node-0"});
  ASSERT_EQ(other.code, 0) << other.err;
  common::ClientTls tls = cluster.Tls();
  tls.cert_file = cluster.dir().Sub("other/node-0.crt");
  tls.key_file = cluster.dir().Sub("other/node-0.key");
  absl::StatusOr<std::shared_ptr<grpc::Channel>> foreign =
      common::MakeChannel(cluster.address(), tls, "");
  ASSERT_TRUE(foreign.ok()) << foreign.status();
  s = CallAny(*foreign, "gangway.v1.AgentSession/Session");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

// Opens an agent session with `node`'s certificate and registers as `as`;
// returns the session's end, or OK once the coordinator acknowledged.
grpc::Status RegisterWith(const Cluster& cluster, const std::string& node, const std::string& as) {
  common::ClientTls tls = cluster.Tls();
  tls.cert_file = cluster.CertPath(node + ".crt");
  tls.key_file = cluster.CertPath(node + ".key");
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      common::MakeChannel(cluster.address(), tls, "");
  if (!channel.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "no channel");
  auto stub = v1::AgentSession::NewStub(*channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  auto stream = stub->Session(&ctx);
  v1::AgentMessage reg;
  reg.mutable_register_()->set_node_name(as);
  reg.mutable_register_()->set_address("127.0.0.1");
  reg.mutable_register_()->mutable_inventory()->set_milli_cpus(2000);
  reg.mutable_register_()->mutable_inventory()->set_memory_bytes(int64_t{1} << 30);
  stream->Write(reg);
  v1::CoordinatorMessage in;
  if (stream->Read(&in) && in.has_register_ack()) {
    ctx.TryCancel();
    stream->Finish();
    return grpc::Status::OK;
  }
  return stream->Finish();
}

TEST(SecurityIntegration, ANodeCertificateRegistersOnlyItsOwnNode) {
  Cluster cluster(Secure(1));
  ASSERT_TRUE(cluster.Start());
  // node-1's certificate (made by certs init, no agent runs it).
  grpc::Status s = RegisterWith(cluster, "node-1", "node-0");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_NE(s.error_message().find("cannot register as 'node-0'"), std::string::npos)
      << s.error_message();
  EXPECT_TRUE(HoldsFor([&] { return cluster.ReadyNodes() == 1; }, 300ms))
      << "the real node-0 was not kicked out";
  s = RegisterWith(cluster, "node-1", "node-1");
  EXPECT_TRUE(s.ok()) << s.error_message();

  // A user's token cannot open a session either.
  s = CallAny(cluster.Channel(cluster.admin_token()), "gangway.v1.AgentSession/Session");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();

  // Registrations are in the audit log with the certificate's identity.
  const std::string audit = ReadFile(cluster.dir().Sub("coordinator/audit.log"));
  EXPECT_NE(audit.find(R"("who":"node:node-1","method":"gangway.v1.AgentSession/Session",)"
                       R"("target":"node-0","code":"PERMISSION_DENIED")"),
            std::string::npos)
      << audit;
  EXPECT_NE(audit.find(R"("who":"node:node-0","method":"gangway.v1.AgentSession/Session",)"
                       R"("target":"node-0","code":"OK")"),
            std::string::npos)
      << audit;
}

TEST(SecurityIntegration, AJobTokenOpensOnlyItsOwnRunningAttempt) {
  Cluster cluster(Secure(1));
  ASSERT_TRUE(cluster.Start());
  const std::string a = cluster.Submit(SleepJob("a"));
  const std::string b = cluster.Submit(SleepJob("b"));
  ASSERT_TRUE(cluster.WaitForState(a, v1::JOB_STATE_RUNNING, 10s));
  ASSERT_TRUE(cluster.WaitForState(b, v1::JOB_STATE_RUNNING, 10s));
  std::vector<pid_t> ranks;
  ASSERT_TRUE(WaitFor([&] { return !(ranks = cluster.JobRanks(a)).empty(); }, 5s));
  const std::string token = RankEnv(ranks[0], "GANGWAY_JOB_TOKEN");
  ASSERT_FALSE(token.empty()) << "the rank has no GANGWAY_JOB_TOKEN";
  EXPECT_EQ(RankEnv(ranks[0], "GANGWAY_TLS_CA"), ReadFile(cluster.CertPath("ca.crt")))
      << "the rank gets the CA to verify the coordinator";

  auto as_rank = v1::Rendezvous::NewStub(cluster.Channel(token));
  auto scope = [](const std::string& job, int attempt) {
    v1::RdzvScope s;
    s.set_job_id(job);
    s.set_attempt(attempt);
    return s;
  };
  auto set = [&](const std::string& job, int attempt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
    v1::RdzvSetRequest req;
    *req.mutable_scope() = scope(job, attempt);
    req.set_key("nccl_unique_id");
    req.set_value("x");
    v1::RdzvSetResponse resp;
    return as_rank->Set(&ctx, req, &resp);
  };
  auto get = [&](const std::string& job, int attempt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
    v1::RdzvGetRequest req;
    *req.mutable_scope() = scope(job, attempt);
    req.add_keys("nccl_unique_id");
    v1::RdzvGetResponse resp;
    return as_rank->Get(&ctx, req, &resp);
  };
  EXPECT_TRUE(set(a, 1).ok());
  EXPECT_TRUE(get(a, 1).ok());
  EXPECT_EQ(get(b, 1).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(set(b, 1).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(set(a, 2).error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << "no scope for an attempt that does not exist";
  EXPECT_EQ(set("no-such-job-1", 1).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  auto metrics = v1::Metrics::NewStub(cluster.Channel(token));
  auto report = [&](const std::string& job) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
    v1::ReportMetricsRequest req;
    req.set_job_id(job);
    req.set_attempt(1);
    v1::MetricPoint* p = req.add_points();
    p->set_name("loss");
    p->set_value(-1000);
    v1::ReportMetricsResponse resp;
    return metrics->Report(&ctx, req, &resp);
  };
  EXPECT_TRUE(report(a).ok());
  EXPECT_EQ(report(b).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // A job token is not a user's.
  grpc::ClientContext ctx;
  v1::GetJobRequest req;
  req.set_id(a);
  v1::Job job;
  EXPECT_EQ(v1::Control::NewStub(cluster.Channel(token))->GetJob(&ctx, req, &job).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // Once its attempt ends, the token opens nothing.
  RunResult cancel = cluster.Cli({"cancel", a});
  ASSERT_EQ(cancel.code, 0) << cancel.err;
  ASSERT_TRUE(cluster.WaitForState(a, v1::JOB_STATE_CANCELLED, 10s));
  grpc::Status after = set(a, 1);
  EXPECT_EQ(after.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(after.error_message().find("not running"), std::string::npos) << after.error_message();
  EXPECT_EQ(report(a).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST(SecurityIntegration, WithoutTlsRanksStillNeedTheirJobToken) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string a = cluster.Submit(SleepJob("a"));
  ASSERT_TRUE(cluster.WaitForState(a, v1::JOB_STATE_RUNNING, 10s));
  auto stub = v1::Rendezvous::NewStub(cluster.Channel(""));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  v1::RdzvSetRequest req;
  req.mutable_scope()->set_job_id(a);
  req.mutable_scope()->set_attempt(1);
  req.set_key("k");
  v1::RdzvSetResponse resp;
  grpc::Status s = stub->Set(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
}

TEST(SecurityIntegration, UsersOwnTheirJobsAndEveryChangeIsAudited) {
  Cluster cluster(Secure(1));
  ASSERT_TRUE(cluster.Start());
  auto cli_as = [&](const std::string& token, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {CliBinary(),
                                     "--coordinator",
                                     cluster.address(),
                                     "--tls-ca",
                                     cluster.CertPath("ca.crt"),
                                     "--token",
                                     token};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(cluster.dir(), argv);
  };
  const std::string spec = cluster.WriteSpec("sleep.yaml", SleepJob("mine"));
  RunResult submit = cli_as(cluster.submitter_token(), {"submit", spec, "-o", "name"});
  ASSERT_EQ(submit.code, 0) << submit.err;
  const std::string id = submit.out.substr(4, submit.out.find('\n') - 4);  // "job/ID"
  RunResult get = cli_as(cluster.viewer_token(), {"get", id});
  ASSERT_EQ(get.code, 0) << get.err;
  EXPECT_NE(get.out.find("OWNER user:sam"), std::string::npos) << get.out;

  RunResult viewer_submit = cli_as(cluster.viewer_token(), {"submit", spec});
  EXPECT_EQ(viewer_submit.code, 1);
  EXPECT_NE(viewer_submit.err.find("user:vera (viewer) may not call"), std::string::npos)
      << viewer_submit.err;
  RunResult no_token = RunCommand(cluster.dir(), {CliBinary(), "--coordinator", cluster.address(),
                                                  "--tls-ca", cluster.CertPath("ca.crt"), "list"});
  EXPECT_EQ(no_token.code, 1);
  EXPECT_NE(no_token.err.find("needs a token"), std::string::npos) << no_token.err;

  // An admin's job is not the submitter's to cancel; its own is.
  const std::string admins = cluster.Submit(SleepJob("admins"));
  RunResult denied = cli_as(cluster.submitter_token(), {"cancel", admins});
  EXPECT_EQ(denied.code, 1);
  EXPECT_NE(denied.err.find("belongs to user:admin"), std::string::npos) << denied.err;
  EXPECT_EQ(cli_as(cluster.submitter_token(), {"cancel", id}).code, 0);
  EXPECT_EQ(cli_as(cluster.admin_token(), {"cancel", admins}).code, 0);

  const std::string audit = ReadFile(cluster.dir().Sub("coordinator/audit.log"));
  for (const std::string& want :
       {absl::StrCat(R"("who":"user:sam","method":"gangway.v1.Control/SubmitJob","target":")", id,
                     R"(","code":"OK")"),
        absl::StrCat(R"("who":"user:sam","method":"gangway.v1.Control/CancelJob","target":")",
                     admins, R"(","code":"PERMISSION_DENIED")"),
        absl::StrCat(R"("who":"user:sam","method":"gangway.v1.Control/CancelJob","target":")", id,
                     R"(","code":"OK")"),
        absl::StrCat(R"("who":"user:admin","method":"gangway.v1.Control/CancelJob","target":")",
                     admins, R"(","code":"OK")")}) {
    EXPECT_NE(audit.find(want), std::string::npos) << want << "\nin\n" << audit;
  }
}

TEST(SecurityIntegration, ACoordinatorOnAPublicAddressNeedsTlsAndTokensOrInsecure) {
  TempDir dir;
  RunResult refused =
      RunCommand(dir, {CoordinatorBinary(), "--listen", "0.0.0.0:0", "--state", dir.Sub("s")}, 10s);
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.err.find("--insecure"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--tls-cert"), std::string::npos) << refused.err;

  std::unique_ptr<Process> insecure = Process::Spawn(
      {CoordinatorBinary(), "--listen", "0.0.0.0:0", "--state", dir.Sub("s"), "--insecure"},
      dir.Sub("insecure.out"), dir.Sub("insecure.err"));
  ASSERT_NE(insecure, nullptr);
  EXPECT_TRUE(
      WaitFor([&] { return insecure->Stdout().find("listening") != std::string::npos; }, 10s))
      << insecure->Stderr();
  EXPECT_NE(insecure->Stderr().find("INSECURE"), std::string::npos) << insecure->Stderr();
}

}  // namespace
}  // namespace gangway::itest
