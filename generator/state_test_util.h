#pragma once
// Helpers shared by the state's unit tests (state_test.cpp, rotation_test.cpp): test code only.

#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "base/atomic_file.h"
#include "base/error.h"

namespace kb::test {

// Every file under `dir` (but the lock) and its bytes: "nothing was written" is an equal snapshot.
inline std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().filename() == ".lock") continue;
    out[e.path().string()] = read_file(e.path().string());
  }
  return out;
}

// The message of the kb::Error `f` throws ("" when it throws none).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A state file written as a user would (0600, atomically).
inline void put(const std::string& path, const std::string& text) { write_file_atomic(path, text, 0600); }

}  // namespace kb::test
