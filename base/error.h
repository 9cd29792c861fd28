#pragma once
// One exception type for the whole project: the message reads
// "<what, path first>: <why>" and is printed as-is by the mains.

#include <stdexcept>
#include <string>

namespace kb {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "<path>: <strerror(errno)>" for a failed system call on `path`.
[[noreturn]] void throw_errno(const std::string& what);

}  // namespace kb
