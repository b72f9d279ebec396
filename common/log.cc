#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <string>

namespace gangway::common {

void SetupLogging(std::string_view level) {
  auto logger = spdlog::stderr_color_mt("gangway");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ %v");
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
}

}  // namespace gangway::common
