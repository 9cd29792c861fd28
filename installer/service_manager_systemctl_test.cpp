#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "base/error.h"
#include "installer/service_manager.h"

using namespace kb::installer;

namespace {

bool booted_with_systemd() {
  struct stat st;
  return ::stat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

// Only read-only queries, or calls that cannot succeed here: the test never changes the machine.
// The real start/stop/enable paths run in the e2e test (tests/e2e/etcd_nodes.sh) inside nodes.
TEST_CASE("systemctl manager runs /bin/systemctl and reports its message", "[systemctl]") {
  auto sm = make_systemctl_manager();
  CHECK(sm->describe() == "systemctl");
  struct stat st;
  if (::stat("/bin/systemctl", &st) != 0) {
    CHECK_THROWS_WITH(sm->daemon_reload(), Catch::Contains("cannot run /bin/systemctl"));
    return;
  }
  if (booted_with_systemd()) {
    // A unit that does not exist is "inactive" to systemd.
    CHECK(sm->active_state("kbundle-test-no-such-unit-8d1f.service") == "inactive");
    CHECK_THROWS_WITH(sm->stop("kbundle-test-no-such-unit-8d1f.service"),
                      Catch::StartsWith("systemctl stop kbundle-test-no-such-unit-8d1f.service: "));
  } else {
    // No systemd as PID 1 (a build container): every call fails with systemctl's own words.
    try {
      sm->daemon_reload();
      FAIL("daemon-reload succeeded without systemd");
    } catch (const kb::Error& e) {
      std::string what = e.what();
      INFO(what);
      CHECK(what.rfind("systemctl daemon-reload: ", 0) == 0);
      CHECK(what.size() > std::string("systemctl daemon-reload: ").size());
      CHECK(what.find("exited with status") == std::string::npos);  // the message, not just a code
      CHECK(what.find('\n') == std::string::npos);                   // on one line
    }
    CHECK_THROWS_WITH(sm->restart("etcd.service", true), Catch::StartsWith("systemctl restart --no-block etcd.service: "));
  }
}
