// The sweep spec loader on arbitrary text: ParseSweepSpec returns an error or
// a spec, never crashes or hangs; a spec it accepts passes the proto
// validator (the gRPC and Studies path), has a search space, and its trial
// template expands.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "coordinator/sweep_spec.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = gangway::coordinator::ParseSweepSpec(text);
  if (!parsed.ok()) {
    FUZZ_CHECK(!parsed.status().message().empty(), "an error says what is wrong");
    return 0;
  }
  const gangway::v1::SweepSpec& spec = parsed->spec;
  FUZZ_CHECK(gangway::coordinator::ValidateSweepSpec(spec).ok(),
             "a spec ParseSweepSpec accepts passes ValidateSweepSpec");
  FUZZ_CHECK(gangway::coordinator::SearchSpaceOf(spec).ok(),
             "a spec ParseSweepSpec accepts has a search space");
  google::protobuf::Map<std::string, std::string> params;
  // A std::string value: GCC 12 warns (-Wrestrict, a false positive) on the
  // inlined assignment from a literal here.
  const std::string one = "1";
  for (const auto& p : spec.parameters()) params[p.name()] = one;
  for (const auto& arg : spec.trial_template().command()) {
    (void)gangway::coordinator::ExpandTrialParams(arg, params);
  }
  return 0;
}
