// run_process: outputs, exit status, the time limit, and a program that cannot start.
#include "installer/process.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>

using namespace std::chrono_literals;
using kb::installer::run_process;

TEST_CASE("run_process collects both outputs and the status", "[process]") {
  auto split = run_process({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, 10s);
  CHECK(split.status == 3);
  CHECK_FALSE(split.timed_out);
  CHECK(split.out == "out\n");
  CHECK(split.err == "err\n");
  auto merged = run_process({"/bin/sh", "-c", "echo out; echo err >&2"}, 10s, true);
  CHECK(merged.status == 0);
  CHECK(merged.out == "out\nerr\n");
  CHECK(merged.err.empty());
  // More than a pipe holds on both outputs at once: read as it comes, no deadlock.
  auto big = run_process({"/bin/sh", "-c", "head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2"}, 10s);
  CHECK(big.out.size() == 300000);
  CHECK(big.err.size() == 300000);
}

TEST_CASE("run_process kills what outlives its limit", "[process]") {
  auto t0 = std::chrono::steady_clock::now();
  auto slow = run_process({"/bin/sh", "-c", "exec sleep 30"}, 300ms);
  CHECK(slow.timed_out);
  CHECK(slow.status == 128 + SIGKILL);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  // Closing its outputs does not let a child escape the limit.
  auto quiet = run_process({"/bin/sh", "-c", "exec sleep 30 >/dev/null 2>&1"}, 300ms);
  CHECK(quiet.timed_out);
}

TEST_CASE("run_process names a program that cannot start", "[process]") {
  CHECK_THROWS_WITH(run_process({"/nonexistent/ctr", "x"}, 1s), Catch::Contains("cannot run /nonexistent/ctr"));
}
