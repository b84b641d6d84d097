"""TFLite through the CLI: distill -> export --precision int8 -> bench on LiteRT, and its bad inputs."""

from __future__ import annotations

import json
import subprocess

import pytest

from edgekd.cli import main
from tests.conftest import EDGEKD
from tests.integration.test_cli_errors import _files, _one_clear_line


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    d = tmp_path_factory.mktemp("D")
    assert main(["distill", "--data", "digits", "--loss", "ce", "--epochs", "2", "--out", str(d)]) == 0
    return d


@pytest.mark.slow
def test_int8_tflite_export_then_bench(student, capsys):
    from edgekd.export.tflite_runtime import tflite_io

    out = student / "m.tflite"
    assert main(["export", str(student / "student.json"), "--out", str(out), "--precision", "int8"]) == 0
    io_ = tflite_io(out)
    assert io_["input"]["dtype"] == "int8" and io_["output"]["dtype"] == "int8"
    text = capsys.readouterr().out
    assert "tflite int8, route " in text and "argmax agreement" in text and "LiteRT accuracy" in text
    assert main(["bench", str(out), "--runs", "20", "--warmup", "2", "--json", str(student / "b.json")]) == 0
    b = json.loads((student / "b.json").read_text())
    assert b["backend"] == "litert-host" and b["runs"] == 20 and b["p50_ms"] <= b["p90_ms"] <= b["p99_ms"]
    assert b["environment"]["input_dtype"] == "int8"
    assert "p90" in capsys.readouterr().out


def test_format_contradicting_the_suffix_exits_2(student, capsys):
    before = _files(student)
    for extra in (["--format", "tflite"], ["--precision", "int8"], ["--converter", "onnx2tf"]):
        rc = main(["export", str(student / "student.json"), "--out", str(student / "x.onnx"), *extra])
        line = _one_clear_line(capsys.readouterr().err)
        assert rc == 2 and ("contradicts" in line or "TFLite export only" in line), line
    rc = main(["export", str(student / "student.json"), "--out", str(student / "x.bin")])
    assert rc == 2 and "cannot tell the export format" in _one_clear_line(capsys.readouterr().err)
    assert _files(student) == before  # nothing written


def test_export_of_a_non_model_exits_2(tmp_path, capsys):
    rc = main(["export", str(tmp_path / "notamodel.json"), "--out", str(tmp_path / "m.tflite")])
    assert rc == 2 and "student record" in _one_clear_line(capsys.readouterr().err)
    (tmp_path / "garbage.json").write_text("{not json")
    rc = main(["export", str(tmp_path / "garbage.json"), "--out", str(tmp_path / "m.tflite")])
    assert rc == 2 and "malformed" in _one_clear_line(capsys.readouterr().err)
    assert not (tmp_path / "m.tflite").exists()


def test_bench_of_a_non_model_tflite_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00garbage" * 64)
    r = subprocess.run([*EDGEKD, "bench", str(bad), "--runs", "2", "--warmup", "0"], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("edgekd: error:") and "LiteRT cannot load" in r.stderr and "Fix:" in r.stderr


def test_calibration_data_of_the_wrong_shape_exits_2_and_leaves_no_tflite(student, capsys):
    """The student takes 1x8x8 digits; Fashion-MNIST samples are 1x28x28."""
    before = _files(student)
    rc = main(["export", str(student / "student.json"), "--out", str(student / "bad.tflite"), "--precision", "int8",
               "--data", "fashion-mnist"])
    line = _one_clear_line(capsys.readouterr().err)
    assert rc == 2 and "(1, 28, 28)" in line and "(1, 8, 8)" in line, line
    assert _files(student) == before
