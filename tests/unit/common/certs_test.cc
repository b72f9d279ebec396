#include "common/certs.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

#include "gangway/v1/gangway.grpc.pb.h"

namespace gangway::common {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using ::testing::UnorderedElementsAre;

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

X509Ptr LoadCert(const std::string& path) {
  std::string pem = ReadAll(path);
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  EXPECT_TRUE(cert) << path;
  return cert;
}

// X509_verify_cert of `cert_path` against the CA in `ca_path`, for a TLS
// server (X509_PURPOSE_SSL_SERVER), a TLS client, or any purpose (0).
bool Verifies(const std::string& ca_path, const std::string& cert_path, int purpose = 0) {
  X509Ptr ca = LoadCert(ca_path);
  X509Ptr cert = LoadCert(cert_path);
  if (!ca || !cert) return false;
  StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca.get());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  if (purpose != 0) X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  bool ok = X509_verify_cert(ctx.get()) == 1;
  ERR_clear_error();
  return ok;
}

std::string CommonName(X509* cert) {
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof(buf));
  return buf;
}

// "DNS:name" and "IP:addr" entries of the subjectAltName.
std::set<std::string> AltNames(X509* cert) {
  std::set<std::string> out;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      out.insert("DNS:" +
                 std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)),
                             ASN1_STRING_length(name->d.dNSName)));
    } else if (name->type == GEN_IPADD) {
      char text[INET6_ADDRSTRLEN] = {};
      int len = ASN1_STRING_length(name->d.iPAddress);
      inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(name->d.iPAddress), text,
                sizeof(text));
      out.insert("IP:" + std::string(text));
    }
  }
  return out;
}

int ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::set<std::string> FilesIn(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.insert(e.path().filename().string());
  }
  return out;
}

class CertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/certs_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/pki";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  CertsInitResult Init(CertsInitOptions options) {
    auto result = InitCertificates(options);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CertsInitResult{};
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string root_;
  std::string dir_;
};

TEST_F(CertsTest, MakesACaCoordinatorAndNodesThatVerify) {
  CertsInitResult result =
      Init({.dir = dir_,
            .hosts = {"10.1.2.3", "coord.example.com", "[fd00::7]", "Head.Lan."},
            .nodes = {"n1", "gpu-node-02"}});
  EXPECT_THAT(FilesIn(dir_),
              UnorderedElementsAre("ca.crt", "ca.key", "coordinator.crt", "coordinator.key",
                                   "n1.crt", "n1.key", "gpu-node-02.crt", "gpu-node-02.key"));
  EXPECT_EQ(result.written.size(), 8u);
  EXPECT_TRUE(result.kept.empty());
  EXPECT_TRUE(result.warnings.empty());

  X509Ptr ca = LoadCert(Path("ca.crt"));
  EXPECT_EQ(CommonName(ca.get()), "gangway CA");
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_TRUE(X509_get_key_usage(ca.get()) & KU_KEY_CERT_SIGN);
  EXPECT_TRUE(X509_get_key_usage(ca.get()) & KU_CRL_SIGN);
  int crit = 0;
  BASIC_CONSTRAINTS* bc = static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(ca.get(), NID_basic_constraints, &crit, nullptr));
  ASSERT_NE(bc, nullptr);
  EXPECT_TRUE(bc->ca);
  EXPECT_EQ(crit, 1);
  BASIC_CONSTRAINTS_free(bc);
  EXPECT_NE(X509_get0_subject_key_id(ca.get()), nullptr);
  EXPECT_TRUE(Verifies(Path("ca.crt"), Path("ca.crt")));

  // The coordinator: serverAuth only, with the hosts and loopback names.
  X509Ptr coordinator = LoadCert(Path("coordinator.crt"));
  EXPECT_EQ(CommonName(coordinator.get()), "gangway-coordinator");
  EXPECT_EQ(X509_get_extended_key_usage(coordinator.get()), static_cast<uint32_t>(XKU_SSL_SERVER));
  EXPECT_THAT(AltNames(coordinator.get()),
              UnorderedElementsAre("DNS:localhost", "IP:127.0.0.1", "IP:::1", "IP:10.1.2.3",
                                   "DNS:coord.example.com", "IP:fd00::7", "DNS:head.lan"));
  EXPECT_NE(X509_get0_subject_key_id(coordinator.get()), nullptr);
  EXPECT_NE(X509_get0_authority_key_id(coordinator.get()), nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(coordinator.get()),
                                  X509_get0_subject_key_id(ca.get())),
            0);
  EXPECT_TRUE(Verifies(Path("ca.crt"), Path("coordinator.crt")));
  EXPECT_TRUE(Verifies(Path("ca.crt"), Path("coordinator.crt"), X509_PURPOSE_SSL_SERVER));
  EXPECT_FALSE(Verifies(Path("ca.crt"), Path("coordinator.crt"), X509_PURPOSE_SSL_CLIENT));

  // A node: clientAuth only, CN and DNS SAN its name.
  for (std::string node : {"n1", "gpu-node-02"}) {
    X509Ptr cert = LoadCert(Path(node + ".crt"));
    EXPECT_EQ(CommonName(cert.get()), node);
    EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<uint32_t>(XKU_SSL_CLIENT));
    EXPECT_THAT(AltNames(cert.get()), ElementsAre("DNS:" + node));
    EXPECT_EQ(X509_check_ca(cert.get()), 0);
    EXPECT_TRUE(Verifies(Path("ca.crt"), Path(node + ".crt"), X509_PURPOSE_SSL_CLIENT));
    EXPECT_FALSE(Verifies(Path("ca.crt"), Path(node + ".crt"), X509_PURPOSE_SSL_SERVER));
  }

  // Random 128-bit serials: all different.
  std::set<std::string> serials;
  for (std::string name : {"ca", "coordinator", "n1", "gpu-node-02"}) {
    X509Ptr cert = LoadCert(Path(name + ".crt"));
    const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.get());
    EXPECT_GE(ASN1_STRING_length(serial), 14);
    serials.insert(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(serial)),
                               ASN1_STRING_length(serial)));
  }
  EXPECT_EQ(serials.size(), 4u);

  // Validity: --days for leaves, 3650 for the CA.
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(coordinator.get())), 1);
  EXPECT_NEAR(days, 825, 1);
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(ca.get())), 1);
  EXPECT_NEAR(days, 3650, 1);
}

