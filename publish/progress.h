#pragma once
// A one-line progress bar on a terminal ("  control-0.kbundle [#####.....]  52%  6.1/11.7 MiB"),
// redrawn at most every 100 ms; nothing at all when disabled (not a terminal, --json).

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace kb {

class Progress {
 public:
  Progress(std::ostream& err, bool enabled, std::string label);
  ~Progress();  // ends the line
  void update(uint64_t done, uint64_t total);

  // Formats the bar for `width` columns of bar; for tests.
  static std::string render(const std::string& label, uint64_t done, uint64_t total, int width);

 private:
  std::ostream& err_;
  bool enabled_;
  std::string label_;
  std::chrono::steady_clock::time_point last_{};
  bool drawn_ = false;
};

}  // namespace kb
