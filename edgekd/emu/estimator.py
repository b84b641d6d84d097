"""Device latency estimated from emulated counts: instructions (compute) and modelled DRAM traffic (memory).

The model, in one sentence (the report's)::

    latency = (CPI[core, precision] x instructions + MEM[core] x DRAM bytes) / (clock x S(threads)),
    S(T) = 1 + e (T - 1)

``instructions`` and ``DRAM bytes`` are counted for one steady-state inference of the real aarch64 runtime under
``qemu-aarch64`` on one thread (the runtime's kernels for that core; see ``run.py``): the bytes are the line fills
and write-backs of the last-level cache the TCG plugin models for the core (its size from the device). CPI is
the compute cost per instruction, MEM the cycles a DRAM byte costs (what makes the Pi 4's fp32 kernels slower than
their instruction count says), e how well the work spreads over threads. They are fitted on
``../shared/calibration/published.csv`` only (``benchmarks/arm_estimator.py``): CPI per core and precision, MEM
per core where its rows can separate it from CPI (else borrowed from the core named by ``ArmCore.memory_like``,
the calibrated core whose devices' memory system is closest, or the median of the cores that can), e shared.

Bands come from leave-one-out: each calibration row predicted by the fit without it. An estimate's band is the
largest leave-one-out error among its (core, precision)'s rows, and never below the 90th percentile of its
precision's leave-one-out errors over all cores, nor below ``BAND_FLOOR``; the estimate says how many rows stand
behind it. Where a core has no rows for a precision, its CPI is its other precision's x the ratio seen on cores
with both; where a core has no rows at all, the median CPI of that precision over the cores that have them. Either
way the band is widened: (1 + band) x ``WIDEN`` - 1, and the estimate says so. Precisions without rows (fp16,
dynamic) use fp32's. ``edgekd calibrate`` refits with the local board measurements too; that refit, when present
in the cache folder, is used instead of the shipped one.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, EmulationError
from .cores import get_core

CALIBRATION = Path(__file__).with_name("calibration.json")
BAND_FLOOR = 0.10
WIDEN = 1.5
PRECISION_GROUP = {"int8": "int8", "fp32": "fp32", "fp16": "fp32", "dynamic": "fp32"}
PRECISIONS = ("fp32", "int8")
EFFICIENCIES = tuple(round(0.2 + 0.02 * i, 2) for i in range(41))  # 0.20 .. 1.00


@dataclass(frozen=True)
class Estimate:
    ms: float  # point estimate
    low_ms: float  # error band (see the module docstring)
    high_ms: float
    core: str
    clock_ghz: float
    threads: int
    instructions: int  # per inference (one thread's count: all the work)
    cpi: float
    method: str  # one sentence for reports: how the number was obtained
    dram_bytes: int = 0
    compute_ms: float = 0.0  # the two terms of ms
    memory_ms: float = 0.0
    rows: int = 0  # calibration rows of this core and precision behind the fit
    band: float = 0.0  # relative: high = ms x (1 + band), low = ms / (1 + band)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CalRow:
    """One calibration row as the fit sees it."""

    core: str
    precision: str
    clock_ghz: float
    threads: int
    instructions: int
    dram_bytes: int
    latency_ms: float


def load_calibration(path: str | Path | None = None) -> dict[str, Any]:
    """The fit: ``path``, else the local refit (``edgekd calibrate``) when there is one, else the shipped one."""
    if path is None:
        from .local_calibration import refit_file

        local = refit_file()
        if local.is_file():
            try:
                return json.loads(local.read_text())
            except ValueError:
                pass  # a damaged refit: the shipped fit is used
    p = Path(path) if path else CALIBRATION
    if not p.is_file():
        raise EmulationError(f"the latency estimator has not been fitted ({p} is missing)",
                             "run: python benchmarks/arm_estimator.py (fits it on ../shared/calibration)")
    return json.loads(p.read_text())


def speedup(threads: int, efficiency: float) -> float:
    return 1.0 + efficiency * (threads - 1)


def _group(core: str, precision: str) -> str:
    return f"{core}/{precision}"


def parameters(core: str, precision: str, cal: dict[str, Any]) -> tuple[float, float, float, int, str]:
    """(CPI, MEM cycles per DRAM byte, relative band, rows behind it, provenance) for ``precision`` on ``core``."""
    get_core(core)
    group = PRECISION_GROUP.get(precision)
    if group is None:
        raise EmulationError(f"the latency estimator has no calibration for {precision} models",
                             "estimate int8 or fp32 models, or add published figures and refit")
    key = _group(core, group)
    note = "" if group == precision else f" (no {precision} figures: the {group} fit is used)"
    if core in cal["mem"]:
        mem, mem_note = float(cal["mem"][core]), ""
    else:
        mem = _borrowed_mem(core, cal["mem"], float(cal["pooled_mem"]))
        like = get_core(core).memory_like
        mem_note = (f"; MEM from {like} (the closest memory system; too few {core} rows to separate it)"
                    if like in cal["mem"] else "; MEM: the median of the cores whose rows separate it")
    if key in cal["cpi"]:
        rows = int(cal["group_rows"][key])
        return (float(cal["cpi"][key]), mem, float(cal["band"][key]), rows,
                f"fitted on {rows} published {core} {group} figure(s){note}{mem_note}")
    widen = (1 + float(cal["precision_band"][group])) * WIDEN - 1
    other = next((p for p in PRECISIONS if p != group and _group(core, p) in cal["cpi"]), None)
    if other is not None:
        ratio = float(cal["ratio"][f"{group}/{other}"])
        return (float(cal["cpi"][_group(core, other)]) * ratio, mem, widen, 0,
                f"no {group} figures for {core}: CPI from its {other} fit x the {group}/{other} ratio of the cores "
                f"with both ({ratio:.2f}), band widened x{WIDEN:g}{note}{mem_note}")
    pooled = [float(v) for k, v in cal["cpi"].items() if k.endswith("/" + group)]
    return (statistics.median(pooled), mem, widen, 0,
            f"no published figures for {core}: the median {group} CPI of the calibrated cores, band widened "
            f"x{WIDEN:g}{note}{mem_note}")


def estimate_ms(instructions: int, core: str, clock_ghz: float, threads: int, precision: str = "int8",
                calibration: dict[str, Any] | None = None, dram_bytes: int = 0) -> Estimate:
    """The latency estimate for one inference of ``instructions`` (one thread's count) moving ``dram_bytes``."""
    if instructions <= 0 or clock_ghz <= 0 or threads < 1 or dram_bytes < 0:
        raise ConfigError(f"cannot estimate from {instructions} instructions and {dram_bytes} DRAM bytes at "
                          f"{clock_ghz} GHz on {threads} thread(s)", "pass positive counts, clock and threads")
    cal = calibration or load_calibration()
    cpi, mem, band, rows, provenance = parameters(core, precision, cal)
    if "local board measurement" in str(cal.get("fitted_on", "")):
        provenance += "; refit with local board measurements (edgekd calibrate)"
    scale = clock_ghz * 1e6 * speedup(threads, float(cal["efficiency"]))
    compute, memory = cpi * instructions / scale, mem * dram_bytes / scale
    ms = compute + memory
    method = (f"estimated from emulated counts under qemu {core}: {instructions / 1e6:.2f} M instructions x "
              f"{cpi:.2f} cycles + {dram_bytes / 1e6:.2f} MB of modelled DRAM traffic x {mem:.2f} cycles/byte, at "
              f"{clock_ghz:g} GHz over {threads} thread(s) (speed-up {speedup(threads, float(cal['efficiency'])):.2f})"
              f" = {compute:.3g} ms compute + {memory:.3g} ms memory; {provenance}; band ±{100 * band:.0f}% "
              f"(leave-one-out error on the calibration rows)")
    return Estimate(ms, ms / (1 + band), ms * (1 + band), core, clock_ghz, threads, int(instructions), cpi, method,
                    int(dram_bytes), compute, memory, rows, band)


# --- fitting ---------------------------------------------------------------------------------------------------

def _nnls(columns: list[list[float]], target: list[float]) -> tuple[list[float], float]:
    """Least squares with non-negative coefficients for a handful of columns (every subset tried)."""
    import numpy as np

    a, y = np.array(columns, dtype=float).T, np.array(target, dtype=float)
    best, best_sse = [0.0] * len(columns), float(y @ y)
    for k in range(1, len(columns) + 1):
        for subset in itertools.combinations(range(len(columns)), k):
            coef, *_ = np.linalg.lstsq(a[:, subset], y, rcond=None)
            if (coef < 0).any():
                continue
            full = [0.0] * len(columns)
            for i, c in zip(subset, coef):
                full[i] = float(c)
            sse = float(((a @ np.array(full)) - y) @ ((a @ np.array(full)) - y))
            if sse < best_sse - 1e-15:
                best, best_sse = full, sse
    return best, best_sse


def _fit_core(rows: list[CalRow], e: float, mem: float | None) -> tuple[dict[str, float], float | None, float]:
    """CPI per precision (and MEM unless given) for one core's rows, minimising squared relative error."""
    precisions = [p for p in PRECISIONS if any(r.precision == p for r in rows)]
    cols: list[list[float]] = [[] for _ in precisions] + ([[]] if mem is None else [])
    target = []
    for r in rows:
        scale = r.clock_ghz * 1e6 * speedup(r.threads, e) * r.latency_ms
        for i, p in enumerate(precisions):
            cols[i].append(r.instructions / scale if r.precision == p else 0.0)
        if mem is None:
            cols[-1].append(r.dram_bytes / scale)
            target.append(1.0)
        else:
            target.append(1.0 - mem * r.dram_bytes / scale)
    coef, sse = _nnls(cols, target)
    return dict(zip(precisions, coef[:len(precisions)])), (coef[-1] if mem is None else mem), sse


def _borrowed_mem(core: str, mem: dict[str, float], pooled: float) -> float:
    """MEM for a core whose rows cannot separate it: its ``memory_like`` core's, else the median of those that can."""
    like = get_core(core).memory_like
    return float(mem[like]) if like in mem else pooled


def _separable(rows: list[CalRow]) -> bool:
    """Whether a core's rows can separate MEM from its CPIs: two more rows than precisions, and models that differ."""
    n_prec = len({r.precision for r in rows})
    return len(rows) >= n_prec + 2 and len({(r.instructions, r.dram_bytes) for r in rows}) > n_prec


def fit_parameters(rows: list[CalRow]) -> dict[str, Any]:
    """The fit on ``rows``: e by grid search; per core CPIs and MEM (see the module docstring)."""
    if not rows:
        raise ConfigError("no calibration rows to fit", "pass the rows of published.csv with their counts")
    cores = sorted({r.core for r in rows})
    by_core = {c: [r for r in rows if r.core == c] for c in cores}
    best: tuple[float, dict[str, Any]] | None = None
    for e in EFFICIENCIES:
        cpi: dict[str, float] = {}
        mem: dict[str, float] = {}
        sse = 0.0
        for c in cores:
            if _separable(by_core[c]):
                fitted, m, s = _fit_core(by_core[c], e, None)
                cpi.update({_group(c, p): v for p, v in fitted.items()})
                mem[c] = float(m)
                sse += s
        pooled = statistics.median(mem.values()) if mem else 0.0
        borrowed = {}
        for c in cores:
            if c not in mem:
                fitted, _m, s = _fit_core(by_core[c], e, _borrowed_mem(c, mem, pooled))
                cpi.update({_group(c, p): v for p, v in fitted.items()})
                borrowed[c] = _borrowed_mem(c, mem, pooled)
                sse += s
        if best is None or sse < best[0] - 1e-12:
            best = (sse, {"efficiency": e, "cpi": cpi, "mem": mem, "pooled_mem": pooled, "borrowed_mem": borrowed})
    params = best[1]  # type: ignore[index]
    ratios = {}
    for p, q in itertools.permutations(PRECISIONS, 2):
        pairs = [params["cpi"][_group(c, p)] / params["cpi"][_group(c, q)] for c in cores
                 if params["cpi"].get(_group(c, p), 0) > 0 and params["cpi"].get(_group(c, q), 0) > 0]
        ratios[f"{p}/{q}"] = math.exp(sum(map(math.log, pairs)) / len(pairs)) if pairs else 1.0
    params["ratio"] = ratios
    params["group_rows"] = {k: sum(_group(r.core, r.precision) == k for r in rows) for k in params["cpi"]}
    params["precision_band"] = {p: BAND_FLOOR for p in PRECISIONS}
    params["band"] = {k: BAND_FLOOR for k in params["cpi"]}
    return params


def predict(row: CalRow, params: dict[str, Any]) -> float:
    return estimate_ms(row.instructions, row.core, row.clock_ghz, row.threads, row.precision, params,
                       row.dram_bytes).ms


def fit(rows: list[CalRow]) -> dict[str, Any]:
    """The fit on every row, each row's fitted and leave-one-out error, and the bands from those."""
    params = fit_parameters(rows)
    fitted = [predict(r, params) / r.latency_ms - 1 for r in rows]
    loo = []
    for i, r in enumerate(rows):
        others = rows[:i] + rows[i + 1:]
        loo.append(predict(r, fit_parameters(others)) / r.latency_ms - 1)
    bands = {}
    for p in PRECISIONS:
        errs = sorted(abs(e) for r, e in zip(rows, loo) if r.precision == p)
        bands[p] = max(BAND_FLOOR, _quantile(errs, 0.9)) if errs else BAND_FLOOR
    params["precision_band"] = bands
    for key in params["cpi"]:
        errs = [abs(e) for r, e in zip(rows, loo) if _group(r.core, r.precision) == key]
        params["band"][key] = max([bands[key.split("/")[1]]] + errs)
    params["fitted_error"], params["loo_error"] = fitted, loo
    return params


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)
