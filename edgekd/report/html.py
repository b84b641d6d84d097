"""report.html: one self-contained page (inline CSS and SVG; no script, font or image is fetched). Pure.

Every string that comes from the user or the run (target description, names, paths, the command, messages) is
HTML-escaped; numbers are formatted here.
"""

from __future__ import annotations

from html import escape
from typing import Any

from .html_parts import accuracy_section, environment_section, ops_section, provenance_section, target_sections
from .svg import FIT, FRONT, MISS, bars_svg, pareto_svg
from .view import (chosen_row, input_contract, judged_latency, latency_band, latency_kind, limit, memory_figures, pct,
                   students_init, train_seconds)

CSS = """
body{font-family:sans-serif;margin:0 auto;max-width:1180px;padding:16px 24px;color:#1f2328;line-height:1.45}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.25em;border-bottom:1px solid #d0d7de;padding-bottom:.2em;
margin-top:1.6em}table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #d0d7de;
padding:3px 7px;text-align:right;vertical-align:top}th{background:#f6f8fa}td.l,th.l{text-align:left}
tr.chosen td{background:#fff8c5}.ok{color:#1a7f37;font-weight:bold}.bad{color:#c62828}.box{border:1px solid
#d0d7de;border-radius:6px;padding:10px 14px;background:#f6f8fa}.note{color:#57606a;font-size:.9em}
.warn{border-left:4px solid #c62828;background:#fff5f5;padding:6px 10px;margin:.4em 0}code,pre{font-family:
monospace;font-size:.9em}pre{background:#f6f8fa;padding:10px;overflow-x:auto;white-space:pre-wrap}
.plots{display:flex;flex-wrap:wrap;gap:24px}.swatch{display:inline-block;width:12px;height:12px;
vertical-align:middle;margin:0 4px 0 12px}svg.plot{max-width:100%;height:auto}code.long{overflow-wrap:anywhere}
"""
CHOSEN = ' class="chosen"'


def to_html(r: dict[str, Any]) -> str:
    """The whole page for report dict ``r``."""
    parts = [_header(r), _why(r), _plot(r), _candidates(r), _failed_artifacts(r), _size_memory(r), provenance_section(r),
             accuracy_section(r), *target_sections(r), ops_section(r), _warnings(r), _schemes(r), _skipped(r),
             _training(r), environment_section(r)]
    title = escape(f"edgekd report: {r.get('target', '?')}")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(p for p in parts if p) + "\n</body>\n</html>\n")


def _header(r: dict[str, Any]) -> str:
    return (f"<h1>edgekd report: {escape(str(r['target']))}</h1>\n"
            f"<p><em>{escape(str(r.get('target_description', '')))}</em></p>\n"
            f"<p class=\"box\">{escape(str(r.get('latency_note', '')))}</p>")


def _why(r: dict[str, Any]) -> str:
    sel, row = r.get("selection", {}), chosen_row(r)
    if r.get("selected"):
        head = (f"<h2>Chosen student: <code>{escape(r['selected'])}</code></h2>\n"
                f"<p><strong>Why:</strong> {escape(str(sel.get('reason', '')))}.</p>")
    else:
        head = (f"<h2 class=\"bad\">No student meets the budget</h2>\n<p>Closest: <code>"
                f"{escape(str(sel.get('closest')))}</code> ({escape(str(sel.get('reason', '')))}).</p>")
    if row is None:
        return head
    return head + "\n" + _budget_table(r, row)


