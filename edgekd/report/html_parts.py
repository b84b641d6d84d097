"""Sections of report.html: how latencies were obtained, accuracy, ARM/NPU estimates, slowest operators,
environment and the command to reproduce. Pure; every run-supplied string is escaped."""

from __future__ import annotations

from html import escape
from typing import Any

from .view import chosen_row, interval, latency_provenance, pct, slowest_ops


def provenance_section(r: dict[str, Any]) -> str:
    items = []
    for i, c in enumerate(r.get("candidates", []), 1):
        how = "".join(f"<li><strong>{escape(label)}</strong>: {escape(text)}</li>"
                      for label, text in latency_provenance(c))
        note = f"<li class=\"bad\">{escape(c['latency_band_note'])}</li>" if c.get("latency_band_note") else ""
        items.append(f"<li>#{i} <code>{escape(c['name'])}</code><ul>{how}{note}</ul></li>")
    return ("<h2 id=\"latency-how\">Latency p50/p90/p99 and cold start: how each was obtained</h2>\n"
            f"<p>{escape(str(r.get('latency_note', '')))}</p>\n<ul>" + "".join(items) + "</ul>\n"
            "<p class=\"note\">Cold start = model load (session / interpreter creation) plus the first inference, "
            "in a fresh process; for an ARM estimate, the first inference's instructions.</p>")


def accuracy_section(r: dict[str, Any]) -> str:
    t, c = r.get("teacher", {}), chosen_row(r)
    origin = escape(str(t.get("origin") or t.get("path") or ""))
    rows = [("teacher", t.get("accuracy"), f"{origin}; outputs treated as {escape(str(t.get('outputs')))}")]
    if c:
        rt = escape(str(c.get("runtime", "")))
        rows += [("student fp32 (torch)", c.get("accuracy_fp32"), f"<code>{escape(c['student'])}</code>, torch eager"
                  + (f"; 95% interval {interval(c, 'accuracy_fp32')}" if interval(c, "accuracy_fp32") else "")),
                 ("student fp32 (exported)", c.get("accuracy_onnx_fp32"), f"fp32 file in {rt}"),
                 ("student int8 (deployed)", c.get("accuracy_int8"),
                  f"{escape(str(c.get('int8_scheme', '')))}, {rt}; argmax agreement with fp32 "
                  f"{pct(c.get('int8_argmax_agreement'))}"
                  + (f"; 95% interval {interval(c)}" if interval(c) else ""))]
    body = "".join(f"<tr><td class=\"l\">{label}</td><td>{pct(v)}</td><td class=\"l\">{how}</td></tr>"
                   for label, v, how in rows)
    who = f" of <code>{escape(c['name'])}</code>" if c else ""
    return (f"<h2>Accuracy{who} (test split, {r.get('data', {}).get('test', '?')} samples)</h2>\n"
            "<table><tr><th class=\"l\">model</th><th>top-1</th><th class=\"l\">how</th></tr>" + body + "</table>")


def target_sections(r: dict[str, Any]) -> list[str]:
    return [s for s in (_arm(r), _npu(r), _board(r)) if s]


def _board(r: dict[str, Any]) -> str:
    rows = [c for c in r.get("candidates", []) if c.get("board")]
    if not rows:
        return ""
    first = rows[0]["board"]["int8"]
    body = []
    for c in rows:
        m = c["board"]["int8"]
        est = ("—" if m.get("estimate_ms") is None else
               f"{m['estimate_ms']:.3g} ({m['estimate_band_ms'][0]:.3g}-{m['estimate_band_ms'][1]:.3g})")
        body.append(f"<tr><td class=\"l\"><code>{escape(c['name'])}</code></td><td>{m['p50_ms']:.4g}</td>"
                    f"<td>{m['p90_ms']:.4g}</td><td>{m['p99_ms']:.4g}</td><td>{m['cold_start_ms']:.4g}</td>"
                    f"<td>{escape(est)}</td></tr>")
    return (f"<h2>Measured on the board {escape(str(first['device']))}</h2>\n<p class=\"note\">"
            f"{escape(str(first.get('how', '')))}; the estimate from emulated counts is shown beside it.</p>\n"
            "<table><tr><th class=\"l\">candidate</th><th>int8 p50 ms</th><th>p90 ms</th><th>p99 ms</th>"
            "<th>cold start ms</th><th>estimate ms (band)</th></tr>\n" + "\n".join(body) + "\n</table>")


