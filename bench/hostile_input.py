"""What hostile input costs the rules: glob matching and loading a rule file.

    python bench/hostile_input.py            # everything
    python bench/hostile_input.py globs      # or one of: globs, common, bomb, load

``globs`` times one failing match of each hostile text of issue 8; ``common`` the
per-flow cost (best of 7 timeit runs) of one rule's match for everyday globs;
``bomb`` loads a 12 KB file of aliases that expands to 10^8 values, in a child process
so that its peak memory shows; ``load`` a generated file of 10,000 rules.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests")]

from mitmcors import cors  # noqa: E402
from mitmcors.globs import compile_globs  # noqa: E402
from mitmcors.rules import Target, load_files, parse_rules  # noqa: E402

HOSTILE = [
    ("path /static/*/*/*.js, /static/ + 4,000 slashes", ["/static/*/*/*.js"], False, "/static/" + "/" * 4000),
    ("origin https://*.*.example.com, 32 KB Origin", ["https://*.*.example.com"], True, "https://" + "." * 32000),
    ("host *a*a*a*a*a*a*a*a*a*a*b, 40 characters", ["*a*a*a*a*a*a*a*a*a*a*b"], True, "a" * 40),
    ("100 suffix globs *.aN.example.com, 32 KB of dots", [f"*.a{i}.example.com" for i in range(100)], True, "." * 32000),
]
COMMON = [
    ("literal host, hit", "host: api.example.com", "api.example.com", "/x"),
    ("literal host, miss", "host: api.example.com", "www.example.org", "/x"),
    ("prefix path /api/*, hit", "path: '/api/*'", "h", "/api/v1/users/42"),
    ("prefix path /api/*, miss", "path: '/api/*'", "h", "/static/app.js"),
    ("suffix host *.example.com, hit", "host: '*.example.com'", "api.example.com", "/x"),
    ("suffix host *.example.com, miss", "host: '*.example.com'", "api.example.org", "/x"),
    ("two stars /api/*/users/*, hit", "path: '/api/*/users/*'", "h", "/api/v1/users/42"),
    ("two stars /api/*/users/*, miss", "path: '/api/*/users/*'", "h", "/api/v1/items/42"),
]


def globs() -> None:
    for name, patterns, ignore_case, text in HOSTILE:
        pattern = compile_globs(patterns, ignore_case)
        started = time.perf_counter()
        pattern.fullmatch(text)
        print(f"{name}: {(time.perf_counter() - started) * 1000:,.2f} ms", flush=True)


def common() -> None:
    request = cors.CorsRequest("http://localhost:3000", "GET", False)
    for name, match, host, path in COMMON:
        (rule,) = parse_rules(f"rules:\n  - name: x\n    match: {{{match}}}\n    strip: all\n")
        target = Target(host, path, request, None)
        runs = timeit.repeat(lambda: rule.match.matches(target), number=200_000, repeat=7)
        print(f"{name}: {min(runs) / 200_000 * 1e9:.0f} ns")


def alias_bomb(headers: int = 600, values: int = 600, copies: int = 300) -> str:
    listed = ", ".join("v" * values)
    lines = ["rules:", "  - &R", "    name: bomb", "    set:", f"      H0: &V [{listed}]"]
    lines += [f"      H{i}: *V" for i in range(1, headers)]
    return "\n".join(lines + ["  - *R"] * copies) + "\n"


def bomb() -> None:
    text = alias_bomb()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bomb.yaml"
        path.write_text(text)
        load = f"from mitmcors.rules import load_files, RuleError\ntry: load_files([{str(path)!r}])\nexcept RuleError as e: print(e)"
        took = _timed(lambda: subprocess.run([sys.executable, "-c", load], cwd=REPO, check=True))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"alias bomb of {len(text):,} bytes: {took:.2f} s, peak {peak:.0f} MB")


def load() -> None:
    from workload import rule_files

    with tempfile.TemporaryDirectory() as folder:
        (path,) = map(str, rule_files(10_000, Path(folder)))
        took = min(_timed(lambda: load_files([path])) for _ in range(3))
    print(f"10,000 rules: {took:.2f} s")


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


PARTS = {"globs": globs, "common": common, "bomb": bomb, "load": load}

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"one of {', '.join(PARTS)} (default: all)")
    chosen = parser.parse_args().parts or list(PARTS)
    unknown = [part for part in chosen if part not in PARTS]
    if unknown:
        parser.error(f"unknown part {unknown[0]!r}: choose from {', '.join(PARTS)}")
    for part in chosen:
        PARTS[part]()
