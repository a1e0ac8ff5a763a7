"""Tests for hdmodules.elf: real gcc-linked binaries in tmp_path, plus hand-made ELF bytes."""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from hdmodules.elf import (
    DynamicInfo,
    LinkProblem,
    check_artifact,
    host_search_dirs,
    is_allowed,
    read_dynamic,
)
from hdmodules.store.home import BASE_HOST_LIBS

BASE = BASE_HOST_LIBS

# without gcc these tests skip, except under CI=true, where a missing gcc must fail them
pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None and os.environ.get("CI") != "true", reason="gcc is required"
)


def gcc(*args: str | Path, cwd: Path | None = None) -> None:
    subprocess.run(["gcc", *map(str, args)], check=True, cwd=cwd, capture_output=True)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_lib(libdir: Path, name: str = "foo", version: str = "1") -> Path:
    """libNAME.so.VERSION with that soname, plus the libNAME.so dev symlink."""
    src = write(libdir.parent / "src" / f"{name}.c", f"int {name}(void) {{ return 7; }}\n")
    libdir.mkdir(parents=True, exist_ok=True)
    real = libdir / f"lib{name}.so.{version}"
    gcc("-shared", "-fPIC", f"-Wl,-soname,lib{name}.so.{version}", "-o", real, src)
    (libdir / f"lib{name}.so").symlink_to(real.name)
    return real


def make_app(out: Path, *link_args: str | Path, func: str = "foo") -> Path:
    src = write(
        out.parent / "src" / "app.c",
        f"int {func}(void);\nint main(void) {{ return {func}() != 7; }}\n",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    gcc("-o", out, src, *link_args)
    return out


def make_elf(
    needed: tuple[str, ...] = (),
    runpath: str | None = None,
    rpath: str | None = None,
    soname: str | None = None,
    is64: bool = True,
    little: bool = True,
    machine: int = 62,
) -> bytes:
    """A minimal ET_DYN: one PT_LOAD covering the file, one PT_DYNAMIC, then the string table."""
    end = "<" if little else ">"
    strtab = bytearray(b"\0")

    def add(text: str) -> int:
        strtab.extend(text.encode() + b"\0")
        return len(strtab) - len(text) - 1

    dyn = [(1, add(n)) for n in needed]
    for tag, value in ((29, runpath), (15, rpath), (14, soname)):
        if value is not None:
            dyn.append((tag, add(value)))
    ehsize, phentsize, base = (64, 56, 0x400000) if is64 else (52, 32, 0x8000)
    dyn_fmt = end + ("qQ" if is64 else "iI")
    dyn_off = ehsize + 2 * phentsize
    str_off = dyn_off + (len(dyn) + 3) * struct.calcsize(dyn_fmt)
    dyn += [(5, base + str_off), (10, len(strtab)), (0, 0)]
    total = str_off + len(strtab)
    dyn_size = len(dyn) * struct.calcsize(dyn_fmt)
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1 if little else 2, 1]) + bytes(9)
    if is64:
        hdr = struct.pack(
            end + "HHIQQQIHHHHHH", 3, machine, 1, 0, ehsize, 0, 0, ehsize, phentsize, 2, 0, 0, 0
        )
        load = struct.pack(end + "IIQQQQQQ", 1, 4, 0, base, base, total, total, 0x1000)
        dynamic = struct.pack(
            end + "IIQQQQQQ", 2, 6, dyn_off, base + dyn_off, 0, dyn_size, dyn_size, 8
        )
    else:
        hdr = struct.pack(
            end + "HHIIIIIHHHHHH", 3, machine, 1, 0, ehsize, 0, 0, ehsize, phentsize, 2, 0, 0, 0
        )
        load = struct.pack(end + "IIIIIIII", 1, 0, base, base, total, total, 4, 0x1000)
        dynamic = struct.pack(
            end + "IIIIIIII", 2, dyn_off, base + dyn_off, 0, dyn_size, dyn_size, 6, 4
        )
    body = b"".join(struct.pack(dyn_fmt, t, v) for t, v in dyn)
    data = ident + hdr + load + dynamic + body + bytes(strtab)
    assert len(data) == total
    return data


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- real binaries -----------------------------------------------------------------


