"""Quantization regression guard: say plainly where int8 is slower than fp32 or loses too much accuracy.

Pure: candidate rows (as in report.json) + the target's budget -> findings. A finding is a dict
``{"candidate", "kind", "message"}`` with kind "slower" or "accuracy". ``--strict`` turns a finding on the
chosen student into an error (exit 3).
"""

from __future__ import annotations

from typing import Any

from ..errors import BudgetError

DEFAULT_MAX_DROP = 0.01  # used when the target's budget sets no max_accuracy_drop


def quantization_findings(rows: list[dict[str, Any]], max_accuracy_drop: float | None) -> list[dict[str, str]]:
    limit = DEFAULT_MAX_DROP if max_accuracy_drop is None else max_accuracy_drop
    out = []
    for r in rows:
        f, q = r["latency_fp32_ms"]["p90"], r["latency_ms"]["p90"]
        where = r.get("latency_source", "this backend")
        if q > f and not r.get("npu"):  # an NPU runs int8 only: a host fp32/int8 race says nothing about it
            out.append({"candidate": r["name"], "kind": "slower",
                        "message": f"{r['name']}: int8 is SLOWER than fp32 ({q:.3f} vs {f:.3f} ms p90, {q / f:.2f}x, "
                                   f"{where}); int8 buys nothing here but a smaller file"})
        drop = r["accuracy_onnx_fp32"] - r["accuracy_int8"]
        if drop > limit:
            out.append({"candidate": r["name"], "kind": "accuracy",
                        "message": f"{r['name']}: int8 loses {drop * 100:.2f} accuracy points against fp32, more than "
                                   f"the {limit * 100:.2f} the target allows (max_accuracy_drop)"})
    return out


def enforce(findings: list[dict[str, str]], selected: str | None) -> None:
    """``--strict``: a finding on the chosen student is an error naming it."""
    mine = [f["message"] for f in findings if f["candidate"] == selected]
    if mine:
        raise BudgetError(f"quantization guard (--strict): {'; '.join(mine)}",
                          "drop --strict to accept it, deploy fp32, or try another int8 scheme or target")
