#include "tuner/pareto.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace gangway::tuner {

bool Dominates(std::span<const double> a, std::span<const double> b) {
  bool better = false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] > b[i]) return false;
    better |= a[i] < b[i];
  }
  return better;
}

std::vector<std::vector<int>> NonDominatedFronts(const std::vector<Losses>& points) {
  const int n = static_cast<int>(points.size());
  std::vector<std::vector<int>> dominated(n);
  std::vector<int> count(n, 0);
  std::vector<std::vector<int>> fronts;
  std::vector<int> current;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      if (i == j) continue;
      if (Dominates(points[i], points[j])) {
        dominated[i].push_back(j);
      } else if (Dominates(points[j], points[i])) {
        ++count[i];
      }
    }
    if (count[i] == 0) current.push_back(i);
  }
  while (!current.empty()) {
    std::vector<int> next;
    for (int i : current) {
      for (int j : dominated[i]) {
        if (--count[j] == 0) next.push_back(j);
      }
    }
    std::sort(next.begin(), next.end());
    fronts.push_back(std::move(current));
    current = std::move(next);
  }
  return fronts;
}

std::vector<double> CrowdingDistance(const std::vector<Losses>& points,
                                     const std::vector<int>& front) {
  const size_t n = front.size();
  std::vector<double> distance(n, 0.0);
  if (n == 0) return distance;
  const size_t m = points[front[0]].size();
  std::vector<size_t> order(n);
  for (size_t k = 0; k < m; ++k) {
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return points[front[a]][k] < points[front[b]][k]; });
    const double lo = points[front[order.front()]][k];
    const double hi = points[front[order.back()]][k];
    distance[order.front()] = std::numeric_limits<double>::infinity();
    distance[order.back()] = std::numeric_limits<double>::infinity();
    if (!(hi > lo)) continue;
    for (size_t r = 1; r + 1 < n; ++r) {
      distance[order[r]] +=
          (points[front[order[r + 1]]][k] - points[front[order[r - 1]]][k]) / (hi - lo);
    }
  }
  return distance;
}

namespace {

// Hypervolume of points already strictly inside the reference box, over
// their first `m` objectives.
double SliceVolume(std::vector<Losses> points, const Losses& reference, size_t m) {
  if (points.empty()) return 0;
  if (m == 1) {
    double best = reference[0];
    for (const Losses& p : points) best = std::min(best, p[0]);
    return reference[0] - best;
  }
  const size_t k = m - 1;  // slice along this objective
  std::sort(points.begin(), points.end(),
            [&](const Losses& a, const Losses& b) { return a[k] < b[k]; });
  double volume = 0;
  std::vector<Losses> active;
  for (size_t i = 0; i < points.size(); ++i) {
    active.push_back(points[i]);
    const double top = i + 1 < points.size() ? points[i + 1][k] : reference[k];
    const double depth = top - points[i][k];
    if (depth <= 0) continue;
    // Only the non-dominated ones in the first k objectives matter.
    std::vector<Losses> front;
    for (const Losses& a : active) {
      bool dominated = false;
      for (const Losses& b : active) {
        if (&a != &b &&
            Dominates(std::span<const double>(b.data(), k), std::span<const double>(a.data(), k))) {
          dominated = true;
          break;
        }
      }
      if (!dominated) front.push_back(a);
    }
    active = front;
    volume += depth * SliceVolume(front, reference, k);
  }
  return volume;
}

}  // namespace

double Hypervolume(const std::vector<Losses>& points, const Losses& reference) {
  std::vector<Losses> inside;
  for (const Losses& p : points) {
    bool in = p.size() == reference.size();
    for (size_t i = 0; in && i < p.size(); ++i) in = p[i] < reference[i];
    if (in) inside.push_back(p);
  }
  return SliceVolume(std::move(inside), reference, reference.size());
}

}  // namespace gangway::tuner
