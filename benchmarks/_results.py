"""Shared by benchmark scripts: write results/NAME.json and add a line to RESULTS.md."""

from __future__ import annotations

import datetime as dt
import json
import platform
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"


def record(name: str, data: dict[str, Any], summary: str, command: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    data = {"benchmark": name, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {_cpu()}, {__import__('os').cpu_count()} logical cores",
            "command": command, **data}
    out = RESULTS / f"{name}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(out)
    md = ROOT / "RESULTS.md"
    text = md.read_text() if md.exists() else "# Benchmark results\n\nEach line: date, what, result, command.\n\n"
    text += f"- {data['date'][:10]} **{name}**: {summary} — `{command}` → `benchmarks/results/{name}.json`\n"
    md.write_text(text)
    return out


def _cpu() -> str:
    try:
        return next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()
