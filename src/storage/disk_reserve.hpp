// Disk space held back for the day the disk fills: a file of N bytes beside
// the store, deleted when a commit fails for want of space, so that the WAL
// can still be checkpointed into the database (which may need new pages) and
// truncated, and taken again once there is room (docs/storage.md, "A full disk").
#pragma once

#include <cstdint>
#include <string>

namespace ratchet::sqlite {

class DiskReserve {
 public:
  DiskReserve(std::string path, std::int64_t bytes) : path_(std::move(path)), bytes_(bytes) {}
  bool held() const { return held_; }
  // Allocates the file unless it is held; false when the disk lacks the room
  // (nothing is left behind then).
  bool take();
  // Deletes the file; true when it was held.
  bool release();

 private:
  std::string path_;
  std::int64_t bytes_;
  bool held_ = false;
};

}  // namespace ratchet::sqlite
