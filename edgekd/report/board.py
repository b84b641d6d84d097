"""The board part of a build report (pure): each candidate measured on the real board over SSH, with the
emulated estimate beside the measurement, and the report.md section showing them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..records import BoardMeasurement


def board_row(m8: "BoardMeasurement", m32: "BoardMeasurement | None") -> dict[str, Any]:
    """The report.json view of a candidate's board measurements (int8, and fp32 when there is one)."""
    return {prec: {"p50_ms": m.p50_ms, "p90_ms": m.p90_ms, "p99_ms": m.p99_ms, "mean_ms": m.mean_ms,
                   "cold_start_ms": m.cold_start_ms, "peak_rss_mb": m.peak_rss_mb, "model_memory_mb": m.model_memory_mb,
                   "estimate_ms": m.estimate_ms,
                   "estimate_band_ms": None if m.estimate_band_ms is None else list(m.estimate_band_ms),
                   "device": m.device, "board": m.board, "core": m.core, "runtime": m.runtime, "threads": m.threads,
                   "runs": m.runs, "max_difference": m.max_difference, "how": m.how}
            for prec, m in (("int8", m8), ("fp32", m32)) if m is not None}


def board_markdown(r: dict[str, Any]) -> list[str]:
    """The 'measured on the board' section of report.md (empty unless the build measured on a board)."""
    rows = [c for c in r["candidates"] if c.get("board")]
    if not rows:
        return []
    first = rows[0]["board"]["int8"]
    b = first["board"]
    lines = [f"## Measured on the board {first['device']}", "",
             f"Board: {b.get('cpu') or '?'} ({b.get('machine', '?')}, {b.get('cpus', '?')} CPUs, "
             f"{b.get('memory_mb') or '?'} MB), {b.get('system', '')}; runtime {first['runtime']}, "
             f"{first['threads']} thread(s), {first['runs']} timed runs.", "",
             "| candidate | int8 p50 ms | p90 ms | p99 ms | cold start ms | peak RSS MB | estimate ms (band) "
             "| fp32 p90 ms |", "|---|---:|---:|---:|---:|---:|---|---:|"]
    for c in rows:
        m8, m32 = c["board"]["int8"], c["board"].get("fp32")
        est = "—" if m8["estimate_ms"] is None else (
            f"{m8['estimate_ms']:.3f} ({m8['estimate_band_ms'][0]:.3f}-{m8['estimate_band_ms'][1]:.3f})")
        peak = "?" if m8["peak_rss_mb"] is None else f"{m8['peak_rss_mb']:.1f}"
        lines.append(f"| `{c['name']}` | {m8['p50_ms']:.3f} | {m8['p90_ms']:.3f} | {m8['p99_ms']:.3f} "
                     f"| {m8['cold_start_ms']:.1f} | {peak} | {est} | "
                     f"{'—' if m32 is None else format(m32['p90_ms'], '.3f')} |")
    lines += ["", f"- Method: {first['how']}. The budget is judged on the measured p90; the estimate from emulated "
              "counts is shown beside it, and each measurement is stored for `edgekd calibrate`.", ""]
    return lines
