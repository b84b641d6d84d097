"""Report rows and notes for emulated ARM targets (pure): the estimate judges, the host measurement stays beside."""

from __future__ import annotations

from typing import Any


def arm_latency_note(target: Any, threads: int, runs: int) -> str:
    return (f"Latency on the {target.description} is ESTIMATED FROM EMULATED INSTRUCTION COUNTS, not measured: each "
            f"model ran in the real aarch64 runtime under QEMU ({target.core}, {target.threads} thread(s)), its "
            f"outputs were checked against this host, and its instructions per inference were converted to "
            f"milliseconds at {target.clock_ghz:g} GHz by edgekd's estimator (fitted on published device figures; "
            f"each estimate carries its error band). The budget check uses the point estimate. Host x86 "
            f"measurements ({threads} thread(s), {runs} runs) are shown beside it for reference.")


def apply_arm(row: dict[str, Any], arm: dict[str, Any], budget: Any) -> dict[str, Any]:
    """Put the ARM estimates in ``row``'s latency fields, keeping the host measurements under ``host_*``."""
    e8, e32 = arm["int8"], arm["fp32"]
    row["host_latency_ms"], row["host_latency_fp32_ms"] = row["latency_ms"], row["latency_fp32_ms"]
    row["host_cold_start_ms"], row["host_latency_how"] = row["cold_start_ms"], row["latency_how"]
    row["latency_ms"] = {"p50": e8.ms, "p90": e8.ms, "p99": e8.ms, "mean": e8.ms}
    row["latency_fp32_ms"] = {"p50": e32.ms, "p90": e32.ms, "p99": e32.ms}
    row["latency_band_ms"] = [e8.low_ms, e8.high_ms]
    row["cold_start_ms"] = e8.first_ms
    row["latency_source"] = (f"estimated from emulated instruction counts ({e8.core} @ {e8.clock_ghz:g} GHz, "
                             f"{e8.threads} thread(s)), not measured")
    row["latency_how"] = e8.how
    row["arm"] = {prec: {"estimate_ms": e.ms, "band_ms": [e.low_ms, e.high_ms], "first_inference_ms": e.first_ms,
                         "instructions": e.instructions, "first_instructions": e.first_instructions,
                         "count_spread": e.count_spread, "parity": e.parity, "memory": e.memory,
                         "emulation_wall_s": e.emulation_wall_s, "core": e.core, "clock_ghz": e.clock_ghz,
                         "threads": e.threads, "how": e.how}
                  for prec, e in (("int8", e8), ("fp32", e32))}
    limit = getattr(budget, "p90_latency_ms", None)
    if limit is not None and e8.low_ms <= limit <= e8.high_ms:
        row["latency_band_note"] = (f"the {limit:g} ms budget lies inside this estimate's error band "
                                    f"({e8.low_ms:.3g}-{e8.high_ms:.3g} ms): confirm on the device")
    return row


def arm_markdown(r: dict[str, Any]) -> list[str]:
    """The ARM estimate section of report.md (empty for other targets)."""
    rows = [c for c in r["candidates"] if c.get("arm")]
    if not rows:
        return []
    first = rows[0]["arm"]["int8"]
    lines = [f"## Estimated on {first['core']} @ {first['clock_ghz']:g} GHz ({first['threads']} thread(s)) "
             "from emulated instruction counts", "",
             "| candidate | int8 estimate ms | error band ms | first inference ms | int8 M instr | count spread "
             "| fp32 estimate ms | host p90 ms (measured, x86) | emulated vs host outputs |",
             "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for c in rows:
        a8, a32 = c["arm"]["int8"], c["arm"]["fp32"]
        p = a8["parity"]
        agree = (f"within {p['max_quant_steps']} int8 step(s)" if "max_quant_steps" in p
                 else f"max diff {p.get('max_abs_diff', float('nan')):.2g}")
        lines.append(f"| `{c['name']}` | {a8['estimate_ms']:.3f} | {a8['band_ms'][0]:.3f}-{a8['band_ms'][1]:.3f} "
                     f"| {a8['first_inference_ms']:.3f} | {a8['instructions'] / 1e6:.2f} "
                     f"| {100 * a8['count_spread']:.2f}% | {a32['estimate_ms']:.3f} "
                     f"| {c['host_latency_ms']['p90']:.3f} | {agree} |")
    notes = [f"- `{c['name']}`: {c['latency_band_note']}" for c in rows if c.get("latency_band_note")]
    lines += [""] + notes + ([""] if notes else []) + [
        f"- Method: {first['how']}.",
        "- Memory under emulation (peak RSS of the qemu process, which includes the emulator itself): "
        + ", ".join(f"`{c['name']}` {(c['arm']['int8']['memory'].get('emulator_peak_rss_kb') or 0) / 1024:.0f} MB"
                    for c in rows) + ".", ""]
    return lines
