// The environment a rank sees: torchrun's variables (and PET_* for a job
// that runs one torchrun per node), plus gangway's own.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "gangway/v1/gangway.pb.h"

namespace gangway::common {

using EnvList = std::vector<std::pair<std::string, std::string>>;

// Environment for `rank` of `job`'s current attempt. job.master_addr and
// job.master_port must be set, except that master_port may be 0 when the
// agent of rank 0's node fills MASTER_PORT in (see SetMasterPort).
// The spec's env comes first so gangway's variables win on a clash.
EnvList RankEnvironment(const v1::Job& job, const v1::RankStatus& rank,
                        const std::string& rendezvous_endpoint);

// Sets MASTER_PORT and PET_MASTER_PORT in place.
void SetMasterPort(EnvList& env, int port);

// The command line with `${trial.NAME}` replaced by the job's parameters.
std::vector<std::string> RankArgv(const v1::JobSpec& spec);

}  // namespace gangway::common
