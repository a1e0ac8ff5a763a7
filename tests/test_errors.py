"""Every bad input: one plain `hit: error:` message, exit 1, never a traceback."""

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import run_hdmod, write_profile, write_recipe

GOOD = 'version: "1"\nbuild: |\n  mkdir -p "$ARTIFACT"\n'


def _one_error(r, *fragments):
    assert r.code == 1
    lines = [line for line in r.err.splitlines() if line.startswith("hit: error:")]
    assert len(lines) == 1, r.err
    for f in fragments:
        assert f in r.err, r.err


def test_missing_profile(hit, tmp_path):
    _one_error(hit("build", cwd=tmp_path, check=False), "default.yaml: no such file")
    # an empty argument is no profile at all: not the default one (it was, once plain
    # builds ran without click); as the click command says it
    _one_error(hit("build", "", cwd=tmp_path, check=False), "cannot read: Is a directory")


def test_a_failed_build_s_log_lines_lose_their_colours_off_a_terminal(hit, tmp_path):
    """The last lines of a failed build's log, shown on stderr when it is no terminal (a CI
    log, a file): without the ANSI styles a compiler's coloured output leaves there, as
    click.echo writes them (the click-free `hit build` too: cli/plainbuild.py)."""
    build = "printf '\\033[31merror: red\\033[0m\\n'\n  exit 1"
    write_recipe(tmp_path / "pkgs", "colour", f'version: "1"\nbuild: |\n  {build}\n')
    write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [colour]\n")
    r = hit("build", cwd=tmp_path, check=False)
    assert r.code == 1 and "    error: red" in r.err and "\x1b" not in r.err, repr(r.err)


# a build log's hostile lines: a terminal title, clear screen, cursor up, a bell and
# backspaces over what hit says, hidden text, then colours (left out) and a tab (kept)
HOSTILE_LOG = (
    "printf '\\033]0;pwned\\007title\\n\\033[2J\\033[1Acleared\\n"
    "ok\\010\\010XX\\n\\033[8mhidden here\\n\\033[31mred\\033[0m\\tcol\\n'"
)


def _hostile_build(tmp_path):
    write_recipe(
        tmp_path / "pkgs", "hostile", f'version: "1"\nbuild: |\n  {HOSTILE_LOG}\n  exit 1\n'
    )
    write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [hostile]\n")


def _on_a_terminal(tmp_path: Path, *args: str) -> tuple[int, str]:
    """`hit ARGS` in `tmp_path` with stdout and stderr on a pseudo-terminal: its exit code
    and all it wrote there."""
    import pty
    import select

    env = {**os.environ, "HIT_HOME": str(tmp_path / "home"), "TERM": "xterm"}
    main, side = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hdmodules.cli.hit", *args],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=side, stderr=side, env=env,
    )  # fmt: skip
    os.close(side)
    seen = b""
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        assert ready, seen
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: every writer closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    return proc.wait(30), seen.decode()


def test_a_failed_build_s_log_lines_cannot_act_on_the_users_terminal(tmp_path):
    """A failed build's last lines, shown on a terminal: control sequences (a title, clear
    screen, cursor movement, bell, backspace) are shown escaped and colours and styles left
    out, so a recipe's output cannot retitle or clear the terminal, write over what hit
    says, or hide text (`ESC[8m`: kept colours let it, found by the closing trial)."""
    _hostile_build(tmp_path)
    code, text = _on_a_terminal(tmp_path, "build")
    assert code == 1
    assert "\\x1b]0;pwned\\x07title" in text and "\\x1b[2J\\x1b[1Acleared" in text, text
    assert "ok\\x08\\x08XX" in text and "\x1b[8mhidden" not in text, repr(text)
    assert "    red\tcol" in text and "    hidden here" in text, repr(text)
    for raw in ("\x1b]", "\x07", "\x1b[2J", "\x1b[1A", "\x08"):
        assert raw not in text, (raw, text)


def test_a_build_script_shown_on_a_terminal_cannot_act_on_it(hit, tmp_path):
    """`hit show script`: a recipe's control characters (a title, a bell) are shown escaped
    on a terminal (the trial: raw), and written as they are into a pipe or a file, where
    the script is to be run (colours kept too: click.echo had left them out)."""
    build = '"printf x; echo \\e]0;pwned\\a \\e[31mred\\ntrue\\n"'
    write_recipe(tmp_path / "pkgs", "p", f'version: "1"\nbuild: {build}\n')
    write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [p]\n")
    code, text = _on_a_terminal(tmp_path, "show", "script", "p")
    assert code == 0 and "echo \\x1b]0;pwned\\x07 \\x1b[31mred" in text, repr(text)
    assert "\x1b" not in text and "\x07" not in text
    piped = hit("show", "script", "p", cwd=tmp_path).out
    assert "echo \x1b]0;pwned\x07 \x1b[31mred\ntrue\n" in piped, repr(piped)


def test_a_failed_build_s_log_lines_off_a_terminal_are_plain_text(hit, tmp_path):
    _hostile_build(tmp_path)
    r = hit("build", cwd=tmp_path, check=False)
    assert r.code == 1
    assert "    \\x1b]0;pwned\\x07title\n" in r.err and "    red\tcol\n" in r.err, r.err
    assert not any(c in r.err for c in "\x1b\x07\x08"), repr(r.err)


def test_a_slurm_job_s_log_tail_is_shown_escaped(tmp_path):
    from hdmodules.build.slurm import log_tail

    log = tmp_path / "job.log"
    log.write_bytes(b"fine\n\x1b]0;pwned\x07\x1b[32mgreen\x1b[0m\n")
    shown = "    fine\n    \\x1b]0;pwned\\x07green"  # no colour: none can hide text
    assert log_tail(str(log)) == shown


