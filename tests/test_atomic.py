"""atomic.write_atomic: the one way a file is replaced."""

from __future__ import annotations

import os
import stat

import pytest

from hdmodules import atomic


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o644])
def test_a_file_is_never_readable_by_more_than_its_mode_even_while_written(
    tmp_path, monkeypatch, mode
):
    """The resolve cache (0600) is unpickled by its owner only: another user must never
    read it, not even the temporary file before its mode is set."""
    seen: list[int] = []
    real_chmod = os.chmod

    def chmod(path, m, *a, **kw):
        seen.append(stat.S_IMODE(os.stat(path).st_mode))
        return real_chmod(path, m, *a, **kw)

    monkeypatch.setattr(os, "chmod", chmod)
    old = os.umask(0o022)
    try:
        target = tmp_path / "resolve.pickle"
        atomic.write_atomic(target, b"secret", mode)
    finally:
        os.umask(old)
    assert seen and all(bits & ~mode == 0 for bits in seen), [oct(b) for b in seen]
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert target.read_bytes() == b"secret"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
