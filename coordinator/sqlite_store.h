// The embedded store: one SQLite file in WAL mode.
//
// Thread: one thread at a time (the core's). Jobs and sweeps are stored as
// serialized protos beside the columns worth querying, metric points as
// rows; synchronous=NORMAL in WAL mode
// keeps every commit durable against a process crash (the OS holds the
// log) and syncs at checkpoints, which is what makes batching cheap.
#pragma once

#include <memory>
#include <string>

#include "coordinator/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace gangway::coordinator {

class SqliteStore final : public Store {
 public:
  // Opens (creating if needed) `path`. Errors: UNAVAILABLE when the file
  // cannot be opened or the schema cannot be created. `full_sync` false
  // (synchronous=NORMAL) survives a process crash but not a power loss:
  // only for measuring what FULL costs.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path,
                                                           bool full_sync = true);
  ~SqliteStore() override;

  absl::StatusOr<std::vector<v1::Job>> LoadJobs() override;
  absl::StatusOr<std::vector<v1::Sweep>> LoadSweeps() override;
  absl::StatusOr<std::vector<v1::MetricPoint>> LoadMetrics(const std::string& job_id) override;
  absl::StatusOr<MetricPage> LoadMetricsPage(const std::string& job_id, const std::string& name,
                                             int64_t after, int64_t limit) override;
  absl::Status Save(const WriteBatch& batch) override;

  // "journal_mode=wal synchronous=2" as SQLite reports them: what an
  // acknowledged write survives (2 = FULL: a power loss too). Logged at
  // start.
  absl::StatusOr<std::string> Durability();

 private:
  struct CloseDb {
    void operator()(sqlite3* db) const;
  };
  struct Finalize {
    void operator()(sqlite3_stmt* stmt) const;
  };

  SqliteStore() = default;
  absl::Status Exec(const char* sql);
  absl::StatusOr<bool> HasColumn(const char* table, const char* column);
  template <typename Msg>
  absl::StatusOr<std::vector<Msg>> LoadRows(const char* table);
  template <typename Msg>
  absl::Status SaveRow(sqlite3_stmt* stmt, const Msg& msg, std::string* buf);
  absl::Status ApplyTrim(const MetricTrim& trim);
  // Runs `stmt` (bound by the caller) to completion and resets it.
  absl::Status Step(sqlite3_stmt* stmt, const std::string& what);

  // Declared in this order so the statement is finalized before the close.
  std::unique_ptr<sqlite3, CloseDb> db_;
  std::unique_ptr<sqlite3_stmt, Finalize> upsert_job_;
  std::unique_ptr<sqlite3_stmt, Finalize> upsert_sweep_;
  std::unique_ptr<sqlite3_stmt, Finalize> insert_metric_;
  std::unique_ptr<sqlite3_stmt, Finalize> thin_metrics_;
  std::unique_ptr<sqlite3_stmt, Finalize> drop_metric_;
  std::unique_ptr<sqlite3_stmt, Finalize> delete_job_;
  std::unique_ptr<sqlite3_stmt, Finalize> delete_job_metrics_;
  std::unique_ptr<sqlite3_stmt, Finalize> delete_sweep_;
};

}  // namespace gangway::coordinator
