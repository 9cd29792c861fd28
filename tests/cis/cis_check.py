#!/usr/bin/env python3
"""Evaluates the CIS Kubernetes Benchmark checks (kube-bench's cis-1.12 definitions,
vendored in tests/cis/cis-1.12/) against kbundle's node trees, offline.

    cis_check.py [--manifest-dir DIR] [--exceptions FILE] [--equivalents FILE] ROOT...

Each ROOT is one node laid out as on the machine: `kbundle gen --format dir` writes
O/<node>/etc/systemd/system/..., the installer applies the same files to /. kube-bench
runs shell audits (ps, stat, cat) on a live node; here each audit is answered from the
tree instead: a component's command line is its unit's ExecStart, its config file the
one its flags name, a file's mode and owner come from stat, or, with --manifest-dir,
from DIR/<node>.json (`kbundle inspect --json`: the modes and owners the plan gives,
since a tree written by an unprivileged user cannot carry root ownership). The audit
output is then judged with kube-bench's own test semantics (flag set/unset, compare ops,
bin_op, jsonpath into config files).

Prints one line per check and `scored: P/N, manual: P/N`. Exit 0 when every check
passes or is a listed exception, 1 when any other check fails, 2 on bad input.
Python 3 standard library plus PyYAML (Debian: python3-yaml).
"""

import argparse
import json
import os
import re
import shlex
import stat
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT_DIR = "/etc/systemd/system"
EQUIVALENTS_NAME = "equivalents.yaml"

# kube-bench's $<component>bin variables -> the kbundle unit (and binary) name.
BINS = {
    "apiserverbin": "kube-apiserver",
    "controllermanagerbin": "kube-controller-manager",
    "schedulerbin": "kube-scheduler",
    "etcdbin": "etcd",
    "kubeletbin": "kubelet",
    "proxybin": "kube-proxy",
}
# Where kbundle keeps its PKI (kube-bench's /etc/kubernetes/pki/).
PKI_DIRS = ["/var/lib/kubernetes", "/etc/etcd"]
# kubeadm's admin.conf; kbundle's local admin kubeconfig on control-plane nodes.
ADMIN_KUBECONFIG = "/var/lib/kubernetes/admin.kubeconfig"
CNI_DIRS = ["/etc/cni/net.d", "/var/lib/cni/networks"]
STRONG_SUITES = (
    "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256,"
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,"
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,"
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,"
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
).split(",")


class Unsupported(Exception):
    """An audit this checker does not know how to answer: update it with the benchmark."""


class NotApplicable(Exception):
    """The node does not run what the check is about."""


# ---------------------------------------------------------------------------
# The node tree


