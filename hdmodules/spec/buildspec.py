"""The build spec and the profile document: typed values with one serialisation each.

A **build spec** is everything that can change what a build makes (see resolve.py for what is
left out and why); its hash names the artifact. A **profile document** is what a profile
artifact is made of: the artifacts it lists and the packages that win file conflicts.

Each has exactly one document form, `to_doc()`, which is what `hashing.hash_doc` hashes and
what `.hit/build.json` stores (with the artifact id, and `kind: profile` for a profile, beside
it: `record()`). `from_doc()` reads that form back; it never raises: keys missing from
artifacts written by older versions, or of the wrong type, read as empty, so `gc`, `diff`
and `--explain` work over any store.

Changing `to_doc()` changes every artifact id: tests/test_buildspec.py holds golden ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..hashing import hash_doc
from .yamlfile import Scalar

BUILD = "build"  # the doctype of a build spec in hash_doc
PROFILE = "profile"  # the doctype of a profile document, and its `kind` in build.json


def _mapping(doc: dict, key: str) -> dict:
    value = doc.get(key)  # not copied: from_doc reads a document that is then dropped
    return value if isinstance(value, dict) else {}


def _list(doc: dict, key: str) -> list:
    value = doc.get(key)
    return value if isinstance(value, list) else []


def _int(doc: dict, key: str, default: int) -> int:
    value = doc.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str(doc: dict, key: str, default: str = "") -> str:
    value = doc.get(key)
    return value if isinstance(value, str) else default


@dataclass(frozen=True)
class SourceInput:
    """One source as a build spec sees it: its content hash (`sha256:<hex>`, `tree:<hex>`,
    `git:<commit>`) and where it is unpacked in the build folder (relative, "." by default)."""

    hash: str
    dest: str = "."

    def to_doc(self) -> dict[str, str]:
        """`{"hash": ..., "dest": ...}`, as it appears in a build spec's `sources` list."""
        return {"hash": self.hash, "dest": self.dest}


@dataclass(frozen=True)
class PatchInput:
    """One patch as a build spec sees it: its content hash (hex sha256) and strip level."""

    hash: str
    strip: int = 1

    def to_doc(self) -> dict[str, str | int]:
        """`{"hash": ..., "strip": ...}`, as it appears in a build spec's `patches` list."""
        return {"hash": self.hash, "strip": self.strip}


@dataclass(frozen=True)
class BuildSpec:
    """The canonical inputs of one build; `hash()` is the `<hash>` of its id `name/<hash>`.

    `dependencies` maps each direct dependency's name to its artifact id; `toolchain` maps a
    kind ("compiler", "mpi") to what `externals.External.spec()` gives (kind, version,
    prefix, module, pin); `platform` is `resolve.platform_doc()`; `build_env` the version of
    the environment builder.py gives build scripts (0 when an old build.json lacks it);
    `patches` the recipe's patches in the order they are applied (in the document only when
    there are some, so the ids of packages without patches stay what they were)."""

    name: str
    version: str
    sources: tuple[SourceInput, ...] = ()
    build: str = ""
    parameters: dict[str, Scalar] = field(default_factory=dict)
    dependencies: dict[str, str] = field(default_factory=dict)
    toolchain: dict[str, dict[str, Any]] = field(default_factory=dict)
    platform: dict[str, str] = field(default_factory=dict)
    build_env: int = 0
    patches: tuple[PatchInput, ...] = ()

    def to_doc(self) -> dict[str, Any]:
        """The one document form (JSON types only): what is hashed and stored."""
        doc: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "sources": [s.to_doc() for s in self.sources],
            "build": self.build,
            "parameters": dict(self.parameters),
            "dependencies": dict(self.dependencies),
            "toolchain": {kind: self.toolchain[kind] for kind in sorted(self.toolchain)},
            "platform": dict(self.platform),
            "build_env": self.build_env,
        }
        if self.patches:
            doc["patches"] = [p.to_doc() for p in self.patches]
        return doc

    @classmethod
    def from_doc(cls, doc: Any) -> BuildSpec:
        """Read `to_doc()`'s form back (a build.json's extra `id` is ignored); never raises."""
        doc = doc if isinstance(doc, dict) else {}
        sources = [s for s in _list(doc, "sources") if isinstance(s, dict)]
        build_env = doc.get("build_env")
        patches = [p for p in _list(doc, "patches") if isinstance(p, dict)]
        return cls(  # positional, in field order: gc reads every artifact's build.json
            _str(doc, "name"),
            _str(doc, "version"),
            tuple(SourceInput(_str(s, "hash"), _str(s, "dest", ".")) for s in sources),
            _str(doc, "build"),
            _mapping(doc, "parameters"),
            _mapping(doc, "dependencies"),
            _mapping(doc, "toolchain"),
            _mapping(doc, "platform"),
            build_env if isinstance(build_env, int) else 0,
            tuple(PatchInput(_str(p, "hash"), _int(p, "strip", 1)) for p in patches),
        )

    def hash(self) -> str:
        """The artifact hash: `hash_doc("build", to_doc())` (32 base32 characters)."""
        return hash_doc(BUILD, self.to_doc())

    def references(self) -> tuple[str, ...]:
        """The artifact ids this build keeps alive (gc): its dependencies."""
        return tuple(self.dependencies.values())

    def record(self, artifact_id: str) -> dict[str, Any]:
        """The document `.hit/build.json` holds (and `hit show buildspec` prints)."""
        return {"id": artifact_id, **self.to_doc()}


