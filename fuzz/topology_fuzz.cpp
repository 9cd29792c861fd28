// Fuzz target: the topology parser. Any input must end in a TopologyResult (a topology, or errors
// with a message), never a crash, a sanitizer report, a hang or an escaping exception.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "topology/topology.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  kb::TopologyResult r = kb::parse_topology(text, "fuzz.yaml");
  bool has_error = std::any_of(r.diagnostics.begin(), r.diagnostics.end(),
                               [](const kb::Diagnostic& d) { return d.severity == kb::Diagnostic::Severity::Error; });
  // Either a topology or at least one error, never both or neither; every problem says something.
  if (r.ok() == has_error) __builtin_trap();
  for (const auto& d : r.diagnostics) {
    if (d.message.empty()) __builtin_trap();
    // What quotes the input is escaped: no control character reaches a terminal.
    for (char c : d.format())
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) __builtin_trap();
  }
  return 0;
}
