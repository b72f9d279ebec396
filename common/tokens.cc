#include "common/tokens.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/tls.h"

namespace gangway::common {
namespace {

constexpr absl::string_view kHashPrefix = "sha256:";
constexpr size_t kTokenBytes = 32;
constexpr char kNewFileHeader[] =
    "# gangway user tokens, one per line: NAME ROLE sha256:HEX\n"
    "# Hashes only: `gangway token create` shows a token once. Keep this file 0600.\n";

// Debian's Abseil keeps its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW
// is 0): these convert at the API's std::string_view boundary.
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }
std::string_view Std(absl::string_view s) { return std::string_view(s.data(), s.size()); }

// Closes the descriptor it owns; -1 owns nothing.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now, reporting the error close() may be the first to see.
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

std::string DirOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// An exclusive lock on the token file's directory, held while a create or
// revoke reads, changes and renames the file. The file itself cannot carry
// the lock: the rename replaces its inode, so a waiter would lock a stale one.
absl::StatusOr<std::unique_ptr<Fd>> LockDirectory(const std::string& dir) {
  auto fd = std::make_unique<Fd>(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd->get() < 0) return ErrnoError("cannot open directory", dir);
  if (::flock(fd->get(), LOCK_EX) != 0) return ErrnoError("cannot lock directory", dir);
  return fd;
}

// A token file as read, with the owner its replacement must keep.
struct ExistingFile {
  std::string text;
  uid_t uid;
  gid_t gid;
};

// Replaces `path` with `contents` so that a reader sees the old file or the
// new one, never a part; a crash leaves at most a stray temporary. The
// temporary is 0600 from its creation (mkstemp), so no secret is ever
// readable by others, whatever the umask. It takes `previous`'s owner: root
// running `gangway token create` on the coordinator's file must not leave a
// root-owned 0600 file the coordinator can no longer read.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents,
                                 const std::optional<ExistingFile>& previous) {
  std::string tmp = path + ".tmp.XXXXXX";
  Fd fd(::mkstemp(tmp.data()));
  if (fd.get() < 0) return ErrnoError("cannot create a temporary file beside", path);
  auto fail = [&](absl::string_view what) {
    absl::Status s = ErrnoError(what, tmp);
    ::unlink(tmp.c_str());
    return s;
  };
  if (::fchmod(fd.get(), 0600) != 0) return fail("cannot chmod");
  if (previous && (previous->uid != ::geteuid() || previous->gid != ::getegid()) &&
      ::fchown(fd.get(), previous->uid, previous->gid) != 0) {
    return fail("cannot give the previous owner to");
  }
  for (size_t done = 0; done < contents.size();) {
    ssize_t n = ::write(fd.get(), contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("cannot fsync");
  if (fd.Close() != 0) return fail("cannot close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename");
  // The rename is durable only once the directory is synced.
  Fd dir(::open(DirOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() >= 0) ::fsync(dir.get());
  return absl::OkStatus();
}

// The file's text, or nullopt when it does not exist yet.
absl::StatusOr<std::optional<ExistingFile>> ReadIfExists(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    return ErrnoError("cannot stat token file", path);
  }
  auto text = ReadPrivateFile(path, "token file");
  if (!text.ok()) return text.status();
  return ExistingFile{std::move(*text), st.st_uid, st.st_gid};
}

absl::Status WithPath(const absl::Status& s, const std::string& path) {
  return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
}

// "gwt_" + base64url of 32 random bytes.
absl::StatusOr<std::string> NewToken() {
  std::array<unsigned char, kTokenBytes> bytes;
  if (RAND_bytes(bytes.data(), bytes.size()) != 1) {
    return absl::InternalError("RAND_bytes failed: no random bytes for a token");
  }
  std::string token =
      absl::StrCat(kTokenPrefix, absl::WebSafeBase64Escape(absl::string_view(
                                     reinterpret_cast<char*>(bytes.data()), bytes.size())));
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return token;
}

}  // namespace

absl::StatusOr<Role> ParseRole(std::string_view name) {
  if (name == "viewer") return Role::kViewer;
  if (name == "submitter") return Role::kSubmitter;
  if (name == "admin") return Role::kAdmin;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role \"", Absl(name), "\" (viewer, submitter or admin)"));
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kSubmitter:
      return "submitter";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

