#include "coordinator/audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/log.h"

namespace gangway::coordinator {
namespace {

// JSON string escaping for the few fields we write.
std::string Quote(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path,
                                                         int64_t max_bytes) {
  std::unique_ptr<AuditLog> log(new AuditLog(path, max_bytes));
  if (!path.empty()) {
    std::lock_guard lock(log->mu_);
    if (absl::Status s = log->OpenFile(); !s.ok()) return s;
  }
  return log;
}

absl::Status AuditLog::OpenFile() {
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("audit log: cannot open '", path_, "': ", std::strerror(errno)));
  }
  struct stat st;
  bytes_ = ::fstat(fd, &st) == 0 ? st.st_size : 0;
  file_.reset(::fdopen(fd, "a"));
  if (file_ == nullptr) {
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("audit log: fdopen '", path_, "'"));
  }
  return absl::OkStatus();
}

void AuditLog::Record(absl::string_view who, absl::string_view method, absl::string_view target,
                      const absl::Status& outcome) {
  const std::string code = absl::StatusCodeToString(outcome.code());
  GW_LOG_INFO("audit who={} method={} target={} code={} {}", std::string(who), std::string(method),
              std::string(target), code, std::string(outcome.message()));
  if (path_.empty()) return;
  const std::string line = absl::StrCat(
      "{\"time\":",
      Quote(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone())),
      ",\"who\":", Quote(who), ",\"method\":", Quote(method), ",\"target\":", Quote(target),
      ",\"code\":", Quote(code), ",\"message\":", Quote(outcome.message()), "}\n");
  std::lock_guard lock(mu_);
  if (file_ != nullptr && bytes_ + static_cast<int64_t>(line.size()) > max_bytes_) {
    file_.reset();
    std::rename(path_.c_str(), (path_ + ".1").c_str());
    if (absl::Status s = OpenFile(); !s.ok()) GW_LOG_ERROR("{}", std::string(s.message()));
  }
  if (file_ == nullptr) return;
  // Flushed per line: an audit record must not sit in a buffer at a crash.
  if (std::fwrite(line.data(), 1, line.size(), file_.get()) == line.size() &&
      std::fflush(file_.get()) == 0) {
    bytes_ += static_cast<int64_t>(line.size());
  }
}

}  // namespace gangway::coordinator
