// Fakes shared by the coordinator's core-level tests: an in-memory Store
// that can be told to fail, and a sink that records what the core sends.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/core.h"
#include "coordinator/sqlite_store.h"
#include "coordinator/store.h"

namespace gangway::coordinator::fakes {

// Jobs in a map; `fail` makes every write fail as a full disk would.
class FakeStore final : public Store {
 public:
  absl::StatusOr<std::vector<v1::Job>> LoadJobs() override {
    if (!load_error.ok()) return load_error;
    std::vector<v1::Job> out;
    for (const auto& [id, job] : jobs) out.push_back(job);
    return out;
  }
  absl::StatusOr<std::vector<v1::Sweep>> LoadSweeps() override {
    std::vector<v1::Sweep> out;
    for (const auto& [id, sweep] : sweeps) out.push_back(sweep);
    return out;
  }
  absl::StatusOr<std::vector<v1::MetricPoint>> LoadMetrics(const std::string& job) override {
    auto it = metrics.find(job);
    if (it == metrics.end()) return std::vector<v1::MetricPoint>();
    return it->second;
  }
  // The cursor is a point's position in `metrics[job]` plus `trimmed_`
  // before it, which is what a row number in SQLite behaves like.
  absl::StatusOr<MetricPage> LoadMetricsPage(const std::string& job, const std::string& name,
                                             int64_t after, int64_t limit) override {
    MetricPage page;
    auto it = metrics.find(job);
    if (it == metrics.end()) return page;
    const std::vector<int64_t>& rows = rows_[job];
    for (size_t i = 0; i < it->second.size(); ++i) {
      if (rows[i] <= after || (!name.empty() && it->second[i].name() != name)) continue;
      if (static_cast<int64_t>(page.points.size()) == limit) {
        page.more = true;
        break;
      }
      page.points.push_back(it->second[i]);
      page.next = rows[i];
    }
    return page;
  }
  absl::Status Save(const WriteBatch& batch) override {
    ++calls;
    if (fail) return absl::UnavailableError("disk full (test)");
    for (const v1::Job* job : batch.jobs) {
      jobs[job->id()] = *job;
      history.emplace_back(job->id(), job->state());
    }
    for (const v1::Sweep* sweep : batch.sweeps) sweeps[sweep->id()] = *sweep;
    for (const auto& [job, point] : batch.metrics) {
      metrics[job].push_back(point);
      rows_[job].push_back(++next_row_);
    }
    for (const MetricTrim& trim : batch.metric_trims) {
      std::vector<v1::MetricPoint>& points = metrics[trim.job];
      std::vector<int64_t>& rows = rows_[trim.job];
      for (size_t i = points.size(); i-- > 0;) {
        const v1::MetricPoint& p = points[i];
        if (p.name() != trim.name || p.index() < 0) continue;
        const auto has = [&](const std::vector<int64_t>& v) {
          return std::find(v.begin(), v.end(), p.index()) != v.end();
        };
        if ((trim.stride > 0 && p.index() % trim.stride != 0 && !has(trim.keep)) ||
            has(trim.drop)) {
          points.erase(points.begin() + static_cast<std::ptrdiff_t>(i));
          rows.erase(rows.begin() + static_cast<std::ptrdiff_t>(i));
        }
      }
    }
    for (const std::string& id : batch.deleted_jobs) {
      jobs.erase(id);
      metrics.erase(id);
      rows_.erase(id);
    }
    for (const std::string& id : batch.deleted_sweeps) sweeps.erase(id);
    return absl::OkStatus();
  }

  // The states `id` was stored in, consecutive repeats folded.
  std::vector<v1::JobState> StatesOf(const std::string& id) const {
    std::vector<v1::JobState> out;
    for (const auto& [job, state] : history) {
      if (job == id && (out.empty() || out.back() != state)) out.push_back(state);
    }
    return out;
  }

  bool fail = false;
  absl::Status load_error;
  int calls = 0;
  std::map<std::string, v1::Job> jobs;
  std::map<std::string, v1::Sweep> sweeps;
  std::map<std::string, std::vector<v1::MetricPoint>> metrics;
  std::vector<std::pair<std::string, v1::JobState>> history;

 private:
  std::map<std::string, std::vector<int64_t>> rows_;  // beside metrics[job]
  int64_t next_row_ = 0;
};

struct Sent {
  int64_t session;
  v1::CoordinatorMessage msg;
};

class RecordingSink final : public AgentSink {
 public:
  void Send(int64_t session, const v1::CoordinatorMessage& msg) override {
    sent.push_back({session, msg});
  }
  void Close(int64_t session, const absl::Status& why) override {
    closed.emplace_back(session, why);
  }
  std::vector<Sent> Take() { return std::exchange(sent, {}); }

  std::vector<Sent> sent;
  std::vector<std::pair<int64_t, absl::Status>> closed;
};

// A Register of a CPU node with `cpus` cores and 1 GiB per core.
inline v1::Register RegisterMessage(const std::string& name, int64_t cpus = 8,
                                    const std::string& instance = "") {
  v1::Register reg;
  reg.set_node_name(name);
  reg.set_instance(instance);
  reg.mutable_inventory()->set_milli_cpus(cpus * 1000);
  reg.mutable_inventory()->set_memory_bytes(cpus << 30);
  return reg;
}

// What an agent answers once it started the ranks of `launch` (pids are
// 1000 + rank).
inline v1::AgentMessage GangStartedMessage(const v1::LaunchGang& launch, int32_t port) {
  v1::AgentMessage msg;
  v1::GangStarted* gs = msg.mutable_gang_started();
  gs->set_job_id(launch.job_id());
  gs->set_attempt(launch.attempt());
  gs->set_master_port(port);
  for (const v1::RankLaunch& rl : launch.ranks()) {
    v1::RankRecord* r = gs->add_ranks();
    r->set_job_id(launch.job_id());
    r->set_attempt(launch.attempt());
    r->set_rank(rl.rank());
    r->set_pid(1000 + rl.rank());
  }
  return msg;
}

inline v1::AgentMessage RankExitedMessage(const std::string& job, int32_t attempt, int32_t rank,
                                          int code) {
  v1::AgentMessage msg;
  v1::RankRecord* r = msg.mutable_rank_exited()->mutable_rank();
  r->set_job_id(job);
  r->set_attempt(attempt);
  r->set_rank(rank);
  r->set_pid(1000 + rank);
  r->set_exited(true);
  r->set_exit_code(code);
  return msg;
}

// A SQLite store in a temporary directory that can be reopened, as a
// restarted coordinator reopens its file. Removes the directory at the end.
class SqliteDir {
 public:
  SqliteDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gangway-store-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) dir_ = tmpl;
  }
  ~SqliteDir() {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  SqliteDir(const SqliteDir&) = delete;
  SqliteDir& operator=(const SqliteDir&) = delete;

  // Closes the previous handle (the caller drops its core first) and opens
  // the file again; null with `error` set when it cannot.
  SqliteStore* Reopen(absl::Status* error) {
    store_.reset();
    if (dir_.empty()) {
      *error = absl::InternalError("mkdtemp failed");
      return nullptr;
    }
    auto store = SqliteStore::Open((dir_ / "gangway.db").string());
    if (!store.ok()) {
      *error = store.status();
      return nullptr;
    }
    store_ = std::move(*store);
    return store_.get();
  }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<SqliteStore> store_;
};

}  // namespace gangway::coordinator::fakes
