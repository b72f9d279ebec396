// Internal to the spec loaders: the YAML machinery of the job spec loader
// (common/spec.cc), shared with the sweep spec loader
// (coordinator/sweep_spec.cc). Not a stable API; include only from loaders.
//
// The pieces:
//  - LoadDocument: YAML text to the root node of exactly one document, with
//    the size limit, NUL check and yaml-cpp 0.7 workarounds (never call
//    YAML::LoadAll: it hangs on some inputs, see spec.cc).
//  - Errors: every error collected, one per field path, sorted by line.
//  - FieldLoader: strict scalars (Int, Double, String, OneOf), mappings
//    walked with unknown-field suggestions and duplicate detection, and the
//    line of every field path recorded.
//  - LoadJobSpecNode / CheckJobSpec: the job spec at any path prefix, so a
//    sweep's trialTemplate is loaded and checked by the same code as a job.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/utf8.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::common::spec_internal {

// ---------------------------------------------------------------------------
// Text helpers.
// ---------------------------------------------------------------------------

// Debian's Abseil keeps its own string_view type (ABSL_USES_STD_STRING_VIEW
// is off), so std::string_view must be bridged before StrCat and friends.
inline absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// User text for a message: escaped and cut to 64 bytes, in double quotes.
std::string Quote(std::string_view text);
// A field path for a message (paths embed user map keys): escaped and cut.
std::string ShowPath(std::string_view path);
// RFC 3629 UTF-8, as protobuf demands of proto3 string fields.
inline bool IsValidUtf8(std::string_view s) { return common::IsValidUtf8(s); }
bool IsDigit(char c);
// Lowercase letters, digits and '-', starting and ending with an alphanumeric.
bool IsDns1123Label(std::string_view s);
// The closest of `known` to `given` when it is close enough to be a typo.
std::optional<std::string_view> Suggest(std::string_view given,
                                        std::span<const std::string_view> known);
// " (did you mean \"x\"?)" or "".
std::string DidYouMean(std::string_view given, std::span<const std::string_view> known);
// "prefix.name", or "name" for an empty prefix.
std::string JoinPath(std::string_view prefix, std::string_view name);

// ---------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------

// Collects every error (a user fixes them in one pass, not one per submit),
// sorted by line; at most one per path, so a field with a type error does not
// also report "required". At most 20 are listed, the rest counted.
class Errors {
 public:
  explicit Errors(const std::map<std::string, int>* lines) : lines_(lines) {}

  // The line is looked up from the field path; a path without one (a missing
  // field) takes the line of its nearest recorded parent ("objective.metric"
  // -> "objective"), so a missing field points at the mapping that lacks it.
  void Add(const std::string& path, std::string_view message);
  void AddAt(int line, const std::string& path, std::string_view message);

  bool empty() const { return entries_.empty(); }
  // Whether an error was added for `path` or a path below it ("a.b" for
  // "a.b", "a.b.c", "a.b[0]").
  bool HasErrorUnder(std::string_view path) const;
  // OK, or INVALID_ARGUMENT with one error per line.
  absl::Status ToStatus();

 private:
  struct Entry {
    int line;
    std::string text;
  };
  const std::map<std::string, int>* lines_;
  std::vector<Entry> entries_;
  std::set<std::string> paths_;
};

// An integer field's range; `path` is its path in a job spec (without
// prefix), used by the proto checks.
struct IntRule {
  std::string_view path;
  int64_t min;
  int64_t max;
  std::string_view hint = {};
};

std::string RangeMessage(const IntRule& rule, std::string_view got);
void CheckRange(const std::string& path, const IntRule& rule, int64_t value, Errors* errors);
// Required, a DNS-1123 label of at most 63 characters.
void CheckName(const std::string& path, std::string_view name, Errors* errors);
// No NUL (execve would truncate) and valid UTF-8 (protobuf would refuse).
void CheckText(const std::string& path, std::string_view value, Errors* errors);

// ---------------------------------------------------------------------------
// YAML.
// ---------------------------------------------------------------------------

// 1-based line of a node, 0 when unknown.
int LineOf(const YAML::Node& node);
// A quoted scalar ("2", '2') as opposed to a plain one (2).
bool IsQuoted(const YAML::Node& node);
// "null", "a list", "a mapping", "\"text\"" or "the string \"text\"".
std::string Describe(const YAML::Node& node);

absl::Status MalformedError(const YAML::Exception& e);

// The root node of exactly one non-empty YAML document. Errors
// (INVALID_ARGUMENT, with a line where known): over kMaxSpecBytes, a NUL
// byte, invalid UTF-8, an alias (*name), malformed YAML, no document, more
// than one ("submit one `what` per spec"). May throw YAML::Exception; call
// inside a try block. Defined in common/yaml_input.cc.
absl::StatusOr<YAML::Node> LoadDocument(std::string_view yaml, std::string_view what);

