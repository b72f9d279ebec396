// The real coordinator process a load driver measures: started with the
// address it prints on its first line, its CPU time and RSS read from /proc,
// and stopped at the end.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace gangway::bench {

struct CoordinatorProcess {
  pid_t pid = 0;
  std::string address;  // host:port it listens on
};

// Runs `args` (args[0]: the coordinator binary) and waits for the line
// "listening ADDRESS" it prints once it serves; nullopt when it cannot be
// started (said on stderr).
inline std::optional<CoordinatorProcess> StartCoordinator(std::vector<std::string> args) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return std::nullopt;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  CoordinatorProcess proc;
  if (posix_spawn(&proc.pid, args[0].c_str(), &fa, nullptr, cargs.data(), environ) != 0) {
    std::cerr << "cannot start " << args[0] << "\n";
    return std::nullopt;
  }
  close(pipefd[1]);
  std::string line;
  char c;
  while (read(pipefd[0], &c, 1) == 1 && c != '\n') line += c;
  proc.address = line.substr(line.find(' ') + 1);
  std::cout << "coordinator pid " << proc.pid << " at " << proc.address << "\n";
  return proc;
}

inline void StopCoordinator(pid_t pid) {
  kill(pid, SIGTERM);
  int status;
  waitpid(pid, &status, 0);
}

// utime + stime of a process, in clock ticks.
inline int64_t CpuTicks(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string all((std::istreambuf_iterator<char>(in)), {});
  std::istringstream rest(all.substr(all.rfind(')') + 2));
  std::string field;
  int64_t ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stoll(field);
  }
  return ticks;
}

// Resident set size in KiB; 0 when the process is gone.
inline int64_t RssKb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

}  // namespace gangway::bench
