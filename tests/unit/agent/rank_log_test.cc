// Rank logs rotated at a cap: what is kept on disk, offsets that keep
// their meaning across rotations, readers racing a rotating writer, and a
// writer that cannot write.
#include "agent/rank_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "agent/agent.h"
#include "agent/logs.h"
#include "agent/metrics_tail.h"
#include "agent/supervisor.h"
#include "boost/asio/io_context.hpp"

namespace gangway::agent {
namespace {

namespace fs = std::filesystem;

class RankLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("rank_log_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "rank-0.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  int64_t DiskBytes() const {
    int64_t total = 0;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.is_regular_file()) total += static_cast<int64_t>(e.file_size());
    }
    return total;
  }

  fs::path dir_;
  std::string path_;
};

// Byte i of the test stream: readers check every byte they get against it.
char At(int64_t i) { return i % 64 == 63 ? '\n' : static_cast<char>('a' + i % 26); }

std::string Stream(int64_t from, int64_t n) {
  std::string s(static_cast<size_t>(n), '\0');
  for (int64_t i = 0; i < n; ++i) s[static_cast<size_t>(i)] = At(from + i);
  return s;
}

TEST_F(RankLogTest, KeepsAtMostTheCapOnDisk) {
  absl::StatusOr<RankLogWriter> log = RankLogWriter::Open(path_, 4096);
  ASSERT_TRUE(log.ok()) << log.status();
  for (int64_t at = 0; at < 100000; at += 100) {
    log->Write(Stream(at, 100));
    ASSERT_LE(DiskBytes(), 4096 + 64) << "at " << at;  // the index is a few bytes
  }
  EXPECT_EQ(log->end(), 100000);
  EXPECT_GT(log->rotations(), 40);
  EXPECT_EQ(log->dropped_bytes(), 0);
  EXPECT_TRUE(fs::exists(path_ + ".1"));
}

TEST_F(RankLogTest, OffsetsCountEveryByteAcrossRotations) {
  absl::StatusOr<RankLogWriter> log = RankLogWriter::Open(path_, 4096);
  ASSERT_TRUE(log.ok());
  log->Write(Stream(0, 3000));
  absl::StatusOr<RankLogRead> first = ReadRankLog(path_, 0, 1 << 20);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->offset, 0);
  EXPECT_EQ(first->data, Stream(0, 2048));  // one segment per read
  log->Write(Stream(3000, 2000));           // rotates once more
  // Reading on from where the last read ended, segment by segment.
  int64_t offset = 2048;
  std::string rest;
  while (offset < log->end()) {
    absl::StatusOr<RankLogRead> r = ReadRankLog(path_, offset, 1 << 20);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->offset, offset);
    ASSERT_FALSE(r->data.empty());
    rest += r->data;
    offset += static_cast<int64_t>(r->data.size());
  }
  EXPECT_EQ(rest, Stream(2048, 5000 - 2048));
  // Bytes rotated away: the read starts at the oldest byte kept, and says so.
  absl::StatusOr<RankLogRead> old = ReadRankLog(path_, 10, 100);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->offset, 2048);
  EXPECT_EQ(old->data, Stream(2048, 100));
  EXPECT_EQ(old->end, 5000);
  // Past the end: nothing yet, at that offset.
  absl::StatusOr<RankLogRead> later = ReadRankLog(path_, 6000, 100);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->offset, 6000);
  EXPECT_TRUE(later->data.empty());
}

TEST_F(RankLogTest, MissingLogIsNotFoundAndAPlainFileReadsFromZero) {
  EXPECT_TRUE(absl::IsNotFound(ReadRankLog(path_, 0, 10).status()));
  { std::ofstream(path_) << "hello\n"; }
  absl::StatusOr<RankLogRead> r = ReadRankLog(path_, 2, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data, "llo\n");
  EXPECT_EQ(r->end, 6);
}

TEST_F(RankLogTest, ReopenedWriterContinuesTheOffsets) {
  {
    absl::StatusOr<RankLogWriter> log = RankLogWriter::Open(path_, 4096);
    ASSERT_TRUE(log.ok());
    log->Write(Stream(0, 5000));
  }
  absl::StatusOr<RankLogWriter> log = RankLogWriter::Open(path_, 4096);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->end(), 5000);
  log->Write(Stream(5000, 100));
  absl::StatusOr<RankLogRead> r = ReadRankLog(path_, 5000, 100);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data, Stream(5000, 100));
}

// A reader racing a writer that rotates all the time never gets a byte
// at the wrong offset.
TEST_F(RankLogTest, ReaderRacingRotationsSeesEveryByteAtItsOffset) {
  absl::StatusOr<RankLogWriter> log = RankLogWriter::Open(path_, 64 << 10);
  ASSERT_TRUE(log.ok());
  constexpr int64_t kTotal = 8 << 20;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int64_t at = 0; at < kTotal; at += 1000) log->Write(Stream(at, 1000));
    done = true;
  });
  int64_t offset = 0, reads = 0, checked = 0;
  while (!done || offset < kTotal) {
    absl::StatusOr<RankLogRead> r = ReadRankLog(path_, offset, 4096);
    if (absl::IsNotFound(r.status())) continue;  // before the first write
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_GE(r->offset, offset);
    ASSERT_EQ(r->data, Stream(r->offset, static_cast<int64_t>(r->data.size())))
        << "at offset " << r->offset;
    offset = r->offset + static_cast<int64_t>(r->data.size());
    checked += static_cast<int64_t>(r->data.size());
    ++reads;
    if (done && r->data.empty() && offset >= r->end) break;
  }
  writer.join();
  EXPECT_GT(reads, 10);
  EXPECT_GT(checked, 0);
}

