"""Check the link metadata an artifact installs for hidden host libraries and host folders.

Why: a configure script that finds the host's libxml2 writes `-lxml2` into `netcdf.pc`
(`Libs.private`) and `nc-config --static`; with `--as-needed` the library itself does not
record it in NEEDED, so the ELF check (elf.py) passes, but every consumer that links
statically, or asks pkg-config for the static flags, pulls in the host's library. The check
runs after the install, like the ELF check, rather than hiding the host's development files
during the build: without a container (mount namespace, chroot) nothing keeps the compiler
from searching /usr/include and /usr/lib, and the compiler, libc and the MPI live there too.

What is read (pure Python, no pkg-config or cmake process per file):

- pkg-config files (`*.pc` in a `pkgconfig` folder): `Libs`, `Libs.private`, `Cflags`,
  `Cflags.private` after expanding `${variables}`, and the modules of `Requires` and
  `Requires.private`;
- libtool archives (`*.la`): `dependency_libs`;
- `*-config` shell scripts: the `-l`, `-L`, `-I` words and library paths of every line,
  after expanding the script's own `name=value` assignments;
- CMake package files (`*Config.cmake`, `*-config.cmake`, `*Targets*.cmake`): the items
  of every quoted string (`INTERFACE_LINK_LIBRARIES "m;/usr/lib/.../libz.so"`,
  `set(Foo_INCLUDE_DIRS "...")`), generator expressions unwrapped.

The rules, with `own` = the artifact and its dependencies' prefixes (the store):

- `-lNAME` is looked up as the linker does (`libNAME.so`, then `libNAME.a`, in each folder:
  the file's own `-L` folders, the lib folders of `own`, the toolchain's folders, then the
  host's library folders). Found in `own` or a toolchain folder: fine. Found elsewhere:
  refused unless allowed (`allowed` holds `libNAME`, `libNAME.so` or any `libNAME.so.N`,
  as for the ELF check). Found nowhere: left alone (a consumer's link fails loudly; this
  is how `-lgcc` of the compiler's own folder looks).
- A library file named by its path (`/usr/lib/x86_64-linux-gnu/libz.so`, a `.la`): inside
  `own` or an allowed folder, or its name allowed; otherwise refused.
- `-L`, `-I` and `-isystem` folders must lie inside `own` or inside an allowed folder: an
  entry of `allowed` that starts with `/` (the toolchain's own folders are added that way
  by buildjob, a recipe may add one in `allow_host_libs:`). Relative folders and words
  with unexpanded variables are skipped.
- A `Requires` module found in `own`'s or the toolchain's pkgconfig folders is fine; one
  only the host provides is refused unless every library of its `Libs` is allowed (or,
  when it names none, its module name is); one found nowhere is left alone.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .elf import artifact_files, host_search_dirs, inside

MAX_BYTES = 4 << 20  # larger "metadata" files are not metadata: skipped
MAX_EXPANDED = 1 << 16  # characters a line or value may grow to by variable expansion
# pkg-config's default search path on the host (Debian's multiarch one, then the usual ones)
HOST_PC_DIRS = tuple(
    f"{d}/pkgconfig"
    for d in (
        "/usr/local/lib/x86_64-linux-gnu",
        "/usr/local/lib",
        "/usr/local/share",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/share",
    )
)
_VAR = re.compile(r"\$\{([A-Za-z0-9_.]+)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_PC_LINE = re.compile(r"^([A-Za-z0-9_.]+)\s*([=:])\s*(.*)$")
_SH_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_LIBFILE = re.compile(r"^(lib.+?)\.(?:so(?:\.[0-9][0-9.]*)?|a|la)$")
_STOP = "\\s\"'`;|&()<>"  # what ends a word in a shell line
_SH_FLAG = re.compile(rf"(?<![^{_STOP}=])(-(?:l|L|I)[^{_STOP}]+)")
_SH_PATH = re.compile(
    rf"(?<![^{_STOP}=:])(/[^{_STOP}:]{{0,1024}}/lib[^{_STOP}:/]{{0,255}}\.(?:so[0-9.]*|a|la))"
)  # bounded: a long line without spaces must not make this quadratic
_CASE_PATTERN = re.compile(r"^\s*[^\s()=\"'][^()=\"']*\)")  # `-I/usr/include|-I/x) ;;`
_CMAKE_STRING = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s+"((?:[^"\\]|\\.)*)"')
_PC_FIELDS = ("Libs", "Libs.private", "Cflags", "Cflags.private")
_VERSION_OPS = {"=", "==", "!=", "<", "<=", ">", ">="}


@dataclass(frozen=True)
class Word:
    """One thing a metadata file names: `text` as written after expansion (`-lxml2`,
    `-I/usr/include/libxml2`, `/usr/lib/x86_64-linux-gnu/libz.so`, `libxml-2.0`), `kind`
    "lib" (`-l` name, `value` the NAME or `:file`), "path" (a library file, `value` its
    path), "dir" (a `-L`/`-I` folder, `value` the folder) or "module" (a pkg-config module),
    and `field` where it was found (`Libs.private`, `dependency_libs`, a CMake property; ""
    in a script)."""

    text: str
    kind: str
    value: str
    field: str = ""


@dataclass(frozen=True)
class MetaProblem:
    """One word of one metadata file that reaches outside the artifact and its
    dependencies. `found_at` is the host file it resolves to (None for a folder); `escape`
    the `allow_host_libs:` entry that would accept it."""

    file: Path
    word: Word
    found_at: Path | None
    on_host: bool
    escape: str
    in_build: bool = False  # the word names the build folder, which is gone after the build

    def message(self, prefix: Path) -> str:
        """One line for the build log, shaped like elf.LinkProblem's, `file` relative to
        `prefix`."""
        try:
            rel = self.file.relative_to(prefix)
        except ValueError:
            rel = self.file
        where = f" ({self.word.field})" if self.word.field else ""
        head = f"{rel}{where} names {self.word.text}: "
        allow = f"allow it with allow_host_libs: [{self.escape}]"
        if self.in_build:
            return head + (
                "a path inside the build folder, which is deleted after the build: the"
                " install copied a path of the build tree into the artifact (fix it in the"
                " recipe, e.g. a configure option or a `sed -i` after the install)"
            )
        if self.word.kind == "dir":
            what = "libraries" if self.word.text.startswith("-L") else "headers"
            return head + (
                f"a folder outside the artifact and its declared dependencies, searched for"
                f" {what} by every consumer (declare the package providing them, or {allow})"
            )
        if self.on_host:
            return head + (
                f"found on the host at {self.found_at}, which is not a declared dependency"
                f" (declare it, or {allow})"
            )
        at = f"found at {self.found_at}" if self.found_at else "a file"
        return head + (
            f"{at}, outside the artifact and its declared dependencies"
            " (declare the package providing it as a dependency)"
        )


# --- reading the four kinds of files ---------------------------------------------------------


def _expand(text: str, variables: dict[str, str]) -> str:
    """`${name}` and `$name` replaced by their values; unknown ones left as they are, and so
    are all once the text would grow past MAX_EXPANDED characters (`b="$a$a"`, `c="$b$b"`...:
    a word with a `$` left in it is skipped)."""
    budget = [MAX_EXPANDED - len(text)]

    def one(m: re.Match) -> str:
        value = variables.get(m.group(1) or m.group(2), m.group(0))
        budget[0] -= len(value)
        return value if budget[0] >= 0 else m.group(0)

    for _ in range(8):  # values that name other variables, a few levels deep
        new = _VAR.sub(one, text)
        if new == text or budget[0] < 0:
            break
        text = new
    return text


def flag_words(tokens: Iterable[str], field: str = "", bare_libs: bool = False) -> list[Word]:
    """The words of a compiler or linker argument list that name libraries or folders:
    `-lNAME`, `-L DIR`, `-I DIR`, `-isystem DIR` (attached or separate), and absolute paths
    of library files (`lib*.so*`, `lib*.a`, `lib*.la`). With `bare_libs` (a CMake link
    list) a plain name such as `m` or `xml2` is a library too. Other words are ignored."""
    out: list[Word] = []
    items = list(tokens)
    for i, tok in enumerate(items):
        if not tok or any(c in tok for c in "$*?[]") or "/-" in tok:
            continue  # unexpanded, a pattern (`-L*)` in a case), help text (`-L/-l`)
        for flag, kind in (("-isystem", "dir"), ("-l", "lib"), ("-L", "dir"), ("-I", "dir")):
            if tok.startswith(flag):
                value = tok[len(flag) :] or (items[i + 1] if i + 1 < len(items) else "")
                if value and "$" not in value:
                    out.append(Word(tok if tok != flag else f"{flag}{value}", kind, value, field))
                break
        else:
            if tok.startswith("/") and _LIBFILE.match(os.path.basename(tok)):
                out.append(Word(tok, "path", tok, field))
            elif bare_libs and re.fullmatch(r"[A-Za-z0-9_+.][A-Za-z0-9_+.-]*", tok):
                out.append(Word(tok, "lib", tok, field))
    return out


def pc_words(text: str, pcfiledir: str) -> list[Word]:
    """The words of a pkg-config file: flags of its Libs/Cflags fields and the modules of
    its Requires fields, `${variables}` expanded in file order (`pcfiledir` predefined)."""
    variables = {"pcfiledir": pcfiledir}
    out: list[Word] = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = re.sub(r"(?<!\\)#.*", "", line).strip()
        m = _PC_LINE.match(line)
        if not m:
            continue
        name, sep, value = m.group(1), m.group(2), _expand(m.group(3).strip(), variables)
        if sep == "=":
            variables[name] = value
        elif name in _PC_FIELDS:
            try:
                tokens = shlex.split(value)
            except ValueError:  # unbalanced quotes: pkg-config would refuse; read the words
                tokens = value.split()
            out += flag_words(tokens, name)
        elif name in ("Requires", "Requires.private"):
            out += [Word(mod, "module", mod, name) for mod in requires_modules(value)]
    return out


def requires_modules(value: str) -> list[str]:
    """`zlib >= 1.2, libxml-2.0` -> ["zlib", "libxml-2.0"]: module names without versions."""
    tokens = value.replace(",", " ").split()
    out, skip = [], False
    for tok in tokens:
        if tok in _VERSION_OPS:
            skip = True
        elif skip:
            skip = False
        elif "$" not in tok:
            out.append(tok)
    return out


def la_words(text: str) -> list[Word]:
    """The words of a libtool archive's `dependency_libs='...'`."""
    out: list[Word] = []
    for m in re.finditer(r"^dependency_libs='([^']*)'", text, re.MULTILINE):
        out += flag_words(m.group(1).split(), "dependency_libs")
    return out


