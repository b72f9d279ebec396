#include "coordinator/metric_retention.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace gangway::coordinator {

MetricRetention::MetricRetention(int64_t cap) : cap_(cap <= 0 ? 0 : std::max<int64_t>(cap, 8)) {}

int64_t MetricRetention::StrideFor(int64_t n) const {
  if (cap_ == 0) return 1;
  int64_t k = 1;
  // Ends by k >= n at the latest (one point on the stride, 4 <= cap).
  while ((n - 1) / k + 1 + 3 > cap_) k *= 2;
  return k;
}

void MetricRetention::Observe(Series& s, const v1::MetricPoint& p, int64_t index) {
  if (p.attempt() != s.attempt) {
    // A new attempt's best is its own: the old one's need not stay.
    s.attempt = p.attempt();
    s.min_index = s.max_index = -1;
  }
  s.latest = index;
  if (!std::isfinite(p.value())) return;
  if (s.min_index < 0 || p.value() < s.min) {
    s.min = p.value();
    s.min_index = index;
  }
  if (s.max_index < 0 || p.value() > s.max) {
    s.max = p.value();
    s.max_index = index;
  }
}

std::vector<int64_t> MetricRetention::Protected(const Series& s) {
  std::vector<int64_t> out;
  for (int64_t i : {s.latest, s.min_index, s.max_index}) {
    if (i >= 0 && std::find(out.begin(), out.end(), i) == out.end()) out.push_back(i);
  }
  return out;
}

std::vector<MetricTrim> MetricRetention::Load(const std::string& job, int32_t attempt,
                                              const std::vector<v1::MetricPoint>& stored) {
  std::map<std::string, Series>& names = series_[job];
  names.clear();
  std::map<std::string, int64_t> counts;
  for (const v1::MetricPoint& p : stored) {
    if (p.index() < 0) continue;
    Series& s = names[p.name()];
    ++counts[p.name()];
    s.n = std::max(s.n, p.index() + 1);
    s.latest = std::max(s.latest, p.index());
    s.attempt = attempt;
    if (p.attempt() != attempt || !std::isfinite(p.value())) continue;
    if (s.min_index < 0 || p.value() < s.min) {
      s.min = p.value();
      s.min_index = p.index();
    }
    if (s.max_index < 0 || p.value() > s.max) {
      s.max = p.value();
      s.max_index = p.index();
    }
  }
  std::vector<MetricTrim> trims;
  for (auto& [name, s] : names) {
    s.stride = StrideFor(s.n);
    // More stored than the cap allows (the cap was lowered): thin now.
    if (cap_ > 0 && counts[name] > cap_) {
      trims.push_back(MetricTrim{job, name, s.stride, Protected(s), {}});
    }
  }
  return trims;
}

std::vector<MetricTrim> MetricRetention::Add(const std::string& job,
                                             std::vector<v1::MetricPoint> points,
                                             std::vector<v1::MetricPoint>* store) {
  std::map<std::string, Series>& names = series_[job];
  struct Before {
    std::vector<int64_t> protected_points;
    int64_t stride;
    int64_t first_new;
  };
  std::map<std::string, Before> touched;
  for (v1::MetricPoint& p : points) {
    Series& s = names[p.name()];
    touched.try_emplace(p.name(), Before{Protected(s), s.stride, s.n});
    const int64_t index = s.n++;
    p.set_index(index);
    Observe(s, p, index);
  }
  std::map<std::string, std::vector<int64_t>> keep;
  for (auto& [name, before] : touched) {
    Series& s = names[name];
    s.stride = StrideFor(s.n);
    keep[name] = Protected(s);
  }
  // Decided once the whole batch is seen: a value that was the lowest for a
  // moment within it is not written at all.
  for (v1::MetricPoint& p : points) {
    const std::vector<int64_t>& k = keep[p.name()];
    if (p.index() % names[p.name()].stride == 0 ||
        std::find(k.begin(), k.end(), p.index()) != k.end()) {
      store->push_back(std::move(p));
    }
  }
  std::vector<MetricTrim> trims;
  for (const auto& [name, before] : touched) {
    const Series& s = names[name];
    MetricTrim t{job, name, 0, keep[name], {}};
    if (s.stride > before.stride) {
      t.stride = s.stride;
    } else {
      t.keep.clear();
      for (int64_t old : before.protected_points) {
        if (old < before.first_new && old % s.stride != 0 &&
            std::find(keep[name].begin(), keep[name].end(), old) == keep[name].end()) {
          t.drop.push_back(old);
        }
      }
    }
    if (t.stride > 0 || !t.drop.empty()) trims.push_back(std::move(t));
  }
  return trims;
}

}  // namespace gangway::coordinator
