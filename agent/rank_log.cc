#include "agent/rank_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/keeper.h"

namespace gangway::agent {
namespace {

struct Index {
  int64_t base = 0;
  uint64_t cur_ino = 0;
  int64_t prev_base = 0;
  uint64_t prev_ino = 0;
};

std::string IndexPath(const std::string& path) { return path + ".index"; }

std::optional<Index> ReadIndex(const std::string& path) {
  absl::StatusOr<std::string> text = ReadWholeFile(IndexPath(path));
  if (!text.ok()) return std::nullopt;
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::StripAsciiWhitespace(*text), ' ', absl::SkipEmpty());
  Index index;
  if (parts.size() != 4 || !absl::SimpleAtoi(parts[0], &index.base) ||
      !absl::SimpleAtoi(parts[1], &index.cur_ino) ||
      !absl::SimpleAtoi(parts[2], &index.prev_base) ||
      !absl::SimpleAtoi(parts[3], &index.prev_ino)) {
    return std::nullopt;
  }
  return index;
}

uint64_t InodeOf(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

int64_t SizeOf(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

absl::StatusOr<RankLogWriter> RankLogWriter::Open(std::string path, int64_t max_bytes) {
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open log '", path, "': ", std::strerror(errno)));
  }
  int64_t base = 0;
  if (std::optional<Index> index = ReadIndex(path); index && index->cur_ino == InodeOf(fd)) {
    base = index->base;
  }
  return RankLogWriter(std::move(path), max_bytes, fd, base, SizeOf(fd));
}

RankLogWriter::RankLogWriter(RankLogWriter&& other) noexcept { *this = std::move(other); }

RankLogWriter& RankLogWriter::operator=(RankLogWriter&& other) noexcept {
  if (this == &other) return *this;
  if (fd_ >= 0) ::close(fd_);
  path_ = std::move(other.path_);
  max_bytes_ = other.max_bytes_;
  fd_ = std::exchange(other.fd_, -1);
  base_ = other.base_;
  size_ = other.size_;
  dropped_ = other.dropped_;
  rotations_ = other.rotations_;
  return *this;
}

RankLogWriter::~RankLogWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void RankLogWriter::Write(std::string_view data) {
  // Half the cap each: the current segment and the one before it.
  const int64_t segment = max_bytes_ > 0 ? std::max<int64_t>(1, max_bytes_ / 2) : 0;
  while (!data.empty()) {
    if (segment > 0 && size_ >= segment) {
      Rotate();
      if (size_ >= segment) {
        // Could not rotate (a full disk, no inode left): what does not fit
        // is dropped rather than let the log pass its cap.
        dropped_ += static_cast<int64_t>(data.size());
        return;
      }
    }
    size_t n = data.size();
    if (segment > 0) n = std::min<size_t>(n, static_cast<size_t>(segment - size_));
    Append(data.substr(0, n));
    data.remove_prefix(n);
  }
}

void RankLogWriter::Append(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = fd_ < 0 ? -1 : ::write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // ENOSPC, EIO: the rank goes on; these bytes are lost, and the end
      // offset stays what is on disk so readers find every byte they are
      // told of.
      dropped_ += static_cast<int64_t>(data.size());
      return;
    }
    size_ += n;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void RankLogWriter::Rotate() {
  const std::string next = path_ + ".next";
  const int fd = ::open(next.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  Index index;
  index.base = base_ + size_;
  index.cur_ino = InodeOf(fd);
  index.prev_base = base_;
  index.prev_ino = InodeOf(fd_);
  // The index is written to its temporary name first: on a full disk the
  // rotation stops here, before anything was renamed.
  const std::string text =
      absl::StrCat(index.base, " ", index.cur_ino, " ", index.prev_base, " ", index.prev_ino, "\n");
  const std::string index_tmp = IndexPath(path_) + ".tmp";
  {
    const int ifd = ::open(index_tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const bool written =
        ifd >= 0 && ::write(ifd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (ifd >= 0) ::close(ifd);
    if (!written) {
      ::unlink(index_tmp.c_str());
      ::close(fd);
      ::unlink(next.c_str());
      return;
    }
  }
  if (::rename(path_.c_str(), (path_ + ".1").c_str()) != 0 ||
      ::rename(next.c_str(), path_.c_str()) != 0 ||
      ::rename(index_tmp.c_str(), IndexPath(path_).c_str()) != 0) {
    // Not expected (the directory is the keeper's): keep the old segment.
    ::close(fd);
    return;
  }
  ::close(fd_);
  fd_ = fd;
  base_ = index.base;
  size_ = 0;
  ++rotations_;
}

absl::StatusOr<RankLogRead> ReadRankLog(const std::string& path, int64_t offset,
                                        int64_t max_bytes) {
  offset = std::max<int64_t>(0, offset);
  max_bytes = std::max<int64_t>(1, max_bytes);
  const std::string prev_path = path + ".1";
  // A rotation is a few system calls; a reader that lands inside one
  // retries. Bounded, for a keeper frozen in the middle of one.
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::microseconds(500));
    Fd prev(::open(prev_path.c_str(), O_RDONLY | O_CLOEXEC));
    Fd cur(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    std::optional<Index> index = ReadIndex(path);
    if (cur.get() < 0) {
      if (prev.get() < 0 && !index) {
        return absl::NotFoundError(absl::StrCat("no log at ", path));
      }
      continue;
    }
    Index at;  // no index: one segment from 0
    if (index) {
      if (InodeOf(cur.get()) != index->cur_ino ||
          (prev.get() >= 0 && InodeOf(prev.get()) != index->prev_ino)) {
        continue;
      }
      at = *index;
    } else if (prev.get() >= 0) {
      continue;  // the first rotation, half done
    }
    RankLogRead out;
    const int64_t cur_size = SizeOf(cur.get());
    out.end = at.base + cur_size;
    int fd = cur.get();
    int64_t seg_base = at.base, seg_end = out.end;
    if (offset < at.base) {
      if (prev.get() >= 0) {
        fd = prev.get();
        seg_base = at.prev_base;
        seg_end = std::min(at.base, at.prev_base + SizeOf(prev.get()));
      }
      offset = std::max(offset, seg_base);
    }
    out.offset = offset;
    if (offset >= seg_end) return out;
    out.data.resize(static_cast<size_t>(std::min(max_bytes, seg_end - offset)));
    size_t done = 0;
    while (done < out.data.size()) {
      const ssize_t n = ::pread(fd, out.data.data() + done, out.data.size() - done,
                                offset - seg_base + static_cast<int64_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    out.data.resize(done);
    return out;
  }
  return absl::UnavailableError(absl::StrCat("the log ", path, " is being rotated; try again"));
}

}  // namespace gangway::agent
