// The real Prometheus server (Debian's `prometheus`, which scripts/install-deps
// installs) scrapes a running coordinator and agent every 200 ms; after a
// job has run, its HTTP API answers for a counter and a histogram of the
// coordinator and a counter of the agent. Prometheus keeps its storage in
// the test's temporary directory and is stopped with the cluster.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

constexpr const char* kPrometheus = "/usr/bin/prometheus";

// The port printed on a "metrics PORT" line, 0 until there is one.
int MetricsPort(Process& p) {
  for (const std::string& line : Lines(p.Stdout())) {
    if (line.rfind("metrics ", 0) == 0) return std::atoi(line.c_str() + 8);
  }
  return 0;
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// An HTTP/1.0 GET on 127.0.0.1: the body, or nullopt when there is no
// answer or it is not 200.
std::optional<std::string> HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  const size_t body = out.find("\r\n\r\n");
  if (out.rfind("HTTP/1.", 0) != 0 || out.find(" 200 ") > out.find("\r\n") ||
      body == std::string::npos) {
    return std::nullopt;
  }
  return out.substr(body + 4);
}

// The single value of an instant query, nullopt while the result is empty
// (not scraped yet) or the server does not answer.
std::optional<double> Query(int port, const std::string& promql) {
  std::optional<std::string> body = HttpGet(port, "/api/v1/query?query=" + UrlEncode(promql));
  if (!body || body->find("\"status\":\"success\"") == std::string::npos) return std::nullopt;
  static const std::regex value(R"re("value":\[[0-9.e+]+,"([^"]+)"\])re");
  std::smatch m;
  if (!std::regex_search(*body, m, value)) return std::nullopt;
  return std::strtod(m[1].str().c_str(), nullptr);
}

TEST(PrometheusTest, ScrapesCoordinatorAndAgentAndAnswersForACounterAndAHistogram) {
  if (::access(kPrometheus, X_OK) != 0) {
    GTEST_SKIP() << kPrometheus << " is not installed (scripts/install-deps installs it)";
  }
  ClusterOptions options;
  options.agents = 1;
  options.coordinator_flags.insert(options.coordinator_flags.end(),
                                   {"--metrics-listen", "127.0.0.1:0"});
  options.agent_flags = {"--metrics-listen", "127.0.0.1:0"};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  int coordinator_port = 0, agent_port = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        coordinator_port = MetricsPort(cluster.coordinator());
        agent_port = MetricsPort(cluster.agent(0));
        return coordinator_port > 0 && agent_port > 0;
      },
      10s))
      << "no 'metrics PORT' line; coordinator:\n"
      << cluster.coordinator().Stdout() << "agent:\n"
      << cluster.agent(0).Stdout();

  const TempDir& dir = cluster.dir();
  const std::string config = dir.Sub("prometheus.yml");
  std::ofstream(config) << "global:\n"
                           "  scrape_interval: 200ms\n"
                           "  scrape_timeout: 150ms\n"
                           "scrape_configs:\n"
                           "  - job_name: gangway-coordinator\n"
                           "    static_configs:\n"
                           "      - targets: ['127.0.0.1:"
                        << coordinator_port
                        << "']\n"
                           "  - job_name: gangway-agent\n"
                           "    static_configs:\n"
                           "      - targets: ['127.0.0.1:"
                        << agent_port << "']\n";
  const int port = FreePort();
  ASSERT_GT(port, 0);
  std::unique_ptr<Process> prometheus = Process::Spawn(
      {kPrometheus, "--config.file=" + config, "--storage.tsdb.path=" + dir.Sub("prometheus-data"),
       "--web.listen-address=127.0.0.1:" + std::to_string(port),
       "--storage.tsdb.retention.time=1h"},
      dir.Sub("prometheus.out"), dir.Sub("prometheus.log"));
  ASSERT_NE(prometheus, nullptr);

  // Both targets are up: Prometheus parsed what each serves.
  for (const char* job : {"gangway-coordinator", "gangway-agent"}) {
    ASSERT_TRUE(WaitFor(
        [&] {
          return Query(port, std::string("up{job=\"") + job + "\"}") == 1.0 || prometheus->exited();
        },
        30s))
        << job << " is not up in Prometheus; its log:\n"
        << prometheus->Stderr();
    ASSERT_FALSE(prometheus->exited()) << prometheus->Stderr();
  }

  const std::string id = cluster.Submit(
      "name: scraped\nreplicas: 1\nprocsPerNode: 2\nresources:\n  cpus: 1\n  memory: 64Mi\n"
      "command: [sh, -c, 'echo rank $RANK']\n");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 30s));

  // A coordinator counter, a coordinator histogram (its count and a
  // quantile over its buckets), and an agent counter.
  std::optional<double> ended, started, p50, launches;
  EXPECT_TRUE(WaitFor(
      [&] {
        ended = Query(port, "gangway_jobs_ended_total{state=\"succeeded\"}");
        started = Query(port, "gangway_job_submit_to_start_seconds_count");
        p50 = Query(port,
                    "histogram_quantile(0.5, sum by (le) "
                    "(gangway_job_submit_to_start_seconds_bucket))");
        launches = Query(port, "gangway_agent_rank_launches_total{result=\"started\"}");
        return ended == 1.0 && started == 1.0 && p50.has_value() && launches == 2.0;
      },
      30s))
      << "ended=" << ended.value_or(-1) << " started=" << started.value_or(-1)
      << " p50=" << p50.value_or(-1) << " launches=" << launches.value_or(-1);
  EXPECT_GT(p50.value_or(0), 0);
  EXPECT_LT(p50.value_or(1e9), 60);
  // RPCs by method and code went through the interceptor.
  EXPECT_GE(Query(port, "gangway_rpcs_total{method=\"gangway.v1.Control/SubmitJob\",code=\"OK\"}")
                .value_or(0),
            1);

  prometheus->Stop(5s);
  EXPECT_TRUE(prometheus->exited());
}

}  // namespace
}  // namespace gangway::itest
