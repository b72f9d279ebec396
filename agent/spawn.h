// Starting one rank: fork + exec, with the identity switch that posix_spawn
// cannot do. The Supervisor owns what happens after (pidfd, exit, kill).
//
// Everything the child needs (argv, envp, the candidate paths of a PATH
// lookup, the CPU and NUMA masks) is built in the parent; the child, a
// copy of a multi-threaded process, makes only async-signal-safe calls
// (raw system calls, execve) and reports a failing step with its errno
// through a close-on-exec pipe, so the parent tells "cannot chdir" from
// "cannot execute" and "Permission denied as nobody" from "not found".
// The child is made with _Fork (glibc 2.34), which skips the atfork
// handlers of the libraries in the agent (gRPC) that a child about to exec
// does not need.
//
// In the child, in order: default signal dispositions, setsid (its own
// session and process group), MPOL_BIND memory policy, CPU affinity (both
// before exec, so the program's first threads are placed too), stdin from
// /dev/null, stdout and stderr to the log, then the identity switch, chdir
// and execve over the candidates, as execvp does.
//
// The identity switch drops ALL supplementary groups (setgroups(0)) first,
// then sets the user's primary group, then the uid: groups and gid can only
// be changed while still root, and a supplementary group left over from the
// agent (disk, docker, a credentials group) would give the rank the agent's
// access. Ranks needing a group (video, render for a GPU device node) get
// it as the account's primary group, or the device is made world-accessible,
// which is what the nvidia device nodes do by default.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/supervisor.h"

namespace gangway::agent {

// The rank's full environment, "NAME=value" each, from `options` applied to
// `parent` (an environ-style list, first occurrence wins), the identity of
// `user` (HOME, USER, LOGNAME, SHELL) when one is given, then `overrides`.
std::vector<std::string> BuildRankEnvironment(
    const EnvironmentOptions& options, const std::vector<std::string>& parent,
    const UserIdentity* user, const std::vector<std::pair<std::string, std::string>>& overrides);

// The paths execve is tried on for `program` with `path_var` (the rank's
// PATH, or nullptr for the default), in order, as execvp: the name itself
// when it has a slash; an empty PATH element is the working directory.
std::vector<std::string> ExecCandidates(const std::string& program, const char* path_var);

// Forks and execs `request` with `envp` ("NAME=value"), stdout and stderr
// on `log_fd` (-1: inherited). Returns the child's pid once it has exec'd.
// Errors as Supervisor::Launch (the caller writes FAILED_PRECONDITION's
// message to the log).
absl::StatusOr<pid_t> SpawnRank(const LaunchRequest& request, std::vector<std::string> envp,
                                int log_fd);

}  // namespace gangway::agent
