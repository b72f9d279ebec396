// How many metric points a job keeps: at most a cap per metric name, so a
// trial printing millions of lines cannot fill the store or the answers
// that read it back.
//
// Each point gets its position in its series (MetricPoint.index: 0, 1, ...
// per job and name). Past the cap the series is downsampled evenly: only
// positions that are a multiple of a stride k (a power of two, doubled as
// the series grows) are kept, plus, for the current attempt, the latest
// point and the lowest and highest values. So the objective's last, best,
// min and max (every ObjectiveSpec mode) survive any downsampling, and an
// early-stopping rule still sees the curve's shape.
//
// Thread: the core's. Pure: the core stores what Add says and applies the
// trims it returns in the same write.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "coordinator/store.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::coordinator {

class MetricRetention {
 public:
  // `cap`: most points kept per job and metric name; 0 keeps everything.
  // A cap below 8 is taken as 8 (the stride needs room beside the three
  // protected points).
  explicit MetricRetention(int64_t cap);

  // The stride for a series of `n` points: the smallest power of two that
  // keeps ceil(n / stride) + 3 points within the cap.
  int64_t StrideFor(int64_t n) const;

  // A job's series as stored (after a coordinator restart, or after the job
  // ended and its state was dropped): positions and the protected points of
  // `attempt`. Points without a position (index -1, stored before
  // positions) are left alone. Returns the trims that bring a series
  // stored under a higher cap within this one.
  std::vector<MetricTrim> Load(const std::string& job, int32_t attempt,
                               const std::vector<v1::MetricPoint>& stored);
  bool Has(const std::string& job) const { return series_.count(job) > 0; }
  void Forget(const std::string& job) { series_.erase(job); }

  // New points of `job` (each carrying its attempt), in the order received.
  // Sets each one's index; moves the ones to store into `store` and
  // returns the trims to apply after storing them.
  std::vector<MetricTrim> Add(const std::string& job, std::vector<v1::MetricPoint> points,
                              std::vector<v1::MetricPoint>* store);

 private:
  struct Series {
    int64_t n = 0;       // points seen (the next index)
    int64_t stride = 1;  // what is stored: index % stride == 0, plus the protected
    int32_t attempt = 0;
    int64_t latest = -1;
    int64_t min_index = -1, max_index = -1;
    double min = 0, max = 0;
  };
  // Updates the protected points of `s` for a point at `index`.
  static void Observe(Series& s, const v1::MetricPoint& p, int64_t index);
  static std::vector<int64_t> Protected(const Series& s);

  int64_t cap_;
  std::map<std::string, std::map<std::string, Series>> series_;  // job -> name -> series
};

}  // namespace gangway::coordinator
