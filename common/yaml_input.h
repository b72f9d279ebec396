// What a spec's text must be before any YAML is built from it, shared by the
// job and sweep loaders through spec_internal::LoadDocument
// (common/spec_loader.h). Split from spec.cc so the checks on raw input
// (size, NUL, UTF-8, aliases) sit in one small place.
//
// Why each check exists:
//  - size: kMaxSpecBytes, so one request cannot hold the loader's memory.
//  - NUL: yaml-cpp reports it as an "unknown escape", which misleads.
//  - UTF-8: every string ends up in a proto3 string field, which must be
//    UTF-8; invalid bytes used to pass the loader and fail serialization
//    later (the CLI printed an empty error).
//  - aliases: `*name` repeats a node without repeating its text, so a
//    100 KB spec of nested aliases expands into a 100 MB job. A spec is
//    short enough to write out, so aliases are refused rather than bounded.
#pragma once

#include <cstddef>
#include <string_view>

#include "absl/status/status.h"

namespace gangway::common::spec_internal {

// 1-based line of byte `offset` in `text`.
int LineAt(std::string_view text, size_t offset);

// Size, NUL and UTF-8 checks on a spec's text. INVALID_ARGUMENT naming the
// line and byte offset, e.g. "line 3 (byte 17): spec is not valid UTF-8
// (byte 0xff); save the file as UTF-8".
absl::Status CheckSpecText(std::string_view yaml);

}  // namespace gangway::common::spec_internal
