"""The ARM part of a build report (pure): each candidate's estimates, and the report.md section showing them
beside the host measurement."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..records import ArmEstimate


def arm_row(e8: "ArmEstimate", e32: "ArmEstimate | None") -> dict[str, Any]:
    """The report.json view of a candidate's ARM estimates (int8, and fp32 when there is one)."""
    return {prec: {"estimate_ms": e.ms, "band_ms": [e.low_ms, e.high_ms], "first_inference_ms": e.first_ms,
                   "instructions": e.instructions, "first_instructions": e.first_instructions,
                   "count_spread": e.count_spread, "parity": e.parity, "memory": e.memory,
                   "emulation_wall_s": e.emulation_wall_s, "core": e.core, "clock_ghz": e.clock_ghz,
                   "threads": e.threads, "dram_bytes": e.dram_bytes, "compute_ms": e.compute_ms,
                   "memory_ms": e.memory_ms, "how": e.how}
            for prec, e in (("int8", e8), ("fp32", e32)) if e is not None}


def _terms(a: dict[str, Any]) -> str:
    if "compute_ms" not in a:  # a report written before the memory term
        return "—"
    return f"{a['compute_ms']:.3f} + {a['memory_ms']:.3f}"


def arm_markdown(r: dict[str, Any]) -> list[str]:
    """The ARM estimate section of report.md (empty for other targets)."""
    rows = [c for c in r["candidates"] if c.get("arm")]
    if not rows:
        return []
    first = rows[0]["arm"]["int8"]
    lines = [f"## Estimated on {first['core']} @ {first['clock_ghz']:g} GHz ({first['threads']} thread(s)) "
             "from emulated counts", "",
             "| candidate | int8 estimate ms | = compute + memory ms | error band ms | first inference ms "
             "| int8 M instr | DRAM MB | count spread | fp32 estimate ms (compute + memory) "
             "| host p90 ms (measured, x86) | emulated vs host outputs |",
             "|---|---:|---|---|---:|---:|---:|---:|---|---:|---|"]
    for c in rows:
        a8, a32 = c["arm"]["int8"], c["arm"]["fp32"]
        p = a8["parity"]
        agree = (f"within {p['max_quant_steps']} int8 step(s)" if "max_quant_steps" in p
                 else f"max diff {p.get('max_abs_diff', float('nan')):.2g}")
        lines.append(f"| `{c['name']}` | {a8['estimate_ms']:.3f} | {_terms(a8)} "
                     f"| {a8['band_ms'][0]:.3f}-{a8['band_ms'][1]:.3f} "
                     f"| {a8['first_inference_ms']:.3f} | {a8['instructions'] / 1e6:.2f} "
                     f"| {a8.get('dram_bytes', 0) / 1e6:.2f} | {100 * a8['count_spread']:.2f}% "
                     f"| {a32['estimate_ms']:.3f} ({_terms(a32)}) | {c['host_latency']['p90_ms']:.3f} | {agree} |")
    notes = [f"- `{c['name']}`: {c['latency_band_note']}" for c in rows if c.get("latency_band_note")]
    notes.append("- The estimate is compute + memory: CPI x instructions plus MEM cycles x the modelled DRAM "
                 "traffic (a last-level cache of the core's size), at the core's clock, spread over the threads; "
                 "both coefficients and the band come from the published calibration rows (leave-one-out).")
    lines += [""] + notes + ([""] if notes else []) + [
        f"- Method: {first['how']}.",
        "- Memory under emulation (peak RSS of the qemu process, which includes the emulator itself): "
        + ", ".join(f"`{c['name']}` {(c['arm']['int8']['memory'].get('emulator_peak_rss_kb') or 0) / 1024:.0f} MB"
                    for c in rows) + ".", ""]
    return lines
