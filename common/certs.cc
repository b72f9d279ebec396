#include "common/certs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/tls.h"

namespace gangway::common {
namespace {

// unique_ptr deleters for OpenSSL's free functions.
template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER_free>>;
using Asn1OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, Deleter<ASN1_OCTET_STRING_free>>;
using Asn1Ia5StringPtr = std::unique_ptr<ASN1_IA5STRING, Deleter<ASN1_IA5STRING_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Deleter<GENERAL_NAME_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;

// Leaves start five minutes in the past so a freshly issued certificate is
// accepted by a peer whose clock runs a little behind.
constexpr long kBackdateSeconds = 5 * 60;
constexpr int kMaxDays = 100 * 365;

// INTERNAL with `what` and OpenSSL's queued errors, which it then clears.
absl::Status OpenSslError(absl::string_view what) {
  std::string detail;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    absl::StrAppend(&detail, detail.empty() ? "" : "; ", buf);
  }
  if (detail.empty()) return absl::InternalError(what);
  return absl::InternalError(absl::StrCat(what, ": ", detail));
}

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Creates `path` with `contents`, mode 0600 whatever the umask, never
// replacing anything (O_EXCL, and O_NOFOLLOW so a planted symlink is not
// followed). A failed write removes the partial file.
absl::Status WriteNewFile(const std::string& path, absl::string_view contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " appeared meanwhile; not overwriting it"));
    }
    return ErrnoError("cannot create", path);
  }
  auto fail = [&](absl::string_view what) {
    absl::Status s = ErrnoError(what, path);
    ::close(fd);
    ::unlink(path.c_str());
    return s;
  };
  // The umask can only remove bits; fchmod makes 0600 exact (a umask of
  // 0277 would otherwise leave the owner unable to write).
  if (::fchmod(fd, 0600) != 0) return fail("cannot chmod");
  for (size_t done = 0; done < contents.size();) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot fsync");
  if (::close(fd) != 0) {
    absl::Status s = ErrnoError("cannot close", path);
    ::unlink(path.c_str());
    return s;
  }
  return absl::OkStatus();
}

// DIR as a directory: made 0700 when missing (its parents with the default
// mode); an existing one is kept as it is.
absl::Status EnsureDirectory(const std::string& dir, std::vector<std::string>& warnings) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(dir, " exists and is not a directory"));
    }
    if (st.st_mode & 077) {
      char mode[8];
      std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
      warnings.push_back(
          absl::StrCat(dir, " is accessible to group or others (mode ", mode, "); chmod 700 it"));
    }
    return absl::OkStatus();
  }
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(dir).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create ", parent.string(), ": ", ec.message()));
  }
  if (::mkdir(dir.c_str(), 0700) != 0) return ErrnoError("cannot create directory", dir);
  if (::chmod(dir.c_str(), 0700) != 0) return ErrnoError("cannot chmod", dir);
  return absl::OkStatus();
}

// The host without brackets, lower case; INVALID_ARGUMENT unless it is an IP
// address or a DNS name (a leading "*." wildcard allowed).
absl::StatusOr<std::string> NormalizeHost(absl::string_view host) {
  std::string h = absl::AsciiStrToLower(absl::StripAsciiWhitespace(host));
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned char buf[16];
  if (::inet_pton(AF_INET, h.c_str(), buf) == 1 || ::inet_pton(AF_INET6, h.c_str(), buf) == 1) {
    return h;
  }
  if (!h.empty() && h.back() == '.') h.pop_back();  // the root label adds nothing to a SAN
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("bad --host \"", host, "\": want an IPv4 or IPv6 address or a DNS name"));
  };
  if (h.empty() || h.size() > 253) return bad();
  std::vector<absl::string_view> labels = absl::StrSplit(h, '.');
  for (size_t i = 0; i < labels.size(); ++i) {
    absl::string_view label = labels[i];
    if (i == 0 && label == "*" && labels.size() > 2) continue;
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return bad();
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(c) && c != '-') return bad();
    }
  }
  return h;
}

