// A fixture for tests of what the core keeps, run on both stores: the test
// parameter picks SQLite in a temporary directory (true) or the FakeStore
// (false), and a restart reopens the same SQLite file.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "common/clock.h"
#include "coordinator/core.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator::fakes {

class CoreOnStoresTest : public ::testing::TestWithParam<bool> {
 public:
  // For INSTANTIATE_TEST_SUITE_P: "Sqlite" or "Fake".
  static std::string StoreName(const ::testing::TestParamInfo<bool>& info) {
    return info.param ? "Sqlite" : "Fake";
  }

 protected:
  CoreOnStoresTest() {
    if (GetParam()) {
      absl::Status error;
      sqlite_ = dir_.Reopen(&error);
      EXPECT_NE(sqlite_, nullptr) << error;
    }
  }
  Store* store() { return GetParam() ? static_cast<Store*>(sqlite_) : &fake_; }

  // A new core on store(), recovered, with `reg` registered as session 1;
  // what it sent on the way is dropped.
  void StartCore(const CoreOptions& options, const v1::Register& reg) {
    core_ = std::make_unique<Core>(store(), &sink_, &clock_, options);
    ASSERT_TRUE(core_->Recover().ok());
    EXPECT_TRUE(core_->OnRegister(1, reg).ok());
    core_->Settle();
    sink_.Take();
  }

  // A coordinator killed: the core dropped, the SQLite file opened again for
  // the next StartCore.
  void DropCore() {
    core_.reset();
    if (GetParam()) {
      absl::Status error;
      sqlite_ = dir_.Reopen(&error);
      ASSERT_NE(sqlite_, nullptr) << error;
    }
  }

  // Submits a one-rank job ("m") and reports its gang started on session 1;
  // its id, empty when it was refused.
  std::string SubmitStarted() {
    v1::SubmitJobRequest req;
    req.set_yaml("name: m\ncommand: [x]\n");
    std::optional<absl::StatusOr<v1::Job>> answer;
    core_->Submit(req, [&](absl::StatusOr<v1::Job> job) { answer = std::move(job); });
    core_->Settle();
    EXPECT_TRUE(answer && answer->ok());
    for (const Sent& s : sink_.Take()) {
      if (s.msg.has_launch()) core_->OnAgentMessage(1, GangStartedMessage(s.msg.launch(), 29500));
    }
    core_->Settle();
    sink_.Take();
    return answer && answer->ok() ? (*answer)->id() : "";
  }

  SqliteDir dir_;
  SqliteStore* sqlite_ = nullptr;
  FakeStore fake_;
  RecordingSink sink_;
  common::FakeClock clock_;
  std::unique_ptr<Core> core_;
};

}  // namespace gangway::coordinator::fakes
