"""The ARM latency estimator's own logic (pure): the compute + memory model, its fit, leave-one-out errors, bands,
the rules for cores and precisions without rows, the local refit, bad input."""

from __future__ import annotations

import json

import pytest

from edgekd.emu.estimator import BAND_FLOOR, WIDEN, CalRow, estimate_ms, fit, fit_parameters, load_calibration
from edgekd.errors import ConfigError, EmulationError, TargetError

TRUE = {"cortex-a72": {"fp32": 1.2, "int8": 0.8, "mem": 0.5}, "cortex-a76": {"fp32": 0.6, "int8": 0.5, "mem": 0.2}}
E = 0.8


def _latency(core, precision, instr, dram, clock, threads):
    t = TRUE[core]
    return (t[precision] * instr + t["mem"] * dram) / (clock * 1e6 * (1 + E * (threads - 1)))


def _rows():
    rows = []
    for core, clock in (("cortex-a72", 1.5), ("cortex-a76", 2.4)):
        for precision in ("fp32", "int8"):
            for i, (instr, dram, threads) in enumerate([(30e6, 4e6, 4), (60e6, 20e6, 4), (90e6, 2e6, 1),
                                                        (20e6, 30e6, 2)]):
                rows.append(CalRow(core, precision, clock, threads, int(instr * (1 + 0.1 * i)), int(dram),
                                   _latency(core, precision, instr * (1 + 0.1 * i), dram, clock, threads)))
    return rows


def test_the_fit_recovers_compute_memory_and_thread_terms_and_its_loo_error_is_zero():
    res = fit(_rows())
    assert res["efficiency"] == pytest.approx(E, abs=0.011)
    for core, t in TRUE.items():
        assert res["mem"][core] == pytest.approx(t["mem"], rel=0.05)
        for p in ("fp32", "int8"):
            assert res["cpi"][f"{core}/{p}"] == pytest.approx(t[p], rel=0.05)
            assert res["group_rows"][f"{core}/{p}"] == 4
    assert max(map(abs, res["fitted_error"])) < 0.02 and max(map(abs, res["loo_error"])) < 0.03
    assert all(b == BAND_FLOOR for b in res["band"].values())  # agreeing rows cannot justify less than the floor


def test_leave_one_out_predicts_each_row_without_it_and_sets_the_band():
    rows = _rows()
    odd = rows[0]
    rows[0] = CalRow(odd.core, odd.precision, odd.clock_ghz, odd.threads, odd.instructions, odd.dram_bytes,
                     odd.latency_ms * 1.6)  # one row 60% slower than the model says
    res = fit(rows)
    without = fit_parameters(rows[1:])
    expect = estimate_ms(odd.instructions, odd.core, odd.clock_ghz, odd.threads, odd.precision, without,
                         odd.dram_bytes).ms
    assert res["loo_error"][0] == pytest.approx(expect / rows[0].latency_ms - 1)
    assert res["band"]["cortex-a72/fp32"] == pytest.approx(max(abs(e) for r, e in zip(rows, res["loo_error"])
                                                               if (r.core, r.precision) == ("cortex-a72", "fp32")))
    with pytest.raises(ConfigError):
        fit([])


def test_estimate_has_a_compute_and_a_memory_term_and_scales_with_clock_and_threads():
    cal = fit(_rows())
    e = estimate_ms(30_000_000, "cortex-a72", 1.5, 4, "fp32", cal, dram_bytes=10_000_000)
    assert e.ms == pytest.approx(_latency("cortex-a72", "fp32", 30e6, 10e6, 1.5, 4), rel=0.05)
    assert e.ms == pytest.approx(e.compute_ms + e.memory_ms) and e.memory_ms > 0 and e.rows == 4
    assert e.low_ms == pytest.approx(e.ms / (1 + e.band)) and e.high_ms == pytest.approx(e.ms * (1 + e.band))
    assert estimate_ms(30_000_000, "cortex-a72", 3.0, 4, "fp32", cal, dram_bytes=10_000_000).ms == pytest.approx(
        e.ms / 2)
    one = estimate_ms(30_000_000, "cortex-a72", 1.5, 1, "fp32", cal, dram_bytes=10_000_000)
    assert one.ms == pytest.approx(e.ms * (1 + 3 * cal["efficiency"]))
    assert estimate_ms(30_000_000, "cortex-a72", 1.5, 4, "fp32", cal).memory_ms == 0
    assert "30.00 M instructions" in e.method and "DRAM traffic" in e.method and "4 published" in e.method
    fp16 = estimate_ms(30_000_000, "cortex-a72", 1.5, 4, "fp16", cal)
    assert fp16.cpi == pytest.approx(cal["cpi"]["cortex-a72/fp32"]) and "no fp16 figures" in fp16.method


