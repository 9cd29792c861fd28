#include "command_line/render.h"

// Placeholder until the renderers land (issue 17, i17-pkg): empty output, so callers can be wired.
namespace kb::command_line {

std::vector<std::pair<std::string, std::string>> man_pages(const ProgramDoc&) { return {}; }
std::string bash_completion(const ProgramDoc&) { return {}; }
std::string zsh_completion(const ProgramDoc&) { return {}; }

}  // namespace kb::command_line
