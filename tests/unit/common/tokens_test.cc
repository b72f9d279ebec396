#include "common/tokens.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"

namespace gangway::common {
namespace {

using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class TokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/tokens_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/tokens";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::string path_;
};

TEST(TokensHashTest, KnownVector) {
  EXPECT_EQ(HashToken("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HashToken(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(TokensRoleTest, ParseAndNameRoundTripAndOrder) {
  for (Role role : {Role::kViewer, Role::kSubmitter, Role::kAdmin}) {
    auto parsed = ParseRole(RoleName(role));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, role);
  }
  EXPECT_EQ(ParseRole("root").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRole("Admin").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(Role::kViewer, Role::kSubmitter);
  EXPECT_LT(Role::kSubmitter, Role::kAdmin);
}

TEST_F(TokensTest, CreateListRevokeRoundTrip) {
  auto alice = CreateToken(path_, "alice", Role::kAdmin);
  ASSERT_TRUE(alice.ok()) << alice.status();
  auto ci = CreateToken(path_, "ci-bot.1", Role::kSubmitter);
  ASSERT_TRUE(ci.ok()) << ci.status();
  auto bob = CreateToken(path_, "bob", Role::kViewer);
  ASSERT_TRUE(bob.ok()) << bob.status();

  // "gwt_" + 43 base64url characters of 32 bytes, all different.
  for (const std::string* t : {&*alice, &*ci, &*bob}) {
    ASSERT_EQ(t->size(), 4u + 43u) << *t;
    EXPECT_EQ(t->substr(0, 4), "gwt_");
    EXPECT_EQ(
        t->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 4),
        std::string::npos)
        << *t;
  }
  EXPECT_NE(*alice, *bob);

  auto entries = LoadTokenFile(path_);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].name, "alice");
  EXPECT_EQ((*entries)[0].role, Role::kAdmin);
  EXPECT_EQ((*entries)[0].hash, HashToken(*alice));
  EXPECT_EQ((*entries)[1].name, "ci-bot.1");
  EXPECT_EQ((*entries)[1].role, Role::kSubmitter);
  EXPECT_EQ((*entries)[2].name, "bob");
  EXPECT_EQ((*entries)[2].hash, HashToken(*bob));

  ASSERT_TRUE(RevokeToken(path_, "alice").ok());
  entries = LoadTokenFile(path_);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].name, "ci-bot.1");
  EXPECT_EQ((*entries)[1].name, "bob");

  absl::Status again = RevokeToken(path_, "alice");
  EXPECT_EQ(again.code(), absl::StatusCode::kNotFound) << again;
  EXPECT_EQ(RevokeToken(dir_ + "/missing", "alice").code(), absl::StatusCode::kNotFound);

  // A revoked name may be issued again, with a new token.
  auto alice2 = CreateToken(path_, "alice", Role::kViewer);
  ASSERT_TRUE(alice2.ok()) << alice2.status();
  EXPECT_NE(*alice2, *alice);
}

TEST_F(TokensTest, DuplicateNameRefusedAndFileUnchanged) {
  ASSERT_TRUE(CreateToken(path_, "alice", Role::kAdmin).ok());
  std::string before = ReadAll(path_);
  auto dup = CreateToken(path_, "alice", Role::kViewer);
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(dup.status().message(), HasSubstr("alice"));
  EXPECT_EQ(ReadAll(path_), before);
}

TEST_F(TokensTest, BadNameRefused) {
  for (const char* name : {"", "Alice", "-x", ".x", "a b", "a/b"}) {
    EXPECT_EQ(CreateToken(path_, name, Role::kViewer).status().code(),
              absl::StatusCode::kInvalidArgument)
        << name;
  }
  EXPECT_EQ(CreateToken(path_, std::string(64, 'a'), Role::kViewer).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CreateToken(path_, std::string(63, 'a'), Role::kViewer).ok());
}

TEST_F(TokensTest, FileIsPrivateAndHoldsNoClearToken) {
  // A permissive umask must not leak into the file's mode.
  mode_t old = ::umask(0);
  auto token = CreateToken(path_, "alice", Role::kAdmin);
  auto token2 = CreateToken(path_, "bob", Role::kAdmin);
  ::umask(old);
  ASSERT_TRUE(token.ok()) << token.status();
  ASSERT_TRUE(token2.ok()) << token2.status();
  EXPECT_EQ(ModeOf(path_), 0600);
  std::string text = ReadAll(path_);
  EXPECT_EQ(text.find(*token), std::string::npos);
  EXPECT_EQ(text.find(token->substr(4)), std::string::npos);
  EXPECT_EQ(text.find(token2->substr(4)), std::string::npos);
  EXPECT_THAT(text, HasSubstr("alice admin " + HashToken(*token) + "\n"));
  // No temporary files are left behind.
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1);
}

