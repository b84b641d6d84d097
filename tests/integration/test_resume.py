"""A build killed with SIGKILL mid-distillation and mid-export resumes: finished stages are reused, nothing
partial is left, and a second re-run does no work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import EDGEKD

BOARD = """
description = "host-class board for the resume test"
arch = "x86_64"
core = "host"
clock_ghz = 2.0
cores = 2
threads = 1
memory_mb = 1024
runtimes = ["onnxruntime"]
precisions = ["int8", "fp32"]
emulation = "none"
[budget]
p90_latency_ms = 50
model_size_mb = 4.0
"""


def _args(tmp_path: Path) -> list[str]:
    tdir = tmp_path / "targets"
    tdir.mkdir(exist_ok=True)
    (tdir / "box.toml").write_text(BOARD)
    return [*EDGEKD, "build", "--target", "box", "--targets-dir", str(tdir), "--data", "digits", "--out",
            str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--epochs", "3", "--bench-runs", "20",
            "--size", "0.5x1", "--size", "1x1", "--no-search"]


def _run_until(args: list[str], marker: str, timeout: float = 600) -> str:
    """Start the build, SIGKILL it (whole process group) as soon as ``marker`` appears on stderr."""
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    seen, t0 = [], time.monotonic()
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        if time.monotonic() - t0 > timeout:
            break
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)[-2000:]
    return "".join(seen)


def _finish(args: list[str]) -> tuple[subprocess.CompletedProcess, dict]:
    r = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((Path(args[args.index("--out") + 1]) / "report.json").read_text())
    return r, report


def _leftovers(run: Path) -> list[str]:
    return [str(p) for p in run.rglob("*") if p.name.startswith(".tmp-") or ".tmp" in p.suffixes]


@pytest.mark.slow
def test_sigkill_mid_distillation_then_mid_export_resumes_and_a_rerun_does_no_work(tmp_path):
    args = _args(tmp_path)
    run = tmp_path / "run"
    # 1) killed while the second candidate trains: the first one's stages are complete and stamped
    _run_until(args, "[2/2] convnet_w1_d1: distilling")
    assert (run / "candidates/convnet_w0.5_d1/.stages/distill.json").is_file()
    assert not (run / "candidates/convnet_w1_d1/.stages/distill.json").exists()
    # 2) killed right after the first candidate's distillation is read back, as its ONNX export starts
    #    (remove the export stamps so that export really runs again in this attempt)
    for stage in ("onnx_fp32", "onnx_int8"):
        (run / f"candidates/convnet_w0.5_d1/.stages/{stage}.json").unlink(missing_ok=True)
    log = _run_until(args, "fp32 test accuracy")
    assert "convnet_w0.5_d1" in log
    # 3) the re-run completes, reusing what finished, and leaves no partial file
    r, rep = _finish(args)
    reused, ran = rep["stages"]["reused"], rep["stages"]["ran"]
    assert "convnet_w0.5_d1/distill" in reused and "convnet_w0.5_d1/distill" not in ran
    assert "convnet_w1_d1/distill" in ran
    assert "convnet_w0.5_d1/onnx_fp32" in ran + rep["stages"]["shared"]  # made again, or copied from the store
    assert _leftovers(run) == [] and rep["selected"]
    for c in rep["candidates"]:
        assert Path(c["artifact"]).is_file()
    # 4) a second re-run does no work
    r2, rep2 = _finish(args)
    assert rep2["stages"]["ran"] == [] and "stages: 0 ran" in r2.stderr and "distilling" in r2.stderr
    assert "epoch 1/" not in r2.stderr
    assert rep2["selected"] == rep["selected"] and _leftovers(run) == []
    # --fresh redoes every stage
    r3, rep3 = _finish(args + ["--fresh"])
    assert rep3["stages"]["reused"] == [] and "epoch 1/" in r3.stderr