bool IsValidTokenName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(name[0])) return false;
  for (char c : name) {
    if (!lower_or_digit(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

std::string HashToken(std::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  // SHA-256 cannot fail on a valid input short of memory exhaustion; an
  // empty digest then yields a hash no file entry matches.
  if (EVP_Digest(token.data(), token.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    size = 0;
  }
  return absl::StrCat(kHashPrefix, absl::BytesToHexString(
                                       absl::string_view(reinterpret_cast<char*>(digest), size)));
}

absl::StatusOr<std::vector<TokenEntry>> ParseTokenFile(std::string_view text) {
  std::vector<TokenEntry> entries;
  std::set<std::string, std::less<>> names, hashes;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(Absl(text), '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    auto bad = [number](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("line ", number, ": ", why));
    };
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 3) {
      return bad(absl::StrCat("want NAME ROLE sha256:HEX, got ", fields.size(), " field",
                              fields.size() == 1 ? "" : "s"));
    }
    if (!IsValidTokenName(Std(fields[0]))) {
      return bad(absl::StrCat("bad name \"", fields[0],
                              "\" (want [a-z0-9][a-z0-9._-]*, at most 63 characters)"));
    }
    auto role = ParseRole(Std(fields[1]));
    if (!role.ok()) return bad(role.status().message());
    absl::string_view hash = fields[2];
    if (!absl::StartsWith(hash, kHashPrefix) || hash.size() != kHashPrefix.size() + 64 ||
        !IsLowerHex(hash.substr(kHashPrefix.size()))) {
      // Never echo the field: a clear token pasted here by mistake would end
      // up in the coordinator's log.
      return bad("the third field is not sha256: and 64 lowercase hex digits");
    }
    if (!names.insert(std::string(fields[0])).second) {
      return bad(absl::StrCat("name \"", fields[0], "\" appears twice"));
    }
    // Two names on one token would make the caller's identity ambiguous.
    if (!hashes.insert(std::string(hash)).second) {
      return bad("this hash appears on an earlier line too");
    }
    entries.push_back({std::string(fields[0]), *role, std::string(hash)});
  }
  return entries;
}

absl::StatusOr<std::vector<TokenEntry>> LoadTokenFile(const std::string& path) {
  auto text = ReadPrivateFile(path, "token file");
  if (!text.ok()) return text.status();
  auto entries = ParseTokenFile(*text);
  if (!entries.ok()) return WithPath(entries.status(), path);
  return entries;
}

absl::StatusOr<std::string> CreateToken(const std::string& path, const std::string& name,
                                        Role role) {
  if (!IsValidTokenName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad token name \"", name, "\" (want [a-z0-9][a-z0-9._-]*, at most 63 characters)"));
  }
  if (RoleName(role) == std::string_view("unknown"))
    return absl::InvalidArgumentError("unknown role");
  auto lock = LockDirectory(DirOf(path));
  if (!lock.ok()) return lock.status();
  auto text = ReadIfExists(path);
  if (!text.ok()) return text.status();
  std::string contents = text->has_value() ? (*text)->text : kNewFileHeader;
  auto entries = ParseTokenFile(contents);
  if (!entries.ok()) return WithPath(entries.status(), path);
  for (const TokenEntry& e : *entries) {
    if (e.name == name) {
      return absl::AlreadyExistsError(absl::StrCat("token \"", name, "\" already exists in ", path,
                                                   " (revoke it first to replace it)"));
    }
  }
  auto token = NewToken();
  if (!token.ok()) return token.status();
  if (!contents.empty() && contents.back() != '\n') contents += '\n';
  absl::StrAppend(&contents, name, " ", Absl(RoleName(role)), " ", HashToken(*token), "\n");
  if (auto s = WriteFileAtomically(path, contents, *text); !s.ok()) return s;
  return token;
}

absl::Status RevokeToken(const std::string& path, const std::string& name) {
  auto lock = LockDirectory(DirOf(path));
  if (!lock.ok()) return lock.status();
  auto text = ReadIfExists(path);
  if (!text.ok()) return text.status();
  if (!text->has_value()) {
    return absl::NotFoundError(absl::StrCat("no token \"", name, "\": ", path, " does not exist"));
  }
  // Validate the whole file first, so the line-by-line pass below may trust
  // that a non-comment line's first field is its name.
  if (auto entries = ParseTokenFile((*text)->text); !entries.ok()) {
    return WithPath(entries.status(), path);
  }
  // Rewritten line by line rather than from the entries, so comments stay.
  std::vector<absl::string_view> kept;
  bool found = false;
  for (absl::string_view line : absl::StrSplit((*text)->text, '\n')) {
    absl::string_view stripped = absl::StripAsciiWhitespace(line);
    if (!stripped.empty() && stripped.front() != '#') {
      absl::string_view first = stripped.substr(0, stripped.find_first_of(" \t"));
      if (first == name) {
        found = true;
        continue;
      }
    }
    kept.push_back(line);
  }
  if (!found) return absl::NotFoundError(absl::StrCat("no token \"", name, "\" in ", path));
  return WriteFileAtomically(path, absl::StrJoin(kept, "\n"), *text);
}

}  // namespace gangway::common
