"""TFLite export on the real converters (litert-torch, onnx2tf + TensorFlow) and the real LiteRT interpreter.

The students are trained a few steps on synthetic, class-structured data so that int8 parity (argmax
agreement) means something. Only the fallback tests replace a converter function, to force a failure.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from edgekd.errors import ConfigError, ExportError, ParityError
from edgekd.export.tflite import TFLITE_ROUTES, export_tflite
from tests.unit import converter_routes
from edgekd.export.tflite_runtime import run_tflite


N_CLASSES = 4


def _data(shape: tuple[int, ...], n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class prototypes plus noise: learnable in a few steps, with a spread of logits."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, n)
    protos = rng.normal(0, 1, (N_CLASSES, int(np.prod(shape)))).astype(np.float32)
    x = protos[y] + rng.normal(0, 0.8, (n, int(np.prod(shape)))).astype(np.float32)
    return x.reshape((n, *shape)).astype(np.float32), y


def _trained(family: str, shape: tuple[int, ...], steps: int = 40):
    import torch

    from edgekd.models.students import StudentSpec, build_student

    torch.manual_seed(0)
    model = build_student(StudentSpec(family, 0.25, 1, shape, N_CLASSES))
    x, y = _data(shape)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(steps):
        idx = torch.randint(0, 400, (64,))
        loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    # held-out parity samples and separate calibration samples
    return model, x[400:], x[:256]


@pytest.fixture(scope="module")
def students():
    return {"convnet": _trained("convnet", (1, 16, 16)), "mobilenet": _trained("mobilenet", (1, 16, 16)),
            "mlp": _trained("mlp", (20,))}


def _torch_logits(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("route", ["litert-torch", "onnx2tf"])
@pytest.mark.parametrize("family", ["convnet", "mobilenet", "mlp"])  # mobilenet: depthwise convs, ReLU6
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_route_precision_converts_and_passes_parity(students, tmp_path, route, family, precision):
    model, sample, calib = students[family]
    out = tmp_path / f"{family}_{precision}.tflite"
    rec = export_tflite(model, sample, out, precision=precision, converter=route,
                        calibration=calib if precision == "int8" else None)
    assert out.is_file() and rec.path == str(out) and rec.format == "tflite" and rec.precision == precision
    assert rec.parity["passed"] and rec.parity["n_samples"] == len(sample)
    assert rec.config["route"] == route and rec.config["fallback_reason"] is None
    assert route in rec.tool
    assert rec.config["layout"] == ("NC" if family == "mlp" else "NHWC")
    assert rec.input_shape == ((1, 20) if family == "mlp" else (1, 16, 16, 1))  # static batch 1, NHWC
    if precision == "int8":  # full int8: int8 tensors at the model's input and output, with their parameters
        for side in ("input", "output"):
            assert rec.config[side]["dtype"] == "int8"
            scale, _zero = rec.config[side]["quantization"]
            assert scale > 0
        assert rec.parity["argmax_agreement"] >= 0.9
    else:
        assert rec.config["input"]["dtype"] == "float32"
        assert rec.parity["max_abs_diff"] <= (1e-4 if precision == "fp32" else 1e-2)
    # the runtime helper reproduces the recorded parity from NCHW data
    got = run_tflite(out, sample)
    ref = _torch_logits(model, sample)
    assert got.shape == ref.shape and got.dtype == np.float32
    assert np.abs(got - ref).max() == pytest.approx(rec.parity["max_abs_diff"], rel=1e-5, abs=1e-7)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("route", ["litert-torch", "onnx2tf"])
def test_dynamic_range_converts(students, tmp_path, route):
    model, sample, _ = students["convnet"]
    rec = export_tflite(model, sample, tmp_path / "dyn.tflite", precision="dynamic", converter=route)
    assert rec.parity["passed"] and rec.config["input"]["dtype"] == "float32"
    assert rec.config["tensor_dtypes"].get("int8", 0) > 0  # weights really are int8


def test_auto_uses_litert_torch_first(students, tmp_path):
    model, sample, _ = students["mlp"]
    rec = export_tflite(model, sample, tmp_path / "m.tflite")
    assert rec.config["route"] == "litert-torch" and rec.config["fallback_reason"] is None


def test_auto_falls_back_on_conversion_error(students, tmp_path, monkeypatch):
    monkeypatch.setitem(TFLITE_ROUTES._entries, "litert-torch", converter_routes.raises)
    model, sample, _ = students["mlp"]
    rec = export_tflite(model, sample, tmp_path / "m.tflite", converter="auto")
    assert rec.config["route"] == "onnx2tf" and rec.parity["passed"]
    assert "litert-torch" in rec.config["fallback_reason"] and "made_up_op" in rec.config["fallback_reason"]
    assert "onnx2tf" in rec.tool


def test_auto_falls_back_on_parity_failure(students, tmp_path, monkeypatch):
    """litert-torch 'succeeds' but converts a different model: parity fails, onnx2tf takes over."""
    monkeypatch.setitem(TFLITE_ROUTES._entries, "litert-torch", converter_routes.wrong_model)
    model, sample, _ = students["mlp"]
    rec = export_tflite(model, sample, tmp_path / "m.tflite")
    assert rec.config["route"] == "onnx2tf"
    assert "parity failed" in rec.config["fallback_reason"]


def test_parity_failure_leaves_no_file(students, tmp_path):
    model, sample, _ = students["mlp"]
    out = tmp_path / "m.tflite"
    with pytest.raises(ParityError) as err:
        export_tflite(model, sample, out, precision="fp16", converter="litert-torch", tolerances={"atol": 1e-9, "rtol": None})
    msg = str(err.value)
    assert "\n" not in msg and "logits" in msg and "litert-torch" in msg and "max abs diff" in msg
    assert not out.exists() and _leftovers(tmp_path) == []


@pytest.mark.slow
def test_onnx2tf_runs_offline_for_a_3_channel_image_model(tmp_path, monkeypatch):
    """onnx2tf fetches a sample file for 4-D 3-channel inputs unless it is present: no connection may be tried."""
    import os

    model, sample, _ = _trained("convnet", (3, 16, 16), steps=20)
    attempts: list[tuple] = []

    def no_network(*args, **_kwargs):
        attempts.append(args)
        raise OSError("network access attempted during conversion")

    from edgekd.export.tflite import onnx2tf_route

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)  # name lookup comes first in requests
    cwd = os.getcwd()
    # the route as its child process runs it, here in this process so that the patched socket sees any attempt
    info = onnx2tf_route(model.eval(), np.ascontiguousarray(sample[:64], dtype=np.float32), None, "fp32", None,
                         tmp_path)
    assert attempts == []
    assert run_tflite(info["file"], sample[:1]).shape == (1, N_CLASSES)
    assert os.getcwd() == cwd and not list(Path(cwd).glob("calibration_image_sample_data_*"))


def test_calibration_shape_mismatch_is_a_config_error(students, tmp_path):
    model, sample, _ = students["convnet"]
    with pytest.raises(ConfigError) as err:
        export_tflite(model, sample, tmp_path / "m.tflite", precision="int8", calibration=np.zeros((8, 1, 8, 8)))
    assert "(1, 8, 8)" in str(err.value) and "(1, 16, 16)" in str(err.value)
    with pytest.raises(ConfigError, match="calibration"):
        export_tflite(model, sample, tmp_path / "m.tflite", precision="int8")
    with pytest.raises(ConfigError, match="precision"):
        export_tflite(model, sample, tmp_path / "m.tflite", precision="int4")
    with pytest.raises(ConfigError, match="converter"):
        export_tflite(model, sample, tmp_path / "m.tflite", converter="tflite_convert")
    assert not (tmp_path / "m.tflite").exists()


def test_onnx_file_that_is_not_a_model(students, tmp_path):
    model, sample, _ = students["mlp"]
    bogus = tmp_path / "model.onnx"
    bogus.write_text("not a model")
    with pytest.raises(ExportError) as err:
        export_tflite(model, sample, tmp_path / "m.tflite", converter="onnx2tf", onnx_path=bogus)
    assert "\n" not in str(err.value) and "Fix:" in str(err.value)
    assert not (tmp_path / "m.tflite").exists() and _leftovers(tmp_path) == []


def test_unsupported_op_is_a_one_line_export_error(tmp_path):
    import torch

    class WithSvd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(20, 20)

        def forward(self, x):
            return torch.linalg.svd(self.fc(x).reshape(x.shape[0], 4, 5))[1]

    x = np.random.default_rng(0).normal(size=(8, 20)).astype(np.float32)
    out = tmp_path / "svd.tflite"
    with pytest.raises(ExportError) as err:
        export_tflite(WithSvd(), x, out, converter="litert-torch")
    msg = str(err.value)
    assert "\n" not in msg and "svd" in msg and "Fix:" in msg
    assert not out.exists() and _leftovers(tmp_path) == []


def test_run_tflite_rejects_bad_files_and_shapes(students, tmp_path):
    bogus = tmp_path / "bogus.tflite"
    bogus.write_bytes(b"\x00" * 64)
    with pytest.raises(ExportError, match="LiteRT cannot load"):
        run_tflite(bogus, np.zeros((1, 20), np.float32))
    with pytest.raises(ConfigError, match="not found"):
        run_tflite(tmp_path / "missing.tflite", np.zeros((1, 20), np.float32))
    model, sample, _ = students["mlp"]
    rec = export_tflite(model, sample, tmp_path / "m.tflite", converter="litert-torch")
    with pytest.raises(ConfigError, match="do not fit"):
        run_tflite(rec.path, np.zeros((2, 21), np.float32))


def test_mobilenet_int8_onnx_keeps_depthwise_convs_and_agrees(students, tmp_path):
    """onnxruntime's static int8 of a depthwise-separable student: depthwise convs (group = channels) survive
    export and quantization, and int8 logits agree with the float model's."""
    import onnx

    from edgekd.export.onnx import export_onnx
    from edgekd.quantize.ort_int8 import quantize_onnx_int8
    from edgekd.stages import run_onnx_outputs

    model, sample, calib = students["mobilenet"]
    fp32 = export_onnx(model, sample, tmp_path / "m.onnx")
    q = quantize_onnx_int8(fp32, calib, tmp_path / "m_int8.onnx")
    graph = onnx.load(q.path).graph
    groups = [a.i for n in graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "group"]
    assert groups and max(groups) > 1
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)
    agree = (run_onnx_outputs(q.path, sample).argmax(1) == _torch_logits(model, sample).argmax(1)).mean()
    assert agree >= 0.9
