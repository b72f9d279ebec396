#include "coordinator/sqlite_store.h"

#include <sqlite3.h>

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gangway::coordinator {

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                               bool full_sync) {
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
           // An answered submission or cancel must survive a power loss, not
           // only a crash: FULL syncs the WAL at each commit. Writes are
           // batched per loop turn, so this is one fsync per turn
           // (benchmarks/README.md has the cost).
           full_sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
           "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, "
           "state INTEGER NOT NULL, data BLOB NOT NULL)",
           "CREATE TABLE IF NOT EXISTS sweeps (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, "
           "state INTEGER NOT NULL, data BLOB NOT NULL)",
           "CREATE TABLE IF NOT EXISTS metrics (n INTEGER PRIMARY KEY AUTOINCREMENT, "
           "job TEXT NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL, value REAL, "
           "raw TEXT, time_ms INTEGER NOT NULL)",
           "CREATE INDEX IF NOT EXISTS metrics_job ON metrics (job, n)",
       }) {
    if (absl::Status s = store->Exec(sql); !s.ok()) {
      return absl::UnavailableError(absl::StrCat("store ", path, ": ", s.message()));
    }
  }
  // Stores written before points recorded their attempt gain the column;
  // their points read back as attempt 0 (unknown).
  if (absl::StatusOr<bool> has = store->HasColumn("metrics", "attempt"); !has.ok() || !*has) {
    absl::Status s = has.ok() ? store->Exec(
                                    "ALTER TABLE metrics ADD COLUMN attempt INTEGER "
                                    "NOT NULL DEFAULT 0")
                              : has.status();
    if (!s.ok()) return absl::UnavailableError(absl::StrCat("store ", path, ": ", s.message()));
  }
  // Points gained their position in their series (MetricPoint.index) for
  // downsampling; older ones read back as -1 and are never trimmed.
  if (absl::StatusOr<bool> has = store->HasColumn("metrics", "idx"); !has.ok() || !*has) {
    absl::Status s = has.ok() ? store->Exec(
                                    "ALTER TABLE metrics ADD COLUMN idx INTEGER "
                                    "NOT NULL DEFAULT -1")
                              : has.status();
    if (!s.ok()) return absl::UnavailableError(absl::StrCat("store ", path, ": ", s.message()));
  }
  // Points read from a rank's output carry their seq (MetricPoint.seq), by
  // which a point an agent resends is known; older ones read back as 0.
  if (absl::StatusOr<bool> has = store->HasColumn("metrics", "seq"); !has.ok() || !*has) {
    absl::Status s = has.ok() ? store->Exec(
                                    "ALTER TABLE metrics ADD COLUMN seq INTEGER "
                                    "NOT NULL DEFAULT 0")
                              : has.status();
    if (!s.ok()) return absl::UnavailableError(absl::StrCat("store ", path, ": ", s.message()));
  }
  if (absl::Status s =
          store->Exec("CREATE INDEX IF NOT EXISTS metrics_series ON metrics (job, name, idx)");
      !s.ok()) {
    return absl::UnavailableError(absl::StrCat("store ", path, ": ", s.message()));
  }
  auto prepare = [&](const char* sql, auto& slot) -> absl::Status {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
    slot.reset(stmt);
    if (rc != SQLITE_OK) {
      return absl::UnavailableError(absl::StrCat("store ", path, ": ", sqlite3_errmsg(db)));
    }
    return absl::OkStatus();
  };
  for (auto [sql, slot] : {
           std::pair{"INSERT INTO jobs (id, seq, state, data) VALUES (?1, ?2, ?3, ?4) "
                     "ON CONFLICT(id) DO UPDATE SET state=excluded.state, data=excluded.data",
                     &store->upsert_job_},
           std::pair{"INSERT INTO sweeps (id, seq, state, data) VALUES (?1, ?2, ?3, ?4) "
                     "ON CONFLICT(id) DO UPDATE SET state=excluded.state, data=excluded.data",
                     &store->upsert_sweep_},
           std::pair{"INSERT INTO metrics (job, name, step, value, raw, time_ms, attempt, idx, "
                     "seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                     &store->insert_metric_},
           std::pair{"DELETE FROM metrics WHERE job = ?1 AND name = ?2 AND idx >= 0 AND "
                     "idx % ?3 != 0 AND idx NOT IN (?4, ?5, ?6)",
                     &store->thin_metrics_},
           std::pair{"DELETE FROM metrics WHERE job = ?1 AND name = ?2 AND idx = ?3",
                     &store->drop_metric_},
           std::pair{"DELETE FROM jobs WHERE id = ?1", &store->delete_job_},
           std::pair{"DELETE FROM metrics WHERE job = ?1", &store->delete_job_metrics_},
           std::pair{"DELETE FROM sweeps WHERE id = ?1", &store->delete_sweep_},
       }) {
    if (absl::Status s = prepare(sql, *slot); !s.ok()) return s;
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

absl::StatusOr<std::string> SqliteStore::Durability() {
  std::string out;
  for (const char* pragma : {"journal_mode", "synchronous"}) {
    sqlite3_stmt* raw = nullptr;
    const std::string sql = absl::StrCat("PRAGMA ", pragma);
    if (sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
      return absl::UnavailableError(absl::StrCat(sql, ": ", sqlite3_errmsg(db_.get())));
    }
    std::unique_ptr<sqlite3_stmt, Finalize> stmt(raw);
    if (sqlite3_step(stmt.get()) != SQLITE_ROW) {
      return absl::UnavailableError(absl::StrCat(sql, ": no row"));
    }
    const unsigned char* text = sqlite3_column_text(stmt.get(), 0);
    absl::StrAppend(&out, out.empty() ? "" : " ", pragma, "=",
                    text ? reinterpret_cast<const char*>(text) : "");
  }
  return out;
}

absl::StatusOr<bool> SqliteStore::HasColumn(const char* table, const char* column) {
  sqlite3_stmt* raw = nullptr;
  const std::string sql =
      absl::StrCat("SELECT 1 FROM pragma_table_info('", table, "') WHERE name = ?1");
  if (sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    return absl::UnavailableError(absl::StrCat(sql, ": ", sqlite3_errmsg(db_.get())));
  }
  std::unique_ptr<sqlite3_stmt, Finalize> stmt(raw);
  sqlite3_bind_text(stmt.get(), 1, column, -1, SQLITE_STATIC);
  const int rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    return absl::UnavailableError(absl::StrCat(sql, ": ", sqlite3_errmsg(db_.get())));
  }
  return rc == SQLITE_ROW;
}

template <typename Msg>
absl::StatusOr<std::vector<Msg>> SqliteStore::LoadRows(const char* table) {
  sqlite3_stmt* stmt = nullptr;
  const std::string sql = absl::StrCat("SELECT id, data FROM ", table, " ORDER BY seq");
  if (sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    return absl::UnavailableError(absl::StrCat("load ", table, ": ", sqlite3_errmsg(db_.get())));
  }
  std::unique_ptr<sqlite3_stmt, Finalize> guard(stmt);
  std::vector<Msg> rows;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    Msg msg;
    const void* data = sqlite3_column_blob(stmt, 1);
    int size = sqlite3_column_bytes(stmt, 1);
    const char* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    std::string id = text ? text : "";
    const bool parsed = msg.ParseFromArray(data, size);
    // A blob that parses is still lost when it is not this row's record: an
    // empty (zeroed) blob parses as one with no id, and another row's blob
    // would recover one record twice.
    if (!parsed || msg.id() != id) {
      return absl::DataLossError(absl::StrCat(
          table, " row ", id, " in the store ",
          parsed ? absl::StrCat("holds '", msg.id(), "'") : std::string("does not parse")));
    }
    rows.push_back(std::move(msg));
  }
  if (rc != SQLITE_DONE) return absl::UnavailableError(sqlite3_errmsg(db_.get()));
  return rows;
}

