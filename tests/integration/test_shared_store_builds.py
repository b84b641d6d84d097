"""Train once, for every target: a build for another target (into another run directory, same cache folder)
copies the student, its ONNX export and its int8 model the first build made instead of making them again."""

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
    assert "epoch 1/2" not in second.stderr and "distill: copied from the shared store" in second.stderr
    stages = json.loads((tmp_path / "arm" / "report.json").read_text())["stages"]
    c = "convnet_w0.25_d1"
    assert set(stages["shared"]) == {f"{c}/distill", f"{c}/onnx_fp32"}  # the host target made no TFLite
    assert {f"{c}/tflite_fp32", f"{c}/tflite_int8"} <= set(stages["ran"])
    third = _build(tmp_path, "golden-arm", "arm-again")  # another run directory: the TFLite models are shared too
    assert third.returncode in (0, 3), third.stderr[-2000:]
    stages = json.loads((tmp_path / "arm-again" / "report.json").read_text())["stages"]
    assert set(stages["shared"]) == {f"{c}/distill", f"{c}/onnx_fp32", f"{c}/tflite_fp32", f"{c}/tflite_int8"}
    assert not [s for s in stages["ran"] if s.split("/")[-1] in ("distill", "onnx_fp32", "tflite_fp32", "tflite_int8")]
    a, b = (json.loads((tmp_path / d / "candidates" / "convnet_w0.25_d1" / "student.json").read_text())
            for d in ("host", "arm"))
    assert a["sha256"] == b["sha256"] and b["path"].startswith(str(tmp_path / "arm"))
