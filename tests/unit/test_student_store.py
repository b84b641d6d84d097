"""The shared student store (pure file logic): trained once, copied after; a failed training publishes nothing."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from edgekd.fsio import sha256_file
from edgekd.records import Checkpoint
from edgekd.student_store import store_dir, stored, trained_once


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


def test_a_student_is_trained_once_and_copied_into_the_next_run(tmp_path):
    calls, said = [], []
    first = trained_once(tmp_path / "cache", "k1", tmp_path / "a", _trainer(tmp_path / "a", calls), said.append)
    assert stored(tmp_path / "cache", "k1") and calls == [tmp_path / "a"]
    second = trained_once(tmp_path / "cache", "k1", tmp_path / "b", _trainer(tmp_path / "b", calls), said.append)
    assert calls == [tmp_path / "a"] and "reused the student" in said[-1]  # not trained again
    assert second.path == str(tmp_path / "b" / "student.pt") and second.sha256 == first.sha256
    assert (tmp_path / "b" / "student.pt").read_bytes() == b"weights"
    assert json.loads((tmp_path / "b" / "student.json").read_text())["path"] == second.path


def test_a_training_that_fails_publishes_nothing(tmp_path):
    def boom():
        (tmp_path / "a").mkdir()
        (tmp_path / "a" / "student.pt").write_bytes(b"half")
        raise KeyboardInterrupt  # a killed worker, Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        trained_once(tmp_path / "cache", "k2", tmp_path / "a", boom, lambda _m: None)
    assert not stored(tmp_path / "cache", "k2")
    assert [p.name for p in store_dir(tmp_path / "cache").iterdir()] == ["k2.lock"]
