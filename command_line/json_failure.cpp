#include "command_line/json_failure.h"

namespace kb::command_line {

nlohmann::json failure_json(int exit_code, std::string_view error, nlohmann::json diagnostics) {
  if (!diagnostics.is_array()) diagnostics = nlohmann::json::array();
  // Messages quote file contents and remote answers: dump() with replace keeps invalid UTF-8 from throwing.
  return {{"ok", false}, {"exit_code", exit_code}, {"error", std::string(error)}, {"diagnostics", std::move(diagnostics)}};
}

}  // namespace kb::command_line