bool IsIpAddress(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string ToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return "";
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string ToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return "";
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

// Refuses to prompt: OpenSSL's default callback would ask the terminal for
// the passphrase of an encrypted key.
int NoPassphrase(char*, int, int, void*) { return -1; }

absl::StatusOr<X509Ptr> ParseCertificate(absl::string_view pem, const std::string& path) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr) : nullptr);
  if (!cert) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(path, " holds no PEM certificate"));
  }
  return cert;
}

absl::StatusOr<PkeyPtr> ParseKey(absl::string_view pem, const std::string& path) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr) : nullptr);
  if (!key) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        path, " holds no unencrypted PEM private key (decrypt it into a 0600 file first)"));
  }
  return key;
}

struct Ca {
  X509Ptr cert;
  PkeyPtr key;
};

// The CA from PEM texts, checked: a CA certificate whose key is `key`.
absl::StatusOr<Ca> LoadCa(absl::string_view cert_pem, const std::string& cert_path,
                          absl::string_view key_pem, const std::string& key_path) {
  auto cert = ParseCertificate(cert_pem, cert_path);
  if (!cert.ok()) return cert.status();
  auto key = ParseKey(key_pem, key_path);
  if (!key.ok()) return key.status();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(key_path, " is not the key of the certificate in ", cert_path));
  }
  if (X509_check_ca(cert->get()) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(cert_path, " is not a CA certificate (no basicConstraints CA:TRUE)"));
  }
  return Ca{std::move(*cert), std::move(*key)};
}

absl::StatusOr<PkeyPtr> NewKey() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("cannot generate an EC P-256 key");
  return key;
}

absl::Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslError(absl::StrCat("cannot add extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

// subjectAltName from normalized hosts: IP or DNS entries. Built as
// GENERAL_NAMEs rather than a "DNS:a,IP:b" config string, so no host can
// smuggle in a second entry through a comma.
absl::Status AddSubjectAltNames(X509* cert, const std::vector<std::string>& hosts) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) return OpenSslError("cannot allocate subjectAltName");
  for (const std::string& host : hosts) {
    GeneralNamePtr name(GENERAL_NAME_new());
    if (!name) return OpenSslError("cannot allocate subjectAltName");
    if (IsIpAddress(host)) {
      Asn1OctetStringPtr ip(a2i_IPADDRESS(host.c_str()));
      if (!ip) return OpenSslError(absl::StrCat("cannot encode IP address ", host));
      GENERAL_NAME_set0_value(name.get(), GEN_IPADD, ip.release());
    } else {
      Asn1Ia5StringPtr dns(ASN1_IA5STRING_new());
      if (!dns || ASN1_STRING_set(dns.get(), host.data(), static_cast<int>(host.size())) != 1) {
        return OpenSslError(absl::StrCat("cannot encode DNS name ", host));
      }
      GENERAL_NAME_set0_value(name.get(), GEN_DNS, dns.release());
    }
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) {
      return OpenSslError("cannot build subjectAltName");
    }
    name.release();  // the stack owns it now
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError("cannot add subjectAltName");
  }
  return absl::OkStatus();
}

struct CertSpec {
  std::string common_name = {};
  int days = 0;
  bool is_ca = false;
  const char* extended_key_usage = nullptr;  // leaves: "serverAuth" or "clientAuth"
  std::vector<std::string> alt_names = {};   // normalized hosts
};