def _budget_table(r: dict[str, Any], c: dict[str, Any]) -> str:
    """Each budget line: its limit, the candidate's figure, and whether it is met."""
    b = r["budget"]
    lat = c["latency"]
    lines = [("p90 latency", b.get("p90_latency_ms"), judged_latency(c), " ms", latency_kind(c), False),
             ("int8 accuracy", b.get("min_accuracy"), c["accuracy_int8"], "", "test split", True)]
    if lat.get("sram_kib") is not None:
        lines += [("SRAM", b.get("sram_kib"), lat["sram_kib"], " KiB", "Vela", False),
                  ("flash", b.get("flash_kib"), lat["flash_kib"], " KiB", "Vela", False)]
    lines += [("model memory", b.get("peak_memory_mb"), c["peak_memory_mb"], " MB", "host process", False),
              ("model file size", b.get("model_size_mb"), c["model_size_mb"], " MB", "int8 artifact", False)]
    rows = []
    for label, lim, value, unit, how, at_least in lines:
        if lim is None:
            verdict = "<td class=\"l note\">no limit</td>"
        else:
            ok = value >= lim if at_least else value <= lim
            verdict = f"<td class=\"l {'ok' if ok else 'bad'}\">{'meets' if ok else 'breaks'}</td>"
        fmt = pct if unit == "" else (lambda v, u=unit: f"{v:.4g}{u}")
        bound = "none" if lim is None else ("≥ " if at_least else "≤ ") + fmt(lim)
        rows.append(f"<tr><td class=\"l\">{label}</td><td>{bound}</td><td>{fmt(value)}</td>"
                    f"<td class=\"l note\">{how}</td>{verdict}</tr>")
    drop = b.get("max_accuracy_drop")
    return ("<table><tr><th class=\"l\">budget</th><th>limit</th><th>"
            f"<code>{escape(c['name'])}</code></th><th class=\"l\">figure</th><th class=\"l\">verdict</th></tr>"
            + "".join(rows) + "</table>\n" + (f"<p class=\"note\">Largest int8 accuracy drop the target accepts "
                                              f"(quantization guard): {pct(drop)}.</p>" if drop is not None else ""))


def _plot(r: dict[str, Any]) -> str:
    legend = (f"<p class=\"note\"><span class=\"swatch\" style=\"background:{FIT}\"></span>fits every budget"
              f"<span class=\"swatch\" style=\"background:{MISS}\"></span>does not fit (×)"
              f"<span class=\"swatch\" style=\"border:2px solid #111;border-radius:50%\"></span>chosen"
              f"<span class=\"swatch\" style=\"background:{FRONT}\"></span>Pareto front (dashed)"
              f"<span class=\"swatch\" style=\"background:#b26a00\"></span>budget lines; shaded: the feasible "
              "corner. Horizontal bars: the estimate's error band. Numbers refer to the table below.</p>")
    return "<h2>Accuracy vs p90 latency (Pareto)</h2>\n" + pareto_svg(r) + "\n" + legend


