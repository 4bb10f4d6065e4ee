#!/usr/bin/env python3
"""Parse Swift sources with tree-sitter-swift and fail on any syntax error.

There is no Swift toolchain on Linux CI, so this is the check that the uniffi-generated Swift
and the hand-written Swift layer in ios/ are at least well-formed Swift. Every ERROR or
MISSING node in a file's syntax tree fails that file, except the baseline: constructs that are
valid Swift (uniffi's own tests compile them with swiftc) but that tree-sitter-swift's grammar
does not know. Each baseline entry is matched precisely, on the error node's own text and its
source line, so it cannot hide any other error:

  documentation-attr  uniffi marks internal helpers `@_documentation(visibility: private)`
                      (an underscored attribute, inside `#if swift(>=5.8)`); tree-sitter-swift
                      turns exactly that attribute into an ERROR node.
  void-closure        uniffi's foreign-trait (callback) vtable writes `let writeReturn = { () }`
                      for methods returning nothing: a closure whose body is the empty tuple;
                      tree-sitter-swift turns the `()` into an ERROR node inside the closure.

Usage: check_swift.py [PATH ...]       (files or directories; default: the repo's ios/)
       check_swift.py --self-test       (proves the checker flags errors and allows only the baseline)
Prints one line per file and a closing line `swift-parse: N passed, M failed`.
Exit status 0 only when every file passed and at least one file was checked.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

try:
    import tree_sitter_swift
    from tree_sitter import Language, Parser
except ImportError as e:  # pragma: no cover - reported to the user
    sys.exit(f"check_swift: {e}; install with: python3 -m pip install tree-sitter tree-sitter-swift")

REPO = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".build", "build", "DerivedData", ".swiftpm", "xcuserdata"}

# Baseline: (name, pattern the ERROR node's text must match in full, pattern its line must match in full).
DOC_ATTR = re.compile(rb"@_documentation\(\s*visibility\s*:\s*\w+\s*\)")
BASELINE = [
    ("documentation-attr", DOC_ATTR, re.compile(rb"\s*@_documentation\(\s*visibility\s*:\s*\w+\s*\)\s*")),
    ("void-closure", re.compile(rb"\(\s*\)"), re.compile(rb"\s*let writeReturn = \{ \(\) \}\s*")),
]


@dataclass
class Problem:
    line: int  # 1-based
    col: int  # 1-based
    kind: str  # "ERROR" or "MISSING <type>"
    text: str


@dataclass
class Result:
    path: str
    problems: list[Problem]
    allowed: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.problems


def make_parser() -> Parser:
    return Parser(Language(tree_sitter_swift.language()))


def _error_nodes(root):
    """Outermost ERROR nodes and all MISSING nodes, pruning subtrees without errors."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            yield node
            continue
        if node.has_error:
            stack.extend(reversed(node.children))


def _baseline_name(node, src: bytes, lines: list[bytes]) -> str | None:
    if not node.is_error or node.start_point[0] != node.end_point[0]:
        return None  # MISSING nodes and multi-line errors are never baseline
    text = src[node.start_byte : node.end_byte]
    line = lines[node.start_point[0]]
    for name, text_re, line_re in BASELINE:
        if text_re.fullmatch(text.strip()) and line_re.fullmatch(line):
            if name == "void-closure" and (node.parent is None or node.parent.type != "lambda_literal"):
                continue
            return name
    return None


def check_source(parser: Parser, src: bytes, path: str) -> Result:
    tree = parser.parse(src)
    lines = src.split(b"\n")
    problems: list[Problem] = []
    allowed: dict[str, int] = {}
    for node in _error_nodes(tree.root_node):
        name = _baseline_name(node, src, lines)
        if name:
            allowed[name] = allowed.get(name, 0) + 1
            continue
        row, col = node.start_point
        if node.is_missing:
            kind, text = f"MISSING {node.type}", lines[row].decode("utf-8", "replace").strip()
        else:
            kind = "ERROR"
            text = src[node.start_byte : node.end_byte].decode("utf-8", "replace")
            text = text if len(text) <= 160 else text[:157] + "..."
        problems.append(Problem(row + 1, col + 1, kind, " ".join(text.split())))
    return Result(path, problems, allowed)


def swift_files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            for f in sorted(p.rglob("*.swift")):
                if not SKIP_DIRS.intersection(f.relative_to(p).parts[:-1]):
                    found.append(f)
        else:
            raise SystemExit(f"check_swift: no such file or directory: {p}")
    return found


def report(results: list[Result]) -> int:
    for r in results:
        base = ", ".join(f"{k} x{v}" for k, v in sorted(r.allowed.items()))
        base = f" (baseline allowed: {base})" if base else ""
        if r.ok:
            print(f"ok    {r.path}{base}")
        else:
            print(f"FAIL  {r.path}: {len(r.problems)} syntax error(s){base}")
            for p in r.problems[:25]:
                print(f"      {r.path}:{p.line}:{p.col}: {p.kind}: {p.text}")
            if len(r.problems) > 25:
                print(f"      ... and {len(r.problems) - 25} more")
    passed = sum(r.ok for r in results)
    failed = len(results) - passed
    print(f"swift-parse: {passed} passed, {failed} failed")
    return 0 if failed == 0 and results else 1


SELF_TEST_CASES = [
    # (name, source, must pass, baseline names that must be counted)
    ("clean", b"import Foundation\npublic func f(_ x: Int) -> Int { return x + 1 }\n", True, {}),
    (
        "documentation-attr",
        b"public struct S {\n#if swift(>=5.8)\n    @_documentation(visibility: private)\n#endif\n"
        b"    public init() {}\n}\n",
        True,
        {"documentation-attr": 1},
    ),
    (
        "void-closure",
        b"func g() {\n    let writeReturn = { () }\n    writeReturn()\n}\n",
        True,
        {"void-closure": 1},
    ),
    ("unbalanced brace", b"public func f() {\n    let x = 1\n", False, {}),
    ("garbage", b"public func f() -> Int { return 1 }\nlet = = 3 )\n", False, {}),
    (
        "attribute text is not a free pass",
        b"func h() {\n    @_documentation(visibility: private) let = = 3\n}\n",
        False,
        {},
    ),
    ("empty tuple elsewhere is not a free pass", b"let y = { () ) }\n", False, {}),
]


def self_test() -> int:
    parser = make_parser()
    bad = 0
    for name, src, must_pass, must_allow in SELF_TEST_CASES:
        r = check_source(parser, src, name)
        good = r.ok == must_pass and all(r.allowed.get(k) == v for k, v in must_allow.items())
        bad += not good
        verdict = "pass" if r.ok else f"fail ({len(r.problems)} error(s))"
        print(f"{'ok  ' if good else 'BAD '}  self-test {name!r}: {verdict}, allowed {r.allowed}")
    print(f"swift-parse-self-test: {len(SELF_TEST_CASES) - bad} passed, {bad} failed")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("paths", nargs="*", type=Path, help="Swift files or directories (default: ios/)")
    ap.add_argument("--self-test", action="store_true", help="check the checker on known snippets")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    files = swift_files(args.paths or [REPO / "ios"])
    if not files:
        print("check_swift: no .swift files found", file=sys.stderr)
        print("swift-parse: 0 passed, 0 failed")
        return 1
    parser = make_parser()
    results = []
    for f in files:
        try:
            shown = str(f.resolve().relative_to(REPO))
        except ValueError:
            shown = str(f)
        results.append(check_source(parser, f.read_bytes(), shown))
    return report(results)


if __name__ == "__main__":
    sys.exit(main())
