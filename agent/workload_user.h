// Who a node's ranks run as: the agent's workload-user policy.
//
// A rank never runs as root by default. An agent started as root runs ranks
// as --run-as USER, else the `gangway` account, else `nobody`; with none of
// them it refuses to start unless --allow-root-workloads. An agent started
// as another user can only run ranks as itself (it cannot change uid), so a
// --run-as or --allow-user naming someone else is refused at startup rather
// than failing every launch later.
//
// A job may ask for a user (JobSpec.user): the agent launches it only when
// that user is the node's default workload user or listed in --allow-user;
// root also needs --allow-root-workloads. The decision is this node's, with
// its own passwd database: the coordinator does not know the nodes' users.
//
// Thread-safe once created: the policy is immutable; passwd lookups use the
// reentrant getpw*_r.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gangway::agent {

// A passwd entry: what a rank switches to and the HOME, USER, LOGNAME and
// SHELL it sees.
struct UserIdentity {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;
  std::string shell;
};

// NOT_FOUND when the user does not exist on this machine.
absl::StatusOr<UserIdentity> LookupUser(std::string_view name);
absl::StatusOr<UserIdentity> LookupUid(uid_t uid);
// The process's own (effective) user; a uid without a passwd entry (a
// container's arbitrary uid) gets its number as name and "/" as home.
UserIdentity CurrentUser();

struct WorkloadUserOptions {
  std::string run_as;                      // --run-as; empty: the default described above
  bool allow_root = false;                 // --allow-root-workloads
  std::vector<std::string> allowed_users;  // --allow-user (a job's `user:`)
  // `gangway local`: ranks run as the agent's own user, root included, as
  // torchrun's do; run_as must then be empty.
  bool run_as_agent_user = false;
};

class WorkloadUserPolicy {
 public:
  using Lookup = std::function<absl::StatusOr<UserIdentity>(std::string_view name)>;

  // `self` is the agent's user; `lookup` reads the passwd database (tests
  // inject one). INVALID_ARGUMENT with a message for the person starting
  // the agent when the options cannot be honoured.
  static absl::StatusOr<WorkloadUserPolicy> Create(const WorkloadUserOptions& options,
                                                   const UserIdentity& self,
                                                   Lookup lookup = LookupUser);

  // The user ranks run as when the job names none.
  const UserIdentity& default_user() const { return default_user_; }

  // The user a job's ranks run as: `requested` empty means the default.
  // PERMISSION_DENIED when this node does not allow it, NOT_FOUND when the
  // user does not exist here; either message names `node` and is meant for
  // the rank's log.
  absl::StatusOr<UserIdentity> ForJob(const std::string& requested, const std::string& node) const;

 private:
  WorkloadUserPolicy(WorkloadUserOptions options, UserIdentity self, UserIdentity default_user,
                     Lookup lookup)
      : options_(std::move(options)),
        self_(std::move(self)),
        default_user_(std::move(default_user)),
        lookup_(std::move(lookup)) {}

  WorkloadUserOptions options_;
  UserIdentity self_;
  UserIdentity default_user_;
  Lookup lookup_;
};

}  // namespace gangway::agent
