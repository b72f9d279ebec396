// The network side of the fault test bed: network namespaces joined by a
// bridge, nftables rules that cut, filter or drop a share of a host's
// packets, a TCP proxy that delays bytes (tc netem is not available on
// every kernel), a small tmpfs to fill, and the cleanup of what a crashed
// run left behind.
//
// - Names carry the test process's pid ("gwe2e-PID-N-host"), so `ctest -j2`
//   runs do not collide and a later run can tell a leftover (its pid is
//   gone) from a namespace in use.
// - Every object here is RAII: a namespace is deleted (after a SIGKILL to
//   whatever still runs in it), a mount unmounted, a proxy's threads
//   joined, even when the test failed.
//
// Threads: a Proxy runs its own threads; everything else is used from the
// test's thread only.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <random>

#include "tests/integration/harness.h"

namespace gangway::e2e {

using namespace std::chrono_literals;
using itest::Lines;
using itest::SteadyClock;

inline constexpr const char* kPrefix = "gwe2e-";

// Runs `command` under sh, bounded to 20 s, and returns its exit code and
// combined output.
struct ShResult {
  int code = -1;
  std::string out;
};
inline ShResult Sh(const std::string& command) {
  ShResult r;
  FILE* p = ::popen(("timeout -s KILL 20 sh -c '" + command + "' 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// Runs `command` and records a failure naming it when it does not succeed.
inline bool Must(const std::string& command) {
  ShResult r = Sh(command);
  if (r.code != 0) ADD_FAILURE() << command << " exited " << r.code << ": " << r.out;
  return r.code == 0;
}

inline bool PidAlive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

// The pid a name made by this test bed carries, or -1.
inline pid_t OwnerPid(const std::string& name, const std::string& prefix) {
  const size_t at = name.find(prefix);
  if (at == std::string::npos) return -1;
  return static_cast<pid_t>(std::atol(name.c_str() + at + prefix.size()));
}

// Deletes the namespaces and unmounts the tmpfs mounts of test runs whose
// process is gone (a crashed or killed run), after killing what ran there.
inline void CleanLeftovers() {
  for (const std::string& line : Lines(Sh("ip netns list").out)) {
    const std::string name = line.substr(0, line.find(' '));
    if (name.rfind(kPrefix, 0) != 0 || PidAlive(OwnerPid(name, kPrefix))) continue;
    for (const std::string& pid : Lines(Sh("ip netns pids " + name).out)) {
      ::kill(std::atoi(pid.c_str()), SIGKILL);
    }
    Sh("ip netns del " + name);
  }
  for (const std::string& line : Lines(itest::ReadFile("/proc/self/mounts"))) {
    std::istringstream in(line);
    std::string dev, dir;
    in >> dev >> dir;
    if (dir.find("/gwe2e-tmpfs-") == std::string::npos) continue;
    if (!PidAlive(OwnerPid(dir, "/gwe2e-tmpfs-"))) ::umount2(dir.c_str(), MNT_DETACH);
  }
}

// Why the test bed cannot run here, or "" when it can: root, iproute2,
// nftables and nsenter, and a namespace can really be made.
inline std::string Unavailable() {
  if (::geteuid() != 0) return "the e2e test bed needs root (network namespaces, nftables, mount)";
  for (const char* tool : {"ip", "nft", "nsenter"}) {
    if (Sh(std::string("command -v ") + tool).code != 0) {
      return std::string("the e2e test bed needs `") + tool +
             "` (iproute2, nftables, util-linux; scripts/install-deps installs them)";
    }
  }
  const std::string probe = std::string(kPrefix) + std::to_string(::getpid()) + "-probe";
  ShResult r = Sh("ip netns add " + probe);
  Sh("ip netns del " + probe);
  if (r.code != 0) return "cannot create a network namespace: " + r.out;
  return "";
}

// One network namespace ("a host"), deleted with whatever runs in it.
class Netns {
 public:
  explicit Netns(std::string name) : name_(std::move(name)) {
    ok_ = Must("ip netns add " + name_) && Must("ip -n " + name_ + " link set lo up");
  }
  ~Netns() {
    for (const std::string& pid : Lines(Sh("ip netns pids " + name_).out)) {
      ::kill(std::atoi(pid.c_str()), SIGKILL);
    }
    Sh("ip netns del " + name_);
  }
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;

  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }
  // `command` run inside the namespace.
  ShResult Exec(const std::string& command) const {
    return Sh("ip netns exec " + name_ + " " + command);
  }
  // Pids of every process in the namespace.
  std::vector<pid_t> Pids() const {
    std::vector<pid_t> out;
    for (const std::string& pid : Lines(Sh("ip netns pids " + name_).out)) {
      out.push_back(std::atoi(pid.c_str()));
    }
    return out;
  }

 private:
  std::string name_;
  bool ok_ = false;
};

// nftables rules in one host's namespace, all in table `inet gwfault` so
// that Heal removes exactly what the faults added. Traffic on lo is never
// touched (a host's own proxy and its ranks' local traffic go there).
class Firewall {
 public:
  Firewall(const Netns& ns, std::string scratch) : ns_(ns), scratch_(std::move(scratch)) {}

  // Every packet in and out is dropped: a partition that swallows bytes.
  bool Cut() { return Apply("drop"); }
  // Only TCP to and from `port` is dropped.
  bool CutPort(int port) {
    const std::string p = std::to_string(port);
    return Apply("tcp dport " + p + " drop", "tcp sport " + p + " drop");
  }
  // Each packet in and out is dropped with probability `percent`/100.
  bool Loss(int percent) {
    const std::string rule = "numgen random mod 100 lt " + std::to_string(percent) + " drop";
    return Apply(rule);
  }
  // Removes every rule the faults added.
  void Heal() { ns_.Exec("nft delete table inet gwfault"); }

 private:
  bool Apply(const std::string& rule) { return Apply(rule, rule); }
  bool Apply(const std::string& in_rule, const std::string& out_rule) {
    Heal();
    itest::WriteFile(scratch_,
                     "table inet gwfault {\n"
                     "  chain in {\n    type filter hook input priority 0;\n"
                     "    iifname \"lo\" accept\n    " +
                         in_rule +
                         "\n  }\n"
                         "  chain out {\n    type filter hook output priority 0;\n"
                         "    oifname \"lo\" accept\n    " +
                         out_rule + "\n  }\n}\n");
    ShResult r = ns_.Exec("nft -f " + scratch_);
    if (r.code != 0) ADD_FAILURE() << "nft in " << ns_.name() << ": " << r.out;
    return r.code == 0;
  }

  const Netns& ns_;
  std::string scratch_;
};

// A tmpfs of `bytes` mounted at DIR/gwe2e-tmpfs-PID-N; unmounted (lazily,
// so an open file cannot keep it) on destruction.
class Tmpfs {
 public:
  Tmpfs(const std::string& dir, int64_t bytes) {
    static int counter = 0;
    path_ = dir + "/gwe2e-tmpfs-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    std::filesystem::create_directories(path_);
    const std::string opts = "size=" + std::to_string(bytes) + ",mode=0755";
    if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
      ADD_FAILURE() << "mount tmpfs at " << path_ << ": " << std::strerror(errno);
    } else {
      mounted_ = true;
    }
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;

  const std::string& path() const { return path_; }

  // Writes `path` until the file system is full; returns the bytes written.
  static int64_t Fill(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return 0;
    const std::string block(64 << 10, 'x');
    int64_t total = 0;
    for (size_t want = block.size(); want > 0;) {
      const ssize_t n = ::write(fd, block.data(), want);
      if (n > 0) {
        total += n;
      } else {
        want /= 2;  // ENOSPC: the last partial blocks fill what is left
      }
    }
    ::close(fd);
    return total;
  }

 private:
  std::string path_;
  bool mounted_ = false;
};

// A TCP socket created inside namespace `ns` ("" = this process's own):
// a socket stays in the namespace it was created in, so one thread that
// enters the namespace for the socket() call is enough.
inline int SocketIn(const std::string& ns_path) {
  if (ns_path.empty()) return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int fd = -1;
  std::thread t([&] {
    const int ns = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) return;
    if (::setns(ns, CLONE_NEWNET) == 0) fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ::close(ns);
  });
  t.join();
  return fd;
}

inline sockaddr_in Ipv4(const std::string& host, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  return a;
}

// A TCP proxy: listens on `listen_host`:0 inside `listen_ns` and forwards
// every connection to `target_host`:`target_port`, connecting from inside
// `target_ns`. With a delay set, each chunk read is written on only after
// delay +- jitter (never before the chunk ahead of it: TCP keeps order).
// It is how the test's own RPCs reach a coordinator in its namespace, and
// how an agent's link gets latency.
class Proxy {
 public:
  Proxy(const std::string& listen_ns, const std::string& listen_host, const std::string& target_ns,
        std::string target_host, int target_port)
      : target_ns_(target_ns), target_host_(std::move(target_host)), target_port_(target_port) {
    listen_fd_ = SocketIn(listen_ns);
    sockaddr_in addr = Ipv4(listen_host, 0);
    socklen_t len = sizeof addr;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listen_fd_, 64) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "proxy listen in '" << listen_ns << "': " << std::strerror(errno);
      return;
    }
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~Proxy() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    cv_.notify_all();
    if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
    if (accept_thread_.joinable()) accept_thread_.join();
    for (std::thread& t : threads_) t.join();
    for (int fd : fds_) ::close(fd);
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  int port() const { return port_; }

  void SetDelay(std::chrono::milliseconds base, std::chrono::milliseconds jitter) {
    std::lock_guard lock(mu_);
    delay_ = base;
    jitter_ = jitter;
  }

 private:
  struct Chunk {
    SteadyClock::time_point due;
    std::string bytes;  // empty: end of stream
  };
  struct Pipe {
    std::deque<Chunk> queue;
    SteadyClock::time_point last_due;
  };

  void AcceptLoop() {
    while (true) {
      const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // shut down
      }
      const int server = SocketIn(target_ns_.empty() ? "" : "/run/netns/" + target_ns_);
      if (server < 0 || !Connect(server)) {
        ::close(client);
        if (server >= 0) ::close(server);
        continue;
      }
      const int one = 1;
      ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::lock_guard lock(mu_);
      if (stopping_) {
        ::close(client);
        ::close(server);
        return;
      }
      fds_.push_back(client);
      fds_.push_back(server);
      auto up = std::make_shared<Pipe>();
      auto down = std::make_shared<Pipe>();
      threads_.emplace_back([this, client, up] { Read(client, up); });
      threads_.emplace_back([this, client, server, up] { Write(server, client, up); });
      threads_.emplace_back([this, server, down] { Read(server, down); });
      threads_.emplace_back([this, server, client, down] { Write(client, server, down); });
    }
  }

