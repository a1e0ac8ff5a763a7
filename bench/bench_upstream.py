#!/usr/bin/env python3
"""Benchmark: a no-op `hit build` of a user's profile that extends a site's 100-package stack
(all of it found in the upstream site store, one package the user's own), next to the no-op
of the same stack built directly in the site store. Target: the user's within 1.2x.

Usage: python bench/bench_upstream.py [--packages 100] [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_profile import hit_exe, make_stack, timed  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hd-bench-up-"))
    try:
        site = tmp / "site"
        site.mkdir()
        site_profile = make_stack(site, args.packages)
        hit = hit_exe()
        site_env = {**os.environ, "HIT_HOME": str(site / "home")}
        site_env.pop("HIT_SITE_CONFIG", None)
        subprocess.run([*hit, "build", "-j", "2", "-q", str(site_profile)], env=site_env,
                       check=True, capture_output=True)  # fmt: skip
        user = tmp / "user"
        (user / "mine").mkdir(parents=True)
        (user / "mine" / "extra.yaml").write_text(
            'version: "1"\nbuild: |\n  mkdir -p "$ARTIFACT/share" && echo x > "$ARTIFACT/share/x"\n'
        )
        (user / "default.yaml").write_text(
            f"extends: [{site_profile}]\npackage_dirs: [mine]\npackages: {{extra: }}\n"
        )
        (user / "home").mkdir()
        (user / "home" / "config.yaml").write_text(f"upstreams: [{site / 'home'}]\n")
        user_env = {**site_env, "HIT_HOME": str(user / "home")}
        r = subprocess.run([*hit, "build", "-q"], cwd=user, env=user_env, check=True,
                           capture_output=True, text=True)  # fmt: skip
        assert r.stderr.count("built in") == 1, r.stderr  # only the user's package
        site_t, user_t = [], []
        for _ in range(args.repeat):
            site_t.append(timed([*hit, "build", "-q", str(site_profile)], site, site_env))
            user_t.append(timed([*hit, "build", "-q"], user, user_env))
        s, u = statistics.median(site_t), statistics.median(user_t)
        print(f"no-op `hit build`, {args.packages}-package stack, medians of {args.repeat}:")
        print("| who | median | ratio | target |\n|---|---|---|---|")
        print(f"| the site's own profile, in the site store | {s * 1000:.0f} ms | 1.00x | |")
        print(f"| a user's profile extending it (+1 own package, upstream site store) "
              f"| {u * 1000:.0f} ms | {u / s:.2f}x | <= 1.2x |")  # fmt: skip
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
