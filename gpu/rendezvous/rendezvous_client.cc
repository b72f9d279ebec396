#include "gpu/rendezvous/rendezvous_client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/tls.h"

namespace gangway::gpu {
namespace {

// Answers that hold many values may exceed gRPC's default 4 MiB; the
// coordinator bounds a scope at 256 MiB.
constexpr int kMaxReceiveBytes = 256 << 20;
// Beyond the wait itself, so the coordinator's DEADLINE_EXCEEDED, which names
// the missing key, arrives before the client's own deadline.
constexpr auto kDeadlineSlack = std::chrono::seconds(10);

absl::StatusOr<std::string> Required(const EnvLookup& env, const std::string& name) {
  std::optional<std::string> value = env(name);
  if (!value || value->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " is not set: is this process a rank launched by gangway?"));
  }
  return *value;
}

absl::StatusOr<int32_t> RequiredInt(const EnvLookup& env, const std::string& name, int32_t min) {
  absl::StatusOr<std::string> text = Required(env, name);
  if (!text.ok()) return text.status();
  int32_t value = 0;
  if (!absl::SimpleAtoi(*text, &value) || value < min) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, "='", *text, "' is not an integer >= ", min));
  }
  return value;
}

absl::Status CheckConfig(const RendezvousConfig& c) {
  if (c.endpoint.empty()) return absl::InvalidArgumentError("rendezvous endpoint is empty");
  if (c.job_id.empty()) return absl::InvalidArgumentError("rendezvous job id is empty");
  if (c.attempt < 0) return absl::InvalidArgumentError("rendezvous attempt is negative");
  if (c.world_size < 1 || c.rank < 0 || c.rank >= c.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", c.rank, " is not in [0, world size ", c.world_size, ")"));
  }
  return absl::OkStatus();
}

void SetDeadline(grpc::ClientContext& ctx, std::chrono::milliseconds budget) {
  ctx.set_deadline(std::chrono::system_clock::now() + budget);
  ctx.set_wait_for_ready(true);
}

}  // namespace

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

absl::StatusOr<RendezvousConfig> RendezvousConfigFromEnv(const EnvLookup& env) {
  RendezvousConfig c;
  absl::StatusOr<std::string> endpoint = Required(env, "GANGWAY_RDZV");
  if (!endpoint.ok()) return endpoint.status();
  c.endpoint = std::move(*endpoint);
  absl::StatusOr<std::string> job = Required(env, "GANGWAY_JOB");
  if (!job.ok()) return job.status();
  c.job_id = std::move(*job);
  absl::StatusOr<int32_t> attempt = RequiredInt(env, "GANGWAY_ATTEMPT", 0);
  if (!attempt.ok()) return attempt.status();
  c.attempt = *attempt;
  absl::StatusOr<int32_t> rank = RequiredInt(env, "RANK", 0);
  if (!rank.ok()) return rank.status();
  c.rank = *rank;
  absl::StatusOr<int32_t> world = RequiredInt(env, "WORLD_SIZE", 1);
  if (!world.ok()) return world.status();
  c.world_size = *world;
  c.token = env("GANGWAY_JOB_TOKEN").value_or("");
  c.tls_ca = env("GANGWAY_TLS_CA").value_or("");
  if (c.rank >= c.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("RANK=", c.rank, " is not below WORLD_SIZE=", c.world_size));
  }
  return c;
}

RendezvousClient::RendezvousClient(RendezvousConfig config, std::shared_ptr<grpc::Channel> channel)
    : config_(std::move(config)),
      channel_(std::move(channel)),
      stub_(v1::Rendezvous::NewStub(channel_)) {}

absl::StatusOr<std::unique_ptr<RendezvousClient>> RendezvousClient::FromEnv(const EnvLookup& env) {
  absl::StatusOr<RendezvousConfig> config = RendezvousConfigFromEnv(env);
  if (!config.ok()) return config.status();
  return Connect(std::move(*config));
}

absl::StatusOr<std::unique_ptr<RendezvousClient>> RendezvousClient::Connect(
    RendezvousConfig config) {
  if (absl::Status s = CheckConfig(config); !s.ok()) return s;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
  common::ClientTls tls;
  if (!config.tls_ca.empty()) tls.SetCa(config.tls_ca);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      common::MakeChannel(config.endpoint, tls, config.token, args);
  if (!channel.ok()) return channel.status();
  return Create(std::move(config), std::move(*channel));
}

