// The coordinator's one place that decides who may do what.
//
// Identify() turns a call's transport credentials into a Principal: a bearer
// token in the "authorization" metadata (a user's token from the token file,
// or a rank's job token), else the TLS client certificate the handshake
// verified (a node), else anonymous. Admit() then looks the method up in one
// table, MethodRules(): a method without a rule is refused, so a new RPC is
// closed until someone decides who may call it (a test walks the proto's
// services to keep the table whole).
//
// Modes:
//   - open: no token file (loopback, `gangway local`, or --insecure). Any
//     caller may use the user methods; agents need a certificate only when
//     TLS is on.
//   - secured: a token file. User methods need a token whose role is enough.
// In both, the rendezvous and metrics services take only job tokens, and
// the service then checks that the token's job and attempt are the ones
// asked for and still running.
//
// Thread-safe: gRPC's threads call Identify and Admit at once; the token
// file is re-read (at most once a second) when it changes, so `gangway
// token create/revoke` takes effect without a restart.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tokens.h"
#include "coordinator/job_tokens.h"
#include "coordinator/principal.h"

namespace grpc {
class ServerContextBase;
}

namespace gangway::coordinator {

enum class Need {
  kViewer,     // reads
  kSubmitter,  // creates, and changes what it owns
  kAdmin,      // changes anything
  kNode,       // an agent's session
  kJob,        // a rank of a running attempt
};

struct MethodRule {
  absl::string_view method;  // "gangway.v1.Control/SubmitJob"
  Need need;
  // Logged in the audit log with the caller, target and outcome.
  bool audited;
};

// Every RPC of proto/gangway/v1/gangway.proto.
std::span<const MethodRule> MethodRules();
// nullptr when the method has no rule (it is then refused).
const MethodRule* FindRule(absl::string_view method);
// Every "gangway.v1.Service/Method" the proto defines, from its descriptors:
// what the table must cover.
std::vector<std::string> ProtoMethods();

struct AuthOptions {
  bool tls = false;        // client certificates are verified by the handshake
  std::string token_file;  // empty: open mode
  // How often a presented user token may trigger a look at the file.
  std::chrono::milliseconds reload_every{1000};
};

class Authenticator {
 public:
  // Loads the token file (refused when group/world can access it).
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(AuthOptions options,
                                                               const JobTokens* job_tokens);

  bool open() const { return options_.token_file.empty(); }
  bool tls() const { return options_.tls; }

  // UNAUTHENTICATED for a token that is malformed, forged, unknown or revoked.
  absl::StatusOr<Principal> Identify(const grpc::ServerContextBase& ctx) const;
  // Identify, then Decide.
  absl::StatusOr<Principal> Admit(const grpc::ServerContextBase& ctx,
                                  absl::string_view method) const;
  // The table's verdict: UNAUTHENTICATED when the call lacks the credential
  // it needs, PERMISSION_DENIED when it has one that is not enough.
  absl::Status Decide(absl::string_view method, const Principal& who) const;

  // For tests: a user token as the file holds it now.
  absl::StatusOr<Principal> IdentifyToken(absl::string_view token) const;

 private:
  Authenticator(AuthOptions options, const JobTokens* job_tokens)
      : options_(std::move(options)), job_tokens_(job_tokens) {}
  absl::Status Reload() const;  // holds mu_

  AuthOptions options_;
  const JobTokens* job_tokens_;
  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, common::TokenEntry> by_hash_;  // mu_
  mutable std::chrono::steady_clock::time_point checked_;                // mu_
  mutable int64_t file_mtime_ns_ = 0;                                    // mu_
  mutable int64_t file_size_ = -1;                                       // mu_
  mutable uint64_t file_inode_ = 0;                                      // mu_
};

}  // namespace gangway::coordinator
