#include "publish/rollout.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <exception>
#include <map>
#include <ostream>
#include <sstream>
#include <thread>

#include "base/error.h"
#include "base/text_escape.h"
#include "base/time.h"
#include "topology/apply_order.h"

namespace kb {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kLastLines = 8;  // of a failing installer's output, in the report

const char* json_name(NodeResult r) {
  switch (r) {
    case NodeResult::Applied: return "applied";
    case NodeResult::Unchanged: return "unchanged";
    case NodeResult::Failed: return "failed";
    case NodeResult::NotStarted: return "not-started";
  }
  return "?";
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

void fail_node(NodeRollout& n, const std::string& step, int exit_code, const std::string& error,
               std::vector<std::string> lines) {
  n.result = NodeResult::Failed;
  n.step = step;
  n.exit_code = exit_code;
  n.error = error;
  n.last_lines = std::move(lines);
}

// The installer's failure in one line: its own error when it printed one, else its exit status.
std::string installer_failure(const std::string& what, int exit_status, const std::string& error) {
  std::string s = what + " exited " + std::to_string(exit_status);
  if (!error.empty()) s += ": " + escape_text(error);
  return s;
}

}  // namespace

const char* to_string(NodeResult r) {
  switch (r) {
    case NodeResult::Applied: return "applied";
    case NodeResult::Unchanged: return "nothing to do";
    case NodeResult::Failed: return "failed";
    case NodeResult::NotStarted: return "not started";
  }
  return "?";
}

ApplyOutput parse_apply_output(const std::string& output) {
  ApplyOutput a;
  a.lines = split_lines(output);
  while (!a.lines.empty() && a.lines.back().empty()) a.lines.pop_back();
  // Without a report (a usage error prints its line, then the usage), the installer's own error line.
  const std::string tag = "kbundle-installer: error: ";
  for (const std::string& l : a.lines)
    if (l.starts_with(tag)) a.error = l.substr(tag.size());
  if (a.lines.empty() || !a.lines.back().starts_with("{")) return a;
  nlohmann::json j = nlohmann::json::parse(a.lines.back(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("command")) return a;
  auto text = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  a.result = text("result");
  if (!text("error").empty()) a.error = text("error");
  a.lines.pop_back();
  return a;
}

std::vector<std::string> last_lines(const std::vector<std::string>& lines, size_t n) {
  std::vector<std::string> out;
  for (auto it = lines.rbegin(); it != lines.rend() && out.size() < n; ++it)
    if (!it->empty()) out.insert(out.begin(), escape_text(*it));
  return out;
}

nlohmann::json RolloutReport::to_json() const {
  nlohmann::json nodes_json = nlohmann::json::array();
  for (const NodeRollout& n : nodes) {
    nlohmann::json j{{"node", n.node},
                     {"role", n.control_plane ? "control-plane" : "worker"},
                     {"batch", n.batch},
                     {"result", json_name(n.result)}};
    if (n.result != NodeResult::NotStarted) {
      j["startedAt"] = n.started_at;
      j["finishedAt"] = n.finished_at;
      j["startOffsetSeconds"] = n.start_offset;
      j["seconds"] = n.seconds;
    }
    if (n.result == NodeResult::Failed) {
      j["step"] = n.step;
      j["exitCode"] = n.exit_code < 0 ? nlohmann::json(nullptr) : nlohmann::json(n.exit_code);
      j["error"] = n.error;
      j["lastLines"] = n.last_lines;
    }
    nodes_json.push_back(j);
  }
  return {{"order", order}, {"firstInstall", first_install}, {"ok", ok()},
          {"failure", failure.empty() ? nlohmann::json(nullptr) : nlohmann::json(failure)}, {"nodes", nodes_json}};
}

void RolloutReport::print(std::ostream& out) const {
  size_t done = 0;
  for (const NodeRollout& n : nodes) done += n.result == NodeResult::Applied || n.result == NodeResult::Unchanged;
  out << "\nrollout: " << done << " of " << nodes.size() << " nodes done"
      << (ok() ? "" : "; stopped: " + failure) << "\n";
  for (const NodeRollout& n : nodes) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-24s %-14s batch %zu", n.node.c_str(), to_string(n.result), n.batch);
    out << line;
    if (n.result != NodeResult::NotStarted) {
      char t[48];
      std::snprintf(t, sizeof t, "  (%.1f s)", n.seconds);
      out << t;
    }
    if (n.result == NodeResult::Failed) out << "  " << n.step << ": " << n.error;
    out << "\n";
    for (const std::string& l : n.last_lines) out << "      | " << l << "\n";
  }
}

RolloutReport run_rollout(const std::vector<std::vector<std::string>>& order,
                          const std::set<std::string>& control_plane, RolloutNodes& nodes, std::ostream& out) {
  const auto t0 = Clock::now();
  RolloutReport rep;
  rep.order = order;
  out << "rollout order: " << describe_apply_order(order) << "\n";

  auto is_cp = [&](const std::string& n) { return control_plane.count(n) > 0; };
  auto stamp_start = [&](NodeRollout& n) {
    n.started_at = rfc3339_utc(std::time(nullptr));
    n.start_offset = std::chrono::duration<double>(Clock::now() - t0).count();
  };
  auto stamp_end = [&](NodeRollout& n) {
    n.finished_at = rfc3339_utc(std::time(nullptr));
    n.seconds = std::chrono::duration<double>(Clock::now() - t0).count() - n.start_offset;
  };
  auto fill_nodes = [&] {
    rep.nodes.clear();
    for (size_t b = 0; b < rep.order.size(); ++b)
      for (const std::string& name : rep.order[b]) {
        NodeRollout n;
        n.node = name;
        n.control_plane = is_cp(name);
        n.batch = b + 1;
        rep.nodes.push_back(n);
      }
  };
  std::map<std::string, size_t> index;
  auto node_of = [&](const std::string& name) -> NodeRollout& { return rep.nodes[index.at(name)]; };
  auto reindex = [&] {
    index.clear();
    for (size_t i = 0; i < rep.nodes.size(); ++i) index[rep.nodes[i].node] = i;
  };
  fill_nodes();
  reindex();

  // A first install: etcd passes its health check only with a quorum, so a never-installed control
  // plane cannot come up one node at a time. Asked in order, and only until one node has something
  // installed: on a running cluster only the first control-plane node is asked.
  std::vector<std::string> leading_cps;
  for (const auto& batch : order) {
    if (batch.size() != 1 || !is_cp(batch[0])) break;
    leading_cps.push_back(batch[0]);
  }
  // Only a run over the whole control plane can be a first install: a subset (--node) of a cluster
  // whose other members run is joining them, one at a time.
  if (leading_cps.size() > 1 && leading_cps.size() == control_plane.size()) {
    bool any_installed = false;
    for (const std::string& cp : leading_cps) {
      NodeRollout& n = node_of(cp);
      try {
        if (nodes.installed(cp)) {
          any_installed = true;
          break;
        }
      } catch (const std::exception& e) {
        stamp_start(n);
        fail_node(n, "probe", -1, escape_text(e.what()), {});
        stamp_end(n);
        rep.failure = cp + ": cannot tell whether it has anything installed: " + n.error;
        return rep;
      }
    }
    if (!any_installed) {
      rep.first_install = true;
      rep.order.assign(1, leading_cps);
      rep.order.insert(rep.order.end(), order.begin() + static_cast<std::ptrdiff_t>(leading_cps.size()), order.end());
      fill_nodes();
      reindex();
      out << "first install: no control-plane node has anything installed; applying " << leading_cps.size()
          << " of them together (etcd needs a quorum to pass its health check), then gating on every one: "
          << describe_apply_order(rep.order) << "\n";
    }
  }

  std::vector<std::string> gated;  // control-plane nodes done in this run, gated again after each new one
  for (size_t b = 0; b < rep.order.size(); ++b) {
    const std::vector<std::string>& batch = rep.order[b];
    out << "batch " << (b + 1) << "/" << rep.order.size() << ": " << describe_apply_order({batch}) << "\n"
        << std::flush;
    auto run_node = [&](NodeRollout& n) {
      stamp_start(n);
      try {
        nodes.upload(n.node);
      } catch (const std::exception& e) {
        fail_node(n, "upload", -1, escape_text(e.what()), {});
        stamp_end(n);
        return;
      }
      ExecResult r;
      try {
        r = nodes.apply(n.node);
      } catch (const std::exception& e) {
        fail_node(n, "apply", -1, escape_text(e.what()), {});
        stamp_end(n);
        return;
      }
      ApplyOutput a = parse_apply_output(r.output);
      if (r.exit_status != 0)
        fail_node(n, "apply", r.exit_status, installer_failure("kbundle-installer apply", r.exit_status, a.error),
                  last_lines(a.lines, kLastLines));
      else
        n.result = a.result == "unchanged" ? NodeResult::Unchanged : NodeResult::Applied;
      stamp_end(n);
    };
    if (batch.size() == 1) {
      run_node(node_of(batch[0]));
    } else {
      // A batch's nodes at once; each thread writes only its own NodeRollout.
      std::vector<std::thread> threads;
      for (const std::string& name : batch) threads.emplace_back(run_node, std::ref(node_of(name)));
      for (auto& t : threads) t.join();
    }

    // The gate: each new control-plane node, then every one done before, must answer `health`.
    bool applied = true;
    std::vector<std::string> new_cps;
    for (const std::string& name : batch) {
      applied = applied && node_of(name).result != NodeResult::Failed;
      if (is_cp(name)) new_cps.push_back(name);
    }
    if (applied && !new_cps.empty()) {
      std::vector<std::string> ask = new_cps;
      ask.insert(ask.end(), gated.begin(), gated.end());
      for (const std::string& g : ask) {
        // A failure is the new node's: it is the one that did not keep the control plane healthy.
        const bool is_new = std::find(new_cps.begin(), new_cps.end(), g) != new_cps.end();
        NodeRollout& n = node_of(is_new ? g : new_cps[0]);
        const std::string step = is_new ? "health" : "health of " + g;
        try {
          ExecResult h = nodes.health(g);
          if (h.exit_status != 0) {
            ApplyOutput a = parse_apply_output(h.output);
            fail_node(n, step, h.exit_status, installer_failure("kbundle-installer health on " + g, h.exit_status, a.error),
                      last_lines(a.lines, kLastLines));
          }
        } catch (const std::exception& e) {
          fail_node(n, step, -1, escape_text(e.what()), {});
        }
        stamp_end(n);
        if (n.result == NodeResult::Failed) break;
      }
      gated.insert(gated.end(), new_cps.begin(), new_cps.end());
    }
    for (const std::string& name : batch) {
      const NodeRollout& n = node_of(name);
      out << "  " << n.node << ": " << to_string(n.result);
      if (n.result != NodeResult::Failed && n.control_plane) out << ", healthy";
      out << "\n";
    }
    for (const std::string& name : batch) {
      const NodeRollout& n = node_of(name);
      if (n.result == NodeResult::Failed && rep.failure.empty())
        rep.failure = n.node + ": " + n.step + ": " + n.error;
    }
    if (!rep.failure.empty()) break;
  }
  return rep;
}

}  // namespace kb
