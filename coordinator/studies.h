// Studies: the tuner's ask/tell for programs that run their own trials
// (gangway.v1.Studies), so an external loop can use gangway's samplers
// without running trials through gangway.
//
// Thread: the core's loop. Studies live in memory only: a study is as long
// as the program driving it, and a coordinator restart ends it (the caller
// creates it again and replays its results with Tell).
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "gangway/v1/gangway.pb.h"
#include "tuner/tuner.h"

namespace gangway::coordinator {

class Studies {
 public:
  // At most this many studies at once.
  static constexpr size_t kMaxStudies = 10'000;

  absl::StatusOr<v1::Study> Create(const v1::CreateStudyRequest& request);
  absl::StatusOr<v1::AskResponse> Ask(const v1::AskRequest& request);
  absl::StatusOr<v1::TellResponse> Tell(const v1::TellRequest& request);

 private:
  struct Entry {
    std::string name;
    tuner::Tuner tuner;
  };
  std::map<std::string, Entry> studies_;
  int64_t next_ = 1;
};

}  // namespace gangway::coordinator
