#include "coordinator/auth.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <array>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/tls.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::coordinator {
namespace {

constexpr std::array kRules = {
    // Control: what the CLI calls.
    MethodRule{"gangway.v1.Control/SubmitJob", Need::kSubmitter, true},
    MethodRule{"gangway.v1.Control/GetJob", Need::kViewer, false},
    MethodRule{"gangway.v1.Control/ListJobs", Need::kViewer, false},
    MethodRule{"gangway.v1.Control/CancelJob", Need::kSubmitter, true},
    MethodRule{"gangway.v1.Control/WatchJob", Need::kViewer, false},
    MethodRule{"gangway.v1.Control/ListNodes", Need::kViewer, false},
    MethodRule{"gangway.v1.Control/GetLogs", Need::kViewer, false},
    // Sweeps.
    MethodRule{"gangway.v1.Sweeps/SubmitSweep", Need::kSubmitter, true},
    MethodRule{"gangway.v1.Sweeps/GetSweep", Need::kViewer, false},
    MethodRule{"gangway.v1.Sweeps/ListSweeps", Need::kViewer, false},
    MethodRule{"gangway.v1.Sweeps/CancelSweep", Need::kSubmitter, true},
    MethodRule{"gangway.v1.Sweeps/UpdateSweep", Need::kSubmitter, true},
    MethodRule{"gangway.v1.Sweeps/WatchSweep", Need::kViewer, false},
    MethodRule{"gangway.v1.Sweeps/GetMetrics", Need::kViewer, false},
    // Studies: ask/tell for programs that run their own trials.
    MethodRule{"gangway.v1.Studies/CreateStudy", Need::kSubmitter, true},
    MethodRule{"gangway.v1.Studies/Ask", Need::kSubmitter, false},
    MethodRule{"gangway.v1.Studies/Tell", Need::kSubmitter, false},
    MethodRule{"gangway.v1.Studies/BestTrials", Need::kViewer, false},
    // Agents.
    MethodRule{"gangway.v1.AgentSession/Session", Need::kNode, true},
    // Ranks.
    MethodRule{"gangway.v1.Metrics/Report", Need::kJob, false},
    MethodRule{"gangway.v1.Rendezvous/Set", Need::kJob, false},
    MethodRule{"gangway.v1.Rendezvous/Get", Need::kJob, false},
    MethodRule{"gangway.v1.Rendezvous/Add", Need::kJob, false},
    MethodRule{"gangway.v1.Rendezvous/Barrier", Need::kJob, false},
};

absl::string_view NeedName(Need need) {
  switch (need) {
    case Need::kViewer:
      return "viewer";
    case Need::kSubmitter:
      return "submitter";
    case Need::kAdmin:
      return "admin";
    case Need::kNode:
      return "a node certificate";
    case Need::kJob:
      return "a job token";
  }
  return "?";
}

common::Role RoleFor(Need need) {
  switch (need) {
    case Need::kViewer:
      return common::Role::kViewer;
    case Need::kSubmitter:
      return common::Role::kSubmitter;
    case Need::kAdmin:
    case Need::kNode:
    case Need::kJob:
      return common::Role::kAdmin;
  }
  return common::Role::kAdmin;
}

std::vector<std::string> Property(const grpc::AuthContext& ctx, const char* name) {
  std::vector<std::string> out;
  for (const grpc::string_ref& v : ctx.FindPropertyValues(name))
    out.emplace_back(v.data(), v.size());
  return out;
}

}  // namespace

std::span<const MethodRule> MethodRules() { return kRules; }

std::vector<std::string> ProtoMethods() {
  std::vector<std::string> out;
  const google::protobuf::FileDescriptor* file = v1::Job::descriptor()->file();
  for (int s = 0; s < file->service_count(); ++s) {
    const google::protobuf::ServiceDescriptor* service = file->service(s);
    for (int m = 0; m < service->method_count(); ++m) {
      out.push_back(service->full_name() + "/" + service->method(m)->name());
    }
  }
  return out;
}

