#include "command_line/suggest.h"

#include <catch2/catch.hpp>

using kb::command_line::did_you_mean;

TEST_CASE("did_you_mean finds typos of subcommands and flags and nothing for unrelated words") {
  std::vector<std::string> commands{"gen", "plan", "validate", "lint", "inspect", "publish", "restore", "rotate"};
  CHECK(did_you_mean("genn", commands) == "gen");
  CHECK(did_you_mean("pln", commands) == "plan");
  CHECK(did_you_mean("valdiate", commands) == "validate");  // adjacent swap
  CHECK(did_you_mean("publsh", commands) == "publish");
  CHECK(did_you_mean("insp", commands) == "inspect");  // a unique prefix
  CHECK(did_you_mean("r", commands) == std::nullopt);  // restore or rotate: ambiguous
  CHECK(did_you_mean("kubectl", commands) == std::nullopt);
  CHECK(did_you_mean("", commands) == std::nullopt);
  std::vector<std::string> flags{"--topology", "--state", "--out", "--json", "--no-binaries"};
  CHECK(did_you_mean("--topolgy", flags) == "--topology");
  CHECK(did_you_mean("--jsno", flags) == "--json");
  CHECK(did_you_mean("--no-binary", flags) == "--no-binaries");
  CHECK(did_you_mean("--", flags) == std::nullopt);
  CHECK(did_you_mean("--force", flags) == std::nullopt);
  CHECK(did_you_mean(std::string(10000, 'x'), flags) == std::nullopt);
}
