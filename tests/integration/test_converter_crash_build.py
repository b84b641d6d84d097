"""A build whose TFLite converters crash (SIGSEGV in a child process) finishes: the LiteRT artifacts are reported as
failed with the reason, the onnxruntime ones are judged, and the choice is made among them. The routes are replaced
in this process (the build runs in-process); the child each conversion runs in imports the crashing route by name."""

from __future__ import annotations

import json

from edgekd.build_config import BuildConfig
from edgekd.distill.config import DistillConfig
from tests.unit import converter_routes as routes

TARGET = """description = "Test board: this host's CPU, both runtimes"
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
peak_memory_mb = 512
model_size_mb = 1.0
min_accuracy = 0.2
"""


def test_a_crashing_converter_fails_one_runtime_and_the_build_chooses_among_the_rest(tmp_path, monkeypatch):
    from edgekd import build
    from edgekd.export.tflite import TFLITE_ROUTES

    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "both.toml").write_text(TARGET)
    monkeypatch.setitem(TFLITE_ROUTES._entries, "litert-torch", routes.crashes)
    monkeypatch.setitem(TFLITE_ROUTES._entries, "onnx2tf", routes.crashes)
    said: list[str] = []
    out = tmp_path / "run"
    report = build(BuildConfig(target="both", targets_dir=str(tmp_path / "targets"), data="digits",
                               out_dir=str(out), cache_dir=str(tmp_path / "cache"), sizes=((0.25, 1), (0.5, 1)),
                               distill=DistillConfig(epochs=2), bench_runs=5, int8_search=False),
                   progress=said.append)
    fails = report["artifact_failures"]
    assert {(f["candidate"], f["runtime"]) for f in fails} == {("convnet_w0.25_d1", "litert"),
                                                               ("convnet_w0.5_d1", "litert")}
    assert all("litert-torch" in f["reason"] and "onnx2tf" in f["reason"] and "killed by SIGSEGV" in f["reason"]
               for f in fails)
    assert {c["runtime"] for c in report["candidates"]} == {"onnxruntime"}
    assert report["selected"] and report["selected"].endswith("@onnxruntime")
    assert "Artifacts that could not be made" in (out / "report.md").read_text()
    assert "Artifacts that could not be made" in (out / "report.html").read_text()
    assert json.loads((out / "report.json").read_text())["artifact_failures"] == fails
    assert any("litert: no artifact, the build goes on without it" in m for m in said)
    assert "lowering the graph" in (out / "candidates" / "convnet_w0.5_d1" / "converters.log").read_text()
