#!/usr/bin/env python3
"""Benchmark: the user guide's walk-through on a Python profile (README "Python stacks").

A profile of py-jinja2 and py-pygments (with py-markupsafe, py-setuptools and py-wheel they
bring) over the host's python3 as an external, built once from the release files in
HDMOD_PYPI (~/.cache/hdmodules/pypi; tests/tools/fetch-python-sources.sh fetches them),
served by a package index on 127.0.0.1. Then, each time next to `python -c pass` on the
same interpreter in the same run: removing py-jinja2 from the YAML and rebuilding (a profile
assembled anew: every time, the one without py-jinja2 is removed from the store first), and
putting it back (the earlier profile exists: the link switches). Usage:
python bench/bench_python_profile.py [--repeat 9]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import pypi_index  # noqa: E402

HOST_PYTHON = "/usr/bin/python3.11"
RECIPES = {  # recipe -> (distribution, dependencies)
    "py-setuptools": ("setuptools", ["python"]),
    "py-wheel": ("wheel", ["python"]),
    "py-markupsafe": ("markupsafe", ["python", "py-setuptools", "py-wheel"]),
    "py-jinja2": ("jinja2", ["python", "py-markupsafe"]),
    "py-pygments": ("pygments", ["python"]),
}
TARGET_S = 1.0  # "about a second" (issue 17)


def hit_exe() -> list[str]:
    exe = Path(sys.executable).parent / "hit"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hdmodules.cli.hit"]


def write_profile(profile: Path, packages: list[str]) -> None:
    pin = profile.read_text().split("toolchain:")[0] if profile.exists() else (
        "package_dirs: [pkgs]\n"
        f"externals:\n  host-python:\n    kind: python\n    commands: {{python: {HOST_PYTHON}}}\n"
    )  # fmt: skip
    profile.write_text(f"{pin}toolchain: {{python: host-python}}\npackages: {packages}\n")


def timed(cmd: list[str], cwd: Path, env: dict, expect: str = "") -> float:
    """Seconds `cmd` took; it must succeed and say `expect`."""
    start = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    took = time.perf_counter() - start
    assert expect in r.stderr, f"{' '.join(cmd)}: no {expect!r} in:\n{r.stderr}"
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    dists = [pypi_index.DISTS[d] for d, _deps in RECIPES.values()]
    missing = [d.file for d in dists if not (pypi_index.PYPI / d.file).is_file()]
    if missing or not os.path.exists(HOST_PYTHON):
        print(f"needs {HOST_PYTHON} and, in {pypi_index.PYPI}: {', '.join(missing)}")
        return 1
    root = Path(tempfile.mkdtemp(prefix="hit-bench-py-"))
    hit = hit_exe()
    try:
        for recipe, (dist, deps) in RECIPES.items():
            d = pypi_index.DISTS[dist]
            text = pypi_index.recipe(recipe, d.requirement.split("==")[1], d, deps)
            (root / "pkgs").mkdir(exist_ok=True)
            (root / "pkgs" / f"{recipe}.yaml").write_text(text)
        profile = root / "default.yaml"
        full, less = ["py-jinja2", "py-pygments"], ["py-pygments"]
        write_profile(profile, full)
        with pypi_index.serve(dists) as index:
            env = {**os.environ, "HIT_HOME": str(root / "home"), "PIP_INDEX_URL": index}
            first = timed([*hit, "build", "--repin", "-j", "2"], root, env)
        py, removed, readded = [], [], []
        link = root / "default"
        for _ in range(args.repeat):
            py.append(timed([sys.executable, "-c", "pass"], root, env))
            write_profile(profile, less)
            removed.append(timed([*hit, "build"], root, env, "assembled in"))
            smaller = f"profile/{Path(os.path.realpath(link)).name}"
            write_profile(profile, full)
            readded.append(timed([*hit, "build"], root, env, "exists already; link switched"))
            timed([*hit, "purge", smaller], root, env)  # so that the next removal assembles
        p = statistics.median(py)
        rows = [
            ("python -c pass", p, ""),
            ("remove py-jinja2, hit build (a profile assembled)", statistics.median(removed), ""),
            ("put it back, hit build (the link switches)", statistics.median(readded), ""),
        ]
        print(f"first build (5 packages, -j 2): {first:.1f} s; medians of {args.repeat}:")
        print("| what | median | vs python -c pass | target |")
        print("|---|---|---|---|")
        for what, t, _ in rows:
            target = f"<= {TARGET_S:.0f} s" if what != "python -c pass" else ""
            print(f"| {what} | {t * 1000:.0f} ms | {t / p:.1f}x | {target} |")
        ok = statistics.median(removed) <= TARGET_S and statistics.median(readded) <= TARGET_S
        print("all targets met" if ok else "some targets missed")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