def test_lib_and_app_in_one_prefix(tmp_path: Path) -> None:
    prefix = tmp_path / "pkg"
    lib = make_lib(prefix / "lib")
    app = make_app(
        prefix / "bin" / "app", "-L", prefix / "lib", "-lfoo", f"-Wl,-rpath,{prefix / 'lib'}"
    )

    info = read_dynamic(app)
    assert info is not None
    assert info.needed[:2] == ["libfoo.so.1", "libc.so.6"]
    assert info.runpath == [str(prefix / "lib")]  # Debian's ld writes DT_RUNPATH by default
    assert info.rpath == []
    assert info.soname is None
    lib_info = read_dynamic(lib)
    assert lib_info is not None and lib_info.soname == "libfoo.so.1"

    assert check_artifact(prefix, [], BASE) == []


def test_dependency_prefix_declared_or_leaked(tmp_path: Path) -> None:
    a, b = tmp_path / "store" / "a", tmp_path / "store" / "b"
    make_lib(b / "lib")
    app = make_app(a / "bin" / "app", "-L", b / "lib", "-lfoo", f"-Wl,-rpath,{b / 'lib'}")

    assert check_artifact(a, [b], BASE) == []

    problems = check_artifact(a, [], BASE)
    assert problems == [
        LinkProblem(app, "libfoo.so.1", "leak", b / "lib" / "libfoo.so.1", (str(b / "lib"),))
    ]
    message = problems[0].message(a)
    assert message.startswith("bin/app needs libfoo.so.1: found at ")
    assert str(b / "lib" / "libfoo.so.1") in message and "\n" not in message


def test_dependency_reached_through_symlinked_prefix(tmp_path: Path) -> None:
    """Dependencies are compared by real path, whichever spelling the RUNPATH uses."""
    real_b, link_b, a = tmp_path / "real-b", tmp_path / "b", tmp_path / "a"
    make_lib(real_b / "lib")
    link_b.symlink_to(real_b)
    make_app(a / "bin" / "app", "-L", link_b / "lib", "-lfoo", f"-Wl,-rpath,{link_b / 'lib'}")
    assert check_artifact(a, [real_b], BASE) == []
    assert check_artifact(a, [link_b], BASE) == []


def test_host_library_leaks_unless_allowed(tmp_path: Path) -> None:
    prefix = tmp_path / "pkg"
    link_args: list[str | Path] = ["-lz"]
    if not Path("/usr/lib/x86_64-linux-gnu/libz.so").exists():  # no zlib1g-dev: link via a stand-in
        host_z = next(
            Path(d) / "libz.so.1" for d in host_search_dirs() if (Path(d) / "libz.so.1").exists()
        )
        (tmp_path / "devlink").mkdir()
        (tmp_path / "devlink" / "libz.so").symlink_to(host_z)
        link_args = ["-L", tmp_path / "devlink", "-lz"]
    app = make_app(prefix / "bin" / "app", *link_args, func="zlibVersion")
    assert "libz.so.1" in read_dynamic(app).needed  # type: ignore[union-attr]

    problems = check_artifact(prefix, [], BASE)
    assert [(p.file, p.library, p.kind) for p in problems] == [(app, "libz.so.1", "leak")]
    found = problems[0].found_at
    assert found is not None and str(found.parent) in host_search_dirs()
    assert problems[0].message(prefix) == (
        f"bin/app needs libz.so.1: found on the host at {found}, which is not a declared dependency"
        " (declare it, or allow it with allow_host_libs: [libz.so.1])"
    )

    for entry in ("libz.so.1", "libz", "libz.so"):
        assert check_artifact(prefix, [], BASE | {entry}) == []
    assert len(check_artifact(prefix, [], BASE | {"libz.so.2", "libzstd"})) == 1


def test_deleted_library_is_unresolved(tmp_path: Path) -> None:
    prefix = tmp_path / "pkg"
    lib = make_lib(tmp_path / "gone" / "lib")
    app = make_app(prefix / "bin" / "app", "-L", lib.parent, "-lfoo", f"-Wl,-rpath,{lib.parent}")
    shutil.rmtree(lib.parent)

    problems = check_artifact(prefix, [], BASE)
    assert problems == [LinkProblem(app, "libfoo.so.1", "unresolved", None, (str(lib.parent),))]
    assert problems[0].message(prefix) == (
        f"bin/app needs libfoo.so.1: not found in its RUNPATH ({lib.parent}) nor on the host"
    )


def test_lib_in_prefix_without_runpath_is_unresolved(tmp_path: Path) -> None:
    """ld.so would not find it at run time, so neither do we."""
    prefix = tmp_path / "pkg"
    make_lib(prefix / "lib")
    make_app(prefix / "bin" / "app", "-L", prefix / "lib", "-lfoo")
    [problem] = check_artifact(prefix, [], BASE)
    assert problem.kind == "unresolved"
    assert (
        problem.message(prefix)
        == "bin/app needs libfoo.so.1: not found in its RUNPATH (none) nor on the host"
    )