absl::StatusOr<std::unique_ptr<RendezvousClient>> RendezvousClient::Create(
    RendezvousConfig config, std::shared_ptr<grpc::Channel> channel) {
  if (absl::Status s = CheckConfig(config); !s.ok()) return s;
  if (channel == nullptr) return absl::InvalidArgumentError("rendezvous channel is null");
  return std::unique_ptr<RendezvousClient>(
      new RendezvousClient(std::move(config), std::move(channel)));
}

void RendezvousClient::Scope(v1::RdzvScope* scope) const {
  scope->set_job_id(config_.job_id);
  scope->set_attempt(config_.attempt);
}

namespace {

// The server's status with the call and the endpoint in front, code kept.
absl::Status Annotate(const grpc::Status& s, const std::string& call, const std::string& endpoint) {
  absl::Status status = common::FromGrpc(s);
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat("rendezvous ", call, " at ", endpoint, ": ", status.message()));
}

}  // namespace

absl::Status RendezvousClient::Set(std::string_view key, std::string_view value) const {
  v1::RdzvSetRequest req;
  Scope(req.mutable_scope());
  req.set_key(std::string(key));
  req.set_value(std::string(value));
  v1::RdzvSetResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, kCallTimeout);
  return Annotate(stub_->Set(&ctx, req, &resp), absl::StrCat("set '", std::string(key), "'"),
                  config_.endpoint);
}

absl::StatusOr<std::vector<std::string>> RendezvousClient::GetAll(
    const std::vector<std::string>& keys, std::chrono::milliseconds wait) const {
  if (wait.count() < 0) return absl::InvalidArgumentError("rendezvous wait is negative");
  v1::RdzvGetRequest req;
  Scope(req.mutable_scope());
  for (const std::string& k : keys) req.add_keys(k);
  req.set_timeout_ms(wait.count());
  v1::RdzvGetResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, wait + kDeadlineSlack);
  absl::Status s = Annotate(stub_->Get(&ctx, req, &resp),
                            keys.size() == 1 ? absl::StrCat("get '", keys[0], "'")
                                             : absl::StrCat("get of ", keys.size(), " keys"),
                            config_.endpoint);
  if (!s.ok()) return s;
  if (resp.values_size() != static_cast<int>(keys.size())) {
    return absl::InternalError(absl::StrCat("rendezvous get: asked for ", keys.size(),
                                            " keys, got ", resp.values_size(), " values"));
  }
  return std::vector<std::string>(std::make_move_iterator(resp.mutable_values()->begin()),
                                  std::make_move_iterator(resp.mutable_values()->end()));
}

absl::StatusOr<std::string> RendezvousClient::Get(std::string_view key,
                                                  std::chrono::milliseconds wait) const {
  absl::StatusOr<std::vector<std::string>> values = GetAll({std::string(key)}, wait);
  if (!values.ok()) return values.status();
  return std::move(values->front());
}

absl::StatusOr<std::string> RendezvousClient::TryGet(std::string_view key) const {
  return Get(key, std::chrono::milliseconds(0));
}

absl::StatusOr<int64_t> RendezvousClient::Add(std::string_view key, int64_t delta) const {
  v1::RdzvAddRequest req;
  Scope(req.mutable_scope());
  req.set_key(std::string(key));
  req.set_delta(delta);
  v1::RdzvAddResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, kCallTimeout);
  absl::Status s = Annotate(stub_->Add(&ctx, req, &resp),
                            absl::StrCat("add '", std::string(key), "'"), config_.endpoint);
  if (!s.ok()) return s;
  return resp.value();
}

absl::Status RendezvousClient::Barrier(std::string_view name,
                                       std::chrono::milliseconds wait) const {
  return Barrier(name, config_.world_size, wait);
}

absl::Status RendezvousClient::Barrier(std::string_view name, int32_t count,
                                       std::chrono::milliseconds wait) const {
  if (wait.count() < 0) return absl::InvalidArgumentError("rendezvous wait is negative");
  v1::RdzvBarrierRequest req;
  Scope(req.mutable_scope());
  req.set_name(std::string(name));
  req.set_count(count);
  req.set_timeout_ms(wait.count());
  v1::RdzvBarrierResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, wait + kDeadlineSlack);
  return Annotate(stub_->Barrier(&ctx, req, &resp),
                  absl::StrCat("barrier '", std::string(name), "'"), config_.endpoint);
}

}  // namespace gangway::gpu
