"""The ARM latency estimator's own logic (pure): the fit, leave-one-out errors, bands, priors, bad input."""

from __future__ import annotations

import math

import pytest

from edgekd.emu.estimator import BAND_FLOOR, estimate_ms, fit, load_calibration
from edgekd.errors import ConfigError, EmulationError, TargetError


def _row(core, precision, instructions, latency_ms, clock=1.5, threads=4):
    return {"core": core, "precision": precision, "instructions": instructions, "latency_ms": latency_ms,
            "clock_ghz": clock, "threads": threads}


def test_fit_recovers_a_known_cpi_and_reports_zero_error():
    # CPI 2 at 1.5 GHz: 30 M instructions / 4 threads = 7.5 M per thread -> 15 M cycles -> 10 ms
    rows = [_row("cortex-a72", "int8", 30e6, 10.0), _row("cortex-a76", "int8", 60e6, 20.0 * 1.5 / 2.0, clock=2.0)]
    res = fit(rows)
    assert res["cpi"]["int8"] == pytest.approx(2.0)
    assert all(abs(r["fitted_error"]) < 1e-9 and abs(r["loo_error"]) < 1e-9 for r in res["rows"])
    assert res["band"]["int8"] == BAND_FLOOR  # two agreeing rows cannot justify a tighter band


def test_leave_one_out_is_the_row_predicted_without_itself():
    rows = [_row("cortex-a72", "fp32", 30e6, 10.0), _row("cortex-a72", "fp32", 30e6, 20.0),
            _row("cortex-a72", "int8", 30e6, 5.0)]
    res = fit(rows)
    a, b, c = res["rows"]
    assert res["cpi"]["fp32"] == pytest.approx(math.sqrt(2.0 * 4.0))  # geometric mean of 2 and 4
    assert a["loo_ms"] == pytest.approx(20.0) and a["loo_error"] == pytest.approx(1.0)
    assert b["loo_ms"] == pytest.approx(10.0) and b["loo_error"] == pytest.approx(-0.5)
    assert c["loo_error"] is None and res["band"]["fp32"] == pytest.approx(1.0)
    by_core = fit(rows, by="core")
    assert set(by_core["cpi"]) == {"cortex-a72"} and by_core["rows_per_group"] == {"cortex-a72": 3}
    with pytest.raises(ConfigError):
        fit([])


CAL = {"cpi": {"int8": 1.0, "fp32": 2.0}, "band": {"int8": 0.3, "fp32": 1.0}, "rows_per_group": {"int8": 2, "fp32": 2},
       "priors": {"cortex-a53": {"from": "cortex-a72", "factor": 2.0, "uncertainty": 2.0, "why": "assumed"}}}


def test_estimate_scales_with_clock_threads_and_precision_and_carries_its_band():
    e = estimate_ms(8_000_000, "cortex-a72", 2.0, 4, "int8", CAL)
    assert e.ms == pytest.approx(1.0)  # 2 M instructions per thread x CPI 1 / 2 GHz
    assert e.low_ms == pytest.approx(1.0 / 1.3) and e.high_ms == pytest.approx(1.3)
    assert estimate_ms(8_000_000, "cortex-a72", 1.0, 4, "int8", CAL).ms == pytest.approx(2.0)
    assert estimate_ms(8_000_000, "cortex-a72", 2.0, 2, "int8", CAL).ms == pytest.approx(2.0)
    assert estimate_ms(8_000_000, "cortex-a72", 2.0, 4, "fp32", CAL).ms == pytest.approx(2.0)
    fp16 = estimate_ms(8_000_000, "cortex-a72", 2.0, 4, "fp16", CAL)
    assert fp16.ms == pytest.approx(2.0) and "no fp16 figures" in fp16.method
    assert "estimated from emulated instruction counts" in e.method and "measured" not in e.method


def test_a_core_without_figures_uses_the_stated_prior_and_a_wider_band():
    e = estimate_ms(8_000_000, "cortex-a53", 2.0, 4, "int8", CAL)
    assert e.ms == pytest.approx(2.0) and "no published cortex-a53 figure" in e.method
    assert e.high_ms / e.ms == pytest.approx(1.3 * 2.0)


def test_bad_input_is_refused_with_a_fix():
    with pytest.raises(TargetError, match="unknown Arm core"):
        estimate_ms(1000, "cortex-x9", 2.0, 4, "int8", CAL)
    with pytest.raises(ConfigError):
        estimate_ms(0, "cortex-a72", 2.0, 4, "int8", CAL)
    with pytest.raises(EmulationError, match="no calibration for int4"):
        estimate_ms(1000, "cortex-a72", 2.0, 4, "int4", CAL)
    with pytest.raises(EmulationError, match="arm_estimator.py"):
        load_calibration("/nonexistent/calibration.json")


def test_the_shipped_fit_is_from_the_published_rows():
    cal = load_calibration()
    assert cal["fitted_on"].endswith("calibration/published.csv") and len(cal["rows"]) == 4
    assert set(cal["cpi"]) == {"int8", "fp32"} and all(0.1 < v < 10 for v in cal["cpi"].values())
    assert all(v >= BAND_FLOOR for v in cal["band"].values())
