#pragma once
// HTTP(S) downloads through libcurl for `kbundle fetch`: resumable (a .part file and an HTTP
// Range request), retried with exponential backoff on transport errors and 5xx/408/429,
// with a progress bar on a terminal and plain lines otherwise.

#include <cstdint>
#include <iosfwd>
#include <string>

namespace kb {

struct DownloadOptions {
  int attempts = 5;         // tries per URL, the first included
  int backoff_ms = 500;     // wait before the 2nd try; doubles each time
  std::ostream* log = nullptr;  // plain lines ("GET url", "url: N bytes in T s"); null: quiet
  bool progress_bar = false;    // redraw one line on `log` (a terminal) while downloading
};

// Downloads `url` into `part_path`, appending to what an interrupted earlier try left there
// (a Range request; a server that ignores it restarts the file). Returns the file's size.
// The file stays in place on failure, for the next run to resume.
// Throws kb::Error "<url>: <why>" (HTTP status, or libcurl's message after the last try).
uint64_t download_to_file(const std::string& url, const std::string& part_path, const DownloadOptions& options);

// A small document (a checksum file), at most `max_bytes`, into memory; retried likewise.
std::string download_text(const std::string& url, const DownloadOptions& options, size_t max_bytes = 1 << 20);

}  // namespace kb
