"""Each stage as its own command: distill -> export -> quantize -> bench, chained by files."""

from __future__ import annotations

import json

import onnx
import pytest

from edgekd.cli import main


@pytest.mark.slow
def test_stage_commands_chain(tmp_path, capsys):
    st = tmp_path / "st"
    assert main(["distill", "--data", "digits", "--loss", "ce", "--width", "1", "--epochs", "4",
                 "--batch-size", "32", "--out", str(st)]) == 0
    rec = json.loads((st / "student.json").read_text())
    assert rec["record"] == "Checkpoint" and rec["accuracy_fp32"] > 0.5 and rec["macs"] > 0
    assert main(["export", str(st / "student.json"), "--out", str(st / "m.onnx")]) == 0
    model = onnx.load(str(st / "m.onnx"))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 0  # dynamic batch
    assert main(["quantize", str(st / "m.onnx"), "--data", "digits", "--out", str(st / "q.onnx"),
                 "--method", "entropy"]) == 0
    ops = {n.op_type for n in onnx.load(str(st / "q.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert main(["bench", str(st / "q.onnx"), "--runs", "20", "--warmup", "2", "--json", str(st / "b.json")]) == 0
    b = json.loads((st / "b.json").read_text())
    assert b["runs"] == 20 and b["p50_ms"] <= b["p90_ms"] <= b["p99_ms"]
    out = capsys.readouterr().out
    assert "int8 accuracy" in out and "p90" in out


@pytest.mark.parametrize("shape, family", [((6, 40), "conv1d"), ((12,), "mlp")])
def test_sequence_and_feature_students_distil_and_export(tmp_path, shape, family):
    import numpy as np

    from edgekd.data import load_dataset
    from edgekd.distill.config import DistillConfig
    from edgekd.models.students import StudentSpec
    from edgekd.stages import distill_student, export_student, load_checkpoint

    rng = np.random.default_rng(0)
    y = np.arange(200) % 3
    x = rng.normal(0, 0.3, (200, *shape)).astype(np.float32)
    x[:, 0] += 2.0 * y.reshape(-1, *([1] * (len(shape) - 1)))  # the class is readable from channel/feature 0
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    spec = StudentSpec(family, 1.0, 1, data.input_shape, 3)
    ckpt = distill_student(data, spec, DistillConfig(loss="ce", epochs=20, batch_size=16, patience=20), tmp_path / "st")
    assert ckpt.accuracy_fp32 > 0.8
    model, _ = load_checkpoint(tmp_path / "st" / "student.json")
    exported = export_student(model, data, tmp_path / "m.onnx")
    assert exported.parity["max_abs_diff"] < 1e-4 and exported.accuracy == pytest.approx(ckpt.accuracy_fp32, abs=0.02)


@pytest.mark.slow
def test_distill_from_an_onnx_probability_teacher(tmp_path, capsys):
    """A user's ONNX teacher that ends in softmax: detected, turned into log-probs, and the student learns."""
    import numpy as np
    import torch

    from edgekd.data import load_dataset
    from edgekd.distill.config import DistillConfig
    from edgekd.distill.trainer import train
    from edgekd.export.onnx import export_onnx
    from edgekd.models.students import StudentSpec, build_student

    data = load_dataset("digits")
    torch.manual_seed(0)
    net = build_student(StudentSpec("convnet", 1.0, 1, data.input_shape, 10))
    net = train(net, data, DistillConfig(loss="ce", epochs=6, batch_size=32)).model
    probs_net = torch.nn.Sequential(net, torch.nn.Softmax(dim=-1)).eval()
    export_onnx(probs_net, data.x_test[:64], tmp_path / "teacher.onnx")
    assert main(["distill", "--data", "digits", "--teacher", str(tmp_path / "teacher.onnx"), "--epochs", "6",
                 "--batch-size", "32", "--width", "1", "--out", str(tmp_path / "st")]) == 0
    rec = json.loads((tmp_path / "st" / "student.json").read_text())
    assert rec["accuracy_fp32"] > 0.8
    assert rec["config"]["teacher"] == {"name": "teacher.onnx", "kind": "onnx", "outputs": "probs"}
    assert np.isfinite([h["loss"] for h in rec["config"]["history"]]).all()


@pytest.mark.slow
def test_distill_prunes_the_student_from_the_teacher_or_says_why_not(tmp_path, capsys):
    """`--init auto` (default): a student of the built-in teacher's depth starts pruned from it and the record says so;
    `--init teacher` where the depth differs: one line naming the cause and the fix, exit 2, no student written."""
    out = tmp_path / "seeded"
    assert main(["distill", "--data", "digits", "--width", "1", "--depth", "2", "--epochs", "1", "--batch-size", "32",
                 "--out", str(out)]) == 0
    rec = json.loads((out / "student.json").read_text())
    assert rec["init"].startswith("pruned from the teacher") and "BatchNorm re-estimated" in rec["init"]
    assert rec["config"]["distill"]["init"] == "auto"
    plain = tmp_path / "plain"
    assert main(["distill", "--data", "digits", "--width", "1", "--depth", "2", "--epochs", "1", "--batch-size", "32",
                 "--init", "random", "--out", str(plain)]) == 0
    assert json.loads((plain / "student.json").read_text())["init"] == "random weights (--init random)"
    capsys.readouterr()
    bad = tmp_path / "bad"
    assert main(["distill", "--data", "digits", "--width", "1", "--depth", "1", "--epochs", "1", "--init", "teacher",
                 "--out", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--init teacher: the student cannot be pruned from the teacher" in err[0] and "--init auto" in err[0]
    assert not (bad / "student.json").exists()
