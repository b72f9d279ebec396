// The NVLink sidecar of an XML topology. hwloc's XML has no place for GPU to
// GPU links, so a topology FILE.xml may come with FILE.links:
//
//   # GPU i, GPU j, NVLinks between them (GPU numbers are inventory indices,
//   # i.e. the NVIDIA GPUs of the XML in PCI address order)
//   0 1 12
//   2 3 12
//
// One pair per line, either order, each pair at most once; '#' starts a
// comment; pairs not listed have no NVLink.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gangway::gpu {

using LinkMatrix = std::vector<std::vector<int32_t>>;  // [i][j], symmetric, zero diagonal

// `source` names the text in errors ("FILE.links"); errors carry the line.
absl::StatusOr<LinkMatrix> ParseLinks(absl::string_view text, int gpu_count,
                                      absl::string_view source);

// NOT_FOUND when `path` cannot be read.
absl::StatusOr<LinkMatrix> ReadLinksFile(const std::string& path, int gpu_count);

// FILE.xml -> FILE.links; any other name gets ".links" appended.
std::string LinksPathFor(const std::string& topology_xml);

}  // namespace gangway::gpu
