#include "agent/spawn.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace gangway::agent {
namespace {

// set_mempolicy's node mask: up to 1024 NUMA nodes, as the kernel's default.
constexpr int kBitsPerWord = 8 * sizeof(unsigned long);
constexpr int kNodeMaskWords = 1024 / kBitsPerWord;
constexpr int kMpolBind = 2;  // from <numaif.h> (libnuma's, not needed otherwise)

constexpr char kDefaultPath[] = "/usr/local/bin:/usr/bin:/bin";

std::string ErrnoText(int err) { return std::strerror(err); }

bool Allowlisted(std::string_view name, const EnvironmentOptions& options) {
  if (name == "PATH" || name == "LANG" || name == "LANGUAGE" || name == "TZ" || name == "TERM" ||
      name.starts_with("LC_")) {
    return true;
  }
  for (const std::string& pass : options.pass) {
    if (name == pass) return true;
  }
  return false;
}

// The step of the child that failed, sent with its errno up the pipe.
enum class Step : int {
  kSetsid,
  kMempolicy,
  kAffinity,
  kStdin,
  kLog,
  kSetgroups,
  kSetgid,
  kSetuid,
  kChdir,
  kExec
};

struct ChildError {
  Step step;
  int err;
  int candidate;  // for kExec: which candidate path, or -1
};

// Everything the child reads, prepared by the parent: the child only reads
// it (its copy of the parent's memory) and makes system calls.
struct ChildPlan {
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  std::vector<const char*> candidates;
  int log_fd = -1;
  int error_fd = -1;
  bool switch_user = false;
  int parent_death_signal = 0;
  pid_t parent = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  const char* working_dir = nullptr;  // nullptr: inherit or home
  const char* home = nullptr;         // tried when switching without working_dir
  bool set_affinity = false;
  cpu_set_t cpus;
  bool bind_memory = false;
  unsigned long node_mask[kNodeMaskWords] = {};
};

[[noreturn]] void ChildFail(const ChildPlan& plan, Step step, int err, int candidate = -1) {
  const ChildError error{step, err, candidate};
  while (::write(plan.error_fd, &error, sizeof(error)) < 0 && errno == EINTR) {
  }
  ::_exit(127);
}

// Runs in the child between _Fork and execve: async-signal-safe calls only
// (no allocation, no locks, no stdio), every signal blocked until the end.
[[noreturn]] void RunChild(const ChildPlan& plan) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  // Ignored dispositions survive exec: an agent ignoring SIGPIPE or SIGTERM
  // would pass that on and break Stop. glibc's own signals refuse; fine.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  if (::setsid() < 0) ChildFail(plan, Step::kSetsid, errno);
  if (plan.bind_memory && ::syscall(SYS_set_mempolicy, kMpolBind, plan.node_mask,
                                    kNodeMaskWords * kBitsPerWord + 1) != 0) {
    ChildFail(plan, Step::kMempolicy, errno);
  }
  if (plan.set_affinity && ::sched_setaffinity(0, sizeof(plan.cpus), &plan.cpus) != 0) {
    ChildFail(plan, Step::kAffinity, errno);
  }
  int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd < 0) ChildFail(plan, Step::kStdin, errno);
  if (null_fd != STDIN_FILENO) {
    if (::dup2(null_fd, STDIN_FILENO) < 0) ChildFail(plan, Step::kStdin, errno);
    ::close(null_fd);
  }
  if (plan.log_fd >= 0 &&
      (::dup2(plan.log_fd, STDOUT_FILENO) < 0 || ::dup2(plan.log_fd, STDERR_FILENO) < 0)) {
    ChildFail(plan, Step::kLog, errno);
  }
  if (plan.switch_user) {
    // Raw system calls: glibc's wrappers would signal the parent's other
    // threads, which this copy does not have. Groups first (only root may
    // change them), the uid last.
    if (::syscall(SYS_setgroups, 0, nullptr) != 0) ChildFail(plan, Step::kSetgroups, errno);
    if (::syscall(SYS_setgid, plan.gid) != 0) ChildFail(plan, Step::kSetgid, errno);
    if (::syscall(SYS_setuid, plan.uid) != 0) ChildFail(plan, Step::kSetuid, errno);
  }
  // After the switch: changing credentials clears the setting. A parent
  // that died before it was set is caught by the getppid check.
  if (plan.parent_death_signal != 0) {
    ::syscall(SYS_prctl, PR_SET_PDEATHSIG, plan.parent_death_signal, 0, 0, 0);
    if (::syscall(SYS_getppid) != plan.parent) ::_exit(127);
  }
  // After the switch, so the kernel checks the workload user's access.
  if (plan.working_dir != nullptr) {
    if (::chdir(plan.working_dir) != 0) ChildFail(plan, Step::kChdir, errno);
  } else if (plan.switch_user) {
    // The agent's own working directory means nothing to the user.
    if (plan.home == nullptr || ::chdir(plan.home) != 0) {
      if (::chdir("/") != 0) ChildFail(plan, Step::kChdir, errno);
    }
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  // As execvp: a missing or unsearchable candidate moves on to the next;
  // Permission denied is reported (for the first such path) only when no
  // candidate ran; any other error stops the search.
  int denied = -1;
  for (size_t i = 0; i < plan.candidates.size(); ++i) {
    ::execve(plan.candidates[i], plan.argv, plan.envp);
    const int err = errno;
    if (err == EACCES) {
      if (denied < 0) denied = static_cast<int>(i);
      continue;
    }
    if (err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT) {
      continue;
    }
    ChildFail(plan, Step::kExec, err, static_cast<int>(i));
  }
  if (denied >= 0) ChildFail(plan, Step::kExec, EACCES, denied);
  ChildFail(plan, Step::kExec, ENOENT);  // named as argv[0] was
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// A descriptor above stderr, so the child's dup2 onto 0-2 cannot clobber it
// (a supervisor started with those closed gets them from pipe2).
int AboveStderr(int fd) {
  if (fd < 0 || fd > STDERR_FILENO) return fd;
  int high = ::fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  ::close(fd);
  return high;
}

std::string AsUser(const UserIdentity& user) {
  return absl::StrCat(" as user ", user.name, " (uid ", user.uid, ")");
}

// The child's report as a status a person can act on.
absl::Status ToStatus(const ChildError& error, const LaunchRequest& request,
                      const std::vector<std::string>& candidates, bool switched) {
  const std::string& argv0 = request.argv[0];
  const std::string as = switched ? AsUser(*request.user) : "";
  const bool denied_to_user = switched && error.err == EACCES;
  switch (error.step) {
    case Step::kMempolicy:
      return absl::InvalidArgumentError(
          absl::StrCat("set_mempolicy for '", argv0, "': ", ErrnoText(error.err)));
    case Step::kAffinity:
      return absl::InvalidArgumentError(
          absl::StrCat("sched_setaffinity for '", argv0, "': ", ErrnoText(error.err)));
    case Step::kSetsid:
    case Step::kStdin:
    case Step::kLog:
      return absl::InternalError(absl::StrCat("starting '", argv0, "': step ",
                                              static_cast<int>(error.step), ": ",
                                              ErrnoText(error.err)));
    case Step::kSetgroups:
    case Step::kSetgid:
    case Step::kSetuid: {
      const char* call = error.step == Step::kSetgroups ? "setgroups"
                         : error.step == Step::kSetgid  ? "setgid"
                                                        : "setuid";
      return absl::FailedPreconditionError(
          absl::StrCat("cannot run '", argv0, "'", as, ": ", call, ": ", ErrnoText(error.err)));
    }
    case Step::kChdir: {
      const std::string dir = request.working_dir.empty() ? "/" : request.working_dir;
      std::string message =
          absl::StrCat("cannot chdir to '", dir, "'", as, ": ", ErrnoText(error.err));
      if (denied_to_user) {
        absl::StrAppend(&message,
                        "; the directory or one above it is not accessible to that user (a "
                        "checkout under a private home?): make it accessible or choose --run-as");
      }
      return absl::FailedPreconditionError(message);
    }
    case Step::kExec: {
      const std::string& path =
          error.candidate >= 0 && static_cast<size_t>(error.candidate) < candidates.size()
              ? candidates[static_cast<size_t>(error.candidate)]
              : argv0;
      std::string message =
          absl::StrCat("cannot execute '", path, "'", as, ": ", ErrnoText(error.err));
      if (denied_to_user) {
        absl::StrAppend(&message,
                        "; the file or a directory above it is not readable by that user (a "
                        "checkout under a private home?): make it readable or choose --run-as");
      }
      const bool exec_error = error.err == ENOENT || error.err == EACCES || error.err == ENOEXEC ||
                              error.err == ENOTDIR;
      return exec_error ? absl::FailedPreconditionError(message) : absl::InternalError(message);
    }
  }
  return absl::InternalError("unknown spawn step");
}

}  // namespace

