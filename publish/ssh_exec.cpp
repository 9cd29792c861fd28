#include "publish/ssh_exec.h"

#include "base/error.h"

#ifdef KB_HAVE_LIBSSH2
#include <libssh2.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#endif

namespace kb {

void append_output(ExecResult& r, std::string_view data, size_t cap) {
  r.output.append(data);
  if (r.output.size() > 2 * cap) {  // trimmed in steps of `cap`, so a flood costs linear time
    size_t drop = r.output.size() - cap;
    r.output.erase(0, drop);
    r.dropped += drop;
  }
}

#ifndef KB_HAVE_LIBSSH2

ExecResult ssh_exec(const SshTarget&, const std::string&, const std::string&, const std::string&, std::chrono::seconds) {
  throw Error("--apply: this kbundle was built without libssh2 (hint: install libssh2-1-dev and rebuild)");
}

#else

namespace {

std::string session_error(LIBSSH2_SESSION* s) {
  char* msg = nullptr;
  libssh2_session_last_error(s, &msg, nullptr, 0);
  return msg ? msg : "unknown libssh2 error";
}

int connect_to(const SshTarget& t, std::chrono::seconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string where = "ssh " + t.host + ":" + std::to_string(t.port);
  if (int rc = getaddrinfo(t.host.c_str(), std::to_string(t.port).c_str(), &hints, &res); rc != 0)
    throw Error(where + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  for (addrinfo* a = res; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) return fd;
    close(fd);
  }
  throw_errno(where);
}

}  // namespace

ExecResult ssh_exec(const SshTarget& t, const std::string& identity, const std::string& host_fingerprint,
                    const std::string& command, std::chrono::seconds timeout) {
  static const int init = libssh2_init(0);
  if (init != 0) throw Error("libssh2: cannot initialise");
  const std::string where = "ssh " + t.host + ":" + std::to_string(t.port);
  int fd = connect_to(t, timeout);
  LIBSSH2_SESSION* s = libssh2_session_init();
  LIBSSH2_CHANNEL* ch = nullptr;
  auto cleanup = [&] {
    if (ch) libssh2_channel_free(ch);
    libssh2_session_disconnect(s, "done");
    libssh2_session_free(s);
    close(fd);
  };
  try {
    if (!s) throw Error("libssh2: cannot create a session");
    libssh2_session_set_blocking(s, 1);
    libssh2_session_set_timeout(s, static_cast<long>(timeout.count()) * 1000);
    if (libssh2_session_handshake(s, fd) != 0) throw Error(where + ": SSH handshake: " + session_error(s));
    // The key the upload verified, and no other.
    const char* hash = libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256);
    if (!hash) throw Error(where + ": no SHA256 host key hash from libssh2");
    unsigned char b64[64] = {};
    int n = EVP_EncodeBlock(b64, reinterpret_cast<const unsigned char*>(hash), 32);
    std::string fp(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
    while (fp.ends_with('=')) fp.pop_back();
    if ("SHA256:" + fp != host_fingerprint)
      throw Error(where + ": REFUSED: the host key changed since the upload (SHA256:" + fp + ", expected " +
                  host_fingerprint + ")");
    std::string pub = identity + ".pub";
    if (libssh2_userauth_publickey_fromfile(s, t.user.c_str(), std::filesystem::exists(pub) ? pub.c_str() : nullptr,
                                            identity.c_str(), nullptr) != 0)
      throw Error(where + ": login as " + t.user + " with " + identity + " denied: " + session_error(s));
    ch = libssh2_channel_open_session(s);
    if (!ch) throw Error(where + ": cannot open a channel: " + session_error(s));
    // stderr into stdout on the node: one stream to read, so neither can fill up and stall the other.
    const std::string merged = "{ " + command + "\n} 2>&1";
    if (libssh2_channel_exec(ch, merged.c_str()) != 0) throw Error(where + ": cannot run the command: " + session_error(s));
    ExecResult r;
    char buf[16384];
    for (;;) {
      ssize_t got = libssh2_channel_read(ch, buf, sizeof buf);
      if (got > 0) append_output(r, std::string_view(buf, static_cast<size_t>(got)));
      else if (got == 0) break;  // EOF
      else throw Error(where + ": reading the output: " + session_error(s));
    }
    libssh2_channel_close(ch);
    libssh2_channel_wait_closed(ch);
    r.exit_status = libssh2_channel_get_exit_status(ch);
    cleanup();
    return r;
  } catch (...) {
    cleanup();
    throw;
  }
}

#endif

}  // namespace kb
