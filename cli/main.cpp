// kbundle: see cli/cli.cpp for the commands and README.md for the guide.
#include "cli/cli.h"

int main(int argc, char** argv) { return kb::run_cli(argc, argv); }
