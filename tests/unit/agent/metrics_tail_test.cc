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

}  // namespace
}  // namespace gangway::agent
