#include "coordinator/sqlite_store.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"

namespace gangway::coordinator {

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  std::unique_ptr<SqliteStore> store(new SqliteStore());
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  store->db_.reset(db);
  if (rc != SQLITE_OK) {
    return absl::UnavailableError(
        absl::StrCat("cannot open store ", path, ": ", db ? sqlite3_errmsg(db) : "?"));
  }
  sqlite3_busy_timeout(db, 5000);
  for (const char* sql : {
           "PRAGMA journal_mode=WAL",
           "PRAGMA synchronous=NORMAL",
           "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, "
           "state INTEGER NOT NULL, data BLOB NOT NULL)",
       }) {
    if (absl::Status s = store->Exec(sql); !s.ok()) {
      return absl::UnavailableError(absl::StrCat("store ", path, ": ", s.message()));
    }
  }
  sqlite3_stmt* upsert = nullptr;
  rc = sqlite3_prepare_v2(db,
                          "INSERT INTO jobs (id, seq, state, data) VALUES (?1, ?2, ?3, ?4) "
                          "ON CONFLICT(id) DO UPDATE SET state=excluded.state, data=excluded.data",
                          -1, &upsert, nullptr);
  store->upsert_.reset(upsert);
  if (rc != SQLITE_OK) {
    return absl::UnavailableError(absl::StrCat("store ", path, ": ", sqlite3_errmsg(db)));
  }
  return store;
}

void SqliteStore::CloseDb::operator()(sqlite3* db) const { sqlite3_close_v2(db); }
void SqliteStore::Finalize::operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }

SqliteStore::~SqliteStore() = default;

absl::Status SqliteStore::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    absl::Status s = absl::UnavailableError(absl::StrCat(sql, ": ", err ? err : "?"));
    sqlite3_free(err);
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::Job>> SqliteStore::LoadJobs() {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_.get(), "SELECT id, data FROM jobs ORDER BY seq", -1, &stmt, nullptr) !=
      SQLITE_OK) {
    return absl::UnavailableError(absl::StrCat("load jobs: ", sqlite3_errmsg(db_.get())));
  }
  std::vector<v1::Job> jobs;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    v1::Job job;
    const void* data = sqlite3_column_blob(stmt, 1);
    int size = sqlite3_column_bytes(stmt, 1);
    const char* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    std::string id = text ? text : "";
    const bool parsed = job.ParseFromArray(data, size);
    // A blob that parses is still lost when it is not this row's job: an
    // empty (zeroed) blob parses as a job with no id, and another row's blob
    // would recover one job twice.
    if (!parsed || job.id() != id) {
      sqlite3_finalize(stmt);
      return absl::DataLossError(absl::StrCat(
          "job ", id, " in the store ",
          parsed ? absl::StrCat("holds job '", job.id(), "'") : std::string("does not parse")));
    }
    jobs.push_back(std::move(job));
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return absl::UnavailableError(sqlite3_errmsg(db_.get()));
  return jobs;
}

absl::Status SqliteStore::SaveJobs(std::span<const v1::Job* const> jobs) {
  if (jobs.empty()) return absl::OkStatus();
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  std::string buf;
  for (const v1::Job* job : jobs) {
    buf.clear();
    job->SerializeToString(&buf);
    sqlite3_reset(upsert_.get());
    sqlite3_bind_text(upsert_.get(), 1, job->id().data(), static_cast<int>(job->id().size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(upsert_.get(), 2, job->seq());
    sqlite3_bind_int(upsert_.get(), 3, job->state());
    sqlite3_bind_blob(upsert_.get(), 4, buf.data(), static_cast<int>(buf.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(upsert_.get()) != SQLITE_DONE) {
      absl::Status s = absl::UnavailableError(
          absl::StrCat("save job ", job->id(), ": ", sqlite3_errmsg(db_.get())));
      sqlite3_reset(upsert_.get());
      (void)Exec("ROLLBACK");
      return s;
    }
  }
  sqlite3_reset(upsert_.get());
  if (absl::Status s = Exec("COMMIT"); !s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  return absl::OkStatus();
}

}  // namespace gangway::coordinator
