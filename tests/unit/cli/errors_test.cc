// What the CLI prints for errors a coordinator sends, against a fake
// coordinator on a local port: the hint about reaching a coordinator only when
// it was not reached, and one message for an id that is neither job nor sweep.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "gangway/v1/gangway.grpc.pb.h"

namespace gangway::cli {
namespace {

class FakeControl final : public v1::Control::Service {
 public:
  grpc::Status SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest*, v1::Job*) override {
    // What Core::Submit answers when the store fails (a full disk).
    return {grpc::StatusCode::UNAVAILABLE, "the store could not save the job; it was not accepted"};
  }
  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest* req, v1::Job*) override {
    return {grpc::StatusCode::NOT_FOUND, "no job named '" + req->id() + "'"};
  }
};

class FakeSweeps final : public v1::Sweeps::Service {
 public:
  grpc::Status GetSweep(grpc::ServerContext*, const v1::GetSweepRequest* req, v1::Sweep*) override {
    return {grpc::StatusCode::NOT_FOUND, "no sweep named '" + req->id() + "'"};
  }
};

class CliErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&control_);
    builder.RegisterService(&sweeps_);
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_);
    ASSERT_GT(port_, 0);
    ctx_.coordinator = "127.0.0.1:" + std::to_string(port_);
    ctx_.out = &out_;
    ctx_.err = &err_;
    ASSERT_TRUE(Connect(ctx_).ok());
  }
  void TearDown() override { server_->Shutdown(); }

  FakeControl control_;
  FakeSweeps sweeps_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::ostringstream out_, err_;
  Context ctx_;
};

// "is a coordinator running?" after a coordinator answered sent people
// looking for a coordinator that was there all along.
TEST_F(CliErrorsTest, ServerSideUnavailableHasNoReachabilityHint) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("cli_errors_" + std::to_string(::getpid()) + ".yaml"))
                               .string();
  std::ofstream(path) << "name: a\ncommand: [x]\n";
  EXPECT_EQ(Submit(ctx_, path), 1);
  std::filesystem::remove(path);
  EXPECT_NE(err_.str().find("the store could not save the job"), std::string::npos) << err_.str();
  EXPECT_EQ(err_.str().find("is a coordinator running"), std::string::npos) << err_.str();
}

// A mistyped job id was reported as "no sweep named".
TEST_F(CliErrorsTest, MissingIdIsNeitherJobNorSweep) {
  EXPECT_EQ(Get(ctx_, "nope-1"), 2);
  EXPECT_EQ(err_.str(), "error: no job or sweep named 'nope-1'\n");
}

TEST(CliErrorsUnreachableTest, UnreachableCoordinatorKeepsTheHint) {
  std::ostringstream out, err;
  Context ctx;
  ctx.coordinator = "127.0.0.1:1";  // nothing listens on port 1
  ctx.out = &out;
  ctx.err = &err;
  ASSERT_TRUE(Connect(ctx).ok());
  EXPECT_EQ(List(ctx, false), 1);
  EXPECT_NE(err.str().find("is a coordinator running at 127.0.0.1:1"), std::string::npos)
      << err.str();
}

}  // namespace
}  // namespace gangway::cli
