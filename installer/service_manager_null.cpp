#include "installer/service_manager.h"

namespace kb::installer {

namespace {

// --no-systemd and tests: records what it was asked, changes nothing.
class NullManager : public ServiceManager {
 public:
  explicit NullManager(std::vector<std::string>* calls) : calls_(calls) {}
  void daemon_reload() override { record("daemon-reload"); }
  void enable(const std::string& unit) override { record("enable " + unit); }
  void disable(const std::string& unit) override { record("disable " + unit); }
  void restart(const std::string& unit, bool no_block) override {
    record(std::string(no_block ? "restart --no-block " : "restart ") + unit);
  }
  void stop(const std::string& unit) override { record("stop " + unit); }
  std::string active_state(const std::string&) override { return "active"; }
  std::string describe() const override { return "none"; }

 private:
  void record(const std::string& call) {
    if (calls_) calls_->push_back(call);
  }
  std::vector<std::string>* calls_;
};

}  // namespace

std::unique_ptr<ServiceManager> make_null_manager(std::vector<std::string>* calls) {
  return std::make_unique<NullManager>(calls);
}

}  // namespace kb::installer
