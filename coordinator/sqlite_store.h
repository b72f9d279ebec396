// The embedded store: one SQLite file in WAL mode.
//
// Thread: one thread at a time (the core's). Jobs are stored as serialized
// protos beside the columns worth querying; synchronous=NORMAL in WAL mode
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
  // cannot be opened or the schema cannot be created.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path);
  ~SqliteStore() override;

  absl::StatusOr<std::vector<v1::Job>> LoadJobs() override;
  absl::Status SaveJobs(std::span<const v1::Job* const> jobs) override;

 private:
  struct CloseDb {
    void operator()(sqlite3* db) const;
  };
  struct Finalize {
    void operator()(sqlite3_stmt* stmt) const;
  };

  SqliteStore() = default;
  absl::Status Exec(const char* sql);

  // Declared in this order so the statement is finalized before the close.
  std::unique_ptr<sqlite3, CloseDb> db_;
  std::unique_ptr<sqlite3_stmt, Finalize> upsert_;
};

}  // namespace gangway::coordinator