def test_a_core_without_rows_for_a_precision_or_at_all_says_so_and_widens_its_band():
    rows = [r for r in _rows() if not (r.core == "cortex-a76" and r.precision == "int8")]
    cal = fit(rows)
    e = estimate_ms(30_000_000, "cortex-a76", 2.4, 4, "int8", cal)
    ratio = cal["ratio"]["int8/fp32"]
    assert ratio == pytest.approx(TRUE["cortex-a72"]["int8"] / TRUE["cortex-a72"]["fp32"], rel=0.05)
    assert e.cpi == pytest.approx(cal["cpi"]["cortex-a76/fp32"] * ratio) and e.rows == 0
    assert e.band == pytest.approx((1 + cal["precision_band"]["int8"]) * WIDEN - 1)
    assert "no int8 figures for cortex-a76" in e.method and "widened" in e.method
    a53 = estimate_ms(30_000_000, "cortex-a53", 1.4, 4, "int8", cal)  # no rows at all
    assert "no published figures for cortex-a53" in a53.method and a53.rows == 0 and a53.band > e.band / 2


def test_bad_input_is_refused_with_a_fix():
    cal = fit(_rows())
    with pytest.raises(TargetError, match="unknown Arm core"):
        estimate_ms(1000, "cortex-x9", 2.0, 4, "int8", cal)
    with pytest.raises(ConfigError):
        estimate_ms(0, "cortex-a72", 2.0, 4, "int8", cal)
    with pytest.raises(ConfigError):
        estimate_ms(1000, "cortex-a72", 2.0, 4, "int8", cal, dram_bytes=-1)
    with pytest.raises(EmulationError, match="no calibration for int4"):
        estimate_ms(1000, "cortex-a72", 2.0, 4, "int4", cal)
    with pytest.raises(EmulationError, match="arm_estimator.py"):
        load_calibration("/nonexistent/calibration.json")


def test_a_local_refit_replaces_the_shipped_fit_once_it_exists(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    shipped = load_calibration()
    assert "local board measurement" not in shipped["fitted_on"]
    local = dict(shipped, fitted_on="shipped + 1 local board measurement(s)")
    (tmp_path / "edgekd" / "calibration").mkdir(parents=True)
    (tmp_path / "edgekd" / "calibration" / "calibration.json").write_text(json.dumps(local))
    assert load_calibration()["fitted_on"] == local["fitted_on"]
    e = estimate_ms(1_000_000, "cortex-a72", 1.5, 4, "int8")
    assert "refit with local board measurements" in e.method


def test_the_shipped_fit_is_from_the_published_rows_and_meets_its_goals():
    cal = load_calibration(__import__("edgekd.emu.estimator", fromlist=["CALIBRATION"]).CALIBRATION)
    assert cal["fitted_on"].endswith("calibration/published.csv") and len(cal["rows"]) == 71
    assert all(r["instructions"] > 0 and r["dram_bytes"] >= 0 for r in cal["rows"])
    s = cal["summary"]
    assert s["fp32"]["median_abs"] <= 0.15 and s["int8"]["median_abs"] <= 0.15
    assert s["all"]["within_25"] >= 0.80 and s["all"]["worst"] <= 0.50
    assert all(v <= 0.40 for k, v in cal["band"].items() if k.endswith("/fp32"))
