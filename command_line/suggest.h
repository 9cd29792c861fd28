#pragma once
// "Did you mean": the known word a mistyped one most likely meant, for subcommands and flags alike.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kb::command_line {

// The candidate nearest to `word` (Damerau-Levenshtein distance, ties to the first listed) when it
// is near enough to be a typo: at most 1 edit for words up to 4 characters, 2 up to 8, else 3.
// Also the one candidate that `word` is a prefix of ("gen" for "ge"). nullopt when nothing is close.
std::optional<std::string> did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace kb::command_line
