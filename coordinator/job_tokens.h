// Per-attempt job tokens: what lets a rank use the rendezvous and metrics
// services for its own job and attempt, and nothing else.
//
// A token is "gwj1.JOB.ATTEMPT.MAC", MAC = HMAC-SHA256 under a key the
// coordinator keeps in its state directory (0600, made on first start), so
// tokens need no table, survive a coordinator restart, and cannot be forged
// or moved to another job or attempt. A valid MAC is not enough: the caller
// also checks that the attempt is the job's current, running one, so a rank
// of a finished or superseded attempt is refused.
//
// Thread-safe: immutable after construction.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gangway::coordinator {

class JobTokens {
 public:
  // Reads the key at `key_path`, or writes a new random one there (0600).
  // INVALID_ARGUMENT when the file is unsafe (group/world access) or short.
  static absl::StatusOr<JobTokens> Open(const std::string& key_path);
  // A fixed key, for tests.
  static JobTokens WithKey(std::string key) { return JobTokens(std::move(key)); }

  std::string Mint(absl::string_view job_id, int32_t attempt) const;

  struct Claim {
    std::string job_id;
    int32_t attempt = 0;
  };
  // UNAUTHENTICATED when the token is malformed or its MAC is wrong.
  absl::StatusOr<Claim> Verify(absl::string_view token) const;

  // Job tokens and user tokens travel in the same header.
  static bool IsJobToken(absl::string_view token);

 private:
  explicit JobTokens(std::string key) : key_(std::move(key)) {}
  std::string Mac(absl::string_view job_id, int32_t attempt) const;

  std::string key_;
};

}  // namespace gangway::coordinator
