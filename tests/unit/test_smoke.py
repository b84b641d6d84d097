"""On-device smoke bundles: written from real models, run by the real runner here and under emulated ARM."""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from edgekd.errors import ConfigError
from edgekd.smoke.bundle import IMAGE_IO, RUNNER, make_bundle, run_bundle, safe_extract
from edgekd.targets import load_target
from tests.conftest import EDGEKD


@pytest.fixture(scope="module")
def models(tmp_path_factory, digits, tiny_student):
    """A briefly trained tiny student as TFLite full int8 (int8 I/O) and ONNX fp32."""
    from edgekd.export.onnx import export_onnx
    from edgekd.export.tflite import export_tflite

    model = tiny_student
    d = tmp_path_factory.mktemp("smoke-models")
    export_onnx(model, digits.x_test[:8], d / "m.onnx")
    export_tflite(model, digits.x_test[:8], d / "m.tflite", precision="int8", converter="litert-torch",
                  calibration=digits.x_train[:128])
    return d


@pytest.fixture
def bundle(models, digits, tmp_path):
    def make(kind: str = "tflite"):
        return make_bundle(models / f"m.{kind}", load_target("raspberrypi"), tmp_path / f"bundle_{kind}",
                           digits.x_test[:6], digits.y_test[:6])
    return make


def _reseal(path, name):
    """Update the manifest's hash of ``name`` (to test the check after the integrity check)."""
    from edgekd.fsio import sha256_file

    m = json.loads((path / "manifest.json").read_text())
    m["files"][name] = sha256_file(path / name)
    (path / "manifest.json").write_text(json.dumps(m))


def test_bundle_holds_what_the_board_needs_and_its_archive_unpacks_to_the_same(bundle, tmp_path):
    b = bundle("tflite")
    names = {p.name for p in b.iterdir()}
    assert names == {"model.tflite", "inputs.npy", "reference_outputs.npy", "expected.json", "manifest.json",
                     "run_smoke.py", "README.txt"}
    m = json.loads((b / "manifest.json").read_text())
    assert set(m["files"]) == names - {"manifest.json"} and m["target"] == "raspberrypi" and m["threads"] == 4
    assert m["budget_p90_ms"] == 10.0 and m["made_by"]["edgekd"] and m["precision"] == "int8"
    exp = json.loads((b / "expected.json").read_text())
    assert exp["tolerance"] == {"kind": "steps", "max_steps": 1} and len(exp["true_labels"]) == 6
    assert np.load(b / "inputs.npy").dtype == np.int8  # already in the model's own dtype and layout
    out = safe_extract(b.parent / f"{b.name}.tar.gz", tmp_path / "unpacked")
    assert out.name == b.name and {p.name for p in out.iterdir()} == names


@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_bundle_passes_on_this_host(bundle, kind):
    r = run_bundle(bundle(kind), runs=10)
    assert r["status"] == "PASS" and r["exit_code"] == 0 and r["line"].startswith("PASS: model.")
    assert r["samples"] == 6 and r["p90_ms"] > 0 and r["reasons"] == []


@pytest.mark.emulation
@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_bundle_passes_under_emulated_cortex_a72(bundle, kind):
    r = run_bundle(bundle(kind), emulate_target=load_target("raspberrypi"), runs=3)
    assert r["status"] == "PASS", r
    assert r["machine"] == "aarch64" and r["python"].startswith("3.11") and r["where"] == "emulated cortex-a72"
    assert ("ai_edge_litert" if kind == "tflite" else "onnxruntime") in r["runtime"]
    assert any("not the device's latency" in w for w in r["warnings"])  # emulated time is never a latency


def test_a_changed_model_byte_fails_integrity(bundle):
    b = bundle("tflite")
    data = bytearray((b / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (b / "model.tflite").write_bytes(bytes(data))
    r = run_bundle(b, runs=3)
    assert r["status"] == "FAIL" and r["exit_code"] == 1
    assert r["reasons"] == ["integrity: model.tflite has changed (sha256 differs from the manifest)"]


def test_an_expected_output_changed_beyond_tolerance_fails_as_mismatch(bundle):
    b = bundle("onnx")
    ref = np.load(b / "reference_outputs.npy")
    ref[2] += 0.5
    np.save(b / "reference_outputs.npy", ref)
    _reseal(b, "reference_outputs.npy")
    r = run_bundle(b, runs=3)
    assert r["status"] == "FAIL" and r["reasons"][0].startswith("mismatch: 1 of 6 outputs")
    assert "samples [2]" in r["reasons"][0]


def test_a_missing_runtime_fails_naming_what_to_install(bundle):
    b = bundle("tflite")
    blocked = "ai_edge_litert", "tflite_runtime", "tensorflow", "onnxruntime"
    code = ("import runpy, sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in blocked)
            + f"sys.argv = ['run_smoke.py', {str(b)!r}, '--runs', '3']\n"
            + f"runpy.run_path({str(b / 'run_smoke.py')!r}, run_name='__main__')\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    line = p.stdout.strip().splitlines()[-1]
    assert line.startswith("FAIL") and "runtime missing: no TFLite runtime found" in line
    assert "pip install ai-edge-litert" in line


def test_the_budget_is_a_warning_unless_strict(bundle):
    b = bundle("onnx")
    m = json.loads((b / "manifest.json").read_text())
    m["budget_p90_ms"] = 1e-9
    (b / "manifest.json").write_text(json.dumps(m))
    r = run_bundle(b, runs=5)
    assert r["status"] == "PASS" and any(w.startswith("budget: p90") for w in r["warnings"])
    r = run_bundle(b, runs=5, strict=True)
    assert r["status"] == "FAIL" and r["reasons"][0].startswith("budget: p90")


@pytest.mark.parametrize("shipped", [RUNNER, IMAGE_IO], ids=["run_smoke.py", "image_io.py"])
def test_the_runner_is_python_3_9_and_imports_nothing_of_edgekd(shipped):
    """What a bundle ships runs on the board's own Python: 3.9 syntax, the standard library, numpy, the runtime,
    Pillow (for raw images), and image_io.py from the bundle itself."""
    source = shipped.read_text()
    ast.parse(source, feature_version=(3, 9))  # a 3.10+ construct (match, X | Y in code...) would fail here
    tree = ast.parse(source)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "edgekd" not in imported and imported <= {"argparse", "hashlib", "importlib", "json", "os", "platform", "sys", "time",
                                                     "numpy", "onnxruntime", "image_io", "PIL"}


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "link"])
def test_unpacking_refuses_members_outside_the_folder_and_links(tmp_path, member):
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        if member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(ConfigError, match="unsafe archive"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not list((tmp_path / "out").glob("*")) if \
        (tmp_path / "out").exists() else True


def test_cli_makes_and_runs_a_bundle(models, tmp_path):
    out = tmp_path / "b"
    r = subprocess.run([*EDGEKD, "smoke", str(models / "m.tflite"), "--target", "raspberrypi", "--out", str(out),
                        "--data", "digits", "--samples", "4"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "b.tar.gz").is_file()
    r = subprocess.run([*EDGEKD, "smoke", "run", str(out), "--runs", "3"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith("PASS"), r.stdout + r.stderr
    (out / "inputs.npy").write_bytes(b"x")
    r = subprocess.run([*EDGEKD, "smoke", "run", str(out), "--runs", "3"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and r.stdout.startswith("FAIL") and "integrity: inputs.npy" in r.stdout
