"""Train once, for every target: a build for another target (into another run directory, same cache folder)
copies the student the first build trained instead of training it again."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import EDGEKD

GOLDEN_TARGETS = Path(__file__).resolve().parent.parent / "fixtures" / "golden" / "targets"


def _build(tmp: Path, target: str, out: str) -> subprocess.CompletedProcess:
    args = [*EDGEKD, "build", "--target", target, "--targets-dir", str(GOLDEN_TARGETS), "--data", "digits",
            "--size", "0.25x1", "--epochs", "2", "--bench-runs", "5", "--no-int8-search", "--out", str(tmp / out),
            "--cache-dir", str(tmp / "cache")]
    return subprocess.run(args, capture_output=True, text=True, timeout=900, env={**os.environ})


def test_a_second_target_reuses_the_trained_student(tmp_path):
    first = _build(tmp_path, "golden-host", "host")
    assert first.returncode in (0, 3), first.stderr[-2000:]
    assert "epoch 1/2" in first.stderr  # trained here
    second = _build(tmp_path, "golden-arm", "arm")
    assert second.returncode in (0, 3), second.stderr[-2000:]
    assert "epoch 1/2" not in second.stderr and "reused the student trained by an earlier build" in second.stderr
    a, b = (json.loads((tmp_path / d / "candidates" / "convnet_w0.25_d1" / "student.json").read_text())
            for d in ("host", "arm"))
    assert a["sha256"] == b["sha256"] and b["path"].startswith(str(tmp_path / "arm"))
