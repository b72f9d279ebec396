// Sweeps: Katib-style experiments run as trial jobs.
//
// Thread: the core's. The controller owns each sweep's record and its tuner
// (tuner/, an incremental ask/tell object); it creates trial jobs and stops
// them through TrialHost, and the core tells it when a trial job ends and
// what metrics its rank 0 reported.
//
//   Running ──▶ Succeeded  (maxTrials done, grid exhausted, or goal reached)
//      │  ▲───── (maxTrials raised on a finished sweep: it runs on, history kept)
//      ├──────▶ Failed     (more than maxFailedTrials trials failed)
//      └──────▶ Cancelled
//
// A trial's objective is its objective metric's series reduced as the spec
// says (last, best, min, max). A trial that ends without one is
// MetricsUnavailable and counts as failed; one the early-stopping rule
// stopped is EarlyStopped, and its last value is told to the tuner.
//
// After a coordinator restart the tuner is rebuilt by replaying every trial
// in order (Register, then Tell or TellFailed), so no completed trial is lost
// or proposed again, and running trials continue with their metric series
// reloaded from the store.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/sweep_spec.h"
#include "coordinator/sweep_tuner_options.h"
#include "gangway/v1/gangway.pb.h"
#include "tuner/tuner.h"

namespace gangway::coordinator {

// What the controller needs from the core.
class TrialHost {
 public:
  virtual ~TrialHost() = default;
  // Creates a Pending job for a trial; returns its id.
  virtual std::string CreateTrialJob(v1::JobSpec spec, const std::string& sweep_id) = 0;
  // Stops a trial job (it ends Cancelled); `reason` is shown on the job.
  virtual void StopTrialJob(const std::string& job_id, const std::string& reason) = 0;
  virtual int64_t NowMs() const = 0;
  virtual int64_t NextSeq() = 0;
  // True while a trial's job has not reached a terminal state.
  virtual bool TrialJobLive(const std::string& job_id) const = 0;
};

class SweepController {
 public:
  explicit SweepController(TrialHost* host);
  ~SweepController();

  // Rebuilds tuners from stored sweeps. `metrics_of` loads a job's stored
  // points (for the running trials' series).
  absl::Status Recover(
      std::vector<v1::Sweep> sweeps,
      const std::function<absl::StatusOr<std::vector<v1::MetricPoint>>(const std::string&)>&
          metrics_of);

  // `owner` is recorded on the sweep and each of its trial jobs.
  absl::StatusOr<v1::Sweep> Submit(const v1::SubmitSweepRequest& request,
                                   const std::string& owner = "");
  // The sweep's owner, "" when there is no such sweep.
  std::string Owner(const std::string& id) const;
  absl::StatusOr<v1::Sweep> Get(const std::string& id) const;
  std::vector<v1::Sweep> List(bool all) const;
  // Every sweep, finished ones too, without copying (for /metrics).
  void ForEachSweep(const std::function<void(const v1::Sweep&)>& fn) const;
  absl::StatusOr<v1::Sweep> Cancel(const std::string& id);
  absl::StatusOr<v1::Sweep> Update(const v1::UpdateSweepRequest& request);
  bool Has(const std::string& id) const { return sweeps_.count(id) > 0; }

  // The collector trial jobs of `sweep_id` run with (for LaunchGang).
  std::optional<v1::MetricsCollector> CollectorFor(const std::string& sweep_id) const;

  // Rank 0's metrics of a trial job. Returns true when the early-stopping
  // rule says the trial should stop (it is then being stopped).
  bool OnMetrics(const v1::Job& job, const std::vector<v1::MetricPoint>& points);
  // A trial job reached a terminal state.
  void OnTrialJobEnded(const v1::Job& job);

  // Creates trials up to parallelTrials and ends sweeps that are done. Called
  // once per loop turn, before scheduling.
  void Reconcile();

  // Sweeps changed since ClearChanged (to store and to tell watchers).
  std::vector<const v1::Sweep*> Changed();
  void ClearChanged() { changed_.clear(); }
  // Drops a sweep that was never stored (its submission is refused).
  void Forget(const std::string& id);

 private:
  struct Rec;
  Rec* Find(const std::string& id);
  void MarkChanged(Rec& rec);
  void Finish(Rec& rec, v1::SweepState state, std::string reason);
  void Fill(Rec& rec);
  void StartTrial(Rec& rec, const tuner::Proposal& proposal);
  void TrialDone(Rec& rec, v1::Trial& trial, const v1::Job& job);
  void UpdateBest(Rec& rec);
  absl::StatusOr<std::unique_ptr<Rec>> MakeRec(v1::Sweep sweep);

  TrialHost* host_;
  std::map<std::string, std::unique_ptr<Rec>> sweeps_;
  std::map<std::string, std::string> job_to_sweep_;
  std::set<std::string> changed_;
};

// A parameter value as text, as trials and jobs see it (doubles with 15
// significant digits, so they stay inside their bounds).
std::string ParamText(const tuner::ParameterValue& value);
// params map (text, as jobs see them) back to the tuner's typed values.
absl::StatusOr<tuner::Assignment> AssignmentOf(
    const tuner::SearchSpace& space, const google::protobuf::Map<std::string, std::string>& params);

}  // namespace gangway::coordinator
