"""A finished build (:class:`~edgekd.build_result.BuildResult`) as the report dict (pure; no I/O).

Everything here renders what the build decided: the figures were judged and the student selected before.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .arm import arm_row
from .board import board_row
from .npu import npu_row

if TYPE_CHECKING:
    from ..build_result import BuildResult
    from ..records import Candidate
    from ..select import Selection

REPORT_VERSION = 2  # 2: latency as typed figures (judged, fp32, host), an estimate as one value with its band


def candidate_row(c: "Candidate", selection: "Selection", n_test: int = 0) -> dict[str, Any]:
    d = c.deployable
    ckpt, fp32, int8 = d.checkpoint, d.fp32, d.int8
    violations = selection.violations.get(c.name, [])
    return {
        "test_samples": n_test,  # what every accuracy below was measured on; its 95% Wilson interval beside it
        "accuracy_int8_interval": _interval(int8.accuracy, n_test),
        "accuracy_fp32_interval": _interval(ckpt.accuracy_fp32, n_test),
        "name": c.name, "student": ckpt.name, "runtime": d.runtime, "format": int8.format,
        "family": ckpt.family, "params": ckpt.params, "macs": ckpt.macs,
        "accuracy_fp32": ckpt.accuracy_fp32, "accuracy_onnx_fp32": fp32.accuracy, "accuracy_int8": int8.accuracy,
        "int8_argmax_agreement": int8.parity.get("argmax_agreement"),
        "int8_scheme": int8.config.get("scheme") or int8.config.get("route", ""),
        "int8_schemes_tried": int8.config.get("schemes_tried", []),
        "latency": c.latency.as_dict(),
        "latency_fp32": None if c.latency_fp32 is None else c.latency_fp32.as_dict(),
        "host_latency": c.host.as_dict(), "host_latency_fp32": c.host_fp32.as_dict(),
        "peak_memory_mb": c.memory_mb, "process_peak_rss_mb": c.host.detail.peak_rss_mb,
        "model_size_mb": int8.size_bytes / 1e6, "model_fp32_size_mb": fp32.size_bytes / 1e6,
        "artifact": int8.path, "artifact_sha256": int8.sha256, "fp32_artifact": fp32.path,
        "fp32_parity": fp32.parity, "int8_parity": int8.parity, "epochs_run": ckpt.epochs_run,
        "init": ckpt.init or "random weights", "val_accuracy": ckpt.val_accuracy, "export_tool": fp32.tool, "quantize_tool": int8.tool,
        "within_budget": not violations, "budget_violations": [v.describe() for v in violations],
        **({"latency_band_note": c.band_note} if c.band_note else {}),
        **_detail(c),
        **({"ops_profile": c.ops_profile} if c.ops_profile else {}),
    }


def _interval(accuracy: float | None, n: int) -> list[float] | None:
    from ..stats import wilson_interval

    if accuracy is None or n <= 0 or accuracy != accuracy:  # data-free: no real test split
        return None
    return list(wilson_interval(accuracy, n))


def _detail(c: "Candidate") -> dict[str, Any]:
    """The target backend's own record for the candidate, under the key the pages read (``arm``, ``npu``)."""
    fp32 = c.latency_fp32.detail if c.latency_fp32 is not None else None
    render = {"arm-emu": lambda: {"arm": arm_row(c.latency.detail, fp32)},
              "npu-emu": lambda: {"npu": npu_row(c.latency.detail)},
              "board": lambda: {"board": board_row(c.latency.detail, fp32)}}.get(c.latency.backend)
    return render() if render else {}


def selection_dict(sel: "Selection") -> dict[str, Any]:
    return {"selected": sel.selected, "reason": sel.reason, "pareto": sel.pareto, "closest": sel.closest,
            "violations": {k: [{"budget": v.budget, "limit": v.limit, "value": v.value, "excess": v.excess}
                               for v in vs] for k, vs in sel.violations.items()}}


def build_report_dict(result: "BuildResult") -> dict[str, Any]:
    sel, config, target = result.selection, result.config, result.target
    rows = [candidate_row(c, sel, result.data.test) for c in result.candidates]
    shown = sel.selected or sel.closest  # the operator profile shown first: the chosen (or closest) candidate
    profile = next((r["ops_profile"] for r in rows if r["name"] == shown and r.get("ops_profile")), None)
    plan = result.plan
    return {
        "report_version": REPORT_VERSION,
        "target": target.name, "target_description": target.description, "budget": target.budget.as_dict(),
        "backend": target.backend,
        "data": {**asdict(result.data), "input_shape": list(result.data.input_shape)},
        "teacher": result.teacher.as_dict(),
        "distill": config.distill.as_dict(),
        "candidates": rows,
        "selected": sel.selected,
        "selection": selection_dict(sel),
        "latency_note": result.latency_note,
        "quantization_warnings": [f.message for f in result.findings],
        "quantization_findings": [f.as_dict() for f in result.findings],
        "stage_seconds": result.timings, "wall_seconds": result.wall_s,
        "slowest_ops": {"candidate": shown, **profile} if profile else None,
        "environment": result.environment, "threads": result.threads, "command": config.command,
        "config": {k: v for k, v in asdict(config).items() if k != "distill"},
        "search": {"considered": [c.as_dict() for c in plan],
                   "trained": [c.name for c in plan if c.decision == "train"],
                   "skipped": [{"name": c.name, "reasons": list(c.reasons)} for c in plan if c.decision == "skip"]},
        "stages": result.stages,
        "artifact_failures": [asdict(f) for f in result.artifact_failures],
    }
