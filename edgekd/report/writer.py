"""Write a report dict as report.json, report.md and report.html (each atomically)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..fsio import write_json_atomic, write_text_atomic
from .arm import arm_markdown
from .board import board_markdown
from .html import to_html
from .npu import npu_markdown
from .search import search_markdown
from .view import chosen_row, cold_start, input_contract, interval, latency_cells, slowest_ops, students_init


def write_reports(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    return {"json": write_json_atomic(out / "report.json", report), **write_pages(report, out)}


def write_pages(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """report.md and report.html from a report dict (``edgekd report`` regenerates them this way)."""
    out = Path(out_dir)
    return {"md": write_text_atomic(out / "report.md", to_markdown(report)),
            "html": write_text_atomic(out / "report.html", to_html(report))}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.2f}%"


def to_markdown(r: dict[str, Any]) -> str:
    b = r["budget"]
    lines = [f"# edgekd report: {r['target']}", "", f"*{_one_line(r['target_description'])}*", ""]
    if r["selected"]:
        lines += [f"**Chosen student: `{r['selected']}`** — {r['selection']['reason']}.", ""]
    else:
        lines += [f"**No student meets the budget.** Closest: `{r['selection']['closest']}`.", ""]
    lines += [f"> {_one_line(r['latency_note'])}", ""]
    lines += ["## Budget", "", "| p90 latency | peak memory | model size | least accuracy | max int8 accuracy drop |",
              "|---|---|---|---|---|",
              f"| {_num(b['p90_latency_ms'], ' ms')} | {_num(b['peak_memory_mb'], ' MB')} | "
              f"{_num(b['model_size_mb'], ' MB')} | {_pct(b['min_accuracy'])} | {_pct(b.get('max_accuracy_drop'))} |", ""]
    t = r["teacher"]
    lines += ["## Teacher", "", f"Test accuracy **{_pct(t['accuracy'])}** "
              f"({t.get('origin') or t.get('path')}; outputs treated as {t.get('outputs')}).", ""]
    lines += ["## Candidates (each student's int8 artifact per runtime: what would be deployed)", "",
              "| student | params | MMACs | acc fp32 | acc int8 | p50 ms | p90 ms | p99 ms | cold start ms "
              "| fp32 p90 ms | model mem MB | size MB | fits |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for c in r["candidates"]:
        mark = "**yes**" if c["within_budget"] else "no: " + "; ".join(c["budget_violations"])
        chosen = " ⭐" if c["name"] == r["selected"] else ""
        lines.append(f"| `{c['name']}`{chosen} | {c['params']:,} | {c['macs'] / 1e6:.2f} | {_pct(c['accuracy_fp32'])} "
                     f"| {_pct(c['accuracy_int8'])} {interval(c)} | {' | '.join(latency_cells(c['latency']))} "
                     f"| {cold_start(c):.1f} | {latency_cells(c['latency_fp32'])[1]} "
                     f"| {c['peak_memory_mb']:.1f} | {c['model_size_mb']:.3f} | {mark} |")
    fails = r.get("artifact_failures") or []
    if fails:
        lines += ["", "**Artifacts that could not be made** (the build went on without them):", ""]
        lines += [f"- `{f['candidate']}@{f['runtime']}`: {_one_line(f['reason'])}" for f in fails]
    n_test = next((c.get("test_samples") for c in r["candidates"] if c.get("test_samples")), None)
    if n_test:
        lines += ["", f"Accuracies are on the {n_test} test samples, with their 95% Wilson interval in brackets; "
                  "candidates inside the best one's interval count as tied, and of those the one with the most "
                  "budget headroom is chosen."]
    hows = {c.get("runtime", ""): c["latency"]["how"] for c in r["candidates"]}
    lines += [""] + [f"- How the latency was obtained ({rt or 'all'}): {how}." for rt, how in hows.items()] + [
              "",
              "Model memory = peak resident memory of the benchmark process minus its resident memory after "
              "importing the runtime and before loading the model.", ""]
    lines += npu_markdown(r)
    lines += arm_markdown(r)
    lines += board_markdown(r)
    lines += search_markdown(r)
    if r["selection"]["pareto"]:
        lines += ["Pareto front (int8 accuracy vs p90 latency, fastest first): "
                  + ", ".join(f"`{n}`" for n in r["selection"]["pareto"]), ""]
    if r["quantization_warnings"]:
        lines += ["## Quantization warnings", ""] + [f"- {w}" for w in r["quantization_warnings"]] + [""]
    schemes = [c for c in r["candidates"] if c.get("int8_schemes_tried")]  # onnxruntime rows
    if schemes:
        lines += ["## int8 scheme per candidate (chosen by validation accuracy)", ""]
        for c in schemes:
            tried = ", ".join(f"{t['scheme']} {t['val_accuracy'] * 100:.2f}%" if "val_accuracy" in t
                              else f"{t['scheme']} failed" for t in c["int8_schemes_tried"])
            lines.append(f"- `{c['name']}`: **{c['int8_scheme']}** (tried: {tried})")
        lines.append("")
    lines += ops_markdown(r)
    d = r["distill"]
    lines += ["## How the students were trained", "",
              f"Data `{r['data']['spec']}`: {r['data']['train']} train"
              f"{' (%d unlabelled, labelled by the teacher)' % r['data']['unlabeled'] if r['data'].get('unlabeled') else ''}"
              f" / {r['data']['val']} val / "
              f"{r['data']['test']} test samples, {r['data']['num_classes']} classes. Loss `{d['loss']}` "
              f"(T = {d['temperature']}, α = {d['alpha']}), {d['optimizer']} lr {d['lr']}, up to {d['epochs']} "
              f"epochs, early stop after {d['patience']}, seed {d['seed']}"
              + (f", hints {d['hints']} (β = {d['hint_weight']})" if d["hints"] else "") + ".", ""]
    lines += [f"- `{s}`: {init}" for s, init in students_init(r)] + ([""] if students_init(r) else [])
    if input_contract(r["data"]):
        lines += [input_contract(r["data"]), ""]
    env = r["environment"]
    lines += ["## Environment", "", ", ".join(f"{k} {v}" for k, v in env.items())
              + f"; benchmark threads {r.get('threads', 'n/a')}, seed {d['seed']}.", "",
              "Stage wall time: " + ", ".join(f"{k} {v:.1f}s" for k, v in r["stage_seconds"].items())
              + f"; total {r['wall_seconds']:.1f}s.", "", "## Reproduce", ""]
    command = _one_line(r["command"]) or "edgekd build"
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", command)), default=0))  # longer than any run
    lines += [fence, command, fence, ""]
    return "\n".join(lines)


def _one_line(text: Any) -> str:
    """Free text (a profile's description, the command line) as one line: a newline in it cannot start a heading."""
    return " ".join(str(text).split())


def _num(v: float | None, unit: str) -> str:
    return "none" if v is None else f"{v:g}{unit}"


def ops_markdown(r: dict[str, Any]) -> list[str]:
    """The slowest-operators section of report.md (a line saying why when there is no profile)."""
    prof, row = slowest_ops(r), chosen_row(r)
    lines = ["## Slowest operators (runtime profiling)", ""]
    if not prof:
        return lines + ["No operator profile in this report.", ""]
    if "error" in prof:
        return lines + [f"No operator profile: {prof['error']}.", ""]
    name = prof.get("candidate") or (row or {}).get("name", "")
    lines += [f"`{name}`: {prof.get('artifact_kind', '')} (`{prof.get('artifact', '')}`), "
              f"{prof['profiled_runtime']} on {prof.get('where', '')}.", ""]
    if not prof.get("is_deployed_artifact", True):
        lines += [f"> {prof.get('note', '')}.", ""]
    lines += ["| node | op type | median µs | mean µs | total µs | share |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| `{o['node']}` | {o['op_type']} | {o.get('median_us', o['mean_us']):.2f} | {o['mean_us']:.2f} "
              f"| {o['total_us']:.0f} | {100 * o['share']:.1f}% |" for o in prof["ops"]]
    return lines + ["", f"How: {prof.get('how', '')}.", ""]