TEST_F(CertsTest, FilesAre0600AndTheDirectory0700WhateverTheUmask) {
  mode_t old = ::umask(0);
  Init({.dir = dir_, .nodes = {"n1"}});
  ::umask(old);
  EXPECT_EQ(ModeOf(dir_), 0700);
  for (const std::string& name : FilesIn(dir_)) EXPECT_EQ(ModeOf(Path(name)), 0600) << name;

  // A umask that takes the owner's write bit still yields 0600.
  std::string other = root_ + "/other";
  old = ::umask(0277);
  Init({.dir = other});
  ::umask(old);
  EXPECT_EQ(ModeOf(other), 0700);
  for (const std::string& name : FilesIn(other)) {
    EXPECT_EQ(ModeOf(other + "/" + name), 0600) << name;
  }
}

TEST_F(CertsTest, RerunAddsOnlyTheNewNodeAndReusesTheCa) {
  Init({.dir = dir_, .nodes = {"n1"}});
  std::string ca = ReadAll(Path("ca.crt"));
  std::string n1 = ReadAll(Path("n1.crt"));
  std::string coordinator = ReadAll(Path("coordinator.crt"));

  CertsInitResult result = Init({.dir = dir_, .nodes = {"n4"}});
  EXPECT_THAT(result.written, UnorderedElementsAre(Path("n4.crt"), Path("n4.key")));
  EXPECT_THAT(result.kept, UnorderedElementsAre(Path("ca.crt"), Path("coordinator.crt")));
  EXPECT_EQ(ReadAll(Path("ca.crt")), ca);
  EXPECT_EQ(ReadAll(Path("n1.crt")), n1);
  EXPECT_EQ(ReadAll(Path("coordinator.crt")), coordinator);
  EXPECT_TRUE(Verifies(Path("ca.crt"), Path("n4.crt"), X509_PURPOSE_SSL_CLIENT));
  EXPECT_EQ(ModeOf(Path("n4.key")), 0600);

  // Everything present: nothing written; a kept coordinator certificate
  // without a newly requested host is reported, not replaced.
  result = Init({.dir = dir_, .hosts = {"10.9.9.9"}, .nodes = {"n1", "n4"}});
  EXPECT_TRUE(result.written.empty());
  ASSERT_EQ(result.warnings.size(), 1u);
  EXPECT_THAT(result.warnings[0], HasSubstr("10.9.9.9"));
  EXPECT_EQ(ReadAll(Path("coordinator.crt")), coordinator);

  // Re-issuing: remove the pair, run again.
  std::filesystem::remove(Path("coordinator.crt"));
  std::filesystem::remove(Path("coordinator.key"));
  result = Init({.dir = dir_, .hosts = {"10.9.9.9"}});
  EXPECT_TRUE(result.warnings.empty());
  X509Ptr cert = LoadCert(Path("coordinator.crt"));
  EXPECT_THAT(AltNames(cert.get()), IsSupersetOf({"IP:10.9.9.9"}));
  EXPECT_EQ(ReadAll(Path("ca.crt")), ca);
}