class NodeRoot:
    def __init__(self, root, manifest):
        self.root = root.rstrip("/") or "/"
        self.name = os.path.basename(self.root)
        self.manifest = manifest  # path -> entry, or None
        self.problems = []
        self._flags = {}

    def host_path(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def exists(self, path):
        return (self.manifest is not None and path in self.manifest) or os.path.lexists(self.host_path(path))

    def read(self, path):
        try:
            with open(self.host_path(path), encoding="utf-8") as f:
                return f.read()
        except OSError:
            return None

    def mode(self, path):
        """`stat -c %a`: octal permission bits without leading zeros."""
        if self.manifest is not None and path in self.manifest:
            mode = int(self.manifest[path]["mode"], 8)
            if os.path.isfile(self.host_path(path)):
                on_disk = stat.S_IMODE(os.lstat(self.host_path(path)).st_mode)
                if on_disk != mode:
                    self.problems.append("%s: mode %o on disk, %o in the manifest" % (path, on_disk, mode))
            return "%o" % mode
        return "%o" % stat.S_IMODE(os.lstat(self.host_path(path)).st_mode)

    def owner(self, path):
        """`stat -c %U:%G`."""
        if self.manifest is not None and path in self.manifest:
            e = self.manifest[path]
            return "%s:%s" % (e["owner"], e["group"])
        import grp
        import pwd

        st = os.lstat(self.host_path(path))
        try:
            user = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            user = str(st.st_uid)
        try:
            group = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            group = str(st.st_gid)
        return "%s:%s" % (user, group)

    def find(self, directory):
        """`find DIR`: the directory itself and everything below it, sorted."""
        found = set()
        if self.manifest is not None:
            found.update(p for p in self.manifest if p == directory or p.startswith(directory + "/"))
        top = self.host_path(directory)
        if os.path.isdir(top):
            found.add(directory)
            for dirpath, dirnames, filenames in os.walk(top):
                for n in dirnames + filenames:
                    rel = os.path.relpath(os.path.join(dirpath, n), self.root)
                    found.add("/" + rel)
        return sorted(found)

    def has_unit(self, component):
        return os.path.isfile(self.host_path("%s/%s.service" % (UNIT_DIR, component)))

    def cmdline(self, component):
        """The unit's ExecStart command line, continuations joined (what `ps -ef` shows)."""
        text = self.read("%s/%s.service" % (UNIT_DIR, component))
        if text is None:
            raise NotApplicable()
        joined, active = "", False
        for line in text.splitlines():
            if not active and not line.startswith("ExecStart="):
                continue
            active = True
            more = line.endswith("\\")
            joined += (line[:-1] if more else line) + " "
            if not more:
                break
        return " ".join(shlex.split(joined[len("ExecStart="):]))

    def flags(self, component):
        if component not in self._flags:
            out = {}
            for word in self.cmdline(component).split()[1:]:
                if word.startswith("--"):
                    name, _, value = word.partition("=")
                    out[name] = value
            self._flags[component] = out
        return self._flags[component]

    def config(self, component):
        """Path of the component's config file (--config), or None."""
        return self.flags(component).get("--config")

    def config_data(self, component):
        path = self.config(component)
        text = self.read(path) if path else None
        return yaml.safe_load(text) if text else {}


def dig(data, *keys):
    for k in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(k)
    return data


# kube-bench's variables for files, resolved on one node: (component it belongs to, path).
def resolve_var(node, var):
    unit_of = {
        "apiserverconf": "kube-apiserver",
        "controllermanagerconf": "kube-controller-manager",
        "schedulerconf": "kube-scheduler",
        "etcdconf": "etcd",
        "kubeletsvc": "kubelet",
    }
    if var in unit_of:
        c = unit_of[var]
        if not node.has_unit(c):
            raise NotApplicable()
        return "%s/%s.service" % (UNIT_DIR, c)
    if var == "schedulerkubeconfig":
        return dig(node.config_data("kube-scheduler"), "clientConnection", "kubeconfig") or node.flags(
            "kube-scheduler"
        ).get("--kubeconfig")
    if var == "controllermanagerkubeconfig":
        return node.flags("kube-controller-manager").get("--kubeconfig")
    if var == "kubeletkubeconfig":
        return node.flags("kubelet").get("--kubeconfig")
    if var == "kubeletconf":
        return node.config("kubelet")
    if var == "kubeletcafile":
        return dig(node.config_data("kubelet"), "authentication", "x509", "clientCAFile")
    if var == "proxykubeconfig":
        return dig(node.config_data("kube-proxy"), "clientConnection", "kubeconfig") or node.flags(
            "kube-proxy"
        ).get("--kubeconfig")
    if var == "etcddatadir":
        return node.flags("etcd").get("--data-dir", "/var/lib/etcd")
    raise Unsupported("unknown variable $" + var)


def stat_lines(node, paths, fmt):
    """`stat -c FMT` over paths that exist; FMT is one of the formats the benchmark uses."""
    out = []
    for p in paths:
        if not p or not node.exists(p):
            continue
        if fmt == "permissions=%a":
            out.append("permissions=" + node.mode(p))
        elif fmt == "%U:%G":
            out.append(node.owner(p))
        elif fmt == "permissions=%a %n":
            out.append("permissions=%s %s" % (node.mode(p), p))
        elif fmt == "ownership=%U:%G %n":
            out.append("ownership=%s %s" % (node.owner(p), p))
        else:
            raise Unsupported("stat format " + fmt)
    return "\n".join(out)


def stat_format(audit):
    for fmt in ("permissions=%a %n", "ownership=%U:%G %n", "permissions=%a", "%U:%G"):
        if fmt in audit:
            return fmt
    raise Unsupported("no stat format in: " + audit)


def encryption_provider_lines(text):
    """grep -A1 'providers:' FILE | tail -n1 | grep -o "[A-Za-z]*" | sed 's/^/provider=/'"""
    lines = text.splitlines()
    picked = []
    for i, line in enumerate(lines):
        if "providers:" in line:
            picked.extend(j for j in (i, i + 1) if j < len(lines) and j not in picked)
    if not picked:
        return ""
    return "\n".join("provider=" + w for w in re.findall(r"[A-Za-z]+", lines[picked[-1]]))


def audit_output(node, audit):
    """What kube-bench's audit command would print on this node."""
    audit = audit or ""
    if "cni-conf-dir" in audit:
        files = [p for d in CNI_DIRS for p in node.find(d) if p != d]
        if not files:
            raise NotApplicable()
        return stat_lines(node, files, stat_format(audit))
    if "data-dir" in audit and "$etcdbin" in audit:
        if not node.has_unit("etcd"):
            raise NotApplicable()
        return stat_lines(node, [resolve_var(node, "etcddatadir")], stat_format(audit))
    if "adminconf" in audit:
        if not node.has_unit("kube-apiserver"):
            raise NotApplicable()
        return stat_lines(node, [ADMIN_KUBECONFIG], stat_format(audit))
    if "/etc/kubernetes/pki/" in audit:
        if not node.has_unit("kube-apiserver"):
            raise NotApplicable()
        paths = [p for d in PKI_DIRS for p in node.find(d)]
        m = re.search(r"-name '\*(\.\w+)'", audit)
        if m:
            paths = [p for p in paths if p.endswith(m.group(1))]
        return stat_lines(node, paths, stat_format(audit))
    if "encryption-provider-config" in audit:
        path = node.flags("kube-apiserver").get("--encryption-provider-config")
        text = node.read(path) if path else None
        return encryption_provider_lines(text) if text else ""
    if "CAFILE" in audit:
        if not node.has_unit("kubelet"):
            raise NotApplicable()
        path = node.flags("kubelet").get("--client-ca-file") or resolve_var(node, "kubeletcafile")
        return stat_lines(node, [path], stat_format(audit))
    m = re.search(r"stat -c (?:permissions=%a|%U:%G) \$(\w+)", audit)
    if m:
        return stat_lines(node, [resolve_var(node, m.group(1))], stat_format(audit))
    m = re.search(r"\bps\b.*\$(\w+bin)\b", audit)
    if m:
        if m.group(1) not in BINS:
            raise Unsupported("unknown binary $" + m.group(1))
        return node.cmdline(BINS[m.group(1)])
    raise Unsupported("audit not understood: " + audit.strip())


def audit_config_output(node, audit_config):
    if not audit_config:
        return ""
    if "$kubeletconf" in audit_config:
        path = node.config("kubelet")
    elif "$proxykubeconfig" in audit_config:
        # kube-bench cats the file named by $proxykubeconfig for kube-proxy's
        # settings (metricsBindAddress): that is kbundle's kube-proxy config file.
        path = node.config("kube-proxy")
    else:
        raise Unsupported("audit_config not understood: " + audit_config)
    return (node.read(path) or "") if path else ""


# ---------------------------------------------------------------------------
# kube-bench's test semantics (check/test.go)


def as_text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    return str(v)


def find_flag(s, flag):
    """flagTestItem.findValue: whether the flag occurs in the output, and its value."""
    if not s or not flag or flag not in s:
        return False, ""
    m = re.search("(" + re.escape(flag) + r")(=|: *)*([^\s]*) *", s)
    if not m:
        return False, ""
    if m.group(3):
        return True, m.group(3)
    return True, "true" if flag.startswith("--") else m.group(1)


def jsonpath(path, data):
    """The two jsonpath forms the benchmark uses: {.a.b.c} and {range .a[:]}{}{'SEP'}{end}."""
    m = re.fullmatch(r"\{\.([\w.]+)\}", path)
    if m:
        v = data
        for k in m.group(1).split("."):
            v = v.get(k) if isinstance(v, dict) else None
        if isinstance(v, (dict, list)):
            return json.dumps(v)
        return as_text(v)
    m = re.fullmatch(r"\{range \.([\w.]+)\[:\]\}\{\}\{'(.*)'\}\{end\}", path)
    if m:
        v = data
        for k in m.group(1).split("."):
            v = v.get(k) if isinstance(v, dict) else None
        return "".join(as_text(x) + m.group(2) for x in (v or []))
    raise Unsupported("jsonpath " + path)


def find_path(s, path):
    """pathTestItem.findValue: the value at a jsonpath of a YAML/JSON document."""
    try:
        data = yaml.safe_load(s)
    except yaml.YAMLError:
        return False, ""
    value = jsonpath(path, data if isinstance(data, dict) else {})
    return value != "", value


def split_list(s):
    parts = s.split(",")
    if parts and parts[-1] == "":
        parts = parts[:-1]
    return parts


def compare(op, flag_value, want):
    if op == "eq":
        v = flag_value.lower()
        return v == want if v in ("true", "false") else flag_value == want
    if op == "noteq":
        v = flag_value.lower()
        return v != want if v in ("true", "false") else flag_value != want
    if op in ("gt", "gte", "lt", "lte"):
        try:
            a, b = int(flag_value.strip()), int(want.strip())
        except ValueError:
            return False
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]
    if op == "has":
        return want in flag_value
    if op == "nothave":
        return want not in flag_value
    if op == "regex":
        return re.search(want, flag_value) is not None
    if op == "valid_elements":
        have, valid = split_list(flag_value), split_list(want)
        if not have or not valid:
            return not have and not valid
        return all(h in valid for h in have)
    if op == "bitmask":
        try:
            requested, allowed = int(flag_value, 8), int(want, 8)
        except ValueError:
            return False
        return allowed & requested == requested
    raise Unsupported("compare op " + op)


