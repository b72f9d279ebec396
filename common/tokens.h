// User bearer tokens: the token file the coordinator loads, and the
// `gangway token create|revoke|list` operations on it.
//
// The file holds one token per line, `NAME ROLE sha256:HEX`, with `#`
// comments and blank lines allowed. It holds only SHA-256 hashes: a token is
// shown once when created and never stored, so a leaked file (or backup)
// grants nothing. 32 random bytes make brute force hopeless, which is why a
// plain hash suffices and no slow password hash is needed. The file must be
// readable and writable by its owner alone (0600), as ssh demands of a key.
//
// Thread-safe: free functions over their arguments. CreateToken and
// RevokeToken serialize with each other through a lock on the file's
// directory, so two concurrent invocations do not lose one another's change.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gangway::common {

// Ordered: each role includes the ones below it, so an authorizer checks
// `role >= required`.
enum class Role { kViewer = 1, kSubmitter = 2, kAdmin = 3 };

// "viewer" | "submitter" | "admin"; INVALID_ARGUMENT otherwise.
absl::StatusOr<Role> ParseRole(std::string_view name);
std::string_view RoleName(Role role);

struct TokenEntry {
  std::string name;
  Role role;
  std::string hash;  // "sha256:" + 64 lowercase hex
};

// The prefix every token carries, so a leaked one is recognizable (secret
// scanners) and a token is never mistaken for a file name or a hash.
inline constexpr char kTokenPrefix[] = "gwt_";

// [a-z0-9][a-z0-9._-]*, at most 63 characters.
bool IsValidTokenName(std::string_view name);

// "sha256:<64 lowercase hex>" of the token's bytes.
std::string HashToken(std::string_view token);

// The file's entries in order; INVALID_ARGUMENT naming the line number of a
// malformed line, an unknown role, a bad name or hash, or a name or hash
// that appears twice.
absl::StatusOr<std::vector<TokenEntry>> ParseTokenFile(std::string_view text);

// Reads and parses `path`; refused (INVALID_ARGUMENT naming the path) when
// group or others may read or write it.
absl::StatusOr<std::vector<TokenEntry>> LoadTokenFile(const std::string& path);

// Adds NAME with ROLE and returns the new token in clear: "gwt_" + 43
// characters of base64url (32 bytes from RAND_bytes). Creates the file (0600)
// when missing; ALREADY_EXISTS when NAME is there. The file is rewritten
// atomically (a 0600 temporary, fsync, rename), keeping its other lines and
// comments.
absl::StatusOr<std::string> CreateToken(const std::string& path, const std::string& name,
                                        Role role);

// Removes NAME's line; NOT_FOUND when absent. Atomic as CreateToken.
absl::Status RevokeToken(const std::string& path, const std::string& name);

}  // namespace gangway::common
