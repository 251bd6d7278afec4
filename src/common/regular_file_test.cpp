#include "common/regular_file.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ratchet {
namespace {

namespace fs = std::filesystem;

class RegularFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ratchet-regular-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(RegularFile, AFifoIsRefusedForReadingAndWritingWithoutWaitingForAPeer) {
  // open(2) of a FIFO without O_NONBLOCK waits for the other end: a test that
  // hangs here is the defect.
  const std::string fifo = dir_ + "/log";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  for (int flags : {O_RDONLY, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND}) {
    auto fd = open_regular_file(fifo, flags);
    ASSERT_FALSE(fd.is_ok());
    EXPECT_EQ(fd.status().code(), Code::kFailedPrecondition);
    EXPECT_EQ(fd.status().message(), fifo + " is a FIFO, not a regular file");
  }
}

TEST_F(RegularFile, ADeviceADirectoryAndALinkAreRefusedAndNothingIsNotFound) {
  EXPECT_EQ(open_regular_file("/dev/null", O_RDONLY).status().message(),
            "/dev/null is a character device, not a regular file");
  EXPECT_EQ(open_regular_file(dir_, O_RDONLY).status().code(), Code::kFailedPrecondition);
  const std::string target = dir_ + "/target";
  { std::ofstream(target) << "x"; }
  fs::create_symlink(target, dir_ + "/link");
  EXPECT_EQ(open_regular_file(dir_ + "/link", O_RDONLY).status().message(),
            dir_ + "/link is a symbolic link, not a regular file");
  EXPECT_EQ(open_regular_file(dir_ + "/missing", O_RDONLY).status().code(), Code::kNotFound);
}

TEST_F(RegularFile, ARegularFileIsOpenedInBlockingMode) {
  auto fd = open_regular_file(dir_ + "/new", O_WRONLY | O_CREAT | O_TRUNC);
  ASSERT_TRUE(fd.is_ok()) << fd.status().message();
  // It may become a command's stdout, which must not see O_NONBLOCK.
  EXPECT_EQ(fcntl(*fd, F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(fcntl(*fd, F_GETFD) & FD_CLOEXEC, 0);
  close(*fd);
}

}  // namespace
}  // namespace ratchet
