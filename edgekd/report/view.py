"""Pure readers of a report dict shared by the HTML page, the comparison and report.md: what was judged, how."""

from __future__ import annotations

from typing import Any


def judged_latency(c: dict[str, Any]) -> float:
    """The p90 latency selection checked against the budget: Vela's time for an NPU row, else ``latency_ms.p90``
    (an ARM row's estimate or a host measurement)."""
    return float(c["npu"]["time_ms"]) if c.get("npu") else float(c["latency_ms"]["p90"])


def latency_band(c: dict[str, Any]) -> tuple[float, float] | None:
    """An estimate's error band in ms (ARM rows), else None."""
    band = c.get("latency_band_ms")
    return (float(band[0]), float(band[1])) if band and not c.get("npu") else None


def latency_kind(c: dict[str, Any]) -> str:
    """``measured`` or ``estimated`` for the judged latency."""
    return "estimated" if c.get("npu") or c.get("arm") else "measured"


def latency_provenance(c: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, how it was obtained) for every latency the row carries, judged figure first."""
    out: list[tuple[str, str]] = []
    if c.get("npu"):
        n = c["npu"]
        out.append(("NPU time (judged)", f"estimated by Arm Vela {n.get('vela', '')} for {n.get('accelerator')} "
                                         f"@ {n.get('clock_mhz', 0):g} MHz, not measured: {n.get('how', '')}"))
        out.append(("host p50/p90/p99, cold start (reference)",
                    f"{c.get('latency_source', '')}: {c.get('latency_how', '')}"))
    elif c.get("arm"):
        band = latency_band(c)
        band_txt = f"; error band {band[0]:.3g}-{band[1]:.3g} ms" if band else ""
        out.append(("p90 estimate (judged); cold start = first inference",
                    f"{c.get('latency_source', '')}{band_txt}: {c.get('latency_how', '')}"))
        out.append(("host p50/p90/p99, cold start (reference)", c.get("host_latency_how", "")))
    else:
        out.append(("p50/p90/p99, cold start (judged)", f"{c.get('latency_source', '')}: {c.get('latency_how', '')}"))
    return out


def chosen_row(r: dict[str, Any]) -> dict[str, Any] | None:
    """The selected candidate's row, or the closest one when nothing fits (None without candidates)."""
    name = r.get("selected") or r.get("selection", {}).get("closest")
    return next((c for c in r.get("candidates", []) if c["name"] == name), None)


def memory_figures(c: dict[str, Any]) -> list[tuple[str, float, str]]:
    """(label, value, unit) of the memory figures judged for the row."""
    if c.get("npu"):
        return [("NPU SRAM", float(c["npu"]["sram_kib"]), "KiB"), ("NPU flash", float(c["npu"]["flash_kib"]), "KiB")]
    return [("model memory", float(c["peak_memory_mb"]), "MB")]


def slowest_ops(r: dict[str, Any]) -> dict[str, Any] | None:
    """The chosen (or closest) candidate's operator profile, or None when the report has none."""
    top = r.get("slowest_ops")
    if top:
        return top
    row = chosen_row(r)
    return row.get("ops_profile") if row else None


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.2f}%"


def limit(v: float | None, unit: str = "") -> str:
    return "none" if v is None else f"{v:g}{unit}"
