#include "command_line/render.h"

// Placeholder until the installer's help lands (issue 17, i17-installer).
namespace kb::command_line {

std::string help_text(const ProgramDoc&, const CommandDoc& command) { return command.name + ": " + command.summary + "\n"; }

}  // namespace kb::command_line
