"""Per-operator profiles from onnxruntime's real profiler, on a small hand-made ONNX graph."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest

from edgekd.bench.profile_ops import LITERT_NOTE, profile_candidate, profile_onnx_ops
from edgekd.errors import ConfigError


def _model(path: Path, hidden: int = 256) -> Path:
    """x (N x 64) -> MatMul (64 x hidden) -> Relu -> MatMul (hidden x 2): the first MatMul has 32x the MACs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(size=(64, hidden)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(size=(hidden, 2)).astype(np.float32), "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="big_matmul"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="small_matmul")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])], [w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture
def samples() -> np.ndarray:
    return np.random.default_rng(1).random((7, 64), dtype=np.float32)


def test_profile_ranks_nodes_over_the_timed_runs_only(tmp_path, samples):
    p = profile_onnx_ops(_model(tmp_path / "m.onnx", hidden=4096), samples, runs=25, warmup=4)
    names = [o["node"] for o in p["ops"]]
    assert set(names) == {"big_matmul", "relu", "small_matmul"} and p["n_nodes"] == 3
    assert all(o["calls"] == 25 for o in p["ops"])  # the warm-up runs' events are dropped
    medians = [o["median_us"] for o in p["ops"]]
    assert medians == sorted(medians, reverse=True) and names[0] == "big_matmul"
    assert abs(sum(o["share"] for o in p["ops"]) - 1.0) < 1e-9  # all 3 nodes listed
    for o in p["ops"]:
        assert o["mean_us"] == pytest.approx(o["total_us"] / 25) and o["median_us"] > 0
    assert {t["op_type"] for t in p["by_op_type"]} == {"MatMul", "Relu"}
    assert p["profiled_runtime"] == "onnxruntime" and p["runs"] == 25 and "enable_profiling" in p["how"]
    assert p["node_us_per_run"] == pytest.approx(sum(o["total_us"] for o in p["ops"]) / 25)
    assert p["node_median_us_per_run"] == pytest.approx(sum(medians))
    assert p["profiled_run_median_us"] >= p["ops"][0]["median_us"]  # a run holds its nodes


def test_profile_rejects_bad_input(tmp_path, samples):
    model = _model(tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="does not exist"):
        profile_onnx_ops(tmp_path / "missing.onnx", samples)
    with pytest.raises(ConfigError, match="runs 0"):
        profile_onnx_ops(model, samples, runs=0)
    with pytest.raises(ConfigError, match="samples"):
        profile_onnx_ops(model, np.zeros((0, 64), np.float32))


def _candidate(artifact: Path, runtime: str):
    return types.SimpleNamespace(runtime=runtime, int8=types.SimpleNamespace(path=str(artifact)), threads=1,
                                 checkpoint=types.SimpleNamespace(name="m"), name=f"m@{runtime}")


def test_candidate_profile_is_cached_by_the_artifacts_hash(tmp_path, samples):
    model = _model(tmp_path / "model_int8.onnx")
    first = profile_candidate(_candidate(model, "onnxruntime"), samples, runs=5, warmup=1)
    cache = tmp_path / "ops_profile_onnxruntime.json"
    assert first["is_deployed_artifact"] and first["artifact"] == str(model) and cache.is_file()
    stamp = cache.stat().st_mtime_ns
    again = profile_candidate(_candidate(model, "onnxruntime"), samples, runs=5, warmup=1)
    assert again == json.loads(json.dumps(first)) and cache.stat().st_mtime_ns == stamp  # reused, not re-run
    assert profile_candidate(_candidate(model, "onnxruntime"), samples, runs=6, warmup=1)["runs"] == 6  # new key
    _model(model, hidden=128)  # another artifact under the same name
    changed = profile_candidate(_candidate(model, "onnxruntime"), samples, runs=6, warmup=1)
    assert changed["key"]["artifact_sha256"] != first["key"]["artifact_sha256"]
    stamp = cache.stat().st_mtime_ns
    fresh = profile_candidate(_candidate(model, "onnxruntime"), samples, runs=6, warmup=1, fresh=True)
    assert fresh["key"] == changed["key"] and cache.stat().st_mtime_ns != stamp  # --fresh profiles again


def test_litert_candidate_profiles_the_onnx_twin_and_says_so(tmp_path, samples):
    twin = _model(tmp_path / "model_fp32.onnx")
    tflite = tmp_path / "model_int8.tflite"
    tflite.write_bytes(b"not read")
    p = profile_candidate(_candidate(tflite, "litert"), samples, runs=3, warmup=1)
    assert p["is_deployed_artifact"] is False and p["artifact"] == str(twin)
    assert p["deployed_artifact"] == str(tflite) and p["deployed_runtime"] == "litert"
    assert p["profiled_runtime"] == "onnxruntime" and p["note"] == LITERT_NOTE and "not the deployed" in p["artifact_kind"]
    twin.unlink()
    missing = profile_candidate(_candidate(tflite, "litert"), samples, runs=3, warmup=1)
    assert "error" in missing and "model_fp32.onnx" in missing["error"]
