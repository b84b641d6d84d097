"""Emulated ARM on the real thing: QEMU user mode, the aarch64 onnxruntime / LiteRT wheels, edgekd's TCG plugin.

Needs the environment that ./setup.sh builds (edgekd emu setup); CI runs the set-up first.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from edgekd.emu.env import find_env
from edgekd.emu.run import run_emulated, run_emulated_many
from edgekd.errors import EmulationError, ParityError
from tests.conftest import EDGEKD

pytestmark = pytest.mark.emulation


@pytest.fixture(scope="module")
def env():
    return find_env()


@pytest.fixture(scope="module")
def models(tmp_path_factory, digits, tiny_student):
    """A briefly trained tiny student exported to ONNX fp32/int8 and TFLite fp32/int8, plus real samples."""
    from edgekd.export.onnx import export_onnx
    from edgekd.export.tflite import export_tflite
    from edgekd.quantize.ort_int8 import OrtInt8Config, quantize_onnx_int8

    model = tiny_student
    d = tmp_path_factory.mktemp("arm-models")
    x = digits.x_test[:6]
    calib = digits.x_train[:128]
    export_onnx(model, x, d / "fp32.onnx")
    quantize_onnx_int8(d / "fp32.onnx", calib, d / "int8.onnx", OrtInt8Config(calibration_samples=128))
    export_tflite(model, x, d / "fp32.tflite", precision="fp32", converter="litert-torch")
    export_tflite(model, x, d / "int8.tflite", precision="int8", converter="litert-torch", calibration=calib)
    return d, x


def test_an_int8_onnx_model_is_estimated_as_int8_without_being_told(models):
    """`edgekd bench model_int8.onnx --target raspberrypi` names no precision: a QDQ model has a float input, and
    was taken for fp32 (fp32's CPI and its wide band) until the graph's operators were read."""
    from edgekd.emu.run import host_reference

    d, x = models
    assert host_reference(d / "int8.onnx", "onnxruntime", x, None)[3] == "int8"
    assert host_reference(d / "fp32.onnx", "onnxruntime", x, None)[3] == "fp32"


@pytest.mark.parametrize("core", ["cortex-a72", "cortex-a76"])
def test_fp32_student_matches_host_and_int8_within_one_step(models, env, core):
    d, x = models
    items = [(d / "fp32.onnx", x, "fp32"), (d / "fp32.tflite", x, "fp32"), (d / "int8.onnx", x, "int8"),
             (d / "int8.tflite", x, "int8")]
    ort32, lt32, ort8, lt8 = run_emulated_many(items, core, n_cores=4, threads=1, runs=2, env=env)
    for r in (ort32, lt32):
        assert r.parity["passed"] and r.parity["max_abs_diff"] <= 1e-4 and r.parity["n_samples"] == len(x)
    for r in (ort8, lt8):
        assert r.parity["passed"] and r.parity["max_quant_steps"] <= 1
    assert lt8.parity["identical_fraction"] > 0.9  # int8 kernels are bit-exact across CPUs in practice
    assert {r.runtime for r in (ort32, lt32)} == {"onnxruntime", "litert"}
    assert all(r.core == core for r in (ort32, lt32, ort8, lt8))
    for r in (ort32, lt32, ort8, lt8):
        assert r.steady_instructions > 10_000 and r.first_instructions >= r.steady_instructions * 0.5
        assert r.environment["cpu_part"] == {"cortex-a72": "0xd08", "cortex-a76": "0xd0b"}[core]


def test_instruction_counts_repeat_within_half_a_percent_and_grow_with_the_model(models, env):
    d, x = models
    for name in ("fp32.tflite", "fp32.onnx"):  # two separate emulated processes each
        a = run_emulated(d / name, x[:1], "cortex-a72", threads=1, runs=5, env=env)
        b = run_emulated(d / name, x[:1], "cortex-a72", threads=1, runs=5, env=env)
        assert abs(a.steady_instructions - b.steady_instructions) / a.steady_instructions < 0.005, (a.windows, b.windows)
    # the int8 model runs different (integer) kernels: a different count
    c = run_emulated(d / "int8.tflite", x[:1], "cortex-a72", threads=1, runs=5, env=env)
    assert c.steady_instructions != a.steady_instructions


def test_a76_dot_product_kernels_cut_int8_instructions(models, env):
    """XNNPACK picks its int8 kernels from the emulated CPU: the A76's dot-product ones execute fewer instructions
    than the A72's (what the cpuinfo + -cpu pair is for; TOOLCHAIN.md saw 24.0 M vs 7.8 M on a larger net)."""
    d, x = models
    a72 = run_emulated(d / "int8.tflite", x[:1], "cortex-a72", threads=1, runs=2, env=env)
    a76 = run_emulated(d / "int8.tflite", x[:1], "cortex-a76", threads=1, runs=2, env=env)
    assert a76.steady_instructions < a72.steady_instructions


def test_threads_split_the_work_between_guest_threads(models, env):
    """With 2 threads LiteRT hands part of an inference to a second guest thread. Whether the helper wakes in time
    for one given inference depends on host scheduling (qemu's guest threads share this machine's 2 cores; a full
    suite once saw two steady windows in a row run on one thread), so the test asks it of one of 4 steady windows."""
    d, x = models
    r = run_emulated(d / "fp32.tflite", x[:1], "cortex-a72", n_cores=4, threads=2, runs=5, env=env)
    busy = [w for w in r.windows[1:] if len([n for n in w["threads"].values() if n > 1000]) >= 2]
    assert busy, r.windows  # LiteRT used a second guest thread
    assert all(w["max_thread"] < w["total"] for w in busy)  # split: no thread did the whole inference


def test_a_model_the_aarch64_runtime_rejects_names_itself(tmp_path, env):
    """The host reference runs first, so a bad file is refused before emulation; this drives the guest itself."""
    from edgekd.emu.run import _qemu

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07this is not a model")
    (tmp_path / "m0").mkdir()
    np.save(tmp_path / "m0" / "feeds.npy", np.zeros((1, 1, 4), np.float32))
    spec = {"threads": 1, "runs": 1, "models": [{"model": str(bad), "runtime": "onnxruntime",
                                                  "feeds": str(tmp_path / "m0" / "feeds.npy"),
                                                  "out": str(tmp_path / "m0")}]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(EmulationError) as e:
        _qemu(env, "cortex-a72", 4, tmp_path, 300, [bad], 1024)
    assert "broken.onnx" in e.value.cause and "aarch64 onnxruntime" in e.value.cause and "\n" not in str(e.value)


def test_guest_disagreement_raises_parity_error():
    from edgekd.emu.run import _parity

    host = np.array([[10, -3, 7]], np.int8)
    assert _parity(host, host + np.array([[1, 0, -1]], np.int8), (0.1, 0), "int8", "litert", "cortex-a72",
                   "m.tflite")["max_quant_steps"] == 1
    with pytest.raises(ParityError, match="2 quantization steps"):
        _parity(host, host + np.array([[2, 0, 0]], np.int8), (0.1, 0), "int8", "litert", "cortex-a72", "m.tflite")
    f = np.array([[0.5, 1.5, -2.0]], np.float32)
    with pytest.raises(ParityError, match="m.onnx"):
        _parity(f, f + 1e-3, None, "fp32", "onnxruntime", "cortex-a76", "m.onnx")
    with pytest.raises(ParityError, match="one quantization step"):
        _parity(f, f + 0.3, ("dequantized", 0.1), "int8", "onnxruntime", "cortex-a76", "m.onnx")


def test_cli_bench_on_an_arm_target_estimates_and_says_so(models, tmp_path):
    d, _ = models
    out = tmp_path / "est.json"
    r = subprocess.run([*EDGEKD, "bench", str(d / "int8.tflite"), "--target", "raspberrypi", "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "estimated" in r.stdout and "measured" not in r.stdout.replace("not measured", "")
    est = json.loads(out.read_text())
    assert est["core"] == "cortex-a72" and est["threads"] == 4 and est["low_ms"] < est["ms"] < est["high_ms"]
    assert est["instructions"] > 0 and est["parity"]["passed"]


def test_missing_environment_is_one_line_with_the_setup_command(models, tmp_path, monkeypatch):
    d, _ = models
    env = {"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "empty"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([*EDGEKD, "bench", str(d / "int8.tflite"), "--target", "raspberrypi"], capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "not set up" in lines[0] and "edgekd emu setup" in lines[0]


def test_a_target_with_an_unknown_core_is_refused_with_the_known_ones(tmp_path):
    (tmp_path / "board.toml").write_text(
        'description = "x"\narch = "aarch64"\ncore = "cortex-a99"\nclock_ghz = 2.0\ncores = 4\nthreads = 4\n'
        'memory_mb = 1024\nruntimes = ["litert"]\nprecisions = ["int8"]\nemulation = "qemu-user"\n'
        '[budget]\np90_latency_ms = 5.0\n')
    r = subprocess.run([*EDGEKD, "targets", "show", "board", "--targets-dir", str(tmp_path)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "unknown core 'cortex-a99'" in r.stderr and "cortex-a53, cortex-a72, cortex-a73, cortex-a75, cortex-a76" in r.stderr


def test_a_second_setup_does_nothing(env):
    """The set-up is idempotent: with the environment ready it returns it without touching anything."""
    from edgekd.emu.env import setup

    ready = env.root / "READY.json"
    before = (ready.stat().st_mtime_ns, sorted(p.name for p in env.root.iterdir()))
    said = []
    again = setup(say=said.append)
    assert again.root == env.root and said == []  # nothing downloaded, nothing built
    assert (ready.stat().st_mtime_ns, sorted(p.name for p in env.root.iterdir())) == before
