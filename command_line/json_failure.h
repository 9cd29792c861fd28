#pragma once
// What `--json` prints on stdout when a command fails, the same in both programs (docs/cli.md):
// a script reads one JSON object whatever happened, never an empty stdout.
//   {"ok": false, "exit_code": 3, "error": "<one line>", "diagnostics": [{...}, ...]}
// Each diagnostic has "severity" ("error" or "warning") and "message", and, when known, "file",
// "line", "column" (1-based) and "hint". Keys are snake_case, as everywhere in our JSON.

#include <nlohmann/json.hpp>
#include <string_view>

namespace kb::command_line {

nlohmann::json failure_json(int exit_code, std::string_view error, nlohmann::json diagnostics = nlohmann::json::array());

}  // namespace kb::command_line
