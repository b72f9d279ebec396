// The CLI's commands as functions of their options, writing to the given
// streams and returning the process exit code (0 success, 1 the operation
// failed, 2 bad usage or input), so tests call them directly.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cli/format.h"
#include "common/tls.h"
#include "gangway/v1/gangway.grpc.pb.h"

namespace gangway::cli {

struct Context {
  std::string coordinator;  // host:port
  Output output = Output::kTable;
  std::ostream* out;
  std::ostream* err;
  // --tls-ca (GANGWAY_TLS_CA): the cluster CA; empty: plaintext.
  common::ClientTls tls;
  // --token (GANGWAY_TOKEN): sent as a bearer token on every call.
  std::string token;
  std::shared_ptr<grpc::Channel> channel;   // made by Connect
  std::unique_ptr<v1::Control::Stub> stub;  // over channel
  bool terminal = false;                    // stdout is a terminal: live progress
};

// Fills ctx.channel and ctx.stub. Fails on an empty address or unreadable
// TLS files (INVALID_ARGUMENT naming the file).
absl::Status Connect(Context& ctx);

int Submit(Context& ctx, const std::string& file);
int Get(Context& ctx, const std::string& id);
int List(Context& ctx, bool all);
int Cancel(Context& ctx, const std::string& id);
int Nodes(Context& ctx);
// Bytes a `logs` call without -f asks for; the next call resumes there.
inline constexpr int64_t kLogCallBytes = 8 << 20;
// From byte `offset` of the rank's log.
int Logs(Context& ctx, const std::string& id, int rank, int attempt, bool follow,
         int64_t offset = 0);
// Prints a line per change until the job ends; 0 when it Succeeded.
int Watch(Context& ctx, const std::string& id);

// Exit code for a finished job: 0 Succeeded, 1 otherwise.
int ExitCodeFor(const v1::Job& job);

// Reads a spec file ("-" is stdin) with the size limit applied.
absl::StatusOr<std::string> ReadSpecFile(const std::string& path);

}  // namespace gangway::cli
