// ListJobs answers in pages (Core::ListJobsPage): oldest first, at most
// Core::kMaxListPage a page, tokens that chain, and a clear error for a
// token no answer gave. One call listing 10,000 jobs held every other call
// on the coordinator's loop back for tens of milliseconds (queue_load).
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "coordinator/core.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

class ListJobsTest : public ::testing::Test {
 protected:
  ListJobsTest() : core_(&store_, &sink_, &clock_, CoreOptions()) {
    EXPECT_TRUE(core_.Recover().ok());
  }

  std::string Submit(int i) {
    v1::SubmitJobRequest req;
    req.set_yaml(absl::StrCat("name: j", i, "\ncommand: [x]\n"));
    std::optional<absl::StatusOr<v1::Job>> answer;
    core_.Submit(req, [&](absl::StatusOr<v1::Job> job) { answer = std::move(job); });
    core_.Settle();
    EXPECT_TRUE(answer && answer->ok());
    return answer && answer->ok() ? (*answer)->id() : "";
  }

  // Every page from `page_size`, and how many calls it took.
  std::vector<std::string> ListAll(bool all, int page_size, int* calls) {
    std::vector<std::string> ids;
    v1::ListJobsRequest req;
    req.set_all(all);
    req.set_page_size(page_size);
    *calls = 0;
    do {
      absl::StatusOr<v1::ListJobsResponse> page = core_.ListJobsPage(req);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      ++*calls;
      EXPECT_LE(page->jobs_size(), Core::kMaxListPage);
      for (const v1::Job& j : page->jobs()) ids.push_back(j.id());
      req.set_page_token(page->next_page_token());
    } while (!req.page_token().empty() && *calls < 10'000);
    return ids;
  }

  fakes::FakeStore store_;
  fakes::RecordingSink sink_;
  common::FakeClock clock_;
  Core core_;
};

TEST_F(ListJobsTest, PagesAreAtMostAThousandOldestFirstAndChainToEveryJob) {
  std::vector<std::string> submitted;
  for (int i = 0; i < 1201; ++i) submitted.push_back(Submit(i));
  int calls = 0;
  // 0 and anything above the cap are the cap.
  for (int size : {0, 5000}) {
    EXPECT_EQ(ListAll(false, size, &calls), submitted) << size;
    EXPECT_EQ(calls, 2) << size;
  }
  EXPECT_EQ(ListAll(true, 7, &calls), submitted);
  EXPECT_EQ(calls, 172);  // 171 pages of 7, then 4
  EXPECT_EQ(ListAll(true, 1201, &calls), submitted);
  EXPECT_EQ(calls, 2) << "the cap holds whatever is asked";
}

TEST_F(ListJobsTest, FinishedJobsAreLeftOutUnlessAllAndTokensSkipThemToo) {
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(Submit(i));
  for (int i : {1, 2, 4}) ASSERT_TRUE(core_.Cancel(ids[i]).ok());
  core_.Settle();
  int calls = 0;
  EXPECT_EQ(ListAll(false, 2, &calls), (std::vector<std::string>{ids[0], ids[3], ids[5]}));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(ListAll(true, 2, &calls), ids);
  EXPECT_EQ(calls, 3);
  // A page that ends exactly at the last job says so: no token.
  v1::ListJobsRequest req;
  req.set_page_size(3);
  absl::StatusOr<v1::ListJobsResponse> page = core_.ListJobsPage(req);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->jobs_size(), 3);
  EXPECT_TRUE(page->next_page_token().empty());
}

TEST_F(ListJobsTest, ATokenNoAnswerGaveIsRefusedByName) {
  Submit(0);
  for (const char* token : {"x", "-4", "12abc"}) {
    v1::ListJobsRequest req;
    req.set_page_token(token);
    absl::StatusOr<v1::ListJobsResponse> page = core_.ListJobsPage(req);
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << token;
    EXPECT_NE(page.status().message().find(absl::StrCat("page_token: '", token, "'")),
              std::string::npos)
        << page.status().message();
  }
}

}  // namespace
}  // namespace gangway::coordinator
