// The authorization table, the authenticator's decisions, job tokens, and
// ownership in the core.
#include "coordinator/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <optional>
#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/tokens.h"
#include "coordinator/core.h"
#include "coordinator/job_tokens.h"
#include "gangway/v1/gangway.pb.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

using common::Role;

TEST(AuthTableTest, EveryRpcOfTheProtoHasARuleAndEveryRuleAnRpc) {
  const std::vector<std::string> listed = ProtoMethods();
  const std::set<std::string> methods(listed.begin(), listed.end());
  ASSERT_GE(methods.size(), 23u);
  for (const std::string& m : methods) {
    EXPECT_NE(FindRule(m), nullptr) << m << " has no rule: it would be refused to everyone";
  }
  for (const MethodRule& rule : MethodRules()) {
    EXPECT_TRUE(methods.contains(std::string(rule.method))) << rule.method << " is not an RPC";
  }
}

TEST(AuthTableTest, EveryMutatingUserRpcIsAudited) {
  for (const char* m : {"gangway.v1.Control/SubmitJob", "gangway.v1.Control/CancelJob",
                        "gangway.v1.Sweeps/SubmitSweep", "gangway.v1.Sweeps/CancelSweep",
                        "gangway.v1.Sweeps/UpdateSweep", "gangway.v1.AgentSession/Session"}) {
    ASSERT_NE(FindRule(m), nullptr) << m;
    EXPECT_TRUE(FindRule(m)->audited) << m;
  }
}

Principal User(const std::string& name, Role role) {
  Principal p;
  p.kind = Principal::Kind::kUser;
  p.name = name;
  p.role = role;
  return p;
}
Principal Node(const std::string& name) {
  Principal p;
  p.kind = Principal::Kind::kNode;
  p.name = name;
  return p;
}
Principal Job(const std::string& id, int32_t attempt) {
  Principal p;
  p.kind = Principal::Kind::kJob;
  p.name = id;
  p.attempt = attempt;
  return p;
}

class TokenFile {
 public:
  TokenFile() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gangway-auth-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) dir_ = tmpl;
  }
  ~TokenFile() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string path() const { return (dir_ / "tokens").string(); }
  std::string Create(const std::string& name, Role role) {
    absl::StatusOr<std::string> token = common::CreateToken(path(), name, role);
    EXPECT_TRUE(token.ok()) << token.status();
    return token.value_or("");
  }
  std::filesystem::path dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

std::unique_ptr<Authenticator> MakeAuth(AuthOptions options, const JobTokens* jobs = nullptr) {
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Authenticator::Create(options, jobs);
  EXPECT_TRUE(auth.ok()) << auth.status();
  return auth.ok() ? std::move(*auth) : nullptr;
}

TEST(AuthenticatorTest, OpenModeLetsAnyoneUseUserMethodsButRanksNeedJobTokens) {
  auto auth = MakeAuth({});
  ASSERT_NE(auth, nullptr);
  const Principal anyone;
  EXPECT_TRUE(auth->Decide("gangway.v1.Control/SubmitJob", anyone).ok());
  EXPECT_TRUE(auth->Decide("gangway.v1.Sweeps/CancelSweep", anyone).ok());
  EXPECT_TRUE(auth->Decide("gangway.v1.AgentSession/Session", anyone).ok());
  EXPECT_EQ(auth->Decide("gangway.v1.Rendezvous/Get", anyone).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth->Decide("gangway.v1.Metrics/Report", anyone).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(auth->Decide("gangway.v1.Rendezvous/Set", Job("a-1", 1)).ok());
}

TEST(AuthenticatorTest, WithTlsAnAgentSessionNeedsANodeCertificate) {
  AuthOptions options;
  options.tls = true;
  auto auth = MakeAuth(options);
  ASSERT_NE(auth, nullptr);
  absl::Status s = auth->Decide("gangway.v1.AgentSession/Session", Principal());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("certificate"), absl::string_view::npos) << s;
  EXPECT_TRUE(auth->Decide("gangway.v1.AgentSession/Session", Node("n1")).ok());
}

