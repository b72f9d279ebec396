// What a fault test checks after the run (STYLE 15): when each attempt of
// a job was alive, from two independent sources.
//
// - Process listings: a thread scans /proc every 10 ms for the job's
//   processes (by the test bed's tag and GANGWAY_JOB) and records, per
//   attempt (GANGWAY_ATTEMPT), when one was first and last seen, and how
//   many scans saw two attempts alive at once.
// - Marker files: each rank of a MarkerJob appends "start NS" to
//   MARKERS/JOB-aATTEMPT-rRANK when it starts and "end NS" when SIGTERM
//   ends it (wall-clock nanoseconds, as `date +%s%N`).
//
// Both use the wall clock so that one timeline holds them; a test bed runs
// on one machine, so every host shares it.
#pragma once

#include <map>
#include <set>

#include "tests/integration/harness.h"

namespace gangway::e2e {

using namespace std::chrono_literals;

inline int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A job whose ranks leave markers in `markers` and run until stopped (or
// for `seconds` when > 0, then exit 0).
inline std::string MarkerJob(const std::string& name, const std::string& markers, int replicas,
                             int procs_per_node, const std::string& extra = "", int seconds = 0) {
  const std::string body =
      seconds > 0 ? "i=0; while [ $i -lt " + std::to_string(seconds * 10) +
                        " ]; do sleep 0.1; i=$((i+1)); done; echo \"end $(date +%s%N)\" >> $f"
                  : "while :; do sleep 0.1; done";
  return "name: " + name + "\nreplicas: " + std::to_string(replicas) +
         "\nprocsPerNode: " + std::to_string(procs_per_node) +
         "\nresources:\n  cpus: 1\n  memory: 64Mi\n"
         "env:\n  MARKERS: '" +
         markers +
         "'\ncommand: [sh, -c]\nargs:\n  - 'f=$MARKERS/$GANGWAY_JOB-a$GANGWAY_ATTEMPT-r$RANK; "
         "echo \"start $(date +%s%N)\" >> $f; "
         "trap ''echo end $(date +%s%N) >> $f; exit 143'' TERM; " +
         body + "'\n" + extra;
}

struct MarkerSpan {
  int starts = 0;  // "start" lines: more than one means launched twice
  int64_t first_start_ns = 0;
  int64_t last_end_ns = 0;  // 0 when no end was written (killed)
};

// Per attempt, per rank: what the marker files of job `id` say.
inline std::map<int, std::map<int, MarkerSpan>> ReadMarkers(const std::string& markers,
                                                            const std::string& id) {
  std::map<int, std::map<int, MarkerSpan>> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(markers, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(id + "-a", 0) != 0) continue;
    int attempt = 0, rank = 0;
    if (std::sscanf(name.c_str() + id.size(), "-a%d-r%d", &attempt, &rank) != 2) continue;
    MarkerSpan& s = out[attempt][rank];
    for (const std::string& line : itest::Lines(itest::ReadFile(e.path().string()))) {
      const int64_t t = std::atoll(line.c_str() + line.find(' ') + 1);
      if (line.rfind("start ", 0) == 0) {
        if (s.starts++ == 0) s.first_start_ns = t;
      } else if (line.rfind("end ", 0) == 0) {
        s.last_end_ns = std::max(s.last_end_ns, t);
      }
    }
  }
  return out;
}

class AttemptHistory {
 public:
  struct Span {
    int64_t first_ns = 0, last_ns = 0;
    std::set<pid_t> pids;
  };

  AttemptHistory(std::string tag, std::string job)
      : tag_(std::move(tag)), job_("GANGWAY_JOB=" + std::move(job)) {
    thread_ = std::thread([this] {
      while (!stop_) {
        Sample();
        std::this_thread::sleep_for(10ms);
      }
    });
  }
  ~AttemptHistory() { Stop(); }
  AttemptHistory(const AttemptHistory&) = delete;
  AttemptHistory& operator=(const AttemptHistory&) = delete;

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  std::map<int, Span> spans() {
    std::lock_guard lock(mu_);
    return spans_;
  }
  // Scans that saw processes of two attempts alive at once.
  int overlapping_samples() {
    std::lock_guard lock(mu_);
    return overlapping_;
  }

  // Never two attempts alive at once, by both sources: no scan saw two, and
  // each attempt's ranks started after every process of the attempt before
  // was last seen and after every rank of it wrote its end.
  ::testing::AssertionResult NeverTwoAtOnce(const std::string& markers, const std::string& id) {
    Stop();
    std::lock_guard lock(mu_);
    if (overlapping_ > 0) {
      return ::testing::AssertionFailure()
             << overlapping_ << " process scans (10 ms apart) saw two attempts alive at once";
    }
    const auto marks = ReadMarkers(markers, id);
    int64_t prev_end = 0;
    int prev = 0;
    for (const auto& [attempt, ranks] : marks) {
      int64_t first_start = INT64_MAX, last_end = 0;
      for (const auto& [rank, s] : ranks) {
        first_start = std::min(first_start, s.first_start_ns);
        last_end = std::max(last_end, s.last_end_ns);
      }
      if (auto it = spans_.find(attempt); it != spans_.end()) {
        last_end = std::max(last_end, it->second.last_ns);
      }
      if (prev > 0 && first_start <= prev_end) {
        return ::testing::AssertionFailure()
               << "attempt " << attempt << " started " << (prev_end - first_start) / 1000000
               << " ms before attempt " << prev << " was last alive";
      }
      prev = attempt;
      prev_end = last_end;
    }
    return ::testing::AssertionSuccess();
  }

 private:
  void Sample() {
    std::set<int> alive;
    std::map<int, std::vector<pid_t>> pids;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
      const std::string name = e.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      const std::string env = itest::ReadFile(e.path().string() + "/environ");
      if (env.empty()) continue;
      bool tagged = false, ours = false;
      int attempt = 0;
      for (size_t pos = 0; pos < env.size();) {
        size_t end = env.find('\0', pos);
        if (end == std::string::npos) end = env.size();
        const std::string_view kv(env.data() + pos, end - pos);
        tagged |= kv == tag_;
        ours |= kv == job_;
        if (kv.rfind("GANGWAY_ATTEMPT=", 0) == 0) attempt = std::atoi(kv.data() + 16);
        pos = end + 1;
      }
      if (tagged && ours && attempt > 0) {
        alive.insert(attempt);
        pids[attempt].push_back(std::atoi(name.c_str()));
      }
    }
    const int64_t now = WallNs();
    std::lock_guard lock(mu_);
    overlapping_ += alive.size() > 1;
    for (int a : alive) {
      Span& s = spans_[a];
      if (s.first_ns == 0) s.first_ns = now;
      s.last_ns = now;
      s.pids.insert(pids[a].begin(), pids[a].end());
    }
  }

  std::string tag_, job_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<int, Span> spans_;
  int overlapping_ = 0;
  std::thread thread_;
};

}  // namespace gangway::e2e
