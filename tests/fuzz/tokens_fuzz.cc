// Untrusted token text: the user token file (ParseTokenFile, a file an
// admin may have edited by hand) and the bearer token every RPC carries,
// which may be a job token (JobTokens::Verify, the HMAC check) or a user
// token (hashed). None may crash; a job token verifies only when its MAC is
// the one this key mints.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/tokens.h"
#include "coordinator/job_tokens.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto entries = gangway::common::ParseTokenFile(text);
  if (entries.ok()) {
    for (const auto& e : *entries) {
      FUZZ_CHECK(gangway::common::IsValidTokenName(e.name), "a parsed name is valid");
      FUZZ_CHECK(gangway::common::ParseRole(gangway::common::RoleName(e.role)).ok(),
                 "a parsed role has a name");
    }
  }
  (void)gangway::common::ParseRole(text);
  (void)gangway::common::HashToken(text);

  static const auto tokens = gangway::coordinator::JobTokens::WithKey(std::string(32, 'k'));
  const absl::string_view token(text.data(), text.size());
  (void)gangway::coordinator::JobTokens::IsJobToken(token);
  auto claim = tokens.Verify(token);
  if (claim.ok()) {
    FUZZ_CHECK(tokens.Mint(claim->job_id, claim->attempt) == text,
               "only a token this key minted verifies");
  }
  return 0;
}
