"""Atomic writes: complete files under their final name, nothing on failure, usual permissions."""

from __future__ import annotations

import os

import pytest

from edgekd.errors import OutputError
from edgekd.fsio import atomic_path, ensure_dir, write_json_atomic


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    final = tmp_path / "model.onnx"
    final.write_text("old, complete")
    with pytest.raises(RuntimeError):
        with atomic_path(final) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert final.read_text() == "old, complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_successful_write_has_umask_permissions(tmp_path):
    path = write_json_atomic(tmp_path / "sub" / "r.json", {"a": 1})
    assert path.read_text().strip().startswith("{")
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)


def test_ensure_dir_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="cannot create output directory"):
        ensure_dir(tmp_path / "f" / "sub")
