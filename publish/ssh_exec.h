#pragma once
// Runs one command on a node over SSH (libssh2; libcurl cannot run commands), for
// `kbundle publish --apply`. The host must present exactly the key already verified for the upload.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "publish/ssh_target.h"

namespace kb {

struct ExecResult {
  int exit_status = -1;
  std::string output;  // stdout and stderr, interleaved as read; at most the last 2 * kMaxExecOutput bytes
  uint64_t dropped = 0;  // bytes of output dropped from the front
};

// A node that floods its output must not exhaust kbundle's memory: what a command prints is kept up
// to this many bytes, its end (where the installer's summary is).
inline constexpr size_t kMaxExecOutput = 1u << 20;

// Appends `data` to `r.output`; past 2 * `cap` bytes, drops the oldest down to `cap` (counted in `r.dropped`).
void append_output(ExecResult& r, std::string_view data, size_t cap = kMaxExecOutput);

// Connects to t.host:t.port as t.user with `identity` (an OpenSSH private key; `identity`.pub is used
// when present), refuses a host key whose SHA256 fingerprint is not `host_fingerprint`
// ("SHA256:<base64>"), runs `command` and returns its exit status and output. Throws kb::Error for
// connection, host-key and authentication failures, or when kbundle was built without libssh2.
ExecResult ssh_exec(const SshTarget& t, const std::string& identity, const std::string& host_fingerprint,
                    const std::string& command, std::chrono::seconds timeout);

}  // namespace kb
