#pragma once
// What an installer command takes from outside the root it works on: the service manager, the
// health checks, and the seams that only tests use. Every field has a default that is right for
// a node; tests set fields directly. Because the integration tests run kbundle-installer as a
// separate process, the test-only fields can also come from environment variables, which are
// read in exactly one place: hooks_from_environment(), called by installer/main.cpp
// (README.md, "Test-only hooks").

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "installer/fault.h"
#include "installer/health.h"
#include "installer/service_manager.h"

namespace kb::installer {

using HealthFn = std::function<HealthResult(const nlohmann::json& check, const std::string& root, ServiceManager&)>;

// Seconds since the epoch from the system clock.
int64_t system_clock_now();

struct Hooks {
  std::function<std::unique_ptr<ServiceManager>(bool no_systemd)> make_services;  // default: null manager
  HealthFn health;  // default: every check fails ("no health checker")
  std::function<int64_t()> now = system_clock_now;  // `status` reports certificate expiry against it

  // Test-only: production leaves these as they are.
  FaultPoints faults;             // KB_FAULT_POINT, KB_FAULT_LIST
  bool skip_space_check = false;  // KB_TEST_SKIP_SPACE_CHECK=1: tiny test file systems
  std::string imds_endpoint;      // KB_IMDS_ENDPOINT=IP:PORT; empty: EC2's 169.254.169.254:80
};

// Hooks with the test-only fields taken from KB_FAULT_POINT, KB_FAULT_LIST,
// KB_TEST_SKIP_SPACE_CHECK and KB_IMDS_ENDPOINT; everything else at its default.
Hooks hooks_from_environment();

}  // namespace kb::installer