TEST_F(CertsTest, NeverOverwritesALoneFile) {
  Init({.dir = dir_, .nodes = {"n1"}});
  std::filesystem::remove(Path("n1.crt"));
  std::string key = ReadAll(Path("n1.key"));
  auto result = InitCertificates({.dir = dir_, .nodes = {"n1"}});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(), HasSubstr("n1.key"));
  EXPECT_EQ(ReadAll(Path("n1.key")), key);

  // A CA key without its certificate is not replaced by a new CA either.
  std::string other = root_ + "/other";
  Init({.dir = other});
  std::filesystem::remove(other + "/ca.crt");
  result = InitCertificates({.dir = other});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(), HasSubstr("ca.key"));
}

TEST_F(CertsTest, AnExistingCaSignsTheLeaves) {
  std::string external = root_ + "/external";
  Init({.dir = external});
  std::string ca_cert = external + "/ca.crt", ca_key = external + "/ca.key";

  CertsInitResult result =
      Init({.dir = dir_, .nodes = {"n1"}, .ca_cert_file = ca_cert, .ca_key_file = ca_key});
  EXPECT_THAT(FilesIn(dir_), UnorderedElementsAre("ca.crt", "coordinator.crt", "coordinator.key",
                                                  "n1.crt", "n1.key"));
  EXPECT_EQ(ReadAll(Path("ca.crt")), ReadAll(ca_cert));
  EXPECT_EQ(ModeOf(Path("ca.crt")), 0600);
  EXPECT_TRUE(Verifies(ca_cert, Path("coordinator.crt"), X509_PURPOSE_SSL_SERVER));
  EXPECT_TRUE(Verifies(ca_cert, Path("n1.crt"), X509_PURPOSE_SSL_CLIENT));

  // Adding a node later needs the CA again: its key is not in DIR.
  auto missing = InitCertificates({.dir = dir_, .nodes = {"n2"}});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.status().message(), HasSubstr("--ca-key"));
  result = Init({.dir = dir_, .nodes = {"n2"}, .ca_cert_file = ca_cert, .ca_key_file = ca_key});
  EXPECT_THAT(result.written, UnorderedElementsAre(Path("n2.crt"), Path("n2.key")));
  EXPECT_TRUE(Verifies(ca_cert, Path("n2.crt"), X509_PURPOSE_SSL_CLIENT));

  // Another CA than the one in DIR is refused.
  std::string stranger = root_ + "/stranger";
  Init({.dir = stranger});
  auto wrong = InitCertificates({.dir = dir_,
                                 .nodes = {"n3"},
                                 .ca_cert_file = stranger + "/ca.crt",
                                 .ca_key_file = stranger + "/ca.key"});
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);

  // The key must match the certificate, and both flags go together.
  auto mismatched = InitCertificates(
      {.dir = root_ + "/x", .ca_cert_file = ca_cert, .ca_key_file = stranger + "/ca.key"});
  EXPECT_EQ(mismatched.status().code(), absl::StatusCode::kInvalidArgument);
  auto half = InitCertificates({.dir = root_ + "/y", .ca_cert_file = ca_cert});
  EXPECT_EQ(half.status().code(), absl::StatusCode::kInvalidArgument);

  // A leaf is no CA.
  auto leaf = InitCertificates({.dir = root_ + "/z",
                                .ca_cert_file = Path("coordinator.crt"),
                                .ca_key_file = Path("coordinator.key")});
  EXPECT_EQ(leaf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(leaf.status().message(), HasSubstr("not a CA"));
}

