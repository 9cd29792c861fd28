#include "publish/ssh_exec.h"

#include <catch2/catch.hpp>

using namespace kb;

TEST_CASE("a command's output is kept to its end, however much a node prints", "[ssh]") {
  ExecResult r;
  const std::string chunk(16384, 'x');
  for (int i = 0; i < 1000; ++i) append_output(r, chunk, 100000);  // 16 MB from a flooding node
  append_output(r, "\n{\"result\":\"unchanged\"}\n", 100000);
  CHECK(r.output.size() <= 200000);
  CHECK(r.output.size() >= 100000);
  CHECK(r.dropped + r.output.size() == 1000u * 16384 + 24);
  CHECK(r.output.substr(r.output.size() - 24) == "\n{\"result\":\"unchanged\"}\n");
}
