#include "agent/workload_user.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace gangway::agent {
namespace {

using ::testing::HasSubstr;

UserIdentity User(const std::string& name, uid_t uid) {
  return UserIdentity{name, uid, uid, "/home/" + name, "/bin/sh"};
}

// A passwd database of our own, so every case runs on any machine.
class FakePasswd {
 public:
  explicit FakePasswd(std::vector<UserIdentity> users) {
    for (auto& u : users) users_[u.name] = u;
  }
  WorkloadUserPolicy::Lookup lookup() const {
    return [this](std::string_view name) -> absl::StatusOr<UserIdentity> {
      auto it = users_.find(std::string(name));
      if (it == users_.end()) return absl::NotFoundError("no user '" + std::string(name) + "'");
      return it->second;
    };
  }

 private:
  std::map<std::string, UserIdentity> users_;
};

const UserIdentity kRoot = User("root", 0);
const UserIdentity kAlice = User("alice", 1000);

// Options field by field (designated initializers that skip fields trip
// -Wmissing-field-initializers).
WorkloadUserOptions Options(std::string run_as = "", bool allow_root = false,
                            std::vector<std::string> allowed = {}, bool as_agent = false) {
  WorkloadUserOptions options;
  options.run_as = std::move(run_as);
  options.allow_root = allow_root;
  options.allowed_users = std::move(allowed);
  options.run_as_agent_user = as_agent;
  return options;
}

TEST(WorkloadUserPolicyTest, RootAgentDefaultsToGangwayThenNobody) {
  FakePasswd both({kRoot, User("gangway", 998), User("nobody", 65534)});
  auto policy = WorkloadUserPolicy::Create({}, kRoot, both.lookup());
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->default_user().name, "gangway");

  FakePasswd nobody_only({kRoot, User("nobody", 65534)});
  policy = WorkloadUserPolicy::Create({}, kRoot, nobody_only.lookup());
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->default_user().name, "nobody");
  EXPECT_EQ(policy->default_user().uid, 65534u);
}

TEST(WorkloadUserPolicyTest, RootAgentWithoutAnAccountRefusesUnlessRootIsAllowed) {
  FakePasswd none({kRoot});
  auto policy = WorkloadUserPolicy::Create({}, kRoot, none.lookup());
  ASSERT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(policy.status().message(), HasSubstr("neither a 'gangway' nor a 'nobody'"));
  EXPECT_THAT(policy.status().message(), HasSubstr("--allow-root-workloads"));

  policy = WorkloadUserPolicy::Create(Options("", true), kRoot, none.lookup());
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->default_user().uid, 0u);

  // --run-as names the account, whatever else exists.
  FakePasswd alice({kRoot, kAlice});
  policy = WorkloadUserPolicy::Create(Options("alice"), kRoot, alice.lookup());
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->default_user().name, "alice");
}

TEST(WorkloadUserPolicyTest, RunAsRootNeedsAllowRootWorkloads) {
  FakePasswd db({kRoot, User("nobody", 65534), User("toor", 0)});
  for (const char* name : {"root", "toor"}) {  // uid 0 under any name
    auto policy = WorkloadUserPolicy::Create(Options(name), kRoot, db.lookup());
    ASSERT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(policy.status().message(), HasSubstr("--allow-root-workloads"));
    policy = WorkloadUserPolicy::Create(Options(name, true), kRoot, db.lookup());
    ASSERT_TRUE(policy.ok()) << policy.status();
    EXPECT_EQ(policy->default_user().uid, 0u);
  }
}

TEST(WorkloadUserPolicyTest, RunAsAnUnknownUserIsRefused) {
  FakePasswd db({kRoot});
  auto policy = WorkloadUserPolicy::Create(Options("ghost"), kRoot, db.lookup());
  ASSERT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(policy.status().message(), HasSubstr("--run-as ghost: no user 'ghost'"));
}

