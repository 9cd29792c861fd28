#!/usr/bin/env python3
"""Layering check (docs/ARCHITECTURE.md, "Layering"): every folder includes and links only the
folders below it. Fails on a forbidden #include, a forbidden CMake link, a folder of code that
no rule covers, or anything that includes or links cli/.

    layering.py SOURCE_DIR [BUILD_DIR]

The link graph comes from `cmake --graphviz` on a throw-away configure of SOURCE_DIR. Before
checking the tree, the checker proves on made-up input that it catches each kind of violation.
"""
import os
import re
import subprocess
import sys
import tempfile

# folder -> the folders it may use. Only downward: a folder never appears in the rules of those
# it uses. Keep this table and the one in docs/ARCHITECTURE.md the same.
RULES = {
    "base": set(),
    "command_line": {"base"},
    "bundles": {"base"},
    "topology": {"base"},
    "templates": {"base"},
    "curl": {"base"},
    "https": {"base"},
    "binaries": {"base", "curl"},
    "aws": {"base", "curl"},
    "generator": {"base", "bundles", "topology", "templates", "binaries"},
    "publish": {"base", "bundles", "topology", "aws", "curl"},
    "installer": {"base", "bundles", "https", "command_line"},
    "cli": {"base", "command_line", "bundles", "topology", "templates", "binaries", "curl", "aws", "generator", "publish"},
}
# Test, benchmark and fuzz code may use any library folder, but never cli/.
ANY_LIBRARY = {"tests", "bench", "fuzz"}
NOT_CODE = {"docs", "examples", "scripts", "cmake", ".ci", ".git"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^/"]+)/[^"]+"', re.M)


def allowed(folder, used):
    if used == folder:
        return True
    if folder in ANY_LIBRARY:
        return used != "cli"
    return used in RULES.get(folder, set())


def include_violations(files):
    """files: {relative path: text}. Returns a list of messages."""
    out = []
    for path, text in sorted(files.items()):
        folder = path.split("/", 1)[0]
        if folder not in RULES and folder not in ANY_LIBRARY:
            out.append(f"{path}: folder '{folder}' has no layering rule (add it to tests/layering.py "
                       "and docs/ARCHITECTURE.md)")
            continue
        for m in INCLUDE.finditer(text):
            used = m.group(1)
            if used not in RULES:
                continue  # a path relative to the file, or a generated header
            if not allowed(folder, used):
                line = text.count("\n", 0, m.start()) + 1
                out.append(f"{path}:{line}: {folder}/ may not include {used}/ "
                           f"(allowed: {', '.join(sorted(RULES.get(folder, set()))) or 'nothing'})")
    return out


def target_folder(target):
    """The folder a CMake target of ours belongs to, or None for targets the rules do not cover."""
    if target == "kbundle":
        return "cli"
    if target == "kbundle-installer":
        return "installer"
    m = re.fullmatch(r"kb_([a-z0-9]+?)(?:_catalog|_tests)?", target)
    if m and m.group(1) in RULES:
        return m.group(1)
    return None


def link_violations(edges):
    """edges: [(from target, to target)]. Returns a list of messages."""
    out = []
    for a, b in edges:
        fa, fb = target_folder(a), target_folder(b)
        if fa is None or fb is None:
            continue
        if b in ("kb_cli", "kbundle") and a != "kbundle":
            out.append(f"{a} links {b}: nothing links cli/")
        elif not allowed(fa, fb):
            out.append(f"{a} links {b}: {fa}/ may not link {fb}/")
    return out


def self_test():
    bad_files = {
        "installer/x.cpp": '#include "generator/gen.h"\n',
        "bundles/y.h": '#pragma once\n#include "topology/topology.h"\n',
        "generator/z.cpp": '#include "cli/commands.h"\n',
        "tests/t.cpp": '#include "cli/cli.h"\n',
        "newthing/a.cpp": '#include "base/error.h"\n',
    }
    good_files = {"generator/ok.cpp": '#include "base/error.h"\n#include "bundles/manifest.h"\n#include "local.h"\n'}
    got = include_violations(bad_files)
    assert len(got) == 5, got
    assert include_violations(good_files) == [], include_violations(good_files)
    bad_edges = [("kb_bundles", "kb_topology"), ("kb_publish", "kb_generator"), ("kb_installer", "kb_curl"),
                 ("kb_generator_tests", "kb_cli")]
    got = link_violations(bad_edges)
    assert len(got) == 4, got
    assert link_violations([("kb_generator", "kb_bundles"), ("kbundle", "kb_cli"), ("kb_binaries", "kb_binaries_catalog"),
                            ("kb_installer_tests", "kb_installer")]) == []


def read_tree(src):
    files = {}
    for root, dirs, names in os.walk(src):
        rel_root = os.path.relpath(root, src)
        top = rel_root.split(os.sep, 1)[0]
        if top in NOT_CODE or top.startswith("build") or top == "demo":
            dirs[:] = []
            continue
        for n in names:
            if n.endswith((".cpp", ".h")) and rel_root != ".":
                p = os.path.join(root, n)
                with open(p, encoding="utf-8", errors="replace") as f:
                    files[os.path.relpath(p, src)] = f.read()
    return files


def cmake_edges(src):
    with tempfile.TemporaryDirectory(prefix="kb-layering-") as tmp:
        dot = os.path.join(tmp, "graph.dot")
        r = subprocess.run(["cmake", "-S", src, "-B", os.path.join(tmp, "b"), "-G", "Ninja",
                            f"--graphviz={dot}"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"layering: cmake configure failed:\n{r.stdout}\n{r.stderr}")
        edges = []
        with open(dot) as f:
            for line in f:
                m = re.search(r'//\s*(\S+)\s*->\s*(\S+)', line)
                if m:
                    edges.append((m.group(1), m.group(2)))
        if not edges:
            sys.exit("layering: cmake --graphviz gave no edges; cannot check links")
        return edges


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    src = os.path.abspath(sys.argv[1])
    self_test()
    files = read_tree(src)
    problems = include_violations(files)
    edges = cmake_edges(src)
    problems += link_violations(edges)
    ours = [e for e in edges if target_folder(e[0]) and target_folder(e[1])]
    for p in problems:
        print("layering: " + p)
    print(f"layering: {len(files)} files, {len(ours)} links between our targets checked; "
          f"{len(problems)} violations")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
