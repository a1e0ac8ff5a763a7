"""Half of a module tree's work in a forked child (publish/forked.py, issue 18): what the
child returns or raises comes back whole, a child that dies is an error, and a tree rendered
and written in two processes is, byte for byte and mode for mode, the tree written in one;
the real Lmod and Environment Modules list it."""

from __future__ import annotations

import errno
import os
import signal
import threading
from pathlib import Path

import pytest

from hdmodules.errors import HitError
from hdmodules.publish import forked, moduletree
from hdmodules.publish.compiling import Wrapper, wrapper_folder
from hdmodules.publish.modulefiles import Entry
from hdmodules.publish.moduletree import render_tree, write_tree
from hdmodules.spec.site import ModuleConfig, Site
from tests.module_tools import avail


def _answer(n: int) -> dict:
    return {"pid": os.getpid(), "files": {f"f{i}": bytes([i % 256]) * i for i in range(n)}}


def _fail(kind: str) -> None:
    if kind == "hit":
        raise HitError("tcl/Core/app/1.0: the child's own words")
    if kind == "os":
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/gone/folder")
    os.kill(os.getpid(), signal.SIGKILL)


def test_the_child_answers_what_the_function_returned():
    child = forked.start(_answer, 3000)  # a few MB: more than a pipe holds
    got = child.result()
    assert got["pid"] != os.getpid()  # it ran in another process
    assert got["files"] == _answer(3000)["files"]


def test_what_the_child_raised_comes_back():
    with pytest.raises(HitError, match="the child's own words"):
        forked.start(_fail, "hit").result()
    with pytest.raises(OSError) as e:
        forked.start(_fail, "os").result()
    assert (e.value.errno, e.value.filename) == (errno.ENOENT, "/gone/folder")
    with pytest.raises(HitError, match="signal 9"):
        forked.start(_fail, "kill").result()


def _interrupted_answer() -> int:
    os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C to the process group, once it runs
    return 7


def test_a_signal_hdmod_ignores_the_child_ignores_too():
    """hdmod started with SIGINT ignored (a background job of a script, as a shell starts
    it): a Ctrl-C reaching the whole process group neither stops hdmod nor its forked
    child, which answers as usual (instead of dying, so that hdmod fails)."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert forked.start(_interrupted_answer).result() == 7
    finally:
        signal.signal(signal.SIGINT, before)


def test_no_fork_while_another_thread_runs():
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert forked.start(_answer, 1).result()["pid"] == os.getpid()
    finally:
        stop.set()
        other.join()


def test_a_cancelled_child_is_reaped():
    child = forked.start(stop_forever)
    assert child.pid is not None
    child.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)  # gone, not even a zombie


def stop_forever() -> None:
    signal.pause()


def _entries() -> list[Entry]:
    """A compiler with its wrappers and the level it opens, packages there (one hidden, two
    versions of one name), and a ghost."""
    gcc = Entry(
        "compiler", "gcc", "12.2.0", ("Core",), family="compiler",
        modulepath=("Compiler", "gcc", "12.2.0"), setenv=[("CC", "/usr/bin/gcc-12")],
        wrappers=[Wrapper("gcc", "/usr/bin/gcc-12", "wrappers/compiler.sh")],
        wrapper_dir=wrapper_folder("gcc", "12.2.0"),
    )  # fmt: skip
    level = ("Compiler", "gcc", "12.2.0")
    out = [gcc]
    for i in range(40):
        name = f"p{i:02d}"
        e = Entry("package", name, "1.0", level, description=f"package {i}", hidden=i == 3)
        e.artifact_id, e.prefix = f"{name}/" + "a" * 32, f"/store/{name}"
        e.parents, e.prepend = ["gcc/12.2.0"], [("PATH", f"/store/{name}/bin")]
        out.append(e)
    out.append(Entry("package", "p00", "2.0", level, parents=["gcc/12.2.0"]))
    out.append(Entry("ghost", "gone", "0.9", level, hidden=True))
    return out


def _contents(link: Path) -> dict[str, tuple[int, bytes]]:
    tree = link.resolve()
    return {
        str(p.relative_to(tree)): (p.lstat().st_mode, b"" if p.is_dir() else p.read_bytes())
        for p in sorted(tree.rglob("*"))
    }


def _remove(site: Site) -> None:
    trees = moduletree.trees_folder(site.modules.path)
    for folder, _dirs, _files in os.walk(trees):
        os.chmod(folder, 0o755)
    for folder, dirs, files in os.walk(trees, topdown=False):
        for name in files:
            os.unlink(os.path.join(folder, name))
        for name in dirs:
            os.rmdir(os.path.join(folder, name))
    os.rmdir(trees)
    site.modules.path.unlink()


def test_a_tree_made_in_two_processes_is_the_tree_made_in_one(tools, tmp_path, monkeypatch):
    site = Site(tmp_path / "site.yaml", tmp_path, (), {}, ModuleConfig(tmp_path / "modules"))
    entries = _entries()
    monkeypatch.setattr(moduletree, "FORK_FROM", 10**9)
    alone = render_tree(site, entries)
    one, _ = write_tree(site, alone)
    in_one = _contents(site.modules.path)
    _remove(site)
    forks = []
    real_fork = os.fork

    def counted_fork() -> int:
        pid = real_fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(moduletree, "FORK_FROM", 1)
    monkeypatch.setattr(os, "fork", counted_fork)
    files = render_tree(site, entries)
    two, _ = write_tree(site, files)
    monkeypatch.undo()
    assert len(forks) == 2  # one to render, one to write the Tcl tree
    assert files == alone and two.name == one.name  # the id is the content's
    assert _contents(site.modules.path) == in_one
    level = site.modules.path / "{}" / "Compiler" / "gcc" / "12.2.0"
    for tool in ("lmod", "tcl"):
        listed = avail(tool, [Path(str(level).format(tool))])
        assert "p01/1.0" in listed and "p00/2.0" in listed and "p03/1.0" not in listed
