"""`edgekd build` end to end on tiny data, through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from edgekd.fsio import sha256_file
from tests.conftest import EDGEKD

BOARD = """
description = "Test board (Cortex-A72 class) for CI"
arch = "aarch64"
core = "cortex-a72"
clock_ghz = 1.5
cores = 4
threads = 2
memory_mb = 1024
runtimes = ["onnxruntime"]
precisions = ["int8", "fp32"]
emulation = "qemu-user"
[budget]
p90_latency_ms = {p90}
peak_memory_mb = 256
model_size_mb = 1.0
min_accuracy = 0.2
"""

REQUIRED = {"name", "params", "macs", "accuracy_fp32", "accuracy_int8", "latency", "host_latency",
            "peak_memory_mb", "model_size_mb", "within_budget"}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("edgekd-cache")


def _build(tmp_path: Path, cache: Path, p90: float, sizes: list[str],
           runtimes: str = '["onnxruntime"]', extra: list[str] = ()) -> subprocess.CompletedProcess:
    tdir = tmp_path / "targets"
    tdir.mkdir(exist_ok=True)
    (tdir / "testboard.toml").write_text(BOARD.format(p90=p90).replace('runtimes = ["onnxruntime"]',
                                                                     f"runtimes = {runtimes}"))
    args = [*EDGEKD, "build", "--target", "testboard", "--targets-dir", str(tdir), "--data", "digits",
            "--out", str(tmp_path / "run"), "--cache-dir", str(cache), "--epochs", "3", "--bench-runs", "30"]
    for s in sizes:
        args += ["--size", s]
    args += list(extra)
    return subprocess.run(args, capture_output=True, text=True, timeout=900, env={**os.environ})


@pytest.mark.slow
def test_build_end_to_end(tmp_path, shared_cache):
    r = _build(tmp_path, shared_cache, p90=50.0, sizes=["0.25x1", "0.5x1", "1x1"])
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "run"
    assert f"{run}/report.md" in r.stdout
    assert "[1/3]" in r.stderr and "[3/3]" in r.stderr  # progress shown while it works
    rep = json.loads((run / "report.json").read_text())
    assert rep["target"] == "testboard" and rep["budget"]["p90_latency_ms"] == 50.0
    assert 0.9 < rep["teacher"]["accuracy"] <= 1.0
    cands = rep["candidates"]
    assert len(cands) == 3 and all(REQUIRED <= set(c) for c in cands)
    assert cands[-1]["macs"] > 10 * cands[0]["macs"]
    for c in cands:  # an ARM target: judged on the estimate from emulated instruction counts, host beside it
        lat = c["latency"]  # an estimate: one figure with its band, no percentiles
        assert lat["kind"] == "estimated" and lat["p50_ms"] is None and lat["p90_ms"] is None
        assert lat["source"].startswith("estimated from emulated instruction counts (cortex-a72")
        arm = c["arm"]["int8"]
        assert lat["judged_ms"] == lat["estimate_ms"] == arm["estimate_ms"] and lat["band_ms"] == arm["band_ms"]
        assert arm["band_ms"][0] < arm["estimate_ms"] < arm["band_ms"][1]
        assert arm["instructions"] > 0 and arm["threads"] == 2 and arm["parity"]["passed"]
        assert c["arm"]["fp32"]["parity"]["max_abs_diff"] <= 1e-4
        h = c["host_latency"]
        assert h["kind"] == "measured" and h["p50_ms"] <= h["p90_ms"] <= h["p99_ms"] and "host" in h["how"]
        assert abs(c["accuracy_int8"] - c["accuracy_onnx_fp32"]) < 0.1
        assert c["fp32_parity"]["max_abs_diff"] < 1e-4
    fitting = [c for c in cands if c["within_budget"]]
    best = max(c["accuracy_int8"] for c in fitting)
    assert rep["selected"] == min((c for c in fitting if c["accuracy_int8"] == best), key=lambda c: c["macs"])["name"]
    chosen = next(c for c in cands if c["name"] == rep["selected"])
    assert Path(chosen["artifact"]).is_file() and sha256_file(chosen["artifact"]) == chosen["artifact_sha256"]
    # every artifact is listed in the manifest with its hash, and nothing temporary is left behind
    manifest = json.loads((run / "manifest.json").read_text())
    for rel, digest in manifest["artifacts"].items():
        assert sha256_file(run / rel) == digest
    assert not [p for p in run.rglob("*") if p.name.startswith(".tmp-")]
    md = (run / "report.md").read_text()
    assert "ESTIMATED FROM EMULATED INSTRUCTION COUNTS" in md and f"`{rep['selected']}`" in md
    assert "## Estimated on cortex-a72 @ 1.5 GHz (2 thread(s)) from emulated counts" in md
    assert "host p90 ms (measured, x86)" in md and "M instr" in md


@pytest.mark.slow
def test_infeasible_budget_is_found_before_training_and_exits_3(tmp_path, shared_cache):
    r = _build(tmp_path, shared_cache, p90=1e-6, sizes=["0.25x1", "0.5x1"])
    assert r.returncode == 3, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("edgekd: error: no candidate can meet the testboard budget (estimated before training")
    assert "closest is convnet_w0.25_d1" in last and "> budget 1e-06 ms" in last and "Traceback" not in r.stderr
    assert "distilling" not in r.stderr  # nothing was trained
    plan = json.loads((tmp_path / "run" / "search" / "plan.json").read_text())
    assert [c["decision"] for c in plan] == ["skip", "skip"] and plan[0]["latency_ms"] > 0


@pytest.mark.slow
def test_build_with_infeasible_budget_exits_3(tmp_path, shared_cache):
    r = _build(tmp_path, shared_cache, p90=1e-6, sizes=["0.25x1"], extra=["--no-search"])
    assert r.returncode == 3, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("edgekd: error: no student meets the testboard budget; closest is convnet_w0.25_d1")
    assert "p90_latency_ms" in last and "Traceback" not in r.stderr
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    assert rep["selected"] is None and rep["candidates"][0]["within_budget"] is False


@pytest.mark.slow
def test_default_teacher_trained_on_first_use_then_cached(shared_cache):
    from edgekd.data import load_dataset
    from edgekd.models.default_teacher import default_teacher

    data = load_dataset("digits")
    first, info1 = default_teacher(data, shared_cache)
    second, info2 = default_teacher(data, shared_cache)
    assert info2.origin.startswith("cached") and info1.weights_sha256 == info2.weights_sha256
    assert not any(p.requires_grad for p in second.module.parameters()) and not second.module.training


@pytest.mark.slow
def test_default_teacher_is_the_same_whatever_ran_before(tmp_path):
    """Trained on first use in two fresh caches, with torch's random state moved in between, the built-in teacher
    is the same: its initialisation is seeded (it was not, and each process trained a different teacher)."""
    import torch

    from edgekd.data import load_dataset
    from edgekd.models.default_teacher import default_teacher

    data = load_dataset("digits")
    _t1, first = default_teacher(data, tmp_path / "a", epochs=1)
    torch.rand(1000)
    _t2, second = default_teacher(data, tmp_path / "b", epochs=1)
    assert first.origin.startswith("trained now") and second.origin.startswith("trained now")
    assert first.weights_sha256 == second.weights_sha256


@pytest.mark.slow
def test_build_carries_tflite_int8_candidates(tmp_path, shared_cache):
    from edgekd.export.tflite_runtime import tflite_io

    r = _build(tmp_path, shared_cache, p90=50.0, sizes=["1x1"], runtimes='["onnxruntime", "litert"]')
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    rows = {c["runtime"]: c for c in rep["candidates"]}
    assert set(rows) == {"onnxruntime", "litert"} and rows["litert"]["format"] == "tflite"
    lite = rows["litert"]
    assert lite["artifact"].endswith("model_int8.tflite") and Path(lite["artifact"]).is_file()
    io = tflite_io(lite["artifact"])
    assert "int8" in str(io["input"]["dtype"]) and "int8" in str(io["output"]["dtype"])
    assert lite["int8_parity"]["argmax_agreement"] >= 0.9 and "host litert" in lite["latency"]["how"]
    assert lite["arm"]["int8"]["parity"]["max_quant_steps"] <= 1  # the aarch64 LiteRT agrees with the host
    assert rep["selected"] in {c["name"] for c in rep["candidates"]}
