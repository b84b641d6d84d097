"""Several devices side by side (pure): from each target's report dict, a device-by-candidate comparison — each
candidate's judged latency on each device with how it was obtained, whether it fits that device's budget, and the
choice per device. Rendered as Markdown and a self-contained HTML page."""

from __future__ import annotations

from html import escape
from typing import Any

from .html import CSS
from .view import judged_latency, latency_band, pct

COMPARISON_VERSION = 1


def _cell(c: dict[str, Any]) -> dict[str, Any]:
    lat = c["latency"]
    return {"judged_ms": judged_latency(c), "kind": lat["kind"], "backend": lat["backend"], "source": lat["source"],
            "band_ms": list(latency_band(c)) if latency_band(c) else None, "within_budget": c["within_budget"],
            "violations": list(c["budget_violations"])}


def comparison(reports: dict[str, dict[str, Any]], outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """The comparison dict of per-target reports (``outcomes``: target, run_dir, selected, unmet — in order)."""
    rows: dict[str, dict[str, Any]] = {}
    trained, shared = [], []
    for t, r in reports.items():
        for c in r["candidates"]:
            row = rows.setdefault(c["name"], {"name": c["name"], "student": c["student"], "runtime": c["runtime"],
                                              "params": c["params"], "macs": c["macs"],
                                              "accuracy_int8": c["accuracy_int8"],
                                              "accuracy_int8_interval": c.get("accuracy_int8_interval"),
                                              "model_size_mb": c["model_size_mb"], "on": {}})
            row["on"][t] = _cell(c)
        stages = r.get("stages") or {}
        trained += [f"{t}: {s.split('/')[0]}" for s in stages.get("ran", []) if s.endswith("/distill")]
        shared += [f"{t}: {s.split('/')[0]}" for s in stages.get("shared", []) if s.endswith("/distill")]
    targets = []
    for o in outcomes:
        r = reports.get(o["target"]) or {}
        targets.append({**o, "description": r.get("target_description"), "budget": r.get("budget"),
                        "reason": (r.get("selection") or {}).get("reason"),
                        "closest": (r.get("selection") or {}).get("closest")})
    return {"comparison_version": COMPARISON_VERSION, "targets": targets,
            "candidates": sorted(rows.values(), key=lambda x: (x["macs"], x["name"])),
            "students_trained": trained, "students_copied": shared}


def _cell_text(cell: dict[str, Any] | None, chosen: bool) -> str:
    if cell is None:
        return "—"
    how = {"measured": "measured"}.get(cell["kind"], "est.")
    band = f" [{cell['band_ms'][0]:.3g}–{cell['band_ms'][1]:.3g}]" if cell.get("band_ms") else ""
    fits = "fits" if cell["within_budget"] else "no: " + "; ".join(cell["violations"])
    text = f"{cell['judged_ms']:.3g} ms {how}{band}, {fits}"
    return f"**⭐ {text}**" if chosen else text


def comparison_markdown(cmp: dict[str, Any]) -> str:
    ts = cmp["targets"]
    lines = [f"# edgekd: {len(ts)} devices compared", "",
             "Each target was built into its own run directory (its report beside this page); every student was "
             f"trained once ({len(cmp['students_trained'])} trained, {len(cmp['students_copied'])} copied for "
             "another target from the shared store).", "", "## Choice per device", "",
             "| device | choice | why | run |", "|---|---|---|---|"]
    for t in ts:
        choice = f"`{t['selected']}`" if t["selected"] else f"none (closest `{t.get('closest')}`)"
        why = t.get("reason") or t.get("unmet") or ""
        lines.append(f"| {t['target']} | {choice} | {' '.join(str(why).split())} | `{t['run_dir']}/report.md` |")
    lines += ["", "## Every candidate on every device (judged latency, how it was obtained, budget)", "",
              "| candidate | int8 acc | size MB | " + " | ".join(t["target"] for t in ts) + " |",
              "|---|---:|---:|" + "---|" * len(ts)]
    for c in cmp["candidates"]:
        cells = [_cell_text(c["on"].get(t["target"]), c["name"] == t["selected"]) for t in ts]
        lines.append(f"| `{c['name']}` | {pct(c['accuracy_int8'])} | {c['model_size_mb']:.3f} | "
                     + " | ".join(cells) + " |")
    lines += ["", "How each figure was obtained:", ""]
    seen = set()
    for c in cmp["candidates"]:
        for t, cell in c["on"].items():
            if (t, cell["source"]) not in seen:
                seen.add((t, cell["source"]))
                lines.append(f"- {t}: {cell['source']}")
    lines += ["", "⭐ marks each device's choice; a dash: the candidate was not built for that device (its runtimes "
              "or budget ruled it out before training).", ""]
    return "\n".join(lines)


def comparison_html(cmp: dict[str, Any]) -> str:
    ts = cmp["targets"]
    head = "".join(f"<th>{escape(t['target'])}</th>" for t in ts)
    choice_rows = "".join(
        f"<tr><td>{escape(t['target'])}</td><td>{escape(t['selected'] or 'none')}</td>"
        f"<td class=\"l\">{escape(' '.join(str(t.get('reason') or t.get('unmet') or '').split()))}</td></tr>"
        for t in ts)
    body = "".join(
        f"<tr><td>{escape(c['name'])}</td><td>{pct(c['accuracy_int8'])}</td><td>{c['model_size_mb']:.3f}</td>"
        + "".join(f"<td class=\"{'ok' if (c['on'].get(t['target']) or {}).get('within_budget') else 'bad'}\">"
                  f"{escape(_cell_text(c['on'].get(t['target']), False))}"
                  f"{' ⭐' if c['name'] == t['selected'] else ''}</td>" for t in ts) + "</tr>"
        for c in cmp["candidates"])
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>edgekd: devices compared</title>"
            f"<style>{CSS}</style></head><body><h1>edgekd: {len(ts)} devices compared</h1>"
            f"<h2>Choice per device</h2><table><tr><th>device</th><th>choice</th><th>why</th></tr>{choice_rows}"
            f"</table><h2>Every candidate on every device</h2><table><tr><th>candidate</th><th>int8 acc</th>"
            f"<th>size MB</th>{head}</tr>{body}</table></body></html>\n")