def _candidates(r: dict[str, Any]) -> str:
    head = ("<tr><th>#</th><th class=\"l\">candidate</th><th>params</th><th>MMACs</th><th>acc fp32 (torch)</th>"
            "<th>acc fp32 (runtime)</th><th>acc int8</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th>"
            "<th>cold start ms</th><th>error band ms</th><th>memory</th><th>size MB</th><th class=\"l\">fits</th></tr>")
    rows = []
    for i, c in enumerate(r.get("candidates", []), 1):
        lat = c["latency"]
        if lat["kind"] == "measured":
            p50, p90, p99 = (f"{lat['p50_ms']:.3f}", f"{lat['p90_ms']:.3f}", f"{lat['p99_ms']:.3f}")
        else:  # one estimate per artifact: no spread to give percentiles of
            p50, p90, p99 = "—", f"≈{lat['estimate_ms']:.4g}", "—"
        cold = "n/a" if lat.get("cold_start_ms") is None else f"{lat['cold_start_ms']:.3g}"
        band = latency_band(c)
        mem = ", ".join(f"{v:.4g} {u}" for _, v, u in memory_figures(c))
        fits = ("<span class=\"ok\">yes</span>" if c.get("within_budget") else
                "<span class=\"bad\">no</span>: " + escape("; ".join(c.get("budget_violations", []))))
        chosen = c["name"] == r.get("selected")
        rows.append(f"<tr{CHOSEN if chosen else ''}><td>{i}</td>"
                    f"<td class=\"l\"><code>{escape(c['name'])}</code>{' ★' if chosen else ''}"
                    f"</td><td>{c['params']:,}</td><td>{c['macs'] / 1e6:.3f}</td><td>{pct(c.get('accuracy_fp32'))}</td>"
                    f"<td>{pct(c.get('accuracy_onnx_fp32'))}</td><td>{pct(c['accuracy_int8'])}</td><td>{p50}</td>"
                    f"<td>{p90}</td><td>{p99}</td><td>{cold}</td>"
                    f"<td>{'' if not band else f'{band[0]:.3g}-{band[1]:.3g}'}</td><td>{mem}</td>"
                    f"<td>{c['model_size_mb']:.4f}</td><td class=\"l\">{fits}</td></tr>")
    return ("<h2>Candidates (each student's int8 artifact per runtime: what would be deployed)</h2>\n<table>"
            + head + "".join(rows) + "</table>\n<p class=\"note\">Latency columns hold the figure the budget is "
            "checked against (see <a href=\"#latency-how\">how each was obtained</a>); an estimate (ARM, NPU) is one "
            "figure per artifact, so it has no p50/p99 (the host measurements are in the sections below, for "
            "reference). Memory: the model's peak "
            "resident memory in the host benchmark (peak RSS minus the RSS after importing the runtime), or Vela's "
            "SRAM/flash for an NPU.</p>")


def _size_memory(r: dict[str, Any]) -> str:
    cands, b = r.get("candidates", []), r.get("budget", {})
    if not cands:
        return ""
    size = bars_svg("int8 model file size (MB)", [(c["name"], c["model_size_mb"]) for c in cands], "MB",
                    b.get("model_size_mb"))
    if all(c.get("npu") for c in cands):
        mem = bars_svg("NPU SRAM (KiB, Vela)", [(c["name"], c["npu"]["sram_kib"]) for c in cands], "KiB",
                       b.get("sram_kib"))
        budgets = f"size {limit(b.get('model_size_mb'), ' MB')}, SRAM {limit(b.get('sram_kib'), ' KiB')}"
    else:
        mem = bars_svg("model memory (MB, host)", [(c["name"], c["peak_memory_mb"]) for c in cands], "MB",
                       b.get("peak_memory_mb"))
        budgets = f"size {limit(b.get('model_size_mb'), ' MB')}, memory {limit(b.get('peak_memory_mb'), ' MB')}"
    return ("<h2>Model size and memory per candidate</h2>\n<div class=\"plots\">" + size + mem + "</div>\n"
            f"<p class=\"note\">Bars are numbered as in the candidates table; dashed: the budget ({budgets}).</p>")


def _warnings(r: dict[str, Any]) -> str:
    ws = r.get("quantization_warnings", [])
    if not ws:
        return ("<h2>Quantization guard</h2>\n<p class=\"ok\">No warnings: no int8 artifact is slower than its fp32 "
                "source, and none loses more accuracy than the target allows.</p>")
    return "<h2>Quantization guard warnings</h2>\n" + "".join(f"<p class=\"warn\">{escape(w)}</p>" for w in ws)


def _schemes(r: dict[str, Any]) -> str:
    rows = [c for c in r.get("candidates", []) if c.get("int8_schemes_tried")]
    if not rows:
        return ""
    items = []
    for c in rows:
        tried = ", ".join(f"{t['scheme']} {t['val_accuracy'] * 100:.2f}%" if "val_accuracy" in t
                          else f"{t['scheme']} failed" for t in c["int8_schemes_tried"])
        items.append(f"<li><code>{escape(c['name'])}</code>: <strong>{escape(str(c['int8_scheme']))}</strong> "
                     f"(tried: {escape(tried)})</li>")
    return "<h2>int8 scheme per candidate (chosen by validation accuracy)</h2>\n<ul>" + "".join(items) + "</ul>"


