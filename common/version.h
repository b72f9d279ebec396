// What every binary reports for `--version` (and the agent at
// registration): version, commit and build type, as cmake configured them.
// Header-only on purpose: only the mains include it, so a new commit
// recompiles three files instead of relinking every test.
#pragma once

#include <string>

#include "gangway_build_info.h"

namespace gangway::common {

// "gangway-agent 0.1.0 (commit 87bffc2a1b2c, RelWithDebInfo)".
inline std::string VersionText(const std::string& program) {
  return program + " " GANGWAY_VERSION " (commit " GANGWAY_GIT_COMMIT ", " GANGWAY_BUILD_TYPE ")";
}

}  // namespace gangway::common
