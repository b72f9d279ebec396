#include "coordinator/sqlite_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"

namespace gangway::coordinator {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

v1::Job MakeJob(const std::string& id, int64_t seq, v1::JobState state) {
  v1::Job job;
  job.set_id(id);
  job.set_seq(seq);
  job.set_state(state);
  job.set_reason("because");
  job.set_attempt(2);
  job.mutable_spec()->set_name("train");
  job.mutable_spec()->add_command("python");
  (*job.mutable_spec()->mutable_env())["FOO"] = "bar";
  v1::RankStatus* rank = job.add_ranks();
  rank->set_rank(0);
  rank->set_node("node-a");
  rank->add_gpu_indices(3);
  rank->set_state(v1::RANK_STATE_RUNNING);
  return job;
}

// Runs `sql` on the file through a second connection, as an operator (or a
// bad disk) would.
void ExecDirect(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "?");
  sqlite3_free(err);
  sqlite3_close(db);
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gangway-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "gangway.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<SqliteStore> OpenStore() {
    auto store = SqliteStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  static absl::Status Save(Store& store, const std::vector<v1::Job>& jobs) {
    std::vector<const v1::Job*> ptrs;
    for (const v1::Job& j : jobs) ptrs.push_back(&j);
    return store.SaveJobs(ptrs);
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteStoreTest, CommitsAreDurableAgainstPowerLoss) {
  // WAL with synchronous=FULL (2): NORMAL would lose the last commits of an
  // acknowledged batch on a power cut.
  std::unique_ptr<SqliteStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::string> durability = store->Durability();
  ASSERT_TRUE(durability.ok()) << durability.status();
  EXPECT_EQ(*durability, "journal_mode=wal synchronous=2");
}

TEST_F(SqliteStoreTest, EmptyStoreLoadsNothing) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto jobs = store->LoadJobs();
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_THAT(*jobs, IsEmpty());
  EXPECT_TRUE(Save(*store, {}).ok());
}

TEST_F(SqliteStoreTest, SaveLoadRoundTripInSeqOrder) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::vector<v1::Job> saved = {MakeJob("b-2", 2, v1::JOB_STATE_RUNNING),
                                      MakeJob("a-1", 1, v1::JOB_STATE_PENDING),
                                      MakeJob("c-3", 3, v1::JOB_STATE_SUCCEEDED)};
  ASSERT_TRUE(Save(*store, saved).ok());
  auto loaded = store->LoadJobs();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 3u);
  EXPECT_TRUE(MessageDifferencer::Equals((*loaded)[0], saved[1]));
  EXPECT_TRUE(MessageDifferencer::Equals((*loaded)[1], saved[0]));
  EXPECT_TRUE(MessageDifferencer::Equals((*loaded)[2], saved[2]));
}

TEST_F(SqliteStoreTest, SavingAgainUpdatesInPlace) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  v1::Job job = MakeJob("a-1", 1, v1::JOB_STATE_PENDING);
  ASSERT_TRUE(Save(*store, {job}).ok());
  job.set_state(v1::JOB_STATE_FAILED);
  job.set_reason("DeadlineExceeded");
  ASSERT_TRUE(Save(*store, {job}).ok());
  auto loaded = store->LoadJobs();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals((*loaded)[0], job));
}

TEST_F(SqliteStoreTest, ReopenKeepsEveryCommittedJob) {
  std::vector<v1::Job> saved;
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    for (int i = 1; i <= 50; ++i) {
      saved.push_back(MakeJob("j-" + std::to_string(i), i, v1::JOB_STATE_RUNNING));
    }
    ASSERT_TRUE(Save(*store, saved).ok());
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto loaded = store->LoadJobs();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), saved.size());
  for (size_t i = 0; i < saved.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals((*loaded)[i], saved[i])) << i;
  }
}

