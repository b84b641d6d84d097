"""Two runs side by side (pure): target, budget, chosen student and its figures with deltas (B - A), and which
candidates each run holds. Rendered as plain text (console), Markdown and a self-contained HTML page."""

from __future__ import annotations

from html import escape
from typing import Any

from .html import CSS
from .view import chosen_row, judged_latency, latency_kind, pct

BUDGET_KEYS = ("p90_latency_ms", "peak_memory_mb", "model_size_mb", "min_accuracy", "max_accuracy_drop",
               "sram_kib", "flash_kib")
# (key, label, unit, format) of the chosen student's figures compared
FIGURES = (("accuracy_int8", "int8 accuracy", "pts", "acc"), ("p90_ms", "judged p90 latency", "ms", "ms"),
           ("p50_ms", "p50 latency", "ms", "ms"), ("model_size_mb", "model size", "MB", "num"),
           ("memory", "model memory (host)", "MB", "num"), ("macs", "MMACs", "", "mmac"), ("params", "params", "", "int"))


def _figures(r: dict[str, Any]) -> dict[str, Any] | None:
    c = chosen_row(r) if r.get("selected") else None
    if c is None:
        return None
    return {"name": c["name"], "runtime": c["runtime"], "accuracy_int8": c["accuracy_int8"],
            "p90_ms": judged_latency(c), "p50_ms": c["latency"].get("p50_ms"),
            "latency_kind": latency_kind(c), "latency_source": c["latency"]["source"],
            "model_size_mb": c["model_size_mb"], "memory": c["peak_memory_mb"], "macs": c["macs"],
            "params": c["params"]}


def compare_reports(a: dict[str, Any], b: dict[str, Any], label_a: str = "A", label_b: str = "B") -> dict[str, Any]:
    """The comparison of report dicts ``a`` and ``b`` (deltas are B - A)."""
    fa, fb = _figures(a), _figures(b)
    deltas = {}
    if fa and fb:
        for key, *_ in FIGURES:
            if fa[key] is not None and fb[key] is not None:
                deltas[key] = fb[key] - fa[key]
    ca = {c["name"]: c for c in a["candidates"]}
    cb = {c["name"]: c for c in b["candidates"]}
    order = list(ca) + [n for n in cb if n not in ca]
    cands = [{"name": n, "in_a": n in ca, "in_b": n in cb,
              "a": _cand(ca.get(n)), "b": _cand(cb.get(n))} for n in order]
    return {"labels": [label_a, label_b],
            "runs": [{"label": lab, "target": r["target"], "target_description": r["target_description"],
                      "budget": r["budget"], "selected": r.get("selected"), "reason": r["selection"].get("reason", ""),
                      "chosen": f} for lab, r, f in ((label_a, a, fa), (label_b, b, fb))],
            "budget": [{"key": k, "a": a["budget"].get(k), "b": b["budget"].get(k)} for k in BUDGET_KEYS
                       if a["budget"].get(k) is not None or b["budget"].get(k) is not None],
            "deltas": deltas, "candidates": cands}


def _cand(c: dict[str, Any] | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"accuracy_int8": c["accuracy_int8"], "p90_ms": judged_latency(c), "fits": bool(c["within_budget"])}


def _fmt(kind: str, v: Any) -> str:
    if v is None:
        return "n/a"
    return {"acc": lambda: pct(v), "ms": lambda: f"{v:.4g}", "num": lambda: f"{v:.4g}",
            "mmac": lambda: f"{v / 1e6:.3f}", "int": lambda: f"{v:,}"}[kind]()


def _delta(key: str, kind: str, d: float | None, fa: dict | None) -> str:
    if d is None:
        return ""
    if kind == "acc":
        return f"{d * 100:+.2f} pts"
    base = fa[key] if fa else None
    rel = f" ({d / base * 100:+.1f}%)" if base else ""
    return {"mmac": f"{d / 1e6:+.3f}", "int": f"{d:+,}"}.get(kind, f"{d:+.4g}") + rel


