#include "gpu/pci_address.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace gangway::gpu {
namespace {

// A hex field of 1..max_digits digits no larger than `limit`.
bool ParseHexField(absl::string_view text, size_t max_digits, uint32_t limit, uint32_t& out) {
  if (text.empty() || text.size() > max_digits) return false;
  for (char c : text) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  uint32_t value = 0;
  if (!absl::SimpleHexAtoi(text, &value) || value > limit) return false;
  out = value;
  return true;
}

}  // namespace

absl::StatusOr<PciAddress> ParsePciAddress(absl::string_view text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  auto invalid = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a PCI address (want DOMAIN:BUS:DEVICE.FUNCTION)"));
  };
  std::vector<absl::string_view> parts = absl::StrSplit(trimmed, ':');
  if (parts.size() == 2) parts.insert(parts.begin(), "0");
  if (parts.size() != 3) return invalid();
  std::vector<absl::string_view> dev_fn = absl::StrSplit(parts[2], '.');
  if (dev_fn.size() != 2) return invalid();
  PciAddress address;
  if (!ParseHexField(parts[0], 8, 0xffffffff, address.domain) ||
      !ParseHexField(parts[1], 2, 0xff, address.bus) ||
      !ParseHexField(dev_fn[0], 2, 0x1f, address.device) ||
      !ParseHexField(dev_fn[1], 1, 0x7, address.function)) {
    return invalid();
  }
  return address;
}

std::string FormatPciAddress(const PciAddress& address) {
  return absl::StrFormat("%08X:%02X:%02X.%X", address.domain, address.bus, address.device,
                         address.function);
}

}  // namespace gangway::gpu
