#include "topology/text_edit.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "base/error.h"

namespace kb {

namespace {

// [begin, end) of the scalar that starts at `pos`: quoted, or plain up to a comment, line end
// or (in flow context) ',', '}' or ']'.
std::pair<size_t, size_t> scalar_extent(const std::string& text, size_t pos, bool flow) {
  if (pos >= text.size()) throw Error("topology: a value is past the end of the file");
  char q = text[pos];
  if (q == '"' || q == '\'') {
    for (size_t i = pos + 1; i < text.size(); ++i) {
      if (q == '"' && text[i] == '\\') {
        ++i;
        continue;
      }
      if (text[i] == q) {
        if (q == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
          ++i;
          continue;
        }
        return {pos, i + 1};
      }
    }
    throw Error("topology: an unterminated quoted value");
  }
  size_t end = pos;
  while (end < text.size() && text[end] != '\n' && text[end] != '\r') {
    if (text[end] == '#' && end > pos && (text[end - 1] == ' ' || text[end - 1] == '\t')) break;
    if (flow && (text[end] == ',' || text[end] == '}' || text[end] == ']')) break;
    ++end;
  }
  while (end > pos && (text[end - 1] == ' ' || text[end - 1] == '\t')) --end;
  return {pos, end};
}

struct Edit {
  size_t begin, end;
  std::string with;
};

}  // namespace

std::string patch_topology_text(const std::string& text, const std::string& api_host,
                                const std::map<std::string, std::string>& public_ips,
                                const std::map<std::string, std::string>& instance_ids) {
  YAML::Node root = YAML::Load(text);
  std::vector<Edit> edits;
  // A value that has a place in the file: replaced where it stands.
  auto replace_value = [&](const YAML::Node& value, bool flow, const std::string& with) {
    if (value.Mark().is_null() || value.Mark().pos < 0) throw Error("topology: a value without a position");
    auto [b, e] = scalar_extent(text, static_cast<size_t>(value.Mark().pos), flow);
    edits.push_back({b, e, with});
  };
  // The key's own text span; the value goes after its ':'.
  auto key_mark = [&](const YAML::Node& map, const std::string& key) -> std::optional<YAML::Mark> {
    for (auto it = map.begin(); it != map.end(); ++it)
      if (it->first.IsScalar() && it->first.Scalar() == key) return it->first.Mark();
    return std::nullopt;
  };
  auto set_in_map = [&](const YAML::Node& map, const std::string& key, const std::string& value,
                        const std::string& after_key) {
    bool flow = map.Style() == YAML::EmitterStyle::Flow;
    YAML::Node v = map[key];
    if (v && !v.IsNull()) {
      if (!v.IsScalar()) throw Error("topology: " + key + " is not a single value");
      replace_value(v, flow, value);
      return;
    }
    if (auto km = key_mark(map, key)) {  // "key:" with an empty value
      size_t colon = text.find(':', static_cast<size_t>(km->pos));
      if (colon == std::string::npos) throw Error("topology: cannot find the ':' after " + key);
      auto [b, e] = scalar_extent(text, colon + 1, flow);
      edits.push_back({colon + 1, e, " " + value});
      (void)b;
      return;
    }
    auto am = key_mark(map, after_key);
    YAML::Node after = map[after_key];
    if (!am || !after || !after.IsScalar()) throw Error("topology: no " + after_key + " to put " + key + " after");
    auto [b, e] = scalar_extent(text, static_cast<size_t>(after.Mark().pos), flow);
    if (flow) {
      edits.push_back({e, e, ", " + key + ": " + value});
    } else {
      size_t line_end = text.find('\n', e);
      if (line_end == std::string::npos) line_end = text.size();
      if (line_end > 0 && text[line_end - 1] == '\r') --line_end;
      edits.push_back({line_end, line_end, "\n" + std::string(static_cast<size_t>(am->column), ' ') + key + ": " + value});
    }
  };

  if (!api_host.empty()) {
    YAML::Node endpoint = root["cluster"]["apiEndpoint"];
    if (!endpoint || !endpoint.IsMap()) throw Error("topology: no cluster.apiEndpoint mapping");
    set_in_map(endpoint, "host", api_host, "port");
  }
  for (const auto* values : {&public_ips, &instance_ids}) {
    if (values->empty()) continue;
    for (const YAML::Node& node : root["nodes"]) {
      if (!node.IsMap() || !node["name"]) continue;
      auto it = values->find(node["name"].Scalar());
      if (it != values->end()) set_in_map(node, values == &public_ips ? "publicIP" : "instanceId", it->second, "privateIP");
    }
  }
  std::sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) { return a.begin > b.begin; });
  std::string out = text;
  for (const Edit& e : edits) out.replace(e.begin, e.end - e.begin, e.with);
  return out;
}

}  // namespace kb
