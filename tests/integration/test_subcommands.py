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
