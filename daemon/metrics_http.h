// /metrics over HTTP in the Prometheus text format, as both daemons serve
// it (--metrics-listen): prometheus-cpp's exposer over a registry of
// counters and histograms plus a collectable that computes gauges at
// scrape time. Apart from gangway_daemon because Debian ships prometheus-cpp
// as shared libraries only, and the static agent links without it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "prometheus/client_metric.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"

namespace gangway::daemon {

class MetricsHttp {
 public:
  explicit MetricsHttp(std::vector<std::shared_ptr<prometheus::Collectable>> collectables)
      : collectables_(std::move(collectables)) {}

  // What a scrape returns, without HTTP.
  std::string Text() const;

  // Serves /metrics on `listen` (host:port; port 0 picks one). The error
  // names the flag and suggests `example`, an address that would do.
  absl::Status Serve(const std::string& listen, size_t threads, std::string_view example);
  int port() const { return port_; }
  void Stop() { exposer_.reset(); }

 private:
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

// For collectables that compute gauges at scrape time: a gauge family, and
// one series of it.
prometheus::MetricFamily GaugeFamily(std::string name, std::string help);
void AddGauge(prometheus::MetricFamily& f, double value,
              std::vector<prometheus::ClientMetric::Label> labels = {});

}  // namespace gangway::daemon