def _arm(r: dict[str, Any]) -> str:
    rows = [c for c in r.get("candidates", []) if c.get("arm")]
    if not rows:
        return ""
    a = rows[0]["arm"]["int8"]
    body = []
    for c in rows:
        a8, a32, p = c["arm"]["int8"], c["arm"]["fp32"], c["arm"]["int8"].get("parity", {})
        agree = (f"within {p['max_quant_steps']} int8 step(s)" if "max_quant_steps" in p
                 else f"max diff {p.get('max_abs_diff', float('nan')):.2g}")
        terms = (f"{a8['compute_ms']:.3g} + {a8['memory_ms']:.3g}" if "compute_ms" in a8 else "—")
        body.append(f"<tr><td class=\"l\"><code>{escape(c['name'])}</code></td><td>{a8['estimate_ms']:.4g}</td>"
                    f"<td>{terms}</td><td>{a8['band_ms'][0]:.3g}-{a8['band_ms'][1]:.3g}</td><td>{a8['first_inference_ms']:.4g}</td>"
                    f"<td>{a8['instructions'] / 1e6:.2f}</td><td>{100 * a8.get('count_spread', 0):.2f}%</td>"
                    f"<td>{a32['estimate_ms']:.4g}</td><td>{_ms3(c['host_latency'])}</td>"
                    f"<td>{c['host_latency']['cold_start_ms']:.3g}</td>"
                    f"<td class=\"l\">{escape(agree)}</td></tr>")
    return (f"<h2>Estimated on {escape(str(a['core']))} @ {a['clock_ghz']:g} GHz ({a['threads']} thread(s)) from "
            "emulated instruction counts</h2>\n<p class=\"note\">Estimates, never measurements: "
            f"{escape(str(a.get('how', '')))}.</p>\n<table><tr><th class=\"l\">candidate</th><th>int8 estimate ms</th>"
            "<th>= compute + memory ms</th><th>error band ms</th><th>first inference ms</th><th>int8 M instr</th><th>count spread</th>"
            "<th>fp32 estimate ms</th><th>host p50 / p90 / p99 ms (measured, x86)</th><th>host cold start ms</th>"
            "<th class=\"l\">emulated vs host outputs"
            "</th></tr>" + "".join(body) + "</table>")


def _ms3(fig: dict[str, Any]) -> str:
    """A measured figure's p50 / p90 / p99."""
    return " / ".join(f"{fig[p]:.3f}" for p in ("p50_ms", "p90_ms", "p99_ms"))


def _npu(r: dict[str, Any]) -> str:
    rows = [c for c in r.get("candidates", []) if c.get("npu")]
    if not rows:
        return ""
    n0 = rows[0]["npu"]
    body = []
    for c in rows:
        n = c["npu"]
        fallback = escape(", ".join(n["cpu_fallback"])) + " (time unknown)" if n["cpu_fallback"] else "none"
        time = f"≥ {n['time_ms']:.4f}" if n["cpu_ops"] else f"{n['time_ms']:.4f}"
        body.append(f"<tr><td class=\"l\"><code>{escape(c['name'])}</code></td><td>{pct(c['accuracy_int8'])}</td>"
                    f"<td>{time}</td><td>{n['cycles_total']:,}</td><td>{n['sram_kib']:.1f}</td>"
                    f"<td>{n['flash_kib']:.1f}</td><td>{n['npu_ops']}/{n['npu_ops'] + n['cpu_ops']}</td>"
                    f"<td class=\"l\">{fallback}</td><td>{_ms3(c['host_latency'])}</td>"
                    f"<td>{c['host_latency']['cold_start_ms']:.3g}</td></tr>")
    pick = chosen_row(r)
    layers = ""
    if pick and pick.get("npu"):
        top = sorted((x for x in pick["npu"]["layers"] if x["target"] == "NPU"), key=lambda x: -x["cycles"])[:8]
        layers = (f"<h3>Costliest layers of <code>{escape(pick['name'])}</code> on the NPU (Vela's estimate)</h3>"
                  "<table><tr><th class=\"l\">layer</th><th class=\"l\">op</th><th>cycles</th><th>MACs</th></tr>"
                  + "".join(f"<tr><td class=\"l\"><code class=\"long\">{escape(str(x['name']))}</code></td><td class=\"l\">"
                            f"{escape(str(x['op']))} ({escape(str(x['tflite_op'] or '?'))})</td><td>{x['cycles']:,}"
                            f"</td><td>{x['macs']:,}</td></tr>" for x in top) + "</table>")
    return (f"<h2>NPU estimate: {escape(str(n0['accelerator']))} @ {n0['clock_mhz']:g} MHz (Arm Vela "
            f"{escape(str(n0.get('vela', '')))}), what the budget is checked against</h2>\n"
            f"<p class=\"note\">{escape(str(n0.get('how', '')))}. A time marked ≥ leaves out operators that fall "
            "back to the CPU: their cost is unknown.</p>\n<table><tr><th class=\"l\">candidate</th><th>acc int8</th>"
            "<th>time ms</th><th>cycles</th><th>SRAM KiB</th><th>flash KiB</th><th>ops on NPU</th>"
            "<th class=\"l\">CPU fallback</th><th>host p50 / p90 / p99 ms (measured, x86, reference)</th>"
            "<th>host cold start ms</th></tr>" + "".join(body) + "</table>" + layers)


