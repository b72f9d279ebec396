// The `certs` and `token` subcommands through CLI11 as main wires them
// (tests/integration/admin_cli_test.cc runs the binary itself).
#include "cli/admin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/tokens.h"

namespace gangway::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

// Parses `args` (after "gangway") as main does and runs the admin command.
Outcome RunAdmin(std::vector<std::string> args) {
  CLI::App app;
  app.require_subcommand(1);
  AdminCommands admin(app);
  std::vector<const char*> argv = {"gangway"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  Outcome outcome;
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    // What main's CLI11_PARSE exits with: CLI11's own non-zero codes.
    outcome.code = e.get_exit_code();
    outcome.err = e.what();
    return outcome;
  }
  std::ostringstream out, err;
  std::optional<int> code = admin.Run(out, err);
  outcome.code = code.value_or(-1);
  outcome.out = out.str();
  outcome.err = err.str();
  return outcome;
}

int ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TokensCertsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/admin_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string root_;
};

TEST_F(TokensCertsCliTest, CertsInitWritesAndAddsANodeLater) {
  std::string dir = root_ + "/pki";
  // --host before DIR: one value per occurrence, so DIR stays DIR.
  Outcome first = RunAdmin(
      {"certs", "init", "--host", "10.0.0.1", dir, "--node", "n1", "--node", "n2", "--days", "30"});
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("wrote " + dir + "/ca.key"));
  EXPECT_THAT(first.out, HasSubstr("wrote " + dir + "/coordinator.crt"));
  EXPECT_THAT(first.out, HasSubstr("wrote " + dir + "/n2.key"));
  EXPECT_THAT(first.err, IsEmpty());
  EXPECT_EQ(ModeOf(dir), 0700);
  EXPECT_EQ(ModeOf(dir + "/n1.key"), 0600);

  std::string ca = ReadAll(dir + "/ca.crt");
  Outcome later = RunAdmin({"certs", "init", dir, "--node", "n4"});
  ASSERT_EQ(later.code, 0) << later.err;
  EXPECT_THAT(later.out, HasSubstr("wrote " + dir + "/n4.crt"));
  EXPECT_THAT(later.out, HasSubstr("kept  " + dir + "/ca.crt"));
  EXPECT_EQ(later.out.find("wrote " + dir + "/ca"), std::string::npos) << later.out;
  EXPECT_EQ(ReadAll(dir + "/ca.crt"), ca);
}

TEST_F(TokensCertsCliTest, CertsInitBadInputExitsTwo) {
  Outcome bad = RunAdmin({"certs", "init", root_ + "/pki", "--node", "Bad_Name"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("\"Bad_Name\""));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/pki"));
  EXPECT_EQ(RunAdmin({"certs", "init", root_ + "/pki", "--ca-cert", "x.crt"}).code, 2);
  EXPECT_NE(RunAdmin({"certs", "init"}).code, 0);  // usage errors: CLI11's codes
  EXPECT_NE(RunAdmin({"certs"}).code, 0);
}

TEST_F(TokensCertsCliTest, TokenCreateListRevoke) {
  std::string file = root_ + "/tokens";
  Outcome created = RunAdmin({"token", "create", "alice", "--role", "admin", "--file", file});
  ASSERT_EQ(created.code, 0) << created.err;
  // The token alone on stdout; the note on stderr.
  EXPECT_THAT(created.out, MatchesRegex("gwt_[A-Za-z0-9_-]{43}\n"));
  EXPECT_THAT(created.err, HasSubstr("only this once"));
  std::string token = created.out.substr(0, created.out.size() - 1);
  auto entries = common::LoadTokenFile(file);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].hash, common::HashToken(token));
  EXPECT_EQ(ModeOf(file), 0600);

  ASSERT_EQ(RunAdmin({"token", "create", "bob", "--role", "viewer", "--file", file}).code, 0);
  Outcome dup = RunAdmin({"token", "create", "bob", "--role", "admin", "--file", file});
  EXPECT_EQ(dup.code, 2);
  EXPECT_THAT(dup.out, IsEmpty());
  EXPECT_EQ(RunAdmin({"token", "create", "carol", "--role", "root", "--file", file}).code, 2);
  EXPECT_NE(RunAdmin({"token", "create", "carol", "--file", file}).code, 0);  // no --role

  Outcome list = RunAdmin({"token", "list", "--file", file});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(list.out, "NAME   ROLE\nalice  admin\nbob    viewer\n");

  Outcome revoked = RunAdmin({"token", "revoke", "alice", "--file", file});
  EXPECT_EQ(revoked.code, 0) << revoked.err;
  EXPECT_EQ(RunAdmin({"token", "revoke", "alice", "--file", file}).code, 2);
  list = RunAdmin({"token", "list", "--file", file});
  EXPECT_EQ(list.out, "NAME  ROLE\nbob   viewer\n");

  ASSERT_EQ(::chmod(file.c_str(), 0644), 0);
  list = RunAdmin({"token", "list", "--file", file});
  EXPECT_EQ(list.code, 2);
  EXPECT_THAT(list.err, HasSubstr(file));
}

TEST_F(TokensCertsCliTest, OtherCommandsAreNotAdmin) {
  CLI::App app;
  AdminCommands admin(app);
  app.add_subcommand("nodes");
  const char* argv[] = {"gangway", "nodes"};
  app.parse(2, argv);
  std::ostringstream out, err;
  EXPECT_EQ(admin.Run(out, err), std::nullopt);
}

}  // namespace
}  // namespace gangway::cli
