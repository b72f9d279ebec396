// Ranks' metrics on their way to the coordinator: followed in their files,
// sent in bounded batches, kept until the coordinator acknowledges them and
// sent again on the next session; a rank's exit waits for its last points.
// Part of Agent::Impl (agent_impl.h).
#include <algorithm>
#include <chrono>

#include "agent/agent_impl.h"

namespace gangway::agent {

// Where a restarted agent resumes the rank's metrics: past what was sent.
void Agent::Impl::SaveMetricsOffset(const RankKey& key, const MetricsTail& tail) {
  if (!keepers) return;
  auto rec = records.find(key);
  if (rec == records.end() || rec->second.keeper_id.empty()) return;
  int64_t& saved = saved_metrics_offset[key];
  // Not past what the coordinator has not acknowledged.
  const int64_t resume =
      std::min(tail.resume_offset(), outbox.OldestOffset(key).value_or(tail.resume_offset()));
  if (saved == resume) return;
  saved = resume;
  keepers->SaveMetricsOffset(rec->second.keeper_id, saved);
}

v1::AgentMessage Agent::Impl::ExitedMessage(const RankKey& key, const Record& rec) {
  v1::AgentMessage msg;
  v1::RankRecord* r = msg.mutable_rank_exited()->mutable_rank();
  r->set_job_id(std::get<0>(key));
  r->set_attempt(std::get<1>(key));
  r->set_rank(std::get<2>(key));
  r->set_pid(rec.pid);
  r->set_exited(true);
  r->set_exit_code(rec.exit_code);
  return msg;
}

// Right after a registration that reported them as running: the metrics
// of ranks that exited while there was no session, then their exits.
void Agent::Impl::SendWithheldExits() {
  // First what the last coordinator never acknowledged (it may have died
  // before storing it), in order; it drops what it already has.
  for (const v1::AgentMessage& msg : outbox.Unacked()) Write(msg);
  for (auto it = tails.begin(); it != tails.end();) {
    auto rec = records.find(it->first);
    if (rec == records.end()) {  // forgotten meanwhile
      it = tails.erase(it);
      continue;
    }
    if (!rec->second.exited) {
      ++it;
      continue;
    }
    SendMetrics(it->first, it->second, /*drain=*/true);
    withheld.insert(it->first);
    saved_metrics_offset.erase(it->first);
    it = tails.erase(it);
  }
  for (const RankKey& key : withheld) {
    auto rec = records.find(key);
    if (rec != records.end() && rec->second.exited) Write(ExitedMessage(key, rec->second));
  }
  withheld.clear();
}

void Agent::Impl::SendMetrics(const RankKey& key, MetricsTail& tail, bool drain) {
  // Without a session the lines stay in the file for later: read now,
  // they would be dropped.
  if (!stream) return;
  const int64_t from = tail.resume_offset();
  std::vector<v1::MetricPoint> points = drain ? tail.Drain(NowMs()) : tail.Poll(NowMs());
  // In messages well under gRPC's limit, in order: one refused message
  // lost a burst's last points, the trial's objective among them.
  for (const v1::AgentMessage& msg :
       MetricsMessages(std::get<0>(key), std::get<1>(key), std::get<2>(key), std::move(points))) {
    Write(msg);
    if (coordinator_acks_metrics) outbox.Sent(msg, from);
  }
}

// One timer for every followed rank; it stops when none is left. A
// tail behind its log is read again at once: its log is rotated at a cap,
// and lines left unread too long are rotated away.
void Agent::Impl::ScheduleMetricsPoll(bool soon) {
  if (metrics_polling) return;
  metrics_polling = true;
  metrics_timer.expires_after(std::chrono::milliseconds(soon ? 1 : options.metrics_poll_ms));
  metrics_timer.async_wait([this](const boost::system::error_code& ec) {
    metrics_polling = false;
    if (ec) return;
    bool behind = false;
    for (auto& [key, tail] : tails) {
      SendMetrics(key, tail);
      SaveMetricsOffset(key, tail);
      behind = behind || (stream && tail.behind() > 0);
    }
    if (!tails.empty()) ScheduleMetricsPoll(behind);
  });
}

}  // namespace gangway::agent