def _shell_value(raw: str) -> str:
    """The value of `name=raw` in a shell script: a quoted string or one bare word."""
    raw = raw.strip()
    if raw and raw[0] in "\"'":
        end = raw.find(raw[0], 1)
        return raw[1:end] if end > 0 else raw[1:]
    return raw.split()[0] if raw.split() else ""


def script_words(text: str) -> list[Word]:
    """The `-l`, `-L`, `-I` words and library paths of a `*-config` shell script, each line
    read after expanding the assignments made above it (`libdir="${exec_prefix}/lib"`).
    A variable keeps its first literal value (what configure wrote at the top; later ones
    are option handling such as `prefix=$optarg`, and an append `libs="$libs -lsz"` is
    read on its own line). Comments, `case` patterns and the shell's `-lt`/`-le` test
    operators are skipped."""
    variables: dict[str, str] = {}
    out: list[Word] = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        line = _CASE_PATTERN.sub("", _expand(line, variables))
        m = _SH_ASSIGN.match(line)
        if m and m.group(1) not in variables:
            value = _shell_value(m.group(2))
            if not any(c in value for c in "$`"):
                variables[m.group(1)] = value
        tokens = [t for t in _SH_FLAG.findall(line) if t not in ("-lt", "-le")]
        out += flag_words(tokens + _SH_PATH.findall(line))
    return out


