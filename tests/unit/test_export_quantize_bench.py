"""Export to ONNX, parity, ORT static int8 quantization and the host benchmark, on a tiny conv net."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from edgekd.bench import bench_onnx_host, percentiles  # noqa: E402
from edgekd.errors import BenchError, ConfigError, ExportError, ParityError  # noqa: E402
from edgekd.export import check_parity, compare_outputs, export_onnx, run_onnx  # noqa: E402
from edgekd.fsio import sha256_file  # noqa: E402
from edgekd.quantize import OrtInt8Config, quantize_onnx_int8  # noqa: E402


class TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


def structured_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three classes of 1x8x8 images: horizontal stripes, vertical stripes, checkerboard; plus noise."""
    rng = np.random.default_rng(seed)
    i, j = np.mgrid[0:8, 0:8]
    patterns = np.stack([(i % 2), (j % 2), ((i + j) % 2)]).astype(np.float32)
    y = rng.integers(0, 3, n)
    x = 0.7 * patterns[y] + 0.3 * rng.random((n, 8, 8), dtype=np.float32)
    return x[:, None].astype(np.float32), y


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    net = TinyNet()
    x, y = structured_data(256, seed=1)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net, x


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    net, x = trained
    return export_onnx(net, x[:32], tmp_path_factory.mktemp("export") / "tiny.onnx")


def test_export_writes_checked_fp32_onnx_with_dynamic_batch(trained, exported):
    net, x = trained
    assert exported.format == "onnx" and exported.precision == "fp32"
    assert exported.sha256 == sha256_file(exported.path) and exported.size_bytes > 0
    assert isinstance(exported.input_shape[0], str) and exported.input_shape[1:] == (1, 8, 8)
    assert exported.parity["passed"] and exported.parity["output"] == "logits"
    assert "opset 17" in exported.tool and "onnxsim" in exported.tool
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(x[:7])).numpy()
    out1, out7 = run_onnx(exported.path, x[:1]), run_onnx(exported.path, x[:7])
    assert out1.shape == (1, 3) and out7.shape == (7, 3)
    np.testing.assert_allclose(out7, ref, atol=1e-4)
    np.testing.assert_allclose(run_onnx(exported.path, x[:7], batch_size=3), out7, atol=1e-6)


def test_export_restores_training_mode_and_leaves_no_file_on_parity_failure(trained, tmp_path):
    net, x = trained
    net.train()
    with pytest.raises(ParityError, match="logits"):
        export_onnx(net, x[:8], tmp_path / "m.onnx", min_agreement=1.5)  # cannot pass
    assert net.training
    assert list(tmp_path.iterdir()) == []  # neither the model nor a .tmp- file is left behind
    net.eval()


def test_export_falls_back_to_dynamo_when_legacy_fails(trained, tmp_path, monkeypatch):
    from edgekd.export import onnx as onnx_mod

    def broken(*args, **kwargs):
        raise RuntimeError("simulated tracing failure")

    monkeypatch.setattr(onnx_mod, "_export_legacy", broken)
    net, x = trained
    m = export_onnx(net, x[:4], tmp_path / "d.onnx")
    assert "dynamo" in m.tool and m.config["exporter"] == "dynamo"
    assert any("simulated tracing failure" in n for n in m.config["notes"])
    assert run_onnx(m.path, x[:7]).shape == (7, 3)


def test_export_rejects_bad_input(trained, tmp_path):
    net, x = trained
    with pytest.raises(ConfigError, match="sample"):
        export_onnx(net, x[0, 0, 0], tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="opset"):
        export_onnx(net, x[:2], tmp_path / "m.onnx", opset=9)
    with pytest.raises(ExportError, match="fails on the sample"):
        export_onnx(net, np.zeros((2, 3, 8, 8), np.float32), tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="exporter"):
        export_onnx(net, x[:2], tmp_path / "m.onnx", exporter="onnx")
    assert list(tmp_path.iterdir()) == []


def test_parity_perturbed_output_raises_with_output_name_and_max_diff():
    ref = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    assert check_parity(ref, ref + 1e-6, output="logits", route="r").passed
    bad = ref.copy()
    bad[3, 1] += 0.5
    with pytest.raises(ParityError) as e:
        check_parity(ref, bad, output="logits", route="torch -> onnx fp32")
    msg = str(e.value)
    assert "'logits'" in msg and "torch -> onnx fp32" in msg and "max abs diff 0.5" in msg and "\n" not in msg
    rep = compare_outputs(ref, bad, output="logits", atol=None, min_agreement=0.9)
    assert rep.max_abs_diff == pytest.approx(0.5, abs=1e-6) and rep.n_samples == 50
    assert rep.as_dict()["passed"] == rep.passed
    assert not compare_outputs(ref, ref[:, :2]).passed  # shape mismatch: a failed report, no exception


def test_parity_limit_scales_with_the_output_not_element_by_element():
    ref = np.random.default_rng(1).normal(size=(40, 5)) * 40.0  # logits up to ~100: fp16 rounding is ~0.05 there
    near_zero = np.argmin(np.abs(ref))
    err = np.zeros_like(ref)
    err.flat[near_zero] = 0.3  # a large error on a near-zero logit: allclose's per-element rtol would reject it
    scale = float(np.abs(ref).max())
    rep = compare_outputs(ref, ref + err, atol=1e-2, rtol=1e-2, min_agreement=None)
    assert rep.passed and rep.scale == pytest.approx(scale) and rep.limit == pytest.approx(1e-2 + 1e-2 * scale)
    assert not compare_outputs(ref, ref + err, atol=1e-2, rtol=None, min_agreement=None).passed  # absolute only
    too_far = err.copy()
    too_far.flat[near_zero] = 1e-2 + 1e-2 * scale + 1e-3
    rep = compare_outputs(ref, ref + too_far, atol=1e-2, rtol=1e-2, min_agreement=None)
    assert not rep.passed and "x max|ref|" in rep.summary()
    # both None: the difference is reported, not checked
    assert compare_outputs(ref, ref + 5.0, atol=None, rtol=None, min_agreement=None).limit is None


