"""The ``arm-emu`` backend: a model's latency on an ARM target, estimated from emulated instruction counts.

Runs the model in the real aarch64 runtime under ``qemu-aarch64 -cpu <target core>`` with the target's thread
count (:mod:`edgekd.emu.run`, outputs checked against the host every time), then turns the steady-state
instruction count into milliseconds at the target's clock with the fitted estimator (:mod:`edgekd.emu.estimator`).
Every figure says "estimated", never "measured".
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cache import content_key
from ..errors import ConfigError, TargetError
from ..records import ArmEstimate, LatencyFigure
from .base import Backend, Job, Settings

if TYPE_CHECKING:
    from ..targets import TargetProfile


def bench_arm(model_path: str | Path, target: "TargetProfile", x: np.ndarray | None = None, *, precision: str | None = None,
              runs: int = 3, env: Any = None, calibration: dict[str, Any] | None = None) -> ArmEstimate:
    """Estimate ``model_path`` (.onnx or .tflite) on ``target`` (a qemu-user TargetProfile).

    ``x``: a few channels-first float samples ``(N, ...)`` for the parity check (default: 2 seeded random ones).
    """
    return bench_arm_many([(model_path, x, precision)], target, runs=runs, env=env, calibration=calibration)[0]


def bench_arm_many(items: list[tuple[str | Path, np.ndarray | None, str | None]], target: "TargetProfile", *, runs: int = 3,
                   env: Any = None, calibration: dict[str, Any] | None = None) -> list[ArmEstimate]:
    """:func:`bench_arm` for several ``(model, x, precision)`` in one emulated process, in order.

    Counted on one thread (all the work, and repeatable: idle worker threads would add spin-wait instructions that
    depend on the host), estimated for the target's threads; the counts are kept in the count store."""
    from ..emu.count_store import keep
    from ..emu.estimator import estimate_ms, load_calibration
    from ..emu.run import run_emulated_many

    if target.backend != ArmEmuBackend.name:
        raise TargetError(f"target {target.name!r} is not an emulated ARM target",
                          "use an ARM target (edgekd targets list) or the host backend")
    from ..emu.env import find_env

    env = env or find_env()  # fail fast, before any work, when the environment is missing
    cal = calibration or load_calibration()
    prepared = [(Path(p), random_inputs(Path(p)) if x is None else x, prec) for p, x, prec in items]
    runs_ = run_emulated_many(prepared, target.core, n_cores=target.cores, threads=1, runs=runs, env=env)
    out = []
    for (path, _x, _p), run in zip(prepared, runs_):
        counts = keep(run, target.core, target.cores, env)
        est = estimate_ms(run.steady_instructions, target.core, target.clock_ghz, target.threads, run.precision, cal,
                          run.dram_bytes)
        first = estimate_ms(max(run.first_instructions, 1), target.core, target.clock_ghz, target.threads,
                            run.precision, cal, run.dram_bytes)
        how = (f"{target.description}: {est.method}; outputs checked against the host {run.runtime} "
               f"({_parity_text(run)})")
        out.append(ArmEstimate(target.name, target.core, target.clock_ghz, target.threads, run.runtime,
                               run.precision, str(path), est.ms, est.low_ms, est.high_ms, first.ms,
                               run.steady_instructions, run.first_instructions, run.steady_spread, run.parity,
                               run.memory, run.emulation_wall_s, how, run.dram_bytes, est.compute_ms, est.memory_ms,
                               counts.as_dict()))
    return out


def random_inputs(path: Path, n: int = 2) -> np.ndarray:
    """``n`` seeded N(0, 1) channels-first samples shaped like the model's input (batch excluded)."""
    if path.suffix == ".tflite":
        from ..export.tflite_runtime import tflite_io

        shape = tflite_io(path)["input"]["shape"][1:]
        if len(shape) >= 2:  # edgekd's TFLite models are channels-last: give channels-first data
            shape = (shape[-1], *shape[:-1])
    elif path.suffix == ".onnx":
        from ..export.parity import make_session

        dims = make_session(path).get_inputs()[0].shape[1:]
        if not all(isinstance(d, int) and d > 0 for d in dims):
            raise ConfigError(f"{path.name} has dynamic dimensions besides the batch: {dims}",
                              "export it with a static sample shape")
        shape = tuple(dims)
    else:
        raise ConfigError(f"cannot emulate {path.name}: not an .onnx or .tflite file", "pass an exported model")
    return np.random.default_rng(0).standard_normal((n, *shape)).astype(np.float32)


