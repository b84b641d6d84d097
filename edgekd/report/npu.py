"""The NPU part of a build report (pure): Vela's figures per candidate, what selection judges, Markdown.

For an Ethos-U target each candidate's deployable artifact is its full-int8 TFLite file; ``npu-emu`` (Arm
Vela) estimates its time, SRAM and flash on the target, and those figures, not the host measurements, are
checked against the budget. Host latencies stay in the report for reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..records import NpuEstimate


def npu_row(est: "NpuEstimate") -> dict[str, Any]:
    """The report.json view of an :class:`~edgekd.records.NpuEstimate`."""
    return {
        "backend": est.backend, "accelerator": est.accelerator, "clock_mhz": est.clock_mhz, "source": est.source,
        "time_ms": est.inference_time_ms, "cycles_total": est.cycles_total, "cycles_npu": est.cycles_npu,
        "macs": est.macs, "sram_kib": est.sram_kib, "flash_kib": est.flash_kib, "npu_ops": est.npu_ops,
        "cpu_ops": est.cpu_ops, "npu_fraction": est.npu_fraction, "cpu_fallback": list(est.cpu_fallback),
        "cpu_fallback_cost": est.cpu_fallback_cost, "how": est.how, "compiled_artifact": est.compiled_path,
        "vela": est.environment.get("ethos-u-vela", ""),
        "layers": [{"op": layer.op, "tflite_op": layer.tflite_op, "target": layer.target, "cycles": layer.cycles,
                    "macs": layer.macs, "name": layer.name} for layer in est.layers],
    }


def npu_markdown(r: dict[str, Any]) -> list[str]:
    """The report.md section for NPU candidates ([] when there are none)."""
    rows = [c for c in r["candidates"] if c.get("npu")]
    if not rows:
        return []
    first, b = rows[0]["npu"], r["budget"]
    lines = [f"## NPU estimate: {first['accelerator']} @ {first['clock_mhz']:g} MHz (Arm Vela {first['vela']}) "
             "— what the budget is checked against", "",
             f"Budget: time ≤ {_lim(b.get('p90_latency_ms'), ' ms')}, SRAM ≤ {_lim(b.get('sram_kib'), ' KiB')}, "
             f"flash ≤ {_lim(b.get('flash_kib'), ' KiB')}, int8 accuracy ≥ {_lim(b.get('min_accuracy'), '')}.", "",
             "| student | acc int8 | time ms | cycles | MMACs | SRAM KiB | flash KiB | ops on NPU | CPU fallback | fits |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for c in rows:
        n = c["npu"]
        fallback = (", ".join(n["cpu_fallback"]) + " (time unknown)") if n["cpu_fallback"] else "none"
        time = f"≥ {n['time_ms']:.4f}" if n["cpu_ops"] else f"{n['time_ms']:.4f}"
        mark = "**yes**" if c["within_budget"] else "no: " + "; ".join(c["budget_violations"])
        chosen = " ⭐" if c["name"] == r["selected"] else ""
        lines.append(f"| `{c['name']}`{chosen} | {c['accuracy_int8'] * 100:.2f}% | {time} | {n['cycles_total']:,} "
                     f"| {n['macs'] / 1e6:.2f} | {n['sram_kib']:.1f} | {n['flash_kib']:.1f} "
                     f"| {n['npu_ops']}/{n['npu_ops'] + n['cpu_ops']} | {fallback} | {mark} |")
    lines += ["", f"- How: {first['how']}.",
              "- Accuracy is LiteRT's on the host for the same full-int8 .tflite file; the NPU runs that int8 graph "
              "(compiled by Vela, `compiled_artifact` in report.json) but no device measured it.",
              "- A time marked ≥ leaves out operators that fall back to the CPU: their cost is unknown, so such a "
              "candidate cannot be shown to meet a time budget.", ""]
    pick = next((c for c in rows if c["name"] == r["selected"]), None)
    if pick:
        lines += [f"Costliest layers of `{pick['name']}` on the NPU:", ""]
        top = sorted((x for x in pick["npu"]["layers"] if x["target"] == "NPU"), key=lambda x: -x["cycles"])[:5]
        lines += [f"- {x['cycles']:,} cycles: {x['op']} ({x['tflite_op'] or '?'}), {x['macs']:,} MACs" for x in top]
        lines.append("")
    return lines


def _lim(v: float | None, unit: str) -> str:
    return "no limit" if v is None else f"{v:g}{unit}"