// A certificate for `key` per `spec`, signed by `ca` (self-signed when ca is
// null).
absl::StatusOr<X509Ptr> Issue(const CertSpec& spec, EVP_PKEY* key, const Ca* ca) {
  X509Ptr cert(X509_new());
  if (!cert) return OpenSslError("cannot allocate a certificate");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) return OpenSslError("X509_set_version");

  // 128 random bits: unpredictable serials defeat chosen-prefix collision
  // attacks, and two runs never issue the same serial.
  BnPtr serial_bn(BN_new());
  do {
    if (!serial_bn || BN_rand(serial_bn.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) {
      return OpenSslError("cannot draw a serial number");
    }
  } while (BN_is_zero(serial_bn.get()));
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(serial_bn.get(), nullptr));
  if (!serial || X509_set_serialNumber(cert.get(), serial.get()) != 1) {
    return OpenSslError("cannot set the serial number");
  }

  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) ||
      !X509_time_adj_ex(X509_getm_notAfter(cert.get()), spec.days, 0, nullptr)) {
    return OpenSslError("cannot set the validity");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(spec.common_name.c_str()),
                                 -1, -1, 0) != 1) {
    return OpenSslError("cannot set the subject");
  }
  X509* issuer = ca ? ca->cert.get() : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer)) != 1 ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return OpenSslError("cannot set the issuer or public key");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert.get(), nullptr, nullptr, 0);
  std::vector<std::pair<int, const char*>> extensions;
  if (spec.is_ca) {
    // pathlen:0: this CA signs leaves only, so a leaked leaf key can never
    // be turned into a sub-CA even if some verifier ignored its EKU.
    extensions = {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                  {NID_key_usage, "critical,keyCertSign,cRLSign"}};
  } else {
    extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                  // ECDSA keys sign the handshake; they never encipher keys.
                  {NID_key_usage, "critical,digitalSignature"},
                  {NID_ext_key_usage, spec.extended_key_usage}};
  }
  // The subject key identifier first: the authority key identifier of a
  // self-signed CA is computed from it.
  extensions.push_back({NID_subject_key_identifier, "hash"});
  extensions.push_back({NID_authority_key_identifier, "keyid:always"});
  for (const auto& [nid, value] : extensions) {
    if (auto s = AddExtension(cert.get(), &ctx, nid, value); !s.ok()) return s;
  }
  if (!spec.alt_names.empty()) {
    if (auto s = AddSubjectAltNames(cert.get(), spec.alt_names); !s.ok()) return s;
  }
  EVP_PKEY* signer = ca ? ca->key.get() : key;
  if (X509_sign(cert.get(), signer, EVP_sha256()) <= 0) {
    return OpenSslError("cannot sign the certificate");
  }
  return cert;
}

// Writes KEY then CERT, both new; a failed certificate write removes the key
// again, so a retry does not find a lone key it must refuse to overwrite.
absl::Status WritePair(const std::string& key_path, EVP_PKEY* key, const std::string& cert_path,
                       X509* cert, std::vector<std::string>& written) {
  std::string key_pem = ToPem(key);
  std::string cert_pem = ToPem(cert);
  if (key_pem.empty() || cert_pem.empty()) return OpenSslError("cannot encode PEM");
  if (auto s = WriteNewFile(key_path, key_pem); !s.ok()) return s;
  if (auto s = WriteNewFile(cert_path, cert_pem); !s.ok()) {
    ::unlink(key_path.c_str());
    return s;
  }
  written.push_back(cert_path);
  written.push_back(key_path);
  return absl::OkStatus();
}

// The requested hosts a kept coordinator certificate lacks.
std::vector<std::string> MissingAltNames(X509* cert, const std::vector<std::string>& hosts) {
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  std::vector<std::string> missing;
  for (const std::string& host : hosts) {
    bool ip = IsIpAddress(host);
    Asn1OctetStringPtr want_ip(ip ? a2i_IPADDRESS(host.c_str()) : nullptr);
    bool found = false;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()) && !found; ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
      if (ip && want_ip && name->type == GEN_IPADD) {
        found = ASN1_STRING_cmp(name->d.iPAddress, want_ip.get()) == 0;
      } else if (!ip && name->type == GEN_DNS) {
        absl::string_view dns(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)),
                              static_cast<size_t>(ASN1_STRING_length(name->d.dNSName)));
        found = absl::EqualsIgnoreCase(dns, host);
      }
    }
    if (!found) missing.push_back(host);
  }
  return missing;
}

