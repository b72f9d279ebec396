// A library opened with dlopen, closed when the object goes. Vendor libraries
// (libcuda, libnvidia-ml) are loaded this way rather than linked so that one
// agent binary starts on nodes without a GPU driver.
//
// Not thread-safe per object; distinct objects may be used from any thread.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gangway::gpu {

class SharedLibrary {
 public:
  struct OpenOptions {
    // Keep the code mapped after Close. libcuda starts threads and registers
    // exit handlers that must outlive the handle, so it is never unmapped.
    bool no_delete = false;
  };

  // NOT_FOUND when the loader cannot find or load `name` (the usual "no
  // driver on this node" case); the message carries dlerror().
  static absl::StatusOr<SharedLibrary> Open(const std::string& name, OpenOptions options);
  static absl::StatusOr<SharedLibrary> Open(const std::string& name) { return Open(name, {}); }

  // Binds `*out` to the exported function `symbol`. NOT_FOUND when the
  // library lacks it (an older driver).
  template <typename Fn>
  absl::Status Bind(const char* symbol, Fn*& out) const {
    absl::StatusOr<void*> address = Find(symbol);
    if (!address.ok()) return address.status();
    out = reinterpret_cast<Fn*>(*address);
    return absl::OkStatus();
  }

  const std::string& name() const { return name_; }

 private:
  struct Closer {
    void operator()(void* handle) const;
  };

  SharedLibrary(std::string name, void* handle) : name_(std::move(name)), handle_(handle) {}
  absl::StatusOr<void*> Find(const char* symbol) const;

  std::string name_;
  std::unique_ptr<void, Closer> handle_;
};

}  // namespace gangway::gpu
