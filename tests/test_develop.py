"""Developer workflows: git sources, profile history, rollback, diff, explain, hit develop."""

import subprocess
import time
from pathlib import Path

from tests.conftest import run_clean, write_profile, write_recipe

GIT = ["git", "-c", "user.email=dev@example.org", "-c", "user.name=Dev"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()  # fmt: skip


def make_repo(path: Path, answer: int) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "core.h").write_text("const char *core_name(void);\nint core_answer(void);\n")
    (path / "core.c").write_text(
        '#include "core.h"\nconst char *core_name(void) { return "libcore git"; }\n'
        f"int core_answer(void) {{ return {answer}; }}\n"
    )
    git(path, "add", ".")
    git(path, "commit", "-qm", "first")
    return path


def set_answer(repo: Path, answer: int, commit: bool = True) -> str:
    text = (repo / "core.c").read_text()
    import re

    (repo / "core.c").write_text(re.sub(r"return \d+;", f"return {answer};", text))
    if commit:
        git(repo, "commit", "-qam", f"answer {answer}")
    return git(repo, "rev-parse", "HEAD")


def built(r) -> list[str]:
    return [line.split()[1].split("/")[0] for line in r.err.splitlines() if "built in" in line]


def answer(demo: Path, link: str = "dev") -> str:
    return run_clean([str(demo / link / "bin" / "app")]).stdout.splitlines()[1]


def test_branch_of_a_checkout_commits_hash_and_switching_back_is_instant(hit, demo):
    repo = make_repo(demo / "mylib", 42)
    write_profile(demo / "dev.yaml", "extends: [default.yaml]\npackages:\n"
                  "  libcore: {git: mylib, branch: main}\n")  # fmt: skip
    first = git(repo, "rev-parse", "HEAD")
    r = hit("build", "dev.yaml", cwd=demo)
    assert f"libcore: {repo} branch main is at {first}" in r.err
    assert built(r) == ["libcore", "liba", "libb", "app"] or len(built(r)) == 4
    assert answer(demo) == "core: libcore git, answer 42"
    second = set_answer(repo, 43)
    r = hit("build", "dev.yaml", cwd=demo)
    assert f"is at {second}" in r.err and len(built(r)) == 4  # a new commit: new artifacts
    assert answer(demo) == "core: libcore git, answer 43"
    git(repo, "reset", "-q", "--hard", first)  # back to the first commit
    start = time.monotonic()
    r = hit("build", "dev.yaml", cwd=demo)
    elapsed = time.monotonic() - start
    assert built(r) == [] and answer(demo) == "core: libcore git, answer 42"
    assert elapsed < 5  # (measured ~0.5 s here; the figure is in the README, not asserted)
    spec = hit("show", "buildspec", "libcore", "-p", "dev.yaml", cwd=demo).out
    assert f'"hash": "git:{first}"' in spec


def test_dirty_checkout_refused_or_hashed_by_content(hit, demo):
    repo = make_repo(demo / "mylib", 42)
    write_profile(
        demo / "dev.yaml", "extends: [default.yaml]\npackages:\n  libcore: {git: mylib}\n"
    )
    set_answer(repo, 44, commit=False)
    r = hit("build", "dev.yaml", cwd=demo, check=False)
    assert r.code == 1 and "has uncommitted changes" in r.err and "--dirty" in r.err
    r = hit("build", "--dirty", "dev.yaml", cwd=demo)
    assert "using the uncommitted working tree" in r.err
    assert answer(demo) == "core: libcore git, answer 44"


def test_recipe_git_source_through_a_mirror(hit, home, demo, tmp_path):
    repo = make_repo(tmp_path / "upstream-repo", 7)
    commit = git(repo, "rev-parse", "HEAD")
    write_recipe(
        demo / "pkgs",
        "libcore",
        f"""
        version: "2.0"
        sources:
          - git: file://{repo}
            commit: {commit}
        build: |
          gcc $CPPFLAGS -O2 -fPIC -shared -Wl,-soname,libcore.so.1 -o libcore.so.1 core.c $LDFLAGS
          install -Dm644 core.h "$ARTIFACT/include/core.h"
          install -Dm755 libcore.so.1 "$ARTIFACT/lib/libcore.so.1"
          ln -s libcore.so.1 "$ARTIFACT/lib/libcore.so"
        """,
    )
    hit("build", cwd=demo)
    assert answer(demo, "default") == "core: libcore git, answer 7"
    assert list((home / "src" / "git").glob("*.git"))  # the bare mirror
    set_answer(repo, 8)  # a new upstream commit does not change what the recipe pins
    r = hit("build", cwd=demo)
    assert built(r) == []
    bad = demo / "pkgs" / "libcore.yaml"
    bad.write_text(bad.read_text().replace(commit, "deadbeef" * 5))
    r = hit("build", cwd=demo, check=False)
    assert r.code == 1 and "has no commit deadbeefdeadbeef" in r.err