def _unwrap(item: str) -> str | None:
    """A CMake list item without its generator expression: `$<LINK_ONLY:z>` -> `z`;
    None for what only the build tree sees (`$<BUILD_INTERFACE:...>`)."""
    item = item.replace("\\$", "$").strip()
    if "$<" not in item:
        return item
    if "BUILD_INTERFACE:" in item:
        return None
    return item.rsplit(":", 1)[-1].rstrip(">")


def cmake_words(text: str) -> list[Word]:
    """The words of a CMake package file: the `;`-separated items of every quoted string,
    named by what precedes it (a property or a `set(` variable). Items of a `*LIBRARIES*`
    list may be bare library names; absolute folders count in `*INCLUDE_DIR*`,
    `*LINK_DIR*` and `*LIBRARY_DIR*` lists."""
    out: list[Word] = []
    for m in _CMAKE_STRING.finditer(text):
        field = m.group(1)
        items = [_unwrap(x) for x in re.split(r"[;\s]+", m.group(2))]
        items = [x for x in items if x]
        out += flag_words(items, field, bare_libs="LIBRARIES" in field and "DIR" not in field)
        if re.search(r"INCLUDE_DIR|LINK_DIR|LIBRARY_DIR", field):
            out += [Word(x, "dir", x, field) for x in items if x.startswith("/") and "$" not in x]
    return out


