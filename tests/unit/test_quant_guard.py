"""The int8 scheme search and the quantization regression guard."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekd.errors import BudgetError
from edgekd.quant_guard import enforce, quantization_findings


def _row(name, fp32_p90, int8_p90, acc_fp32, acc_int8):
    from types import SimpleNamespace as NS

    return NS(name=name, latency_fp32=NS(judged_ms=fp32_p90, source="host"),
              latency=NS(judged_ms=int8_p90, source="host"),
              deployable=NS(fp32=NS(accuracy=acc_fp32), int8=NS(accuracy=acc_int8)))


def test_guard_flags_slower_and_lossy_int8_only():
    rows = [_row("fine", 1.0, 0.6, 0.90, 0.895), _row("slow", 1.0, 1.5, 0.90, 0.90), _row("lossy", 1.0, 0.5, 0.90, 0.85)]
    found = quantization_findings(rows, max_accuracy_drop=0.01)
    assert {(f.candidate, f.kind) for f in found} == {("slow", "slower"), ("lossy", "accuracy")}
    assert "SLOWER than fp32" in next(f.message for f in found if f.candidate == "slow")
    assert "5.00 accuracy points" in next(f.message for f in found if f.candidate == "lossy")
    enforce(found, "fine")  # --strict: nothing on the chosen student, no error
    with pytest.raises(BudgetError, match="quantization guard.*slow"):
        enforce(found, "slow")


def test_scheme_search_keeps_the_best_on_validation(tmp_path, digits):
    from edgekd.distill.config import DistillConfig
    from edgekd.distill.trainer import train
    from edgekd.models.students import StudentSpec, build_student
    from edgekd.stages import export_student, quantize_student

    torch.manual_seed(0)
    model = train(build_student(StudentSpec("convnet", 0.5, 1, digits.input_shape, 10)), digits,
                  DistillConfig(loss="ce", epochs=4, batch_size=32)).model
    fp32 = export_student(model, digits, tmp_path / "m.onnx")
    q = quantize_student(fp32, digits, tmp_path / "q.onnx", "search")
    tried = q.config["schemes_tried"]
    assert len(tried) == 4 and {t["scheme"] for t in tried} >= {"minmax/per-channel", "entropy/per-channel",
                                                                 "percentile/per-channel", "minmax/per-tensor"}
    best = max(t["val_accuracy"] for t in tried if "val_accuracy" in t)
    chosen = next(t for t in tried if t["scheme"] == q.config["scheme"])
    assert chosen["val_accuracy"] == best
    assert q.accuracy is not None and abs(q.accuracy - fp32.accuracy) < 0.05
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "q.onnx"]


@pytest.mark.slow
def test_guard_fires_on_dynamic_quantization_of_a_conv_net(tmp_path):
    """ORT dynamic quantization turns convs into ConvInteger, which runs several times slower on x86."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from edgekd.bench.host import bench_onnx_host
    from edgekd.export.onnx import export_onnx
    from edgekd.models.students import StudentSpec, build_student

    torch.manual_seed(0)
    net = build_student(StudentSpec("convnet", 2.0, 1, (1, 28, 28), 10)).eval()
    x = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32)
    fp32 = export_onnx(net, x, tmp_path / "fp32.onnx")
    quantize_dynamic(fp32.path, str(tmp_path / "dyn.onnx"), weight_type=QuantType.QInt8)
    b32 = bench_onnx_host(fp32.path, (1, 28, 28), runs=50, warmup=10)
    b8 = bench_onnx_host(tmp_path / "dyn.onnx", (1, 28, 28), runs=50, warmup=10)
    row = _row("dyn", b32.p90_ms, b8.p90_ms, 0.9, 0.9)
    assert [f.kind for f in quantization_findings([row], 0.01)] == ["slower"], (b32.p90_ms, b8.p90_ms)