// DIR's CA: the given one (copied to DIR/ca.crt), the one already in DIR, or
// a new one.
absl::StatusOr<Ca> ObtainCa(const CertsInitOptions& options, CertsInitResult& result) {
  const std::string ca_crt = options.dir + "/ca.crt";
  const std::string ca_key = options.dir + "/ca.key";
  if (!options.ca_cert_file.empty()) {
    auto cert_pem = ReadTextFile(options.ca_cert_file, "CA certificate");
    if (!cert_pem.ok()) return cert_pem.status();
    auto key_pem = ReadPrivateFile(options.ca_key_file, "CA key");
    if (!key_pem.ok()) return key_pem.status();
    auto ca = LoadCa(*cert_pem, options.ca_cert_file, *key_pem, options.ca_key_file);
    if (!ca.ok()) return ca.status();
    if (Exists(ca_crt)) {
      auto present = ReadTextFile(ca_crt, "CA certificate");
      if (!present.ok()) return present.status();
      auto cert = ParseCertificate(*present, ca_crt);
      if (!cert.ok()) return cert.status();
      if (X509_cmp(cert->get(), ca->cert.get()) != 0) {
        return absl::FailedPreconditionError(
            absl::StrCat(ca_crt, " holds a different CA than ", options.ca_cert_file,
                         "; use another directory, or remove it to switch CAs"));
      }
      result.kept.push_back(ca_crt);
    } else {
      // Verbatim, so a chain (an intermediate CA followed by its root) stays
      // whole for the clients that trust DIR/ca.crt.
      if (auto s = WriteNewFile(ca_crt, *cert_pem); !s.ok()) return s;
      result.written.push_back(ca_crt);
    }
    return ca;
  }
  if (Exists(ca_crt)) {
    if (!Exists(ca_key)) {
      return absl::FailedPreconditionError(absl::StrCat(
          ca_crt, " has no ca.key beside it (a CA kept elsewhere?): pass --ca-cert and --ca-key"));
    }
    auto cert_pem = ReadTextFile(ca_crt, "CA certificate");
    if (!cert_pem.ok()) return cert_pem.status();
    auto key_pem = ReadPrivateFile(ca_key, "CA key");
    if (!key_pem.ok()) return key_pem.status();
    auto ca = LoadCa(*cert_pem, ca_crt, *key_pem, ca_key);
    if (!ca.ok()) return ca.status();
    result.kept.push_back(ca_crt);
    return ca;
  }
  if (Exists(ca_key)) {
    return absl::FailedPreconditionError(absl::StrCat(
        ca_key, " exists without ca.crt; not overwriting it (remove it to make a new CA)"));
  }
  auto key = NewKey();
  if (!key.ok()) return key.status();
  CertSpec spec{.common_name = kCaCommonName, .days = options.ca_days, .is_ca = true};
  auto cert = Issue(spec, key->get(), nullptr);
  if (!cert.ok()) return cert.status();
  if (auto s = WritePair(ca_key, key->get(), ca_crt, cert->get(), result.written); !s.ok()) {
    return s;
  }
  return Ca{std::move(*cert), std::move(*key)};
}

