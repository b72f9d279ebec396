#include "cli/sweeps.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/clock.h"

namespace gangway::cli {
namespace {

constexpr auto kRpcTimeout = std::chrono::seconds(10);

int64_t Now() { return common::SystemClock().NowMs(); }

int Fail(Context& ctx, const grpc::Status& s) {
  *ctx.err << "error: " << s.error_message() << "\n";
  return s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                 s.error_code() == grpc::StatusCode::NOT_FOUND ||
                 s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED
             ? 2
             : 1;
}

// get, cancel and watch try the id as a job first and come here when there is
// no such job: if there is no such sweep either, say so of both, not only of
// the sweep ("no sweep named" for a mistyped job id misleads).
int FailLookup(Context& ctx, const std::string& id, const grpc::Status& s) {
  if (s.error_code() != grpc::StatusCode::NOT_FOUND) return Fail(ctx, s);
  *ctx.err << "error: no job or sweep named '" << id << "'\n";
  return 2;
}

std::unique_ptr<v1::Sweeps::Stub> Stub(Context& ctx) { return v1::Sweeps::NewStub(ctx.channel); }

void Print(Context& ctx, const v1::Sweep& sweep) {
  switch (ctx.output) {
    case Output::kJson:
      *ctx.out << ToJson(sweep);
      return;
    case Output::kYaml:
      *ctx.out << ToYaml(sweep);
      return;
    case Output::kName:
      *ctx.out << "sweep/" << sweep.id() << "\n";
      return;
    case Output::kTable:
    case Output::kWide:
      *ctx.out << SweepDetail(sweep, Now());
      return;
  }
}

std::string Params(const v1::Trial& t) {
  std::vector<std::pair<std::string, std::string>> kv(t.params().begin(), t.params().end());
  std::sort(kv.begin(), kv.end());
  std::vector<std::string> parts;
  for (const auto& [k, v] : kv) parts.push_back(absl::StrCat(k, "=", v));
  return absl::StrJoin(parts, " ");
}

struct Counts {
  int running = 0, done = 0, failed = 0;
};

Counts Count(const v1::Sweep& s) {
  Counts c;
  for (const auto& t : s.trials()) {
    switch (t.state()) {
      case v1::TRIAL_STATE_PENDING:
      case v1::TRIAL_STATE_RUNNING:
        ++c.running;
        break;
      case v1::TRIAL_STATE_FAILED:
      case v1::TRIAL_STATE_METRICS_UNAVAILABLE:
        ++c.failed;
        ++c.done;
        break;
      default:
        ++c.done;
        break;
    }
  }
  return c;
}

const v1::Trial* BestTrial(const v1::Sweep& s) {
  for (const auto& t : s.trials()) {
    if (t.number() == s.best_trial()) return &t;
  }
  return nullptr;
}

// A multi-objective sweep's front, in trial number order.
std::vector<const v1::Trial*> FrontTrials(const v1::Sweep& s) {
  std::vector<const v1::Trial*> out;
  for (int64_t n : s.pareto_front()) {
    for (const auto& t : s.trials()) {
      if (t.number() == n) out.push_back(&t);
    }
  }
  return out;
}

bool OnFront(const v1::Sweep& s, int64_t number) {
  return std::find(s.pareto_front().begin(), s.pareto_front().end(), number) !=
         s.pareto_front().end();
}

// "loss=0.1 acc=0.9" for a multi-objective trial.
std::string ObjectiveValues(const v1::SweepSpec& spec, const v1::Trial& t) {
  std::string out;
  for (int i = 0; i < spec.objectives_size() && i < t.objective_values_size(); ++i) {
    absl::StrAppend(&out, i > 0 ? " " : "", spec.objectives(i).metric(), "=",
                    absl::StrFormat("%.6g", t.objective_values(i)));
  }
  return out;
}

// Trials of a multi-objective sweep: the front (marked *) first, then the
// rest, each group by the first objective; one column per objective.
std::string MultiObjectiveTrials(const v1::Sweep& sweep) {
  const auto& spec = sweep.spec();
  std::vector<const v1::Trial*> trials;
  for (const auto& t : sweep.trials()) trials.push_back(&t);
  const bool maximize = spec.objectives(0).maximize();
  std::stable_sort(trials.begin(), trials.end(), [&](const v1::Trial* a, const v1::Trial* b) {
    const bool af = OnFront(sweep, a->number()), bf = OnFront(sweep, b->number());
    if (af != bf) return af;
    const bool av = a->objective_values_size() > 0, bv = b->objective_values_size() > 0;
    if (av != bv) return av;
    if (!av) return a->number() < b->number();
    return maximize ? a->objective_values(0) > b->objective_values(0)
                    : a->objective_values(0) < b->objective_values(0);
  });
  std::vector<std::string> header = {"", "TRIAL", "STATE"};
  for (const auto& o : spec.objectives()) {
    header.push_back(absl::StrCat(o.metric(), o.maximize() ? " (max)" : " (min)"));
  }
  header.push_back("PARAMS");
  header.push_back("JOB");
  std::vector<std::vector<std::string>> rows{header};
  for (const v1::Trial* t : trials) {
    std::vector<std::string> row = {OnFront(sweep, t->number()) ? "*" : "",
                                    absl::StrCat(t->number()), TrialState(t->state())};
    for (int i = 0; i < spec.objectives_size(); ++i) {
      row.push_back(i < t->objective_values_size() ? absl::StrFormat("%.6g", t->objective_values(i))
                                                   : "-");
    }
    row.push_back(Params(*t));
    row.push_back(t->job_id());
    rows.push_back(std::move(row));
  }
  return absl::StrCat("PARETO FRONT ", sweep.pareto_front_size(), " trials (marked *)\n\n",
                      Table(rows));
}

}  // namespace

std::string SweepState(v1::SweepState state) {
  switch (state) {
    case v1::SWEEP_STATE_RUNNING:
      return "Running";
    case v1::SWEEP_STATE_SUCCEEDED:
      return "Succeeded";
    case v1::SWEEP_STATE_FAILED:
      return "Failed";
    case v1::SWEEP_STATE_CANCELLED:
      return "Cancelled";
    default:
      return "Unknown";
  }
}

std::string TrialState(v1::TrialState state) {
  switch (state) {
    case v1::TRIAL_STATE_PENDING:
      return "Pending";
    case v1::TRIAL_STATE_RUNNING:
      return "Running";
    case v1::TRIAL_STATE_SUCCEEDED:
      return "Succeeded";
    case v1::TRIAL_STATE_FAILED:
      return "Failed";
    case v1::TRIAL_STATE_EARLY_STOPPED:
      return "EarlyStopped";
    case v1::TRIAL_STATE_METRICS_UNAVAILABLE:
      return "MetricsUnavailable";
    case v1::TRIAL_STATE_CANCELLED:
      return "Cancelled";
    default:
      return "Unknown";
  }
}

std::string SweepDetail(const v1::Sweep& sweep, int64_t now_ms) {
  const auto& spec = sweep.spec();
  const Counts c = Count(sweep);
  std::string out =
      Table({{"ID", "STATE", "TRIALS", "RUNNING", "FAILED", "ALGORITHM", "AGE", "REASON"},
             {sweep.id(), SweepState(sweep.state()),
              absl::StrCat(sweep.trials_size(), "/", spec.max_trials()), absl::StrCat(c.running),
              absl::StrCat(c.failed), spec.algorithm().name(), Age(now_ms - sweep.create_time_ms()),
              sweep.reason()}});
  out += absl::StrCat("OWNER ", sweep.owner().empty() ? "-" : sweep.owner(), "\n");
  if (sweep.trials_size() == 0) return out;
  if (spec.objectives_size() >= 2) return out + MultiObjectiveTrials(sweep);
  std::vector<const v1::Trial*> trials;
  for (const auto& t : sweep.trials()) trials.push_back(&t);
  const bool maximize = spec.objective().maximize();
  // Best first; trials without an objective after, in number order.
  std::stable_sort(trials.begin(), trials.end(), [&](const v1::Trial* a, const v1::Trial* b) {
    const bool av = a->has_objective() && std::isfinite(a->objective());
    const bool bv = b->has_objective() && std::isfinite(b->objective());
    if (av != bv) return av;
    if (!av) return a->number() < b->number();
    return maximize ? a->objective() > b->objective() : a->objective() < b->objective();
  });
  std::vector<std::vector<std::string>> rows{
      {"", "TRIAL", "STATE",
       absl::StrCat(spec.objective().metric(), maximize ? " (max)" : " (min)"), "PARAMS", "JOB"}};
  for (const v1::Trial* t : trials) {
    rows.push_back({t->number() == sweep.best_trial() ? "*" : "", absl::StrCat(t->number()),
                    TrialState(t->state()),
                    t->has_objective() ? absl::StrFormat("%.6g", t->objective()) : "-", Params(*t),
                    t->job_id()});
  }
  // pbt: each trial's parent (whose checkpoint it started from) and the
  // lineage back to its first generation.
  if (spec.algorithm().name() == "pbt") {
    std::map<int64_t, int64_t> parent;
    for (const auto& t : sweep.trials()) parent[t.number()] = t.parent_trial();
    rows[0].insert(rows[0].begin() + 2, {"PARENT", "LINEAGE"});
    for (size_t r = 1; r < rows.size(); ++r) {
      const int64_t n = trials[r - 1]->number();
      std::vector<std::string> chain = {absl::StrCat(n)};
      for (int64_t p = parent[n]; p > 0 && chain.size() < 1000; p = parent[p]) {
        chain.push_back(absl::StrCat(p));
      }
      std::reverse(chain.begin(), chain.end());
      rows[r].insert(rows[r].begin() + 2,
                     {parent[n] > 0 ? absl::StrCat(parent[n]) : "-", absl::StrJoin(chain, ">")});
    }
  }
  return out + "\n" + Table(rows);
}

int SubmitSweepYaml(Context& ctx, const std::string& file, const std::string& yaml) {
  v1::SubmitSweepRequest req;
  req.set_yaml(yaml);
  v1::Sweep sweep;
  grpc::ClientContext rpc;
  rpc.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  grpc::Status s = Stub(ctx)->SubmitSweep(&rpc, req, &sweep);
  if (!s.ok()) {
    *ctx.err << file << ": ";
    return Fail(ctx, s);
  }
  if (ctx.output == Output::kTable || ctx.output == Output::kWide) {
    *ctx.out << "sweep/" << sweep.id() << " submitted\n";
  } else {
    Print(ctx, sweep);
  }
  return 0;
}

namespace {

grpc::Status Fetch(Context& ctx, const std::string& id, v1::Sweep* sweep) {
  v1::GetSweepRequest req;
  req.set_id(id);
  grpc::ClientContext rpc;
  rpc.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  return Stub(ctx)->GetSweep(&rpc, req, sweep);
}

}  // namespace

int GetSweep(Context& ctx, const std::string& id) {
  v1::Sweep sweep;
  if (grpc::Status s = Fetch(ctx, id, &sweep); !s.ok()) return FailLookup(ctx, id, s);
  Print(ctx, sweep);
  return 0;
}

namespace {

// Every non-dominated trial: a line each, or a list in JSON / YAML.
int BestFront(Context& ctx, const v1::Sweep& sweep) {
  std::vector<const v1::Trial*> front = FrontTrials(sweep);
  if (front.empty()) {
    *ctx.err << "error: sweep " << sweep.id() << " has no completed trial yet\n";
    return 1;
  }
  if (ctx.output == Output::kJson) {
    *ctx.out << "[";
    for (size_t i = 0; i < front.size(); ++i) {
      std::string json = ToJson(*front[i]);
      while (!json.empty() && json.back() == '\n') json.pop_back();
      *ctx.out << (i > 0 ? ",\n" : "\n") << json;
    }
    *ctx.out << "\n]\n";
    return 0;
  }
  if (ctx.output == Output::kYaml) {
    for (const v1::Trial* t : front) {
      std::string yaml = ToYaml(*t);
      // Each trial as an item of one list.
      std::string item;
      bool first = true;
      for (absl::string_view line : absl::StrSplit(yaml, '\n')) {
        if (line.empty()) continue;
        absl::StrAppend(&item, first ? "- " : "  ", line, "\n");
        first = false;
      }
      *ctx.out << item;
    }
    return 0;
  }
  for (const v1::Trial* t : front) {
    *ctx.out << "trial " << t->number() << ": " << ObjectiveValues(sweep.spec(), *t) << "  "
             << Params(*t) << "\n";
  }
  return 0;
}

}  // namespace

int Best(Context& ctx, const std::string& id) {
  v1::Sweep sweep;
  if (grpc::Status s = Fetch(ctx, id, &sweep); !s.ok()) return Fail(ctx, s);
  if (sweep.spec().objectives_size() >= 2) return BestFront(ctx, sweep);
  const v1::Trial* best = BestTrial(sweep);
  if (!best) {
    *ctx.err << "error: sweep " << id << " has no completed trial yet\n";
    return 1;
  }
  if (ctx.output == Output::kJson || ctx.output == Output::kYaml) {
    v1::Trial out = *best;
    *ctx.out << (ctx.output == Output::kJson ? ToJson(out) : ToYaml(out));
    return 0;
  }
  *ctx.out << "trial " << best->number() << ": " << sweep.spec().objective().metric() << "="
           << absl::StrFormat("%.6g", best->objective()) << "  " << Params(*best) << "\n";
  return 0;
}

int WatchSweep(Context& ctx, const std::string& id, bool terminal) {
  v1::WatchSweepRequest req;
  req.set_id(id);
  grpc::ClientContext rpc;
  auto stub = Stub(ctx);
  auto reader = stub->WatchSweep(&rpc, req);
  v1::Sweep sweep;
  std::string last;
  bool any = false;
  while (reader->Read(&sweep)) {
    any = true;
    if (ctx.output == Output::kJson) {
      *ctx.out << ToJson(sweep);
      continue;
    }
    const Counts c = Count(sweep);
    const int max = std::max(1, sweep.spec().max_trials());
    const v1::Trial* best = BestTrial(sweep);
    std::string best_text =
        best ? absl::StrFormat("best %s=%.6g (trial %d)", sweep.spec().objective().metric(),
                               best->objective(), best->number())
             : "best -";
    if (sweep.spec().objectives_size() >= 2) {
      best_text = absl::StrCat("pareto front ", sweep.pareto_front_size(), " trials");
    }
    std::string line =
        absl::StrCat(sweep.id(), "  ", SweepState(sweep.state()), "  ", c.done, "/", max, " done, ",
                     c.running, " running, ", c.failed, " failed  ", best_text);
    if (line == last) continue;
    last = line;
    if (terminal) {
      const int width = 24;
      const int filled = std::min(width, c.done * width / max);
      *ctx.out << "\r\033[K[" << std::string(filled, '#') << std::string(width - filled, '.')
               << "] " << line << std::flush;
    } else {
      *ctx.out << Age(Now() - sweep.create_time_ms()) << "  " << line << "\n" << std::flush;
    }
  }
  if (terminal && any) *ctx.out << "\n";
  grpc::Status s = reader->Finish();
  if (!s.ok()) return FailLookup(ctx, id, s);
  if (!any || sweep.state() == v1::SWEEP_STATE_RUNNING) {
    *ctx.err << "error: the watch ended before the sweep did\n";
    return 1;
  }
  if (ctx.output != Output::kJson) *ctx.out << sweep.reason() << "\n";
  return sweep.state() == v1::SWEEP_STATE_SUCCEEDED ? 0 : 1;
}

int CancelSweep(Context& ctx, const std::string& id) {
  v1::CancelSweepRequest req;
  req.set_id(id);
  v1::Sweep sweep;
  grpc::ClientContext rpc;
  rpc.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  grpc::Status s = Stub(ctx)->CancelSweep(&rpc, req, &sweep);
  if (!s.ok()) return FailLookup(ctx, id, s);
  *ctx.out << "sweep/" << sweep.id() << " cancelled\n";
  return 0;
}

int UpdateSweep(Context& ctx, const std::string& id, int parallel, int max_trials, int max_failed) {
  v1::UpdateSweepRequest req;
  req.set_id(id);
  req.set_parallel_trials(parallel);
  req.set_max_trials(max_trials);
  req.set_max_failed_trials(max_failed);
  v1::Sweep sweep;
  grpc::ClientContext rpc;
  rpc.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  grpc::Status s = Stub(ctx)->UpdateSweep(&rpc, req, &sweep);
  if (!s.ok()) return Fail(ctx, s);
  Print(ctx, sweep);
  return 0;
}

int ListSweeps(Context& ctx, bool all) {
  v1::ListSweepsRequest req;
  req.set_all(all);
  v1::ListSweepsResponse resp;
  grpc::ClientContext rpc;
  rpc.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  grpc::Status s = Stub(ctx)->ListSweeps(&rpc, req, &resp);
  if (!s.ok()) return Fail(ctx, s);
  if (ctx.output == Output::kJson) {
    *ctx.out << ToJson(resp);
    return 0;
  }
  if (ctx.output == Output::kYaml) {
    *ctx.out << ToYaml(resp);
    return 0;
  }
  if (resp.sweeps_size() == 0) return 0;
  std::vector<std::vector<std::string>> rows{{"SWEEP", "STATE", "TRIALS", "BEST", "AGE", "REASON"}};
  for (const auto& sw : resp.sweeps()) {
    const v1::Trial* best = BestTrial(sw);
    rows.push_back({sw.id(), SweepState(sw.state()),
                    absl::StrCat(sw.trials_size(), "/", sw.spec().max_trials()),
                    best ? absl::StrFormat("%.6g", best->objective()) : "-",
                    Age(Now() - sw.create_time_ms()), sw.reason()});
  }
  *ctx.out << Table(rows) << "\n";
  return 0;
}

int Metrics(Context& ctx, const std::string& job_id, const std::string& name) {
  v1::GetMetricsRequest req;
  req.set_job_id(job_id);
  req.set_name(name);
  // Every page, each a call with its own deadline; one answer holds the
  // points of all of them.
  v1::GetMetricsResponse resp;
  do {
    v1::GetMetricsResponse page;
    grpc::ClientContext rpc;
    rpc.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
    grpc::Status s = Stub(ctx)->GetMetrics(&rpc, req, &page);
    if (!s.ok()) return Fail(ctx, s);
    for (auto& p : *page.mutable_points()) *resp.add_points() = std::move(p);
    req.set_page_token(page.next_page_token());
  } while (!req.page_token().empty());
  if (ctx.output == Output::kJson || ctx.output == Output::kYaml) {
    *ctx.out << (ctx.output == Output::kJson ? ToJson(resp) : ToYaml(resp));
    return 0;
  }
  std::vector<std::vector<std::string>> rows{{"NAME", "STEP", "VALUE"}};
  for (const auto& p : resp.points()) {
    rows.push_back({p.name(), p.step() < 0 ? "-" : absl::StrCat(p.step()),
                    p.raw().empty() ? absl::StrFormat("%.6g", p.value()) : p.raw()});
  }
  *ctx.out << Table(rows);
  return 0;
}

}  // namespace gangway::cli