absl::StatusOr<std::vector<v1::Job>> SqliteStore::LoadJobs() { return LoadRows<v1::Job>("jobs"); }

absl::StatusOr<std::vector<v1::Sweep>> SqliteStore::LoadSweeps() {
  return LoadRows<v1::Sweep>("sweeps");
}

absl::StatusOr<std::vector<v1::MetricPoint>> SqliteStore::LoadMetrics(const std::string& job_id) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(
          db_.get(),
          "SELECT name, step, value, raw, time_ms, attempt, idx, seq FROM metrics WHERE job = ?1 "
          "ORDER BY n",
          -1, &stmt, nullptr) != SQLITE_OK) {
    return absl::UnavailableError(absl::StrCat("load metrics: ", sqlite3_errmsg(db_.get())));
  }
  std::unique_ptr<sqlite3_stmt, Finalize> guard(stmt);
  sqlite3_bind_text(stmt, 1, job_id.data(), static_cast<int>(job_id.size()), SQLITE_TRANSIENT);
  std::vector<v1::MetricPoint> points;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    v1::MetricPoint p;
    const char* name = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    p.set_name(name ? name : "");
    p.set_step(sqlite3_column_int64(stmt, 1));
    // SQLite stores NaN as NULL.
    p.set_value(sqlite3_column_type(stmt, 2) == SQLITE_NULL
                    ? std::numeric_limits<double>::quiet_NaN()
                    : sqlite3_column_double(stmt, 2));
    const char* raw = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
    if (raw) p.set_raw(raw);
    p.set_time_ms(sqlite3_column_int64(stmt, 4));
    p.set_attempt(sqlite3_column_int(stmt, 5));
    p.set_index(sqlite3_column_int64(stmt, 6));
    p.set_seq(sqlite3_column_int64(stmt, 7));
    points.push_back(std::move(p));
  }
  if (rc != SQLITE_DONE) return absl::UnavailableError(sqlite3_errmsg(db_.get()));
  return points;
}

