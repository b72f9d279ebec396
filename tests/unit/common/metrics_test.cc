#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace gangway::common {
namespace {

std::vector<v1::MetricPoint> Parse(const MetricParser& p, std::string_view line) {
  std::vector<v1::MetricPoint> out;
  p.ParseLine(line, 7, &out);
  return out;
}

TEST(MetricParserTest, KatibFormatSeveralPerLineWithStep) {
  auto p = MetricParser::Create("");
  ASSERT_TRUE(p.ok());
  auto pts = Parse(*p, "epoch 3: step=12 loss=0.25, accuracy = 0.875\tlr=1e-3");
  ASSERT_EQ(pts.size(), 3u);
  EXPECT_EQ(pts[0].name(), "loss");
  EXPECT_DOUBLE_EQ(pts[0].value(), 0.25);
  EXPECT_EQ(pts[0].step(), 12);
  EXPECT_EQ(pts[1].name(), "accuracy");
  EXPECT_DOUBLE_EQ(pts[1].value(), 0.875);
  EXPECT_EQ(pts[2].name(), "lr");
  EXPECT_DOUBLE_EQ(pts[2].value(), 1e-3);
  EXPECT_EQ(pts[2].time_ms(), 7);
}

TEST(MetricParserTest, NoStepIsMinusOne) {
  auto p = MetricParser::Create("");
  auto pts = Parse(*p, "loss=1.5");
  ASSERT_EQ(pts.size(), 1u);
  EXPECT_EQ(pts[0].step(), -1);
}

TEST(MetricParserTest, NanInfAndGarbageAreKept) {
  auto p = MetricParser::Create("");
  auto pts = Parse(*p, "a=nan b=inf c=-Infinity d=abc e=1.2.3");
  ASSERT_EQ(pts.size(), 5u);
  EXPECT_TRUE(std::isnan(pts[0].value()));
  EXPECT_TRUE(std::isinf(pts[1].value()) && pts[1].value() > 0);
  EXPECT_TRUE(std::isinf(pts[2].value()) && pts[2].value() < 0);
  EXPECT_TRUE(std::isnan(pts[3].value()));
  EXPECT_EQ(pts[3].raw(), "abc");
  EXPECT_TRUE(std::isnan(pts[4].value()));
  EXPECT_EQ(pts[4].raw(), "1.2.3");
}

TEST(MetricParserTest, LinesWithoutPairsGiveNothing) {
  auto p = MetricParser::Create("");
  EXPECT_TRUE(Parse(*p, "").empty());
  EXPECT_TRUE(Parse(*p, "hello world").empty());
  EXPECT_TRUE(Parse(*p, "=== = ===").empty());
}

TEST(MetricParserTest, NamesFilter) {
  auto p = MetricParser::Create("", {"loss"});
  auto pts = Parse(*p, "loss=1 acc=2");
  ASSERT_EQ(pts.size(), 1u);
  EXPECT_EQ(pts[0].name(), "loss");
}

TEST(MetricParserTest, UserRegex) {
  auto p = MetricParser::Create(R"(\[(?P<step>\d+)\] (?P<name>\w+): (?P<value>\S+))");
  ASSERT_TRUE(p.ok()) << p.status();
  auto pts = Parse(*p, "[4] loss: 0.5 [4] acc: 0.9");
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_EQ(pts[0].name(), "loss");
  EXPECT_EQ(pts[0].step(), 4);
  EXPECT_DOUBLE_EQ(pts[1].value(), 0.9);
}

TEST(MetricParserTest, BadRegexIsRefusedWithItsField) {
  auto bad = MetricParser::Create("(unclosed");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("metricsCollector.regex"), std::string::npos);
  auto no_groups = MetricParser::Create("(\\w+)=(\\S+)");
  ASSERT_FALSE(no_groups.ok());
  EXPECT_NE(no_groups.status().message().find("named groups"), std::string::npos);
}

TEST(MetricParserTest, RegexThatMatchesEmptyStillEnds) {
  auto p = MetricParser::Create("(?P<name>\\w*)(?P<value>\\d*)");
  ASSERT_TRUE(p.ok());
  auto pts = Parse(*p, std::string(10000, 'x'));  // must terminate, linear time
  EXPECT_FALSE(pts.empty());
}

TEST(MetricParserTest, JsonLines) {
  auto p = MetricParser::Create("");
  std::vector<v1::MetricPoint> out;
  p->ParseJsonLine(R"({"step": 3, "loss": 0.5, "acc": "n/a"})", 1, &out);
  p->ParseJsonLine(R"({"name": "val_loss", "value": 0.25, "step": 4})", 1, &out);
  p->ParseJsonLine("{not json", 1, &out);
  p->ParseJsonLine("[1,2]", 1, &out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].step(), 3);
  EXPECT_EQ(out[2].name(), "val_loss");
  EXPECT_EQ(out[2].step(), 4);
}

TEST(LineSplitterTest, JoinsChunksAndDropsOverlongLines) {
  LineSplitter s;
  std::vector<std::string> lines;
  auto collect = [&](std::string_view l) { lines.emplace_back(l); };
  s.Feed("a=1\nb=", collect);
  s.Feed("2\n", collect);
  s.Feed(std::string(kMaxMetricLineBytes + 10, 'x'), collect);
  s.Feed("yyy\nc=3\n", collect);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "a=1");
  EXPECT_EQ(lines[1], "b=2");
  EXPECT_EQ(lines[2], "c=3");
}

TEST(MetricParserTest, RandomBytesNeverCrash) {
  auto p = MetricParser::Create("");
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 2000; ++i) {
    std::string line(rng() % 200, '\0');
    for (char& c : line) c = static_cast<char>(byte(rng));
    std::vector<v1::MetricPoint> out;
    p->ParseLine(line, 0, &out);
    p->ParseJsonLine(line, 0, &out);
  }
}

}  // namespace
}  // namespace gangway::common
