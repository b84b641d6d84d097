"""Pure selection: candidates' figures + a budget -> the chosen student and the Pareto front.

The rule: among candidates that meet every budget, the highest accuracy of the deployed (quantized)
model wins, up to the test split's sampling noise: candidates whose accuracy lies inside the 95% Wilson interval
of the best one (``stats.wilson_interval``, from the test split's size ``n_test``) are statistically tied with it,
and of those the one with the most headroom on the budget wins (the largest margin under the tightest of its
latency, memory, size, SRAM and flash limits); then the smaller model (fewer MACs), the faster artifact, the
smaller file. Without a test-split size (``n_test`` 0) only exact ties (within ``tie_tolerance``) are ties, and
they go to the smaller model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .stats import wilson_interval
from .targets import Budget


@dataclass(frozen=True)
class Figures:
    """What selection needs to know about one candidate's deployed artifact."""

    name: str
    accuracy: float  # top-1 of the deployed model on the test split
    p90_latency_ms: float
    peak_memory_mb: float
    model_size_mb: float
    macs: int
    params: int
    sram_kib: float | None = None  # NPU targets: Vela's SRAM use (None where the target has no NPU)
    flash_kib: float | None = None  # NPU targets: Vela's flash use
    cpu_fallback: tuple[str, ...] = ()  # NPU targets: operators left to the CPU, whose time is unknown
    n_test: int = 0  # test samples ``accuracy`` was measured on (0: unknown, no interval)


@dataclass(frozen=True)
class Violation:
    budget: str  # budget key, e.g. "p90_latency_ms"
    limit: float
    value: float
    detail: str = ""  # replaces the numeric excess where a number says too little

    @property
    def excess(self) -> str:
        if self.detail:
            return self.detail
        if self.budget == "min_accuracy":
            return f"{(self.limit - self.value) * 100:.2f} points below"
        return f"{self.value - self.limit:.3g} over ({self.value / self.limit:.2f}x the limit)"

    def describe(self) -> str:
        return f"{self.budget} {self.value:.4g} vs limit {self.limit:.4g} ({self.excess})"


@dataclass(frozen=True)
class Selection:
    selected: str | None
    reason: str
    violations: dict[str, list[Violation]] = field(default_factory=dict)
    pareto: list[str] = field(default_factory=list)  # accuracy vs p90 latency, fastest first
    closest: str | None = None  # when nothing fits: the candidate with the smallest total relative excess


def violations(fig: Figures, budget: Budget) -> list[Violation]:
    out = []
    for key, value in (("p90_latency_ms", fig.p90_latency_ms), ("peak_memory_mb", fig.peak_memory_mb),
                       ("model_size_mb", fig.model_size_mb)):
        limit = getattr(budget, key)
        if limit is not None and value > limit:
            out.append(Violation(key, limit, value))
    for key in ("sram_kib", "flash_kib"):
        limit, value = getattr(budget, key), getattr(fig, key)
        if limit is not None and value is not None and value > limit:
            out.append(Violation(key, limit, value))
    if fig.cpu_fallback and budget.p90_latency_ms is not None:
        out.append(Violation("npu_cpu_fallback_ops", 0, len(fig.cpu_fallback),
                             f"{', '.join(fig.cpu_fallback)} run on the CPU, whose time is unknown, so the "
                             f"p90_latency_ms budget cannot be checked"))
    if budget.min_accuracy is not None and fig.accuracy < budget.min_accuracy:
        out.append(Violation("min_accuracy", budget.min_accuracy, fig.accuracy))
    return out


def pareto_front(figs: list[Figures]) -> list[str]:
    """Names of candidates no other candidate beats on both accuracy and p90 latency."""
    front = []
    for f in figs:
        dominated = any(g.accuracy >= f.accuracy and g.p90_latency_ms <= f.p90_latency_ms and
                        (g.accuracy > f.accuracy or g.p90_latency_ms < f.p90_latency_ms) for g in figs)
        if not dominated:
            front.append(f)
    return [f.name for f in sorted(front, key=lambda f: f.p90_latency_ms)]


def select(figs: list[Figures], budget: Budget, tie_tolerance: float = 0.0) -> Selection:
    viol = {f.name: violations(f, budget) for f in figs}
    fits = [f for f in figs if not viol[f.name]]
    front = pareto_front(figs)
    if not fits:
        closest = min(figs, key=lambda f: _relative_excess(viol[f.name]), default=None)
        reason = "no candidate meets every budget"
        return Selection(None, reason, viol, front, closest.name if closest else None)
    best = max(fits, key=lambda f: (f.accuracy, -f.macs, -f.p90_latency_ms, -f.model_size_mb))
    if best.n_test > 0:
        low, high = wilson_interval(best.accuracy, best.n_test)
        tied = [f for f in fits if f.accuracy >= min(low, best.accuracy - tie_tolerance)]
        choice = max(tied, key=lambda f: (headroom(f, budget)[0], -f.macs, -f.p90_latency_ms, -f.model_size_mb))
    else:
        tied = [f for f in fits if f.accuracy >= best.accuracy - tie_tolerance]
        choice = min(tied, key=lambda f: (f.macs, f.p90_latency_ms, f.model_size_mb))
    others = len(fits) - 1
    if choice.accuracy < best.accuracy:
        room, what = headroom(choice, budget)
        reason = (f"statistically tied on int8 accuracy with the most accurate, {best.name} ({choice.accuracy:.4f} "
                  f"vs {best.accuracy:.4f}: inside its 95% interval [{low:.4f}, {high:.4f}] on {best.n_test} test "
                  f"samples), and the most headroom on the budget of the {len(tied)} tied"
                  + (f" ({what} {room * 100:.0f}% under its limit)" if what else ""))
    else:
        reason = (f"highest int8 accuracy ({choice.accuracy:.4f}) among the {len(fits)} candidate(s) that meet every "
                  f"budget" + (f"; of the {len(tied)} tied with it, the most budget headroom, then the smaller model"
                               if len(tied) > 1 else "")
                  + ("" if others else "; it is the only one that fits"))
    return Selection(choice.name, reason, viol, front)


def headroom(fig: Figures, budget: Budget) -> tuple[float, str]:
    """(the smallest relative margin under a limit, which limit): 1 - value / limit over the budgeted latency,
    memory, model size, SRAM and flash; (inf, "") when the budget limits none of them."""
    margins = []
    for key, value in (("p90_latency_ms", fig.p90_latency_ms), ("peak_memory_mb", fig.peak_memory_mb),
                       ("model_size_mb", fig.model_size_mb), ("sram_kib", fig.sram_kib), ("flash_kib", fig.flash_kib)):
        limit = getattr(budget, key)
        if limit is not None and value is not None and limit > 0:
            margins.append((1.0 - value / limit, key))
    return min(margins) if margins else (math.inf, "")


def _relative_excess(vs: list[Violation]) -> float:
    total = 0.0
    for v in vs:
        if v.budget == "min_accuracy":
            total += (v.limit - v.value) / max(v.limit, 1e-9)
        elif v.limit == 0:
            total += v.value
        else:
            total += (v.value - v.limit) / v.limit
    return total


def as_dict(sel: Selection) -> dict[str, Any]:
    return {"selected": sel.selected, "reason": sel.reason, "pareto": sel.pareto, "closest": sel.closest,
            "violations": {k: [{"budget": v.budget, "limit": v.limit, "value": v.value, "excess": v.excess}
                               for v in vs] for k, vs in sel.violations.items()}}