  // Connects within 3 s (a cut link swallows the SYN, and a blocking
  // connect would hold the destructor for minutes).
  bool Connect(int fd) {
    sockaddr_in to = Ipv4(target_host_, target_port_);
    const int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof err;
      rc = ::poll(&p, 1, 3000) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
                   err == 0
               ? 0
               : -1;
    }
    ::fcntl(fd, F_SETFL, flags);
    return rc == 0;
  }

  void Read(int from, const std::shared_ptr<Pipe>& pipe) {
    std::string buf(64 << 10, '\0');
    while (true) {
      const ssize_t n = ::read(from, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard lock(mu_);
      auto due = SteadyClock::now() + delay_;
      if (jitter_.count() > 0) {
        std::uniform_int_distribution<int64_t> d(-jitter_.count(), jitter_.count());
        due += std::chrono::milliseconds(d(rng_));
      }
      due = std::max(due, pipe->last_due);
      pipe->last_due = due;
      pipe->queue.push_back({due, n > 0 ? buf.substr(0, n) : std::string()});
      cv_.notify_all();
      if (n <= 0) return;
    }
  }

  // Writes what `pipe` holds to `to` as it falls due; at the end of the
  // stream (or a write error) shuts `to` for writing and `from` for reading.
  void Write(int to, int from, const std::shared_ptr<Pipe>& pipe) {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !pipe->queue.empty(); });
      if (stopping_) return;
      Chunk chunk = std::move(pipe->queue.front());
      pipe->queue.pop_front();
      lock.unlock();
      std::this_thread::sleep_until(chunk.due);
      bool ok = !chunk.bytes.empty();
      for (size_t off = 0; ok && off < chunk.bytes.size();) {
        // MSG_NOSIGNAL: a peer gone must not SIGPIPE the test.
        const ssize_t n =
            ::send(to, chunk.bytes.data() + off, chunk.bytes.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) off += n;
      }
      lock.lock();
      if (!ok) {
        ::shutdown(to, SHUT_WR);
        ::shutdown(from, SHUT_RD);
        return;
      }
    }
  }

  std::string target_ns_, target_host_;
  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread accept_thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::chrono::milliseconds delay_{0}, jitter_{0};
  std::mt19937_64 rng_{20261201};
};

}  // namespace gangway::e2e
