// The CLI's local administration commands: `gangway certs init` and
// `gangway token create|revoke|list`. They work on files only and never
// contact a coordinator, so main dispatches them before it connects.
// Exit codes as in commands.h: 0 success, 1 the operation failed, 2 bad
// usage or input.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "common/certs.h"

namespace gangway::cli {

int CertsInit(const common::CertsInitOptions& options, std::ostream& out, std::ostream& err);
// Prints the token alone on stdout (so `TOKEN=$(gangway token create ...)`
// works) and, on stderr, that it is shown only once.
int TokenCreate(const std::string& file, const std::string& name, const std::string& role,
                std::ostream& out, std::ostream& err);
int TokenRevoke(const std::string& file, const std::string& name, std::ostream& out,
                std::ostream& err);
// NAME ROLE per token.
int TokenList(const std::string& file, std::ostream& out, std::ostream& err);

// Adds the "certs" and "token" subcommands to `app` and holds their parsed
// options, so main needs two lines. Lives at least as long as `app`, which
// keeps pointers into it; hence neither copyable nor movable.
class AdminCommands {
 public:
  explicit AdminCommands(CLI::App& app);
  AdminCommands(const AdminCommands&) = delete;
  AdminCommands& operator=(const AdminCommands&) = delete;

  // After parsing: the exit code of the admin command that was given, or
  // nullopt when the command line named another one.
  std::optional<int> Run(std::ostream& out, std::ostream& err) const;

 private:
  CLI::App* certs_init_ = nullptr;
  CLI::App* token_create_ = nullptr;
  CLI::App* token_revoke_ = nullptr;
  CLI::App* token_list_ = nullptr;
  common::CertsInitOptions certs_;
  std::string token_name_;
  std::string token_role_;
  std::string token_file_;
};

}  // namespace gangway::cli
