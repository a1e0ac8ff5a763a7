"""`pypi:` sources: one file of a release on the Python package index, found by its sha256.

A recipe says `- pypi: jinja2==3.1.4` and the sha256 of the one file it means (a wheel or
the sdist), and names no download host: the index is the one pip is configured with
(`pip config`, PIP_INDEX_URL, pip.conf; pip's own default otherwise), so a site's index
mirror serves its builds. The file is found on the index's project page (the simple
repository API of PEP 503/691, which lists every file with its sha256) and downloaded like
any URL source, into the cache under its sha256; mirrors holding `sha256/<hex>` are tried
first. `pip download` itself is not used: for an sdist it builds the package's metadata
first (for NumPy minutes of compiling, and a network fetch of its build requirements).

A cached wheel goes into the build folder as a file named as pip requires
(pydist.wheel_name, from the wheel's own metadata), an sdist is unpacked like any archive.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from ..errors import HitError
from ..runner import query
from ..spec.pythonenv import project_name
from .sources import TIMEOUT, FetchFailed, cache_file, failure_reason, fetch_from

ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
MAX_PAGE = 64 << 20  # bytes of a project page read at most (NumPy's: about 2 MiB)
PIP_TIMEOUT = 60  # seconds for `pip config list`


@cache
def index_urls() -> tuple[str, ...]:
    """The simple-API index URLs pip would use, in order: its configured `index-url` (for
    download, install or global; PIP_INDEX_URL included) and `extra-index-url`s, or pip's own
    default. Raises HitError when pip cannot be asked."""
    if os.environ.get("PIP_INDEX_URL"):  # what pip reads first, even without pip here
        return (os.environ["PIP_INDEX_URL"], *os.environ.get("PIP_EXTRA_INDEX_URL", "").split())
    r = query([sys.executable, "-m", "pip", "config", "list"], timeout=PIP_TIMEOUT)
    settings: dict[str, str] = {}
    for line in r.out.splitlines() if r.code == 0 else []:
        key, _, value = line.partition("=")
        settings[key.strip()] = value.strip().strip("'\"")
    scopes = (":env:", "download", "global")
    main = next((settings[k] for s in scopes if (k := f"{s}.index-url") in settings), None)
    extra = next((settings[k] for s in scopes if (k := f"{s}.extra-index-url") in settings), "")
    if main is None:
        code = "from pip._internal.models.index import PyPI; print(PyPI.simple_url)"
        d = query([sys.executable, "-c", code], timeout=PIP_TIMEOUT)
        if d.code != 0 or not d.out.strip():
            raise HitError("cannot ask pip for its package index: set PIP_INDEX_URL")
        main = d.out.strip()
    return (main, *extra.split())


class _Links(HTMLParser):
    """The `<a href>`s of a PEP 503 project page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def _page_files(page: str, text: str, json_page: bool) -> list[tuple[str, str]]:
    """(absolute URL, sha256) of each file a project page lists with a sha256. Raises
    ValueError for a page that is not one."""
    if json_page:
        doc = json.loads(text)
        files = doc.get("files") if isinstance(doc, dict) else None
        if not isinstance(files, list):
            raise ValueError("not a project page (no list of files)")
        out = []
        for f in files:
            hashes = f.get("hashes") if isinstance(f, dict) else None
            url, sha = (
                (f.get("url"), hashes.get("sha256")) if isinstance(hashes, dict) else ("", "")
            )
            if isinstance(url, str) and isinstance(sha, str) and url:
                out.append((urljoin(page, url), sha))
        return out
    parser = _Links()
    parser.feed(text)
    out = []
    for href in parser.hrefs:
        url, _, fragment = href.partition("#")
        sha = fragment[len("sha256=") :] if fragment.startswith("sha256=") else ""
        out.append((urljoin(page, url), sha))
    return out


def find_url(requirement: str, sha256: str, indexes: tuple[str, ...]) -> str:
    """The URL of the file with `sha256` among the release files the `indexes` list for the
    project of `requirement` (`name==version`). Raises HitError saying what each index
    answered."""
    import urllib.error
    import urllib.request

    project = project_name(requirement.split("==", 1)[0])
    problems = []
    for index in indexes:
        page = f"{index.rstrip('/')}/{project}/"
        request = urllib.request.Request(page, headers={"Accept": ACCEPT})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as r:
                kind = r.headers.get("Content-Type", "")
                data = r.read(MAX_PAGE + 1)
            if len(data) > MAX_PAGE:
                raise ValueError(f"the page is larger than {MAX_PAGE >> 20} MiB")
            files = _page_files(page, data.decode("utf-8", "replace"), "json" in kind)
        except (urllib.error.URLError, OSError, ValueError, RecursionError) as e:
            deep = isinstance(e, RecursionError)
            reason = "not a project page (nested too deep)" if deep else failure_reason(e)
            problems.append(f"{page}: {reason[:300]}")
            continue
        for url, sha in files:
            if sha.lower() != sha256:
                continue
            if urlsplit(url).scheme not in ("http", "https") and urlsplit(page).scheme != "file":
                problems.append(f"{page}: the file is at {url[:200]!r}, not an http(s) URL")
                break
            if not url.isprintable() or any(c.isspace() for c in url):
                problems.append(f"{page}: the file's URL {url[:200]!r} has a space or control")
                break
            return url
        problems.append(f"{page}: no file of {len(files)} listed has sha256 {sha256[:16]}...")
    raise HitError("; ".join(problems) or "no package index")


def fetch_pypi(
    cache_dir: Path,
    requirement: str,
    sha256: str,
    mirrors: tuple[str, ...] = (),
    stop: threading.Event | None = None,
) -> tuple[Path, str]:
    """The file of `requirement` with `sha256` into the cache: each mirror's `sha256/<hex>`,
    then the package index. Returns (its file in the cache, where it came from: "" when
    cached already). Raises FetchFailed naming every place tried, Stopped."""
    cached = cache_file(cache_dir, sha256)
    if cached.exists():
        return cached, ""
    attempts: list[tuple[str, str]] = []
    for mirror in mirrors:
        try:
            return fetch_from(cache_dir, f"{mirror.rstrip('/')}/sha256/{sha256}", sha256, (), stop)
        except FetchFailed as e:
            attempts += e.attempts
    try:
        url = find_url(requirement, sha256, index_urls())
    except HitError as e:
        where = ("the package index", str(e))
        raise FetchFailed(f"pypi: {requirement}", (*attempts, where)) from None
    try:
        return fetch_from(cache_dir, url, sha256, (), stop)
    except FetchFailed as e:
        raise FetchFailed(f"pypi: {requirement}", (*attempts, *e.attempts)) from None