TEST_F(CertsTest, BadNodeNamesAndHostsRefused) {
  for (std::string name : std::vector<std::string>{"N1", "node_1", "-n1", "n1-", "n.1", "", "ca",
                                                   "coordinator", std::string(64, 'a'), "n 1"}) {
    auto result = InitCertificates({.dir = dir_, .nodes = {"ok", name}});
    ASSERT_FALSE(result.ok()) << name;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(result.status().message(), HasSubstr("\"" + name + "\"")) << name;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_));  // nothing made before the checks
  EXPECT_TRUE(ValidateNodeName(std::string(63, 'a')).ok());

  for (std::string host : {"bad host", "a,DNS:evil.com", "-x.com", "", "a..b"}) {
    auto result = InitCertificates({.dir = dir_, .hosts = {host}});
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << host;
  }
  EXPECT_EQ(InitCertificates({.dir = dir_, .days = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- A TLS handshake through gRPC with the certificates made above. ---

// Records the client certificate's common name of each call.
class RecordingControl final : public v1::Control::Service {
 public:
  grpc::Status ListNodes(grpc::ServerContext* context, const v1::ListNodesRequest*,
                         v1::ListNodesResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    common_names_.clear();
    for (const auto& value : context->auth_context()->FindPropertyValues("x509_common_name")) {
      common_names_.emplace_back(value.data(), value.size());
    }
    return grpc::Status::OK;
  }
  std::vector<std::string> common_names() {
    std::lock_guard<std::mutex> lock(mu_);
    return common_names_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> common_names_;
};

class CertsTlsHandshakeTest : public CertsTest {
 protected:
  void StartServer(const std::string& cert, const std::string& key) {
    grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = ReadAll(Path("ca.crt"));
    options.pem_key_cert_pairs.push_back({ReadAll(key), ReadAll(cert)});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(options), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
    CertsTest::TearDown();
  }

  // One ListNodes call to the server at `host` with the given client
  // certificate (none when cert is empty), trusting `ca`.
  grpc::Status Call(const std::string& ca, const std::string& cert, const std::string& key,
                    const std::string& host = "127.0.0.1") {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = ReadAll(ca);
    if (!cert.empty()) {
      options.pem_cert_chain = ReadAll(cert);
      options.pem_private_key = ReadAll(key);
    }
    return CallWith(grpc::SslCredentials(options), host);
  }
  grpc::Status CallWith(std::shared_ptr<grpc::ChannelCredentials> creds,
                        const std::string& host = "127.0.0.1") {
    auto channel = grpc::CreateChannel(host + ":" + std::to_string(port_), creds);
    auto stub = v1::Control::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListNodesResponse response;
    return stub->ListNodes(&context, v1::ListNodesRequest(), &response);
  }

  RecordingControl service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(CertsTlsHandshakeTest, NodeCertificateIdentifiesTheNode) {
  Init({.dir = dir_, .nodes = {"n1"}});
  StartServer(Path("coordinator.crt"), Path("coordinator.key"));

  grpc::Status status = Call(Path("ca.crt"), Path("n1.crt"), Path("n1.key"));
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(service_.common_names(), ElementsAre("n1"));

  // The coordinator's SANs: localhost and ::1 verify too.
  status = Call(Path("ca.crt"), Path("n1.crt"), Path("n1.key"), "localhost");
  EXPECT_TRUE(status.ok()) << status.error_message();

  // Without a client certificate (the CLI and ranks use tokens) the call is
  // let through with no certificate identity.
  status = Call(Path("ca.crt"), "", "");
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(service_.common_names().empty());
}

TEST_F(CertsTlsHandshakeTest, ForeignCaPlaintextAndWrongRolesFail) {
  Init({.dir = dir_, .nodes = {"n1"}});
  std::string other = root_ + "/other";
  Init({.dir = other, .nodes = {"n1"}});
  StartServer(Path("coordinator.crt"), Path("coordinator.key"));

  // A node certificate from another CA, even with the same name.
  grpc::Status status = Call(Path("ca.crt"), other + "/n1.crt", other + "/n1.key");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();

  // A plaintext client.
  status = CallWith(grpc::InsecureChannelCredentials());
  EXPECT_FALSE(status.ok());

  // A client that trusts another CA does not accept this coordinator.
  status = Call(other + "/ca.crt", other + "/n1.crt", other + "/n1.key");
  EXPECT_FALSE(status.ok());

  // The coordinator's certificate cannot pose as a node (serverAuth only).
  status = Call(Path("ca.crt"), Path("coordinator.crt"), Path("coordinator.key"));
  EXPECT_FALSE(status.ok());

  EXPECT_TRUE(service_.common_names().empty());
}

TEST_F(CertsTlsHandshakeTest, NodeCertificateCannotServe) {
  Init({.dir = dir_, .hosts = {"127.0.0.1"}, .nodes = {"n1", "n2"}});
  StartServer(Path("n1.crt"), Path("n1.key"));
  // Even with the name matching the certificate, clientAuth-only refuses.
  grpc::ChannelArguments args;
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadAll(Path("ca.crt"));
  options.pem_cert_chain = ReadAll(Path("n2.crt"));
  options.pem_private_key = ReadAll(Path("n2.key"));
  args.SetSslTargetNameOverride("n1");
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_),
                                           grpc::SslCredentials(options), args);
  auto stub = v1::Control::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListNodesResponse response;
  grpc::Status status = stub->ListNodes(&context, v1::ListNodesRequest(), &response);
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(service_.common_names().empty());
}

}  // namespace
}  // namespace gangway::common