def evaluate_item(item, s, use_path):
    if use_path:
        found, value = find_path(s, item.get("path", "")) if item.get("path") else (False, "")
    else:
        found, value = find_flag(s, item.get("flag", ""))
    must_be_set = item.get("set", True)
    comp = item.get("compare") or {}
    if not must_be_set:
        return (not found), found
    if found and comp.get("op"):
        return compare(comp["op"], value, as_text(comp.get("value"))), found
    return found, found


def execute_item(item, s, multiple, use_path):
    s = s.rstrip(" \n")
    result, found = False, False
    for line in s.split("\n") if multiple else [s]:
        result, found = evaluate_item(item, line, use_path)
        if not result:
            break
    return result, found


def run_tests(tests, output, config_output, multiple):
    results = []
    for item in tests.get("test_items") or []:
        ok, found = execute_item(item, output, multiple, False)
        if not found and config_output:
            ok, found = execute_item(item, config_output, multiple, True)
        results.append(ok)
    if tests.get("bin_op", "and") == "or":
        return any(results)
    if tests.get("bin_op", "and") in ("and", ""):
        return all(results)
    raise Unsupported("bin_op " + tests["bin_op"])


# ---------------------------------------------------------------------------
# What the benchmark's own audit cannot see: kbundle's stronger reading of a few checks.


