#include "agent/logs.h"

#include <algorithm>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "agent/rank_log.h"

namespace gangway::agent {

v1::AgentMessage ReadLogPage(const std::string& state_dir, const std::string& node,
                             const v1::ReadLog& req) {
  v1::AgentMessage msg;
  v1::LogData* out = msg.mutable_log_data();
  out->set_request_id(req.request_id());
  out->set_offset(req.offset());
  const std::string path = Agent::LogPath(state_dir, req.job_id(), req.attempt(), req.rank());
  absl::StatusOr<RankLogRead> read =
      ReadRankLog(path, std::max<int64_t>(0, req.offset()),
                  std::clamp<int64_t>(req.max_bytes(), 1, kMaxLogPageBytes));
  if (absl::IsNotFound(read.status())) {
    out->set_error(absl::StrCat("no log for job ", req.job_id(), " attempt ", req.attempt(),
                                " rank ", req.rank(), " on node ", node));
  } else if (!read.ok()) {
    out->set_error(std::string(read.status().message()));
  } else {
    out->set_offset(read->offset);
    out->set_data(std::move(read->data));
  }
  return msg;
}

}  // namespace gangway::agent