def test_int8_quantized_model_runs_has_qdq_and_agrees_with_fp32(trained, exported, tmp_path):
    import onnx

    _, calib = trained
    q = quantize_onnx_int8(exported, calib[:128], tmp_path / "tiny_int8.onnx")
    assert q.precision == "int8" and q.sha256 == sha256_file(q.path)
    assert "onnxruntime.quantization" in q.tool and "minmax" in q.tool
    assert q.config["method"] == "minmax" and q.config["calibration_samples_used"] == 128
    ops = {n.op_type for n in onnx.load(q.path).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    x_test, y_test = structured_data(300, seed=2)
    fp32_out, int8_out = run_onnx(exported.path, x_test), run_onnx(q.path, x_test)
    assert int8_out.shape == (300, 3) and run_onnx(q.path, x_test[:1]).shape == (1, 3)
    assert np.mean(fp32_out.argmax(1) == y_test) > 0.9  # the tiny net did learn the patterns
    assert compare_outputs(fp32_out, int8_out, atol=None, min_agreement=0.95).passed


def test_int8_calibration_shape_mismatch_and_bad_config(exported, tmp_path):
    with pytest.raises(ConfigError) as e:
        quantize_onnx_int8(exported, np.zeros((4, 1, 9, 9), np.float32), tmp_path / "q.onnx")
    assert "(1, 9, 9)" in str(e.value) and "(1, 8, 8)" in str(e.value)
    with pytest.raises(ConfigError, match="calibration method"):
        OrtInt8Config(method="kl")
    with pytest.raises(ConfigError, match="calibration_samples"):
        OrtInt8Config(calibration_samples=0)
    assert not (tmp_path / "q.onnx").exists()


def test_bench_host_returns_sane_numbers(exported):
    r = bench_onnx_host(exported.path, (1, 8, 8), runs=30, warmup=3, timeout_s=120)
    assert r.backend == "onnxruntime-host" and r.source == "measured" and r.runs == 30 and r.threads == 1
    assert 0 < r.p50_ms <= r.p90_ms <= r.p99_ms and r.mean_ms > 0
    assert r.cold_start_ms > 0 and r.peak_rss_mb >= r.baseline_rss_mb > 0
    assert r.model_size_mb == pytest.approx(exported.size_bytes / 2**20)
    assert r.environment["onnxruntime"] and r.environment["logical_cores"] >= 1
    assert "30 runs after 3 warm-up" in r.how and "1 thread," in r.how


def test_bench_host_errors(exported):
    with pytest.raises(ConfigError, match="runs"):
        bench_onnx_host(exported.path, (1, 8, 8), runs=0)
    with pytest.raises(ConfigError, match="threads"):
        bench_onnx_host(exported.path, (1, 8, 8), threads=0)
    with pytest.raises(BenchError, match="does not fit model input"):
        bench_onnx_host(exported.path, (3, 8, 8), runs=2, warmup=0)


def test_percentiles_golden_values():
    p = percentiles([10, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert p == pytest.approx({"p50_ms": 5.5, "p90_ms": 9.1, "p99_ms": 9.91, "mean_ms": 5.5})
    assert percentiles([2.0]) == {"p50_ms": 2.0, "p90_ms": 2.0, "p99_ms": 2.0, "mean_ms": 2.0}
    assert percentiles([1.0, 3.0])["p90_ms"] == pytest.approx(2.8)
    with pytest.raises(ConfigError):
        percentiles([])


def test_importing_the_packages_does_not_import_heavy_libraries():
    code = ("import sys, edgekd.export, edgekd.quantize, edgekd.bench; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_histogram_calibration_is_capped_by_activation_memory_minmax_is_not(trained, exported, tmp_path,
                                                                             monkeypatch):
    """onnxruntime's entropy/percentile calibrators hold every activation of every sample: edgekd calibrates them
    on as many samples as fit HISTOGRAM_MEMORY_BYTES (and says so); MinMax streams and keeps all samples."""
    import edgekd.quantize.ort_int8 as ort_int8

    _, calib = trained
    per_sample = ort_int8.activation_bytes_per_sample(exported.path)
    assert 4 * (4 * 6 * 6 + 4 + 3) <= per_sample < 4096  # conv, relu, pool, fc outputs of the tiny net at 8x8
    monkeypatch.setattr(ort_int8, "HISTOGRAM_MEMORY_BYTES", per_sample * 44)
    q = quantize_onnx_int8(exported, calib[:128], tmp_path / "p.onnx", OrtInt8Config(method="percentile"))
    used = q.config["calibration_samples_used"]
    assert 16 <= used < 128 and used % 8 == 0  # whole batches of 8 (a shorter last one breaks onnxruntime's)
    assert any(f"percentile calibration on {used} of 128 samples" in n and "capped" in n for n in q.config["notes"])
    m = quantize_onnx_int8(exported, calib[:128], tmp_path / "m.onnx", OrtInt8Config(method="minmax"))
    assert m.config["calibration_samples_used"] == 128 and not any("capped" in n for n in m.config["notes"])
    odd = quantize_onnx_int8(exported, calib[:41], tmp_path / "e.onnx", OrtInt8Config(method="entropy"))
    assert odd.config["calibration_samples_used"] == 40  # 41 failed in onnxruntime before (stacked batches)
