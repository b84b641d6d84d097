"""The ``board`` backend: a model's latency measured on the real board over SSH (``--device ssh://...``), with the
emulated estimate of the target's own backend kept beside it, and the measurement stored for ``edgekd
calibrate``. Unlike the other backends it is made per build (it needs the board's address), around the target's
backend (:func:`with_board`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..records import ArmEstimate, BoardMeasurement, LatencyFigure
from .base import Backend, Job, Settings

if TYPE_CHECKING:
    from ..board.ssh import SshDevice
    from ..targets import TargetProfile

SMOKE_SAMPLES = 8


class BoardBackend(Backend):
    name = "board"
    kind = "measured"
    probes_latency = False  # the pre-training search keeps the target backend's probes
    batches = True  # the estimates beside the measurements: one emulated process for all jobs

    def __init__(self, device: "SshDevice", inner: Backend) -> None:
        self.device, self.inner = device, inner
        self.precisions = inner.precisions

    def figures(self, jobs: list[Job], target: "TargetProfile", settings: Settings) -> list[LatencyFigure]:
        from ..board.learn import board_clock, remember
        from ..board.measure import measure_on_board, with_estimate

        beside = self.inner.figures(jobs, target, settings) if self.inner.kind == "estimated" else [None] * len(jobs)
        out = []
        for job, est in zip(jobs, beside):
            x = job.samples if job.samples is not None else _random(job.model)
            m, _result = measure_on_board(self.device, job.model, target, x[:SMOKE_SAMPLES], runs=settings.runs)
            if est is not None and est.band_ms is not None:
                m = with_estimate(m, est.judged_ms, est.band_ms)
            if est is not None and isinstance(est.detail, ArmEstimate) and est.detail.counts:
                from ..emu.count_store import Counts

                # the user's calibration store (not the build's --cache-dir): `edgekd calibrate` reads it
                remember(m, Counts(**est.detail.counts), board_clock(m, target.clock_ghz))
            out.append(measured(m))
        return out

    def key(self, target: "TargetProfile", settings: Settings) -> tuple:
        return ("board", self.device.url, target.threads, settings.runs, *self.inner.key(target, settings))

    def note(self, target: "TargetProfile", threads: int, runs: int) -> str:
        return (f"Latency on the {target.description} was MEASURED ON THE BOARD {self.device.url}: each model's "
                f"smoke bundle ran there with the board's own Python and runtime ({target.threads} thread(s)), its "
                f"outputs checked against this host, then warm inferences were timed; the budget check uses the "
                f"measured p90. The emulated estimate is shown beside each measurement, and every measurement is "
                f"stored for `edgekd calibrate`.")

    def progress(self, name: str, fig: LatencyFigure, fp32: LatencyFigure | None) -> str:
        m = fig.detail
        est = ""
        if isinstance(m, BoardMeasurement) and m.estimate_ms is not None and m.estimate_band_ms:
            est = f"; estimate {m.estimate_ms:.3f} ms [{m.estimate_band_ms[0]:.3f}-{m.estimate_band_ms[1]:.3f}]"
        return f"    {name}: p90 {fig.judged_ms:.3f} ms measured on the board{est}"

    def describe(self, fig: LatencyFigure, target: "TargetProfile") -> list[str]:
        return describe(fig.detail)


def describe(m: BoardMeasurement) -> list[str]:
    b = m.board
    lines = [f"p50 {m.p50_ms:.3f} ms  p90 {m.p90_ms:.3f} ms  p99 {m.p99_ms:.3f} ms  cold start {m.cold_start_ms:.1f} ms"
             f"  peak RSS {_mb(m.peak_rss_mb)} MB (model {_mb(m.model_memory_mb)} MB)  — measured on the board",
             f"board: {b.get('cpu') or '?'} ({b.get('machine', '?')}, {b.get('cpus', '?')} CPUs, max clock "
             f"{b.get('max_clock_ghz') or '?'} GHz, {b.get('memory_mb') or '?'} MB); {b.get('system', '')}; runtime "
             f"{m.runtime}; Python {b.get('python', '?')}"]
    if m.estimate_ms is not None and m.estimate_band_ms:
        lo, hi = m.estimate_band_ms
        lines.append(f"estimate beside it: {m.estimate_ms:.3f} ms [{lo:.3f}-{hi:.3f}] on emulated {m.core} "
                     f"(measured mean {m.mean_ms:.3f} ms is {100 * (m.estimate_ms / m.mean_ms - 1):+.0f}% from it)")
    lines.append(m.how)
    return lines


def _mb(v: float | None) -> str:
    return "?" if v is None else f"{v:.1f}"


def measured(m: BoardMeasurement) -> LatencyFigure:
    return LatencyFigure(backend=BoardBackend.name, kind="measured",
                         source=f"measured on the board {m.device} ({m.threads} thread(s), {m.runtime})", how=m.how,
                         detail=m, p50_ms=m.p50_ms, p90_ms=m.p90_ms, p99_ms=m.p99_ms, mean_ms=m.mean_ms,
                         cold_start_ms=m.cold_start_ms, memory_mb=m.model_memory_mb)


def with_board(inner: Backend, board: str | None) -> Backend:
    """``inner``, or the board backend around it when ``board`` (an ssh:// address) is given."""
    if not board:
        return inner
    from ..board.ssh import parse_device

    return BoardBackend(parse_device(board), inner)


def _random(model: str):
    from pathlib import Path

    from .arm import random_inputs

    return random_inputs(Path(model), SMOKE_SAMPLES)
