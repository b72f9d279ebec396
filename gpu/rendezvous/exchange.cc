#include "gpu/rendezvous/exchange.h"

#include <dlfcn.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace gangway::gpu {

absl::StatusOr<std::string> ExchangeBlob(const RendezvousClient& client, std::string_view key,
                                         absl::FunctionRef<absl::StatusOr<std::string>()> create,
                                         std::chrono::milliseconds wait) {
  if (client.rank() != 0) return client.Get(key, wait);
  absl::StatusOr<std::string> blob = create();
  if (!blob.ok()) return blob.status();
  if (absl::Status s = client.Set(key, *blob); !s.ok()) return s;
  return blob;
}

namespace {

// NCCL's own signatures, without its header: ncclResult_t is an int-sized
// enum, 0 = ncclSuccess.
using GetUniqueIdFn = int (*)(void* unique_id);
using GetErrorStringFn = const char* (*)(int result);

struct NcclLibrary {
  GetUniqueIdFn get_unique_id = nullptr;
  GetErrorStringFn error_string = nullptr;
  absl::Status status;
};

// Loaded once and never closed: NCCL keeps threads and state that do not
// survive dlclose.
const NcclLibrary& Nccl() {
  static const NcclLibrary lib = [] {
    NcclLibrary l;
    void* handle = ::dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* err = ::dlerror();
      l.status = absl::FailedPreconditionError(
          absl::StrCat("cannot load libnccl.so.2: ", err ? err : "unknown error",
                       " (install NCCL or add its directory to LD_LIBRARY_PATH)"));
      return l;
    }
    l.get_unique_id = reinterpret_cast<GetUniqueIdFn>(::dlsym(handle, "ncclGetUniqueId"));
    l.error_string = reinterpret_cast<GetErrorStringFn>(::dlsym(handle, "ncclGetErrorString"));
    if (l.get_unique_id == nullptr) {
      l.status = absl::FailedPreconditionError("libnccl.so.2 has no ncclGetUniqueId");
    }
    return l;
  }();
  return lib;
}

}  // namespace

absl::StatusOr<NcclUniqueIdBytes> CreateNcclUniqueId() {
  const NcclLibrary& nccl = Nccl();
  if (!nccl.status.ok()) return nccl.status;
  NcclUniqueIdBytes id{};
  const int rc = nccl.get_unique_id(id.data());
  if (rc != 0) {
    const char* why = nccl.error_string ? nccl.error_string(rc) : nullptr;
    return absl::UnavailableError(absl::StrCat("ncclGetUniqueId failed: ", why ? why : "error ",
                                               why ? "" : absl::StrCat(rc)));
  }
  return id;
}

absl::StatusOr<NcclUniqueIdBytes> ExchangeNcclUniqueId(
    const RendezvousClient& client, std::chrono::milliseconds wait, std::string_view key,
    absl::FunctionRef<absl::StatusOr<NcclUniqueIdBytes>()> create) {
  absl::StatusOr<std::string> blob = ExchangeBlob(
      client, key,
      [&]() -> absl::StatusOr<std::string> {
        absl::StatusOr<NcclUniqueIdBytes> id = create();
        if (!id.ok()) return id.status();
        return std::string(id->data(), id->size());
      },
      wait);
  if (!blob.ok()) return blob.status();
  if (blob->size() != kNcclUniqueIdBytes) {
    return absl::DataLossError(absl::StrCat("rendezvous key '", std::string(key), "' holds ",
                                            blob->size(), " bytes, not an NCCL unique id of ",
                                            kNcclUniqueIdBytes));
  }
  NcclUniqueIdBytes id;
  std::copy(blob->begin(), blob->end(), id.begin());
  return id;
}

}  // namespace gangway::gpu
