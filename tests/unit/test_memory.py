"""Repeated int8 TFLite conversions in one process keep nothing alive (issue 9's soak found ~3 MB per conversion
retained by torchao/torch caches that hold every PT2E graph)."""

from __future__ import annotations

import gc

import numpy as np
import torch


def test_int8_litert_conversion_leaves_no_graph_behind(tmp_path):
    from edgekd.export.tflite import export_tflite

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    x = np.random.default_rng(0).random((32, 1, 8, 8), dtype=np.float32)
    import torchao.utils
    from torch.ao.quantization.fx.utils import assert_and_get_unique_device
    from torch.fx.experimental import proxy_tensor

    gc.collect()
    before = _graph_modules()
    caches = (torchao.utils._assert_and_get_unique_device.cache_info().currsize,
              assert_and_get_unique_device.cache_info().currsize, len(proxy_tensor._FAKE_TENSOR_ID_TO_PROXY_MAP_FOR_EXPORT))
    for i in range(2):
        rec = export_tflite(net, x[:8], tmp_path / f"m{i}.tflite", precision="int8", converter="litert-torch",
                            calibration=x)
        assert rec.config["route"] == "litert-torch"
    # the conversion runs in a child process (edgekd.isolate) and clears these there; this process gains nothing
    after = (torchao.utils._assert_and_get_unique_device.cache_info().currsize,
             assert_and_get_unique_device.cache_info().currsize, len(proxy_tensor._FAKE_TENSOR_ID_TO_PROXY_MAP_FOR_EXPORT))
    assert all(a <= b for a, b in zip(after, caches)), (after, caches)
    gc.collect()
    assert _graph_modules() <= before  # (other tests in this process may hold graphs of their own)


def _graph_modules() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, torch.fx.GraphModule))


def test_fp32_litert_conversion_leaves_no_export_cache_behind(tmp_path):
    """fp32 (and fp16) conversions go through torch.export too: its fake-tensor dispatch cache grew by ~1,100
    entries per fresh default build (benchmarks/soak.py's object census) until it was cleared after every precision."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from edgekd.export.tflite import export_tflite

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    x = np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32)
    before = len(FakeTensorMode.cache)  # other tests in this process may have filled it
    rec = export_tflite(net, x, tmp_path / "m.tflite", precision="fp32", converter="litert-torch")
    assert rec.config["route"] == "litert-torch"
    assert len(FakeTensorMode.cache) <= before
