// Who made a request, as the coordinator's edge (coordinator/auth.h)
// decided from the transport: a user's token, a node's certificate, a
// rank's job token, or nothing. The core records owners and checks
// ownership with it; it never sees a certificate or a token.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/tokens.h"

namespace gangway::coordinator {

struct Principal {
  enum class Kind {
    // No credentials, on a coordinator without a token file (loopback or
    // --insecure, and `gangway local`): every user request is allowed.
    kAnonymous,
    kUser,  // a bearer token from the token file
    kNode,  // a client certificate signed by the cluster CA
    kJob,   // a rank's per-attempt job token
  };
  Kind kind = Kind::kAnonymous;
  std::string name;  // user, node or job id
  // A node certificate's other names (DNS SANs); the node may register
  // under `name` or any of these.
  std::vector<std::string> aliases;
  common::Role role = common::Role::kAdmin;
  int32_t attempt = 0;  // kJob

  // "user:alice", "node:n1", "job:train-3#2", "anonymous": what owners and
  // the audit log record.
  std::string ToString() const {
    switch (kind) {
      case Kind::kAnonymous:
        return "anonymous";
      case Kind::kUser:
        return absl::StrCat("user:", name);
      case Kind::kNode:
        return absl::StrCat("node:", name);
      case Kind::kJob:
        return absl::StrCat("job:", name, "#", attempt);
    }
    return "unknown";
  }

  // May act on what `owner` owns: admins and anonymous callers (open mode)
  // on anything, a user on what it submitted.
  bool MayActOn(const std::string& owner) const {
    if (kind == Kind::kAnonymous) return true;
    if (kind != Kind::kUser) return false;
    return role == common::Role::kAdmin || owner == ToString();
  }
};

}  // namespace gangway::coordinator
