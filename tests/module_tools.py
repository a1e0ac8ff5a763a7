"""Run the real module tools, Lmod and Environment Modules (Tcl), each in a clean shell.

Both are installed side by side by tests/tools/install-module-tools.sh: Lmod with apt, and
Environment Modules unpacked into ENVMOD_PREFIX (Debian's packages conflict). Each run is
`env -i` bash with only HOME and PATH, so no stale LMOD_*/MODULE* variables leak in, and
HOME is a fresh temp dir unless given, so Lmod never writes a cache into the real HOME.
Note that `module avail/list/spider` print to stderr.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

LMOD_INIT = Path("/usr/share/lmod/lmod/init/bash")
ENVMOD_PREFIX = Path(os.environ.get("HDMOD_ENVMOD_PREFIX", "/opt/envmod"))
ENVMOD_INIT = ENVMOD_PREFIX / "usr/share/modules/init/bash"
INSTALL_SCRIPT = Path(__file__).parent / "tools" / "install-module-tools.sh"
TOOLS = ("lmod", "tcl")

_ENV_MARKER = "__HDMOD_ENV__"
_CLEAN_BASH = ("/bin/bash", "--noprofile", "--norc", "-c")


@dataclass
class ModuleRun:
    code: int
    out: str
    err: str
    env: dict[str, str] = field(default_factory=dict)

    def echoed(self) -> dict[str, str]:
        """The `KEY=value` lines the commands printed (`echo KEY=$VAR`), as a dict."""
        return dict(line.split("=", 1) for line in self.out.splitlines() if "=" in line)


def _init_file(tool: str) -> Path:
    if tool == "lmod":
        return LMOD_INIT
    if tool == "tcl":
        return ENVMOD_INIT
    raise ValueError(f"unknown module tool {tool!r} (expected one of {TOOLS})")


def module_shell(
    tool: str, commands: str, home: Path | None = None, capture_env: bool = True
) -> ModuleRun:
    """Run bash `commands` (using `module ...`) in a clean shell after sourcing the init file.

    The exit code is that of `commands`. With capture_env, the environment left by
    `commands` is returned in .env (only if they succeeded) and .out holds what they printed.
    """
    init = _init_file(tool)
    if home is None:
        with tempfile.TemporaryDirectory(prefix=f"hdmod-{tool}-home-") as tmp:
            return module_shell(tool, commands, Path(tmp), capture_env)
    script = f"source {_quote(init)} || exit 99\n"
    if capture_env:
        script += f"{{\n{commands}\n}} && {{ echo {_ENV_MARKER}; env -0; }}\n"
    else:
        script += commands + "\n"
    proc = subprocess.run(
        ["/usr/bin/env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", *_CLEAN_BASH, script],
        capture_output=True,
        text=True,
        cwd=home,
    )
    out, env = proc.stdout, {}
    if capture_env:
        before, sep, dump = out.partition(f"{_ENV_MARKER}\n")
        if sep:
            out = before
            for item in dump.split("\0"):
                key, eq, value = item.partition("=")
                if eq:
                    env[key] = value
    return ModuleRun(proc.returncode, out, proc.stderr, env)


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"


# In `module -t avail`: markers like "(default)", "<aL>", "(@)" are dropped, directory
# headers end with ':' and Lmod's name-only lines ("foo/") with '/'.
_MARKERS = re.compile(r"\s*(\([^)]*\)|<[^>]*>)")


def avail(tool: str, modulepath: list[Path], home: Path | None = None) -> list[str]:
    """The module names (name/version) `module -t avail` lists with `modulepath` in order."""
    uses = "".join(f"module use --append {_quote(p)}\n" for p in modulepath)
    run = module_shell(tool, uses + "module -t avail", home=home, capture_env=False)
    if run.code != 0:
        raise RuntimeError(f"{tool}: module -t avail failed ({run.code}):\n{run.err}")
    names = []
    for line in run.err.splitlines():
        line = _MARKERS.sub("", line).strip()
        if line and not line.endswith((":", "/")):
            names.append(line)
    return names


@cache
def available(tool: str) -> bool:
    """Whether `tool` ("lmod" or "tcl") is installed and a trivial run works."""
    if not _init_file(tool).is_file():
        return False
    return module_shell(tool, "module --version", capture_env=False).code == 0


def ensure_installed() -> None:
    """Install both tools with install-module-tools.sh unless they already work; only when
    the test run may change the host (tests.conftest.HOST_SETUP), else RuntimeError."""
    from tests.conftest import HOST_SETUP

    if all(available(t) for t in TOOLS):
        return
    if not HOST_SETUP:
        raise RuntimeError("not installed, and this test run may not install them")
    proc = subprocess.run(
        ["bash", str(INSTALL_SCRIPT), str(ENVMOD_PREFIX)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    available.cache_clear()
    if proc.returncode != 0 or not all(available(t) for t in TOOLS):
        raise RuntimeError(f"{INSTALL_SCRIPT} failed ({proc.returncode}):\n{proc.stdout}")