def ops_section(r: dict[str, Any]) -> str:
    head = "<h2>Slowest operators (runtime profiling)</h2>\n"
    prof, row = slowest_ops(r), chosen_row(r)
    if not prof:
        return head + "<p class=\"note\">This report has no operator profile (made before edgekd profiled " \
                      "operators, or the build did not profile).</p>"
    if "error" in prof:
        return head + f"<p class=\"warn\">No operator profile: {escape(str(prof['error']))}</p>"
    name = escape(str(prof.get("candidate") or (row or {}).get("name", "")))
    label = (f"<p>Profile of <code>{name}</code>: {escape(str(prof.get('artifact_kind', '')))} "
             f"(<code class=\"long\">{escape(str(prof.get('artifact', '')))}</code>), in {escape(str(prof['profiled_runtime']))} on "
             f"{escape(str(prof.get('where', '')))}.</p>\n")
    if not prof.get("is_deployed_artifact", True):
        label += f"<p class=\"warn\">{escape(str(prof.get('note', '')))}.</p>\n"
    if row and row["latency"]["backend"] != "host":
        label += ("<p class=\"warn\">These times are this host's x86 CPU, not the target device; the ranking of "
                  "operators is a hint, the device's own costs are in the estimate sections above.</p>\n")
    ops = "".join(f"<tr><td class=\"l\"><code class=\"long\">{escape(str(o['node']))}</code></td><td class=\"l\">"
                  f"{escape(str(o['op_type']))}</td><td>{o['calls']}</td><td>{o.get('median_us', o['mean_us']):.2f}"
                  f"</td><td>{o['mean_us']:.2f}</td><td>{o['total_us']:.0f}</td>"
                  f"<td>{100 * o['share']:.1f}%</td></tr>" for o in prof["ops"])
    types = ", ".join(f"{escape(str(t['op_type']))} {100 * t['share']:.0f}%" for t in prof.get("by_op_type", []))
    host = (row or {}).get("host_latency") or {}
    overhead = ""
    if prof.get("profiled_run_median_us") and host.get("p50_ms") and not (row or {}).get("npu"):
        overhead = (f" A profiled run took {prof['profiled_run_median_us']:.0f} µs (median) against "
                    f"{host['p50_ms'] * 1000:.0f} µs p50 in the host benchmark: profiling overhead inflates small "
                    "operators.")
    return (head + label + "<table><tr><th class=\"l\">node</th><th class=\"l\">op type</th><th>runs</th>"
            "<th>median µs</th><th>mean µs</th><th>total µs</th><th>share</th></tr>" + ops + "</table>\n"
            f"<p class=\"note\">By operator type: {types}. How: {escape(str(prof.get('how', '')))}.{overhead}</p>")


def environment_section(r: dict[str, Any]) -> str:
    env = dict(r.get("environment", {}))
    env.setdefault("benchmark threads", r.get("threads", "see the latency notes"))
    env["seed"] = r.get("distill", {}).get("seed")
    rows = "".join(f"<tr><td class=\"l\">{escape(str(k))}</td><td class=\"l\">{escape(str(v))}</td></tr>"
                   for k, v in env.items())
    stages = ", ".join(f"{escape(str(k))} {v:.1f} s" for k, v in r.get("stage_seconds", {}).items())
    cmd = r.get("command") or "edgekd build"
    return ("<h2>Environment</h2>\n<table>" + rows + "</table>\n"
            f"<p class=\"note\">Stage wall time: {stages}; total {r.get('wall_seconds', 0):.1f} s.</p>\n"
            f"<h2>Reproduce</h2>\n<pre id=\"command\">{escape(cmd)}</pre>\n"
            f"<p class=\"note\">report_version {escape(str(r.get('report_version')))}. Regenerate this page from "
            "the run's records with <code>edgekd report RUN_DIR</code>.</p>")
