#pragma once
// Health checks from a bundle's manifest (see bundles/FORMAT.md and
// generator/bundle_output.cpp): objects with name, kind, target, and optional
// caFile, certFile, keyFile, timeoutSeconds. Kinds:
//   unit   target is a unit name; passes when its ActiveState is "active"
//   etcd   target is an https URL (etcd /health); passes on 200 and {"health":"true"}
//   https  target is an https URL; passes on HTTP 200 (caFile empty: the server cert is not verified,
//          used for loopback components with self-signed serving certs)
//   http   target is an http URL; passes on HTTP 200
// TLS and HTTP are done with OpenSSL and plain sockets (the installer links no libcurl).

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "installer/service_manager.h"

namespace kb::installer {

struct HealthResult {
  bool ok = false;
  std::string detail;  // "200 OK in 1.2 s", "connection refused (after 60 s)", ...
};

// Retries the check until it passes or min(its timeoutSeconds, limit) has passed.
// Files named in the check are read under `root` ("/" on a real node).
HealthResult run_health_check(const nlohmann::json& check, const std::string& root, ServiceManager& services,
                              std::chrono::seconds limit);

}  // namespace kb::installer
