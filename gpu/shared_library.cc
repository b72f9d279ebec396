#include "gpu/shared_library.h"

#include <dlfcn.h>

#include "absl/strings/str_cat.h"

namespace gangway::gpu {
namespace {

std::string LastDlError() {
  const char* error = dlerror();
  return error != nullptr ? error : "unknown dlopen error";
}

}  // namespace

void SharedLibrary::Closer::operator()(void* handle) const { dlclose(handle); }

absl::StatusOr<SharedLibrary> SharedLibrary::Open(const std::string& name, OpenOptions options) {
  // RTLD_LOCAL: the vendor symbols must not satisfy anyone else's lookups.
  int flags = RTLD_NOW | RTLD_LOCAL;
  if (options.no_delete) flags |= RTLD_NODELETE;
  dlerror();  // clear a stale error so the message below is ours
  void* handle = dlopen(name.c_str(), flags);
  if (handle == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot load ", name, ": ", LastDlError()));
  }
  return SharedLibrary(name, handle);
}

absl::StatusOr<void*> SharedLibrary::Find(const char* symbol) const {
  dlerror();
  void* address = dlsym(handle_.get(), symbol);
  if (address == nullptr) {
    return absl::NotFoundError(absl::StrCat(name_, " has no symbol ", symbol));
  }
  return address;
}

}  // namespace gangway::gpu
