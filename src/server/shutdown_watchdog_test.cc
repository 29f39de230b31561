#include "server/shutdown_watchdog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"

namespace ferry::server {
namespace {

using ::testing::HasSubstr;

TEST(ShutdownWatchdogTest, ReportsWhatIsStillRunningWhenShutdownHangs) {
  absl::Notification expired;
  std::string report;
  ShutdownWatchdog watchdog([] { return std::string("leaving groups: stuck-group"); },
                            [&](const std::string& what) {
                              report = what;
                              expired.Notify();
                            });
  watchdog.Arm(absl::Milliseconds(50));
  ASSERT_TRUE(expired.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(report, HasSubstr("did not finish within 50ms"));
  EXPECT_THAT(report, HasSubstr("leaving groups: stuck-group"));
}

TEST(ShutdownWatchdogTest, StaysQuietWhenShutdownFinishesInTime) {
  bool expired = false;
  ShutdownWatchdog watchdog([] { return std::string(); },
                            [&](const std::string&) { expired = true; });
  watchdog.Arm(absl::Seconds(30));
  watchdog.Disarm();  // returns at once, not after 30 s
  EXPECT_FALSE(expired);
}

}  // namespace
}  // namespace ferry::server
