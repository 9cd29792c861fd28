#include "publish/progress.h"

#include <cstdio>
#include <ostream>

namespace kb {

Progress::Progress(std::ostream& err, bool enabled, std::string label)
    : err_(err), enabled_(enabled), label_(std::move(label)) {}

Progress::~Progress() {
  if (enabled_ && drawn_) err_ << "\r\033[K" << std::flush;
}

std::string Progress::render(const std::string& label, uint64_t done, uint64_t total, int width) {
  if (done > total) done = total;
  int filled = total ? static_cast<int>(static_cast<double>(done) / static_cast<double>(total) * width) : width;
  int pct = total ? static_cast<int>(done * 100 / total) : 100;
  char nums[64];
  std::snprintf(nums, sizeof nums, " %3d%%  %.1f/%.1f MiB", pct, static_cast<double>(done) / 1048576.0,
                static_cast<double>(total) / 1048576.0);
  return "  " + label + " [" + std::string(static_cast<size_t>(filled), '#') +
         std::string(static_cast<size_t>(width - filled), '.') + "]" + nums;
}

void Progress::update(uint64_t done, uint64_t total) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  drawn_ = true;
  err_ << "\r" << render(label_, done, total, 30) << std::flush;
}

}  // namespace kb
