"""The npu-emu backend on the real Vela compiler, with models from the real exporters (litert-torch, TensorFlow).

A convnet student (the default family, Fashion-MNIST's 1x28x28 shape) is trained a few steps on synthetic
class-structured data so its int8 export passes parity, then exported at int8 (int8 I/O), fp32 and dynamic
range. A second model is built with TensorFlow around L2_NORMALIZATION, an operator the Ethos-U55/U65 cannot run.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgekd.backends.npu import bench_npu, check_npu_model, describe
from edgekd.backends.tflite_graph import read_graph
from edgekd.backends.vela_ini import vela_ini_text
from edgekd.errors import BenchError, ConfigError
from edgekd.targets import load_target

NPU_TARGETS = ("ethos-u55-128", "ethos-u55-256", "ethos-u65-256")
SHAPE = (1, 28, 28)


def _student(tmp: Path) -> dict[str, Path]:
    import torch

    from edgekd.export.tflite import export_tflite
    from edgekd.models.students import StudentSpec, build_student

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 600)
    protos = rng.normal(0, 1, (4, int(np.prod(SHAPE)))).astype(np.float32)
    x = (protos[y] + rng.normal(0, 0.8, (600, protos.shape[1]))).reshape((600, *SHAPE)).astype(np.float32)
    torch.manual_seed(0)
    model = build_student(StudentSpec("convnet", 0.5, 1, SHAPE, 4))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(30):
        idx = torch.randint(0, 400, (64,))
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x[idx.numpy()])), torch.from_numpy(y[idx.numpy()]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    out = {}
    for precision in ("int8", "fp32", "dynamic"):
        out[precision] = tmp / f"student_{precision}.tflite"
        export_tflite(model, x[400:], out[precision], precision=precision, converter="litert-torch",
                      calibration=x[:256] if precision == "int8" else None)
    return out


def _l2norm_int8(path: Path, int8_io: bool = True) -> Path:
    """Conv -> L2 normalisation -> dense, int8 by TensorFlow's converter (int8 I/O, or float I/O)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    rng = np.random.default_rng(0)
    inp = tf.keras.Input((8, 8, 1), batch_size=1)
    h = tf.keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    h = tf.keras.layers.Lambda(lambda t: tf.math.l2_normalize(t, axis=-1))(h)
    out = tf.keras.layers.Dense(3)(tf.keras.layers.Flatten()(h))
    conv = tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inp, out))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.random((1, 8, 8, 1), dtype=np.float32)] for _ in range(20))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        conv.inference_input_type = conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("npu")
    return {**_student(tmp), "l2norm": _l2norm_int8(tmp / "l2norm_int8.tflite"),
            "l2norm_float_io": _l2norm_int8(tmp / "l2norm_float_io.tflite", int8_io=False)}


@pytest.mark.parametrize("name", NPU_TARGETS)
def test_student_runs_wholly_on_each_npu_target(models, name):
    target = load_target(name)
    est = bench_npu(models["int8"], target)
    assert est.backend == "npu-emu" and est.source == "estimated" and est.accelerator == target.npu.accelerator
    assert est.cycles_total > 0 and est.cycles_npu > 0 and est.macs > 0
    assert est.inference_time_ms == pytest.approx(est.cycles_total / (target.npu.clock_mhz * 1e3))
    assert est.npu_ops > 0 and est.cpu_ops == 0 and est.npu_fraction == 1.0
    assert est.cpu_fallback == () and est.cpu_fallback_cost == "none"
    assert all(layer.target == "NPU" for layer in est.layers)
    assert sum(layer.macs for layer in est.layers) == est.macs
    assert 0 < est.sram_kib <= target.budget.sram_kib <= target.npu.sram_kib
    assert 0 < est.flash_kib <= target.budget.flash_kib <= target.npu.flash_kib
    assert "not a measurement on a device" in est.how and f"Vela {est.environment['ethos-u-vela']}" in est.how


def test_estimate_follows_the_profile_clock_and_accelerator(models):
    """The .ini and --accelerator-config really reach Vela: same cycles at twice the clock take half the time,
    and twice the MACs per cycle take fewer NPU cycles."""
    target = load_target("ethos-u55-128")
    base = bench_npu(models["int8"], target)
    faster = bench_npu(models["int8"], replace(target, npu=replace(target.npu, clock_mhz=320)))
    assert faster.cycles_total == base.cycles_total
    assert faster.inference_time_ms == pytest.approx(base.inference_time_ms / 2)
    wider = bench_npu(models["int8"], replace(target, npu=replace(target.npu, accelerator="ethos-u55-256")))
    assert wider.cycles_npu < base.cycles_npu