def also_etcd_ca(node):
    f = node.flags("etcd")
    etcd_ca, peer_ca = f.get("--trusted-ca-file"), f.get("--peer-trusted-ca-file")
    if etcd_ca != peer_ca:
        return "etcd trusts %s for clients but %s for peers" % (etcd_ca, peer_ca)
    if node.has_unit("kube-apiserver"):
        k8s_ca = node.flags("kube-apiserver").get("--client-ca-file")
        a, b = node.read(etcd_ca), node.read(k8s_ca)
        if a is None or b is None:
            return "cannot read %s or %s" % (etcd_ca, k8s_ca)
        if a == b:
            return "etcd's CA %s is the Kubernetes CA %s" % (etcd_ca, k8s_ca)
    return None


def also_audit_policy(node):
    path = node.flags("kube-apiserver").get("--audit-policy-file")
    text = node.read(path) if path else None
    p = yaml.safe_load(text) if text else None
    if not isinstance(p, dict) or p.get("apiVersion") != "audit.k8s.io/v1" or p.get("kind") != "Policy":
        return "%s is not an audit.k8s.io/v1 Policy" % path
    if not p.get("rules"):
        return "%s has no rules" % path
    return None


def also_event_rate_limit(node):
    path = node.flags("kube-apiserver").get("--admission-control-config-file")
    text = node.read(path) if path else None
    c = yaml.safe_load(text) if text else None
    for plugin in (c or {}).get("plugins") or []:
        if plugin.get("name") == "EventRateLimit" and dig(plugin, "configuration", "limits"):
            return None
    return "no EventRateLimit limits in --admission-control-config-file (%s)" % path


