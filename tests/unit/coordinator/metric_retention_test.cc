// The cap on metric points per job and name: downsampled evenly, never
// losing the latest, lowest or highest value of the current attempt; and
// the same through the core and both stores.
#include "coordinator/metric_retention.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "coordinator/core.h"
#include "tests/unit/coordinator/core_on_stores.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

v1::MetricPoint Point(const std::string& name, double value, int32_t attempt = 1) {
  v1::MetricPoint p;
  p.set_name(name);
  p.set_value(value);
  p.set_attempt(attempt);
  return p;
}

// An in-memory series that applies what MetricRetention says, as a store.
class Series {
 public:
  explicit Series(int64_t cap) : retention_(cap) {}

  void Add(std::vector<v1::MetricPoint> points) {
    std::vector<v1::MetricPoint> keep;
    for (const MetricTrim& t : retention_.Add("j", std::move(points), &keep)) Apply(t);
    stored_.insert(stored_.end(), keep.begin(), keep.end());
  }
  void Apply(const MetricTrim& t) {
    std::erase_if(stored_, [&](const v1::MetricPoint& p) {
      const auto has = [&](const std::vector<int64_t>& v) {
        return std::find(v.begin(), v.end(), p.index()) != v.end();
      };
      return p.name() == t.name && p.index() >= 0 &&
             ((t.stride > 0 && p.index() % t.stride != 0 && !has(t.keep)) || has(t.drop));
    });
  }
  std::vector<v1::MetricPoint> Of(const std::string& name) const {
    std::vector<v1::MetricPoint> out;
    for (const auto& p : stored_) {
      if (p.name() == name) out.push_back(p);
    }
    return out;
  }
  MetricRetention& retention() { return retention_; }
  std::vector<v1::MetricPoint>& stored() { return stored_; }

 private:
  MetricRetention retention_;
  std::vector<v1::MetricPoint> stored_;
};

TEST(MetricRetentionTest, StrideIsThePowerOfTwoThatFitsTheCap) {
  MetricRetention r(100);
  EXPECT_EQ(r.StrideFor(0), 1);
  EXPECT_EQ(r.StrideFor(97), 1);
  EXPECT_EQ(r.StrideFor(98), 2);
  EXPECT_EQ(r.StrideFor(1'000'000), 16384);
  EXPECT_EQ(MetricRetention(0).StrideFor(1'000'000), 1) << "0: keep everything";
  EXPECT_EQ(MetricRetention(1).StrideFor(5), 1) << "a cap below 8 is 8";
  EXPECT_EQ(MetricRetention(1).StrideFor(6), 2);
  EXPECT_GT(r.StrideFor(std::numeric_limits<int64_t>::max()), 0) << "no overflow";
}