TEST_F(RankLogTest, WriterThatCannotWriteDropsAndCounts) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  fs::create_symlink("/dev/full", path_);
  absl::StatusOr<RankLogWriter> log = RankLogWriter::Open(path_, 0);
  ASSERT_TRUE(log.ok()) << log.status();
  log->Write(std::string(100000, 'x'));
  EXPECT_EQ(log->dropped_bytes(), 100000);
  EXPECT_EQ(log->end(), 0);
}

// The metrics tail follows the log through its rotations: every metric
// line polled in time is read once, a flood larger than the cap between
// two polls loses only what was rotated away, and the last line (the
// trial's objective) is always read.
TEST_F(RankLogTest, MetricsTailFollowsRotation) {
  absl::StatusOr<RankLogWriter> log = RankLogWriter::Open(path_, 64 << 10);
  ASSERT_TRUE(log.ok());
  v1::MetricsCollector c;
  c.add_names("loss");
  absl::StatusOr<MetricsTail> tail = MetricsTail::Create(path_, c, false);
  ASSERT_TRUE(tail.ok());
  int points = 0;
  const std::string noise(200, '.');
  for (int step = 0; step < 2000; ++step) {
    log->Write("step=" + std::to_string(step) + " loss=" + std::to_string(step) + "\n");
    log->Write(noise + "\n");
    if (step % 50 == 49) {
      for (const v1::MetricPoint& p : tail->Poll(1)) {
        EXPECT_EQ(p.step(), points);
        ++points;
      }
    }
  }
  EXPECT_EQ(points, 2000);
  EXPECT_GT(log->rotations(), 5);
  EXPECT_EQ(tail->skipped_bytes(), 0);
  // A restarted agent resumes from the saved offset, past a rotation.
  const int64_t resume = tail->resume_offset();
  for (int i = 0; i < 100; ++i) log->Write(noise + "\n");
  log->Write("step=5000 loss=7\n");
  absl::StatusOr<MetricsTail> again = MetricsTail::Create(path_, c, false);
  ASSERT_TRUE(again.ok());
  again->Seek(resume);
  std::vector<v1::MetricPoint> resumed = again->Poll(2);
  while (again->behind() > 0) {
    std::vector<v1::MetricPoint> more = again->Poll(2);
    resumed.insert(resumed.end(), more.begin(), more.end());
  }
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].step(), 5000);
  EXPECT_EQ(again->skipped_bytes(), 0);
  // A flood of several caps, then the objective, with no poll between.
  for (int i = 0; i < 5000; ++i)
    log->Write("step=" + std::to_string(6000 + i) + " loss=9 " + noise + "\n");
  log->Write("loss=0.25");
  std::vector<v1::MetricPoint> last = again->Drain(3);
  ASSERT_FALSE(last.empty());
  EXPECT_DOUBLE_EQ(last.back().value(), 0.25);
  EXPECT_GT(again->skipped_bytes(), 0);
}

// Without keepers (`gangway local`) the supervisor reads the rank's output
// and the agent writes it capped: every byte is passed on before the exit.
TEST_F(RankLogTest, SupervisorPassesEveryByteBeforeTheExit) {
  boost::asio::io_context io;
  auto log = std::make_shared<RankLogWriter>(*RankLogWriter::Open(path_, 256 << 10));
  std::optional<int64_t> end_at_exit;
  Supervisor supervisor(io, [&](pid_t, const ExitInfo&) { end_at_exit = log->end(); });
  LaunchRequest req;
  req.argv = {"/bin/sh", "-c",
              "yes 0123456789012345678901234567890123456789 | head -c 3000000; echo loss=0.25"};
  req.log_path = path_;
  req.on_output = [log](std::string_view data) { log->Write(data); };
  ASSERT_TRUE(supervisor.Launch(req).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!end_at_exit && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(end_at_exit);
  EXPECT_EQ(*end_at_exit, 3000000 + 10);
  EXPECT_LE(DiskBytes(), (256 << 10) + 64);
  absl::StatusOr<RankLogRead> tail = ReadRankLog(path_, 3000000, 100);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->data, "loss=0.25\n");
}

// `gangway logs` through the agent: a page asked for at a rotated-away
// offset starts at the oldest byte kept and says so.
TEST_F(RankLogTest, LogPagesSayWhereTheyStart) {
  const std::string state = (dir_ / "state").string();
  const std::string path = Agent::LogPath(state, "job", 1, 0);
  absl::StatusOr<RankLogWriter> log = RankLogWriter::Open(path, 4096);
  ASSERT_TRUE(log.ok());
  log->Write(Stream(0, 10000));
  v1::ReadLog req;
  req.set_request_id(7);
  req.set_job_id("job");
  req.set_attempt(1);
  req.set_rank(0);
  req.set_offset(0);
  req.set_max_bytes(1000);
  v1::AgentMessage page = ReadLogPage(state, "n1", req);
  EXPECT_EQ(page.log_data().request_id(), 7);
  EXPECT_EQ(page.log_data().error(), "");
  EXPECT_EQ(page.log_data().offset(), 10000 - 2048 - 10000 % 2048);
  EXPECT_EQ(page.log_data().data(), Stream(page.log_data().offset(), 1000));
  req.set_job_id("other");
  EXPECT_NE(ReadLogPage(state, "n1", req).log_data().error().find("no log for job other"),
            std::string::npos);
}

}  // namespace
}  // namespace gangway::agent
