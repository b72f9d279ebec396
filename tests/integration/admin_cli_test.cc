// `gangway certs init` and `gangway token create` as the built binary runs
// them: files only, no coordinator (the address points at a port nothing
// listens on), the token alone on stdout so TOKEN=$(gangway token create ...)
// captures exactly it.
#include <gmock/gmock.h>

#include "common/certs.h"
#include "common/tokens.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

const Env kNoCoordinator = {{"GANGWAY_COORDINATOR", "127.0.0.1:1"}};

TEST(TokensCertsCliBinaryTest, CertsInitAndTokenCreateNeedNoCoordinator) {
  TempDir dir;
  const std::string pki = dir.Sub("pki");
  RunResult certs =
      RunCommand(dir, {CliBinary(), "certs", "init", pki, "--host", "10.0.0.1", "--node", "n1"},
                 20s, kNoCoordinator);
  ASSERT_EQ(certs.code, 0) << certs.err;
  EXPECT_THAT(certs.out, HasSubstr("wrote " + pki + "/n1.key"));
  for (const char* name : {"ca.crt", "ca.key", "coordinator.crt", "coordinator.key", "n1.crt"}) {
    struct stat st;
    ASSERT_EQ(::stat((pki + "/" + name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 07777, 0600u) << name;
  }

  RunResult later =
      RunCommand(dir, {CliBinary(), "certs", "init", pki, "--node", "n2"}, 20s, kNoCoordinator);
  ASSERT_EQ(later.code, 0) << later.err;
  EXPECT_THAT(later.out, HasSubstr("wrote " + pki + "/n2.crt"));

  RunResult bad =
      RunCommand(dir, {CliBinary(), "certs", "init", pki, "--node", "UPPER"}, 20s, kNoCoordinator);
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("bad node name \"UPPER\""));

  const std::string file = dir.Sub("tokens");
  RunResult token =
      RunCommand(dir, {CliBinary(), "token", "create", "ci", "--role", "submitter", "--file", file},
                 20s, kNoCoordinator);
  ASSERT_EQ(token.code, 0) << token.err;
  EXPECT_THAT(token.out, MatchesRegex("gwt_[A-Za-z0-9_-]{43}\n"));
  EXPECT_THAT(token.err, HasSubstr("only this once"));
  auto entries = common::LoadTokenFile(file);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].hash, common::HashToken(token.out.substr(0, token.out.size() - 1)));

  RunResult list =
      RunCommand(dir, {CliBinary(), "token", "list", "--file", file}, 20s, kNoCoordinator);
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(list.out, "NAME  ROLE\nci    submitter\n");
  RunResult revoke =
      RunCommand(dir, {CliBinary(), "token", "revoke", "ci", "--file", file}, 20s, kNoCoordinator);
  EXPECT_EQ(revoke.code, 0) << revoke.err;
}

}  // namespace
}  // namespace gangway::itest
