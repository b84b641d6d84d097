"""Candidate pre-filter (edgekd.search) and resumable stages (edgekd.stage_cache): their own logic."""

from __future__ import annotations

import json

import pytest

from edgekd.search import CandidateCost, decide, interpolate
from edgekd.stage_cache import StageCache
from edgekd.targets import Budget


def _cost(name, macs, params, train_s=10.0):
    return CandidateCost(name, 1.0, 1, params, macs, (params + 4096) / 1e6, 10.0, 0.01, train_s)


def test_latency_is_interpolated_in_macs_between_probes_and_the_fastest_runtime_counts():
    costs = [_cost("a", 1_000, 10), _cost("b", 5_500, 10), _cost("c", 10_000, 10)]
    probes = {"onnxruntime": {"a": (1.0, 0.5), "c": (10.0, 5.0)}, "litert": {"a": (2.0, 1.0), "c": (4.0, 2.0)}}
    a, b, c = interpolate(costs, probes)
    assert b.latency_runtime == "litert" and b.latency_ms == pytest.approx(3.0) and b.latency_low_ms == pytest.approx(1.5)
    assert a.latency_runtime == "onnxruntime" and a.latency_ms == pytest.approx(1.0)


def test_only_what_cannot_fit_is_skipped_and_each_skip_says_why():
    budget = Budget(p90_latency_ms=5.0, model_size_mb=1.0)
    costs = [_cost("small", 100, 1000), _cost("slowish", 200, 2000), _cost("slow", 300, 3000),
             _cost("huge", 400, 2_000_000)]
    costs = [costs[0].__class__(**{**c.as_dict(), "latency_ms": ms, "latency_low_ms": low})
             for c, (ms, low) in zip(costs, [(1, 0.5), (8, 4), (20, 10), (1, 0.5)])]
    plan = {c.name: c for c in decide(costs, budget, None, 10, None)}
    assert plan["small"].decision == "train"
    assert plan["slowish"].decision == "train"  # 8 ms estimated, but its band reaches 4 ms: it might fit
    assert plan["slow"].decision == "skip" and "estimated 20 ms (at best 10 ms) > budget 5 ms" in plan["slow"].reasons[0]
    assert plan["huge"].decision == "skip" and "size ~2.00 MB > budget 1 MB" in plan["huge"].reasons[0]
    npu = {c.name: c for c in decide(costs, Budget(), 5.0, 10, None)}
    assert all(c.decision == "skip" and "SRAM" in c.reasons[0] for c in npu.values())


def test_max_candidates_keeps_an_even_spread_and_the_time_budget_drops_the_costliest():
    costs = [_cost(f"c{i}", 100 * (i + 1), 10, train_s=10.0 * (i + 1)) for i in range(7)]
    plan = decide(costs, Budget(), None, 3, None)
    assert [c.name for c in plan if c.decision == "train"] == ["c0", "c3", "c6"]
    assert all("max-candidates 3" in c.reasons[0] for c in plan if c.decision == "skip")
    plan = {c.name: c for c in decide(costs, Budget(), None, 3, 100.0)}
    train = [n for n, c in plan.items() if c.decision == "train"]
    assert train == ["c2", "c6"]  # the largest that fit 100 s together (70 + 30)
    assert "time-budget 100 s" in plan["c5"].reasons[0] and "time-budget" in plan["c0"].reasons[0]
    plan = decide(costs, Budget(), None, 3, 5.0)  # nothing fits: the cheapest is still trained
    assert [c.name for c in plan if c.decision == "train"] == ["c0"]


def test_a_stage_runs_once_and_is_read_back_until_its_inputs_or_outputs_change(tmp_path):
    calls = []

    def work():
        calls.append(1)
        (tmp_path / "out.txt").write_text("artifact")
        return {"n": len(calls)}

    def run(cache, key="k1"):
        return cache.run("stage", tmp_path, cache.key(key), [tmp_path / "out.txt"], work, lambda r: r, lambda d: d)

    cache = StageCache(versions={"edgekd": "test"})
    assert run(cache) == {"n": 1} and cache.ran == ["%s/stage" % tmp_path.name]
    assert run(cache) == {"n": 1} and len(calls) == 1 and cache.reused  # read back, no work
    assert run(StageCache(versions={"edgekd": "other"})) == {"n": 2}  # a tool version is part of the key
    assert run(cache, key="k2") == {"n": 3}  # another input
    (tmp_path / "out.txt").write_text("tampered")
    assert run(cache, key="k2") == {"n": 4}  # the output no longer hashes the same
    assert run(StageCache(fresh=True, versions={"edgekd": "test"}), key="k2") == {"n": 5}


def test_outputs_without_a_stamp_are_redone_as_after_a_kill(tmp_path):
    (tmp_path / "out.txt").write_text("half")  # what a killed stage may leave: an output, no stamp
    cache = StageCache(versions={})
    got = cache.run("s", tmp_path, cache.key(1), [tmp_path / "out.txt"],
                    lambda: (tmp_path / "out.txt").write_text("whole") and "done", lambda r: r, lambda d: d)
    assert got == "done" and (tmp_path / "out.txt").read_text() == "whole"
    stamp = json.loads((tmp_path / ".stages" / "s.json").read_text())
    assert set(stamp["outputs"]) == {"out.txt"} and stamp["record"] == "done"
    (tmp_path / ".stages" / "s.json").write_text("{not json")  # a corrupt stamp is ignored, not fatal
    assert cache.run("s", tmp_path, cache.key(1), [tmp_path / "out.txt"], lambda: "again", lambda r: r,
                     lambda d: d) == "again"