// Root editing the coordinator's token file must leave it the coordinator's:
// the rename puts a new inode in its place, which takes the old owner.
TEST_F(TokensTest, RewriteKeepsTheFilesOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to own a file as another user";
  ASSERT_TRUE(CreateToken(path_, "alice", Role::kAdmin).ok());
  ASSERT_EQ(::chown(path_.c_str(), 65534, 65534), 0);
  ASSERT_TRUE(CreateToken(path_, "bob", Role::kViewer).ok());
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_gid, 65534u);
  ASSERT_TRUE(RevokeToken(path_, "alice").ok());
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(ModeOf(path_), 0600);
}

TEST_F(TokensTest, GroupReadableFileRefusedNamingThePath) {
  ASSERT_TRUE(CreateToken(path_, "alice", Role::kAdmin).ok());
  ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
  auto loaded = LoadTokenFile(path_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr(path_));
  // Nor does create or revoke work through an unsafe file.
  EXPECT_FALSE(CreateToken(path_, "bob", Role::kViewer).ok());
  EXPECT_FALSE(RevokeToken(path_, "alice").ok());
  ASSERT_EQ(::chmod(path_.c_str(), 0600), 0);
  EXPECT_TRUE(LoadTokenFile(path_).ok());
}

TEST_F(TokensTest, CommentsSurviveCreateAndRevoke) {
  {
    std::ofstream out(path_);
    out << "# cluster tokens\n\nold viewer " << HashToken("x") << "\n# keep me\n";
  }
  ASSERT_EQ(::chmod(path_.c_str(), 0600), 0);
  ASSERT_TRUE(CreateToken(path_, "new", Role::kAdmin).ok());
  ASSERT_TRUE(RevokeToken(path_, "old").ok());
  std::string text = ReadAll(path_);
  EXPECT_THAT(text, HasSubstr("# cluster tokens\n"));
  EXPECT_THAT(text, HasSubstr("# keep me\n"));
  EXPECT_EQ(text.find("old viewer"), std::string::npos);
  auto entries = ParseTokenFile(text);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].name, "new");
}

TEST(TokensParseTest, AcceptsCommentsBlankLinesAndTabs) {
  std::string text = "# header\n\n  alice\tadmin  " + HashToken("a") + "  \r\n" + "bob viewer " +
                     HashToken("b");  // no final newline
  auto entries = ParseTokenFile(text);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].name, "alice");
  EXPECT_EQ((*entries)[1].role, Role::kViewer);
  EXPECT_TRUE(ParseTokenFile("").ok());
}

TEST(TokensParseTest, ErrorsNameTheLine) {
  const std::string good = "alice admin " + HashToken("a") + "\n";
  struct Case {
    std::string bad_line;
    std::string why;
  };
  for (const Case& c : std::vector<Case>{
           {"bob root " + HashToken("b"), "unknown role"},
           {"bob viewer", "field"},
           {"bob viewer " + HashToken("b") + " extra", "field"},
           {"Bob viewer " + HashToken("b"), "bad name"},
           {"bob viewer sha1:abc", "sha256"},
           {"bob viewer gwt_cleartokencleartokencleartokencleartokencle", "sha256"},
           {"bob viewer " + absl::AsciiStrToUpper(HashToken("b")), "sha256"},
           {"alice viewer " + HashToken("b"), "twice"},
           {"bob viewer " + HashToken("a"), "earlier line"},
       }) {
    auto parsed = ParseTokenFile("# comment\n" + good + c.bad_line + "\n");
    ASSERT_FALSE(parsed.ok()) << c.bad_line;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(), HasSubstr("line 3")) << c.bad_line;
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.why)) << c.bad_line;
  }
  // A clear token pasted into the file must not be echoed into logs.
  auto leaked = ParseTokenFile("bob viewer gwt_SECRETSECRET\n");
  ASSERT_FALSE(leaked.ok());
  EXPECT_EQ(std::string(leaked.status().message()).find("SECRET"), std::string::npos);
}

}  // namespace
}  // namespace gangway::common
