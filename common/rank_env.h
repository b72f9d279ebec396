// The environment a rank sees: torchrun's variables (and PET_* for a job
// that runs one torchrun per node), plus gangway's own.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "gangway/v1/gangway.pb.h"

namespace gangway::common {

using EnvList = std::vector<std::pair<std::string, std::string>>;

// Environment for `rank` of `job`'s current attempt: GangEnvironment, then
// RankOnlyEnvironment. job.master_addr and job.master_port must be set,
// except that master_port may be 0 when the agent of rank 0's node fills
// MASTER_PORT in (see SetMasterPort). The spec's env comes first so
// gangway's variables win on a clash.
EnvList RankEnvironment(const v1::Job& job, const v1::RankStatus& rank,
                        const std::string& rendezvous_endpoint);

// What every rank of the attempt shares: the spec's env, then gangway's
// variables that do not depend on the rank. Sent once per node
// (LaunchGang.env).
EnvList GangEnvironment(const v1::Job& job, const std::string& rendezvous_endpoint);

// What differs between ranks (RANK, LOCAL_RANK, GROUP_RANK, NODE_RANK,
// PET_NODE_RANK, CUDA_VISIBLE_DEVICES); set on top of GangEnvironment.
EnvList RankOnlyEnvironment(const v1::Job& job, const v1::RankStatus& rank);

// A launched rank's environment as the agent builds it: the launch's
// env, then the rank's own on top; sorted by name.
EnvList LaunchEnvironment(const v1::LaunchGang& launch, const v1::RankLaunch& rank);

// A launched rank's command line: its own argv, else the launch's.
std::vector<std::string> LaunchArgv(const v1::LaunchGang& launch, const v1::RankLaunch& rank);

// Sets MASTER_PORT and PET_MASTER_PORT in place.
void SetMasterPort(EnvList& env, int port);

// The command line with `${trial.NAME}` replaced by the job's parameters.
std::vector<std::string> RankArgv(const v1::JobSpec& spec);

}  // namespace gangway::common