// NAME.crt and NAME.key in DIR unless both exist; a lone one is refused.
absl::Status EnsureLeaf(const std::string& dir, const std::string& name, const CertSpec& spec,
                        const Ca& ca, CertsInitResult& result) {
  const std::string crt = absl::StrCat(dir, "/", name, ".crt");
  const std::string key_path = absl::StrCat(dir, "/", name, ".key");
  bool have_crt = Exists(crt), have_key = Exists(key_path);
  if (have_crt && have_key) {
    result.kept.push_back(crt);
    auto pem = ReadTextFile(crt, "certificate");
    if (!pem.ok()) return pem.status();
    auto cert = ParseCertificate(*pem, crt);
    if (!cert.ok()) return cert.status();
    if (X509_verify(cert->get(), ca.key.get()) != 1) {
      ERR_clear_error();
      result.warnings.push_back(absl::StrCat(crt, " was not signed by this CA; remove ", name,
                                             ".crt and ", name, ".key to re-issue"));
    }
    std::vector<std::string> missing = MissingAltNames(cert->get(), spec.alt_names);
    if (!missing.empty()) {
      result.warnings.push_back(absl::StrCat(crt, " kept without ", absl::StrJoin(missing, ", "),
                                             "; remove ", name, ".crt and ", name,
                                             ".key to re-issue it with them"));
    }
    return absl::OkStatus();
  }
  if (have_crt != have_key) {
    return absl::FailedPreconditionError(
        absl::StrCat(have_crt ? crt : key_path, " exists without ", have_crt ? key_path : crt,
                     "; not overwriting it (remove it to re-issue)"));
  }
  auto key = NewKey();
  if (!key.ok()) return key.status();
  auto cert = Issue(spec, key->get(), &ca);
  if (!cert.ok()) return cert.status();
  return WritePair(key_path, key->get(), crt, cert->get(), result.written);
}

}  // namespace

absl::Status ValidateNodeName(std::string_view name) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad node name \"", absl::string_view(name.data(), name.size()), "\": ", why));
  };
  if (name.empty()) return bad("empty");
  if (name.size() > 63) return bad("longer than 63 characters");
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return bad("want a DNS label: lowercase letters, digits and '-'");
    }
  }
  if (name.front() == '-' || name.back() == '-') return bad("starts or ends with '-'");
  if (name == "ca" || name == "coordinator") {
    return bad("taken by the directory's own ca.* or coordinator.* files");
  }
  return absl::OkStatus();
}

absl::StatusOr<CertsInitResult> InitCertificates(const CertsInitOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("no directory given");
  if (options.days < 1 || options.days > kMaxDays) {
    return absl::InvalidArgumentError(
        absl::StrCat("--days ", options.days, ": want 1 to ", kMaxDays));
  }
  if (options.ca_days < 1 || options.ca_days > kMaxDays) {
    return absl::InvalidArgumentError(
        absl::StrCat("CA validity ", options.ca_days, " days: want 1 to ", kMaxDays));
  }
  if (options.ca_cert_file.empty() != options.ca_key_file.empty()) {
    return absl::InvalidArgumentError("--ca-cert and --ca-key go together");
  }
  std::vector<std::string> nodes;
  std::set<std::string> seen;
  for (const std::string& node : options.nodes) {
    if (auto s = ValidateNodeName(node); !s.ok()) return s;
    if (seen.insert(node).second) nodes.push_back(node);
  }
  // localhost and the loopback addresses always: the CLI and agents on the
  // coordinator's own machine connect through them.
  std::vector<std::string> hosts = {"localhost", "127.0.0.1", "::1"};
  seen = {hosts.begin(), hosts.end()};
  for (const std::string& host : options.hosts) {
    auto h = NormalizeHost(host);
    if (!h.ok()) return h.status();
    if (seen.insert(*h).second) hosts.push_back(*h);
  }

  CertsInitResult result;
  if (auto s = EnsureDirectory(options.dir, result.warnings); !s.ok()) return s;
  auto ca = ObtainCa(options, result);
  if (!ca.ok()) return ca.status();

  CertSpec coordinator{.common_name = kCoordinatorCommonName,
                       .days = options.days,
                       .extended_key_usage = "serverAuth",
                       .alt_names = hosts};
  if (auto s = EnsureLeaf(options.dir, "coordinator", coordinator, *ca, result); !s.ok()) {
    return s;
  }
  for (const std::string& node : nodes) {
    CertSpec spec{.common_name = node,
                  .days = options.days,
                  .extended_key_usage = "clientAuth",
                  .alt_names = {node}};
    if (auto s = EnsureLeaf(options.dir, node, spec, *ca, result); !s.ok()) return s;
  }
  return result;
}

}  // namespace gangway::common
