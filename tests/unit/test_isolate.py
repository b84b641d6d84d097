"""Third-party converters in a child process: a crash (signal), a hang, running out of memory and an exception each
come back as a typed error naming the step, what happened and the converter's last output; the next route runs;
with every route failing the CLI exits 2 with one line per route; the chatter goes to the log, not the console."""

from __future__ import annotations

import numpy as np
import pytest

from edgekd.errors import ExportError
from edgekd.isolate import ConverterFailed, Limits, run_isolated
from tests.unit import converter_routes as routes

ROOMY = Limits(timeout_s=120, memory_mb=8192)


def test_a_converter_killed_by_sigsegv_is_reported_with_its_last_output(tmp_path):
    with pytest.raises(ConverterFailed) as e:
        run_isolated(routes.crashes, 1, step="onnx2tf (fp32)", log=tmp_path / "c.log", limits=ROOMY)
    msg = str(e.value)
    assert "onnx2tf (fp32): killed by SIGSEGV" in msg and "lowering the graph" in msg and "\n" not in msg


def test_a_converter_that_hangs_is_killed_at_the_time_limit(tmp_path):
    with pytest.raises(ConverterFailed, match=r"no result after 3 s \(hung; killed\)"):
        run_isolated(routes.hangs, step="litert-torch (int8)", log=tmp_path / "c.log",
                     limits=Limits(timeout_s=3, memory_mb=8192))


def test_a_converter_that_eats_memory_is_killed_at_the_memory_limit(tmp_path):
    with pytest.raises(ConverterFailed, match=r"ran out of memory \(over the 600 MB limit; killed\)"):
        run_isolated(routes.eats_memory, step="onnxruntime quantizer", log=tmp_path / "c.log",
                     limits=Limits(timeout_s=120, memory_mb=600))


def test_exceptions_come_back_typed_and_chatter_goes_to_the_log(tmp_path, capfd):
    log = tmp_path / "c.log"
    with pytest.raises(ConverterFailed, match="raised RuntimeError: Lowering not found"):
        run_isolated(routes.raises, step="litert-torch (fp32)", log=log, limits=ROOMY)
    with pytest.raises(ExportError, match="cannot lower") as e:
        run_isolated(routes.raises_edgekd_error, step="litert-torch (fp32)", log=log, limits=ROOMY)
    assert type(e.value) is ExportError  # edgekd's own error, as raised in the child
    out = run_isolated(routes.returns, np.zeros(3), "x", step="ok", log=log, limits=ROOMY)
    assert out["args"] == 2 and out["pid"] > 0
    console = capfd.readouterr()
    assert "Axis 1 is out-of-range" not in console.err + console.out and "converter: done" not in console.out
    text = log.read_text()
    assert "Axis 1 is out-of-range" in text and "converter: done" in text and "==== " in text


@pytest.fixture(scope="module")
def linear():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 4))
    return model, np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32)


@pytest.mark.parametrize("bad, why", [(routes.crashes, "killed by SIGSEGV"), (routes.hangs, "no result after 25 s"),
                                      (routes.eats_memory, "ran out of memory (over the 3000 MB limit")],
                         ids=["sigsegv", "hang", "memory"])
def test_a_route_failing_its_own_way_is_reported_and_the_next_route_runs(tmp_path, monkeypatch, linear, bad, why):
    from edgekd.export.tflite import TFLITE_ROUTES, export_tflite

    monkeypatch.setenv("EDGEKD_CONVERT_TIMEOUT_S", "25")  # onnx2tf (TensorFlow's import included) takes ~8 s
    monkeypatch.setenv("EDGEKD_CONVERT_MEMORY_MB", "3000")  # onnx2tf with TensorFlow stays well below it
    monkeypatch.setitem(TFLITE_ROUTES._entries, "litert-torch", bad)
    rec = export_tflite(*linear, tmp_path / "m.tflite")
    assert rec.config["route"] == "onnx2tf" and rec.parity["passed"]
    assert rec.config["fallback_reason"].startswith("litert-torch: ") and why in rec.config["fallback_reason"]


def test_every_route_failing_leaves_nothing_and_names_each(tmp_path, monkeypatch, linear):
    from edgekd.export.tflite import TFLITE_ROUTES, export_tflite

    monkeypatch.setenv("EDGEKD_CONVERT_TIMEOUT_S", "5")
    monkeypatch.setitem(TFLITE_ROUTES._entries, "litert-torch", routes.crashes)
    monkeypatch.setitem(TFLITE_ROUTES._entries, "onnx2tf", routes.hangs)
    with pytest.raises(ExportError) as e:
        export_tflite(*linear, tmp_path / "n.tflite")
    assert [d.split(":")[0] for d in e.value.details] == ["litert-torch", "onnx2tf"]
    assert "killed by SIGSEGV" in e.value.details[0] and "no result after 5 s" in e.value.details[1]
    assert not (tmp_path / "n.tflite").exists() and not list(tmp_path.glob("*.tmp*"))  # nothing half-written
    assert (tmp_path / "converters.log").is_file()


def test_with_every_route_failing_the_cli_exits_2_with_a_line_per_route(tmp_path, monkeypatch, capsys, digits):
    from edgekd.cli import main
    from edgekd.distill.config import DistillConfig
    from edgekd.export.tflite import TFLITE_ROUTES
    from edgekd.models.students import StudentSpec
    from edgekd.stages import distill_student

    spec = StudentSpec("test_convnet", 1.0, 1, digits.input_shape, digits.num_classes)
    distill_student(digits, spec, DistillConfig(loss="ce", epochs=1), tmp_path)
    monkeypatch.setitem(TFLITE_ROUTES._entries, "litert-torch", routes.crashes)
    monkeypatch.setitem(TFLITE_ROUTES._entries, "onnx2tf", routes.raises)
    rc = main(["export", str(tmp_path / "student.json"), "--out", str(tmp_path / "m.tflite"), "--data", "digits"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[0].startswith("edgekd: error: no TFLite route could export the model at fp32"), err
    assert err[1].strip().startswith("litert-torch: ") and "killed by SIGSEGV" in err[1]
    assert err[2].strip().startswith("onnx2tf: ") and "made_up_op" in err[2] and len(err) == 3
    assert not (tmp_path / "m.tflite").exists()


def test_a_program_such_as_vela_is_watched_the_same_way(tmp_path):
    import sys

    from edgekd.isolate import run_program

    ok = run_program([sys.executable, "-c", "print('compiled')"], step="Vela", cwd=tmp_path, limits=ROOMY)
    assert ok.returncode == 0 and ok.stdout.strip() == "compiled"
    crash = [sys.executable, "-c", "import os, signal; print('scheduling'); os.kill(os.getpid(), signal.SIGSEGV)"]
    with pytest.raises(ConverterFailed, match="Vela: killed by SIGSEGV"):
        run_program(crash, step="Vela", cwd=tmp_path, limits=ROOMY)
    with pytest.raises(ConverterFailed, match=r"Vela: no result after 2 s \(hung; killed\)"):
        run_program([sys.executable, "-c", "import time; time.sleep(60)"], step="Vela", cwd=tmp_path,
                    limits=Limits(timeout_s=2, memory_mb=8192))
