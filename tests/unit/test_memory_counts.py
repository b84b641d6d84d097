"""The memory counts edgekd's TCG plugin makes, on real QEMU with the real aarch64 onnxruntime: loads, stores,
their bytes and a modelled last-level cache's DRAM traffic. They must repeat, grow with what the model moves,
and make a memory-bound fp32 model's memory term larger than the int8 one's of the same architecture."""

from __future__ import annotations

import numpy as np
import pytest

from edgekd.emu.env import find_env
from edgekd.emu.run import run_emulated_many

pytestmark = pytest.mark.emulation
LLC_KB = 64  # a small modelled cache, so that models small enough for a unit test spill out of it


def _net(channels: int):
    import torch.nn as nn

    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
                         nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(channels, 10)).eval()


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    """base (16 ch, 32 px), 4x the activations (64 px), 16x the weights (64 ch), and base int8: counted twice."""
    import torch

    from edgekd.export.onnx import export_onnx
    from edgekd.quantize.ort_int8 import OrtInt8Config, quantize_onnx_int8

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("memory-counts")
    rng = np.random.default_rng(0)
    items = {}
    for name, ch, px in (("base", 16, 32), ("activations", 16, 64), ("weights", 64, 32)):
        x = rng.standard_normal((4, 3, px, px)).astype(np.float32)
        export_onnx(_net(ch), x, d / f"{name}.onnx", min_agreement=None)
        items[name] = (d / f"{name}.onnx", x[:1], "fp32")
    x = items["base"][1]
    quantize_onnx_int8(d / "base.onnx", rng.standard_normal((32, 3, 32, 32)).astype(np.float32),
                       d / "base_int8.onnx", OrtInt8Config(calibration_samples=32), min_agreement=None)
    items["int8"] = (d / "base_int8.onnx", x, None)
    env = find_env()
    names = list(items)
    runs = [dict(zip(names, run_emulated_many([items[n] for n in names], "cortex-a72", threads=1, runs=3, env=env,
                                              llc_kb=LLC_KB))) for _ in range(2)]
    return runs


def test_memory_counts_repeat_within_one_percent(counted):
    first, second = counted
    for name, run in first.items():
        t = run.traffic
        assert t["llc_kb"] == LLC_KB and t["loads"] > 0 and t["stores"] > 0 and t["dram_bytes"] > 0
        assert t["llc_miss_spread"] < 0.01, (name, t)  # the steady inferences of one process
        again = second[name].traffic  # and another emulated process
        for key in ("load_bytes", "store_bytes", "dram_bytes"):
            assert abs(again[key] - t[key]) <= 0.01 * t[key], (name, key, t[key], again[key])


def test_memory_counts_grow_with_activation_and_weight_bytes(counted):
    run = counted[0]
    base, acts, weights = (run[n].traffic for n in ("base", "activations", "weights"))
    assert acts["store_bytes"] > 3 * base["store_bytes"]  # 4x the activations written
    assert acts["dram_bytes"] > 2 * base["dram_bytes"]
    assert weights["load_bytes"] > 4 * base["load_bytes"]  # 16x the weights (and 4x the channels) read
    assert weights["dram_bytes"] > 2 * base["dram_bytes"]


def test_a_memory_bound_fp32_model_gets_a_larger_memory_term_than_its_int8_version(counted):
    from edgekd.emu.estimator import estimate_ms

    fp32, int8 = counted[0]["base"], counted[0]["int8"]
    assert fp32.dram_bytes > 1.5 * int8.dram_bytes
    e32 = estimate_ms(fp32.steady_instructions, "cortex-a72", 1.5, 4, "fp32", dram_bytes=fp32.dram_bytes)
    e8 = estimate_ms(int8.steady_instructions, "cortex-a72", 1.5, 4, "int8", dram_bytes=int8.dram_bytes)
    assert e32.memory_ms > e8.memory_ms > 0
    assert e32.ms == pytest.approx(e32.compute_ms + e32.memory_ms)
    assert "DRAM traffic" in e32.method and "compute" in e32.method and "memory" in e32.method
