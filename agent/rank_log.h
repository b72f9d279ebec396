// A rank's log, capped: its keeper owns the rank's stdout and stderr
// through a pipe and writes them here, rotating so that a rank printing
// gigabytes holds at most `max_bytes` of the node's disk.
//
// Files, for a log PATH:
//   PATH        the current segment, appended;
//   PATH.1      the segment before it (one rotated file is kept);
//   PATH.index  "BASE CUR_INODE PREV_BASE PREV_INODE": where each of the
//               two segments starts in the rank's whole output, written
//               (atomically) at each rotation. No index: nothing was
//               rotated, PATH starts at 0.
// Offsets are positions in everything the rank ever wrote, so they keep
// their meaning across rotations: a reader resuming at an offset whose
// bytes were rotated away is moved to the oldest byte still kept.
//
// A rotation is: create PATH.next, rename PATH to PATH.1, rename PATH.next
// to PATH, rewrite the index. A reader opens PATH.1 and PATH, then reads the
// index, and trusts what it opened only when the inodes match the index
// (else it retries): so it never mistakes where a segment starts.
//
// Thread: a writer is one keeper's; readers (the agent's metrics tail and
// log reads) are other processes, on the same node.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace gangway::agent {

// --log-max-bytes: a rank's log on disk, its current segment and the
// rotated one together.
inline constexpr int64_t kDefaultLogMaxBytes = int64_t{64} << 20;
// Smaller caps would rotate on nearly every line of a chatty rank.
inline constexpr int64_t kMinLogMaxBytes = int64_t{64} << 10;

class RankLogWriter {
 public:
  // Opens (creates, parent directories too) the log at `path`, continuing
  // an existing one. `max_bytes` <= 0: never rotated.
  static absl::StatusOr<RankLogWriter> Open(std::string path, int64_t max_bytes);
  RankLogWriter(RankLogWriter&& other) noexcept;
  RankLogWriter& operator=(RankLogWriter&& other) noexcept;
  ~RankLogWriter();

  // Appends `data`, rotating first when the current segment is full. Never
  // fails: bytes that cannot be written (a full disk) are dropped and
  // counted, and writing resumes when the disk allows it, so the rank is
  // never held up nor killed by its log.
  void Write(std::string_view data);

  // The offset of the next byte: everything the rank wrote so far.
  int64_t end() const { return base_ + size_; }
  int64_t dropped_bytes() const { return dropped_; }
  int64_t rotations() const { return rotations_; }

 private:
  RankLogWriter(std::string path, int64_t max_bytes, int fd, int64_t base, int64_t size)
      : path_(std::move(path)), max_bytes_(max_bytes), fd_(fd), base_(base), size_(size) {}
  void Rotate();
  void Append(std::string_view data);

  std::string path_;
  int64_t max_bytes_ = 0;
  int fd_ = -1;
  int64_t base_ = 0;  // offset of the current segment's first byte
  int64_t size_ = 0;  // bytes in the current segment
  int64_t dropped_ = 0;
  int64_t rotations_ = 0;
};

struct RankLogRead {
  int64_t offset = 0;  // where `data` starts: past the requested one when
                       // the bytes asked for were rotated away
  std::string data;
  int64_t end = 0;  // the log's end offset when it was read
};

// Up to `max_bytes` of the log from `offset` (from one segment at a time:
// a read that ends at a segment's end may return less; read again from
// offset + data.size()). NOT_FOUND when there is no log at `path`.
absl::StatusOr<RankLogRead> ReadRankLog(const std::string& path, int64_t offset, int64_t max_bytes);

}  // namespace gangway::agent
