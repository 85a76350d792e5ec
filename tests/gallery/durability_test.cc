// Durability under kill -9: a child process enrols in a loop and reports each acknowledged enrolment
// through a pipe; the parent SIGKILLs it at a random moment, reopens the gallery and checks that every
// acknowledged enrolment is there, whole (an enrolment of two templates is never half there).
//
// The child is this same test binary, re-executed (fork + exec, so it starts clean rather than as a
// copy of a multi-threaded parent), running the DurabilityChild test selected by environment variables.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>

#include "core/gallery/gallery.h"
#include "core/gallery/sqlite_gallery_store.h"
#include "tests/gallery/gallery_testing.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

constexpr char kChildDbEnv[] = "VERIFACE_DURABILITY_CHILD_DB";
constexpr char kChildFdEnv[] = "VERIFACE_DURABILITY_CHILD_FD";
constexpr char kChildRoundEnv[] = "VERIFACE_DURABILITY_CHILD_ROUND";

// Runs only in the re-executed child: enrol forever (until killed), writing "identity template1
// template2\n" to the pipe after each acknowledged Enroll, and deleting some identities (announced
// with "deleting identity\n", acknowledged with "deleted identity\n").
// DISABLED_ keeps it out of normal runs; the parent runs it with --gtest_also_run_disabled_tests.
TEST(DurabilityChild, DISABLED_EnrolUntilKilled) {
  const char* db = std::getenv(kChildDbEnv);
  if (db == nullptr) GTEST_SKIP() << "runs only as the child of DurabilityTest";
  const int fd = std::atoi(std::getenv(kChildFdEnv));
  const std::string round = std::getenv(kChildRoundEnv);
  auto gallery = OpenGallery(db);
  if (!gallery.ok()) {
    const std::string line = "error " + std::string(gallery.status().message()) + "\n";
    (void)!::write(fd, line.data(), line.size());
    std::_Exit(3);
  }
  std::mt19937 rng(std::random_device{}());
  for (int i = 0;; ++i) {
    const std::string id = "r" + round + "-p" + std::to_string(i);
    auto ids = (*gallery)->Enroll(id, {{"round", round}}, {RandomUnit(rng), RandomUnit(rng)});
    if (!ids.ok()) std::_Exit(4);
    // One write per acknowledgement; pipe writes up to PIPE_BUF bytes are atomic.
    const std::string line = id + " " + (*ids)[0] + " " + (*ids)[1] + "\n";
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::_Exit(6);
    if (i % 5 == 4) {
      // Announce the delete first: if the kill lands between its commit and its acknowledgement, the
      // parent knows this identity may be either there or gone.
      const std::string victim = "r" + round + "-p" + std::to_string(i - 2);
      const std::string deleting = "deleting " + victim + "\n";
      if (::write(fd, deleting.data(), deleting.size()) != static_cast<ssize_t>(deleting.size())) std::_Exit(6);
      if (!(*gallery)->Delete(victim).ok()) std::_Exit(5);
      const std::string deleted = "deleted " + victim + "\n";
      if (::write(fd, deleted.data(), deleted.size()) != static_cast<ssize_t>(deleted.size())) std::_Exit(6);
    }
  }
}

TEST(DurabilityTest, AcknowledgedEnrolmentsSurviveKill9) {
  TempDir dir;
  const std::string db = dir.File("gallery.db");
  std::mt19937 rng(std::random_device{}());
  std::map<std::string, std::set<std::string>> acknowledged;  // identity -> its template ids
  std::set<std::string> deleted;
  std::set<std::string> maybe_deleted;  // a delete announced but not acknowledged
  for (int round = 0; round < 5; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      ::setenv(kChildDbEnv, db.c_str(), 1);
      ::setenv(kChildFdEnv, std::to_string(fds[1]).c_str(), 1);
      ::setenv(kChildRoundEnv, std::to_string(round).c_str(), 1);
      ::execl("/proc/self/exe", "/proc/self/exe", "--gtest_filter=DurabilityChild.DISABLED_EnrolUntilKilled",
              "--gtest_also_run_disabled_tests", nullptr);
      std::_Exit(127);
    }
    ::close(fds[1]);
    // If an assertion ends the test early, the child must not outlive it.
    struct KillOnExit {
      pid_t pid;
      bool reaped = false;
      ~KillOnExit() {
        if (!reaped) {
          ::kill(pid, SIGKILL);
          ::waitpid(pid, nullptr, 0);
        }
      }
    } guard{pid};
    // Kill after a random number of acknowledgements: the kill lands somewhere inside a later enrolment
    // (SQLite write, fsync, or the in-memory update).
    const int kill_after = std::uniform_int_distribution<int>(1, 60)(rng);
    std::string pending;
    int lines = 0;
    bool killed = false;
    char buf[4096];
    while (true) {
      const ssize_t n = ::read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;  // EOF: the child is dead and the pipe drained
      pending.append(buf, n);
      size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        std::istringstream line(pending.substr(0, nl));
        pending.erase(0, nl + 1);
        std::string first, second, third;
        line >> first >> second >> third;
        ASSERT_NE(first, "error") << second;
        if (first == "deleting") {
          acknowledged.erase(second);
          maybe_deleted.insert(second);
        } else if (first == "deleted") {
          maybe_deleted.erase(second);
          deleted.insert(second);
        } else {
          acknowledged[first] = {second, third};
          ++lines;
        }
      }
      if (!killed && lines >= kill_after) {
        ASSERT_EQ(::kill(pid, SIGKILL), 0);
        killed = true;
      }
    }
    ::close(fds[0]);
    int wstatus = 0;
    ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
    guard.reaped = true;
    ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
        << "child ended otherwise (exit status " << (WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1) << ")";

    auto gallery = OpenGallery(db);
    ASSERT_TRUE(gallery.ok()) << gallery.status();
    for (const auto& [id, templates] : acknowledged) {
      auto info = (*gallery)->Get(id);
      ASSERT_TRUE(info.ok()) << "round " << round << ": acknowledged enrolment of " << id << " lost";
      EXPECT_EQ(std::set<std::string>(info->template_ids.begin(), info->template_ids.end()), templates) << id;
    }
    for (const auto& id : deleted) {
      EXPECT_EQ((*gallery)->Get(id).status().code(), absl::StatusCode::kNotFound)
          << "acknowledged delete of " << id << " undone";
    }
    // At most the one enrolment in flight at the kill may be there unacknowledged, and only whole.
    auto page = (*gallery)->List(1000, "");
    ASSERT_TRUE(page.ok());
    int unacknowledged = 0;
    for (const auto& info : page->identities) {
      EXPECT_EQ(info.template_ids.size(), 2u) << info.record.identity_id << " is half enrolled";
      if (acknowledged.count(info.record.identity_id) == 0 && maybe_deleted.count(info.record.identity_id) == 0) {
        ++unacknowledged;
      }
    }
    EXPECT_LE(unacknowledged, 1);
    // What the in-flight operation did is now committed, so later rounds check it too.
    for (const auto& info : page->identities) {
      acknowledged[info.record.identity_id] = {info.template_ids.begin(), info.template_ids.end()};
    }
    for (const auto& id : maybe_deleted) {
      if (acknowledged.count(id) == 0) deleted.insert(id);
    }
    maybe_deleted.clear();
  }
  EXPECT_GT(acknowledged.size(), 5u);
}

}  // namespace
}  // namespace veriface::testing