@pytest.mark.parametrize(
    "profile, fragments",
    [
        ("packages: [a\n", ["default.yaml:2: malformed YAML"]),
        ("packages: [a]\nextras: 1\n", ["default.yaml:2: unknown key 'extras'"]),
        ("package_dirs: [pkgs]\npackages: [nope]\n", ["default.yaml:2: unknown package 'nope'"]),
        ("package_dirs: [nodir]\n", ["package dir 'nodir'", "is not a folder"]),
        ("package_dirs: [pkgs]\npackages: [c1]\n", ["c2.yaml:4: dependency cycle: c1 -> c2 -> c1"]),
        ("package_dirs: [pkgs]\npackages: {a: [1]}\n", ["package 'a': give nothing, or a mapping"]),
        ("- just\n- a list\n", ["default.yaml:1: a profile must be a YAML mapping"]),
        (
            "package_dirs: [pkgs]\nparameters:\n  opt: 1\n  nosuch: 2\npackages: [p]\n",
            ["default.yaml:4: no package of this profile has the parameter(s) nosuch"],
        ),
        (
            "extends: [pkgs]\npackages: [a]\n",
            ["default.yaml:1: extends pkgs, but", "is not a YAML file"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [a]\n\nprefer: [pz]\n",
            ["default.yaml:4: prefer names 'pz', which is not in packages"],
        ),
        ("extends: [base.yaml]\n", ["base.yaml:3: prefer names 'pz', which is not in packages"]),
        (
            "package_dirs: [pkgs]\npackages: [a, p, a]\n",
            ["default.yaml:2: package 'a' is listed twice"],
        ),
        (
            "package_dirs: [pkgs]\npackages:\n  - a\n  - p\n  - a\nprefer:\n  - a\n  - zz\n",
            ["default.yaml:5: package 'a' is listed twice"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [a, p]\nprefer:\n  - a\n  - zz\n",
            ["default.yaml:5: prefer names 'zz', which is not in packages"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [gone]\n",
            ["gone.yaml:5: source path", "does not exist"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [a, profile]\n",
            ["default.yaml:2: package name 'profile' is kept for profiles"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [onprofile]\n",
            ["onprofile.yaml:4: dependency 'profile' is kept for profiles"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [both]\n",
            ["both.yaml:4: both builds on x-y and x_y, which would both be X_Y_DIR"],
        ),
        ("extends: [cyc.yaml]\n", ["cyc.yaml:2: profiles extend each other in a cycle"]),
        (
            "package_dirs: [pkgs]\npackages: [dupdep]\n",
            ["dupdep.yaml:6: dependency 'a' is listed twice"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [lostdep]\n",
            ["lostdep.yaml:6: unknown package 'nosuch'"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [named]\n",
            ["named.yaml: recipe file named.yaml names the package 'other', but a package"],
        ),
        (
            "package_dirs: [pkgs]\npackages:\n  - a\n  - {p: 1}\n",
            ["default.yaml:4: 'packages' must list package names"],
        ),
        (
            "package_dirs:\n  - pkgs\n  - " + "x" * 5000 + "\npackages: [a]\n",
            ["default.yaml:3: package dir 'xxxx", "is not a folder"],
        ),
        (
            "package_dirs:\n  - pkgs\n  - nodir\npackages: [a]\n",
            ["default.yaml:3: package dir 'nodir'", "is not a folder"],
        ),
        ("package_dirs: [pkgs]\npackages: [badsrc]\n", ["badsrc.yaml:6: 'sources' must be"]),
        (
            "package_dirs: [pkgs]\npackages: [nopatch]\n",
            ["nopatch.yaml:6: patch file missing.patch is not there"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [hostlibs]\n",
            ["hostlibs.yaml:6: 'allow_host_libs' must be a list of strings"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [versioned]\n",
            ["versioned.yaml:5: versions: 1: give its source (url:, sha256:) or a list"],
        ),
        (
            "package_dirs:\n  - pkgs\n  - pkgs\npackages: [a]\n",
            ["default.yaml:3: package dir 'pkgs' is listed twice"],
        ),
        (
            "package_dirs:\n  - pkgs\n  - ./pkgs/\npackages: [a]\n",
            ["default.yaml:3: package dir './pkgs/' is listed twice"],
        ),
        (
            "package_dirs: [pkgs]\nnull: 1\npackages:\n  yes:\n",
            ["default.yaml:2: unknown key null (YAML reads null, ~ or nothing there so: quote"],
        ),
        (
            "package_dirs: [pkgs]\npackages:\n  yes:\n",
            ["default.yaml:3: package name True (YAML reads yes/no/on/off/true/false so: quote"],
        ),
        (
            "package_dirs: [pkgs]\npackages:\n  0x1F:\n",
            ["package name 31 (YAML reads the text there as a number: quote a name)\n"],
        ),
        (
            "package_dirs: [pkgs]\npackages:\n  2024-01-01:\n",
            ["default.yaml:3: a key must be a plain value, not 2024-01-01 (YAML reads the text"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [a, {b: }]\n",
            ["default.yaml:2: 'packages' must list package names, not a mapping"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [a]\nmodules:\n  stack: s\n  naming: 3\n",
            ["default.yaml:5: 'naming' needs {name} and a /"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [a]\nmodules: {naming: '{name}/{version}'}\n",
            ["default.yaml:3: modules needs the key 'stack'"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [a]\nmodules:\n  stack: s\n  names:\n"
            "    Core:\n      a/x1: '../../etc/x\"; os.exit()'\n",
            ["default.yaml:7: module name '../../etc/x\"; os.exit()': a name and a version"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [a]\nmodules:\n  stack: s\n  names:\n"
            "    Core:\n      a/x1: liba\n",
            ["default.yaml:7: module name 'liba': a name and a version (name/version)"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [a]\nmodules: {stack: s, names: {Core: [a]}}\n",
            ["default.yaml:3: modules names: each folder maps artifact ids to names"],
        ),
        (
            "package_dirs: [pkgs]\nparameters: {~: 1}\npackages: [a]\n",
            ["default.yaml:2: parameter name null (YAML reads null, ~ or nothing there"],
        ),
        (
            "package_dirs: [pkgs]\ntoolchain: {null: x}\npackages: [a]\n",
            ["default.yaml:2: toolchain kind null (YAML reads null, ~ or nothing there"],
        ),
        (
            "package_dirs: [pkgs]\npackages: a\n",
            ["default.yaml:2: 'packages' must be a mapping or a list of package names"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [a, no]\n",
            ["default.yaml:2: 'packages' must list package names, not False (YAML reads yes/no"],
        ),
        (
            "package_dirs:\n  - pkgs\n  - pk\npackages: [a]\n",  # pk -> pkgs
            ["default.yaml:3: package dir 'pk' is listed twice"],
        ),
        (
            "extends:\n  - base.yaml\n  - ./base.yaml\n",
            ["default.yaml:3: extends: profile './base.yaml' is listed twice"],
        ),
        (
            "extends:\n  - base.yaml\n  - base.yaml\n",
            ["default.yaml:3: extends: profile 'base.yaml' is listed twice"],
        ),
        (
            "package_dirs: [pkgs]\npackages: [hostlibs2]\n",
            ["hostlibs2.yaml:6: host library 'libz.so.1' is listed twice"],
        ),
        (
            "package_dirs: [pkgs]\nextends:\n  - base.yaml\n  - nosuch.yaml\n",
            ["default.yaml:4: extends nosuch.yaml, but"],
        ),
        (
            "package_dirs: [pkgs]\npackages:\n  p:\n    parameters:\n"
            "      opt: 1\n      nosuch: 2\n",
            ["default.yaml:6: package p has no parameter 'nosuch'"],
        ),
        (
            "package_dirs: [pkgs]\npackages:\n  vflag:\n    parameters:\n      flag: maybe\n",
            ["default.yaml:5: "],
        ),
    ],
    ids=[
        "syntax",
        "unknown-key",
        "unknown-package",
        "bad-dir",
        "cycle",
        "bad-override",
        "list",
        "undeclared-parameter",
        "extends-a-folder",
        "prefer-not-listed",
        "prefer-not-listed-in-a-base",
        "listed-twice",
        "listed-twice-in-a-block-list",
        "prefer-not-listed-in-a-block-list",
        "missing-path-source",
        "a-package-named-profile",
        "a-dependency-named-profile",
        "two-dependencies-one-dir-variable",
        "extends-cycle",
        "a-dependency-twice-in-a-block-list",
        "an-unknown-dependency-in-a-block-list",
        "name-not-the-file-s",
        "a-mapping-in-a-block-list-of-packages",
        "a-dir-name-too-long",
        "a-missing-dir-in-a-block-list",
        "a-source-not-a-mapping-in-a-block-list",
        "a-missing-patch-in-a-block-list",
        "a-host-lib-not-a-string-in-a-block-list",
        "a-version-s-source-not-a-mapping",
        "a-package-dir-twice",
        "a-package-dir-spelt-twice",
        "a-null-key-said-as-yaml-reads-it",
        "a-bool-package-said-as-yaml-reads-it",
        "a-number-package-said-as-yaml-reads-it",
        "a-date-package-said-as-yaml-reads-it",
        "a-mapping-in-a-list-of-packages-said-by-its-kind",
        "a-profile-s-module-naming-checked-as-a-site-s",
        "a-profile-s-module-naming-names-its-stack",
        "a-stack-s-given-module-name-checked",
        "a-stack-s-given-module-name-has-a-version",
        "a-stack-s-given-names-shaped",
        "a-null-parameter-said-as-yaml-reads-it",
        "a-null-toolchain-kind-said-as-yaml-reads-it",
        "packages-one-word",
        "a-bool-in-a-list-of-packages-said-as-yaml-reads-it",
        "a-package-dir-twice-by-a-link",
        "extends-spelt-twice",
        "extends-twice",
        "a-host-lib-twice",
        "extends-a-missing-file-in-a-block-list",
        "a-package-s-unknown-parameter-at-its-line",
        "a-package-s-bad-variant-value-at-its-line",
    ],
)
def test_bad_profiles(hit, tmp_path, profile, fragments):
    write_recipe(tmp_path / "pkgs", "a", GOOD)
    (tmp_path / "pk").symlink_to("pkgs")
    write_recipe(tmp_path / "pkgs", "gone", GOOD + "sources:\n  - path: ../nowhere\n")
    write_recipe(tmp_path / "pkgs", "onprofile", GOOD + "dependencies: [profile]\n")
    write_recipe(tmp_path / "pkgs", "profile", GOOD)
    write_recipe(tmp_path / "pkgs", "x-y", GOOD)
    write_recipe(tmp_path / "pkgs", "x_y", GOOD)
    write_recipe(tmp_path / "pkgs", "both", GOOD + "dependencies: [x-y, x_y]\n")
    write_recipe(tmp_path / "pkgs", "named", GOOD + "name: other\n")
    write_recipe(tmp_path / "pkgs", "dupdep", GOOD + "dependencies:\n  - a\n  - a\n")
    write_recipe(tmp_path / "pkgs", "lostdep", GOOD + "dependencies:\n  - a\n  - nosuch\n")
    write_profile(tmp_path / "cyc.yaml", "package_dirs: [pkgs]\nextends: [default.yaml]\n")
    write_profile(tmp_path / "base.yaml", "package_dirs: [pkgs]\npackages: [a]\nprefer: [pz]\n")
    write_recipe(tmp_path / "pkgs", "c1", GOOD + "dependencies: [c2]\n")
    write_recipe(tmp_path / "pkgs", "p", GOOD + "parameters: {opt: 0}\n")
    write_recipe(tmp_path / "pkgs", "c2", GOOD + "dependencies: [c1]\n")
    (tmp_path / "pkgs" / "here.patch").write_text("--- a/x\n+++ b/x\n")
    write_recipe(tmp_path / "pkgs", "badsrc", GOOD + "sources:\n  - path: .\n  - text\n")
    write_recipe(
        tmp_path / "pkgs", "nopatch", GOOD + "patches:\n  - here.patch\n  - missing.patch\n"
    )
    write_recipe(
        tmp_path / "pkgs", "hostlibs", GOOD + "allow_host_libs:\n  - /usr/lib\n  - {x: 1}\n"
    )
    write_recipe(
        tmp_path / "pkgs",
        "versioned",
        'version: "1"\nversions:\n  "1":\n    - {path: .}\n    - nope\n' + GOOD[13:],
    )
    write_recipe(
        tmp_path / "pkgs", "hostlibs2", GOOD + "allow_host_libs:\n  - libz.so.1\n  - libz.so.1\n"
    )
    write_recipe(
        tmp_path / "pkgs", "vflag", GOOD + "parameters: {flag: true}\nwhen:\n  +flag: {}\n"
    )
    write_profile(tmp_path / "default.yaml", profile)
    for args in (["build"], ["status"], ["show", "buildspec", "a"]):
        _one_error(hit(*args, cwd=tmp_path, check=False), *fragments)


def test_sha256_mismatch_prints_both(hit, home, tmp_path):
    archive = tmp_path / "x-1.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("x-1/a")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"a"))
    sha = hit("fetch", str(archive)).out.split()[1]
    wrong = "f" * 64
    write_recipe(
        tmp_path / "pkgs",
        "x",
        f'version: "1"\nsources:\n  - url: {archive.as_uri()}\n'
        f'    sha256: {wrong}\nbuild: "true"\n',
    )
    (home / "src" / "sha256" / sha).chmod(0o644)
    (home / "src" / "sha256" / sha).unlink()  # not cached: must be downloaded and checked
    write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [x]\n")
    _one_error(
        hit("build", cwd=tmp_path, check=False),
        f"sha256 mismatch: expected {wrong}, got {sha}",
    )


def test_tarball_escaping_the_build_folder(hit, tmp_path):
    evil = tmp_path / "pkgs" / "evil.tar.gz"
    evil.parent.mkdir()
    with tarfile.open(evil, "w:gz") as tf:
        info = tarfile.TarInfo("../../../outside")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    write_recipe(
        tmp_path / "pkgs", "evil", 'version: "1"\nsources: [{path: evil.tar.gz}]\nbuild: "true"\n'
    )
    write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [evil]\n")
    r = hit("build", cwd=tmp_path, check=False)
    _one_error(r, "would land outside the build folder")
    assert not (tmp_path / "outside").exists()
    kept = Path(r.err.split("build folder kept: ")[1].splitlines()[0])  # named, as a failed
    assert kept.is_dir() and (kept / "src").is_dir()  # script's is (the closing trial)
    assert not r.err.endswith("\n\n"), r.err  # no log yet: no line for it, nor a blank one


def test_unknown_package_for_show_and_bdir(hit, demo):
    _one_error(hit("show", "script", "nope", cwd=demo, check=False), "no package 'nope' here")
    _one_error(hit("bdir", "nope", "x", cwd=demo, check=False), "no package 'nope' here")


def test_usage_errors_are_not_tracebacks(hit, tmp_path):
    r = hit("fetch", cwd=tmp_path, check=False)
    assert r.code == 2 and "give either URL_OR_FILE, PROFILE.yaml or --from DIR" in r.err
    r = hit("build", "-j", "0", cwd=tmp_path, check=False)
    assert r.code == 2


def test_bad_home_config(hit, home, tmp_path):
    hit("init-home")
    (home / "config.yaml").write_text("store: bld\njobz: 3\n")
    _one_error(hit("status", cwd=tmp_path, check=False), "config.yaml:2: unknown key 'jobz'")


def test_a_jobs_setting_past_the_cpu_budget_is_said_at_its_line(hit, home, demo):
    """`jobs: 100000000000` was found at build time, as `-j 100000000000`, no line."""
    hit("init-home")
    (home / "config.yaml").write_text("store: bld\njobs: 100000000000\n")
    _one_error(hit("build", cwd=demo, check=False), "config.yaml:2: 'jobs' must be at most 4,096")


def test_a_mirror_with_whitespace_is_said_at_its_line(hit, home, demo):
    """`mirrors:` took a URL with a line break or a space, which recipe URLs refuse (the
    second trial)."""
    hit("init-home")
    (home / "config.yaml").write_text('store: bld\nmirrors:\n  - /srv/m\n  - "http://m/a b"\n')
    _one_error(hit("build", cwd=demo, check=False), "config.yaml:4: mirror 'http://m/a b' is")
    (demo / "USB DISK").mkdir()  # a folder may hold a space (the third trial: refused)
    (home / "config.yaml").write_text(f"store: bld\nmirrors:\n  - {demo / 'USB DISK'}\n")
    assert hit("build", cwd=demo).code == 0


def test_an_upstream_that_is_not_a_folder_is_said_at_its_line(hit, home, demo):
    """`upstreams:` naming a folder that is not there (a typo, a site root not mounted): one
    error at its item, before anything builds, not a build of everything into the own store
    as if the upstream had nothing."""
    hit("init-home")
    (home / "config.yaml").write_text(f"store: bld\nupstreams:\n  - {home}\n  - /no/such/site\n")
    r = hit("build", cwd=demo, check=False)
    _one_error(r, "config.yaml:4: upstream '/no/such/site' ('/no/such/site') is not a folder")
    assert not (home / "bld" / "app").exists()


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("http://[::1/x", "is not a valid URL"),
        ("http://host:port/x.tar.gz", "is not a valid URL"),
        ("ssh://host/x.tar.gz", "give an http(s), ftp or file URL"),
        ("https:///x.tar.gz", "give an http(s), ftp or file URL"),
        ("https://h/x\\n.tar.gz", "holds whitespace or a control character"),
        ("https://h/a b.tar.gz", "holds whitespace or a control character"),
    ],
)
def test_bad_source_urls_name_the_line(hit, tmp_path, url, fragment):
    source = f'  - url: "{url}"\n    sha256: "{"0" * 64}"\n'
    write_recipe(tmp_path / "pkgs", "u", f'version: "1"\nsources:\n{source}build: |\n  true\n')
    write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [u]\n")
    _one_error(hit("build", cwd=tmp_path, check=False), "u.yaml:3: ", fragment)


# --- ConfigError carries its place and message as fields ----------------------------------


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("packages: [a\n", 2, "malformed YAML"),
        ("packages: [a]\nextras: 1\n", 2, "unknown key 'extras' in profile"),
        ("a: 1\na: 2\n", 2, "duplicate key 'a'"),
        ("- just\n- a list\n", 1, "a profile must be a YAML mapping"),
        ("packages:\n  a: [1]\n", 2, "package 'a': give nothing, or a mapping of overrides"),
    ],
    ids=["syntax", "unknown-key", "duplicate-key", "not-a-mapping", "bad-override"],
)
def test_config_errors_carry_file_line_and_message(tmp_path, text, line, message):
    from hdmodules.errors import ConfigError, HitError
    from hdmodules.spec.profiles import load_profile

    file = write_profile(tmp_path / "p.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_profile(file)
    e = caught.value
    assert isinstance(e, HitError)
    assert (e.file, e.line) == (file, line) and e.message.startswith(message)
    assert str(e) == f"{file}:{line}: {e.message}"


def test_a_missing_file_is_a_config_error_without_a_line(tmp_path):
    from hdmodules.errors import ConfigError
    from hdmodules.spec.recipes import load_recipe

    with pytest.raises(ConfigError) as caught:
        load_recipe(tmp_path / "nope.yaml")
    assert (caught.value.line, caught.value.message) == (None, "no such file")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: no such file"


def test_a_recipe_source_error_names_the_source_line(tmp_path):
    from hdmodules.errors import ConfigError
    from hdmodules.spec.recipes import load_recipe

    file = write_recipe(tmp_path, "a", GOOD + "sources:\n  - url: https://example.org/a.tgz\n")
    with pytest.raises(ConfigError) as caught:
        load_recipe(file)
    assert (caught.value.file, caught.value.line) == (file, 5)
    assert caught.value.message.startswith("the source https://example.org/a.tgz needs a sha256")


@pytest.mark.parametrize(
    "name", ["ifs", "bash_env", "ld_preload", "shellopts", "path", "ompi_cc", "mpich_fc", "python"]
)
def test_parameters_that_would_change_the_shell_are_refused(hit, tmp_path, name):
    """Refused at the parameter's line when the recipe is loaded (it had no line)."""
    write_recipe(tmp_path / "pkgs", "p", GOOD + f"parameters:\n  opt: 1\n  {name}: x\n")
    write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [p]\n")
    said = f"p.yaml:6: parameter '{name}' would shadow a build variable"
    _one_error(hit("build", cwd=tmp_path, check=False), said)


def test_two_parameters_one_variable_are_refused_at_the_second(hit, tmp_path):
    """`Foo` and `foo` are both exported as FOO: the build spec hashed both while the build
    saw the last (the fourth trial)."""
    write_recipe(tmp_path / "pkgs", "p", GOOD + "parameters:\n  Foo: 1\n  foo: 2\n")
    write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [p]\n")
    said = "p.yaml:6: parameters 'Foo' and 'foo' are both FOO"
    _one_error(hit("build", cwd=tmp_path, check=False), said)


@pytest.mark.parametrize("where", ["recipe", "profile", "package"])
def test_a_nul_character_in_a_parameter_value_is_refused_at_its_line(hit, tmp_path, where):
    """`"a\0b"` was hashed whole while the build saw `a` (execve ends a value at a NUL)."""
    value = '"a\\0b"'
    recipe = GOOD + f"parameters:\n  opt: {value if where == 'recipe' else 1}\n"
    write_recipe(tmp_path / "pkgs", "p", recipe)
    profile = "package_dirs: [pkgs]\n"
    if where == "profile":
        profile += f"parameters:\n  opt: {value}\npackages: [p]\n"
    elif where == "package":
        profile += f"packages:\n  p:\n    parameters:\n      opt: {value}\n"
    else:
        profile += "packages: [p]\n"
    write_profile(tmp_path / "default.yaml", profile)
    file, line = {"recipe": ("p.yaml", 5), "profile": ("default.yaml", 3)}.get(
        where, ("default.yaml", 5)
    )
    said = f"{file}:{line}: 'a\\x00b' holds a NUL character, which no file name"
    _one_error(hit("build", cwd=tmp_path, check=False), said)
    assert not (tmp_path / "hithome" / "bld" / "p").exists()


@pytest.mark.parametrize(
    "recipe, line",
    [
        ('sources:\n  - path: f.txt\n    dest: "a\\0b"\n', 6),  # a traceback mid-build
        ('sources:\n  - path: "f.txt\\0"\n', 5),
        ('sources:\n  - git: "/tmp\\0x"\n    commit: ' + "a" * 40 + "\n", 5),
        ('patches:\n  - "x.patch\\0"\n', 5),
    ],
    ids=["dest", "path", "git", "patch"],
)
def test_a_nul_character_in_any_string_is_refused_at_its_line(hit, tmp_path, recipe, line):
    """The loader refuses a NUL in every string of every file (the fourth trial: a source's
    `dest`, `path` or `git` gave a traceback, the first while building)."""
    (tmp_path / "pkgs").mkdir()
    (tmp_path / "pkgs" / "f.txt").write_text("x\n")
    write_recipe(tmp_path / "pkgs", "p", GOOD + recipe)
    write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [p]\n")
    r = hit("build", cwd=tmp_path, check=False)
    _one_error(r, f"p.yaml:{line}: ", "holds a NUL character")
    assert "Traceback" not in r.err and not list((tmp_path / "hithome").glob("tmp/p-*"))


@pytest.mark.parametrize("where", ["root", "templates"])
def test_a_nul_character_in_a_site_s_root_or_templates_is_refused(tmp_path, where):
    """site.yaml's `root:` or `modules: templates:` holding a NUL: one error at its line (the
    fourth trial: tracebacks, the second after the stacks' links were rewritten)."""
    templates = '  templates: "t\\0"\n' if where == "templates" else ""
    site = _small_site(
        tmp_path, "stacks:\n  s:\n    compiler: gcc-12\n    packages: [a]\nmodules:\n" + templates
    )
    if where == "root":
        site.write_text(site.read_text().replace("root: r\n", 'root: "r\\0"\n'))
    line = 1 if where == "root" else 11
    r = run_hdmod("build", str(site), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"{site}:{line}: " in r.stderr and "holds a NUL character" in r.stderr, r.stderr


def test_a_package_name_starting_with_a_digit_builds(hit, tmp_path):
    """`4ti2` is a real package; its dependents see it as _4TI2_DIR (a shell name)."""
    write_recipe(tmp_path / "pkgs", "4ti2", 'version: "1"\nbuild: |\n  mkdir -p "$ARTIFACT/lib"\n')
    write_recipe(
        tmp_path / "pkgs",
        "user",
        'version: "1"\ndependencies: [4ti2]\nbuild: |\n'
        '  mkdir -p "$ARTIFACT/share"; echo "$_4TI2_DIR" > "$ARTIFACT/share/dir"\n',
    )
    write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [user]\n")
    hit("build", cwd=tmp_path)
    assert "/4ti2/" in (tmp_path / "default" / "share" / "dir").read_text()


def _small_site(tmp_path: Path, tail: str) -> Path:
    """site.yaml in `tmp_path` with a package `a`, externals gcc-12 and ompi (no pins), then
    `tail` (its stacks: and modules:)."""
    (tmp_path / "pkgs").mkdir()
    (tmp_path / "pkgs" / "a.yaml").write_text('version: "1"\nbuild: |\n  mkdir -p "$ARTIFACT"\n')
    site = tmp_path / "site.yaml"
    site.write_text(
        "root: r\npackage_dirs: [pkgs]\nexternals:\n"
        "  gcc-12: {kind: compiler, version: '12', commands: {cc: /usr/bin/gcc}}\n"
        "  ompi: {kind: mpi, version: '4', commands: {mpicc: /usr/bin/mpicc}}\n" + tail
    )
    return site


@pytest.mark.parametrize(
    "stack, modules, fragment",
    [
        ("compiler: gcc-12", "externals: []", "stacks: s: compiler: gcc-12 has no module"),
        (
            "compiler: gcc-12\n    mpi: ompi",
            "externals: [gcc-12]",
            "stacks: s: mpi: ompi has no module",
        ),
        ("compiler: gcc-99", "externals: []", "stacks: s: compiler: no external 'gcc-99'"),
        ("compiler: ompi", "externals: []", "stacks: s: compiler: ompi is a mpi, not a compiler"),
    ],
    ids=["compiler-module", "mpi-module", "unknown", "wrong-kind"],
)
def test_a_site_is_checked_before_anything_builds(tmp_path, stack, modules, fragment):
    """A hierarchy whose compiler (or MPI) has no module, or a stack naming an external that
    is not declared or of the wrong kind: one error at the stack's key in site.yaml, and
    nothing built, linked or written."""
    site = _small_site(
        tmp_path, f"stacks:\n  s:\n    {stack}\n    packages: [a]\nmodules:\n  {modules}\n"
    )
    r = run_hdmod("build", str(site), check=False)
    key = "mpi" if "mpi:" in fragment else "compiler"
    line = next(
        i for i, t in enumerate(site.read_text().splitlines(), 1) if t.strip().startswith(f"{key}:")
    )
    assert r.returncode == 1 and f"{site}:{line}: {fragment}" in r.stderr, r.stderr
    assert not (tmp_path / "r" / "bld").exists() and not (tmp_path / "r" / "profiles").exists()


def test_two_externals_of_one_module_name_are_refused_before_building(tmp_path):
    """Two compilers that would both be `gcc/12.2.0` (a second gcc 12.2.0 under /opt): one
    error naming both, nothing built, rather than one module replacing the other."""
    (tmp_path / "pkgs").mkdir()
    (tmp_path / "pkgs" / "a.yaml").write_text('version: "1"\nbuild: |\n  mkdir -p "$ARTIFACT"\n')
    site = tmp_path / "site.yaml"
    gcc = "\n    kind: compiler\n    version: 12.2.0\n    commands: {cc: /usr/bin/gcc}"
    site.write_text(
        f"root: r\npackage_dirs: [pkgs]\nexternals:\n  gcc-12:{gcc}\n  gcc-12.2:{gcc}\n"
        "stacks:\n  one: {compiler: gcc-12, packages: [a]}\n"
        "  two: {compiler: gcc-12.2, packages: [a]}\n"
        "modules:\n  externals: [gcc-12, gcc-12.2]\n"
    )
    r = run_hdmod("build", str(site), "--repin", check=False)  # pins them, then stops
    assert r.returncode == 1 and "would both be the module gcc/12.2.0" in r.stderr, r.stderr
    assert "gcc-12 " in r.stderr and "gcc-12.2 " in r.stderr
    assert not (tmp_path / "r" / "bld" / "a").exists()


def test_a_config_error_is_one_line_whatever_the_file_held():
    """A value with a line break (a fuzzed site root, a variant value) stays on one line."""
    from pathlib import Path

    from hdmodules.errors import ConfigError

    e = ConfigError(Path("site.yaml"), 3, "root 'a\nb' holds whitespace; value 't\rrue'")
    assert "\n" not in str(e) and "\r" not in str(e)
    assert str(e) == "site.yaml:3: root 'a\\nb' holds whitespace; value 't\\rrue'"


@pytest.mark.parametrize("args", [["status"], ["build"]])
def test_a_reader_that_went_away_is_exit_141_without_a_message(hit, demo, args):
    """`hit status | head -1`: once the reader of stdout is gone, hit exits as a process
    killed by SIGPIPE would (141, what git does), silently and without a traceback, rather
    than click's exit 1 (status) or Python's 120 (build, whose output is flushed at exit)."""
    hit("build", cwd=demo)
    read, write = os.pipe()
    os.close(read)  # the reader is gone before hit writes anything
    try:
        r = subprocess.run(
            [sys.executable, "-m", "hdmodules.cli.hit", *args],
            cwd=demo,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert r.returncode == 141, r.stderr
    assert "Traceback" not in r.stderr and "error" not in r.stderr, r.stderr


@pytest.mark.parametrize("args", [["status"], ["build"], ["build", "-j", "2"]])
def test_a_closed_stdout_is_no_traceback(hit, demo, args):
    """`hit build >&-` (a cron line that wants no output): Python starts with no sys.stdout;
    hit does its work and leaves as usual, without a traceback from flushing a stream that
    is not there (whether the no-op path or the click CLI answers)."""
    hit("build", cwd=demo)
    r = subprocess.run(
        ["bash", "-c", 'exec "$@" >&-', "-", sys.executable, "-m", "hdmodules.cli.hit", *args],
        cwd=demo,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr


def test_a_log_line_shows_no_style_that_could_hide_text():
    """No colour or style of a recipe's output is kept: `ESC[8m` (hidden) or black on black
    hid text on the terminal (first the next lines too, then the rest of its own line)."""
    from hdmodules.errors import log_line

    assert log_line("hide \x1b[8mthis\x1b[28m shown") == "hide this shown"
    assert log_line("\x1b[38;5;0;48;5;0mINVISIBLE") == "INVISIBLE"
    assert log_line("\x1b[31mred\x1b[0m\tok") == "red\tok"
    assert log_line("bell\x07 \x1b[2J") == "bell\\x07 \\x1b[2J"
    assert log_line("plain") == "plain"


@pytest.mark.parametrize("tail", ["r[pwd]", "f;g", 'd"q', "c\\z", "b{y"])
def test_a_site_root_lmod_would_evaluate_again_is_refused(tmp_path, tail):
    """Lmod reads a Tcl module's `module use DIR` through tcl2lua.tcl, which evaluates DIR
    once more: a root holding `[pwd]` ran it at every `module load` of the Tcl tree, and `;`,
    `"` or `\\` broke it (found by the closing trial). Refused at site.yaml's root: line,
    and for `--root`, before anything is built."""
    site = tmp_path / "site.yaml"
    root = tmp_path / tail
    site.write_text(
        f"root: '{root}'\npackage_dirs: []\nstacks:\n  s: {{compiler: gcc, packages: []}}\n"
    )
    r = run_hdmod("build", str(site), check=False)
    assert r.returncode == 1 and f"{site}:1: the site's root {root} holds" in r.stderr, r.stderr
    assert "which Lmod evaluates again in a Tcl module's `module use`" in r.stderr
    assert "Traceback" not in r.stderr and not root.exists()
    r = run_hdmod("build", str(site), "--root", str(tmp_path / "x" / tail), check=False)
    assert r.returncode == 1 and "which Lmod evaluates again" in r.stderr, r.stderr


def test_an_unknown_name_under_modules_externals_is_said(tmp_path):
    """`modules: externals: [gcc-12, nope]`: the unknown name is refused at its line (the
    second trial: a message about another compiler's missing module came instead)."""
    site = _small_site(
        tmp_path,
        "stacks:\n  s:\n    compiler: gcc-12\n    packages: [a]\n"
        "modules:\n  externals:\n    - gcc-12\n    - nope\n",
    )
    r = run_hdmod("build", str(site), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    said = f"{site}:13: modules: externals: no external 'nope' (externals: gcc-12, ompi)"
    assert said in r.stderr, r.stderr
    assert not (tmp_path / "r" / "bld").exists()


@pytest.mark.parametrize(
    "modules, said",
    [
        ("formats:\n    - lmod\n    - tlc\n", "13: module format 'tlc': use lmod and/or tcl"),
        ("formats:\n    - lmod\n    - lmod\n", "13: module format 'lmod' is listed twice"),
        (
            "externals:\n    - gcc-12\n    - gcc-12\n",
            "13: modules externals: external 'gcc-12' is listed twice",
        ),
        ("hide:\n    - a\n    - a\n", "13: modules hide: package 'a' is listed twice"),
        ("hide:\n    - a\n    - b c\n", "13: modules hide: package name 'b c'"),
        (
            "compile:\n    off_for:\n      - a\n      - zz\n",
            "14: off_for: zz is in no stack (stacks list a)",
        ),
        (
            "compile:\n    off_for:\n      - a\n      - a\n",
            "14: modules compile off_for: package 'a' is listed twice",
        ),
        ("formats: []\n", "11: 'formats' lists no format: give lmod, tcl or both"),
    ],
    ids=[
        "unknown-format",
        "format-twice",
        "external-twice",
        "hidden-twice",
        "bad-hide",
        "off-for",
        "off-for-twice",
        "no-format",
    ],
)
def test_an_item_of_a_site_s_block_list_is_said_at_its_line(tmp_path, modules, said):
    """A bad or repeated item of a block list under `modules:` is refused at its own line
    (it was said at the list's key, or a repeated format or external was accepted), before
    anything builds."""
    site = _small_site(
        tmp_path, f"stacks:\n  s:\n    compiler: gcc-12\n    packages: [a]\nmodules:\n  {modules}"
    )
    r = run_hdmod("build", str(site), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"{site}:{said}" in r.stderr, r.stderr
    assert not (tmp_path / "r" / "bld").exists()


def test_a_parameter_value_longer_than_linux_takes_is_refused_at_its_line(hit, tmp_path):
    """200,000 characters: refused when loaded, not a build failing with `Argument list too
    long` from its first command (the fourth trial); 100,000 pass through whole."""
    for size, ok in ((100_000, True), (200_000, False)):
        write_recipe(
            tmp_path / "pkgs",
            "p",
            f'version: "1"\nparameters:\n  big: "{"x" * size}"\n'
            'build: |\n  mkdir -p "$ARTIFACT"\n  printf %s "$BIG" | wc -c > "$ARTIFACT/n"\n',
        )
        write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [p]\n")
        r = hit("build", cwd=tmp_path, check=False)
        if ok:
            assert r.code == 0 and (tmp_path / "default" / "n").read_text().strip() == "100000"
        else:
            _one_error(r, "p.yaml:3: the value of parameter 'big' is longer than Linux takes")


@pytest.mark.parametrize("where", ["recipe", "profile"])
def test_a_git_url_git_would_read_as_an_option_is_refused_at_its_line(hit, tmp_path, where):
    """`git: "-uhttps://x/--upload-pack=touch MARK"`: git clone read it as `-u` (upload-pack,
    a command); refused at its line before anything runs (the fourth trial)."""
    mark = tmp_path / "MARK"
    url = f"-uhttps://x/--upload-pack=touch {mark}"
    commit = "a" * 40
    source = f'sources:\n  - git: "{url}"\n    commit: {commit}\n' if where == "recipe" else ""
    write_recipe(tmp_path / "pkgs", "p", GOOD + source)
    if where == "recipe":
        profile, said = "package_dirs: [pkgs]\npackages: [p]\n", "p.yaml:5: "
    else:
        profile = f'package_dirs: [pkgs]\npackages:\n  p:\n    git: "{url}"\n    commit: {commit}\n'
        said = "default.yaml:4: "
    write_profile(tmp_path / "default.yaml", profile)
    r = hit("build", cwd=tmp_path, check=False)
    _one_error(r, said + "git repository", "starts with -, which git would read as an option")
    assert not mark.exists()


def test_a_missing_externals_file_in_a_block_list_is_said_at_its_item(tmp_path):
    site = _small_site(tmp_path, "stacks:\n  s:\n    compiler: gcc-12\n    packages: [a]\n")
    (tmp_path / "here.yaml").write_text("externals: {}\n")
    text = site.read_text().replace(
        "externals:\n", "externals_from:\n  - here.yaml\n  - nosuch.yaml\nexternals:\n", 1
    )
    site.write_text(text)
    r = run_hdmod("build", str(site), check=False)
    assert r.returncode == 1 and f"{site}:5: nosuch.yaml (" in r.stderr, r.stderr
    (tmp_path / "there.yaml").symlink_to("here.yaml")  # the same file by a link
    site.write_text(text.replace("nosuch.yaml", "there.yaml"))
    r = run_hdmod("build", str(site), check=False)
    said = f"{site}:5: externals_from: file 'there.yaml' is listed twice"
    assert r.returncode == 1 and said in r.stderr, r.stderr


@pytest.mark.parametrize(
    "command", ["/usr/bin/gcc-12; touch X", "/usr/bin/gcc\\n", "-v"], ids=["shell", "nl", "option"]
)
def test_an_external_command_that_is_not_one_word_is_said_at_its_line(hit, tmp_path, command):
    """`commands: {cc: "/usr/bin/gcc-12; touch X"}` was run as one word and said `command not
    found` with no place (the fourth trial); a line break split that message."""
    write_recipe(tmp_path / "pkgs", "a", GOOD)
    write_profile(
        tmp_path / "default.yaml",
        "package_dirs: [pkgs]\npackages: [a]\nexternals:\n  cc1:\n"
        f'    kind: compiler\n    commands: {{cc: "{command}"}}\ntoolchain: {{compiler: cc1}}\n',
    )
    r = hit("build", cwd=tmp_path, check=False)
    _one_error(r, "default.yaml:6: command 'cc'")
    assert not (tmp_path / "X").exists()


@pytest.mark.parametrize("root", ['"r\\x1b"', '"r\\a"', '""'], ids=["esc", "bel", "empty"])
def test_a_site_root_with_a_control_character_or_empty_is_refused(tmp_path, root):
    """`root: "r\\x1b"` was accepted and printed raw on the terminal; `root: ""` made the
    folder of site.yaml the store (the second trial). Refused at the root: line, before
    anything is made; `--root ""` is a usage error (it made the current folder the root)."""
    site = tmp_path / "site.yaml"
    site.write_text(
        f"root: {root}\npackage_dirs: []\nstacks:\n  s: {{compiler: gcc, packages: []}}\n"
    )
    r = run_hdmod("build", str(site), check=False)
    assert r.returncode == 1 and f"{site}:1: " in r.stderr and "Traceback" not in r.stderr
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr, repr(r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.yaml"]
    site.write_text("package_dirs: []\nstacks:\n  s: {compiler: gcc, packages: []}\n")
    r = run_hdmod("build", str(site), "--root", "", check=False, cwd=tmp_path)
    assert r.returncode == 2 and "give a folder, not an empty string" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.yaml"]


def test_externals_detect_names_the_file_it_could_not_write_and_escapes_it(hit, tmp_path):
    """`--write nodir/x.yaml` named the temporary file (`nodir/.x.yaml.<pid>...tmp`), and
    `wrote e<ESC>.yaml` went raw to the terminal (the second trial)."""
    r = hit("externals", "detect", "--write", "nodir/x.yaml", cwd=tmp_path, check=False)
    assert r.code == 1 and "No such file or directory: nodir/x.yaml\n" in r.err, r.err
    r = hit("externals", "detect", "--write", "e\x1b.yaml", cwd=tmp_path)
    assert "wrote e\\x1b.yaml" in r.err and "\x1b" not in r.err, repr(r.err)


def test_a_site_s_group_externals_folder_or_root_option_is_said_where_it_is_given(tmp_path):
    """The second trial: a group that does not exist failed when the store was made, an
    externals_from: folder with `cannot read`, `--root` with whitespace named site.yaml
    without a line; each now at its line, or as the option."""
    site = _small_site(
        tmp_path,
        "stacks:\n  s:\n    compiler: gcc-12\n    packages: [a]\nmodules:\n  externals: [gcc-12]\n",
    )
    text = site.read_text()
    (tmp_path / "exts").mkdir()
    cases = [
        (text + "permissions:\n  group: nosuchgroup\n", [], "13: group 'nosuchgroup' is no group"),
        (text.replace("externals:\n", "externals_from: [exts]\nexternals:\n", 1), [],
         "3: exts (" + str(tmp_path / "exts") + ") is not a file"),
        (text, ["--root", str(tmp_path / "a b")], "--root " + str(tmp_path / "a b") + " holds"),
    ]  # fmt: skip
    for body, args, said in cases:
        site.write_text(body)
        r = run_hdmod("build", str(site), *args, check=False)
        assert r.returncode == 1 and said in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "r" / "bld").exists()


@pytest.mark.parametrize(
    "text, seconds",
    [("2-12:00:00", 216000), ("02:00:00", 7200), ("90:30", 5430), ("1-6", 108000), ("45m", 2700)],
)
def test_durations_take_slurm_s_own_forms(text, seconds):
    from hdmodules.durations import parse_duration

    assert parse_duration(text) == seconds


def test_a_slurm_time_in_config_is_said_at_its_line_and_slurm_s_form_is_taken(hit, home, demo):
    """`slurm: {time: "02:00:00"}` (Slurm's own form) was refused without a line, and the
    refusal stopped `hit status` too (the third trial): it is taken; a wrong one is said at
    its line."""
    hit("init-home")
    (home / "config.yaml").write_text('store: bld\nslurm:\n  time: "02:00:00"\n')
    assert hit("status", cwd=demo).code == 0
    (home / "config.yaml").write_text('store: bld\nslurm:\n  time: "2 hours"\n')
    _one_error(hit("status", cwd=demo, check=False), "config.yaml:3: slurm time '2 hours': give")


@pytest.mark.parametrize("name", ["a:b", "a\x1bb"], ids=["colon", "esc"])
def test_a_home_whose_store_lists_would_split_is_refused(tmp_path, name):
    """HIT_HOME with `:` was taken, and every build with a dependency then failed its
    library check (RUNPATH and LD_RUN_PATH split at `:`; the third trial). (A space is
    taken: test_python_stacks builds through one.)"""
    env = {**os.environ, "HIT_HOME": str(tmp_path / name)}
    write_recipe(tmp_path / "pkgs", "a", GOOD)
    write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [a]\n")
    r = subprocess.run(
        [sys.executable, "-m", "hdmodules.cli.hit", "build"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 1 and "/bld holds `:` or a control character" in r.stderr, r.stderr


def test_a_site_root_with_a_colon_or_a_tilde_is_refused(tmp_path):
    site = tmp_path / "site.yaml"
    for root, said in (("r:x", "holds `:`"), ("~/x", "~ is not expanded here")):
        site.write_text(
            f"root: '{root}'\npackage_dirs: []\nstacks:\n  s: {{compiler: gcc, packages: []}}\n"
        )
        r = run_hdmod("build", str(site), check=False)
        assert r.returncode == 1 and f"{site}:1: " in r.stderr and said in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.yaml"]
