#include "gpu/rendezvous/gloo_store.h"

#include <utility>

#include "gloo/common/error.h"

namespace gangway::gpu {
namespace {

[[noreturn]] void Throw(const absl::Status& s) { throw ::gloo::IoException(s.ToString()); }

}  // namespace

GlooStore::GlooStore(const RendezvousClient& client, std::string prefix,
                     std::chrono::milliseconds wait)
    : client_(client), prefix_(std::move(prefix)), wait_(wait) {}

void GlooStore::set(const std::string& key, const std::vector<char>& data) {
  absl::Status s = client_.Set(Key(key), std::string_view(data.data(), data.size()));
  if (!s.ok()) Throw(s);
}

std::vector<char> GlooStore::get(const std::string& key) {
  absl::StatusOr<std::string> value = client_.Get(Key(key), wait_);
  if (!value.ok()) Throw(value.status());
  return std::vector<char>(value->begin(), value->end());
}

void GlooStore::wait(const std::vector<std::string>& keys) { wait(keys, wait_); }

void GlooStore::wait(const std::vector<std::string>& keys,
                     const std::chrono::milliseconds& timeout) {
  std::vector<std::string> full;
  full.reserve(keys.size());
  for (const std::string& k : keys) full.push_back(Key(k));
  // Gloo's kNoTimeout (zero) means "no limit"; ours is the store's wait.
  const std::chrono::milliseconds bound = timeout == ::gloo::kNoTimeout ? wait_ : timeout;
  absl::StatusOr<std::vector<std::string>> values = client_.GetAll(full, bound);
  if (!values.ok()) Throw(values.status());
}

}  // namespace gangway::gpu