const MethodRule* FindRule(absl::string_view method) {
  for (const MethodRule& rule : kRules) {
    if (rule.method == method) return &rule;
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(AuthOptions options,
                                                                     const JobTokens* job_tokens) {
  std::unique_ptr<Authenticator> auth(new Authenticator(std::move(options), job_tokens));
  if (!auth->open()) {
    std::lock_guard lock(auth->mu_);
    if (absl::Status s = auth->Reload(); !s.ok()) return s;
  }
  return auth;
}

absl::Status Authenticator::Reload() const {
  checked_ = std::chrono::steady_clock::now();
  struct stat st;
  if (::stat(options_.token_file.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("token file: cannot read '", options_.token_file,
                                                   "': ", std::strerror(errno)));
  }
  const int64_t mtime = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (mtime == file_mtime_ns_ && st.st_size == file_size_ && st.st_ino == file_inode_) {
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<common::TokenEntry>> entries =
      common::LoadTokenFile(options_.token_file);
  if (!entries.ok()) return entries.status();
  by_hash_.clear();
  for (common::TokenEntry& e : *entries) {
    std::string hash = e.hash;
    by_hash_.emplace(std::move(hash), std::move(e));
  }
  file_mtime_ns_ = mtime;
  file_size_ = st.st_size;
  file_inode_ = st.st_ino;
  return absl::OkStatus();
}

absl::StatusOr<Principal> Authenticator::IdentifyToken(absl::string_view token) const {
  Principal who;
  if (JobTokens::IsJobToken(token)) {
    if (job_tokens_ == nullptr) return absl::UnauthenticatedError("job tokens are not in use");
    absl::StatusOr<JobTokens::Claim> claim = job_tokens_->Verify(token);
    if (!claim.ok()) return claim.status();
    who.kind = Principal::Kind::kJob;
    who.name = std::move(claim->job_id);
    who.attempt = claim->attempt;
    return who;
  }
  // Open mode takes anyone; a token it cannot check changes nothing.
  if (open()) return who;
  const std::string hash = common::HashToken(std::string_view(token.data(), token.size()));
  std::lock_guard lock(mu_);
  if (std::chrono::steady_clock::now() - checked_ >= options_.reload_every) {
    if (absl::Status s = Reload(); !s.ok()) {
      // Keep serving with the tokens last read rather than lock everyone out.
      GW_LOG_WARN("token file not reloaded: {}", std::string(s.message()));
    }
  }
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return absl::UnauthenticatedError("unknown or revoked token");
  who.kind = Principal::Kind::kUser;
  who.name = it->second.name;
  who.role = it->second.role;
  return who;
}

absl::StatusOr<Principal> Authenticator::Identify(const grpc::ServerContextBase& ctx) const {
  const auto& metadata = ctx.client_metadata();
  auto header = metadata.find(common::kAuthorizationHeader);
  if (header != metadata.end()) {
    absl::string_view value(header->second.data(), header->second.size());
    if (!absl::StartsWith(value, common::kBearerPrefix)) {
      return absl::UnauthenticatedError("authorization: expected 'Bearer TOKEN'");
    }
    value.remove_prefix(absl::string_view(common::kBearerPrefix).size());
    return IdentifyToken(value);
  }
  Principal who;
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (options_.tls && auth && auth->IsPeerAuthenticated()) {
    std::vector<std::string> cn = Property(*auth, GRPC_X509_CN_PROPERTY_NAME);
    std::vector<std::string> sans = Property(*auth, GRPC_X509_SAN_PROPERTY_NAME);
    if (cn.empty() && sans.empty()) return who;
    who.kind = Principal::Kind::kNode;
    who.name = cn.empty() ? sans.front() : cn.front();
    for (std::string& san : sans) {
      if (san != who.name) who.aliases.push_back(std::move(san));
    }
  }
  return who;
}

absl::Status Authenticator::Decide(absl::string_view method, const Principal& who) const {
  const MethodRule* rule = FindRule(method);
  if (rule == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat("no authorization rule for ", method));
  }
  const std::string caller = who.ToString();
  auto denied = [&] {
    return absl::PermissionDeniedError(
        absl::StrCat(caller, " may not call ", method, ": it needs ", NeedName(rule->need)));
  };
  switch (rule->need) {
    case Need::kNode:
      if (who.kind == Principal::Kind::kNode) return absl::OkStatus();
      if (who.kind != Principal::Kind::kAnonymous) return denied();
      if (!options_.tls) return absl::OkStatus();  // plaintext was asked for
      return absl::UnauthenticatedError(absl::StrCat(
          method, " needs the node's client certificate (gangway-agent --tls-cert/--tls-key)"));
    case Need::kJob:
      if (who.kind == Principal::Kind::kJob) return absl::OkStatus();
      if (who.kind != Principal::Kind::kAnonymous) return denied();
      return absl::UnauthenticatedError(
          absl::StrCat(method, " needs the rank's job token (GANGWAY_JOB_TOKEN)"));
    case Need::kViewer:
    case Need::kSubmitter:
    case Need::kAdmin:
      if (who.kind == Principal::Kind::kAnonymous) {
        if (open()) return absl::OkStatus();
        return absl::UnauthenticatedError(
            absl::StrCat(method, " needs a token (gangway --token or GANGWAY_TOKEN)"));
      }
      if (who.kind != Principal::Kind::kUser) return denied();
      if (who.role >= RoleFor(rule->need)) return absl::OkStatus();
      return absl::PermissionDeniedError(
          absl::StrCat(caller, " (", std::string(common::RoleName(who.role)), ") may not call ",
                       method, ": it needs ", NeedName(rule->need)));
  }
  return denied();
}

absl::StatusOr<Principal> Authenticator::Admit(const grpc::ServerContextBase& ctx,
                                               absl::string_view method) const {
  absl::StatusOr<Principal> who = Identify(ctx);
  if (!who.ok()) return who.status();
  if (absl::Status s = Decide(method, *who); !s.ok()) return s;
  return who;
}

}  // namespace gangway::coordinator