def also_tls_everywhere(node):
    """Strong suites and TLS >= 1.2 on every server, not only kube-apiserver."""
    problems = []
    for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        if node.has_unit(c):
            f = node.flags(c)
            if f.get("--tls-min-version") not in ("VersionTLS12", "VersionTLS13"):
                problems.append(c + ": --tls-min-version is not VersionTLS12 or later")
            if not compare("valid_elements", f.get("--tls-cipher-suites", ""), ",".join(STRONG_SUITES)):
                problems.append(c + ": --tls-cipher-suites has weak or no suites")
    if node.has_unit("etcd"):
        # etcd 3.4 has no --tls-min-version; its listeners never accept less than TLS 1.2.
        if not compare("valid_elements", node.flags("etcd").get("--cipher-suites", ""), ",".join(STRONG_SUITES)):
            problems.append("etcd: --cipher-suites has weak or no suites")
    if node.has_unit("kubelet"):
        if node.config_data("kubelet").get("tlsMinVersion") not in ("VersionTLS12", "VersionTLS13"):
            problems.append("kubelet: tlsMinVersion is not VersionTLS12 or later")
    return "; ".join(problems) or None


HEALTH_PATHS = ["/livez", "/readyz", "/healthz"]


def also_anonymous_health_only(node):
    """1.2.1: anonymous requests only on the health endpoints, through --authentication-config."""
    f = node.flags("kube-apiserver")
    if "--anonymous-auth" in f:
        return "--anonymous-auth is set beside --authentication-config (kube-apiserver refuses both)"
    path = f.get("--authentication-config")
    text = node.read(path) if path else None
    c = yaml.safe_load(text) if text else None
    if not isinstance(c, dict) or c.get("kind") != "AuthenticationConfiguration" or c.get(
            "apiVersion") != "apiserver.config.k8s.io/v1beta1":
        return "%s is not an apiserver.config.k8s.io/v1beta1 AuthenticationConfiguration" % path
    anonymous = c.get("anonymous") or {}
    paths = [x.get("path") for x in anonymous.get("conditions") or [] if isinstance(x, dict)]
    if anonymous.get("enabled") is not True or sorted(paths) != sorted(HEALTH_PATHS) or any(
            set(x) != {"path"} for x in anonymous.get("conditions") or []):
        return "%s admits anonymous requests on %s, not exactly %s" % (path, paths, HEALTH_PATHS)
    return None


ALSO = {
    "1.2.1": also_anonymous_health_only,
    "2.7": also_etcd_ca,
    "3.2.1": also_audit_policy,
    "1.2.9": also_event_rate_limit,
    "1.2.29": also_tls_everywhere,
    "4.2.12": also_tls_everywhere,
}


# ---------------------------------------------------------------------------
# Driver