def _parity_text(run: Any) -> str:
    p = run.parity
    if "max_quant_steps" in p:
        return f"int8 outputs within {p['max_quant_steps']} quantization step(s), {p['n_samples']} samples"
    return f"max abs diff {p['max_abs_diff']:.2g} over {p['n_samples']} samples"


def describe(e: ArmEstimate) -> list[str]:
    """Lines for the terminal."""
    return [f"estimated {e.ms:.3f} ms per inference on {e.target} ({e.core} @ {e.clock_ghz:g} GHz, {e.threads} "
            f"thread(s), {e.runtime} {e.precision}); error band {e.low_ms:.3f}-{e.high_ms:.3f} ms; first inference "
            f"~{e.first_ms:.3f} ms",
            f"instructions per inference {e.instructions / 1e6:.2f} M (first {e.first_instructions / 1e6:.2f} M, "
            f"repeat spread {100 * e.count_spread:.2f}%), modelled DRAM traffic {e.dram_bytes / 1e6:.2f} MB: "
            f"{e.compute_ms:.3f} ms compute + {e.memory_ms:.3f} ms memory; emulation took {e.emulation_wall_s:.0f} s "
            f"here",
            f"memory under emulation: peak RSS {_mb(e.memory.get('emulator_peak_rss_kb'))} MB of the qemu process "
            f"(includes the emulator), model file {e.memory['model_size_bytes'] / 1e6:.2f} MB"]


def _mb(kb: Any) -> str:
    return f"{kb / 1024:.1f}" if isinstance(kb, (int, float)) and kb >= 0 else "?"


class ArmEmuBackend(Backend):
    """Emulated ARM cores: every job runs in one emulated process; figures are estimates with a band."""

    name = "arm-emu"
    kind = "estimated"
    batches = True

    def figures(self, jobs: list[Job], target: "TargetProfile", settings: Settings) -> list[LatencyFigure]:
        ests = bench_arm_many([(j.model, j.samples, j.precision) for j in jobs], target, runs=settings.emulated_runs)
        return [estimated(e) for e in ests]

    def key(self, target: "TargetProfile", settings: Settings) -> tuple:
        from ..emu.env import find_env
        from ..emu.estimator import load_calibration

        env = find_env()
        fit = content_key(load_calibration())  # the shipped fit, or the local refit that replaces it
        return (target.core, target.clock_ghz, target.threads, target.cores, fit, env.root.name,
                settings.emulated_runs)

    def note(self, target: "TargetProfile", threads: int, runs: int) -> str:
        return (f"Latency on the {target.description} is ESTIMATED FROM EMULATED INSTRUCTION COUNTS, not measured: "
                f"each model ran in the real aarch64 runtime under QEMU ({target.core}), "
                f"its outputs were checked against this host, and its instructions and modelled DRAM traffic per "
                f"inference were converted to milliseconds at {target.clock_ghz:g} GHz on {target.threads} "
                f"thread(s) by edgekd's estimator (compute + memory terms fitted on published device figures; each "
                f"estimate carries its leave-one-out error band). The budget check uses the point estimate. Host "
                f"x86 measurements ({threads} thread(s), {runs} runs) are shown beside it for reference.")

    def progress(self, name: str, fig: LatencyFigure, fp32: LatencyFigure | None) -> str:
        e = fig.detail
        fp = f"; fp32 {fp32.judged_ms:.3f} ms" if fp32 is not None else ""
        return (f"    {name}: estimated {e.ms:.3f} ms on {e.core} [{e.low_ms:.3f}-{e.high_ms:.3f}] "
                f"({e.instructions / 1e6:.2f} M instructions{fp})")

    def describe(self, fig: LatencyFigure, target: "TargetProfile") -> list[str]:
        return [*describe(fig.detail), fig.how]


def estimated(e: ArmEstimate) -> LatencyFigure:
    """An ARM estimate as a figure: one value with its band, the first inference standing in for a cold start."""
    return LatencyFigure(backend=ArmEmuBackend.name, kind="estimated",
                         source=(f"estimated from emulated instruction counts ({e.core} @ {e.clock_ghz:g} GHz, "
                                 f"{e.threads} thread(s)), not measured"),
                         how=e.how, detail=e, estimate_ms=e.ms, band_ms=(e.low_ms, e.high_ms), cold_start_ms=e.first_ms)