@pytest.mark.parametrize("precision, words", [("fp32", "float (fp32) model"),
                                              ("dynamic", "dynamic-range quantized model")])
def test_float_and_dynamic_models_are_refused(models, precision, words):
    with pytest.raises(BenchError) as e:
        bench_npu(models[precision], load_target("ethos-u55-128"))
    msg = str(e.value)
    assert words in msg and "runs none of its operators" in msg and "--precision int8" in msg
    assert "\n" not in msg


def test_cpu_fallback_operator_is_named_and_its_cost_unknown(models):
    target = load_target("ethos-u55-128")
    est = bench_npu(models["l2norm"], target)
    assert est.cpu_ops == 1 and est.npu_ops >= 2
    assert est.cpu_fallback == ("L2Norm (L2_NORMALIZATION)",)
    assert est.cpu_fallback_cost == "unknown"
    cpu = [layer for layer in est.layers if layer.target == "CPU"]
    assert [layer.tflite_op for layer in cpu] == ["L2_NORMALIZATION"] and cpu[0].cycles == 0
    assert "NOT included" in est.how
    lines = describe(est, target)
    assert any("CPU FALLBACK" in line and "L2_NORMALIZATION" in line and "unknown" in line for line in lines)


def test_float_io_leaves_quantize_and_dequantize_on_the_cpu(models):
    """int8 compute with float input/output is accepted (the NPU runs the middle) and its edges are named."""
    est = bench_npu(models["l2norm_float_io"], load_target("ethos-u55-256"))
    assert est.cpu_fallback == ("Quantize", "L2Norm (L2_NORMALIZATION)", "Dequantize")
    assert est.cpu_ops == 3 and est.npu_ops >= 2 and est.cycles_npu > 0 and est.cpu_fallback_cost == "unknown"


def test_graph_kinds_of_real_exports(models):
    assert read_graph(models["int8"]).kind == "full-int8"
    assert read_graph(models["fp32"]).kind == "float"
    assert read_graph(models["dynamic"]).kind == "dynamic-range"
    assert read_graph(models["l2norm"]).kind == "full-int8"
    assert read_graph(models["l2norm_float_io"]).kind == "int8-float-io"
    assert check_npu_model(models["int8"]).ops


def test_out_dir_keeps_the_compiled_model_and_the_record(models, tmp_path):
    target = load_target("ethos-u65-256")
    est = bench_npu(models["int8"], target, out_dir=tmp_path / "npu")
    kept = {p.name for p in (tmp_path / "npu").iterdir()}
    assert {"ethos-u65-256.ini", "npu_estimate.json", "student_int8_vela.tflite"} <= kept
    assert not any(n.startswith(".tmp") for n in kept)
    assert Path(est.compiled_path).is_file() and Path(est.compiled_path).stat().st_size > 0
    saved = json.loads((tmp_path / "npu" / "npu_estimate.json").read_text())
    assert saved["cycles_total"] == est.cycles_total and saved["cpu_fallback_cost"] == "none"
    assert "arena_cache_size=1048576" in (tmp_path / "npu" / "ethos-u65-256.ini").read_text()  # the SRAM budget


def test_bad_requests_are_one_line_errors(models, tmp_path):
    with pytest.raises(ConfigError, match="has no NPU"):
        bench_npu(models["int8"], load_target("raspberrypi"))
    with pytest.raises(ConfigError, match="needs an existing .tflite"):
        bench_npu(tmp_path / "missing.tflite", load_target("ethos-u55-128"))
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(BenchError, match="not a readable TFLite model"):
        bench_npu(junk, load_target("ethos-u55-128"))


def test_vela_ini_text_carries_the_profile():
    npu = load_target("ethos-u55-128").npu
    text = vela_ini_text(npu, 192)
    for line in ("core_clock=1.6e+08", "Sram_burst_length=8", "Sram_read_latency=13", "OffChipFlash_clock_scale=0.303",
                 "const_mem_area=Axi1", "arena_mem_area=Axi0", "arena_cache_size=196608"):
        assert line in text.splitlines()
    assert "max_reads" not in text  # left to Vela's default when the profile does not set it
    with pytest.raises(ValueError):
        vela_ini_text(npu, 0)
