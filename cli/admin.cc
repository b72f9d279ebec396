#include "cli/admin.h"

#include <algorithm>
#include <iomanip>
#include <ostream>

#include "common/tokens.h"

namespace gangway::cli {
namespace {

// The exit code for a failed operation: 2 when the user should change the
// input (or the files it names), 1 otherwise (I/O, OpenSSL).
int Fail(std::ostream& err, const absl::Status& s) {
  err << "error: " << s.message() << "\n";
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
      return 2;
    default:
      return 1;
  }
}

}  // namespace

int CertsInit(const common::CertsInitOptions& options, std::ostream& out, std::ostream& err) {
  auto result = common::InitCertificates(options);
  if (!result.ok()) return Fail(err, result.status());
  for (const std::string& path : result->kept) out << "kept  " << path << "\n";
  for (const std::string& path : result->written) out << "wrote " << path << "\n";
  for (const std::string& warning : result->warnings) err << "warning: " << warning << "\n";
  if (result->written.empty()) out << "nothing to add in " << options.dir << "\n";
  return 0;
}

int TokenCreate(const std::string& file, const std::string& name, const std::string& role,
                std::ostream& out, std::ostream& err) {
  auto parsed = common::ParseRole(role);
  if (!parsed.ok()) return Fail(err, parsed.status());
  auto token = common::CreateToken(file, name, *parsed);
  if (!token.ok()) return Fail(err, token.status());
  out << *token << "\n";
  err << "token \"" << name << "\" (" << role << ") added to " << file
      << "; it is shown only this once: " << file << " keeps its hash alone\n";
  return 0;
}

int TokenRevoke(const std::string& file, const std::string& name, std::ostream& out,
                std::ostream& err) {
  if (auto s = common::RevokeToken(file, name); !s.ok()) return Fail(err, s);
  out << "revoked token \"" << name << "\"\n";
  return 0;
}

int TokenList(const std::string& file, std::ostream& out, std::ostream& err) {
  auto entries = common::LoadTokenFile(file);
  if (!entries.ok()) return Fail(err, entries.status());
  size_t width = 4;  // "NAME"
  for (const common::TokenEntry& e : *entries) width = std::max(width, e.name.size());
  out << std::left << std::setw(static_cast<int>(width) + 2) << "NAME"
      << "ROLE\n";
  for (const common::TokenEntry& e : *entries) {
    out << std::left << std::setw(static_cast<int>(width) + 2) << e.name << common::RoleName(e.role)
        << "\n";
  }
  return 0;
}

AdminCommands::AdminCommands(CLI::App& app) {
  auto* certs = app.add_subcommand("certs", "make the cluster's CA and certificates");
  certs->require_subcommand(1);
  certs_init_ = certs->add_subcommand(
      "init",
      "make a CA (or use --ca-cert/--ca-key), the coordinator's and the nodes' "
      "certificates in DIR; again on DIR, adds only what is missing");
  certs_init_->add_option("DIR", certs_.dir, "directory for the keys and certificates")->required();
  // One value per occurrence, so `--host H DIR` does not take DIR as a host.
  certs_init_
      ->add_option("--host", certs_.hosts,
                   "the coordinator's address as clients dial it (IP or DNS; repeat)")
      ->allow_extra_args(false);
  certs_init_->add_option("--node", certs_.nodes, "a node's name (repeat)")
      ->allow_extra_args(false);
  certs_init_->add_option("--days", certs_.days, "validity of the certificates (default 825)");
  certs_init_->add_option("--ca-days", certs_.ca_days, "validity of a new CA (default 3650)");
  certs_init_->add_option("--ca-cert", certs_.ca_cert_file, "an existing CA's certificate (PEM)");
  certs_init_->add_option("--ca-key", certs_.ca_key_file, "that CA's private key (PEM, 0600)");

  auto* token = app.add_subcommand("token", "manage user tokens in a token file");
  token->require_subcommand(1);
  token_create_ =
      token->add_subcommand("create", "add a token; prints it once (the file keeps a hash)");
  token_create_->add_option("NAME", token_name_)->required();
  token_create_->add_option("--role", token_role_, "viewer|submitter|admin")->required();
  token_create_->add_option("--file", token_file_, "the token file (made 0600)")->required();
  token_revoke_ = token->add_subcommand("revoke", "remove a token");
  token_revoke_->add_option("NAME", token_name_)->required();
  token_revoke_->add_option("--file", token_file_, "the token file")->required();
  token_list_ = token->add_subcommand("list", "names and roles of the tokens");
  token_list_->add_option("--file", token_file_, "the token file")->required();
}

std::optional<int> AdminCommands::Run(std::ostream& out, std::ostream& err) const {
  if (certs_init_->parsed()) return CertsInit(certs_, out, err);
  if (token_create_->parsed()) return TokenCreate(token_file_, token_name_, token_role_, out, err);
  if (token_revoke_->parsed()) return TokenRevoke(token_file_, token_name_, out, err);
  if (token_list_->parsed()) return TokenList(token_file_, out, err);
  return std::nullopt;
}

}  // namespace gangway::cli
