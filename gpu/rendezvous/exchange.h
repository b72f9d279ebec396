// Handing one rank's blob to every rank of the gang through the rendezvous
// store: how NCCL's unique id reaches the ranks that did not create it.
//
// Rank 0 creates the blob and publishes it; every other rank waits for it.
// When rank 0 cannot create it (no NCCL on its node), it returns the error
// and should exit non-zero: gangway then stops the whole gang, so the other
// ranks do not wait for their deadline.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "gpu/rendezvous/rendezvous_client.h"

namespace gangway::gpu {

// On rank 0: create(), publish under `key`, return it. Elsewhere: wait up to
// `wait` for the key and return its value.
absl::StatusOr<std::string> ExchangeBlob(
    const RendezvousClient& client, std::string_view key,
    absl::FunctionRef<absl::StatusOr<std::string>()> create,
    std::chrono::milliseconds wait = RendezvousClient::kDefaultWait);

// ncclUniqueId's bytes (NCCL_UNIQUE_ID_BYTES). The type is NCCL's ABI and
// fixed at 128; copy it into an ncclUniqueId with memcpy.
inline constexpr size_t kNcclUniqueIdBytes = 128;
using NcclUniqueIdBytes = std::array<char, kNcclUniqueIdBytes>;
inline constexpr std::string_view kNcclUniqueIdKey = "nccl/unique_id";

// ncclGetUniqueId from libnccl.so.2, loaded with dlopen so that this library
// (and the trainers linking it) build and run on nodes without NCCL.
// FAILED_PRECONDITION when the library or the symbol is missing; UNAVAILABLE
// when NCCL returns an error (no usable network interface, ...).
absl::StatusOr<NcclUniqueIdBytes> CreateNcclUniqueId();

// ExchangeBlob of an NCCL unique id under `key` (one key per communicator).
// DATA_LOSS when the published value does not have the size of an id.
absl::StatusOr<NcclUniqueIdBytes> ExchangeNcclUniqueId(
    const RendezvousClient& client, std::chrono::milliseconds wait = RendezvousClient::kDefaultWait,
    std::string_view key = kNcclUniqueIdKey,
    absl::FunctionRef<absl::StatusOr<NcclUniqueIdBytes>()> create = CreateNcclUniqueId);

}  // namespace gangway::gpu
