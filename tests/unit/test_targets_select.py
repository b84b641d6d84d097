"""Target profiles (TOML data) and the pure budget selector."""

from __future__ import annotations

import pytest

from edgekd.errors import TargetError
from edgekd.select import Figures, pareto_front, select, violations
from edgekd.targets import Budget, list_targets, load_target

PI = """
description = "test board"
arch = "aarch64"
core = "cortex-a72"
clock_ghz = 1.5
cores = 4
memory_mb = 1024
runtimes = ["onnxruntime"]
precisions = ["int8"]
emulation = "qemu-user"
[budget]
p90_latency_ms = 5
min_accuracy = 0.8
"""


def test_builtin_targets():
    assert {"raspberrypi", "host"} <= set(list_targets())
    pi = load_target("raspberrypi")
    assert (pi.core, pi.clock_ghz, pi.cores, pi.arch) == ("cortex-a72", 1.5, 4, "aarch64")
    assert pi.budget.p90_latency_ms and pi.budget.min_accuracy and pi.budget.model_size_mb and pi.budget.peak_memory_mb


def test_unknown_target_lists_known_ones():
    with pytest.raises(TargetError, match=r"unknown target 'nope'.*host, raspberrypi"):
        load_target("nope")


def test_user_profile_dir_and_threads_default(tmp_path):
    (tmp_path / "myboard.toml").write_text(PI)
    assert "myboard" in list_targets(tmp_path)
    t = load_target("myboard", tmp_path)
    assert t.threads == 4 and t.budget.p90_latency_ms == 5.0 and t.budget.peak_memory_mb is None


@pytest.mark.parametrize("edit, match", [
    (lambda s: s.replace('arch = "aarch64"', 'arch = "mips"'), "unknown arch"),
    (lambda s: s.replace("cores = 4", 'cores = "four"'), "cores has the wrong type"),
    (lambda s: s.replace("p90_latency_ms = 5", "p90_latency_ms = -5"), "must be positive"),
    (lambda s: s.replace("min_accuracy = 0.8", "min_accuracy = 85"), "fraction"),
    (lambda s: s.replace("[budget]", "[budget]\nlatency = 3"), "unknown budget key"),
    (lambda s: s.replace('core = "cortex-a72"', ""), "missing key"),
    (lambda s: s + "\nfoo = 1\n", "unknown budget key|unknown key"),
    (lambda s: s.replace("clock_ghz = 1.5", "clock_ghz = = 1.5"), "not valid TOML"),
    (lambda s: s.replace("cores = 4", "cores = 4\nthreads = 8"), "threads"),
])
def test_malformed_profiles(tmp_path, edit, match):
    (tmp_path / "bad.toml").write_text(edit(PI))
    with pytest.raises(TargetError, match=match):
        load_target("bad", tmp_path)


def test_budget_rejects_nan():
    with pytest.raises(TargetError):
        Budget(p90_latency_ms=float("nan"))


def _f(name, acc, p90, mem=10.0, size=0.1, macs=1):
    return Figures(name, acc, p90, mem, size, macs, 1)


def test_select_highest_accuracy_within_budget_ties_to_smaller():
    b = Budget(p90_latency_ms=2.0, min_accuracy=0.8)
    figs = [_f("small", 0.85, 0.5, macs=10), _f("mid", 0.90, 1.5, macs=100), _f("mid2", 0.90, 1.0, macs=50),
            _f("big", 0.95, 3.0, macs=1000)]
    sel = select(figs, b)
    assert sel.selected == "mid2"  # 'big' is too slow; mid and mid2 tie on accuracy -> fewer MACs
    assert [v.budget for v in sel.violations["big"]] == ["p90_latency_ms"]
    assert pareto_front(figs) == ["small", "mid2", "big"]


def test_nothing_fits_names_closest_and_excess():
    b = Budget(p90_latency_ms=1.0, model_size_mb=0.05, min_accuracy=0.9)
    figs = [_f("a", 0.85, 0.5), _f("b", 0.95, 5.0)]
    sel = select(figs, b)
    assert sel.selected is None and sel.closest == "a"
    desc = [v.describe() for v in violations(figs[0], b)]
    assert any("model_size_mb" in d and "2.00x" in d for d in desc)
    assert any("min_accuracy" in d and "5.00 points below" in d for d in desc)


def test_wilson_interval_matches_known_values_and_narrows_with_n():
    from edgekd.stats import wilson_interval

    lo, hi = wilson_interval(0.9023, 10_000)  # half-width ~0.58 points at 90% on 10,000 samples
    assert 0.8963 < lo < 0.8966 and 0.9079 < hi < 0.9082
    assert wilson_interval(0.5, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)  # the textbook value
    assert wilson_interval(1.0, 20)[1] == 1.0 and wilson_interval(1.0, 20)[0] == pytest.approx(0.8389, abs=1e-4)
    assert wilson_interval(0.9, 0) == (0.0, 1.0)
    widths = [wilson_interval(0.9, n)[1] - wilson_interval(0.9, n)[0] for n in (100, 1000, 10_000)]
    assert widths == sorted(widths, reverse=True)


def test_statistically_tied_accuracies_go_to_the_most_budget_headroom():
    """90.23% vs 90.16% on 10,000 test images (7 images) is noise: the faster artifact wins and the reason says
    so; 95% vs 90% is not, and the more accurate one wins however slow (within budget)."""
    b = Budget(p90_latency_ms=10.0, min_accuracy=0.8)
    slow = Figures("s@onnxruntime", 0.9023, 3.9, 10.0, 1.0, 44, 1, n_test=10_000)
    fast = Figures("s@litert", 0.9016, 2.6, 10.0, 1.1, 44, 1, n_test=10_000)
    sel = select([slow, fast], b)
    assert sel.selected == "s@litert"
    assert "statistically tied" in sel.reason and "[0.89" in sel.reason and "p90_latency_ms 74% under" in sel.reason
    unknown_n = [Figures(f.name, f.accuracy, f.p90_latency_ms, f.peak_memory_mb, f.model_size_mb, f.macs, 1)
                 for f in (slow, fast)]
    assert select(unknown_n, b).selected == "s@onnxruntime"  # no test-split size: no interval, old rule
    better = Figures("big", 0.95, 9.0, 10.0, 1.9, 400, 1, n_test=10_000)
    assert select([slow, fast, better], b).selected == "big"
    small_n = [Figures(f.name, f.accuracy, f.p90_latency_ms, 10.0, 1.0, f.macs, 1, n_test=100)
               for f in (slow, fast, better)]
    assert select(small_n, b).selected == "s@litert"  # on 100 samples 95% vs 90% is inside the noise too


def test_headroom_is_the_tightest_budgeted_margin():
    from edgekd.select import headroom

    f = Figures("x", 0.9, 5.0, 48.0, 1.0, 1, 1)
    assert headroom(f, Budget(p90_latency_ms=10.0, peak_memory_mb=64.0)) == (0.25, "peak_memory_mb")
    assert headroom(f, Budget(min_accuracy=0.5)) == (float("inf"), "")
