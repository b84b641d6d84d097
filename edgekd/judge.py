"""The figures a build judges, chosen once: every deployable measured on this host, and on the target's own
backend (``edgekd.backends``); then selection and the quantization guard decide on them.

Each figure is a stage of its own, cached per artifact (``figure_<backend>_<file>.json`` beside it): a re-run
measures or estimates nothing that an earlier build with the same artifact and settings already did. A backend
that judges several artifacts cheaper together (arm-emu: one emulated process) gets every uncached one at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .backends import Backend, Job, Settings, backend_for, host_backend
from .backends.board import with_board
from .fsio import write_json_atomic
from .quant_guard import Finding, quantization_findings
from .records import Candidate, Deployable, LatencyFigure
from .select import Figures, Selection, select

if TYPE_CHECKING:
    from .candidate_stages import BuildContext, Timed

Progress = Callable[[str], None]


def judge(ctx: "BuildContext", deployables: list[Deployable], out: Path, timed: "Timed",
          say: Progress) -> list[Candidate]:
    """Host figures for every artifact, then the target backend's (the host ones again for a host target)."""
    host = host_backend()
    device = with_board(backend_for(ctx.target), ctx.config.board)
    settings = Settings(runs=ctx.config.bench_runs, warmup=ctx.config.bench_warmup)
    with timed("bench"):
        on_host = figures(host, deployables, ("fp32", "int8"), ctx, out, settings, say)
    for d in deployables:
        h8, h32 = on_host[(d.name, "int8")], on_host[(d.name, "fp32")]
        say(f"    {d.name}: host int8 p50 {h8.p50_ms:.3f} ms, p90 {h8.p90_ms:.3f} ms (fp32 p90 {h32.p90_ms:.3f} ms)")
    if device is host:
        on_device = on_host
    else:
        with timed(device.name):
            on_device = figures(device, deployables, device.precisions, ctx, out, settings, say)
    result = []
    for d in deployables:
        fig, fp32 = on_device[(d.name, "int8")], on_device.get((d.name, "fp32"))
        if device is not host:
            say(device.progress(d.name, fig, fp32))
        result.append(Candidate(d, fig, fp32, on_host[(d.name, "int8")], on_host[(d.name, "fp32")],
                                band_note=device.band_note(fig, ctx.target.budget)))
    return result


def figures(backend: Backend, deployables: list[Deployable], precisions: tuple[str, ...], ctx: "BuildContext",
            out: Path, settings: Settings, say: Progress) -> dict[tuple[str, str], LatencyFigure]:
    """``{(candidate name, precision): figure}`` from ``backend``, each read back when cached."""
    cache = ctx.cache
    part = backend.key(ctx.target, settings)
    found: dict[tuple[str, str], LatencyFigure] = {}
    todo = []
    for d in deployables:
        cdir = out / "candidates" / d.checkpoint.name
        for precision in precisions:
            model = d.int8 if precision == "int8" else d.fp32
            stage = f"figure_{backend.name}_{Path(model.path).name.replace('.', '_')}"
            key = cache.key("figure", backend.name, model.sha256, *part)
            record = cache.lookup(stage, cdir, key)
            if record is not None:
                found[(d.name, precision)] = LatencyFigure.from_record(record)
            else:
                data = ctx.data_for(d.checkpoint.input_shape)
                job = Job(model.path, precision, data.input_shape, data.x_test[:4], keep_dir=str(cdir))
                todo.append(((d.name, precision), cdir, stage, key, job))
    if todo and backend.batches:
        say(f"{backend.name}: judging {len(todo)} models on {ctx.target.name} in one go")
        made = dict(zip([t[0] for t in todo], backend.figures([t[4] for t in todo], ctx.target, settings)))
    else:
        made = {}
    for ident, cdir, stage, key, job in todo:
        path = cdir / f"{stage}.json"

        def work(ident=ident, job=job, path=path) -> LatencyFigure:
            fig = made.get(ident) or backend.figures([job], ctx.target, settings)[0]
            write_json_atomic(path, fig.to_record())
            return fig

        found[ident] = cache.run(stage, cdir, key, [path], work, LatencyFigure.to_record, LatencyFigure.from_record)
    return found


def selection_figures(c: Candidate, n_test: int = 0) -> Figures:
    """What selection checks for one candidate: its deployed accuracy (measured on ``n_test`` test samples) and
    the target backend's figures."""
    d, fig = c.deployable, c.latency
    return Figures(c.name, d.int8.accuracy, fig.judged_ms, c.memory_mb, d.int8.size_bytes / 1e6,
                   d.checkpoint.macs, d.checkpoint.params, sram_kib=fig.sram_kib, flash_kib=fig.flash_kib,
                   cpu_fallback=fig.untimed_ops, n_test=n_test)


def decide(candidates: list[Candidate], ctx: "BuildContext") -> tuple[Selection, list[Finding]]:
    """Selection on the judged figures, and the quantization guard's findings."""
    budget = ctx.target.budget
    n_test = len(ctx.data.y_test)  # every candidate's accuracy is measured on the whole test split
    return (select([selection_figures(c, n_test) for c in candidates], budget),
            quantization_findings(candidates, budget.max_accuracy_drop))
