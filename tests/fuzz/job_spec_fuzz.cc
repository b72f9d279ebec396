// The job spec loader on arbitrary text: SpecKind and ParseJobSpec must
// return an error or a spec, never crash, hang or grow without bound; a spec
// they accept passes the proto validator (the gRPC path) as well, and the
// quantity parsers take any text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/spec.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)gangway::common::SpecKind(text);
  auto parsed = gangway::common::ParseJobSpec(text);
  if (parsed.ok()) {
    FUZZ_CHECK(gangway::common::ValidateJobSpec(parsed->spec).ok(),
               "a spec ParseJobSpec accepts passes ValidateJobSpec");
    (void)gangway::common::EstimateLaunchBytes(parsed->spec);
  } else {
    FUZZ_CHECK(!parsed.status().message().empty(), "an error says what is wrong");
  }
  if (size <= 64) {
    (void)gangway::common::ParseMilliCpus(text);
    (void)gangway::common::ParseBytes(text);
  }
  return 0;
}
