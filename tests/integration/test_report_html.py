"""report.html of a real tiny build, opened in Debian's real headless Chromium; `edgekd report` on that run.

The build: digits, 2 student sizes, onnxruntime and LiteRT artifacts, a host-measured target profile (no
emulation) whose accuracy floor rules the smaller student out, so the page shows fit and not-fit candidates.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.browser import check_page, chromium_path
from tests.conftest import EDGEKD

PROFILE = """
description = "CI host <script>alert('profile')</script> & co"
arch = "x86_64"
core = "host"
clock_ghz = 2.0
cores = 2
threads = 1
memory_mb = 4096
runtimes = ["onnxruntime", "litert"]
precisions = ["int8", "fp32"]
emulation = "none"
[budget]
p90_latency_ms = 50.0
peak_memory_mb = 256
model_size_mb = 1.0
min_accuracy = 0.6
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report-build")
    (tmp / "targets").mkdir()
    (tmp / "targets" / "cihost.toml").write_text(PROFILE)
    args = [*EDGEKD, "build", "--target", "cihost", "--targets-dir", str(tmp / "targets"), "--data", "digits",
            "--out", str(tmp / "run"), "--cache-dir", str(tmp / "cache"), "--epochs", "3", "--bench-runs", "30",
            "--size", "0.25x1", "--size", "0.5x1", "--no-search"]  # the pre-training search is tested elsewhere
    r = subprocess.run(args, capture_output=True, text=True, timeout=900, env={**os.environ})
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{tmp / 'run'}/report.md (and report.json, report.html)" in r.stdout
    return tmp / "run"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _require_chromium() -> None:
    if chromium_path() is None:
        pytest.fail("Debian's chromium is not installed: run ./setup.sh --dev")


@pytest.mark.slow
def test_report_html_of_a_real_build_loads_cleanly_in_chromium(run, tmp_path):
    _require_chromium()
    rep = json.loads((run / "report.json").read_text())
    fits = {c["within_budget"] for c in rep["candidates"]}
    assert fits == {True, False}  # the page has both kinds of marker to show
    shot = tmp_path / "report.png"
    page = check_page(run / "report.html", shot)
    assert page.errors == [], page.errors  # no console error, exception or failed load
    assert page.probe["broken_images"] == [] and page.probe["resources"] == []  # nothing fetched, nothing broken
    assert page.probe["svgs"] >= 3 and page.probe["title"] == "edgekd report: cihost"
    text = page.probe["text"]
    assert f"Chosen student: {rep['selected']}" in text and rep["command"] in text
    assert "<script>alert('profile')</script> & co" in text  # the profile's text shown as text, not run
    assert "Slowest operators" in text and rep["slowest_ops"]["ops"][0]["node"] in text
    env = rep["environment"]
    assert all(f"{k}\t{env[k]}" in text for k in ("onnxruntime", "ai-edge-litert", "torch", "cpu"))  # table rows
    assert page.probe["width"] <= 1280  # nothing wider than the window: no sideways scrolling
    width, height = _png_size(shot.read_bytes())
    assert width >= 1000 and height >= 2000 and shot.stat().st_size > 50_000
    from PIL import Image

    with Image.open(shot) as im:
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50  # a rendered page, not a blank


@pytest.mark.slow
def test_real_build_profiles_every_candidates_operators(run):
    rep = json.loads((run / "report.json").read_text())
    assert rep["slowest_ops"]["candidate"] == rep["selected"]
    for c in rep["candidates"]:
        p = c["ops_profile"]
        assert p["profiled_runtime"] == "onnxruntime" and p["ops"] and p["runs"] == 30
        assert all(o["calls"] == 30 for o in p["ops"]) and 0 < p["ops"][0]["share"] <= 1
        if c["runtime"] == "onnxruntime":  # the deployed int8 file itself
            assert p["is_deployed_artifact"] and p["artifact"] == c["artifact"]
            assert any(o["op_type"].startswith("QLinear") or "Quantize" in o["op_type"] for o in p["ops"])
        else:  # LiteRT has no per-operator profiler: its fp32 ONNX twin, said so
            assert not p["is_deployed_artifact"] and p["artifact"].endswith("model_fp32.onnx")
            assert p["deployed_artifact"] == c["artifact"] and "no per-operator profiler" in p["note"]
        assert Path(run / "candidates" / c["student"] / f"ops_profile_{c['runtime']}.json").is_file()


@pytest.mark.slow
def test_edgekd_report_regenerates_the_builds_pages(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    built = {n: (copy / n).read_bytes() for n in ("report.md", "report.html", "manifest.json")}
    for n in ("report.md", "report.html"):
        (copy / n).unlink()
    r = subprocess.run([*EDGEKD, "report", str(copy)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # the manifest's hash of report.json matches: nothing to note
    for n, data in built.items():
        assert (copy / n).read_bytes() == data, n  # the same pages, from the records alone


@pytest.mark.parametrize("kind", ["arm", "npu"])
def test_arm_and_npu_pages_of_real_builds_load_cleanly(kind, tmp_path):
    """The checked-in reports of a real emulated-ARM build and a real Ethos-U (Vela) build, rendered now."""
    from edgekd.report.writer import write_pages
    from tests.unit.test_report_pages import load

    _require_chromium()
    html = write_pages(load(kind), tmp_path)["html"]
    page = check_page(html, tmp_path / f"{kind}.png")
    assert page.errors == [] and page.probe["broken_images"] == [] and page.probe["resources"] == []
    assert page.probe["width"] <= 1280 and page.probe["svgs"] >= 3
    assert ("Estimated on cortex-a72" if kind == "arm" else "NPU estimate: ethos-u55-128") in page.probe["text"]


def test_the_browser_check_catches_console_errors_and_broken_images(tmp_path):
    """The check above can fail: a page with a console error, an exception and a missing image."""
    _require_chromium()
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><head><title>bad</title></head><body><p>x</p>"
                   "<img src=\"missing.png\"><script>console.error('boom'); throw new Error('oops')</script>"
                   "</body></html>")
    page = check_page(bad, tmp_path / "bad.png", height=600)
    assert any("console.error: boom" in e for e in page.errors)
    assert any("oops" in e for e in page.errors)
    assert any("missing.png" in e for e in page.errors) and page.probe["broken_images"] == ["missing.png"]
    assert _png_size((tmp_path / "bad.png").read_bytes())[0] > 0
