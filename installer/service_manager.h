#pragma once
// The narrow interface to the service manager. Only the systemctl
// implementation runs processes or touches the live system; --no-systemd and
// the tests use the others.

#include <memory>
#include <string>
#include <vector>

namespace kb::installer {

class ServiceManager {
 public:
  virtual ~ServiceManager() = default;
  virtual void daemon_reload() = 0;
  virtual void enable(const std::string& unit) = 0;
  virtual void disable(const std::string& unit) = 0;
  // Starts the unit, or restarts it when running. With no_block the call returns once the job is
  // queued (etcd is Type=notify and only reports ready with quorum: waiting would deadlock the first member).
  virtual void restart(const std::string& unit, bool no_block) = 0;
  virtual void stop(const std::string& unit) = 0;
  // systemd's ActiveState: "active", "activating", "failed", "inactive", ... ("unknown" if none).
  virtual std::string active_state(const std::string& unit) = 0;
  virtual std::string describe() const = 0;  // "systemctl" or "none", for progress lines
};

// Runs systemctl (throws kb::Error with systemctl's message on failure).
std::unique_ptr<ServiceManager> make_systemctl_manager();
// --no-systemd: does nothing and reports every unit "active"; records the calls it got.
std::unique_ptr<ServiceManager> make_null_manager(std::vector<std::string>* calls = nullptr);

}  // namespace kb::installer
