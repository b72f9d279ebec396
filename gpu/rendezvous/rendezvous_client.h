// The trainer side of gangway's rendezvous: a rank's client for the
// coordinator's key-value store (gangway.v1.Rendezvous), scoped to the rank's
// job and attempt so that a relaunched gang never reads its predecessor's
// keys.
//
//   absl::StatusOr<std::unique_ptr<RendezvousClient>> client = RendezvousClient::FromEnv();
//   absl::Status s = (*client)->Barrier("start");
//
// Every call has a deadline. Calls wait for the channel to connect within
// that deadline (gRPC wait_for_ready), so a rank that starts while the
// coordinator is briefly unreachable does not fail at once.
//
// Thread-safe: every method is const over one gRPC channel.
#pragma once

#include <grpcpp/channel.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gangway/v1/gangway.grpc.pb.h"

namespace gangway::gpu {

// What a rank reads from its environment (see common/rank_env.cc).
struct RendezvousConfig {
  std::string endpoint;    // GANGWAY_RDZV: host:port of the coordinator
  std::string job_id;      // GANGWAY_JOB
  int32_t attempt = 0;     // GANGWAY_ATTEMPT
  int32_t rank = 0;        // RANK
  int32_t world_size = 1;  // WORLD_SIZE
  // GANGWAY_JOB_TOKEN: the attempt's credential, sent on every call; the
  // coordinator refuses calls without it or for another job or attempt.
  std::string token;
  // GANGWAY_TLS_CA: the cluster CA's PEM (or a file), set by the agent when
  // the coordinator serves TLS; empty: plaintext.
  std::string tls_ca;
};

// Reads a variable; nullopt when unset. Injected so tests need no setenv.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
std::optional<std::string> ProcessEnv(const std::string& name);

// INVALID_ARGUMENT naming the variable that is missing or malformed.
absl::StatusOr<RendezvousConfig> RendezvousConfigFromEnv(const EnvLookup& env = ProcessEnv);

class RendezvousClient {
 public:
  // How long Get and Barrier wait by default: ranks of a gang may start
  // minutes apart (image pulls, slow file systems), as torchrun allows.
  static constexpr std::chrono::milliseconds kDefaultWait = std::chrono::minutes(5);
  // Deadline of calls that do not wait (Set, Add).
  static constexpr std::chrono::milliseconds kCallTimeout = std::chrono::seconds(30);

  // From GANGWAY_RDZV, GANGWAY_JOB, GANGWAY_ATTEMPT, RANK and WORLD_SIZE,
  // and GANGWAY_JOB_TOKEN and GANGWAY_TLS_CA when set.
  static absl::StatusOr<std::unique_ptr<RendezvousClient>> FromEnv(
      const EnvLookup& env = ProcessEnv);
  // Over a new channel to config.endpoint (TLS when config.tls_ca is set).
  static absl::StatusOr<std::unique_ptr<RendezvousClient>> Connect(RendezvousConfig config);
  // Over a given channel (tests use in-process ones).
  static absl::StatusOr<std::unique_ptr<RendezvousClient>> Create(
      RendezvousConfig config, std::shared_ptr<grpc::Channel> channel);

  const RendezvousConfig& config() const { return config_; }
  int32_t rank() const { return config_.rank; }
  int32_t world_size() const { return config_.world_size; }

  absl::Status Set(std::string_view key, std::string_view value) const;
  // Waits until the key exists: DEADLINE_EXCEEDED when it does not appear
  // within `wait`.
  absl::StatusOr<std::string> Get(std::string_view key,
                                  std::chrono::milliseconds wait = kDefaultWait) const;
  // Waits until every key exists; values in the order of `keys`.
  absl::StatusOr<std::vector<std::string>> GetAll(
      const std::vector<std::string>& keys, std::chrono::milliseconds wait = kDefaultWait) const;
  // Does not wait: NOT_FOUND when the key is not set.
  absl::StatusOr<std::string> TryGet(std::string_view key) const;
  // Adds to the integer at `key` (absent: 0); returns the new value.
  absl::StatusOr<int64_t> Add(std::string_view key, int64_t delta) const;
  // Returns once `count` parties (default: every rank) called Barrier(name).
  absl::Status Barrier(std::string_view name, std::chrono::milliseconds wait = kDefaultWait) const;
  absl::Status Barrier(std::string_view name, int32_t count,
                       std::chrono::milliseconds wait = kDefaultWait) const;

 private:
  RendezvousClient(RendezvousConfig config, std::shared_ptr<grpc::Channel> channel);

  void Scope(v1::RdzvScope* scope) const;

  RendezvousConfig config_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Rendezvous::Stub> stub_;
};

}  // namespace gangway::gpu
