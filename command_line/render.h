#pragma once
// Man pages and shell completions rendered from a ProgramDoc (command_doc.h). The packages install
// what these return (cmake/packaging.cmake); `kbundle completion bash|zsh` prints them.

#include <string>
#include <utility>
#include <vector>

#include "command_line/command_doc.h"

namespace kb::command_line {

// One roff man page per visible command: {"kbundle.1", ...}, {"kbundle-gen.1", ...},
// {"kbundle-rotate-ca.1", ...}; sections NAME, SYNOPSIS, DESCRIPTION, OPTIONS, EXAMPLES,
// EXIT STATUS (docs/cli.md), SEE ALSO. Deterministic (no dates from the clock) for reproducible packages.
std::vector<std::pair<std::string, std::string>> man_pages(const ProgramDoc& program);

// A completion script for bash (complete -F) and for zsh (#compdef): subcommands, their flags,
// fixed choices and file names where an option or positional takes a path.
std::string bash_completion(const ProgramDoc& program);
std::string zsh_completion(const ProgramDoc& program);

// The plain-text --help of one command (kbundle-installer's; kbundle's comes from CLI11).
std::string help_text(const ProgramDoc& program, const CommandDoc& command);

}  // namespace kb::command_line