@pytest.mark.parametrize("token", ["$ORIGIN", "${ORIGIN}"])
def test_origin_runpath(tmp_path: Path, token: str) -> None:
    prefix = tmp_path / "pkg"
    make_lib(prefix / "lib")
    app = make_app(
        prefix / "bin" / "app", "-L", prefix / "lib", "-lfoo", f"-Wl,-rpath,{token}/../lib"
    )
    assert read_dynamic(app).runpath == [f"{token}/../lib"]  # type: ignore[union-attr]
    assert check_artifact(prefix, [], BASE) == []
    moved = tmp_path / "elsewhere"
    prefix.rename(moved)  # relocatable: still fine after a move
    assert check_artifact(moved, [], BASE) == []
    assert subprocess.run([moved / "bin" / "app"]).returncode == 0


def test_metadata_folder_symlinks_and_skip(tmp_path: Path) -> None:
    prefix = tmp_path / "pkg"
    lib = make_lib(tmp_path / "gone" / "lib")
    app = make_app(prefix / ".hit" / "probe", "-L", lib.parent, "-lfoo", f"-Wl,-rpath,{lib.parent}")
    shutil.copy(app, prefix / "tool")
    (prefix / "bin").mkdir()
    (prefix / "bin" / "tool-link").symlink_to("../tool")
    os.link(prefix / "tool", prefix / "bin" / "tool-hardlink")
    shutil.rmtree(lib.parent)

    # .hit is skipped, the symlink too, and the hard link is the same file as ./tool
    assert [p.file for p in check_artifact(prefix, [], BASE)] == [prefix / "tool"]
    assert check_artifact(prefix, [], BASE, skip=lambda rel: rel.name.startswith("tool")) == []
    seen: list[Path] = []
    check_artifact(prefix, [], BASE, skip=lambda rel: seen.append(rel) or False)
    assert seen == [Path("tool")]


def test_files_that_are_not_dynamic_elf(tmp_path: Path) -> None:
    prefix = tmp_path / "pkg"
    real = make_app(
        tmp_path / "build" / "app", "-L", make_lib(tmp_path / "build" / "lib").parent, "-lfoo"
    )
    data = real.read_bytes()
    cases = {
        "empty": b"",
        "text.txt": b"hello\n",
        "script.sh": b"#!/bin/sh\necho hi\n",
        "magic-only": b"\x7fELF",
        "truncated": data[:100],
        "garbage": b"\x7fELF" + random.Random(1).randbytes(4000),
        "huge-counts": b"\x7fELF\x02\x01\x01" + bytes(9) + b"\xff" * 48,
    }
    for name, content in cases.items():
        put(prefix / "junk" / name, content)
        assert read_dynamic(prefix / "junk" / name) is None, name
    gcc(
        "-c",
        "-o",
        prefix / "junk" / "obj.o",
        write(tmp_path / "src" / "o.c", "int x(void) { return 1; }\n"),
    )
    assert read_dynamic(prefix / "junk" / "obj.o") is None
    os.mkfifo(prefix / "junk" / "fifo")  # must not block
    (prefix / "junk" / "dangling").symlink_to("/nonexistent/file")
    if Path("/usr/lib/x86_64-linux-gnu/libc.a").exists():
        static = make_app(
            prefix / "bin" / "static",
            "-static",
            write(tmp_path / "s.c", "int foo(void) { return 7; }\n"),
        )
        assert read_dynamic(static) is None
    assert check_artifact(prefix, [], BASE) == []


def test_corrupted_real_elf_never_raises(tmp_path: Path) -> None:
    real = make_app(
        tmp_path / "build" / "app", "-L", make_lib(tmp_path / "build" / "lib").parent, "-lfoo"
    )
    data = real.read_bytes()
    target = tmp_path / "pkg" / "bin" / "app"
    rng = random.Random(42)
    for size in range(0, 0x3000, 97):
        put(target, data[:size])
        read_dynamic(target)
    for _ in range(300):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            pos = (
                rng.randrange(0x40) if rng.random() < 0.3 else rng.randrange(min(len(data), 0x3100))
            )
            mutated[pos] = rng.randrange(256)
        put(target, bytes(mutated))
        result = read_dynamic(target)
        assert result is None or isinstance(result, DynamicInfo)
        for problem in check_artifact(target.parent.parent, [], BASE):
            problem.message(target.parent.parent)


