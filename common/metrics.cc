#include "common/metrics.h"

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace gangway::common {
namespace {

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '/' ||
         c == '.';
}

// Strict number: the whole text, or inf/nan in any case.
bool ParseNumber(std::string_view text, double* out) {
  std::string lower = absl::AsciiStrToLower(std::string(text));
  if (lower == "nan" || lower == "+nan" || lower == "-nan") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (lower == "inf" || lower == "+inf" || lower == "infinity") {
    *out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (lower == "-inf" || lower == "-infinity") {
    *out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

bool IsStepName(std::string_view name) { return name == "step" || name == "epoch"; }

void Add(std::string_view name, std::string_view value, int64_t step, int64_t time_ms,
         std::vector<v1::MetricPoint>* out) {
  v1::MetricPoint p;
  p.set_name(std::string(name));
  p.set_step(step);
  p.set_time_ms(time_ms);
  double v;
  if (ParseNumber(value, &v)) {
    p.set_value(v);
  } else {
    p.set_value(std::numeric_limits<double>::quiet_NaN());
    p.set_raw(std::string(value.substr(0, 256)));
  }
  out->push_back(std::move(p));
}

}  // namespace

MetricParser::MetricParser(MetricParser&&) noexcept = default;
MetricParser& MetricParser::operator=(MetricParser&&) noexcept = default;
MetricParser::~MetricParser() = default;

absl::StatusOr<MetricParser> MetricParser::Create(const std::string& regex,
                                                  std::vector<std::string> names) {
  MetricParser p;
  p.names_ = std::move(names);
  if (regex.empty()) return p;
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(8 << 20);
  auto re = std::make_unique<RE2>(regex, options);
  if (!re->ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metricsCollector.regex: does not compile: ", re->error()));
  }
  const auto& groups = re->NamedCapturingGroups();
  if (!groups.count("name") || !groups.count("value")) {
    return absl::InvalidArgumentError(
        "metricsCollector.regex: needs named groups (?P<name>...) and (?P<value>...)");
  }
  p.regex_ = std::move(re);
  return p;
}

bool MetricParser::Wanted(std::string_view name) const {
  if (names_.empty()) return true;
  for (const auto& n : names_) {
    if (n == name) return true;
  }
  return false;
}

void MetricParser::ParseLine(std::string_view line, int64_t time_ms,
                             std::vector<v1::MetricPoint>* out) const {
  if (line.size() > kMaxMetricLineBytes) return;
  std::vector<std::pair<std::string_view, std::string_view>> pairs;
  int64_t step = -1;
  if (regex_) {
    const auto& groups = regex_->NamedCapturingGroups();
    const int n = regex_->NumberOfCapturingGroups() + 1;
    std::vector<re2::StringPiece> m(n);
    const int gi_name = groups.at("name"), gi_value = groups.at("value");
    const int gi_step = groups.count("step") ? groups.at("step") : -1;
    size_t pos = 0;
    re2::StringPiece input(line.data(), line.size());
    while (pos <= line.size() &&
           regex_->Match(input, pos, line.size(), RE2::UNANCHORED, m.data(), n)) {
      std::string_view name(m[gi_name].data(), m[gi_name].size());
      std::string_view value(m[gi_value].data(), m[gi_value].size());
      if (gi_step > 0 && m[gi_step].data()) {
        double s;
        // Bounded before the cast: 1e300 to int64 is undefined behaviour.
        if (ParseNumber(std::string_view(m[gi_step].data(), m[gi_step].size()), &s) &&
            std::isfinite(s) && std::abs(s) < 1e18) {
          step = static_cast<int64_t>(s);
        }
      }
      if (!name.empty()) pairs.emplace_back(name, value);
      size_t end = static_cast<size_t>(m[0].data() + m[0].size() - line.data());
      pos = end > pos ? end : pos + 1;  // an empty match must still move on
    }
  } else {
    // name=value tokens; anything else on the line is ignored.
    size_t i = 0;
    while (i < line.size()) {
      size_t eq = line.find('=', i);
      if (eq == std::string_view::npos) break;
      size_t ne = eq;
      while (ne > i && line[ne - 1] == ' ') --ne;
      size_t ns = ne;
      while (ns > i && IsNameChar(line[ns - 1])) --ns;
      size_t vs = eq + 1;
      while (vs < line.size() && line[vs] == ' ') ++vs;
      size_t ve = vs;
      while (ve < line.size() && line[ve] != ' ' && line[ve] != ',' && line[ve] != '\t' &&
             line[ve] != ';') {
        ++ve;
      }
      if (ns < ne && ve > vs)
        pairs.emplace_back(line.substr(ns, ne - ns), line.substr(vs, ve - vs));
      i = std::max(ve, eq + 1);
    }
  }
  for (const auto& [name, value] : pairs) {
    double s;
    if (IsStepName(name) && ParseNumber(value, &s) && std::isfinite(s) && std::abs(s) < 1e18) {
      step = static_cast<int64_t>(s);
    }
  }
  for (const auto& [name, value] : pairs) {
    if (IsStepName(name) || !Wanted(name)) continue;
    Add(name, value, step, time_ms, out);
  }
}

void MetricParser::ParseJsonLine(std::string_view line, int64_t time_ms,
                                 std::vector<v1::MetricPoint>* out) const {
  if (line.size() > kMaxMetricLineBytes) return;
  YAML::Node node;
  try {
    node = YAML::Load(std::string(line));
  } catch (const YAML::Exception&) {
    return;
  }
  if (!node.IsMap()) return;
  try {
    int64_t step = -1;
    for (const char* key : {"step", "epoch"}) {
      double s;
      if (node[key] && node[key].IsScalar() && ParseNumber(node[key].Scalar(), &s) &&
          std::isfinite(s) && std::abs(s) < 1e18) {
        step = static_cast<int64_t>(s);
      }
    }
    if (node["name"] && node["value"] && node["name"].IsScalar() && node["value"].IsScalar()) {
      if (Wanted(node["name"].Scalar())) {
        Add(node["name"].Scalar(), node["value"].Scalar(), step, time_ms, out);
      }
      return;
    }
    for (const auto& kv : node) {
      if (!kv.first.IsScalar() || !kv.second.IsScalar()) continue;
      const std::string& name = kv.first.Scalar();
      if (IsStepName(name) || !Wanted(name)) continue;
      Add(name, kv.second.Scalar(), step, time_ms, out);
    }
  } catch (const YAML::Exception&) {
  }
}

}  // namespace gangway::common
