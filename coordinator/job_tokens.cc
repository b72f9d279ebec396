#include "coordinator/job_tokens.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/tls.h"

namespace gangway::coordinator {
namespace {

constexpr absl::string_view kPrefix = "gwj1.";
constexpr size_t kKeyBytes = 32;

}  // namespace

absl::StatusOr<JobTokens> JobTokens::Open(const std::string& key_path) {
  if (::access(key_path.c_str(), F_OK) == 0) {
    absl::StatusOr<std::string> key = common::ReadPrivateFile(key_path, "job token key");
    if (!key.ok()) return key.status();
    if (key->size() < kKeyBytes) {
      return absl::InvalidArgumentError(absl::StrCat("job token key: '", key_path, "' holds ",
                                                     key->size(), " bytes, expected ", kKeyBytes));
    }
    return JobTokens(std::move(*key));
  }
  std::string key(kKeyBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1) {
    return absl::InternalError("job token key: no random bytes from OpenSSL");
  }
  const int fd = ::open(key_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("job token key: cannot create '", key_path, "': ", std::strerror(errno)));
  }
  const bool ok =
      ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(key_path.c_str());
    return absl::UnavailableError(absl::StrCat("job token key: cannot write '", key_path, "'"));
  }
  return JobTokens(std::move(key));
}

std::string JobTokens::Mac(absl::string_view job_id, int32_t attempt) const {
  const std::string message = absl::StrCat(kPrefix, job_id, "#", attempt);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(mac), len));
}

std::string JobTokens::Mint(absl::string_view job_id, int32_t attempt) const {
  return absl::StrCat(kPrefix, job_id, ".", attempt, ".", Mac(job_id, attempt));
}

bool JobTokens::IsJobToken(absl::string_view token) { return absl::StartsWith(token, kPrefix); }

absl::StatusOr<JobTokens::Claim> JobTokens::Verify(absl::string_view token) const {
  const auto bad = absl::UnauthenticatedError("malformed or forged job token");
  if (!IsJobToken(token)) return bad;
  absl::string_view rest = token.substr(kPrefix.size());
  const size_t mac_dot = rest.rfind('.');
  if (mac_dot == absl::string_view::npos) return bad;
  const absl::string_view mac = rest.substr(mac_dot + 1);
  rest = rest.substr(0, mac_dot);
  const size_t attempt_dot = rest.rfind('.');
  if (attempt_dot == absl::string_view::npos || attempt_dot == 0) return bad;
  Claim claim;
  claim.job_id = std::string(rest.substr(0, attempt_dot));
  const absl::string_view attempt = rest.substr(attempt_dot + 1);
  // Exactly as Mint writes it: SimpleAtoi alone also takes " 1", "+1" and
  // "01", and one token must have one spelling (logs, revocation lists).
  if (!absl::SimpleAtoi(attempt, &claim.attempt) || claim.attempt <= 0 ||
      absl::StrCat(claim.attempt) != attempt) {
    return bad;
  }
  const std::string want = Mac(claim.job_id, claim.attempt);
  if (mac.size() != want.size() || CRYPTO_memcmp(mac.data(), want.data(), want.size()) != 0) {
    return bad;
  }
  return claim;
}

}  // namespace gangway::coordinator
