// TLS and bearer credentials for gangway's gRPC connections: the server's
// credentials (coordinator), the channels of the CLI, the agents and the
// ranks, and the checks on secret files.
//
// Every connection is TLS with gRPC's own SSL credentials once a CA is
// configured; without one, a channel is plaintext (loopback, `gangway local`,
// or a coordinator started with --insecure). A token, when given, travels as
// "authorization: Bearer TOKEN" on every call, added by a client interceptor
// so it reaches the coordinator over plaintext loopback too (gRPC's call
// credentials refuse insecure channels).
//
// Thread-safe: free functions over their arguments.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gangway::common {

// The metadata key that carries a bearer token (lower case, as gRPC wants).
inline constexpr char kAuthorizationHeader[] = "authorization";
inline constexpr char kBearerPrefix[] = "Bearer ";

// What a client needs to reach a coordinator over TLS.
struct ClientTls {
  // The cluster CA (PEM) that signed the coordinator's certificate: a file,
  // or the PEM itself (ranks get it in GANGWAY_TLS_CA). Both empty:
  // plaintext.
  std::string ca_file;
  std::string ca_pem;
  // A client certificate and its key (agents: the node's). Optional for
  // the CLI and ranks, which authenticate with tokens.
  std::string cert_file;
  std::string key_file;
  // Checked against the coordinator's certificate instead of the address's
  // host name (tests, or a coordinator reached through a proxy).
  std::string server_name;

  bool enabled() const { return !ca_file.empty() || !ca_pem.empty(); }
  // Sets ca_pem when `value` is PEM text (as ranks get GANGWAY_TLS_CA),
  // else ca_file.
  void SetCa(const std::string& value) {
    (value.rfind("-----BEGIN", 0) == 0 ? ca_pem : ca_file) = value;
  }
};

// INVALID_ARGUMENT naming the file that is missing, unreadable or (a key)
// readable by group or others.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientTls& tls);

// A channel to `address` over `tls` (plaintext when !tls.enabled()); every
// call carries `token` when it is not empty.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const std::string& address, const ClientTls& tls, const std::string& token,
    const grpc::ChannelArguments& args = grpc::ChannelArguments());

// The coordinator's TLS: its certificate and key, and the CA that signs
// agents' client certificates. A client certificate is asked for and, when
// presented, verified; the CLI and ranks present none and use tokens.
struct ServerTls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;

  bool enabled() const { return !cert_file.empty(); }
};

// INVALID_ARGUMENT naming what is missing or unsafe.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTls& tls);

// A file's whole contents; INVALID_ARGUMENT naming `what` and the path.
absl::StatusOr<std::string> ReadTextFile(const std::string& path, absl::string_view what);

// As ReadTextFile, for secrets (private keys, token files): refused when the
// file is readable or writable by group or others, as ssh refuses a key.
absl::StatusOr<std::string> ReadPrivateFile(const std::string& path, absl::string_view what);
absl::Status CheckPrivateFile(const std::string& path, absl::string_view what);

// True when "HOST:PORT" names only this machine: 127.0.0.0/8, [::1],
// localhost. "0.0.0.0", "[::]", an empty host and any other name are not.
bool IsLoopbackAddress(absl::string_view host_port);

}  // namespace gangway::common