def _failed_artifacts(r: dict[str, Any]) -> str:
    """Artifacts a converter could not make (the build went on without them), each with its reason."""
    fails = [f for f in r.get("artifact_failures") or [] if isinstance(f, dict)]
    if not fails:
        return ""
    items = "".join(f"<li><code>{escape(str(f.get('candidate')))}@{escape(str(f.get('runtime')))}</code>: "
                    f"{escape(str(f.get('reason')))}</li>" for f in fails)
    return f"<h2>Artifacts that could not be made ({len(fails)})</h2>\n<ul>{items}</ul>"


def _skipped(r: dict[str, Any]) -> str:
    """The pre-training search: every candidate considered, its estimated cost, trained or skipped and why."""
    search = r.get("search") or {}
    considered = [c for c in search.get("considered") or [] if isinstance(c, dict)]
    if not considered:
        return ""
    rows = []
    for c in considered:
        lat = "—" if c.get("latency_ms") is None else f"{c['latency_ms']:.3g} ({escape(str(c.get('latency_runtime')))})"
        trained = c.get("decision") == "train"
        why = "trained" if trained else "skipped: " + "; ".join(map(str, c.get("reasons") or []))
        rows.append(f"<tr><td class=\"l\"><code>{escape(str(c.get('name')))}</code></td><td>{c.get('params', 0):,}</td>"
                    f"<td>{c.get('macs', 0) / 1e6:.3f}</td><td>{c.get('int8_size_mb', 0):.3f}</td>"
                    f"<td>{c.get('peak_activation_kib', 0):.1f}</td><td>{lat}</td><td>{train_seconds(c.get('est_train_s'))}</td>"
                    f"<td class=\"l {'ok' if trained else 'bad'}\">{escape(why)}</td></tr>")
    st = r.get("stages") or {}
    stages = (f"<p class=\"note\">Stages: {len(st.get('ran', []))} ran in this build, {len(st.get('reused', []))} "
              "reused from an earlier build with the same inputs"
              + (f", {len(st['shared'])} copied from the shared store" if st.get("shared") else "")
              + (" (--fresh)" if st.get("fresh") else "") + ".</p>"
              if st else "")
    return (f"<h2>Search: {len(considered)} candidate(s) considered, {len(search.get('trained') or [])} trained</h2>\n"
            "<p class=\"note\">Sized before training (random weights); latency estimated on the target from two "
            "probe models.</p>\n<table><tr><th class=\"l\">candidate</th><th>params</th><th>MMACs</th><th>int8 MB</th>"
            "<th>activation KiB</th><th>est. latency ms</th><th>est. train s</th><th class=\"l\">decision</th></tr>"
            + "".join(rows) + "</table>\n" + stages)


def _training(r: dict[str, Any]) -> str:
    d, data = r.get("distill", {}), r.get("data", {})
    hints = f", hints {d['hints']} (β = {d.get('hint_weight')})" if d.get("hints") else ""
    return ("<h2>How the students were trained</h2>\n<p>" + escape(
        f"Data {data.get('spec')}: {data.get('train')} train"
        f"{' (%d unlabelled, labelled by the teacher)' % data['unlabeled'] if data.get('unlabeled') else ''}"
        f" / {data.get('val')} val / {data.get('test')} test "
        f"samples, {data.get('num_classes')} classes. Loss {d.get('loss')} (T = {d.get('temperature')}, "
        f"α = {d.get('alpha')}), {d.get('optimizer')} lr {d.get('lr')}, up to {d.get('epochs')} epochs, early stop "
        f"after {d.get('patience')}, seed {d.get('seed')}{hints}.") + "</p>"
            + "".join(f"\n<p>{escape(s)}: {escape(init)}</p>" for s, init in students_init(r))
            + (f"\n<p>{escape(input_contract(data))}</p>" if input_contract(data) else ""))
