"""Plots for report.html as inline SVG text (pure; no plotting library, nothing fetched when the page opens)."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from .view import judged_latency, latency_band, latency_kind

FIT, MISS, FRONT, BUDGET = "#1a7f37", "#c62828", "#5b6ee1", "#b26a00"
_W, _H, _L, _R, _T, _B = 760, 430, 70, 20, 20, 58  # size and margins of the Pareto plot


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo or abs(hi) or 1.0
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _log_ticks(lo: float, hi: float) -> list[float]:
    out = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        out += [m * 10 ** e for m in (1, 2, 5) if lo <= m * 10 ** e <= hi]
    return out


def _fmt(v: float) -> str:
    return f"{v:.3g}"


class _Axis:
    """Maps data values to pixels, linear or log10."""

    def __init__(self, lo: float, hi: float, p0: float, p1: float, log: bool) -> None:
        self.log, self.p0, self.p1 = log, p0, p1
        self.lo, self.hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)

    def __call__(self, v: float) -> float:
        v = math.log10(max(v, 1e-12)) if self.log else v
        return self.p0 + (v - self.lo) / ((self.hi - self.lo) or 1.0) * (self.p1 - self.p0)


def _ranges(pts: list[dict[str, Any]], budget: dict[str, Any]) -> tuple[float, float, float, float, bool]:
    xs = [p["x"] for p in pts] + [b for p in pts if p["band"] for b in p["band"]]
    if budget.get("p90_latency_ms"):
        xs.append(float(budget["p90_latency_ms"]))
    ys = [p["y"] for p in pts] + ([float(budget["min_accuracy"])] if budget.get("min_accuracy") is not None else [])
    xlo, xhi = min(xs), max(xs)
    log = xlo > 0 and xhi / xlo > 20
    if log:
        xlo, xhi = xlo / 1.4, xhi * 1.4
    else:
        pad = (xhi - xlo) * 0.08 or max(xhi, 1e-3) * 0.2
        xlo, xhi = max(0.0, xlo - pad), xhi + pad
    pad = (max(ys) - min(ys)) * 0.1 or 0.02
    return xlo, xhi, max(0.0, min(ys) - pad), min(1.0, max(ys) + pad), log


def pareto_svg(r: dict[str, Any]) -> str:
    """int8 accuracy vs judged p90 latency per candidate, budget lines, fit/not fit, the Pareto front."""
    cands = r.get("candidates", [])
    if not cands:
        return "<p>No candidates to plot.</p>"
    b = r.get("budget", {})
    pts = [{"i": i, "name": c["name"], "x": judged_latency(c), "y": float(c["accuracy_int8"]), "band": latency_band(c),
            "fit": bool(c.get("within_budget")), "chosen": c["name"] == r.get("selected"),
            "at_least": bool((c.get("npu") or {}).get("cpu_ops"))}  # NPU time without its CPU-fallback operators
           for i, c in enumerate(cands, 1)]
    xlo, xhi, ylo, yhi, log = _ranges(pts, b)
    X = _Axis(xlo, xhi, _L, _W - _R, log)
    Y = _Axis(ylo, yhi, _H - _B, _T, False)
    kind = "estimated" if all(latency_kind(c) == "estimated" for c in cands) else "measured"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
           f'role="img" aria-labelledby="pareto-title" class="plot" font-family="sans-serif" font-size="12">',
           '<title id="pareto-title">int8 accuracy vs p90 latency per candidate, with the budget</title>',
           f'<rect x="{_L}" y="{_T}" width="{_W - _L - _R}" height="{_H - _T - _B}" fill="#fff" stroke="#999"/>']
    out += _feasible(b, X, Y)
    out += _grid(X, Y, xlo, xhi, ylo, yhi, log)
    out += _budget_lines(b, X, Y)
    front = [p for n in r.get("selection", {}).get("pareto", []) for p in pts if p["name"] == n]
    if len(front) > 1:
        path = " ".join(f"{X(p['x']):.1f},{Y(p['y']):.1f}" for p in sorted(front, key=lambda p: p["x"]))
        out.append(f'<polyline points="{path}" fill="none" stroke="{FRONT}" stroke-width="1.5" '
                   f'stroke-dasharray="5 3"/>')
    for p in pts:
        out += _marker(p, X, Y)
    axis = "log scale" if log else "linear"
    out += [f'<text x="{(_L + _W - _R) / 2}" y="{_H - 12}" text-anchor="middle">p90 latency, ms ({kind}; '
            f'{axis}) — the figure the budget is checked against</text>',
            f'<text x="16" y="{(_T + _H - _B) / 2}" text-anchor="middle" '
            f'transform="rotate(-90 16 {(_T + _H - _B) / 2})">int8 accuracy (test split)</text>', "</svg>"]
    return "\n".join(out)


def _feasible(b: dict[str, Any], X: _Axis, Y: _Axis) -> list[str]:
    x1 = X(float(b["p90_latency_ms"])) if b.get("p90_latency_ms") else X.p1
    y1 = Y(float(b["min_accuracy"])) if b.get("min_accuracy") is not None else Y.p0
    x1, y1 = min(max(x1, X.p0), X.p1), min(max(y1, Y.p1), Y.p0)
    return [f'<rect x="{X.p0:.1f}" y="{Y.p1:.1f}" width="{x1 - X.p0:.1f}" height="{y1 - Y.p1:.1f}" '
            f'fill="{FIT}" fill-opacity="0.07"><title>meets the latency and accuracy budgets</title></rect>']


def _grid(X: _Axis, Y: _Axis, xlo: float, xhi: float, ylo: float, yhi: float, log: bool) -> list[str]:
    out = []
    for t in (_log_ticks(xlo, xhi) if log else _nice_ticks(xlo, xhi)):
        x = X(t)
        out.append(f'<line x1="{x:.1f}" y1="{Y.p1}" x2="{x:.1f}" y2="{Y.p0}" stroke="#eee"/>'
                   f'<text x="{x:.1f}" y="{Y.p0 + 16}" text-anchor="middle">{_fmt(t)}</text>')
    for t in _nice_ticks(ylo, yhi):
        y = Y(t)
        out.append(f'<line x1="{X.p0}" y1="{y:.1f}" x2="{X.p1}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{X.p0 - 6}" y="{y + 4:.1f}" text-anchor="end">{t * 100:.3g}%</text>')
    return out


def _budget_lines(b: dict[str, Any], X: _Axis, Y: _Axis) -> list[str]:
    out = []
    if b.get("p90_latency_ms"):
        x = X(float(b["p90_latency_ms"]))
        out.append(f'<line x1="{x:.1f}" y1="{Y.p1}" x2="{x:.1f}" y2="{Y.p0}" stroke="{BUDGET}" stroke-width="2" '
                   f'stroke-dasharray="6 4" class="budget-p90"/><text x="{x - 4:.1f}" y="{Y.p1 + 14}" '
                   f'text-anchor="end" fill="{BUDGET}">p90 budget {_fmt(float(b["p90_latency_ms"]))} ms</text>')
    if b.get("min_accuracy") is not None:
        y = Y(float(b["min_accuracy"]))
        out.append(f'<line x1="{X.p0}" y1="{y:.1f}" x2="{X.p1}" y2="{y:.1f}" stroke="{BUDGET}" stroke-width="2" '
                   f'stroke-dasharray="6 4" class="budget-accuracy"/><text x="{X.p1 - 4}" y="{y - 5:.1f}" '
                   f'text-anchor="end" fill="{BUDGET}">least accuracy {float(b["min_accuracy"]) * 100:.3g}%</text>')
    return out


def _marker(p: dict[str, Any], X: _Axis, Y: _Axis) -> list[str]:
    x, y, color = X(p["x"]), Y(p["y"]), FIT if p["fit"] else MISS
    tip = escape(f"#{p['i']} {p['name']}: int8 accuracy {p['y'] * 100:.2f}%, p90 {'≥ ' if p['at_least'] else ''}"
                 f"{p['x']:.4g} ms" + (" (CPU-fallback operators not counted)" if p["at_least"] else "")
                 + (f" (band {p['band'][0]:.3g}-{p['band'][1]:.3g} ms)" if p["band"] else "")
                 + (" — fits the budget" if p["fit"] else " — does not fit") + (", CHOSEN" if p["chosen"] else ""))
    out = [f'<g class="point {"fit" if p["fit"] else "miss"}"><title>{tip}</title>']
    if p["band"]:
        lo, hi = X(p["band"][0]), X(p["band"][1])
        out.append(f'<line x1="{lo:.1f}" y1="{y:.1f}" x2="{hi:.1f}" y2="{y:.1f}" stroke="{color}" stroke-width="1.2"/>'
                   f'<line x1="{lo:.1f}" y1="{y - 4:.1f}" x2="{lo:.1f}" y2="{y + 4:.1f}" stroke="{color}"/>'
                   f'<line x1="{hi:.1f}" y1="{y - 4:.1f}" x2="{hi:.1f}" y2="{y + 4:.1f}" stroke="{color}"/>')
    if p["fit"]:
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5.5" fill="{color}"/>')
    else:
        out.append(f'<path d="M{x - 5:.1f},{y - 5:.1f}L{x + 5:.1f},{y + 5:.1f}M{x - 5:.1f},{y + 5:.1f}'
                   f'L{x + 5:.1f},{y - 5:.1f}" stroke="{color}" stroke-width="2.2"/>')
    if p["chosen"]:
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="10" fill="none" stroke="#111" stroke-width="2" '
                   f'class="chosen"/>')
    dy = -8 if p["i"] % 2 else 17  # alternate above/below so neighbours' numbers do not overlap
    out.append(f'<text x="{x + 8:.1f}" y="{y + dy:.1f}" font-weight="bold">{p["i"]}</text></g>')
    return out


def bars_svg(title: str, items: list[tuple[str, float]], unit: str, limit: float | None = None,
             width: int = 370) -> str:
    """Horizontal bars (one per candidate number) with an optional budget line."""
    if not items:
        return ""
    row, left, top = 22, 44, 26
    height = top + row * len(items) + 26
    hi = max([v for _, v in items] + ([limit] if limit else [])) * 1.1 or 1.0
    scale = (width - left - 60) / hi
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" class="plot bars" font-family="sans-serif" font-size="12">',
           f"<title>{escape(title)}</title>", f'<text x="4" y="15" font-weight="bold">{escape(title)}</text>']
    for k, (label, v) in enumerate(items):
        y = top + k * row
        out.append(f'<g><title>{escape(label)}: {v:.4g} {escape(unit)}</title>'
                   f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{k + 1}</text>'
                   f'<rect x="{left}" y="{y + 3}" width="{max(v * scale, 1):.1f}" height="{row - 8}" fill="{FRONT}"/>'
                   f'<text x="{left + v * scale + 4:.1f}" y="{y + 14}">{v:.3g}</text></g>')
    if limit:
        x = left + limit * scale
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - 22}" stroke="{BUDGET}" stroke-width="2" '
                   f'stroke-dasharray="6 4"/><text x="{x:.1f}" y="{height - 8}" text-anchor="middle" '
                   f'fill="{BUDGET}">budget {limit:g} {escape(unit)}</text>')
    out.append("</svg>")
    return "\n".join(out)