def load_checks(bench_dir):
    checks = []
    for name in ("master", "etcd", "controlplane", "node"):
        with open(os.path.join(bench_dir, name + ".yaml"), encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for group in doc["groups"]:
            for c in group["checks"]:
                c["id"] = str(c["id"])
                checks.append(c)
    return checks


def load_listed(path, key):
    with open(path, encoding="utf-8") as f:
        entries = (yaml.safe_load(f) or {}).get(key) or []
    out = {}
    for e in entries:
        if not str(e.get("reason", "")).strip():
            raise SystemExit("%s: %s %s has no reason" % (path, key, e.get("id")))
        out[str(e["id"])] = e
    return out


def check_on_node(check, node, equivalents):
    """PASS, FAIL or N/A for one node, and a note."""
    try:
        output = audit_output(node, check.get("audit"))
        config_output = audit_config_output(node, check.get("audit_config"))
    except NotApplicable:
        return "N/A", ""
    ok = run_tests(check.get("tests") or {}, output, config_output, bool(check.get("use_multiple_values")))
    note = ""
    if not ok and check["id"] in equivalents:
        eq = equivalents[check["id"]]
        # `file_flag`: the file is named by that flag (kube-apiserver has no --config).
        path = node.flags(eq["config"]).get(eq["file_flag"]) if "file_flag" in eq else node.config(eq["config"])
        cfg = node.read(path or "") or ""
        ok = run_tests(eq["tests"], "", cfg, False)
        note = "met in %s's config file, see %s" % (eq["config"], os.path.basename(EQUIVALENTS_NAME)) if ok else ""
    if ok and check["id"] in ALSO:
        problem = ALSO[check["id"]](node)
        if problem:
            return "FAIL", problem
    if not ok:
        shown = (output or config_output or "(nothing)").strip().replace("\n", " | ")
        return "FAIL", "audit gave: " + (shown[:160] + "..." if len(shown) > 160 else shown)
    return "PASS", note


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("roots", nargs="+", metavar="ROOT", help="a node's root (O/<node> of --format dir, or /)")
    ap.add_argument("--bench", default=os.path.join(HERE, "cis-1.12"), help="kube-bench definitions folder")
    ap.add_argument("--manifest-dir", help="take modes and owners from DIR/<node>.json (kbundle inspect --json)")
    ap.add_argument("--exceptions", default=os.path.join(HERE, "exceptions.yaml"))
    ap.add_argument("--equivalents", default=os.path.join(HERE, "equivalents.yaml"))
    ap.add_argument("--quiet", action="store_true", help="print only failures and the totals")
    args = ap.parse_args(argv)

    checks = load_checks(args.bench)
    exceptions = load_listed(args.exceptions, "exceptions")
    equivalents = load_listed(args.equivalents, "equivalents")
    nodes = []
    for root in args.roots:
        if not os.path.isdir(root):
            print("cis_check: %s is not a directory" % root, file=sys.stderr)
            return 2
        manifest = None
        if args.manifest_dir:
            name = os.path.basename(root.rstrip("/"))
            with open(os.path.join(args.manifest_dir, name + ".json"), encoding="utf-8") as f:
                manifest = {e["path"]: e for e in json.load(f)["entries"]}
        nodes.append(NodeRoot(root, manifest))

    counts = {True: [0, 0], False: [0, 0]}  # scored -> [passed, evaluated]
    unexpected, stale, not_automated = [], [], []
    for check in checks:
        cid, scored = check["id"], bool(check.get("scored"))
        title = re.sub(r"\s+", " ", check["text"])
        if check.get("type") in ("manual", "skip"):
            not_automated.append(cid)
            if not args.quiet:
                print("%-7s %-9s %s" % (cid, "REVIEW", title))
            continue
        per_node = {}
        try:
            for node in nodes:
                per_node[node.name] = check_on_node(check, node, equivalents)
        except Unsupported as e:
            print("cis_check: %s: %s" % (cid, e), file=sys.stderr)
            return 2
        applicable = {n: r for n, r in per_node.items() if r[0] != "N/A"}
        if not applicable:
            if not args.quiet:
                print("%-7s %-9s %s" % (cid, "N/A", title))
            continue
        failed = {n: r for n, r in applicable.items() if r[0] == "FAIL"}
        counts[scored][1] += 1
        if not failed:
            counts[scored][0] += 1
            notes = sorted({r[1] for r in applicable.values() if r[1]})
            if cid in exceptions:
                stale.append(cid)
            if not args.quiet:
                print("%-7s %-9s %s%s" % (cid, "PASS", title, (" [" + "; ".join(notes) + "]") if notes else ""))
            continue
        where = ", ".join("%s: %s" % (n, r[1]) for n, r in sorted(failed.items()))
        if cid in exceptions:
            if not args.quiet:
                print("%-7s %-9s %s [allowed: %s]" % (cid, "EXCEPTION", title, exceptions[cid]["reason"].strip()))
        else:
            unexpected.append(cid)
            print("%-7s %-9s %s [%s]" % (cid, "FAIL", title, where))

    problems = sorted({p for n in nodes for p in n.problems})
    for p in problems:
        print("cis_check: " + p, file=sys.stderr)
    print(
        "scored: %d/%d, manual: %d/%d (not automatable, reviewed in docs/cis.md: %d)"
        % (counts[True][0], counts[True][1], counts[False][0], counts[False][1], len(not_automated))
    )
    for cid in stale:
        print("cis_check: note: %s is listed in %s but passes" % (cid, os.path.basename(args.exceptions)))
    if unexpected:
        print("cis_check: FAILED: %s (not allowed in %s)" % (", ".join(unexpected), args.exceptions))
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
