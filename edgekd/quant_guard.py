"""Quantization regression guard: say plainly where int8 is slower than fp32 or loses too much accuracy.

Decided on the judged candidates, before the report: a :class:`Finding` per problem, kind "slower" (int8 slower
than fp32 on the backend that judges the target; not for an NPU, which runs int8 only) or "accuracy" (int8 loses
more than the target's ``max_accuracy_drop``). ``--strict`` turns a finding on the chosen student into an error
(exit 3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .errors import BudgetError
from .records import Candidate

DEFAULT_MAX_DROP = 0.01  # used when the target's budget sets no max_accuracy_drop


@dataclass(frozen=True)
class Finding:
    candidate: str
    kind: str  # "slower" or "accuracy"
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def quantization_findings(candidates: list[Candidate], max_accuracy_drop: float | None) -> list[Finding]:
    limit = DEFAULT_MAX_DROP if max_accuracy_drop is None else max_accuracy_drop
    out = []
    for c in candidates:
        if c.latency_fp32 is not None:  # a backend that runs int8 only (an NPU) has no race to report
            f, q = c.latency_fp32.judged_ms, c.latency.judged_ms
            if q > f:
                out.append(Finding(c.name, "slower", f"{c.name}: int8 is SLOWER than fp32 ({q:.3f} vs {f:.3f} ms p90, "
                                                     f"{q / f:.2f}x, {c.latency.source}); int8 buys nothing here but "
                                                     "a smaller file"))
        drop = c.deployable.fp32.accuracy - c.deployable.int8.accuracy
        if drop > limit:
            out.append(Finding(c.name, "accuracy", f"{c.name}: int8 loses {drop * 100:.2f} accuracy points against "
                                                   f"fp32, more than the {limit * 100:.2f} the target allows "
                                                   "(max_accuracy_drop)"))
    return out


def enforce(findings: list[Finding], selected: str | None) -> None:
    """``--strict``: a finding on the chosen student is an error naming it."""
    mine = [f.message for f in findings if f.candidate == selected]
    if mine:
        raise BudgetError(f"quantization guard (--strict): {'; '.join(mine)}",
                          "drop --strict to accept it, deploy fp32, or try another int8 scheme or target")