// Strict scalars into a proto, with every field's line recorded under its
// path and every problem reported to `errors` with path and line.
class FieldLoader {
 public:
  FieldLoader(std::map<std::string, int>* lines, Errors* errors) : lines_(lines), errors_(errors) {}

  // Walks a mapping: records each field's line, reports unknown (with a
  // suggestion) and repeated fields, and calls
  // load(std::string_view field, const std::string& path, int line,
  //      const YAML::Node& value) for the known ones. yaml-cpp keeps repeated
  // keys as separate pairs, so duplicates are visible here.
  template <typename Fn>
  void ForEachField(const YAML::Node& map, std::string_view prefix,
                    std::span<const std::string_view> known, Fn load) {
    std::map<std::string, int> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      int line = LineOf(key);
      if (!key.IsScalar()) {
        Error(line, "",
              absl::StrCat(prefix.empty() ? "" : absl::StrCat(ShowPath(prefix), ": "),
                           "field names must be plain strings, got ", Describe(key)));
        continue;
      }
      const std::string& name = key.Scalar();
      std::string path = JoinPath(prefix, name);
      auto field = std::find(known.begin(), known.end(), name);
      if (field == known.end()) {
        std::string message = "unknown field";
        if (name == "<<") {
          message = "merge keys (<<) are not supported";
        } else {
          absl::StrAppend(&message, DidYouMean(name, known));
        }
        Error(line, path, message);
        continue;
      }
      auto [first, inserted] = seen.emplace(name, line);
      if (!inserted) {
        Error(line, "",
              absl::StrCat(ShowPath(path), ": duplicate field (first set on line ", first->second,
                           ")"));
        continue;
      }
      lines_->emplace(path, line);
      load(*field, path, line, value);
    }
  }

  void Error(int line, const std::string& path, std::string_view message) {
    errors_->AddAt(line, path, message);
  }
  void RecordLine(const std::string& path, int line) { lines_->emplace(path, line); }

  // Any scalar as its text (`1e-3` stays "1e-3", `yes` stays "yes"); null,
  // lists and mappings are refused.
  std::optional<std::string> String(const std::string& path, int line, const YAML::Node& value);
  // Strict decimal integer in [rule.min, rule.max]: no 0x10, 1_000, 1e3, 010
  // or "2" (quoted). Range-checked on int64 before any narrowing.
  std::optional<int64_t> Int(const std::string& path, int line, const YAML::Node& value,
                             const IntRule& rule);
  // Strict finite decimal number: 2, -0.5, 1e-5, .5; not "2" (quoted), 0x10,
  // 1_000, .inf, .nan or 010.
  std::optional<double> Double(const std::string& path, int line, const YAML::Node& value);
  // The index of the string in `names`; else "must be one of A, B, got "x""
  // with a suggestion.
  std::optional<size_t> OneOf(const std::string& path, int line, const YAML::Node& value,
                              std::span<const std::string_view> names);
  // A list of strings (null: empty); each item's line recorded as
  // path[i]. A bad item is reported and kept as "" so indexes match the YAML.
  // False when `value` is not a list.
  bool Strings(const std::string& path, int line, const YAML::Node& value,
               google::protobuf::RepeatedPtrField<std::string>* out);
  // True for a mapping to walk; false for null (nothing given: the caller
  // decides whether that is allowed) and, with an error "must be a mapping
  // (what), got ...", for anything else.
  bool Mapping(const std::string& path, int line, const YAML::Node& value, std::string_view what);

 protected:
  std::map<std::string, int>* lines_;
  Errors* errors_;
};

// ---------------------------------------------------------------------------
// Job specs at any path prefix.
// ---------------------------------------------------------------------------

// What a YAML job spec leaves out: replicas and procsPerNode 1, backoffLimit
// 6, restartPolicy Never.
void ApplyYamlJobDefaults(v1::JobSpec* spec);

// Loads the fields of a job spec mapping into `spec` (call
// ApplyYamlJobDefaults first), with paths under `path_prefix` ("" for a job,
// "trialTemplate" in a sweep). Type errors only; CheckJobSpec checks values.
void LoadJobSpecNode(const YAML::Node& map, std::string_view path_prefix, v1::JobSpec* spec,
                     std::map<std::string, int>* lines, Errors* errors);

// Every rule on a job spec's values, errors under `path_prefix`.
void CheckJobSpec(const v1::JobSpec& spec, std::string_view path_prefix, Errors* errors);

}  // namespace gangway::common::spec_internal