TEST(AuthenticatorTest, SecuredModeChecksRolesAndKinds) {
  TokenFile file;
  file.Create("alice", Role::kViewer);
  auto auth = MakeAuth({.tls = true, .token_file = file.path()});
  ASSERT_NE(auth, nullptr);
  EXPECT_EQ(auth->Decide("gangway.v1.Control/GetJob", Principal()).code(),
            absl::StatusCode::kUnauthenticated);

  const Principal viewer = User("v", Role::kViewer);
  const Principal submitter = User("s", Role::kSubmitter);
  const Principal admin = User("a", Role::kAdmin);
  for (const char* read : {"gangway.v1.Control/GetJob", "gangway.v1.Control/ListNodes",
                           "gangway.v1.Control/GetLogs", "gangway.v1.Sweeps/GetMetrics"}) {
    EXPECT_TRUE(auth->Decide(read, viewer).ok()) << read;
  }
  absl::Status s = auth->Decide("gangway.v1.Control/SubmitJob", viewer);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("user:v (viewer)"), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("submitter"), absl::string_view::npos) << s;
  EXPECT_TRUE(auth->Decide("gangway.v1.Control/SubmitJob", submitter).ok());
  EXPECT_TRUE(auth->Decide("gangway.v1.Control/CancelJob", admin).ok());

  // Credentials of one kind do not open the doors of another.
  EXPECT_EQ(auth->Decide("gangway.v1.AgentSession/Session", admin).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(auth->Decide("gangway.v1.Control/SubmitJob", Node("n1")).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(auth->Decide("gangway.v1.Control/GetJob", Job("a-1", 1)).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(auth->Decide("gangway.v1.Rendezvous/Set", admin).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(auth->Decide("gangway.v1.Control/NoSuchMethod", admin).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(AuthenticatorTest, TokensFromTheFileAndRevocationWithoutRestart) {
  TokenFile file;
  const std::string alice = file.Create("alice", Role::kSubmitter);
  auto auth = MakeAuth(
      {.tls = true, .token_file = file.path(), .reload_every = std::chrono::milliseconds(0)});
  ASSERT_NE(auth, nullptr);
  absl::StatusOr<Principal> who = auth->IdentifyToken(alice);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->ToString(), "user:alice");
  EXPECT_EQ(who->role, Role::kSubmitter);
  EXPECT_EQ(auth->IdentifyToken("gwt_not-a-real-token").status().code(),
            absl::StatusCode::kUnauthenticated);

  const std::string bob = file.Create("bob", Role::kAdmin);
  ASSERT_TRUE(auth->IdentifyToken(bob).ok()) << "a new token works without a restart";
  ASSERT_TRUE(common::RevokeToken(file.path(), "alice").ok());
  EXPECT_EQ(auth->IdentifyToken(alice).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(AuthenticatorTest, AWorldReadableTokenFileIsRefused) {
  TokenFile file;
  file.Create("alice", Role::kAdmin);
  ASSERT_EQ(::chmod(file.path().c_str(), 0644), 0);
  absl::StatusOr<std::unique_ptr<Authenticator>> auth =
      Authenticator::Create({.token_file = file.path()}, nullptr);
  ASSERT_FALSE(auth.ok());
  EXPECT_NE(auth.status().message().find(file.path()), absl::string_view::npos) << auth.status();
}

TEST(AuthenticatorTest, JobTokensIdentifyTheirJobAndAttempt) {
  const JobTokens jobs = JobTokens::WithKey(std::string(32, 'k'));
  auto auth = MakeAuth({}, &jobs);
  ASSERT_NE(auth, nullptr);
  absl::StatusOr<Principal> who = auth->IdentifyToken(jobs.Mint("train-3", 2));
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->kind, Principal::Kind::kJob);
  EXPECT_EQ(who->name, "train-3");
  EXPECT_EQ(who->attempt, 2);
}

// ---------------------------------------------------------------------------
// Job tokens

TEST(JobTokensTest, VerifyGivesBackWhatWasMinted) {
  const JobTokens jobs = JobTokens::WithKey(std::string(32, 'k'));
  absl::StatusOr<JobTokens::Claim> claim = jobs.Verify(jobs.Mint("a.b-7", 12));
  ASSERT_TRUE(claim.ok()) << claim.status();
  EXPECT_EQ(claim->job_id, "a.b-7");
  EXPECT_EQ(claim->attempt, 12);
}

TEST(JobTokensTest, ATokenCannotBeMovedToAnotherJobOrAttemptOrForged) {
  const JobTokens jobs = JobTokens::WithKey(std::string(32, 'k'));
  const std::string token = jobs.Mint("a-1", 1);
  const std::string mac = token.substr(token.rfind('.') + 1);
  for (const std::string& forged :
       {"gwj1.b-1.1." + mac, "gwj1.a-1.2." + mac, token.substr(0, token.size() - 1) + "0",
        std::string("gwj1.a-1.1."), std::string("gwj1."), std::string("gwj1.a-1.x.") + mac,
        std::string("gwj1.a-1.-1.") + mac, std::string("gwt_abc")}) {
    EXPECT_EQ(jobs.Verify(forged).status().code(), absl::StatusCode::kUnauthenticated) << forged;
  }
  const JobTokens other = JobTokens::WithKey(std::string(32, 'x'));
  EXPECT_FALSE(other.Verify(token).ok()) << "another coordinator's key";
}

// Found by tests/fuzz/tokens_fuzz.cc: the attempt was read with SimpleAtoi,
// which takes leading whitespace, a sign and leading zeros, so one minted
// token verified in many spellings.
TEST(JobTokensTest, OnlyTheMintedSpellingVerifies) {
  const JobTokens jobs = JobTokens::WithKey(std::string(32, 'k'));
  const std::string token = jobs.Mint("a-1", 1);
  const std::string mac = token.substr(token.rfind('.') + 1);
  ASSERT_TRUE(jobs.Verify(token).ok());
  for (const char* attempt : {"01", "+1", " 1", "\f1", "1 ", "\t1"}) {
    const std::string respelled = absl::StrCat("gwj1.a-1.", attempt, ".", mac);
    EXPECT_EQ(jobs.Verify(respelled).status().code(), absl::StatusCode::kUnauthenticated)
        << absl::CEscape(respelled);
  }
}

TEST(JobTokensTest, OpenMakesAPrivateKeyOnceAndReadsItBack) {
  TokenFile dir;
  const std::string path = (dir.dir() / "job-token.key").string();
  absl::StatusOr<JobTokens> first = JobTokens::Open(path);
  ASSERT_TRUE(first.ok()) << first.status();
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  absl::StatusOr<JobTokens> again = JobTokens::Open(path);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->Verify(first->Mint("j-1", 1)).ok()) << "tokens survive a restart";

  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  EXPECT_FALSE(JobTokens::Open(path).ok()) << "a readable key is refused";
}

// ---------------------------------------------------------------------------
// Owners in the core

class OwnershipTest : public ::testing::Test {
 protected:
  OwnershipTest() {
    CoreOptions o;
    o.rendezvous_endpoint = "coord:7070";
    o.job_token = [](const std::string& job, int32_t attempt) {
      return absl::StrCat("token-for-", job, "#", attempt);
    };
    core_ = std::make_unique<Core>(&store_, &sink_, &clock_, o);
    EXPECT_TRUE(core_->OnRegister(1, fakes::RegisterMessage("n1")).ok());
  }

  absl::StatusOr<v1::Job> Submit(const Principal& who) {
    v1::SubmitJobRequest req;
    req.set_yaml("name: t\ncommand: [sleep, '100']\nresources: {cpus: 1}\n");
    std::optional<absl::StatusOr<v1::Job>> answer;
    core_->Submit(
        req, [&](absl::StatusOr<v1::Job> job) { answer = std::move(job); }, who);
    core_->Settle();
    if (!answer) return absl::InternalError("not answered");
    return *answer;
  }

  common::FakeClock clock_;
  fakes::FakeStore store_;
  fakes::RecordingSink sink_;
  std::unique_ptr<Core> core_;
};

TEST_F(OwnershipTest, AJobRecordsItsSubmitterAndOnlyItOrAnAdminMayCancelIt) {
  absl::StatusOr<v1::Job> job = Submit(User("alice", Role::kSubmitter));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->owner(), "user:alice");
  EXPECT_EQ(store_.jobs.at(job->id()).owner(), "user:alice") << "the owner is stored";

  absl::StatusOr<v1::Job> denied = core_->Cancel(job->id(), User("bob", Role::kSubmitter));
  ASSERT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(denied.status().message().find("belongs to user:alice"), absl::string_view::npos)
      << denied.status();
  EXPECT_NE(core_->GetJob(job->id())->state(), v1::JOB_STATE_CANCELLED);

  EXPECT_TRUE(core_->Cancel(job->id(), User("alice", Role::kSubmitter)).ok());

  absl::StatusOr<v1::Job> second = Submit(User("alice", Role::kSubmitter));
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(core_->Cancel(second->id(), User("root", Role::kAdmin)).ok()) << "admins may";
}

TEST_F(OwnershipTest, LaunchesCarryTheAttemptsJobTokenAndOnlyTheRunningAttemptIsLive) {
  absl::StatusOr<v1::Job> job = Submit(Principal());
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->owner(), "anonymous");
  const std::vector<fakes::Sent> sent = sink_.Take();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_TRUE(sent[0].msg.has_launch());
  // Sent once per node, for every rank of the node.
  const auto& env = sent[0].msg.launch().env();
  ASSERT_TRUE(env.contains("GANGWAY_JOB_TOKEN"));
  EXPECT_EQ(env.at("GANGWAY_JOB_TOKEN"), absl::StrCat("token-for-", job->id(), "#1"));

  EXPECT_TRUE(core_->CheckLiveAttempt(job->id(), 1).ok());
  EXPECT_EQ(core_->CheckLiveAttempt(job->id(), 2).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(core_->CheckLiveAttempt("no-such-job", 1).code(), absl::StatusCode::kPermissionDenied);
  core_->OnAgentMessage(1, fakes::RankExitedMessage(job->id(), 1, 0, 0));
  core_->Settle();
  ASSERT_EQ(core_->GetJob(job->id())->state(), v1::JOB_STATE_SUCCEEDED);
  absl::Status ended = core_->CheckLiveAttempt(job->id(), 1);
  EXPECT_EQ(ended.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(ended.message().find("not running"), absl::string_view::npos) << ended;
}

}  // namespace
}  // namespace gangway::coordinator
