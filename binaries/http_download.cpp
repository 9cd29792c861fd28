#include "binaries/http_download.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <ostream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "base/error.h"
#include "base/unique_fd.h"
#include "curl/easy.h"

#ifndef KB_VERSION
#define KB_VERSION "dev"
#endif

namespace kb {

namespace {

using Clock = std::chrono::steady_clock;

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

std::string base_name(const std::string& url) {
  auto slash = url.find_last_of('/');
  return slash == std::string::npos ? url : url.substr(slash + 1);
}

// One transfer's sink and progress state.
struct Transfer {
  int fd = -1;                 // file sink, or
  std::string* text = nullptr; // memory sink
  size_t max_text = 0;
  bool too_big = false;
  int write_errno = 0;
  uint64_t start_offset = 0;
  uint64_t written = 0;
  Clock::time_point started = Clock::now(), last_draw{};
  curl_off_t last_drawn = -1;
  const DownloadOptions* options = nullptr;
  std::string label;
  bool drew = false;
};

size_t on_write(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (t->text) {
    if (t->text->size() + len > t->max_text) {
      t->too_big = true;
      return 0;
    }
    t->text->append(data, len);
  } else {
    size_t done = 0;
    while (done < len) {
      ssize_t w = ::write(t->fd, data + done, len - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        t->write_errno = errno;
        return 0;
      }
      done += static_cast<size_t>(w);
    }
  }
  t->written += len;
  return len;
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->options->progress_bar || !t->options->log) return 0;
  auto now = Clock::now();
  bool finished = dltotal > 0 && dlnow == dltotal;
  if (now - t->last_draw < std::chrono::milliseconds(100) && !(finished && dlnow != t->last_drawn)) return 0;
  t->last_draw = now;
  t->last_drawn = dlnow;
  double secs = std::chrono::duration<double>(now - t->started).count();
  double rate = secs > 0 ? static_cast<double>(dlnow) / secs : 0;
  uint64_t have = t->start_offset + static_cast<uint64_t>(dlnow);
  std::string line = "\r  " + t->label + "  " + human_bytes(static_cast<double>(have));
  if (dltotal > 0) {
    uint64_t total = t->start_offset + static_cast<uint64_t>(dltotal);
    int pct = static_cast<int>(100.0 * static_cast<double>(have) / static_cast<double>(total));
    int filled = pct / 5;
    line += " / " + human_bytes(static_cast<double>(total)) + " [" + std::string(static_cast<size_t>(filled), '#') +
            std::string(static_cast<size_t>(20 - filled), '.') + "] " + std::to_string(pct) + "%";
    if (rate > 0) line += "  ETA " + std::to_string(static_cast<long>(static_cast<double>(dltotal - dlnow) / rate)) + "s";
  }
  line += "  " + human_bytes(rate) + "/s\033[K";
  *t->options->log << line << std::flush;
  t->drew = true;
  return 0;
}

enum class Outcome { kDone, kRetry, kRestart };

// One try. kRetry: transient (back off and resume); kRestart: the partial file is unusable.
Outcome attempt(const std::string& url, Transfer& t, std::string& error) {
  curl::Easy e;
  e.set(CURLOPT_URL, url.c_str());
  curl::http_defaults(e, "kbundle/" KB_VERSION, 30L);
  e.set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  e.set(CURLOPT_FOLLOWLOCATION, 1L);
  e.set(CURLOPT_MAXREDIRS, 10L);
  e.set(CURLOPT_FAILONERROR, 1L);
  e.set(CURLOPT_LOW_SPEED_LIMIT, 1L);
  e.set(CURLOPT_LOW_SPEED_TIME, 60L);
  e.set(CURLOPT_WRITEFUNCTION, on_write);
  e.set(CURLOPT_WRITEDATA, &t);
  e.set(CURLOPT_XFERINFOFUNCTION, on_progress);
  e.set(CURLOPT_XFERINFODATA, &t);
  e.set(CURLOPT_NOPROGRESS, 0L);
  if (t.start_offset > 0) e.set(CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(t.start_offset));
  curl::Result r = curl::perform(e);
  if (t.drew) *t.options->log << "\r\033[K" << std::flush;
  if (r.ok()) return Outcome::kDone;
  error = r.error;
  if (t.write_errno) throw Error(url + ": cannot write the download: " + std::strerror(t.write_errno));
  if (t.too_big) throw Error(url + ": larger than " + std::to_string(t.max_text) + " bytes");
  if (r.code == CURLE_HTTP_RETURNED_ERROR) {
    if (r.status == 416) return Outcome::kRestart;  // the partial file is not a prefix of this one
    if (r.status == 408 || r.status == 429 || r.status >= 500) return Outcome::kRetry;
    throw Error(url + ": HTTP " + std::to_string(r.status));
  }
  if (r.code == CURLE_RANGE_ERROR) return Outcome::kRestart;  // the server cannot resume
  if (r.code == CURLE_UNSUPPORTED_PROTOCOL || r.code == CURLE_URL_MALFORMAT || r.code == CURLE_TOO_MANY_REDIRECTS)
    throw r.to_error(url);
  return Outcome::kRetry;
}

void back_off(const DownloadOptions& o, int try_no) {
  long ms = static_cast<long>(o.backoff_ms) << std::min(try_no, 6);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace

uint64_t download_to_file(const std::string& url, const std::string& part_path, const DownloadOptions& options) {
  curl::global_init();
  std::string error;
  for (int try_no = 0; try_no < options.attempts; ++try_no) {
    UniqueFd fd(::open(part_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (fd.get() < 0) throw_errno("cannot open " + part_path);
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat " + part_path);
    Transfer t;
    t.fd = fd.get();
    t.start_offset = static_cast<uint64_t>(st.st_size);
    t.options = &options;
    t.label = base_name(url);
    if (options.log && !options.progress_bar) {
      *options.log << "fetch: GET " << url;
      if (t.start_offset > 0) *options.log << " (resuming at byte " << t.start_offset << ")";
      *options.log << "\n" << std::flush;
    }
    Outcome out = attempt(url, t, error);
    if (out == Outcome::kDone) {
      if (::fsync(fd.get()) != 0) throw_errno("cannot fsync " + part_path);
      fd.reset();
      uint64_t size = t.start_offset + t.written;
      if (options.log) {
        double secs = std::chrono::duration<double>(Clock::now() - t.started).count();
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.1f", secs);
        *options.log << "fetch: " << url << ": " << human_bytes(static_cast<double>(size)) << " in " << buf << " s\n" << std::flush;
      }
      return size;
    }
    fd.reset();
    if (out == Outcome::kRestart) {
      if (::truncate(part_path.c_str(), 0) != 0) throw_errno("cannot truncate " + part_path);
      error = "the server cannot resume the partial download; starting over";
    }
    if (options.log) *options.log << "fetch: " << url << ": " << error << " (try " << try_no + 1 << " of " << options.attempts << ")\n";
    if (try_no + 1 < options.attempts) back_off(options, try_no);
  }
  throw Error(url + ": " + error + " (gave up after " + std::to_string(options.attempts) + " tries; run again to resume)");
}

std::string download_text(const std::string& url, const DownloadOptions& options, size_t max_bytes) {
  curl::global_init();
  std::string error;
  for (int try_no = 0; try_no < options.attempts; ++try_no) {
    std::string text;
    Transfer t;
    t.text = &text;
    t.max_text = max_bytes;
    t.options = &options;
    t.label = base_name(url);
    DownloadOptions quiet = options;
    quiet.progress_bar = false;
    t.options = &quiet;
    if (attempt(url, t, error) == Outcome::kDone) return text;
    if (options.log) *options.log << "fetch: " << url << ": " << error << " (try " << try_no + 1 << " of " << options.attempts << ")\n";
    if (try_no + 1 < options.attempts) back_off(options, try_no);
  }
  throw Error(url + ": " + error + " (gave up after " + std::to_string(options.attempts) + " tries)");
}

}  // namespace kb