// A million points of `loss` in polls of 5,000, a decreasing curve with
// one spike: at most the cap is kept, evenly spread, with the last, the
// lowest and the highest value.
TEST(MetricRetentionTest, MillionPointsKeepTheCapWithLastMinAndMax) {
  Series s(1000);
  std::mt19937 rng(7);
  int64_t n = 0;
  double lowest = 1e300;
  int64_t lowest_at = -1;
  for (int poll = 0; poll < 200; ++poll) {
    std::vector<v1::MetricPoint> batch;
    for (int i = 0; i < 5000; ++i, ++n) {
      double v = 1000.0 / static_cast<double>(n + 1) + (rng() % 100) * 1e-4;
      if (n == 123'457) v = 1e6;  // the spike, off any stride
      if (v < lowest) {
        lowest = v;
        lowest_at = n;
      }
      batch.push_back(Point("loss", v));
      batch.push_back(Point("lr", 0.1));
    }
    s.Add(std::move(batch));
    ASSERT_LE(s.Of("loss").size(), 1000u) << "after poll " << poll;
  }
  const std::vector<v1::MetricPoint> loss = s.Of("loss");
  EXPECT_GE(loss.size(), 400u) << "downsampled, not emptied";
  EXPECT_LE(s.Of("lr").size(), 1000u);
  // Evenly: stored positions in order, most a multiple of the stride.
  const int64_t stride = s.retention().StrideFor(1'000'000);
  int off = 0;
  for (size_t i = 0; i < loss.size(); ++i) {
    if (i > 0) {
      EXPECT_LT(loss[i - 1].index(), loss[i].index());
    }
    off += loss[i].index() % stride != 0;
  }
  EXPECT_LE(off, 3);
  EXPECT_EQ(loss.back().index(), 999'999) << "the latest";
  const auto [lo, hi] = std::minmax_element(
      loss.begin(), loss.end(),
      [](const v1::MetricPoint& a, const v1::MetricPoint& b) { return a.value() < b.value(); });
  EXPECT_EQ(hi->value(), 1e6) << "the highest survived";
  EXPECT_EQ(hi->index(), 123'457);
  EXPECT_EQ(lo->value(), lowest) << "the lowest survived";
  EXPECT_EQ(lo->index(), lowest_at);
}

// The last value is what a trial's objective usually reads: it is kept
// however it compares, and the one before it goes once superseded.
TEST(MetricRetentionTest, LatestIsKeptAndTheSupersededOneGoes) {
  Series s(8);
  std::vector<v1::MetricPoint> batch;
  for (int i = 0; i < 40; ++i) batch.push_back(Point("loss", 5.0));
  s.Add(std::move(batch));
  ASSERT_LE(s.Of("loss").size(), 8u);
  EXPECT_EQ(s.Of("loss").back().index(), 39);
  s.Add({Point("loss", 5.0)});
  std::vector<v1::MetricPoint> now = s.Of("loss");
  EXPECT_EQ(now.back().index(), 40);
  EXPECT_TRUE(std::none_of(now.begin(), now.end(), [](const v1::MetricPoint& p) {
    return p.index() == 39;
  })) << "39 is off the stride and no longer the latest";
}

// A relaunched attempt's best is its own: the old attempt's extremes are
// no longer protected, the new one's are.
TEST(MetricRetentionTest, NewAttemptProtectsItsOwnExtremes) {
  Series s(8);
  std::vector<v1::MetricPoint> first;
  for (int i = 0; i < 30; ++i) first.push_back(Point("loss", i == 13 ? -100.0 : 1.0, 1));
  s.Add(std::move(first));
  std::vector<v1::MetricPoint> second;
  for (int i = 0; i < 30; ++i) second.push_back(Point("loss", i == 5 ? 0.5 : 2.0, 2));
  s.Add(std::move(second));
  const std::vector<v1::MetricPoint> loss = s.Of("loss");
  EXPECT_TRUE(std::any_of(loss.begin(), loss.end(), [](const v1::MetricPoint& p) {
    return p.attempt() == 2 && p.value() == 0.5;
  })) << "attempt 2's lowest";
  EXPECT_LE(loss.size(), 8u);
}

// After a restart the series continues where the store left it: no
// position is used twice, and a cap lowered meanwhile is applied.
TEST(MetricRetentionTest, LoadContinuesTheStoredSeries) {
  Series before(0);
  std::vector<v1::MetricPoint> batch;
  for (int i = 0; i < 100; ++i) batch.push_back(Point("loss", 100.0 - i));
  before.Add(std::move(batch));
  ASSERT_EQ(before.stored().size(), 100u);

  Series after(16);
  after.stored() = before.stored();
  for (const MetricTrim& t : after.retention().Load("j", 1, before.stored())) after.Apply(t);
  EXPECT_LE(after.stored().size(), 16u);
  after.Add({Point("loss", -1.0)});
  const std::vector<v1::MetricPoint> loss = after.Of("loss");
  EXPECT_EQ(loss.back().index(), 100) << "positions go on from the store's";
  EXPECT_EQ(loss.back().value(), -1.0);
  EXPECT_LE(loss.size(), 16u);
  // Points stored before positions (index -1) are never trimmed.
  Series legacy(8);
  v1::MetricPoint old = Point("loss", 3.0);
  old.set_index(-1);
  legacy.stored().push_back(old);
  legacy.retention().Load("j", 1, legacy.stored());
  std::vector<v1::MetricPoint> more;
  for (int i = 0; i < 50; ++i) more.push_back(Point("loss", 1.0));
  legacy.Add(std::move(more));
  EXPECT_EQ(legacy.Of("loss").front().index(), -1);
  EXPECT_EQ(legacy.Of("loss")[1].index(), 0) << "the series starts at 0";
}

// ---------------------------------------------------------------------------
// Through the core, on both stores

class CoreMetricsCapTest : public fakes::CoreOnStoresTest {
 protected:
  CoreMetricsCapTest() { MakeCore(); }
  void MakeCore() {
    CoreOptions o;
    o.rendezvous_endpoint = "coord:7070";
    o.metric_points_per_name = 100;
    StartCore(o, fakes::RegisterMessage("n1"));
  }
  void Report(const std::string& id, int from, int count) {
    std::vector<v1::MetricPoint> points;
    for (int i = from; i < from + count; ++i) {
      v1::MetricPoint p = Point("loss", 1000.0 - i);
      p.set_step(i);
      points.push_back(p);
    }
    core_->OnMetrics(id, 1, 0, points);
    core_->Settle();
  }
  // Every page of GetMetrics, `page` points at a time.
  std::vector<v1::MetricPoint> ReadAll(const std::string& id, int32_t page, int* pages) {
    std::vector<v1::MetricPoint> out;
    v1::GetMetricsRequest req;
    req.set_job_id(id);
    req.set_page_size(page);
    *pages = 0;
    do {
      absl::StatusOr<v1::GetMetricsResponse> resp = core_->GetMetricsPage(req);
      EXPECT_TRUE(resp.ok()) << resp.status();
      if (!resp.ok()) break;
      ++*pages;
      out.insert(out.end(), resp->points().begin(), resp->points().end());
      req.set_page_token(resp->next_page_token());
    } while (!req.page_token().empty() && *pages < 1000);
    return out;
  }
};
INSTANTIATE_TEST_SUITE_P(Stores, CoreMetricsCapTest, ::testing::Values(false, true),
                         fakes::CoreOnStoresTest::StoreName);

TEST_P(CoreMetricsCapTest, StoredPointsStayUnderTheCapAndKeepTheLast) {
  const std::string id = SubmitStarted();
  for (int poll = 0; poll < 50; ++poll) Report(id, poll * 100, 100);
  absl::StatusOr<std::vector<v1::MetricPoint>> stored = store()->LoadMetrics(id);
  ASSERT_TRUE(stored.ok());
  EXPECT_LE(stored->size(), 100u);
  EXPECT_GE(stored->size(), 40u);
  EXPECT_EQ(stored->back().step(), 4999);
  EXPECT_EQ(stored->back().value(), 1000.0 - 4999) << "the last is also the lowest";

  // After a restart the series goes on: positions continue, cap holds.
  DropCore();
  MakeCore();
  Report(id, 5000, 100);
  stored = store()->LoadMetrics(id);
  ASSERT_TRUE(stored.ok());
  EXPECT_LE(stored->size(), 100u);
  EXPECT_EQ(stored->back().index(), 5099);
  std::vector<int64_t> indices;
  for (const auto& p : *stored) indices.push_back(p.index());
  EXPECT_TRUE(std::is_sorted(indices.begin(), indices.end()));
  EXPECT_EQ(std::adjacent_find(indices.begin(), indices.end()), indices.end()) << "no reuse";
}

TEST_P(CoreMetricsCapTest, GetMetricsPagesThroughEveryPointOnce) {
  const std::string id = SubmitStarted();
  Report(id, 0, 90);
  int pages = 0;
  std::vector<v1::MetricPoint> all = ReadAll(id, 25, &pages);
  EXPECT_EQ(pages, 4);
  ASSERT_EQ(all.size(), 90u);
  for (int i = 0; i < 90; ++i) EXPECT_EQ(all[static_cast<size_t>(i)].step(), i);
  // Zero asks for the server's maximum; a bad token is refused.
  v1::GetMetricsRequest req;
  req.set_job_id(id);
  absl::StatusOr<v1::GetMetricsResponse> one = core_->GetMetricsPage(req);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->points_size(), 90);
  EXPECT_TRUE(one->next_page_token().empty());
  req.set_page_token("nope");
  EXPECT_EQ(core_->GetMetricsPage(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.set_page_token("");
  req.set_page_size(-1);
  EXPECT_EQ(core_->GetMetricsPage(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.set_page_size(1'000'000);
  one = core_->GetMetricsPage(req);
  ASSERT_TRUE(one.ok());
  EXPECT_LE(one->points_size(), Core::kMaxMetricsPage);
}

}  // namespace
}  // namespace gangway::coordinator
