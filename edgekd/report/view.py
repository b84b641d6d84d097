"""Pure readers of a report dict shared by the HTML page, the comparison and report.md: what was judged, how."""

from __future__ import annotations

from typing import Any


def judged_latency(c: dict[str, Any]) -> float:
    """The latency selection checked against the budget: the target backend's measured p90 or its estimate."""
    return float(c["latency"]["judged_ms"])


def latency_band(c: dict[str, Any]) -> tuple[float, float] | None:
    """The judged estimate's error band in ms, when its estimator states one, else None."""
    band = c["latency"].get("band_ms")
    return (float(band[0]), float(band[1])) if band else None


def latency_kind(c: dict[str, Any]) -> str:
    """``measured`` or ``estimated`` for the judged latency."""
    return str(c["latency"]["kind"])


def cold_start(c: dict[str, Any]) -> float:
    """The judged figure's cold start (an estimate's first inference), else the host's measured one."""
    v = c["latency"].get("cold_start_ms")
    return float(c["host_latency"]["cold_start_ms"] if v is None else v)


def latency_cells(fig: dict[str, Any] | None) -> tuple[str, str, str]:
    """(p50, p90, p99) text of a figure: a measurement's percentiles; an estimate once, as its p90 column."""
    if fig is None:
        return "—", "—", "—"
    if fig["kind"] == "measured":
        return f"{fig['p50_ms']:.3f}", f"{fig['p90_ms']:.3f}", f"{fig['p99_ms']:.3f}"
    band = fig.get("band_ms")
    est = f"≈{fig['estimate_ms']:.3f}" + (f" [{band[0]:.3g}-{band[1]:.3g}]" if band else "")
    return "—", est, "—"


def latency_provenance(c: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, how it was obtained) for every latency the row carries, judged figure first."""
    lat, host = c["latency"], c["host_latency"]
    if lat["backend"] == "host":
        return [("p50/p90/p99, cold start (judged)", f"{lat['source']}: {lat['how']}")]
    band = latency_band(c)
    band_txt = f"; error band {band[0]:.3g}-{band[1]:.3g} ms" if band else ""
    label = "NPU time (judged)" if lat.get("sram_kib") is not None else \
        "estimate (judged); cold start = first inference"
    return [(label, f"{lat['source']}{band_txt}: {lat['how']}"),
            ("host p50/p90/p99, cold start (reference)", f"{host['source']}: {host['how']}")]


def chosen_row(r: dict[str, Any]) -> dict[str, Any] | None:
    """The selected candidate's row, or the closest one when nothing fits (None without candidates)."""
    name = r.get("selected") or r.get("selection", {}).get("closest")
    return next((c for c in r.get("candidates", []) if c["name"] == name), None)


def memory_figures(c: dict[str, Any]) -> list[tuple[str, float, str]]:
    """(label, value, unit) of the memory figures judged for the row."""
    lat = c["latency"]
    if lat.get("sram_kib") is not None:
        return [("NPU SRAM", float(lat["sram_kib"]), "KiB"), ("NPU flash", float(lat["flash_kib"]), "KiB")]
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


def interval(c: dict[str, Any], key: str = "accuracy_int8") -> str:
    """An accuracy's 95% interval as text, e.g. '[89.64-90.80]' (percent), or '' when the report has none."""
    iv = c.get(f"{key}_interval")
    return f"[{iv[0] * 100:.2f}-{iv[1] * 100:.2f}]" if iv else ""


def limit(v: float | None, unit: str = "") -> str:
    return "none" if v is None else f"{v:g}{unit}"


def input_contract(data: dict[str, Any]) -> str:
    """What the report says of the input contract(s): the student's (the board feeds it) and the teacher's when
    it has its own; '' for data held as arrays (no contract beyond the arrays)."""
    student, teacher = data.get("preprocess"), data.get("teacher_input")
    if not student:
        return ""
    text = (f"Input contract (the board must feed the model this way; the smoke bundle does it from raw images): "
            f"{student['describe']}.")
    if teacher:
        text += f" The teacher saw the same images as {teacher['describe']}."
    if data.get("bad_images"):
        text += f" {data['bad_images']} unreadable image(s) were left out (--skip-bad-images)."
    return text


def train_seconds(seconds: float | None) -> str:
    """A candidate's estimated training seconds; a dash when it was not timed (it fails a size or latency check)."""
    return f"{seconds:.0f}" if seconds else "—"


def students_init(r: dict[str, Any]) -> "list[tuple[str, str]]":
    """(student, how its weights started) per trained student, in the report's order."""
    seen: dict[str, str] = {}
    for c in r.get("candidates", []):
        seen.setdefault(c.get("student", c["name"]), c.get("init", "random weights"))
    return list(seen.items())
