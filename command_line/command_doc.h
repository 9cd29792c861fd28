#pragma once
// One description of a program's commands. Both programs render their man pages and shell
// completions from it (render.h), so those cannot drift from --help: kbundle builds it from its
// CLI11 table (cli/), kbundle-installer writes it as data and renders its --help from it too.

#include <string>
#include <vector>

namespace kb::command_line {

struct OptionDoc {
  std::vector<std::string> names;    // long name first: {"--topology", "-t"}
  std::string value_name;            // "FILE", "DIR", "N"; empty for a flag
  std::string help;                  // one paragraph, no trailing newline
  std::vector<std::string> choices;  // the values it takes when they are a fixed set (completion)
  bool takes_path = false;           // completion offers file names for its value
};

struct PositionalDoc {
  std::string name;  // "TOPOLOGY", "BUNDLE"
  std::string help;
  bool required = false;
  bool takes_path = true;
};

struct CommandDoc {
  std::string name;         // "gen"; for the root, the program's name
  std::string summary;      // one line, no trailing period
  std::string description;  // paragraphs separated by a blank line; may be empty
  std::vector<PositionalDoc> positionals;
  std::vector<OptionDoc> options;
  std::vector<std::string> examples;  // each a command line, optionally followed by "  # why"
  std::vector<CommandDoc> subcommands;
  bool hidden = false;  // left out of help, man pages and completions (test-only commands)
};

// The whole program: its root command plus what the man pages need.
struct ProgramDoc {
  CommandDoc root;
  std::string version;  // "0.2.0" or "0.2.0+git.3.gabc1234" (one version, base/version.h)
  int man_section = 1;  // 1 for kbundle, 8 for kbundle-installer (run by root on a node)
};

}  // namespace kb::command_line
