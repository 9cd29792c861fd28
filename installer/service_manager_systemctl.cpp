#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bundles/error.h"
#include "installer/service_manager.h"

extern char** environ;

namespace kb::installer {

namespace {

constexpr const char* kSystemctl = "/bin/systemctl";

struct Output {
  int status = -1;  // exit code, or 128 + signal
  std::string out, err;
};

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

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

std::string joined(const std::vector<std::string>& args) {
  std::string s = "systemctl";
  for (const auto& a : args) s += " " + a;
  return s;
}

// Runs systemctl with `args` (argv, no shell), stdin from /dev/null, and collects both outputs.
Output run_systemctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv_strings{kSystemctl};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw_errno(joined(args) + ": cannot create a pipe");
  Fd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw_errno(joined(args) + ": cannot create a pipe");
  Fd err_r(err_pipe[0]), err_w(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  // The child gets default signal handling (an ignored SIGPIPE would be inherited otherwise).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, kSystemctl, &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw Error(joined(args) + ": cannot run " + kSystemctl + ": " + std::strerror(rc));
  out_w.reset();
  err_w.reset();

  // Read both pipes until both are closed (reading one at a time could deadlock on a full pipe).
  Output result;
  pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      if (sinks[i]->size() < (1u << 20)) sinks[i]->append(buf, static_cast<size_t>(n));
    }
  }

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno(joined(args) + ": waitpid");
  }
  if (WIFEXITED(status)) result.status = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) result.status = 128 + WTERMSIG(status);
  return result;
}

// Runs systemctl and throws kb::Error with its message unless it exits 0.
std::string checked(const std::vector<std::string>& args) {
  Output o = run_systemctl(args);
  if (o.status != 0) {
    std::string why = one_line(o.err);
    if (why.empty()) why = one_line(o.out);
    if (why.empty()) why = "exited with status " + std::to_string(o.status);
    throw Error(joined(args) + ": " + why);
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
