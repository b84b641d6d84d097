"""The estimator's fit as a file: made from calibration rows with their counts (``benchmarks/arm_estimator.py``
for the shipped one), and refit by ``edgekd calibrate`` from the shipped rows plus the local board measurements.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..fsio import write_json_atomic
from .estimator import CALIBRATION, CalRow, fit
from .local_calibration import load as load_local, refit_file

MODEL = ("latency = (CPI[core, precision] x instructions + MEM[core] x DRAM bytes) / (clock x (1 + e (threads - 1))); "
         "instructions and DRAM bytes (modelled last-level-cache fills and write-backs) counted under emulation")
ROW_KEYS = ("device", "core", "clock_ghz", "runtime", "model", "precision", "threads", "latency_ms", "kernels",
            "instructions", "dram_bytes", "llc_kb", "source")


def cal_row(row: dict[str, Any]) -> CalRow:
    return CalRow(row["core"], row["precision"], float(row["clock_ghz"]), int(row["threads"]),
                  int(row["instructions"]), int(row["dram_bytes"]), float(row["latency_ms"]))


def calibration(rows: list[dict[str, Any]], fitted_on: str, environment: dict[str, Any]) -> dict[str, Any]:
    """Fit ``rows`` (dicts with at least ``ROW_KEYS``) and return the calibration record."""
    result = fit([cal_row(r) for r in rows])
    kept = []
    for r, fe, le in zip(rows, result.pop("fitted_error"), result.pop("loo_error")):
        kept.append({**{k: r.get(k) for k in ROW_KEYS}, "fitted_error": fe, "loo_error": le})
    return {"model": MODEL, **result, "fitted_on": fitted_on, "environment": environment, "rows": kept,
            "summary": summary(kept)}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Leave-one-out error per precision: median |error|, share within ±25%, worst, rows."""
    out = {}
    for p in sorted({r["precision"] for r in rows}):
        errs = [abs(r["loo_error"]) for r in rows if r["precision"] == p]
        out[p] = {"rows": len(errs), "median_abs": statistics.median(errs),
                  "within_25": sum(e <= 0.25 for e in errs) / len(errs), "worst": max(errs)}
    errs = [abs(r["loo_error"]) for r in rows]
    out["all"] = {"rows": len(errs), "median_abs": statistics.median(errs),
                  "within_25": sum(e <= 0.25 for e in errs) / len(errs), "worst": max(errs)}
    return out


@dataclass(frozen=True)
class Refit:
    path: str
    shipped_rows: int
    local_rows: int
    before: dict[str, Any]  # leave-one-out summary of the shipped fit
    after: dict[str, Any]  # leave-one-out summary of the refit (all rows)
    local_before: list[float]  # the shipped fit's error on each local row
    local_after: list[float]  # each local row's leave-one-out error in the refit


def refit(cache_dir: str | Path | None = None, shipped: str | Path | None = None) -> Refit:
    """Refit from the shipped rows plus the local measurements; write the local calibration file."""
    from .estimator import estimate_ms

    base = json.loads(Path(shipped or CALIBRATION).read_text())
    local = load_local(cache_dir)
    if not local:
        raise ConfigError("there are no local board measurements to calibrate with",
                          "measure on your board first: edgekd bench MODEL --target T --device ssh://user@host")
    local_rows = [{**row.as_dict(), "model": row.model} for row in local]
    rows = [r for r in base["rows"] if r.get("source") != "local board measurement"] + local_rows
    cal = calibration(rows, f"{base.get('fitted_on', 'shipped rows')} + {len(local)} local board measurement(s)",
                      base.get("environment", {}))
    before = [estimate_ms(r.instructions, r.core, r.clock_ghz, r.threads, r.precision, base, r.dram_bytes).ms
              / r.latency_ms - 1 for r in local]
    after = [r["loo_error"] for r in cal["rows"][-len(local):]]
    path = refit_file(cache_dir)
    write_json_atomic(path, cal)
    return Refit(str(path), len(rows) - len(local), len(local), base.get("summary", {}), cal["summary"], before, after)