absl::StatusOr<MetricPage> SqliteStore::LoadMetricsPage(const std::string& job_id,
                                                        const std::string& name, int64_t after,
                                                        int64_t limit) {
  sqlite3_stmt* stmt = nullptr;
  // The row number is the cursor: trims delete rows, they never renumber.
  if (sqlite3_prepare_v2(db_.get(),
                         "SELECT name, step, value, raw, time_ms, attempt, idx, n FROM metrics "
                         "WHERE job = ?1 AND (?2 = '' OR name = ?2) AND n > ?3 ORDER BY n "
                         "LIMIT ?4",
                         -1, &stmt, nullptr) != SQLITE_OK) {
    return absl::UnavailableError(absl::StrCat("load metrics: ", sqlite3_errmsg(db_.get())));
  }
  std::unique_ptr<sqlite3_stmt, Finalize> guard(stmt);
  sqlite3_bind_text(stmt, 1, job_id.data(), static_cast<int>(job_id.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 2, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(stmt, 3, after);
  sqlite3_bind_int64(stmt, 4, limit + 1);  // one more says whether there is a next page
  MetricPage page;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    if (static_cast<int64_t>(page.points.size()) == limit) {
      page.more = true;
      break;
    }
    v1::MetricPoint& p = page.points.emplace_back();
    const char* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    p.set_name(text ? text : "");
    p.set_step(sqlite3_column_int64(stmt, 1));
    p.set_value(sqlite3_column_type(stmt, 2) == SQLITE_NULL
                    ? std::numeric_limits<double>::quiet_NaN()
                    : sqlite3_column_double(stmt, 2));
    const char* raw = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
    if (raw) p.set_raw(raw);
    p.set_time_ms(sqlite3_column_int64(stmt, 4));
    p.set_attempt(sqlite3_column_int(stmt, 5));
    p.set_index(sqlite3_column_int64(stmt, 6));
    page.next = sqlite3_column_int64(stmt, 7);
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    return absl::UnavailableError(sqlite3_errmsg(db_.get()));
  }
  return page;
}

absl::Status SqliteStore::Step(sqlite3_stmt* stmt, const std::string& what) {
  const int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  if (rc != SQLITE_DONE) {
    return absl::UnavailableError(absl::StrCat(what, ": ", sqlite3_errmsg(db_.get())));
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::ApplyTrim(const MetricTrim& trim) {
  const std::string what = absl::StrCat("trim metric ", trim.name, " of ", trim.job);
  auto bind_series = [&](sqlite3_stmt* stmt) {
    sqlite3_reset(stmt);
    sqlite3_bind_text(stmt, 1, trim.job.data(), static_cast<int>(trim.job.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, trim.name.data(), static_cast<int>(trim.name.size()),
                      SQLITE_TRANSIENT);
  };
  if (trim.stride > 0) {
    sqlite3_stmt* thin = thin_metrics_.get();
    bind_series(thin);
    sqlite3_bind_int64(thin, 3, trim.stride);
    for (int i = 0; i < 3; ++i) {
      const size_t k = static_cast<size_t>(i);
      sqlite3_bind_int64(thin, 4 + i, k < trim.keep.size() ? trim.keep[k] : -1);
    }
    if (absl::Status s = Step(thin, what); !s.ok()) return s;
  }
  for (int64_t index : trim.drop) {
    sqlite3_stmt* drop = drop_metric_.get();
    bind_series(drop);
    sqlite3_bind_int64(drop, 3, index);
    if (absl::Status s = Step(drop, what); !s.ok()) return s;
  }
  return absl::OkStatus();
}

template <typename Msg>
absl::Status SqliteStore::SaveRow(sqlite3_stmt* stmt, const Msg& msg, std::string* buf) {
  buf->clear();
  msg.SerializeToString(buf);
  sqlite3_reset(stmt);
  sqlite3_bind_text(stmt, 1, msg.id().data(), static_cast<int>(msg.id().size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(stmt, 2, msg.seq());
  sqlite3_bind_int(stmt, 3, msg.state());
  sqlite3_bind_blob(stmt, 4, buf->data(), static_cast<int>(buf->size()), SQLITE_TRANSIENT);
  const int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  if (rc != SQLITE_DONE) {
    return absl::UnavailableError(absl::StrCat("save ", msg.id(), ": ", sqlite3_errmsg(db_.get())));
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::Save(const WriteBatch& batch) {
  if (batch.empty()) return absl::OkStatus();
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  auto rollback = [this](absl::Status s) {
    (void)Exec("ROLLBACK");
    return s;
  };
  std::string buf;
  for (const v1::Job* job : batch.jobs) {
    if (absl::Status s = SaveRow(upsert_job_.get(), *job, &buf); !s.ok()) return rollback(s);
  }
  for (const v1::Sweep* sweep : batch.sweeps) {
    if (absl::Status s = SaveRow(upsert_sweep_.get(), *sweep, &buf); !s.ok()) return rollback(s);
  }
  sqlite3_stmt* ins = insert_metric_.get();
  for (const auto& [job, p] : batch.metrics) {
    sqlite3_reset(ins);
    sqlite3_bind_text(ins, 1, job.data(), static_cast<int>(job.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 2, p.name().data(), static_cast<int>(p.name().size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 3, p.step());
    sqlite3_bind_double(ins, 4, p.value());
    if (p.raw().empty()) {
      sqlite3_bind_null(ins, 5);
    } else {
      sqlite3_bind_text(ins, 5, p.raw().data(), static_cast<int>(p.raw().size()), SQLITE_TRANSIENT);
    }
    sqlite3_bind_int64(ins, 6, p.time_ms());
    sqlite3_bind_int(ins, 7, p.attempt());
    sqlite3_bind_int64(ins, 8, p.index());
    sqlite3_bind_int64(ins, 9, p.seq());
    const int rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    if (rc != SQLITE_DONE) {
      return rollback(absl::UnavailableError(
          absl::StrCat("save metrics of ", job, ": ", sqlite3_errmsg(db_.get()))));
    }
  }
  for (const MetricTrim& trim : batch.metric_trims) {
    if (absl::Status s = ApplyTrim(trim); !s.ok()) return rollback(s);
  }
  auto delete_row = [&](sqlite3_stmt* stmt, const std::string& id, const char* what) {
    sqlite3_reset(stmt);
    sqlite3_bind_text(stmt, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
    return Step(stmt, absl::StrCat("delete ", what, " ", id));
  };
  for (const std::string& id : batch.deleted_jobs) {
    for (auto [stmt, what] : {std::pair{delete_job_metrics_.get(), "metrics of"},
                              std::pair{delete_job_.get(), "job"}}) {
      if (absl::Status s = delete_row(stmt, id, what); !s.ok()) return rollback(s);
    }
  }
  for (const std::string& id : batch.deleted_sweeps) {
    if (absl::Status s = delete_row(delete_sweep_.get(), id, "sweep"); !s.ok()) {
      return rollback(s);
    }
  }
  if (absl::Status s = Exec("COMMIT"); !s.ok()) return rollback(s);
  return absl::OkStatus();
}

}  // namespace gangway::coordinator
