// Rank keepers, exec'd from the real binary (gangway-agent keeper) and
// forked by a KeeperLauncher: exits
// come back through them, ranks outlive the Keepers object (an agent
// process) and are adopted by the next one, the lease stops ranks with no
// agent around, and a killed keeper takes its rank with it.
#include "agent/keepers.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "agent/keeper.h"
#include "agent/rank_log.h"
#include "boost/asio/io_context.hpp"
#include "gangway/v1/keeper.pb.h"

namespace gangway::agent {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string KeeperExe() { return std::string(GANGWAY_BINARY_DIR) + "/agent/gangway-agent"; }

// Running and not a zombie (nobody may reap an orphan in a container).
bool Alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

template <typename Cond>
bool WaitFor(Cond cond, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

class KeepersTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gangway-keepers-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    if (GetParam()) {
      absl::StatusOr<std::unique_ptr<KeeperLauncher>> launcher = KeeperLauncher::Start();
      ASSERT_TRUE(launcher.ok()) << launcher.status();
      launcher_ = *std::move(launcher);
    }
  }
  void TearDown() override {
    keepers_.reset();
    // Whatever a failed test left: keepers first (their ranks die with them).
    for (const auto& e : fs::directory_iterator(Dir())) {
      if (e.path().extension() != ".rec") continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::stringstream buf;
      buf << in.rdbuf();
      v1::KeeperRecord rec;
      if (rec.ParseFromString(buf.str()) && rec.keeper_pid() > 0) {
        ::kill(static_cast<pid_t>(rec.keeper_pid()), SIGKILL);
      }
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string Dir() const { return dir_ + "/keepers"; }

  // A fresh Keepers, as a (re)started agent makes one.
  Keepers& Start() {
    keepers_.reset();
    exits_.clear();
    keepers_ = std::make_unique<Keepers>(
        io_, KeepersOptions{KeeperExe(), Dir(), {}, launcher_.get(), log_max_bytes_},
        [this](const std::string& id, pid_t, const ExitInfo& info) { exits_[id] = info; });
    return *keepers_;
  }

  LaunchRequest Shell(const std::string& script) {
    LaunchRequest req;
    req.argv = {"/bin/sh", "-c", script};
    req.log_path = dir_ + "/rank.log";
    return req;
  }

  v1::KeeperRecord Tag(int rank = 0) {
    v1::KeeperRecord tag;
    tag.set_job_id("job");
    tag.set_attempt(1);
    tag.set_rank(rank);
    return tag;
  }

  // Runs the loop until `id`'s exit is reported.
  std::optional<ExitInfo> WaitExit(const std::string& id, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!exits_.count(id) && std::chrono::steady_clock::now() < end) {
      io_.restart();
      io_.run_for(20ms);
    }
    if (!exits_.count(id)) return std::nullopt;
    return exits_[id];
  }

  v1::KeeperRecord Record(const std::string& id) {
    std::ifstream in(Dir() + "/" + id + ".rec", std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    v1::KeeperRecord rec;
    rec.ParseFromString(buf.str());
    return rec;
  }

  std::string dir_;
  boost::asio::io_context io_;
  std::unique_ptr<KeeperLauncher> launcher_;  // forked keepers; null: exec'd
  std::unique_ptr<Keepers> keepers_;
  std::map<std::string, ExitInfo> exits_;
  int64_t log_max_bytes_ = kDefaultLogMaxBytes;
};

TEST_P(KeepersTest, RankExitCodeComesBackThroughItsKeeper) {
  absl::StatusOr<Keepers::Kept> kept = Start().Launch(Shell("exit 3"), Tag());
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_GT(kept->pid, 0);
  std::optional<ExitInfo> exit = WaitExit(kept->id, 10s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 3);
  EXPECT_EQ(keepers_->running(), 0u);
}

TEST_P(KeepersTest, RankKeepsRunningWithoutAgentAndIsAdoptedWithItsExit) {
  const std::string go = dir_ + "/go";
  absl::StatusOr<Keepers::Kept> kept =
      Start().Launch(Shell("while [ ! -e " + go + " ]; do sleep 0.02; done; exit 4"), Tag(2));
  ASSERT_TRUE(kept.ok()) << kept.status();
  const std::string id = kept->id;
  const pid_t pid = kept->pid;

  keepers_.reset();  // the agent is gone (killed, restarting)
  EXPECT_TRUE(Alive(pid));

  std::vector<Keepers::Adopted> adopted = Start().Adopt();
  ASSERT_EQ(adopted.size(), 1u);
  EXPECT_EQ(adopted[0].id, id);
  EXPECT_EQ(adopted[0].record.job_id(), "job");
  EXPECT_EQ(adopted[0].record.rank(), 2);
  EXPECT_EQ(adopted[0].record.rank_pid(), pid);
  EXPECT_FALSE(adopted[0].exit) << "it still runs";
  EXPECT_EQ(keepers_->running(), 1u);

  std::ofstream(go) << "";
  std::optional<ExitInfo> exit = WaitExit(id, 10s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 4);
}

TEST_P(KeepersTest, ExitWhileNoAgentRunsIsFoundAtAdoption) {
  const std::string go = dir_ + "/go";
  absl::StatusOr<Keepers::Kept> kept =
      Start().Launch(Shell("while [ ! -e " + go + " ]; do sleep 0.02; done; exit 5"), Tag());
  ASSERT_TRUE(kept.ok()) << kept.status();
  keepers_.reset();
  std::ofstream(go) << "";
  ASSERT_TRUE(WaitFor([&] { return fs::exists(Dir() + "/" + kept->id + ".exit"); }, 10s));

  std::vector<Keepers::Adopted> adopted = Start().Adopt();
  ASSERT_EQ(adopted.size(), 1u);
  ASSERT_TRUE(adopted[0].exit);
  EXPECT_EQ(adopted[0].exit->exit_code, 5);
  EXPECT_EQ(keepers_->running(), 0u);

  keepers_->Forget(kept->id);
  EXPECT_FALSE(fs::exists(Dir() + "/" + kept->id + ".rec"));
  EXPECT_FALSE(fs::exists(Dir() + "/" + kept->id + ".exit"));
  EXPECT_TRUE(Start().Adopt().empty());
}

// A frozen or dead agent renews nothing: the keeper stops the rank itself
// when the lease runs out.
TEST_P(KeepersTest, LeaseRunningOutStopsTheRankWithNoAgent) {
  Keepers& keepers = Start();
  ASSERT_TRUE(keepers.RenewLease(/*lease_ms=*/400, /*grace_ms=*/1000).ok());
  absl::StatusOr<Keepers::Kept> kept = keepers.Launch(Shell("exec sleep 30"), Tag());
  ASSERT_TRUE(kept.ok()) << kept.status();
  keepers_.reset();

  ASSERT_TRUE(WaitFor([&] { return !Alive(kept->pid); }, 10s)) << "the rank outlived its lease";
  ASSERT_TRUE(WaitFor([&] { return fs::exists(Dir() + "/" + kept->id + ".exit"); }, 5s));
  std::vector<Keepers::Adopted> adopted = Start().Adopt();
  ASSERT_EQ(adopted.size(), 1u);
  ASSERT_TRUE(adopted[0].exit);
  EXPECT_EQ(adopted[0].exit->signal, SIGTERM);
  EXPECT_NE(adopted[0].note.find("lease expired"), std::string::npos) << adopted[0].note;
  std::ifstream log(dir_ + "/rank.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("lease expired"), std::string::npos) << text;
}

TEST_P(KeepersTest, RenewedLeaseKeepsTheRankRunning) {
  Keepers& keepers = Start();
  ASSERT_TRUE(keepers.RenewLease(300, 1000).ok());
  absl::StatusOr<Keepers::Kept> kept = keepers.Launch(Shell("exec sleep 30"), Tag());
  ASSERT_TRUE(kept.ok()) << kept.status();
  // Three lease lengths, renewed every 100 ms as acks would.
  const auto end = std::chrono::steady_clock::now() + 900ms;
  while (std::chrono::steady_clock::now() < end) {
    ASSERT_TRUE(keepers.RenewLease(300, 1000).ok());
    std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(Alive(kept->pid));
  }
  ASSERT_TRUE(keepers.RenewLease(0, 0).ok());  // no lease at all
  keepers.Stop(kept->id, 1s);
  std::optional<ExitInfo> exit = WaitExit(kept->id, 10s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->signal, SIGTERM);
}

TEST_P(KeepersTest, StopEscalatesToSigkillAfterTheGrace) {
  absl::StatusOr<Keepers::Kept> kept =
      Start().Launch(Shell("trap '' TERM; echo ready; while true; do sleep 0.02; done"), Tag());
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_TRUE(WaitFor(
      [&] {
        std::ifstream log(dir_ + "/rank.log");
        std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
        return text.find("ready") != std::string::npos;
      },
      10s));
  keepers_->Stop(kept->id, 200ms);
  std::optional<ExitInfo> exit = WaitExit(kept->id, 10s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->signal, SIGKILL);
  EXPECT_EQ(exit->exit_code, 128 + SIGKILL);
}

TEST_P(KeepersTest, KilledKeeperTakesItsRankWithIt) {
  absl::StatusOr<Keepers::Kept> kept = Start().Launch(Shell("exec sleep 30"), Tag());
  ASSERT_TRUE(kept.ok()) << kept.status();
  const pid_t keeper = static_cast<pid_t>(Record(kept->id).keeper_pid());
  ASSERT_GT(keeper, 0);
  ASSERT_EQ(::kill(keeper, SIGKILL), 0);
  std::optional<ExitInfo> exit = WaitExit(kept->id, 10s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 255) << "lost: no exit was recorded";
  EXPECT_TRUE(WaitFor([&] { return !Alive(kept->pid); }, 5s)) << "the rank outlived its keeper";
}

TEST_P(KeepersTest, ProgramThatCannotRunIsRefusedAndLeavesNoRecord) {
  absl::StatusOr<Keepers::Kept> kept = Start().Launch(
      [&] {
        LaunchRequest req = Shell("");
        req.argv = {"/nonexistent/trainer"};
        return req;
      }(),
      Tag());
  ASSERT_FALSE(kept.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(kept.status())) << kept.status();
  EXPECT_NE(kept.status().message().find("/nonexistent/trainer"), std::string::npos)
      << kept.status();
  EXPECT_TRUE(Start().Adopt().empty());
}

// The keeper owns the rank's output: 3 MB printed leave at most the cap on
// disk, the last line (a trial's objective) included.
TEST_P(KeepersTest, RankOutputIsRotatedAtTheCapAndKeepsItsLastLine) {
  log_max_bytes_ = 256 << 10;
  absl::StatusOr<Keepers::Kept> kept = Start().Launch(
      Shell("yes 0123456789012345678901234567890123456789 | head -c 3000000; echo loss=0.25"),
      Tag());
  ASSERT_TRUE(kept.ok()) << kept.status();
  std::optional<ExitInfo> exit = WaitExit(kept->id, 20s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 0);
  const std::string log = dir_ + "/rank.log";
  std::error_code ec;
  const auto size = [&](const std::string& p) {
    return fs::exists(p) ? static_cast<int64_t>(fs::file_size(p, ec)) : 0;
  };
  EXPECT_LE(size(log) + size(log + ".1"), log_max_bytes_);
  absl::StatusOr<RankLogRead> tail = ReadRankLog(log, 3000000, 1 << 20);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(tail->offset, 3000000);
  EXPECT_EQ(tail->data, "loss=0.25\n");
  EXPECT_EQ(tail->end, 3000000 + 10);
}

// A rank whose log cannot be written (here a full device) runs on and its
// exit is reported as usual.
TEST_P(KeepersTest, RankWhoseLogCannotBeWrittenIsUnharmed) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  LaunchRequest req = Shell("yes | head -c 1000000; exit 4");
  req.log_path = dir_ + "/full.log";
  fs::create_symlink("/dev/full", req.log_path);
  absl::StatusOr<Keepers::Kept> kept = Start().Launch(req, Tag());
  ASSERT_TRUE(kept.ok()) << kept.status();
  std::optional<ExitInfo> exit = WaitExit(kept->id, 20s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 4);
}

INSTANTIATE_TEST_SUITE_P(Start, KeepersTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Forked" : "Execd"; });

TEST(LeaseFile, RoundTripsAndAMissingOneIsNoLease) {
  char tmpl[] = "/tmp/gangway-lease-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  EXPECT_FALSE(ReadLease(tmpl));
  ASSERT_TRUE(WriteLease(tmpl, Lease{12345, 678}).ok());
  std::optional<Lease> lease = ReadLease(tmpl);
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->deadline_ms, 12345);
  EXPECT_EQ(lease->grace_ms, 678);
  std::error_code ec;
  fs::remove_all(tmpl, ec);
}

}  // namespace
}  // namespace gangway::agent
