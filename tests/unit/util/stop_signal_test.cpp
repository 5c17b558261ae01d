// util::stop_on_signals: SIGINT and SIGTERM set the one stop flag instead of ending the process,
// and installing it again clears a flag left from an earlier run.
#include "util/stop_signal.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace chokepoint::util {
namespace {

TEST(StopSignal, SigintAndSigtermSetTheFlagAndDoNotEndTheProcess) {
  for (int sig : {SIGINT, SIGTERM}) {
    std::atomic<bool>& stop = stop_on_signals();
    EXPECT_FALSE(stop.load()) << sig;
    ASSERT_EQ(raise(sig), 0);
    EXPECT_TRUE(stop.load()) << sig;
    EXPECT_TRUE(stop_flag().load()) << sig;
    EXPECT_EQ(&stop, &stop_flag());
  }
  stop_on_signals();
  EXPECT_FALSE(stop_flag().load()) << "installing again starts a new run";
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
}

}  // namespace
}  // namespace chokepoint::util
