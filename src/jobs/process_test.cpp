#include "jobs/process.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ratchet::jobs {
namespace {

TEST(Process, IdentifiesItselfAsAlive) {
  auto self = identify_process(getpid());
  ASSERT_TRUE(self.has_value());
  EXPECT_GT(self->start_ticks, 0);
  EXPECT_EQ(self->boot_id, current_boot_id());
  EXPECT_TRUE(is_alive(*self));
}

TEST(Process, AReusedPidIsNotTheSameProcess) {
  auto self = identify_process(getpid());
  ProcessIdentity other = *self;
  other.start_ticks += 1;
  EXPECT_FALSE(is_alive(other));
  other = *self;
  other.boot_id = "another-boot";
  EXPECT_FALSE(is_alive(other));
}

TEST(Process, AZombieIsDead) {
  pid_t child = fork();
  if (child == 0) _exit(0);
  auto identity = identify_process(child, /*include_zombies=*/true);
  ASSERT_TRUE(identity.has_value());
  // Wait until it has exited but is not yet reaped.
  siginfo_t info{};
  waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT);
  EXPECT_FALSE(is_alive(*identity));
  EXPECT_FALSE(identify_process(child).has_value());
  waitpid(child, nullptr, 0);
}

// The child lives until the test closes its end of a pipe (it used to sleep
// 50 ms, and a loaded machine let it exit before the first check).
TEST(Process, WaitReadableWakesWhenTheProcessEnds) {
  int release[2];
  ASSERT_EQ(pipe(release), 0);
  pid_t child = fork();
  if (child == 0) {
    close(release[1]);
    char byte;
    (void)!read(release[0], &byte, 1);  // returns at EOF: the parent closed its end
    _exit(0);
  }
  close(release[0]);
  auto identity = identify_process(child, true);
  ASSERT_TRUE(identity.has_value());
  int fd = open_pidfd(*identity);
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(wait_readable(fd, 0));
  close(release[1]);
  EXPECT_TRUE(wait_readable(fd, 30 * kMicrosPerSecond));
  close(fd);
  waitpid(child, nullptr, 0);
}

TEST(Process, KillsWhatIsLeftOfAGroup) {
  pid_t leader = fork();
  if (leader == 0) {
    setpgid(0, 0);
    pause();
    _exit(0);
  }
  setpgid(leader, leader);
  auto identity = identify_process(leader, true);
  kill_leftover_group(*identity);
  int status = 0;
  waitpid(leader, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(Process, NamesSignals) {
  EXPECT_EQ(signal_name(SIGKILL), "SIGKILL");
  EXPECT_EQ(signal_name(SIGTERM), "SIGTERM");
}

}  // namespace
}  // namespace ratchet::jobs
