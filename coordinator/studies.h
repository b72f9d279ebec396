// Studies: the tuner's ask/tell for programs that run their own trials
// (gangway.v1.Studies), so an external loop can use gangway's samplers
// without running trials through gangway.
//
// Thread: the core's loop. Studies live in memory only: a study is as long
// as the program driving it, and a coordinator restart ends it (the caller
// creates it again and replays its results with Tell).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "coordinator/ask_pace.h"
#include "gangway/v1/gangway.pb.h"
#include "tuner/tuner.h"

namespace gangway::coordinator {

class Studies {
 public:
  // At most this many studies at once.
  static constexpr size_t kMaxStudies = 10'000;
  // A study's name (its id is the name and a number).
  static constexpr size_t kMaxNameBytes = 63;
  // Proposals per Ask.
  static constexpr int32_t kMaxAskCount = 1000;
  // Trials a study may hand out over its life, as a sweep's maxTrials bound:
  // each is kept in memory with its history.
  static constexpr int64_t kMaxTrials = 100'000;
  // Intermediate values a study keeps over its life (each is kept for the
  // early-stopping rule).
  static constexpr int64_t kMaxIntermediate = 1'000'000;
  // Steps of intermediate values: 0..2^53, as metric steps.
  static constexpr int64_t kMaxStep = int64_t{1} << 53;

  absl::StatusOr<v1::Study> Create(const v1::CreateStudyRequest& request);
  absl::StatusOr<v1::AskResponse> Ask(const v1::AskRequest& request);
  absl::StatusOr<v1::TellResponse> Tell(const v1::TellRequest& request);
  absl::StatusOr<v1::BestTrialsResponse> BestTrials(const v1::BestTrialsRequest& request);

  // A monotonic clock in ms: with one, an Ask hands out fewer than `count`
  // proposals (at least one) when the study's last ones took long
  // (AskPace); without (tests), all of them.
  void set_clock(std::function<int64_t()> now_ms) { now_ms_ = std::move(now_ms); }

 private:
  struct Entry {
    std::string name;
    tuner::Tuner tuner;
    int64_t asked = 0;         // trials handed out
    int64_t intermediate = 0;  // intermediate values told
    AskPace pace;
  };
  std::function<int64_t()> now_ms_;
  absl::StatusOr<Entry*> Find(const std::string& id);

  std::map<std::string, Entry> studies_;
  int64_t next_ = 1;
};

}  // namespace gangway::coordinator