def test_qat_calibration_fixes_the_ranges_the_int8_export_will_find():
    """FakeQuantized.calibrate: global min/max of the float model (no rounding) over the calibration samples, like
    onnxruntime's MinMax; then training steps no longer move the ranges, and the model rounds with them."""
    import torch.nn as nn

    from edgekd.distill.qat import FakeQuantized

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(300, 4) * 3
    fq = FakeQuantized(model, warmup_steps=0)
    model.train()
    model(torch.randn(64, 4))  # the running observer's first ranges
    fq.calibrate(x.numpy(), batch_size=128)
    with torch.no_grad():
        pre = model[0].parametrizations.weight.original @ x.T + model[0].bias[:, None]  # float, unrounded
    linear_fq, relu_fq, input_fq = fq._acts[0], fq._acts[1], fq._acts[-1]  # module order; the input's comes last
    assert linear_fq.fixed and relu_fq.fixed and input_fq.fixed
    assert linear_fq.lo == pytest.approx(float(pre.min())) and linear_fq.hi == pytest.approx(float(pre.max()))
    assert relu_fq.lo == pytest.approx(0.0) and relu_fq.hi == pytest.approx(float(pre.max()))
    assert input_fq.lo == pytest.approx(float(x.min())) and input_fq.hi == pytest.approx(float(x.max()))
    before = [(a.lo, a.hi) for a in fq._acts]
    model(torch.randn(64, 4) * 10)  # a training step with wider inputs: the fixed ranges do not follow
    assert [(a.lo, a.hi) for a in fq._acts] == before
    model.eval()
    probe = torch.tensor([[float(x.max()) * 2, 0.0, 0.0, 0.0]])
    with torch.no_grad():  # the input is clipped to the calibrated range
        assert torch.allclose(model(probe), model(torch.tensor([[float(x.max()), 0.0, 0.0, 0.0]])), atol=1e-6)
    fq.remove()


def test_qat_per_tensor_weights_round_the_bn_folded_weight_like_the_export(tmp_path):
    """--qat-weights per-tensor: the scale is one max over the BN-folded weight (w·γ/σ), the rounding is applied
    there, and onnxruntime's per-tensor int8 export of the same (eval-mode, BN-folded) model holds the same int8
    values: the float student trained through exactly what the export writes."""
    import onnx
    import torch.nn as nn
    from onnx import numpy_helper

    from edgekd.distill.qat import FakeQuantized
    from edgekd.export.onnx import export_onnx
    from edgekd.quantize.ort_int8 import OrtInt8Config, quantize_onnx_int8

    torch.manual_seed(0)
    conv, bn = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(4)  # a depthwise conv
    with torch.no_grad():  # channels of very different folded size: what makes per-tensor hard
        bn.weight.copy_(torch.tensor([4.0, 0.5, 1.0, 0.05]))
        bn.running_var.copy_(torch.tensor([0.5, 2.0, 1.0, 0.1]))
        bn.running_mean.copy_(torch.randn(4) * 0.1)
    model = nn.Sequential(conv, bn, nn.ReLU()).eval()
    raw = conv.weight.detach().clone()
    fold = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().reshape(-1, 1, 1, 1)

    fq = FakeQuantized(model, weights="per-tensor")
    effective = conv.weight.detach()  # the parametrized weight the student computes with
    scale = float((raw * fold).abs().max()) / 127.0
    codes = (effective * fold / scale)
    assert torch.allclose(codes, codes.round(), atol=1e-3)  # integers on the folded grid
    assert float((codes.round() - (raw * fold / scale).round()).abs().max()) == 0  # round to nearest
    fq.remove()
    assert torch.equal(conv.weight.detach(), raw)  # removed: the float weights are back

    x = np.random.default_rng(0).standard_normal((64, 4, 6, 6)).astype(np.float32)
    fp32 = export_onnx(model, x[:8], tmp_path / "m.onnx")
    q = quantize_onnx_int8(fp32, x, tmp_path / "m_int8.onnx", OrtInt8Config(per_channel=False), min_agreement=None)
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(q.path).graph.initializer}
    int8_w = [v for v in inits.values() if v.dtype == np.int8 and v.ndim == 4]
    assert len(int8_w) == 1
    assert np.abs(int8_w[0].astype(np.int64) - codes.round().numpy().astype(np.int64)).max() <= 1
    with pytest.raises(Exception, match="per-tensor"):
        FakeQuantized(model, weights="per-layer")


