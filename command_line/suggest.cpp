#include "command_line/suggest.h"

#include <algorithm>

namespace kb::command_line {

namespace {

// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

size_t allowed_edits(std::string_view word) {
  size_t n = word.size();
  while (n > 0 && word[word.size() - n] == '-') --n;  // "--" does not count
  return n <= 4 ? 1 : n <= 8 ? 2 : 3;
}

}  // namespace

std::optional<std::string> did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  if (word.empty() || word.size() > 200) return std::nullopt;
  std::optional<std::string> best;
  size_t best_distance = allowed_edits(word) + 1;
  for (const auto& c : candidates) {
    size_t distance = edit_distance(word, c);
    if (distance < best_distance) best = c, best_distance = distance;
  }
  if (best) return best;
  std::optional<std::string> prefixed;
  for (const auto& c : candidates)
    if (c.size() > word.size() && c.compare(0, word.size(), word) == 0 && word.find_first_not_of('-') != std::string_view::npos) {
      if (prefixed) return std::nullopt;  // ambiguous
      prefixed = c;
    }
  return prefixed;
}

}  // namespace kb::command_line
