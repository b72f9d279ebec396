#include "agent/workload_user.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace gangway::agent {
namespace {

UserIdentity FromPasswd(const passwd& pw) {
  UserIdentity user;
  user.name = pw.pw_name ? pw.pw_name : "";
  user.uid = pw.pw_uid;
  user.gid = pw.pw_gid;
  user.home = pw.pw_dir && *pw.pw_dir ? pw.pw_dir : "/";
  user.shell = pw.pw_shell && *pw.pw_shell ? pw.pw_shell : "/bin/sh";
  return user;
}

// getpwnam_r / getpwuid_r with a buffer that grows on ERANGE.
template <typename Fn>
absl::StatusOr<UserIdentity> Lookup(Fn fn, const std::string& what) {
  long hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(static_cast<size_t>(hint > 0 ? hint : 4096));
  while (true) {
    passwd pw{};
    passwd* result = nullptr;
    int rc = fn(&pw, buf.data(), buf.size(), &result);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0) {
      return absl::UnavailableError(absl::StrCat("passwd lookup of ", what, ": ", strerror(rc)));
    }
    if (result == nullptr) return absl::NotFoundError(absl::StrCat("no user ", what));
    return FromPasswd(pw);
  }
}

std::string Describe(const UserIdentity& user) {
  return absl::StrCat("'", user.name, "' (uid ", user.uid, ")");
}

}  // namespace

absl::StatusOr<UserIdentity> LookupUser(std::string_view name) {
  const std::string n(name);
  return Lookup([&](passwd* pw, char* buf, size_t len,
                    passwd** out) { return ::getpwnam_r(n.c_str(), pw, buf, len, out); },
                absl::StrCat("'", n, "'"));
}

absl::StatusOr<UserIdentity> LookupUid(uid_t uid) {
  return Lookup([&](passwd* pw, char* buf, size_t len,
                    passwd** out) { return ::getpwuid_r(uid, pw, buf, len, out); },
                absl::StrCat("with uid ", uid));
}

UserIdentity CurrentUser() {
  const uid_t uid = ::geteuid();
  if (absl::StatusOr<UserIdentity> user = LookupUid(uid); user.ok()) return *user;
  UserIdentity user;
  user.name = std::to_string(uid);
  user.uid = uid;
  user.gid = ::getegid();
  user.home = "/";
  user.shell = "/bin/sh";
  return user;
}

absl::StatusOr<WorkloadUserPolicy> WorkloadUserPolicy::Create(const WorkloadUserOptions& options,
                                                              const UserIdentity& self,
                                                              Lookup lookup) {
  if (options.run_as_agent_user) {
    if (!options.run_as.empty()) {
      return absl::InvalidArgumentError("--run-as: ranks run as the invoking user here");
    }
    return WorkloadUserPolicy(options, self, self, std::move(lookup));
  }
  if (self.uid != 0) {
    // Without root there is no setuid: ranks can only be the agent itself.
    auto is_self = [&](const std::string& name) {
      if (name == self.name) return true;
      absl::StatusOr<UserIdentity> user = lookup(name);
      return user.ok() && user->uid == self.uid;
    };
    if (!options.run_as.empty() && !is_self(options.run_as)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--run-as ", options.run_as, ": the agent runs as ", Describe(self),
          " and can only run ranks as itself; start it as root to run them as another user"));
    }
    for (const std::string& name : options.allowed_users) {
      if (!is_self(name)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--allow-user ", name, ": the agent runs as ", Describe(self),
            " and can only run ranks as itself; start it as root to run them as another user"));
      }
    }
    return WorkloadUserPolicy(options, self, self, std::move(lookup));
  }

  UserIdentity chosen;
  if (!options.run_as.empty()) {
    absl::StatusOr<UserIdentity> user = lookup(options.run_as);
    if (!user.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--run-as ", options.run_as, ": ", user.status().message()));
    }
    chosen = *std::move(user);
  } else if (absl::StatusOr<UserIdentity> gangway = lookup("gangway"); gangway.ok()) {
    chosen = *std::move(gangway);
  } else if (absl::StatusOr<UserIdentity> nobody = lookup("nobody"); nobody.ok()) {
    chosen = *std::move(nobody);
  } else if (options.allow_root) {
    chosen = self;
  } else {
    return absl::InvalidArgumentError(
        "the agent runs as root and this node has neither a 'gangway' nor a 'nobody' account "
        "to run ranks as: create one (useradd --system gangway), name one with --run-as USER, "
        "or pass --allow-root-workloads to run ranks as root");
  }
  if (chosen.uid == 0 && !options.allow_root) {
    return absl::InvalidArgumentError(
        absl::StrCat("--run-as ", options.run_as,
                     ": ranks would run as root; pass --allow-root-workloads if that is meant"));
  }
  return WorkloadUserPolicy(options, self, std::move(chosen), std::move(lookup));
}

absl::StatusOr<UserIdentity> WorkloadUserPolicy::ForJob(const std::string& requested,
                                                        const std::string& node) const {
  if (requested.empty() || requested == default_user_.name) return default_user_;
  const auto& allowed = options_.allowed_users;
  const bool listed = std::find(allowed.begin(), allowed.end(), requested) != allowed.end();
  // Root is refused without the flag even before a lookup, so a node that
  // does not allow it never reads as "no such user".
  const bool root_name = requested == "root";
  auto denied = [&](bool root) {
    return absl::PermissionDeniedError(
        absl::StrCat("node ", node, " does not allow jobs to run as '", requested,
                     "' (gangway-agent --allow-user", root ? ", --allow-root-workloads)" : ")"));
  };
  if (!listed || (root_name && !options_.allow_root)) return denied(root_name);
  absl::StatusOr<UserIdentity> user = lookup_(requested);
  if (!user.ok()) {
    if (absl::IsNotFound(user.status())) {
      return absl::NotFoundError(absl::StrCat("node ", node, " has no user '", requested, "'"));
    }
    return user.status();
  }
  // A listed name that is root under another name (uid 0) counts as root.
  if (user->uid == 0 && !options_.allow_root) return denied(true);
  // An agent that is not root cannot switch: only its own uid can run.
  if (self_.uid != 0 && user->uid != self_.uid) return denied(false);
  return user;
}

}  // namespace gangway::agent
