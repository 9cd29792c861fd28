#include <chrono>
#include <string>
#include <vector>

#include "base/error.h"
#include "installer/process.h"
#include "installer/service_manager.h"

namespace kb::installer {

namespace {

constexpr const char* kSystemctl = "/bin/systemctl";

// systemctl waits for a restart to finish (units have their own start time-outs); this only
// stops a hung systemctl from hanging the installer.
constexpr std::chrono::minutes kSystemctlLimit{10};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// systemctl's message on one line (it often writes two: the failure and where to look).
std::string one_line(std::string s) {
  s = trim(std::move(s));
  for (auto& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

// Runs systemctl and throws kb::Error with its message unless it exits 0.
std::string checked(const std::vector<std::string>& args) {
  std::vector<std::string> argv{kSystemctl};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult o = run_process(argv, kSystemctlLimit);
  if (o.timed_out) throw Error("systemctl " + command_text(args) + ": no answer within " + std::to_string(kSystemctlLimit.count()) + " minutes; killed");
  if (o.status != 0) {
    std::string why = one_line(o.err);
    if (why.empty()) why = one_line(o.out);
    if (why.empty()) why = "exited with status " + std::to_string(o.status);
    throw Error("systemctl " + command_text(args) + ": " + why);
  }
  return o.out;
}

class SystemctlManager : public ServiceManager {
 public:
  void daemon_reload() override { checked({"daemon-reload"}); }
  void enable(const std::string& unit) override { checked({"enable", "--quiet", unit}); }
  void disable(const std::string& unit) override { checked({"disable", "--quiet", unit}); }
  void restart(const std::string& unit, bool no_block) override {
    if (no_block) checked({"restart", "--no-block", unit});
    else checked({"restart", unit});
  }
  void stop(const std::string& unit) override { checked({"stop", unit}); }
  std::string active_state(const std::string& unit) override {
    std::string state = trim(checked({"show", "-p", "ActiveState", "--value", unit}));
    return state.empty() ? "unknown" : state;
  }
  std::string describe() const override { return "systemctl"; }
};

}  // namespace

std::unique_ptr<ServiceManager> make_systemctl_manager() { return std::make_unique<SystemctlManager>(); }

}  // namespace kb::installer