@dataclass(frozen=True)
class ProfileDoc:
    """What a profile artifact is made of: package name -> artifact id of each package the
    profile lists, and the packages whose files win a conflict in the symlink farm."""

    artifacts: dict[str, str] = field(default_factory=dict)
    prefer: tuple[str, ...] = ()

    def to_doc(self) -> dict[str, Any]:
        """The one document form: what is hashed (doctype "profile") and stored."""
        return {"artifacts": dict(self.artifacts), "prefer": list(self.prefer)}

    @classmethod
    def from_doc(cls, doc: Any) -> ProfileDoc:
        """Read `to_doc()`'s (or `record()`'s) form back; never raises."""
        doc = doc if isinstance(doc, dict) else {}
        prefer = tuple(p for p in _list(doc, "prefer") if isinstance(p, str))
        return cls(_mapping(doc, "artifacts"), prefer)

    def hash(self) -> str:
        """The profile artifact's hash: `hash_doc("profile", to_doc())`."""
        return hash_doc(PROFILE, self.to_doc())

    def references(self) -> tuple[str, ...]:
        """The artifact ids this profile keeps alive (gc): the artifacts it lists."""
        return tuple(self.artifacts.values())

    def record(self, artifact_id: str) -> dict[str, Any]:
        """The document `.hit/build.json` of a profile artifact holds."""
        return {"id": artifact_id, "kind": PROFILE, **self.to_doc()}


def from_record(doc: Any) -> BuildSpec | ProfileDoc:
    """A build.json document (`store.read_spec`) as the value it records: a ProfileDoc when
    its `kind` is "profile" or it lists `artifacts` (a build spec never does; profiles
    recorded without `kind` are read too), else a BuildSpec. Never raises (an unreadable
    one is an empty BuildSpec)."""
    return ProfileDoc.from_doc(doc) if _is_profile(doc) else BuildSpec.from_doc(doc)


def _is_profile(doc: Any) -> bool:
    return isinstance(doc, dict) and (doc.get("kind") == PROFILE or "artifacts" in doc)


def references(doc: Any) -> tuple[str, ...]:
    """The artifact ids that the artifact a build.json document records keeps alive, read
    straight from the document: `from_record(doc).references()` without building the value
    (gc's mark phase reads every artifact's record). Never raises."""
    if not isinstance(doc, dict):
        return ()
    return tuple(_mapping(doc, "artifacts" if _is_profile(doc) else "dependencies").values())


def record_id(doc: Any) -> str:
    """The artifact id (`name/<hash>`) a build.json document records; "" if it has none."""
    return _str(doc, "id") if isinstance(doc, dict) else ""