def test_qat_frozen_batchnorm_trains_through_the_deployed_forward():
    """After freeze_batchnorm, a training-mode step normalises with the running statistics and leaves them alone
    (the trainer's model.train() each epoch does not switch batch statistics back on); before it, training
    normalises with the batch's own statistics and updates the running ones."""
    import torch.nn as nn

    from edgekd.distill.qat import FakeQuantized

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    fq = FakeQuantized(model, warmup_steps=0, weights="per-tensor")
    x = torch.randn(16, 2, 6, 6) * 2 + 1
    model.train()
    model(x)
    moved = model[1].running_mean.clone()
    assert not torch.allclose(moved, torch.zeros(4))  # batch statistics: the running ones moved
    fq.calibrate(x.numpy())
    fq.freeze_batchnorm()
    model.train()  # what the trainer does at every epoch start
    train_out = model(x)
    assert torch.equal(model[1].running_mean, moved)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(train_out, model(x), atol=1e-6)  # the training forward is the deployed one
    fq.remove()
    model.train()
    model(x)  # removed: an ordinary model again
    assert not torch.equal(model[1].running_mean, moved)


def test_qat_bn_epochs_default_and_bad_values():
    from edgekd.distill.config import DistillConfig
    from edgekd.errors import ConfigError

    assert DistillConfig(epochs=15).qat_bn_frozen_after == 10  # two thirds of the epochs
    assert DistillConfig(epochs=1).qat_bn_frozen_after == 1
    assert DistillConfig(epochs=15, qat_bn_epochs=15).qat_bn_frozen_after == 15
    with pytest.raises(ConfigError, match="qat-bn-epochs must be >= 1") as e:
        DistillConfig(epochs=15, qat_bn_epochs=0)
    assert "--qat-bn-epochs 10" in e.value.fix


@pytest.mark.parametrize("weights", ["per-channel", "per-tensor"])
def test_qat_simulation_predicts_onnxruntime_int8(tmp_path, weights):
    """The fake-quantized student (calibrated, BatchNorm frozen) computes what onnxruntime's int8 export of the
    same student computes: its logits sit far closer to the int8 model's than the float model's do, so QAT
    trains against the rounding the deployed model really applies (the export's per-tensor or per-channel
    weights, its calibrated activation ranges)."""
    from edgekd.distill.qat import FakeQuantized
    from edgekd.export.onnx import export_onnx
    from edgekd.export.parity import run_onnx
    from edgekd.models.students import StudentSpec, build_student
    from edgekd.quantize.ort_int8 import OrtInt8Config, quantize_onnx_int8

    torch.manual_seed(0)
    model = build_student(StudentSpec("mobilenet", 0.5, 1, (1, 16, 16), 5))
    for m in model.modules():  # trained-looking BatchNorms: channels of different scale and offset
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features) * 2 + 0.05)
                m.bias.copy_(torch.randn(m.num_features) * 0.2)
                m.running_mean.copy_(torch.randn(m.num_features) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features) * 2 + 0.1)
    model.eval()
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((128, 1, 16, 16)).astype(np.float32)
    x = rng.standard_normal((256, 1, 16, 16)).astype(np.float32)
    with torch.no_grad():
        fp32 = model(torch.from_numpy(x)).numpy()

    onnx_fp32 = export_onnx(model, x[:8], tmp_path / "m.onnx")
    q = quantize_onnx_int8(onnx_fp32, calib, tmp_path / "m_int8.onnx",
                           OrtInt8Config(per_channel=weights == "per-channel"), min_agreement=None)
    int8 = run_onnx(q.path, x)  # edgekd's session: exact int8 kernels on x86 CPUs without VNNI too

    fq = FakeQuantized(model, warmup_steps=0, weights=weights)
    fq.calibrate(calib)
    fq.freeze_batchnorm()
    model.eval()
    with torch.no_grad():
        sim = model(torch.from_numpy(x)).numpy()
    fq.remove()
    quant_error = np.abs(fp32 - int8).mean()
    assert quant_error > 0  # int8 does round
    assert np.abs(sim - int8).mean() < 0.25 * quant_error
    assert (sim.argmax(1) == int8.argmax(1)).mean() >= 0.97
