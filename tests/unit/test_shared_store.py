"""The shared store (pure file logic): made once, copied after with paths rewritten; a failed make publishes
nothing; a tampered entry is refused."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from edgekd.fsio import sha256_file
from edgekd.records import Checkpoint
from edgekd.shared_store import STUDENTS, area_dir, made_once, stored

FILES = ("student.pt", "student.json")


def _trainer(cdir, calls):
    def train():
        calls.append(cdir)
        cdir.mkdir(parents=True, exist_ok=True)
        (cdir / "student.pt").write_bytes(b"weights")
        ckpt = Checkpoint(name="s", family="convnet", path=str(cdir / "student.pt"),
                          sha256=sha256_file(cdir / "student.pt"), params=1, macs=1, accuracy_fp32=0.5,
                          val_accuracy=0.5, epochs_run=1)
        (cdir / "student.json").write_text(json.dumps(asdict(ckpt)))
        return ckpt
    return train


def _once(tmp_path, key, cdir, make):
    return made_once(tmp_path / "cache", STUDENTS, key, cdir, FILES, make, asdict, lambda d: Checkpoint(**d))


def test_made_once_and_copied_into_the_next_run_with_its_paths(tmp_path):
    calls = []
    first, copied1 = _once(tmp_path, "k1", tmp_path / "a", _trainer(tmp_path / "a", calls))
    assert stored(tmp_path / "cache", STUDENTS, "k1", FILES) and calls == [tmp_path / "a"] and not copied1
    second, copied2 = _once(tmp_path, "k1", tmp_path / "b", _trainer(tmp_path / "b", calls))
    assert calls == [tmp_path / "a"] and copied2  # not made again
    assert second.path == str(tmp_path / "b" / "student.pt") and second.sha256 == first.sha256
    assert (tmp_path / "b" / "student.pt").read_bytes() == b"weights"
    assert json.loads((tmp_path / "b" / "student.json").read_text())["path"] == second.path


def test_a_make_that_fails_publishes_nothing(tmp_path):
    def boom():
        (tmp_path / "a").mkdir()
        (tmp_path / "a" / "student.pt").write_bytes(b"half")
        raise KeyboardInterrupt  # a killed worker, Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        _once(tmp_path, "k2", tmp_path / "a", boom)
    assert not stored(tmp_path / "cache", STUDENTS, "k2", FILES)
    assert [p.name for p in area_dir(tmp_path / "cache", STUDENTS).iterdir()] == ["k2.lock"]


def test_an_entry_whose_files_changed_is_refused(tmp_path):
    _once(tmp_path, "k3", tmp_path / "a", _trainer(tmp_path / "a", []))
    (area_dir(tmp_path / "cache", STUDENTS) / "k3" / "student.pt").write_bytes(b"tampered")
    with pytest.raises(OSError, match="does not match"):
        _once(tmp_path, "k3", tmp_path / "b", _trainer(tmp_path / "b", []))
