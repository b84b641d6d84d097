"""Assemble the report dict of a build from its records (pure; no I/O)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..select import Figures, as_dict, select
from .guard import quantization_findings
from .arm import apply_arm, arm_latency_note
from .npu import npu_latency_note, npu_row, with_npu

REPORT_VERSION = 1


def latency_note(target: Any, threads: int, runs: int) -> str:
    if getattr(target, "npu", None) is not None:
        return npu_latency_note(target, threads, runs)
    if target.emulation == "qemu-user":
        return arm_latency_note(target, threads, runs)
    if target.emulation == "none":
        return (f"Latency measured on this host CPU in each candidate's runtime, {threads} thread(s), batch 1, "
                f"{runs} timed runs after warm-up.")
    return (f"Latency is MEASURED ON THE HOST x86 CPU ({threads} thread(s), each candidate's runtime, batch 1, "
            f"{runs} runs), "
            f"NOT on the {target.description}: edgekd has no device estimator for {target.core} yet, so the "
            f"budget check uses the host figure, which is likely faster than the device.")


def candidate_row(c: dict[str, Any], target: Any) -> dict[str, Any]:
    ckpt, fp32, int8, benches, runtime = c["checkpoint"], c["fp32"], c["int8"], c["bench"], c["runtime"]
    b = benches["int8"]
    source = f"measured on host CPU ({runtime})" if target.emulation == "none" else \
        f"measured on host x86 CPU ({runtime}), not on {target.core}"
    return {
        "name": f"{ckpt.name}@{runtime}", "student": ckpt.name, "runtime": runtime, "format": int8.format,
        "family": ckpt.family, "params": ckpt.params, "macs": ckpt.macs,
        "accuracy_fp32": ckpt.accuracy_fp32, "accuracy_onnx_fp32": fp32.accuracy, "accuracy_int8": int8.accuracy,
        "int8_argmax_agreement": int8.parity.get("argmax_agreement"),
        "int8_scheme": int8.config.get("scheme") or int8.config.get("route", ""), "int8_schemes_tried": int8.config.get("schemes_tried", []),
        "latency_ms": {"p50": b.p50_ms, "p90": b.p90_ms, "p99": b.p99_ms, "mean": b.mean_ms},
        "latency_fp32_ms": {"p50": benches["fp32"].p50_ms, "p90": benches["fp32"].p90_ms,
                            "p99": benches["fp32"].p99_ms},
        "cold_start_ms": b.cold_start_ms, "latency_source": source, "latency_how": b.how,
        "peak_memory_mb": b.model_memory_mb, "process_peak_rss_mb": b.peak_rss_mb,
        "model_size_mb": int8.size_bytes / 1e6, "model_fp32_size_mb": fp32.size_bytes / 1e6,
        "artifact": int8.path, "artifact_sha256": int8.sha256, "fp32_artifact": fp32.path,
        "fp32_parity": fp32.parity, "int8_parity": int8.parity, "epochs_run": ckpt.epochs_run,
        "val_accuracy": ckpt.val_accuracy, "export_tool": fp32.tool, "quantize_tool": int8.tool,
        **({"npu": npu_row(c["npu"])} if c.get("npu") else {}),
        **({"ops_profile": c["ops_profile"]} if c.get("ops_profile") else {}),
    }


def build_report_dict(*, config: Any, target: Any, data: Any, teacher: dict[str, Any], candidates: list,
                      timings: dict[str, float], wall_s: float, environment: dict[str, Any]) -> dict[str, Any]:
    rows = [candidate_row(c, target) for c in candidates]
    for c, r in zip(candidates, rows):
        if c.get("arm"):
            apply_arm(r, c["arm"], target.budget)
    figs = [with_npu(Figures(r["name"], r["accuracy_int8"], r["latency_ms"]["p90"], r["peak_memory_mb"],
                             r["model_size_mb"], r["macs"], r["params"]), r) for r in rows]
    sel = select(figs, target.budget)
    for r in rows:
        r["within_budget"] = not sel.violations[r["name"]]
        r["budget_violations"] = [v.describe() for v in sel.violations[r["name"]]]
    threads = candidates[0]["threads"] if candidates else 1
    findings = quantization_findings(rows, target.budget.max_accuracy_drop)
    shown = sel.selected or sel.closest  # the operator profile shown first: the chosen (or closest) candidate
    profile = next((r["ops_profile"] for r in rows if r["name"] == shown and r.get("ops_profile")), None)
    return {
        "report_version": REPORT_VERSION,
        "target": target.name, "target_description": target.description, "budget": target.budget.as_dict(),
        "data": {"spec": data.spec, "train": len(data.x_train), "val": len(data.x_val), "test": len(data.x_test),
                 "unlabeled": data.n_unlabeled, "num_classes": data.num_classes, "input_shape": list(data.input_shape)},
        "teacher": teacher,
        "distill": config.distill.as_dict(),
        "candidates": rows,
        "selected": sel.selected,
        "selection": as_dict(sel),
        "latency_note": latency_note(target, threads, config.bench_runs),
        "quantization_warnings": [f["message"] for f in findings],
        "quantization_findings": findings,
        "stage_seconds": timings, "wall_seconds": wall_s,
        "slowest_ops": {"candidate": shown, **profile} if profile else None,
        "environment": {**environment, **package_versions()}, "threads": threads, "command": config.command,
        "config": {k: v for k, v in asdict(config).items() if k != "distill"},
    }


PACKAGES = ("onnx", "ai-edge-litert", "litert-torch", "tensorflow-cpu", "ethos-u-vela")


def package_versions() -> dict[str, str]:
    """Installed versions of the converters and runtimes besides those the pipeline records (metadata only)."""
    from importlib import metadata

    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
