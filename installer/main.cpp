// kbundle-installer: see installer/installer.h for the commands and README.md, section 5, for the guide.
#include <iostream>

#include "installer/installer.h"

int main(int argc, char** argv) {
  using namespace kb::installer;
  Hooks hooks = hooks_from_environment();  // the test-only seams; the one place the environment is read
  hooks.make_services = [null = hooks.null_services](bool no_systemd) {
    return no_systemd || null ? make_null_manager() : make_systemctl_manager();
  };
  hooks.health = [](const nlohmann::json& check, const std::string& root, ServiceManager& sm) {
    return run_health_check(check, root, sm, std::chrono::seconds(300));
  };
  return run_cli(argc, argv, hooks, std::cout, std::cerr);
}