TEST(WorkloadUserPolicyTest, NonRootAgentRunsRanksOnlyAsItself) {
  FakePasswd db({kRoot, kAlice, User("bob", 1001), User("nobody", 65534)});
  auto policy = WorkloadUserPolicy::Create({}, kAlice, db.lookup());
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->default_user().name, "alice");

  policy = WorkloadUserPolicy::Create(Options("alice"), kAlice, db.lookup());
  EXPECT_TRUE(policy.ok()) << policy.status();

  policy = WorkloadUserPolicy::Create(Options("bob"), kAlice, db.lookup());
  ASSERT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(policy.status().message(),
              HasSubstr("the agent runs as 'alice' (uid 1000) and can only run ranks as itself"));

  policy = WorkloadUserPolicy::Create(Options("", false, {"bob"}), kAlice, db.lookup());
  ASSERT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(policy.status().message(), HasSubstr("--allow-user bob"));
}

TEST(WorkloadUserPolicyTest, JobsGetTheDefaultOrAnAllowedUser) {
  FakePasswd db({kRoot, kAlice, User("bob", 1001), User("nobody", 65534)});
  auto policy =
      WorkloadUserPolicy::Create(Options("", false, {"alice", "carol"}), kRoot, db.lookup());
  ASSERT_TRUE(policy.ok()) << policy.status();

  EXPECT_EQ(policy->ForJob("", "n1")->name, "nobody");
  EXPECT_EQ(policy->ForJob("nobody", "n1")->name, "nobody");
  EXPECT_EQ(policy->ForJob("alice", "n1")->uid, 1000u);

  absl::StatusOr<UserIdentity> bob = policy->ForJob("bob", "n1");
  ASSERT_EQ(bob.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(bob.status().message(),
            "node n1 does not allow jobs to run as 'bob' (gangway-agent --allow-user)");

  // Listed but not on this node.
  absl::StatusOr<UserIdentity> carol = policy->ForJob("carol", "n1");
  ASSERT_EQ(carol.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(carol.status().message(), "node n1 has no user 'carol'");
}

TEST(WorkloadUserPolicyTest, RootJobsNeedTheListAndAllowRootWorkloads) {
  FakePasswd db({kRoot, User("nobody", 65534)});
  const std::string refused =
      "node n1 does not allow jobs to run as 'root' (gangway-agent --allow-user, "
      "--allow-root-workloads)";
  for (const WorkloadUserOptions& options :
       {Options(), Options("", false, {"root"}), Options("", true)}) {
    auto policy = WorkloadUserPolicy::Create(options, kRoot, db.lookup());
    ASSERT_TRUE(policy.ok()) << policy.status();
    absl::StatusOr<UserIdentity> root = policy->ForJob("root", "n1");
    ASSERT_EQ(root.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(root.status().message(), refused);
  }
  auto policy = WorkloadUserPolicy::Create(Options("", true, {"root"}), kRoot, db.lookup());
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->ForJob("root", "n1")->uid, 0u);
}

TEST(WorkloadUserPolicyTest, LocalRunsRanksAsTheInvokingUserRootIncluded) {
  FakePasswd db({kRoot, kAlice, User("nobody", 65534)});
  auto policy = WorkloadUserPolicy::Create(Options("", false, {}, true), kRoot, db.lookup());
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->default_user().uid, 0u);
  EXPECT_EQ(policy->ForJob("root", "local-0")->uid, 0u);
  EXPECT_EQ(policy->ForJob("alice", "local-0").status().code(),
            absl::StatusCode::kPermissionDenied);

  policy = WorkloadUserPolicy::Create(Options("", false, {}, true), kAlice, db.lookup());
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->default_user().name, "alice");
}

TEST(WorkloadUserPolicyTest, RealPasswdLookups) {
  absl::StatusOr<UserIdentity> root = LookupUid(0);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->name, "root");
  EXPECT_EQ(LookupUser("root")->uid, 0u);
  EXPECT_EQ(LookupUser("gangway-no-such-user-xyz").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(CurrentUser().uid, ::geteuid());
}

}  // namespace
}  // namespace gangway::agent
