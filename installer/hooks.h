#pragma once
// What an installer command takes from outside the root it works on: the service manager, the
// health checks, and the seams that only tests use. Every field has a default that is right for
// a node; tests set fields directly. Because the integration tests run kbundle-installer as a
// separate process, the test-only fields can also come from environment variables, which are
// read in exactly one place: hooks_from_environment(), called by installer/main.cpp
// (README.md, "Test-only hooks").

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "installer/fault.h"
#include "installer/health.h"
#include "https/http_client.h"
#include "installer/service_manager.h"

namespace kb::installer {

// Sends one request to the API server and returns what came back; made once per bootstrap run
// from the TLS files (paths under the root). Throws kb::Error when the files cannot be used.
using ApiSend = std::function<HttpResult(const HttpRequest& request, const HttpLimits& limits)>;
struct ApiEndpoint {
  HttpUrl url;
  std::string ca_file, cert_file, key_file;  // as on disk (the root already prefixed)
};
using ApiClientFactory = std::function<ApiSend(const ApiEndpoint& endpoint)>;
// The real one: HTTPS verified against ca_file and the URL's host, with the client certificate.
ApiSend https_api_client(const ApiEndpoint& endpoint);

using HealthFn = std::function<HealthResult(const nlohmann::json& check, const std::string& root, ServiceManager&)>;

// Seconds since the epoch from the system clock.
int64_t system_clock_now();

struct Hooks {
  std::function<std::unique_ptr<ServiceManager>(bool no_systemd)> make_services;  // default: null manager
  HealthFn health;  // default: every check fails ("no health checker")
  std::function<int64_t()> now = system_clock_now;  // `status` reports certificate expiry against it
  // The bootstrap's API client, its monotonic clock and its pause between tries: unit tests
  // replace them to script the API's answers and to run a 300 s deadline without waiting.
  ApiClientFactory api_client = https_api_client;
  std::function<std::chrono::steady_clock::time_point()> monotonic = std::chrono::steady_clock::now;
  std::function<void(std::chrono::milliseconds)> sleep;  // default: std::this_thread::sleep_for

  // Test-only: production leaves these as they are.
  FaultPoints faults;             // KB_FAULT_POINT, KB_FAULT_LIST
  bool skip_space_check = false;  // KB_TEST_SKIP_SPACE_CHECK=1: tiny test file systems
  std::string imds_endpoint;      // KB_IMDS_ENDPOINT=IP:PORT; empty: EC2's 169.254.169.254:80
  bool null_services = false;     // KB_TEST_NULL_SERVICES=1: the null service manager, health checks still run
};

// Hooks with the test-only fields taken from KB_FAULT_POINT, KB_FAULT_LIST,
// KB_TEST_SKIP_SPACE_CHECK, KB_IMDS_ENDPOINT and KB_TEST_NULL_SERVICES; everything else at its default.
Hooks hooks_from_environment();

}  // namespace kb::installer
