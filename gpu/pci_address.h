// PCI addresses in the one spelling the inventory uses. CUDA writes
// "0000:07:00.0", NVML "00000000:07:00.0", hwloc "0000:07:00.0" in lower
// case; they are matched by value and always printed NVML-style
// ("00000000:07:00.0"), which is what nvidia-smi shows operators.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gangway::gpu {

struct PciAddress {
  uint32_t domain = 0;
  uint32_t bus = 0;       // 0..0xff
  uint32_t device = 0;    // 0..0x1f
  uint32_t function = 0;  // 0..7

  friend auto operator<=>(const PciAddress&, const PciAddress&) = default;
};

// Accepts "DOMAIN:BB:DD.F" with a domain of up to 8 hex digits, or "BB:DD.F"
// (domain 0); hex digits in either case.
absl::StatusOr<PciAddress> ParsePciAddress(absl::string_view text);

// "00000000:07:00.0".
std::string FormatPciAddress(const PciAddress& address);

}  // namespace gangway::gpu