def words_of(path: Path, text: str) -> list[Word] | None:
    """The words of one file by its kind (from its name), or None if it is not metadata."""
    name = path.name
    if name.endswith(".pc") and path.parent.name == "pkgconfig":
        return pc_words(text, str(path.parent))
    if name.endswith(".la"):
        return la_words(text)
    if re.search(r"(config|targets)[^/]*\.cmake$", name, re.IGNORECASE):
        return cmake_words(text)
    if name.endswith("-config") and text.startswith("#!"):
        return script_words(text)
    return None


def _is_candidate(name: str, parent: str) -> bool:
    return (name.endswith(".pc") and parent == "pkgconfig") or name.endswith(
        (".la", "-config", ".cmake")
    )


# --- judging the words ------------------------------------------------------------------------


def _inside(path: str, roots: Iterable[str]) -> bool:
    return any(inside(path, r) for r in roots)


def lib_stem(name: str) -> str:
    """`libz.so.1`, `libz.so`, `libz.a`, `libz.la`, `libz` -> `libz` (what `-lz` names)."""
    m = _LIBFILE.match(os.path.basename(name))
    return m.group(1) if m else os.path.basename(name)


@dataclass(frozen=True)
class _Context:
    """What the words of one artifact are judged against (normalised and real paths)."""

    own: tuple[str, ...]  # the artifact's and dependencies' prefixes
    own_libdirs: tuple[str, ...]
    own_pcdirs: tuple[str, ...]
    folders: tuple[str, ...]  # allowed folders: the toolchain's own, allow_host_libs' `/...`
    stems: frozenset[str]  # allowed library stems (`libz`)
    names: frozenset[str]  # allowed entries as written (module names)
    host_dirs: tuple[str, ...]  # the host's library folders, searched last
    host_real: frozenset[str]
    build: tuple[str, ...] = ()  # the build folder (normalised and real), if known

    @classmethod
    def make(
        cls,
        prefix: Path,
        dependencies: list[Path],
        allowed: Iterable[str],
        build_dir: Path | None = None,
    ) -> _Context:
        """The context of an artifact at `prefix` over `dependencies`, `allowed` host
        libraries and folders, built in `build_dir`."""
        prefixes = [os.path.normpath(p) for p in (prefix, *dependencies)]
        own = tuple(dict.fromkeys([*prefixes, *map(os.path.realpath, prefixes)]))
        allowed = list(allowed)
        folders = [os.path.normpath(a) for a in allowed if a.startswith("/")]
        host = host_search_dirs()
        return cls(
            own=own,
            own_libdirs=tuple(f"{p}/{d}" for p in prefixes for d in ("lib", "lib64")),
            own_pcdirs=tuple(
                f"{p}/{d}/pkgconfig" for p in prefixes for d in ("lib", "lib64", "share")
            ),
            folders=tuple(dict.fromkeys([*folders, *map(os.path.realpath, folders)])),
            stems=frozenset(lib_stem(a) for a in allowed if not a.startswith("/")),
            names=frozenset(allowed),
            host_dirs=host,
            host_real=frozenset(os.path.realpath(d) for d in host),
            build=tuple(dict.fromkeys([os.path.normpath(build_dir), os.path.realpath(build_dir)]))
            if build_dir is not None
            else (),
        )

    def in_build(self, path: str) -> bool:
        """Whether `path` lies in the build folder."""
        return _inside(os.path.normpath(path), self.build)

    def is_own(self, path: str) -> bool:
        """Whether `path` lies in the artifact or a dependency, or in an allowed folder that
        is not one of the host's library folders: allowing `/usr/lib/x86_64-linux-gnu` (for
        an `-L` word) must not let every host library in it through (they are judged by
        name, as the ELF check does)."""
        norm, real = os.path.normpath(path), os.path.realpath(path)
        if _inside(norm, self.own) or _inside(real, self.own):
            return True
        in_allowed = _inside(norm, self.folders) or _inside(real, self.folders)
        return in_allowed and not self.on_host(path)

    def may_name(self, folder: str) -> bool:
        """Whether an `-L`/`-I` word may name `folder`: inside the artifact, a dependency or
        an allowed folder (host library folders too, when allowed: the word alone links
        nothing; the libraries found there are judged by name)."""
        norm, real = os.path.normpath(folder), os.path.realpath(folder)
        roots = (*self.own, *self.folders)
        return _inside(norm, roots) or _inside(real, roots)

    def on_host(self, path: str) -> bool:
        return os.path.realpath(os.path.dirname(path)) in self.host_real


