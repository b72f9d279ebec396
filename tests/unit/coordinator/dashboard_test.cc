// deploy/grafana/gangway.json: valid JSON, and every query names only
// series the coordinator and the agent export (a renamed metric fails here,
// not on someone's empty panel).
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "agent/telemetry.h"
#include "common/clock.h"
#include "coordinator/telemetry.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace gangway {
namespace {

class OneGpu final : public agent::GpuSampler {
 public:
  absl::StatusOr<std::vector<agent::GpuSample>> Sample() override {
    return std::vector<agent::GpuSample>{{0, "GPU-0", 1, 2, 0.5}};
  }
};

// Every series name in an exposition: a histogram's _bucket, _sum and
// _count too.
std::set<std::string> Exported(const std::string& text) {
  std::set<std::string> names;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string hash, kind, name, type;
    if (!(words >> hash >> kind >> name >> type) || hash != "#" || kind != "TYPE") continue;
    names.insert(name);
    if (type == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) names.insert(name + suffix);
    }
  }
  return names;
}

std::set<std::string> AllExported() {
  common::FakeClock clock;
  coordinator::CoordinatorTelemetry coordinator([] { return coordinator::CoreGauges(); }, &clock);
  coordinator.OnRpc("/gangway.v1.Control/GetJob", grpc::StatusCode::OK);  // labelled: absent before
  agent::AgentTelemetry agent("/nonexistent", std::make_unique<OneGpu>());
  v1::LaunchGang gang;
  gang.set_job_id("j");
  v1::RankLaunch rank;
  agent.RankLaunched(gang, rank, true);
  std::set<std::string> names = Exported(coordinator.Text());
  names.merge(Exported(agent.Text()));
  return names;
}

TEST(DashboardTest, EveryPanelQueriesOnlyExportedSeries) {
  std::ifstream in(std::string(GANGWAY_SOURCE_DIR) + "/deploy/grafana/gangway.json");
  ASSERT_TRUE(in) << "deploy/grafana/gangway.json is missing";
  std::stringstream text;
  text << in.rdbuf();
  google::protobuf::Struct dashboard;
  auto parsed = google::protobuf::util::JsonStringToMessage(text.str(), &dashboard);
  ASSERT_TRUE(parsed.ok()) << "not JSON: " << parsed.ToString();
  ASSERT_TRUE(dashboard.fields().contains("panels"));
  EXPECT_FALSE(dashboard.fields().at("uid").string_value().empty());

  const std::set<std::string> exported = AllExported();
  ASSERT_TRUE(exported.contains("gangway_jobs"));
  ASSERT_TRUE(exported.contains("gangway_agent_gpu_utilization_ratio"));
  const std::regex metric("gangway_[a-z0-9_]+");
  std::set<std::string> queried;
  int queries = 0;
  for (const auto& panel : dashboard.fields().at("panels").list_value().values()) {
    const auto& fields = panel.struct_value().fields();
    if (fields.at("type").string_value() == "row") continue;
    const std::string title = fields.at("title").string_value();
    ASSERT_TRUE(fields.contains("targets")) << title;
    ASSERT_GT(fields.at("targets").list_value().values_size(), 0) << title;
    for (const auto& target : fields.at("targets").list_value().values()) {
      const std::string expr = target.struct_value().fields().at("expr").string_value();
      ++queries;
      bool any = false;
      for (std::sregex_iterator it(expr.begin(), expr.end(), metric), end; it != end; ++it) {
        any = true;
        queried.insert(it->str());
        EXPECT_TRUE(exported.contains(it->str()))
            << "panel '" << title << "' queries " << it->str() << ", which is not exported";
      }
      EXPECT_TRUE(any) << "panel '" << title << "': no gangway series in " << expr;
    }
  }
  EXPECT_GE(queries, 20);
  // Every family the binaries export has a panel.
  for (const std::string& name : exported) {
    if (name.ends_with("_bucket") || name.ends_with("_sum") || name.ends_with("_count")) {
      continue;  // a histogram's parts: its own name is checked
    }
    const bool shown = std::any_of(queried.begin(), queried.end(), [&](const std::string& q) {
      return q == name || q == name + "_bucket" || q == name + "_count";
    });
    EXPECT_TRUE(shown) << name << " is exported but no panel shows it";
  }
}

}  // namespace
}  // namespace gangway
