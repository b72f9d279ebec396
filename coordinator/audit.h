// The audit log: one JSON line per mutating call (submit, cancel, update,
// node registration, study creation) and per refused call, with the
// caller's identity, the target and the outcome.
//
//   {"time":"2026-12-01T14:03:05.123Z","who":"user:alice","method":
//    "gangway.v1.Control/CancelJob","target":"train-3","code":"OK","message":""}
//
// The file is created 0600 in the state directory and rotated once it
// passes max_bytes (the previous one kept as FILE.1), so it is bounded.
// Each line also goes to the coordinator's log.
//
// Thread-safe: gRPC's threads and the loop record at once.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gangway::coordinator {

class AuditLog {
 public:
  // An empty path logs to the coordinator's log only.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path,
                                                        int64_t max_bytes = int64_t{64} << 20);

  void Record(absl::string_view who, absl::string_view method, absl::string_view target,
              const absl::Status& outcome);

 private:
  AuditLog(std::string path, int64_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) {}
  absl::Status OpenFile();  // holds mu_

  const std::string path_;
  const int64_t max_bytes_;
  std::mutex mu_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_{nullptr, &std::fclose};  // mu_
  int64_t bytes_ = 0;                                                            // mu_
};

}  // namespace gangway::coordinator