def find_library(value: str, dirs: Iterable[str]) -> str | None:
    """Where the linker finds `-l<value>`: the first `libVALUE.so` or `libVALUE.a` (or the
    file itself for `-l:FILE`) in `dirs`, in order."""
    names = [value[1:]] if value.startswith(":") else [f"lib{value}.so", f"lib{value}.a"]
    for d in dirs:
        for n in names:
            candidate = os.path.join(d, n)
            if os.path.isfile(candidate):
                return candidate
    return None


def _pc_dirs(ctx: _Context) -> list[str]:
    return [*ctx.own_pcdirs, *(f"{f}/pkgconfig" for f in ctx.folders), *HOST_PC_DIRS]


def _judge_module(ctx: _Context, file: Path, word: Word) -> MetaProblem | None:
    found = next(
        (f"{d}/{word.value}.pc" for d in _pc_dirs(ctx) if os.path.isfile(f"{d}/{word.value}.pc")),
        None,
    )
    if found is None or ctx.is_own(found):
        return None
    try:
        text = Path(found).read_text(errors="replace")[:MAX_BYTES]
    except OSError:
        return None
    libs = [_word_stem(w) for w in pc_words(text, os.path.dirname(found)) if w.field == "Libs"]
    libs = [lib for lib in libs if lib]
    refused = [lib for lib in libs if lib not in ctx.stems]
    if (libs and not refused) or (not libs and word.value in ctx.names):
        return None
    escape = ", ".join(dict.fromkeys(refused)) or word.value
    return MetaProblem(file, word, Path(found), True, escape)


def _word_stem(word: Word) -> str | None:
    """The library stem a `-l` word asks for (`-lz` and `-l:libz.so.1` -> `libz`)."""
    if word.kind != "lib":
        return None
    return lib_stem(word.value[1:]) if word.value.startswith(":") else f"lib{word.value}"


def judge(ctx: _Context, file: Path, words: list[Word]) -> list[MetaProblem]:
    """The problems among the words of one file (each word once)."""
    problems: list[MetaProblem] = []
    search = [w.value for w in words if w.kind == "dir" and w.text.startswith("-L")]
    search = [d for d in search if os.path.isabs(d)] + list(ctx.own_libdirs)
    search += [*ctx.folders, *ctx.host_dirs]
    for word in dict.fromkeys(words):
        if word.kind == "dir":
            if os.path.isabs(word.value) and not ctx.may_name(word.value):
                folder = os.path.normpath(word.value)
                problems.append(MetaProblem(file, word, None, False, folder, ctx.in_build(folder)))
        elif word.kind == "module":
            problem = _judge_module(ctx, file, word)
            problems += [problem] if problem else []
        else:
            found = find_library(word.value, search) if word.kind == "lib" else word.value
            if found is None or ctx.is_own(found):
                continue
            stem = lib_stem(found)
            if stem not in ctx.stems or ctx.in_build(found):
                problem = MetaProblem(
                    file, word, Path(found), ctx.on_host(found), stem, ctx.in_build(found)
                )
                problems.append(problem)
    return problems


def check_metadata(
    prefix: Path,
    dependencies: list[Path],
    allowed: set[str] | frozenset[str],
    skip: Callable[[Path], bool] | None = None,
    build_dir: Path | None = None,
) -> list[MetaProblem]:
    """Walk `prefix` (skipping `prefix/.hit`) and check every pkg-config file, libtool
    archive, `*-config` script and CMake package file (see the module's docstring).

    `dependencies` are the dependencies' prefixes; `allowed` the host libraries (as for
    elf.check_artifact) and folders (entries starting with `/`) that may be named; `skip`
    gets a path relative to `prefix` and returns True to ignore that file; a word naming
    `build_dir` (the build folder) is reported as such (it is gone after the build). Symlinks,
    extra hard links, unreadable, binary and files over MAX_BYTES are skipped. Never
    raises for file contents."""
    prefix = Path(prefix)
    ctx: _Context | None = None  # made (real paths looked up) once a file has words
    problems: list[MetaProblem] = []
    for path, text in _metadata_files(prefix, skip):
        words = words_of(path, text)
        if words:
            ctx = ctx or _Context.make(prefix, dependencies, allowed, build_dir)
            problems += judge(ctx, path, words)
    return problems


def _metadata_files(
    prefix: Path, skip: Callable[[Path], bool] | None
) -> Iterator[tuple[Path, str]]:
    """(path, text) of every regular text file under `prefix` named like metadata."""
    for path, st in artifact_files(prefix, skip, _is_candidate):
        if st.st_size > MAX_BYTES:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if b"\0" not in data:
            yield path, data.decode(errors="replace")
