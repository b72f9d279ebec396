// UTF-8 checks and repair. proto3 string fields must hold valid UTF-8: a
// message with one invalid byte fails to serialize, which on a stream drops
// the whole session. Text from users (specs) is refused when invalid; text
// from programs (a rank's metric lines) is repaired, since nobody is there
// to fix it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace gangway::common {

// The offset of the first byte that is not part of RFC 3629 UTF-8 (no
// overlongs, no surrogates, at most U+10FFFF), or npos when `s` is valid.
size_t InvalidUtf8Offset(std::string_view s);

inline bool IsValidUtf8(std::string_view s) {
  return InvalidUtf8Offset(s) == std::string_view::npos;
}

// `s` with each invalid byte replaced by U+FFFD (as a decoder shows it),
// cut to at most `max_bytes` without splitting a character. The result is
// always valid UTF-8.
std::string ToValidUtf8(std::string_view s, size_t max_bytes = std::string::npos);

}  // namespace gangway::common
