"""NPU target profiles ([npu] table, SRAM/flash budgets) and selection on Vela's figures (pure logic)."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from importlib import resources

import pytest

from edgekd.errors import TargetError
from edgekd.select import Figures, select, violations
from edgekd.targets import Budget, list_targets, load_target, parse_target

NPU_TARGETS = ("ethos-u55-128", "ethos-u55-256", "ethos-u65-256")


def _data(name: str = "ethos-u55-128") -> dict:
    return tomllib.loads(resources.files("edgekd.profiles").joinpath(f"{name}.toml").read_text())


@pytest.mark.parametrize("name", NPU_TARGETS)
def test_builtin_npu_profiles_name_their_sources(name):
    t = load_target(name)
    assert name in list_targets() and t.arch == "ethos-u" and t.emulation == "vela"
    assert t.npu.accelerator == name and t.runtimes == ("litert",) and t.precisions == ("int8",)
    assert t.source and t.npu.timing_source  # where clock, sizes and timings come from
    assert 0 < t.budget.sram_kib <= t.npu.sram_kib and 0 < t.budget.flash_kib <= t.npu.flash_kib
    assert t.budget.p90_latency_ms > 0 and t.budget.peak_memory_mb is None


def test_alif_figures_are_the_published_ones():
    he, hp = load_target("ethos-u55-128"), load_target("ethos-u55-256")
    assert (he.npu.clock_mhz, he.npu.sram_kib, he.npu.flash_kib) == (160, 256, 5632)
    assert (hp.npu.clock_mhz, hp.npu.sram_kib, hp.npu.flash_kib) == (400, 1024, 5632)
    assert (he.npu.sram.burst_length, he.npu.flash.clock_scale) == (8, 0.303)


def test_existing_profiles_unchanged_by_the_npu_fields():
    pi = load_target("raspberrypi")
    assert pi.npu is None and pi.budget.sram_kib is None and pi.budget.flash_kib is None


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d.pop("npu"), 'emulation = "vela" and an [npu] table go together'),
    (lambda d: d.update(emulation="qemu-user"), 'emulation = "vela" and an [npu] table go together'),
    (lambda d: d["npu"].pop("sram_kib"), "missing key(s) sram_kib"),
    (lambda d: d["npu"].update(accelerator="ethos-u99"), "unknown npu accelerator"),
    (lambda d: d["npu"].update(clock_mhz=-1), "clock_mhz must be a positive number"),
    (lambda d: d["npu"]["sram"].update(clock_scale=2.0), "clock_scale must be in (0, 1]"),
    (lambda d: d["npu"]["flash"].update(burst_length=0), "burst_length must be an integer >= 1"),
    (lambda d: d["npu"]["flash"].pop("read_latency"), "[npu.flash] is incomplete"),
    (lambda d: d["budget"].update(sram_kib=300.0), "budget sram_kib = 300 is more than the board's 256 KiB"),
    (lambda d: d.update(precisions=["fp32"]), "runs full-int8 TFLite models only"),
])
def test_bad_npu_profiles_are_one_clear_error(mutate, words):
    d = _data()
    mutate(d)
    with pytest.raises(TargetError) as e:
        parse_target(d, "ethos-u55-128", "x.toml")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_sram_budget_on_a_cpu_target_is_refused():
    d = tomllib.loads(resources.files("edgekd.profiles").joinpath("raspberrypi.toml").read_text())
    d["budget"]["sram_kib"] = 256
    with pytest.raises(TargetError, match="apply to NPU targets only"):
        parse_target(d, "raspberrypi")


def _fig(name: str, acc: float, ms: float, sram: float, flash: float, fallback: tuple[str, ...] = ()) -> Figures:
    return Figures(name, acc, ms, 1.0, 0.1, 1000, 100, sram_kib=sram, flash_kib=flash, cpu_fallback=fallback)


def test_selection_on_npu_figures():
    budget = Budget(p90_latency_ms=1.0, sram_kib=192, flash_kib=1024, min_accuracy=0.8)
    figs = [_fig("small", 0.82, 0.1, 20, 30), _fig("big", 0.90, 0.6, 250, 300), _fig("huge", 0.92, 2.0, 180, 2000)]
    sel = select(figs, budget)
    assert sel.selected == "small"
    assert [v.budget for v in sel.violations["big"]] == ["sram_kib"]
    assert {v.budget for v in sel.violations["huge"]} == {"p90_latency_ms", "flash_kib"}
    assert "over (1.30x the limit)" in sel.violations["big"][0].describe()


def test_cpu_fallback_means_the_time_budget_cannot_be_met():
    budget = Budget(p90_latency_ms=1.0, sram_kib=192)
    fast_but_partial = _fig("partial", 0.95, 0.01, 10, 10, ("L2Norm (L2_NORMALIZATION)",))
    (v,) = violations(fast_but_partial, budget)
    assert v.budget == "npu_cpu_fallback_ops" and "L2Norm (L2_NORMALIZATION)" in v.describe()
    assert "time is unknown" in v.excess
    assert select([fast_but_partial], budget).closest == "partial"
    assert violations(fast_but_partial, replace(budget, p90_latency_ms=None)) == []  # no time budget to check


def test_vela_figures_are_what_selection_judges():
    from types import SimpleNamespace as NS

    from edgekd.backends.npu import estimated
    from edgekd.judge import selection_figures
    from edgekd.records import NpuEstimate

    est = NpuEstimate("npu-emu", "m.tflite", "ethos-u55-128", "ethos-u55-128", 160.0, "estimated", "how", 0.25, 40000,
                      30000, 100, 64.0, 96.0, 5, 1, ("Div",), "unknown", (), 0.01)
    fig = estimated(est)
    cand = NS(name="x", latency=fig, memory_mb=10.0,
              deployable=NS(int8=NS(accuracy=0.9, size_bytes=1_000_000), checkpoint=NS(macs=100, params=10)))
    got = selection_figures(cand)
    assert (got.p90_latency_ms, got.sram_kib, got.flash_kib, got.cpu_fallback) == (0.25, 64.0, 96.0, ("Div",))
    assert fig.kind == "estimated" and fig.band_ms is None and fig.p90_ms is None