def _figure_rows(cmp: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(label, A, B, delta) for the chosen students' figures."""
    fa, fb = cmp["runs"][0]["chosen"], cmp["runs"][1]["chosen"]
    rows = [("chosen student", fa["name"] if fa else "none fits", fb["name"] if fb else "none fits", "")]
    for key, label, unit, kind in FIGURES:
        va, vb = (fa or {}).get(key), (fb or {}).get(key)
        lab = f"{label} ({unit})" if unit and kind != "acc" else label
        rows.append((lab, _fmt(kind, va), _fmt(kind, vb), _delta(key, kind, cmp["deltas"].get(key), fa)))
    rows.append(("latency obtained", (fa or {}).get("latency_kind", ""), (fb or {}).get("latency_kind", ""), ""))
    return rows


def _candidate_rows(cmp: dict[str, Any]) -> list[tuple[str, str, str]]:
    def cell(x: dict[str, Any] | None) -> str:
        if x is None:
            return "absent"
        return f"{pct(x['accuracy_int8'])}, p90 {x['p90_ms']:.4g} ms, {'fits' if x['fits'] else 'does not fit'}"

    return [(c["name"], cell(c["a"]), cell(c["b"])) for c in cmp["candidates"]]


def _head_rows(cmp: dict[str, Any]) -> list[tuple[str, str, str]]:
    ra, rb = cmp["runs"]
    rows = [("target", ra["target"], rb["target"])]
    rows += [(f"budget {b['key']}", _lim(b["a"]), _lim(b["b"])) for b in cmp["budget"]]
    return rows


def _lim(v: float | None) -> str:
    return "none" if v is None else f"{v:g}"


def compare_text(cmp: dict[str, Any]) -> str:
    la, lb = cmp["labels"]
    table = [("", la, lb, "delta (B - A)")] + [(*r, "") for r in _head_rows(cmp)] + _figure_rows(cmp)
    w = [max(len(str(r[i])) for r in table) for i in range(4)]
    lines = ["  ".join(str(x).ljust(w[i]) for i, x in enumerate(r)).rstrip() for r in table]
    lines += ["", "candidates:"] + [f"  {n}: A {a}; B {b}" for n, a, b in _candidate_rows(cmp)]
    return "\n".join(lines)


def compare_markdown(cmp: dict[str, Any]) -> str:
    la, lb = cmp["labels"]
    lines = ["# edgekd compare", "", f"A: `{la}`  ", f"B: `{lb}`", "", "| | A | B | delta (B - A) |", "|---|---|---|---|"]
    lines += [f"| {k} | {a} | {b} | |" for k, a, b in _head_rows(cmp)]
    lines += [f"| {k} | {a} | {b} | {d} |" for k, a, b, d in _figure_rows(cmp)]
    lines += ["", "## Candidates", "", "| candidate | A | B |", "|---|---|---|"]
    lines += [f"| `{n}` | {a} | {b} |" for n, a, b in _candidate_rows(cmp)]
    return "\n".join(lines) + "\n"


def compare_html(cmp: dict[str, Any]) -> str:
    la, lb = (escape(x) for x in cmp["labels"])
    head = "".join(f"<tr><td class=\"l\">{escape(k)}</td><td>{escape(a)}</td><td>{escape(b)}</td><td></td></tr>"
                   for k, a, b in _head_rows(cmp))
    figs = "".join(f"<tr><td class=\"l\">{escape(k)}</td><td>{escape(a)}</td><td>{escape(b)}</td>"
                   f"<td>{escape(d)}</td></tr>" for k, a, b, d in _figure_rows(cmp))
    cands = "".join(f"<tr><td class=\"l\"><code>{escape(n)}</code></td><td>{escape(a)}</td><td>{escape(b)}</td></tr>"
                    for n, a, b in _candidate_rows(cmp))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>edgekd compare</title>\n"
            f"<style>{CSS}</style>\n</head>\n<body>\n<h1>edgekd compare</h1>\n<p>A: <code>{la}</code><br>"
            f"B: <code>{lb}</code></p>\n<table><tr><th></th><th>A</th><th>B</th><th>delta (B - A)</th></tr>"
            + head + figs + "</table>\n<h2>Candidates</h2>\n<table><tr><th class=\"l\">candidate</th><th>A</th>"
            "<th>B</th></tr>" + cands + "</table>\n</body>\n</html>\n")