# --- hand-made ELF ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("is64", "little"), [(True, True), (True, False), (False, True), (False, False)]
)
def test_parse_all_classes_and_byte_orders(tmp_path: Path, is64: bool, little: bool) -> None:
    path = put(
        tmp_path / "f.so",
        make_elf(
            ("liba.so.1", "libb.so"),
            runpath="/x:$ORIGIN/y",
            rpath="/r",
            soname="libf.so.2",
            is64=is64,
            little=little,
        ),
    )
    assert read_dynamic(path) == DynamicInfo(
        ["liba.so.1", "libb.so"], ["/x", "$ORIGIN/y"], ["/r"], "libf.so.2"
    )


def test_foreign_machine_is_skipped(tmp_path: Path) -> None:
    prefix = tmp_path / "pkg"
    put(
        prefix / "lib" / "ppc.so", make_elf(("libnope.so.9",), is64=False, little=False, machine=20)
    )
    put(prefix / "lib" / "aarch64.so", make_elf(("libnope.so.9",), machine=183))
    assert read_dynamic(prefix / "lib" / "ppc.so").needed == ["libnope.so.9"]  # type: ignore[union-attr]
    assert check_artifact(prefix, [], BASE) == []
    put(prefix / "lib" / "native.so", make_elf(("libnope.so.9",)))
    assert [p.kind for p in check_artifact(prefix, [], BASE)] == ["unresolved"]


def test_allowed_missing_base_library_is_fine(tmp_path: Path) -> None:
    put(tmp_path / "pkg" / "a.so", make_elf(("libmissing-base.so.3",)))
    assert check_artifact(tmp_path / "pkg", [], BASE | {"libmissing-base.so.3"}) == []
    assert [p.kind for p in check_artifact(tmp_path / "pkg", [], BASE)] == ["unresolved"]


def test_rpath_used_only_without_runpath(tmp_path: Path) -> None:
    prefix = tmp_path / "pkg"
    make_lib(prefix / "lib")
    put(prefix / "rpath.so", make_elf(("libfoo.so.1",), rpath="${ORIGIN}/lib"))
    put(prefix / "both.so", make_elf(("libfoo.so.1",), runpath="/nonexistent", rpath="$ORIGIN/lib"))
    assert [(p.file.name, p.kind) for p in check_artifact(prefix, [], BASE)] == [
        ("both.so", "unresolved")
    ]


def test_runpath_into_host_dir(tmp_path: Path) -> None:
    hostdir = "/usr/lib/x86_64-linux-gnu"
    put(tmp_path / "pkg" / "a.so", make_elf(("libc.so.6", "libz.so.1"), runpath=hostdir))
    [problem] = check_artifact(tmp_path / "pkg", [], BASE)
    assert (problem.library, problem.kind, problem.found_at) == (
        "libz.so.1",
        "leak",
        Path(hostdir, "libz.so.1"),
    )
    assert "found on the host at" in problem.message(tmp_path / "pkg")


def test_needed_given_as_path(tmp_path: Path) -> None:
    prefix = tmp_path / "pkg"
    lib = make_lib(prefix / "lib")
    put(prefix / "ok.so", make_elf((str(lib),)))
    put(prefix / "bad.so", make_elf(("/nonexistent/libx.so.1",)))
    problems = check_artifact(prefix, [], BASE)
    assert [(p.file.name, p.kind) for p in problems] == [("bad.so", "unresolved")]


def test_is_allowed_rule() -> None:
    assert is_allowed("libz.so.1", {"libz"})
    assert is_allowed("libz.so.1", {"libz.so"})
    assert is_allowed("libz.so.1", {"libz.so.1"})
    assert not is_allowed("libz.so.1", {"libz.so.2"})
    assert not is_allowed("libzstd.so.1", {"libz"})
    assert is_allowed("libstdc++.so.6", BASE)
    assert is_allowed("/lib64/ld-linux-x86-64.so.2", BASE)


def test_host_search_dirs(tmp_path: Path) -> None:
    dirs = host_search_dirs()
    assert set(dirs) >= {
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    }
    assert dirs.index("/lib") < dirs.index("/usr/lib") and host_search_dirs() is dirs  # cached
    conf = write(
        tmp_path / "ld.so.conf", "# comment\n/opt/first\ninclude conf.d/*.conf\nhwcap 0 nosegneg\n"
    )
    write(tmp_path / "conf.d" / "b.conf", "/opt/b  # trailing\n")
    write(tmp_path / "conf.d" / "a.conf", "/opt/a\n/usr/lib\nrelative/ignored\n")
    assert host_search_dirs(str(conf)) == (
        "/opt/first",
        "/opt/a",
        "/usr/lib",
        "/opt/b",
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
    )
