// kbundle: see generator/cli.cpp for the commands and README.md for the guide.
#include "generator/cli.h"

int main(int argc, char** argv) { return kb::run_cli(argc, argv); }
