#include "agent/metrics_tail.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace gangway::agent {
namespace {

class MetricsTailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("metrics_tail_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "rank-0.log").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Append(const std::string& text) {
    std::ofstream out(path_, std::ios::app | std::ios::binary);
    out << text;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(MetricsTailTest, ReadsOnlyNewCompleteLines) {
  v1::MetricsCollector c;
  c.add_names("loss");
  auto tail = MetricsTail::Create(path_, c, false);
  ASSERT_TRUE(tail.ok());
  EXPECT_TRUE(tail->Poll(1).empty());  // no file yet
  Append("starting\nstep=1 loss=0.9 acc=0.1\nstep=2 lo");
  auto first = tail->Poll(2);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].step(), 1);
  EXPECT_DOUBLE_EQ(first[0].value(), 0.9);
  Append("ss=0.5\n");
  auto second = tail->Poll(3);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].step(), 2);
  EXPECT_DOUBLE_EQ(second[0].value(), 0.5);
  EXPECT_TRUE(tail->Poll(4).empty());
}

TEST_F(MetricsTailTest, JsonLinesFile) {
  v1::MetricsCollector c;
  auto tail = MetricsTail::Create(path_, c, true);
  ASSERT_TRUE(tail.ok());
  Append("{\"step\": 5, \"loss\": \"nan\"}\n");
  auto points = tail->Poll(1);
  ASSERT_EQ(points.size(), 1u);
  EXPECT_TRUE(std::isnan(points[0].value()));
  EXPECT_EQ(points[0].step(), 5);
}

TEST_F(MetricsTailTest, BadRegexIsRefused) {
  v1::MetricsCollector c;
  c.set_regex("(");
  EXPECT_FALSE(MetricsTail::Create(path_, c, false).ok());
}

// `printf 'loss=\377\n'` made a point whose raw text was not UTF-8: the
// agent's message failed to serialize, its session dropped each time the
// line was printed, and the trial lost its objective.
TEST_F(MetricsTailTest, InvalidUtf8IsReplacedSoEveryPointSerializes) {
  v1::MetricsCollector c;
  auto tail = MetricsTail::Create(path_, c, false);
  ASSERT_TRUE(tail.ok());
  // Katib's format takes names of [A-Za-z0-9_.-] only, so the second line
  // is no point; names are repaired when a regex or JSON file yields them
  // (common/metric_limits_test.cc).
  Append("loss=\377\nacc\xfe=0.5\nloss=0.25\n");
  auto points = tail->Poll(1);
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].raw(), "\xEF\xBF\xBD");
  EXPECT_TRUE(std::isnan(points[0].value()));
  EXPECT_DOUBLE_EQ(points[1].value(), 0.25);
  v1::RankMetrics m;
  for (const auto& p : points) *m.add_points() = p;
  std::string bytes;
  EXPECT_TRUE(m.SerializeToString(&bytes));
}

TEST_F(MetricsTailTest, HostileStepsAndNamesAreBounded) {
  v1::MetricsCollector c;
  auto tail = MetricsTail::Create(path_, c, false);
  ASSERT_TRUE(tail.ok());
  Append("step=1e300 loss=1\nstep=nan loss=2\nstep=-9 loss=3\n" + std::string(200, 'n') +
         "=4 loss=5\nloss=" + std::string(10'000, 'r') + "\n");
  auto points = tail->Poll(1);
  ASSERT_EQ(points.size(), 5u);  // the 200-byte name is dropped
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(points[i].step(), -1) << i;
    EXPECT_DOUBLE_EQ(points[i].value(), i + 1);
  }
  EXPECT_EQ(points[3].name(), "loss");
  EXPECT_DOUBLE_EQ(points[3].value(), 5);
  EXPECT_EQ(points[4].raw().size(), 256u);
}

// The same through a user regex and a JSON-lines file, where the step is
// converted by other code.
TEST_F(MetricsTailTest, HugeStepsFromRegexAndJsonAreNotConverted) {
  v1::MetricsCollector c;
  c.set_regex(R"((?P<name>\w+)@(?P<step>\S+):(?P<value>\S+))");
  auto tail = MetricsTail::Create(path_, c, false);
  ASSERT_TRUE(tail.ok());
  Append("loss@1e300:1\nloss@-1e300:2\nloss@7:3\n");
  auto points = tail->Poll(1);
  ASSERT_EQ(points.size(), 3u);
  EXPECT_EQ(points[0].step(), -1);
  EXPECT_EQ(points[1].step(), -1);
  EXPECT_EQ(points[2].step(), 7);

  std::filesystem::remove(path_);
  auto json = MetricsTail::Create(path_, v1::MetricsCollector(), true);
  ASSERT_TRUE(json.ok());
  Append("{\"step\": 1e300, \"loss\": 1}\n{\"name\": \"l\\u00ff\", \"value\": 2, \"step\": 4}\n");
  points = json->Poll(1);
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].step(), -1);
  EXPECT_EQ(points[1].step(), 4);
}

// One poll's points go out in one message, which must stay under gRPC's
// 4 MiB: a line of 16,000 tiny pairs is cut to the latest kMaxPoints.
TEST_F(MetricsTailTest, PointsPerPollAreBounded) {
  v1::MetricsCollector c;
  auto tail = MetricsTail::Create(path_, c, false);
  ASSERT_TRUE(tail.ok());
  std::string line;
  for (int i = 0; i < 16'000; ++i) line += "a=1 ";
  Append(line + "loss=0.5\n");
  auto points = tail->Poll(1);
  ASSERT_EQ(points.size(), MetricsTail::kMaxPoints);
  EXPECT_EQ(points.back().name(), "loss");
}

}  // namespace
}  // namespace gangway::agent
