// Every job a ListJobs call would name, page after page: the coordinator
// answers in pages of at most 1,000 (ListJobsRequest.page_size), so one
// listing never holds its loop for long. Used by the CLI, tests and load
// drivers alike.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>

#include "gangway/v1/gangway.grpc.pb.h"

namespace gangway::common {

// `per_call` bounds each page's call. The jobs come oldest first.
inline grpc::Status ListAllJobs(v1::Control::StubInterface& stub, bool all,
                                std::chrono::milliseconds per_call, v1::ListJobsResponse* out) {
  out->Clear();
  std::string token;
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + per_call);
    v1::ListJobsRequest req;
    req.set_all(all);
    req.set_page_token(token);
    v1::ListJobsResponse page;
    if (grpc::Status s = stub.ListJobs(&ctx, req, &page); !s.ok()) return s;
    for (v1::Job& job : *page.mutable_jobs()) *out->add_jobs() = std::move(job);
    token = page.next_page_token();
  } while (!token.empty());
  return grpc::Status::OK;
}

}  // namespace gangway::common
