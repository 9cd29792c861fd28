#pragma once
// The EC2 instance metadata service, IMDSv2 only (a session token first, as AWS
// recommends and as instances launched with HttpTokens=required demand): the
// instance id a bundle may be bound to (manifest node.instance_id).
// Plain HTTP/1.1 to a link-local address with short time limits, through the
// installer's own client (installer/http_client.h); no name resolution needed.

#include <chrono>
#include <string>

namespace kb::installer {

struct ImdsEndpoint {
  std::string ip = "169.254.169.254";
  int port = 80;
};

// The endpoint to ask: 169.254.169.254:80, or `override_text` "IP:PORT" when not empty
// (Hooks::imds_endpoint, tests only; `overridden` is then set so the caller can say so).
ImdsEndpoint imds_endpoint(const std::string& override_text, bool* overridden = nullptr);

// This instance's id ("i-..."). Throws kb::Error naming the step that failed
// (not on EC2, metadata service off, hop limit, a non-200 answer).
std::string imds_instance_id(const ImdsEndpoint& endpoint, std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

}  // namespace kb::installer
