"""The LiteRT host benchmark on real .tflite files (fp32 and full int8), and the suffix dispatcher."""

from __future__ import annotations

import numpy as np
import pytest

from edgekd.bench import bench_host, bench_tflite_host
from edgekd.errors import BenchError, ConfigError

SHAPE = (1, 12, 12)


@pytest.fixture(scope="module")
def tflite_models(tmp_path_factory):
    """An untrained convnet exported by litert-torch at fp32 and full int8: the benchmark needs no accuracy."""
    import torch

    from edgekd.export.tflite import export_tflite
    from edgekd.models.students import StudentSpec, build_student

    torch.manual_seed(0)
    model = build_student(StudentSpec("convnet", 0.25, 1, SHAPE, 3)).eval()
    x = np.random.default_rng(0).random((64, *SHAPE), dtype=np.float32)
    d = tmp_path_factory.mktemp("tflite")
    return {p: export_tflite(model, x[:16], d / f"{p}.tflite", precision=p, converter="litert-torch",
                             calibration=x if p == "int8" else None, tolerances={"min_agreement": 0.0})
            for p in ("fp32", "int8")}


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_litert_bench_returns_sane_numbers(tflite_models, precision):
    rec = tflite_models[precision]
    r = bench_tflite_host(rec.path, runs=25, warmup=3, timeout_s=120)
    assert r.backend == "litert-host" and r.source == "measured" and r.runs == 25 and r.warmup == 3
    assert 0 < r.p50_ms <= r.p90_ms <= r.p99_ms and r.mean_ms > 0 and r.cold_start_ms > 0
    assert r.peak_rss_mb >= r.baseline_rss_mb > 0
    assert r.model_size_mb == pytest.approx(rec.size_bytes / 2**20)
    assert r.environment["ai-edge-litert"] and r.environment["logical_cores"] >= 1
    assert r.environment["input_dtype"] == rec.config["input"]["dtype"] == ("int8" if precision == "int8" else "float32")
    assert r.environment["input_shape"] == [1, 12, 12, 1]  # the model's own NHWC input
    assert "ai-edge-litert" in r.how and "25 runs after 3 warm-up" in r.how


def test_bench_host_dispatches_by_suffix_and_checks_a_given_shape(tflite_models):
    path = tflite_models["fp32"].path
    assert bench_host(path, SHAPE, runs=3, warmup=0).backend == "litert-host"  # NCHW shape fits the NHWC model
    with pytest.raises(BenchError, match="do not fit") as e:
        bench_host(path, (3, 12, 12), runs=3, warmup=0)
    assert str(e.value).count("Fix:") == 1
    with pytest.raises(ConfigError, match="unknown model suffix"):
        bench_host(path.replace(".tflite", ".pb"))
    with pytest.raises(ConfigError, match="needs input_shape"):
        bench_host("model.onnx")


def test_non_model_tflite_is_a_one_line_bench_error(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer at all" * 10)
    with pytest.raises(BenchError) as e:
        bench_tflite_host(bad, runs=2, warmup=0, timeout_s=60)
    msg = str(e.value)
    assert "LiteRT cannot load" in msg and "\n" not in msg and msg.count("Fix:") == 1


def test_litert_bench_rejects_bad_arguments(tflite_models, tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        bench_tflite_host(tmp_path / "missing.tflite")
    with pytest.raises(ConfigError, match="runs"):
        bench_tflite_host(tflite_models["fp32"].path, runs=0)
    with pytest.raises(ConfigError, match="input_shape"):
        bench_tflite_host(tflite_models["fp32"].path, input_shape=(0, 12))
