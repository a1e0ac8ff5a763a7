"""Release files of Python packages for the tests, and a package index serving them.

The files are downloaded once, by their sha256 from the package index pip is configured
with (hit's own `pypi:` fetch, build/pypi.py: `pip download` of an sdist would build its
metadata first, for NumPy minutes of compiling), into HDMOD_PYPI (default
~/.cache/hdmodules/pypi; only when the tests may set the machine up, else the test is
skipped), checked against their sha256, and served over HTTP on 127.0.0.1 as a PEP 503
simple index: hit finds each `pypi:` source there through PIP_INDEX_URL, as it would on
the real index."""

from __future__ import annotations

import http.server
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hdmodules.atomic import write_atomic
from hdmodules.build.pypi import fetch_pypi
from hdmodules.build.sources import FetchFailed
from hdmodules.hashing import sha256_file
from hdmodules.spec.pythonenv import project_name
from tests.conftest import HOST_SETUP, need

PYPI = Path(os.environ.get("HDMOD_PYPI", Path.home() / ".cache" / "hdmodules" / "pypi"))


@dataclass(frozen=True)
class Dist:
    requirement: str  # name==version
    file: str
    sha256: str


DISTS = {
    "setuptools": Dist(
        "setuptools==69.5.1",
        "setuptools-69.5.1-py3-none-any.whl",
        "c636ac361bc47580504644275c9ad802c50415c7522212252c033bd15f301f32",
    ),
    "wheel": Dist(
        "wheel==0.43.0",
        "wheel-0.43.0-py3-none-any.whl",
        "55c570405f142630c6b9f72fe09d9b67cf1477fcf543ae5b8dcb1f5b7377da81",
    ),
    "flit-core": Dist(
        "flit-core==3.9.0",
        "flit_core-3.9.0-py3-none-any.whl",
        "7aada352fb0c7f5538c4fafeddf314d3a6a92ee8e2b1de70482329e42de70301",
    ),
    "markupsafe": Dist(
        "markupsafe==2.1.5",
        "MarkupSafe-2.1.5.tar.gz",
        "d283d37a890ba4c1ae73ffadf8046435c76e7bc2247bbb63c00bd1a709c6544b",
    ),
    "jinja2": Dist(
        "jinja2==3.1.4",
        "jinja2-3.1.4-py3-none-any.whl",
        "bc5dd2abb727a5319567b7a813e6a2e7318c39f4f487cfe6c89c6f9c7d25197d",
    ),
    "pygments": Dist(
        "pygments==2.18.0",
        "pygments-2.18.0-py3-none-any.whl",
        "b8e6aca0523f3ab76fee51799c488e38782ac06eafcf95e7ba832985c8e7b13a",
    ),
    "numpy": Dist(
        "numpy==1.26.4",
        "numpy-1.26.4.tar.gz",
        "2a02aba9ed12e4ac4eb3ea9421c420301a0c6460d9830d74a9df87efa4912010",
    ),
    "numpy-wheel": Dist(
        "numpy==1.26.4",
        "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "666dbfb6ec68962c033a450943ded891bed2d54e6755e35e5835d63f4f6931d5",
    ),
}


def ensure(names: list[str]) -> list[Dist]:
    """The release files of `names` (keys of DISTS) in PYPI, downloaded when missing and
    the tests may set the machine up (else the test is skipped; under CI a failure); each
    checked against its sha256."""
    out = []
    for name in names:
        dist = DISTS[name]
        file = PYPI / dist.file
        if not file.is_file() and HOST_SETUP:
            with tempfile.TemporaryDirectory() as cache:
                try:
                    got, _where = fetch_pypi(Path(cache), dist.requirement, dist.sha256)
                except FetchFailed as e:
                    print(f"{dist.file}: {e}", file=sys.stderr)
                else:
                    PYPI.mkdir(parents=True, exist_ok=True)
                    write_atomic(file, got.read_bytes())
        need(file.is_file(), f"{dist.file} in {PYPI} (tests/pypi_index.py downloads it)")
        assert sha256_file(file) == dist.sha256, f"{file}: not the release file pinned here"
        out.append(dist)
    return out


def project(requirement: str) -> str:
    """The index page name of a requirement's project (PEP 503)."""
    return project_name(requirement.split("==")[0])


class _Handler(http.server.BaseHTTPRequestHandler):
    dists: dict[str, list[Dist]] = {}

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = self.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "simple" and parts[1] in self.dists:
            links = "".join(
                f'<a href="/files/{d.file}#sha256={d.sha256}">{d.file}</a>\n'
                for d in self.dists[parts[1]]
            )
            body = f"<html><body>\n{links}</body></html>\n".encode()
            kind = "text/html"
        elif len(parts) == 2 and parts[0] == "files" and (PYPI / parts[1]).is_file():
            body, kind = (PYPI / parts[1]).read_bytes(), "application/octet-stream"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serve(dists: list[Dist]) -> Iterator[str]:
    """A simple index of `dists` on 127.0.0.1 while the block runs; yields its URL, the
    value for PIP_INDEX_URL."""
    handler = type("Handler", (_Handler,), {"dists": {}})
    for d in dists:
        handler.dists.setdefault(project(d.requirement), []).append(d)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()


def recipe(name: str, version: str, dist: Dist, deps: list[str], extra: str = "") -> str:
    """The text of a `build_system: python` recipe installing `dist`."""
    return (
        f'name: {name}\nversion: "{version}"\nsources:\n  - pypi: {dist.requirement}\n'
        f"    sha256: {dist.sha256}\ndependencies: [{', '.join(deps)}]\n"
        f"build_system: python\n{extra}"
    )
