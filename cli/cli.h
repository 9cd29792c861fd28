#pragma once
// The kbundle command line: parses arguments (CLI11) and calls the drivers.
namespace kb {
int run_cli(int argc, char** argv);
}