std::vector<std::string> BuildRankEnvironment(
    const EnvironmentOptions& options, const std::vector<std::string>& parent,
    const UserIdentity* user, const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::string> env;
  std::unordered_map<std::string, size_t> index;  // name -> position in env
  auto set = [&](const std::string& name, std::string kv) {
    if (auto it = index.find(name); it != index.end()) {
      env[it->second] = std::move(kv);
    } else {
      index.emplace(name, env.size());
      env.push_back(std::move(kv));
    }
  };
  for (const std::string& kv : parent) {
    std::string name = kv.substr(0, kv.find('='));
    if (index.contains(name)) continue;  // getenv() sees only the first one
    if (!options.inherit_all && !Allowlisted(name, options)) continue;
    index.emplace(std::move(name), env.size());
    env.push_back(kv);
  }
  if (!options.inherit_all && !index.contains("PATH"))
    set("PATH", absl::StrCat("PATH=", kDefaultPath));
  if (user != nullptr) {
    set("HOME", "HOME=" + user->home);
    set("USER", "USER=" + user->name);
    set("LOGNAME", "LOGNAME=" + user->name);
    set("SHELL", "SHELL=" + user->shell);
  }
  for (const auto& [name, value] : overrides) set(name, absl::StrCat(name, "=", value));
  return env;
}

