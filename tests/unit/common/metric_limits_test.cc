#include "common/metric_limits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/utf8.h"

namespace gangway::common {
namespace {

using ::testing::HasSubstr;

v1::MetricPoint Point(std::string name, int64_t step = -1, std::string raw = "") {
  v1::MetricPoint p;
  p.set_name(std::move(name));
  p.set_step(step);
  p.set_raw(std::move(raw));
  return p;
}

// One invalid byte in a point failed the agent's whole message to serialize
// and dropped its session, every time the line was printed.
TEST(MetricLimitsTest, SanitizeMakesTextValidAndBounded) {
  v1::MetricPoint p = Point("lo\xffss", 3, "\xfe" + std::string(1000, 'r'));
  ASSERT_TRUE(SanitizeMetricPoint(&p));
  EXPECT_EQ(p.name(), "lo\xEF\xBF\xBDss");
  EXPECT_TRUE(IsValidUtf8(p.raw()));
  EXPECT_LE(p.raw().size(), kMaxMetricRawBytes);
  EXPECT_EQ(p.step(), 3);
  std::string bytes;
  EXPECT_TRUE(p.SerializeToString(&bytes));
}

TEST(MetricLimitsTest, SanitizeClampsStepsAndDropsHugeNames) {
  v1::MetricPoint p = Point("loss", -7);
  ASSERT_TRUE(SanitizeMetricPoint(&p));
  EXPECT_EQ(p.step(), -1);
  p = Point("loss", kMaxMetricStep + 1);
  ASSERT_TRUE(SanitizeMetricPoint(&p));
  EXPECT_EQ(p.step(), -1);
  p = Point("loss", kMaxMetricStep);
  ASSERT_TRUE(SanitizeMetricPoint(&p));
  EXPECT_EQ(p.step(), kMaxMetricStep);
  p = Point(std::string(kMaxMetricNameBytes, 'n'));
  EXPECT_TRUE(SanitizeMetricPoint(&p));
  p = Point(std::string(kMaxMetricNameBytes + 1, 'n'));
  EXPECT_FALSE(SanitizeMetricPoint(&p));
  p = Point("");
  EXPECT_FALSE(SanitizeMetricPoint(&p));
}

TEST(MetricLimitsTest, CheckNamesThePoint) {
  EXPECT_TRUE(CheckMetricPoint(Point("loss", 5), "points[0]").ok());
  EXPECT_TRUE(CheckMetricPoint(Point("loss", -1), "points[0]").ok());
  absl::Status s = CheckMetricPoint(Point("loss", -2), "points[3]");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("points[3].step: must be -1 (none) or between 0 and"));
  EXPECT_THAT(CheckMetricPoint(Point(std::string(129, 'n')), "points[1]").message(),
              HasSubstr("points[1].name: at most 128 bytes, got 129"));
  EXPECT_THAT(CheckMetricPoint(Point(""), "points[0]").message(),
              HasSubstr("points[0].name: must not be empty"));
  EXPECT_THAT(CheckMetricPoint(Point("x", 1, std::string(257, 'r')), "points[2]").message(),
              HasSubstr("points[2].raw: at most 256 bytes"));
}

}  // namespace
}  // namespace gangway::common
