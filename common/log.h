// One logging facade. Lines carry ids as key=value fields (job=, node=,
// rank=) so one grep follows one job across coordinator and agents.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace gangway::common {

// level: trace|debug|info|warn|error|off. Logs go to stderr.
void SetupLogging(std::string_view level);

}  // namespace gangway::common

#define GW_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define GW_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define GW_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
#define GW_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