std::vector<std::string> ExecCandidates(const std::string& program, const char* path_var) {
  if (program.find('/') != std::string::npos) return {program};
  if (program.empty()) return {};
  std::vector<std::string> out;
  std::string_view path = path_var != nullptr ? path_var : kDefaultPath;
  while (true) {
    const size_t colon = path.find(':');
    std::string_view dir = path.substr(0, colon);
    out.push_back(dir.empty() ? program : absl::StrCat(std::string(dir), "/", program));
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return out;
}

absl::StatusOr<pid_t> SpawnRank(const LaunchRequest& request, std::vector<std::string> env,
                                int log_fd) {
  ChildPlan plan;
  plan.parent_death_signal = request.parent_death_signal;
  plan.parent = ::getpid();
  std::vector<std::string> argv_strings = request.argv;
  std::vector<char*> argv = CStrings(argv_strings);
  const char* path_var = nullptr;
  for (const std::string& kv : env) {
    if (kv.starts_with("PATH=")) path_var = kv.c_str() + 5;
  }
  const std::vector<std::string> candidates = ExecCandidates(request.argv[0], path_var);
  std::vector<char*> envp = CStrings(env);
  plan.argv = argv.data();
  plan.envp = envp.data();
  for (const std::string& c : candidates) plan.candidates.push_back(c.c_str());
  plan.log_fd = log_fd;

  // Another uid, or (for root) another primary group. A non-root agent
  // running as the user under another group (sg, newgrp) is left as it is:
  // it could not change groups anyway.
  const bool switched =
      request.user.has_value() &&
      (request.user->uid != ::geteuid() || (::geteuid() == 0 && request.user->gid != ::getegid()));
  if (switched) {
    plan.switch_user = true;
    plan.uid = request.user->uid;
    plan.gid = request.user->gid;
    if (!request.user->home.empty()) plan.home = request.user->home.c_str();
  }
  if (!request.working_dir.empty()) plan.working_dir = request.working_dir.c_str();
  if (!request.cpu_affinity.empty()) {
    plan.set_affinity = true;
    CPU_ZERO(&plan.cpus);
    for (int cpu : request.cpu_affinity) CPU_SET(cpu, &plan.cpus);
  }
  if (!request.memory_nodes.empty()) {
    plan.bind_memory = true;
    for (int node : request.memory_nodes) {
      plan.node_mask[node / kBitsPerWord] |= 1UL << (node % kBitsPerWord);
    }
  }

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", ErrnoText(errno)));
  }
  const int read_fd = AboveStderr(pipe_fds[0]);
  plan.error_fd = AboveStderr(pipe_fds[1]);
  if (read_fd < 0 || plan.error_fd < 0) {
    if (read_fd >= 0) ::close(read_fd);
    if (plan.error_fd >= 0) ::close(plan.error_fd);
    return absl::InternalError("no descriptor for the spawn pipe");
  }

  // Every signal blocked across _Fork: the child must not run one of the
  // parent's handlers before it has reset them.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::_Fork();
  if (pid == 0) RunChild(plan);
  const int fork_err = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(plan.error_fd);
  if (pid < 0) {
    ::close(read_fd);
    return absl::InternalError(absl::StrCat("fork: ", ErrnoText(fork_err)));
  }

  // EOF: the exec closed the pipe (success); a record: the step that failed.
  ChildError error{};
  ssize_t n;
  do {
    n = ::read(read_fd, &error, sizeof(error));
  } while (n < 0 && errno == EINTR);
  ::close(read_fd);
  if (n == 0) return pid;

  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  if (n != sizeof(error)) return absl::InternalError("spawn: short report from the child");
  return ToStatus(error, request, candidates, switched);
}

}  // namespace gangway::agent
