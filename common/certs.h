// `gangway certs init`: a private CA and the certificates of a cluster, made
// with OpenSSL's C API (no openssl binary needed).
//
// DIR holds ca.crt, ca.key (only when this made the CA), coordinator.crt,
// coordinator.key and NAME.crt, NAME.key per node. Keys are EC P-256.
//   - CA: CN "gangway CA", basicConstraints CA:TRUE, pathlen:0 (critical),
//     keyUsage keyCertSign, cRLSign.
// All carry random 128-bit serials and subject/authority key identifiers;
// leaves have basicConstraints CA:FALSE and keyUsage digitalSignature.
//   - coordinator: CN "gangway-coordinator", extendedKeyUsage serverAuth
//     only, SANs: the hosts plus localhost, 127.0.0.1 and ::1.
//   - node NAME: CN NAME, SAN DNS:NAME, extendedKeyUsage clientAuth only.
// The EKUs keep roles apart: a node's certificate cannot serve as the
// coordinator, and the coordinator's cannot pose as a node.
//
// Every file is created 0600 with O_EXCL and DIR 0700, whatever the umask;
// nothing is ever overwritten. Running again on the same DIR reuses its CA
// and adds only what is missing (a new node); to re-issue a certificate,
// delete its .crt and .key first.
//
// Thread-compatible: free functions; two runs on one DIR at once may both
// fail on O_EXCL but never corrupt a file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gangway::common {

inline constexpr char kCaCommonName[] = "gangway CA";
inline constexpr char kCoordinatorCommonName[] = "gangway-coordinator";

// The `= {}`s let callers use designated initializers under GCC 12's
// -Wextra (-Wmissing-field-initializers skips members that have one).
struct CertsInitOptions {
  std::string dir = {};
  // The coordinator's extra SANs: an IP SAN when one parses as IPv4/IPv6
  // (brackets allowed: "[fd00::1]"), a DNS SAN otherwise.
  std::vector<std::string> hosts = {};
  std::vector<std::string> nodes = {};  // DNS labels: [a-z0-9-], at most 63
  int days = 825;                       // leaves (the CA/Browser Forum's old ceiling)
  int ca_days = 3650;                   // a CA this run makes
  // An existing CA (both or neither) that signs the leaves instead of one in
  // DIR; its certificate file is copied to DIR/ca.crt, its key stays put.
  std::string ca_cert_file = {};
  std::string ca_key_file = {};
};

struct CertsInitResult {
  std::vector<std::string> written;  // paths created, in order
  std::vector<std::string> kept;     // certificates already there, left alone
  // Things the caller should tell the user (e.g. a kept coordinator
  // certificate lacks a requested host).
  std::vector<std::string> warnings;
};

// INVALID_ARGUMENT for bad options (naming the node name, host or file);
// FAILED_PRECONDITION when DIR is in a state this must not repair by
// overwriting (a .key without its .crt, a different CA already in DIR, a CA
// certificate without its key); INTERNAL for I/O and OpenSSL failures.
absl::StatusOr<CertsInitResult> InitCertificates(const CertsInitOptions& options);

// A node name as a certificate may carry it: a DNS label of lowercase
// letters, digits and '-', not starting or ending with '-', at most 63
// characters; "ca" and "coordinator" are taken by DIR's own files.
absl::Status ValidateNodeName(std::string_view name);

}  // namespace gangway::common