TEST_F(SqliteStoreTest, BatchIsAllOrNothing) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  v1::Job kept = MakeJob("kept-1", 1, v1::JOB_STATE_RUNNING);
  ASSERT_TRUE(Save(*store, {kept}).ok());
  // A trigger makes the second write of the next batch fail.
  ExecDirect(path_,
             "CREATE TRIGGER refuse BEFORE INSERT ON jobs WHEN NEW.id = 'bad-3' "
             "BEGIN SELECT RAISE(ABORT, 'refused by test'); END");
  v1::Job changed = kept;
  changed.set_state(v1::JOB_STATE_SUCCEEDED);
  absl::Status s = Save(*store, {changed, MakeJob("bad-3", 3, v1::JOB_STATE_PENDING),
                                 MakeJob("late-4", 4, v1::JOB_STATE_PENDING)});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("bad-3"));
  auto loaded = store->LoadJobs();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals((*loaded)[0], kept));

  // The store is usable after the rollback.
  ExecDirect(path_, "DROP TRIGGER refuse");
  ASSERT_TRUE(Save(*store, {changed, MakeJob("bad-3", 3, v1::JOB_STATE_PENDING)}).ok());
  loaded = store->LoadJobs();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ((*loaded)[0].state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(SqliteStoreTest, UnparsableRowIsDataLoss) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(Save(*store, {MakeJob("good-1", 1, v1::JOB_STATE_RUNNING),
                              MakeJob("bad-2", 2, v1::JOB_STATE_RUNNING)})
                    .ok());
  }
  // Field 1, length 5, but only one byte follows: a truncated message.
  ExecDirect(path_, "UPDATE jobs SET data = x'0a0541' WHERE id = 'bad-2'");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto loaded = store->LoadJobs();
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(loaded.status().message(), HasSubstr("bad-2"));
}

// A blob that parses but is not the row's job (zeroed, or another row's data)
// is as lost as one that does not parse: loading it would recover a job with
// no id, or the same job twice.
TEST_F(SqliteStoreTest, RowHoldingAnotherJobIsDataLoss) {
  for (const char* data : {"x''", "(SELECT data FROM jobs WHERE id = 'good-1')"}) {
    SCOPED_TRACE(data);
    {
      auto store = OpenStore();
      ASSERT_NE(store, nullptr);
      ASSERT_TRUE(Save(*store, {MakeJob("good-1", 1, v1::JOB_STATE_RUNNING),
                                MakeJob("bad-2", 2, v1::JOB_STATE_RUNNING)})
                      .ok());
    }
    ExecDirect(path_, absl::StrCat("UPDATE jobs SET data = ", data, " WHERE id = 'bad-2'"));
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    auto loaded = store->LoadJobs();
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(loaded.status().message(), HasSubstr("bad-2"));
  }
}

v1::MetricPoint Point(const std::string& name, int64_t step, double value, int32_t attempt) {
  v1::MetricPoint p;
  p.set_name(name);
  p.set_step(step);
  p.set_value(value);
  p.set_time_ms(1000 + step);
  p.set_attempt(attempt);
  return p;
}

TEST_F(SqliteStoreTest, MetricPointsKeepTheirAttempt) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    WriteBatch batch;
    batch.metrics = {{"t-1", Point("loss", 0, 0.9, 1)}, {"t-1", Point("loss", 0, 0.8, 2)}};
    ASSERT_TRUE(store->Save(batch).ok());
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto points = store->LoadMetrics("t-1");
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 2u);
  EXPECT_EQ((*points)[0].attempt(), 1);
  EXPECT_EQ((*points)[1].attempt(), 2);
  EXPECT_EQ((*points)[1].value(), 0.8);
}

// A store written before points kept their attempt: it opens, its points
// read back as attempt 0 (unknown), and new points keep theirs.
TEST_F(SqliteStoreTest, OlderMetricsTableGainsTheAttemptColumn) {
  ExecDirect(path_,
             "CREATE TABLE metrics (n INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, "
             "name TEXT NOT NULL, step INTEGER NOT NULL, value REAL, raw TEXT, "
             "time_ms INTEGER NOT NULL); "
             "INSERT INTO metrics (job, name, step, value, raw, time_ms) "
             "VALUES ('t-1', 'loss', 3, 0.5, NULL, 1003)");
  for (int open = 0; open < 2; ++open) {  // the second open finds the column
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    if (open == 0) {
      WriteBatch batch;
      batch.metrics = {{"t-1", Point("loss", 4, 0.4, 2)}};
      ASSERT_TRUE(store->Save(batch).ok());
    }
    auto points = store->LoadMetrics("t-1");
    ASSERT_TRUE(points.ok()) << points.status();
    ASSERT_EQ(points->size(), 2u);
    EXPECT_EQ((*points)[0].step(), 3);
    EXPECT_EQ((*points)[0].attempt(), 0);
    EXPECT_EQ((*points)[1].attempt(), 2);
  }
}

TEST_F(SqliteStoreTest, UnopenablePathIsUnavailable) {
  // A regular file where a directory should be: fails even for root.
  const std::filesystem::path file = dir_ / "plain-file";
  std::ofstream(file) << "not a directory";
  auto store = SqliteStore::Open((file / "gangway.db").string());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(store.status().message(), HasSubstr("plain-file"));
}

TEST_F(SqliteStoreTest, FileThatIsNotADatabaseIsUnavailable) {
  std::ofstream(path_) << std::string(4096, 'x');
  auto store = SqliteStore::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace gangway::coordinator
