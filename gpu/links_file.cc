#include "gpu/links_file.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace gangway::gpu {
namespace {

// Far above any real count (18 per GPU today), low enough to catch a column
// mix-up.
constexpr int32_t kMaxLinksPerPair = 1024;
// A sidecar is a few lines; the cap keeps a wrong path (a log, a core file)
// from being read whole.
constexpr std::streamsize kMaxFileBytes = 1 << 20;

}  // namespace

absl::StatusOr<LinkMatrix> ParseLinks(absl::string_view text, int gpu_count,
                                      absl::string_view source) {
  LinkMatrix links(gpu_count, std::vector<int32_t>(gpu_count, 0));
  std::vector<std::vector<bool>> seen(gpu_count, std::vector<bool>(gpu_count, false));
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = line.substr(0, line.find('#'));
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_number, ": ", why));
    };
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    int i = 0, j = 0, count = 0;
    if (fields.size() != 3 || !absl::SimpleAtoi(fields[0], &i) ||
        !absl::SimpleAtoi(fields[1], &j) || !absl::SimpleAtoi(fields[2], &count)) {
      return bad(absl::StrCat("want \"GPU GPU NVLINKS\" (three integers), got \"", line, "\""));
    }
    if (i < 0 || i >= gpu_count || j < 0 || j >= gpu_count) {
      return bad(absl::StrCat("GPU ", i < 0 || i >= gpu_count ? i : j, " does not exist; the ",
                              "topology has ", gpu_count, " GPUs (0 to ", gpu_count - 1, ")"));
    }
    if (i == j) return bad(absl::StrCat("GPU ", i, " linked to itself"));
    if (count < 0 || count > kMaxLinksPerPair) {
      return bad(absl::StrCat("NVLink count ", count, " is not between 0 and ", kMaxLinksPerPair));
    }
    if (seen[i][j]) return bad(absl::StrCat("pair ", i, " ", j, " is listed twice"));
    seen[i][j] = seen[j][i] = true;
    links[i][j] = links[j][i] = count;
  }
  return links;
}

absl::StatusOr<LinkMatrix> ReadLinksFile(const std::string& path, int gpu_count) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("links file ", path, ": cannot open"));
  std::string text(kMaxFileBytes + 1, '\0');
  in.read(text.data(), kMaxFileBytes + 1);
  if (in.bad()) return absl::NotFoundError(absl::StrCat("links file ", path, ": cannot read"));
  text.resize(in.gcount());
  if (std::ssize(text) > kMaxFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("links file ", path, ": larger than ", kMaxFileBytes, " bytes"));
  }
  return ParseLinks(text, gpu_count, path);
}

std::string LinksPathFor(const std::string& topology_xml) {
  if (absl::EndsWithIgnoreCase(topology_xml, ".xml")) {
    return absl::StrCat(topology_xml.substr(0, topology_xml.size() - 4), ".links");
  }
  return absl::StrCat(topology_xml, ".links");
}

}  // namespace gangway::gpu
