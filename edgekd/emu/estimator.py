"""Device latency estimated from emulated instruction counts, with an error band from its fit.

Model (one free parameter per precision, fitted on ``../shared/calibration/published.csv`` only)::

    latency_ms = CPI[precision] * (instructions per inference / threads) / (clock_GHz * 1e6)

``instructions`` are the guest instructions the real aarch64 runtime executes for one steady-state inference
under ``qemu-aarch64 -cpu CORE`` (all threads; see ``run._work``), so the core's kernel choice (NEON or
dot-product int8 kernels), the precision and the runtime's own overheads are already in the count; CPI (cycles
per instruction, including memory stalls and the threads' imperfect overlap) is what the fit supplies.
Dividing by the threads assumes the work splits evenly, which the fit absorbs at the calibration rows' 4
threads and which is optimistic for other thread counts and for models whose ops are too small to split.

Why per precision and not per core: on the published rows the int8 CPI is the same on the Cortex-A72 and the
A76 (within ~1%: the A76's advantage is its dot-product kernels, which the count already shows as fewer
instructions), while fp32 CPI differs ~3x between the Pi 4 (memory-bound fp32) and the Pixel 4. A per-core
CPI has a larger leave-one-out error on the int8 rows that edgekd deploys; ``benchmarks/arm_estimator.py``
records both fits. The band of each precision is its largest leave-one-out error, never below ``BAND_FLOOR``
(two rows cannot establish a smaller one). Precisions without rows (fp16, dynamic) use fp32's CPI and band.
A core flagged with a prior (no published figure, e.g. the in-order Cortex-A53) gets CPI x a stated factor and
a band widened by that factor's uncertainty: such an estimate says so in its ``method``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, EmulationError
from .cores import get_core

CALIBRATION = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True)
class Estimate:
    ms: float  # point estimate
    low_ms: float  # error band, from the fit's leave-one-out error (and a prior's uncertainty where used)
    high_ms: float
    core: str
    clock_ghz: float
    threads: int
    instructions: int  # per inference, all threads
    cpi: float
    method: str  # one sentence for reports: how the number was obtained

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_calibration(path: str | Path | None = None) -> dict[str, Any]:
    p = Path(path) if path else CALIBRATION
    if not p.is_file():
        raise EmulationError(f"the latency estimator has not been fitted ({p} is missing)",
                             "run: python benchmarks/arm_estimator.py (fits it on ../shared/calibration)")
    return json.loads(p.read_text())


BAND_FLOOR = 0.25
PRECISION_GROUP = {"int8": "int8", "fp32": "fp32", "fp16": "fp32", "dynamic": "fp32"}


def cpi_for(core: str, precision: str, cal: dict[str, Any]) -> tuple[float, float, str]:
    """(CPI, relative band, provenance) for ``precision`` on ``core`` from a calibration dict."""
    get_core(core)
    group = PRECISION_GROUP.get(precision)
    if group is None or group not in cal["cpi"]:
        raise EmulationError(f"the latency estimator has no calibration for {precision} models",
                             "estimate int8 or fp32 models, or add published figures and refit")
    cpi, band = float(cal["cpi"][group]), float(cal["band"][group])
    rows = cal.get("rows_per_group", {}).get(group, "?")
    provenance = f"CPI fitted on {rows} published {group} figure(s)"
    if group != precision:
        provenance += f" (no {precision} figures: the {group} fit is used)"
    prior = cal.get("priors", {}).get(core)
    if prior:
        factor = float(prior["factor"])
        band = (1 + band) * float(prior.get("uncertainty", factor)) - 1
        cpi *= factor
        provenance += f"; no published {core} figure: CPI x {factor:g} ({prior['why']}), band widened"
    return cpi, band, provenance


def estimate_ms(instructions: int, core: str, clock_ghz: float, threads: int, precision: str = "int8",
                calibration: dict[str, Any] | None = None) -> Estimate:
    """The latency estimate for one inference of ``instructions`` (all threads) on ``threads`` cores."""
    if instructions <= 0 or clock_ghz <= 0 or threads < 1:
        raise ConfigError(f"cannot estimate from {instructions} instructions at {clock_ghz} GHz on {threads} "
                          "thread(s)", "pass a positive count, clock and thread count")
    cal = calibration or load_calibration()
    cpi, band, provenance = cpi_for(core, precision, cal)
    ms = cpi * (instructions / threads) / (clock_ghz * 1e6)
    method = (f"estimated from emulated instruction counts ({instructions / 1e6:.2f} M instructions per inference "
              f"under qemu {core}, {threads} thread(s)) x {cpi:.2f} cycles/instruction / {clock_ghz:g} GHz; "
              f"{provenance}; error band ±{100 * band:.0f}% (largest leave-one-out error of the fit, at least "
              f"{100 * BAND_FLOOR:.0f}%)")
    return Estimate(ms, ms / (1 + band), ms * (1 + band), core, clock_ghz, threads, int(instructions), cpi, method)


def fit(rows: list[dict[str, Any]], by: str = "precision") -> dict[str, Any]:
    """Fit one CPI per group (``by`` = "precision" or "core") on calibration rows with keys core, precision,
    clock_ghz, threads, instructions, latency_ms.

    CPI of a group = geometric mean of its rows' CPIs. Returns the CPIs, each row's fitted and leave-one-out
    relative errors (the row predicted by its group without it; None when it is alone in its group), and per
    group the band: the largest absolute leave-one-out error, at least ``BAND_FLOOR``.
    """
    if not rows:
        raise ConfigError("no calibration rows to fit", "pass the rows of published.csv with their counts")
    if by not in ("precision", "core"):
        raise ConfigError(f"cannot fit by {by!r}", "fit by 'precision' or 'core'")
    rows = [dict(r) for r in rows]
    for r in rows:
        r["row_cpi"] = r["latency_ms"] * r["clock_ghz"] * 1e6 / (r["instructions"] / r["threads"])
    groups = sorted({r[by] for r in rows})
    cpi = {g: _geomean([r["row_cpi"] for r in rows if r[by] == g]) for g in groups}
    for i, r in enumerate(rows):
        per_thread = r["instructions"] / r["threads"] / (r["clock_ghz"] * 1e6)
        r["fitted_ms"] = cpi[r[by]] * per_thread
        r["fitted_error"] = r["fitted_ms"] / r["latency_ms"] - 1
        others = [o["row_cpi"] for j, o in enumerate(rows) if j != i and o[by] == r[by]]
        r["loo_ms"] = _geomean(others) * per_thread if others else None
        r["loo_error"] = r["loo_ms"] / r["latency_ms"] - 1 if others else None
    band = {}
    for g in groups:
        errs = [abs(r["loo_error"] if r["loo_error"] is not None else r["fitted_error"]) for r in rows if r[by] == g]
        band[g] = max([BAND_FLOOR] + errs)
    return {"by": by, "cpi": cpi, "band": band, "rows": rows,
            "rows_per_group": {g: sum(r[by] == g for r in rows) for g in groups}}


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))
