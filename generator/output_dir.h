#pragma once
// The output directory, replaced as a whole: everything is written into a
// staging directory beside it, synced, then swapped in with one
// renameat2(RENAME_EXCHANGE). A failure or crash at any point leaves the
// previous output as it was (plus, at worst, a stale staging directory that the
// next run removes).

#include <string>
#include <string_view>

namespace kb {

class OutputDir {
 public:
  // Refuses (kb::Error) an existing `dir` that is not empty and was not made by kbundle,
  // so that `--out ~` can never replace a home directory.
  explicit OutputDir(std::string dir);
  ~OutputDir();  // removes the staging directory unless committed
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;

  // Path inside the staging directory for `relative` (parents created 0700).
  std::string staged_path(const std::string& relative);
  // Writes `content` to `relative` with `mode` (durability comes from one syncfs at commit).
  void write(const std::string& relative, std::string_view content, unsigned mode);
  // Makes every top-level entry of the current output that was not written in this run
  // part of the new output too (hard links: nothing is copied). For runs limited to some nodes.
  void keep_unwritten_entries();
  void commit();

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_, staging_;
  bool committed_ = false;
};

}  // namespace kb
