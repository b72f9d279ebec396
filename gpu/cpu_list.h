// CPU sets in Linux "list form" ("0-15,32-47"), the spelling of
// /sys/devices/system/cpu/online, taskset -c and GpuInfo.cpu_set.
//
// Written by hand rather than with hwloc_bitmap_list_sscanf: that parser
// accepts open-ended ranges ("8-" = every cpu from 8 on) and stops quietly at
// the first bad character, while an inventory from the wire needs a strict,
// bounded parse with an error that names the bad piece.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gangway::gpu {

// Linux's own ceiling (NR_CPUS) is 8192; the bound keeps a hostile "0-2000000000"
// from allocating gigabytes.
inline constexpr int kMaxCpuId = (1 << 16) - 1;

// Sorted, without duplicates. "" (or only spaces) is the empty set. Accepts
// "N" and "N-M" (N <= M) items separated by commas, spaces around items
// ignored; not the stride form "0-15:2".
absl::StatusOr<std::vector<int>> ParseCpuList(absl::string_view text);

// The shortest list form of `cpus` (any order, duplicates allowed): runs of
// consecutive ids become ranges. Negative ids are skipped.
std::string FormatCpuList(std::span<const int> cpus);

}  // namespace gangway::gpu
