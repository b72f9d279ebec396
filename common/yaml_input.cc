#include "common/yaml_input.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <optional>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/spec.h"
#include "common/spec_loader.h"
#include "common/utf8.h"

namespace gangway::common::spec_internal {

int LineAt(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + offset, '\n'));
}

absl::Status CheckSpecText(std::string_view yaml) {
  if (yaml.size() > kMaxSpecBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec is ", yaml.size(), " bytes; the limit is ", kMaxSpecBytes));
  }
  // yaml-cpp's own message for a NUL byte is misleading ("unknown escape").
  if (size_t nul = yaml.find('\0'); nul != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", LineAt(yaml, nul), ": malformed YAML: contains a NUL byte"));
  }
  if (size_t bad = InvalidUtf8Offset(yaml); bad != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "line %d (byte %d): spec is not valid UTF-8 (byte 0x%02x); save it as UTF-8",
        LineAt(yaml, bad), bad, static_cast<unsigned char>(yaml[bad])));
  }
  return absl::OkStatus();
}

namespace {

// Records where a document's root starts and whether it is empty, without
// building nodes.
class RootEvents : public YAML::EventHandler {
 public:
  bool seen() const { return seen_; }
  bool null() const { return null_; }
  const YAML::Mark& mark() const { return mark_; }
  // The first alias (*name) seen in any document, if any.
  const std::optional<YAML::Mark>& alias() const { return alias_; }
  void Reset() { seen_ = false; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Root(mark, true); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    Root(mark, false);
    if (!alias_) alias_ = mark;
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Root(mark, false);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Root(mark, false);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Root(mark, false);
  }
  void OnMapEnd() override {}

 private:
  void Root(const YAML::Mark& mark, bool null) {
    if (seen_) return;
    seen_ = true;
    null_ = null;
    mark_ = mark;
  }
  bool seen_ = false;
  bool null_ = false;
  YAML::Mark mark_ = YAML::Mark::null_mark();
  std::optional<YAML::Mark> alias_;
};

// "line N: aliases are not supported (*name); ...", the name read from the
// text at the alias's mark when it is there.
absl::Status AliasError(std::string_view yaml, const YAML::Mark& mark) {
  std::string name;
  const size_t pos = mark.pos < 0 ? yaml.size() : static_cast<size_t>(mark.pos);
  if (pos < yaml.size() && yaml[pos] == '*') {
    size_t end = yaml.find_first_of(" \t\r\n,[]{}", pos);
    name = absl::StrCat(
        " (",
        Quote(yaml.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos)),
        ")");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("line ", mark.line + 1, ": aliases are not supported", name,
                   "; write the value out (an alias can expand a small spec into a huge job)"));
}

// Exactly one non-empty document, checked with yaml-cpp's event parser rather
// than YAML::LoadAll: in yaml-cpp 0.7 LoadAll loops forever, allocating, on a
// stray top-level "," (jbeder/yaml-cpp#1040, fixed upstream by #1319 after
// 0.8), because the parser keeps returning an empty document without
// consuming the token. Here a document that starts where the last one did is
// that loop, and is reported as malformed.
absl::Status CheckDocuments(std::string_view yaml, std::string_view what) {
  std::istringstream in{std::string(yaml)};
  YAML::Parser parser(in);
  RootEvents events;
  int documents = 0;  // non-empty ones
  std::optional<YAML::Mark> last;
  try {
    // Every real document consumes input, so more rounds than bytes is the
    // same loop in a form the mark check missed.
    for (size_t round = 0;; ++round) {
      events.Reset();
      if (!parser.HandleNextDocument(events)) break;
      if (events.alias()) return AliasError(yaml, *events.alias());
      if (round > yaml.size()) return absl::InvalidArgumentError("malformed YAML");
      if (!events.seen()) continue;
      const YAML::Mark& mark = events.mark();
      if (last && last->pos == mark.pos) {
        char c = static_cast<size_t>(mark.pos) < yaml.size() ? yaml[mark.pos] : ' ';
        return absl::InvalidArgumentError(absl::StrCat("line ", mark.line + 1,
                                                       ": malformed YAML: unexpected ",
                                                       Quote(std::string_view(&c, 1))));
      }
      bool first = !last.has_value();
      last = mark;
      if (events.null()) continue;
      // YAML::Load takes the first document: a job after an empty one
      // ("---\n---\nname: ...") would be lost, so it counts as a second.
      if (++documents > 1 || !first) {
        return absl::InvalidArgumentError(absl::StrCat(
            "line ", mark.line + 1, ": spec holds more than one YAML document; submit one ",
            AV(what), " per spec"));
      }
    }
  } catch (const YAML::ParserException& e) {
    return MalformedError(e);
  }
  if (documents == 0) return absl::InvalidArgumentError("spec is empty");
  return absl::OkStatus();
}

}  // namespace

absl::Status MalformedError(const YAML::Exception& e) {
  std::string where = e.mark.is_null() ? "" : absl::StrCat("line ", e.mark.line + 1, ": ");
  return absl::InvalidArgumentError(absl::StrCat(where, "malformed YAML: ", e.msg));
}

absl::StatusOr<YAML::Node> LoadDocument(std::string_view yaml, std::string_view what) {
  if (absl::Status text = CheckSpecText(yaml); !text.ok()) return text;
  if (auto shape = CheckDocuments(yaml, what); !shape.ok()) return shape;
  try {
    return YAML::Load(std::string(yaml));
  } catch (const YAML::ParserException& e) {
    return MalformedError(e);
  }
}

}  // namespace gangway::common::spec_internal
