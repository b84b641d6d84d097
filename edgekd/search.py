"""Which candidates are worth training: each one's cost on the target, estimated from its architecture first.

Before any training, every candidate (width x depth) is built with random weights and sized: parameters, MACs,
the int8 model size, the largest int8 activation working set (one layer's input + output), and the time one
training step takes here (measured the first time this machine meets the architecture, then read back from the
cache folder's ``step-times.json``: see :mod:`edgekd.step_times`). Latency on the target does not depend on
the weights, so it is estimated from *probes*: the smallest and the largest candidate that pass the size check
(and whose training alone fits the time budget) are exported with random weights to each deployable int8 artifact
and run in the target's own backend (emulated ARM instruction counts + the fitted estimator, or a host
measurement); every candidate's latency is interpolated linearly in MACs between the two probes (per runtime, the
fastest runtime counts; extrapolated beyond them). A candidate is skipped only when it *cannot* fit:
its size over the size budget, its activations over the NPU's SRAM, or even the low end of its latency
estimate's error band over the p90 budget. Of the survivors at most ``max_candidates`` are trained: with a
training-time budget, the largest that fit it together, those the teacher can seed (``distill.seeding``: pruned
from the teacher, they start from its knowledge) before the others (larger students are the accurate ones; the
cheapest is trained even if nothing fits); without one, an even spread over the MAC range. Every skipped candidate keeps its
reason for the report.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .models.students import StudentSpec

if TYPE_CHECKING:
    from .data import Dataset
    from .targets import Budget, TargetProfile

INT8_OVERHEAD_BYTES = 4096  # flatbuffer / protobuf framing, quantization parameters, names
Progress = Callable[[str], None]


@dataclass(frozen=True)
class CandidateCost:
    name: str
    width: float
    depth: int
    params: int
    macs: int
    int8_size_mb: float  # estimate: one byte per weight + framing
    peak_activation_kib: float  # int8: the largest (input + output) of one layer, batch 1
    train_step_s: float  # one training step as the trainer takes it, at the build's batch size and threads (wall)
    est_train_s: float  # epochs x (steps x train_step_s + validation) + the final test evaluation
    latency_ms: float | None = None  # estimated p90 on the target (interpolated from the probes)
    latency_low_ms: float | None = None  # low end of the estimate's band
    latency_runtime: str | None = None
    seeded: bool = False  # its weights will start pruned from the teacher (distill.seeding), not random
    decision: str = "train"  # "train" or "skip"
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def size_candidates(specs: list[StudentSpec], batch_size: int, steps_per_epoch: int, epochs: int,
                    step_times: Any = None, eval_per_epoch: int = 0, eval_at_end: int = 0,
                    timed: "set[str] | None" = None, channels_last: bool = False,
                    time_budget_s: float | None = None) -> list[CandidateCost]:
    """Parameters, MACs, int8 size, peak activation and the training time of each spec (no training).

    The training estimate is what the trainer spends: ``epochs`` x (``steps_per_epoch`` training steps + a forward
    pass over ``eval_per_epoch`` validation samples) + one over ``eval_at_end`` test samples. With ``step_times``
    (an :class:`edgekd.step_times.StepTimes`) figures already measured on this machine for the same architecture
    and batch size are read back instead of measured again, so the plan does not follow the machine's load from one
    build to the next. ``timed``: only these names are timed (the others: 0 s; they fail a size or latency check).
    ``channels_last``: images train in channels-last memory (the distillation config's), so they are timed so.
    ``time_budget_s``: a candidate whose first timed steps already put its training over twice this budget (it
    cannot be trained within it) is not timed further, nor its evaluation (its estimate is then a lower bound)."""
    import torch

    from .cache import content_key
    from .models.count import count_macs, count_params
    from .models.students import build_student
    from .step_times import machine_id

    threads = torch.get_num_threads()
    machine = machine_id(threads)
    warmed = False
    stop_above = 2 * time_budget_s / (epochs * steps_per_epoch) if time_budget_s else None

    def too_slow(step: float) -> bool:  # its steps alone exceed twice the budget: evaluation is not timed
        return stop_above is not None and step > stop_above

    def measure(model: Any, spec: StudentSpec) -> float:
        nonlocal warmed
        if not warmed:  # torch's first training steps in a process pay thread-pool and allocator start-up
            _train_step_seconds(build_student(specs[0]), specs[0].input_shape, specs[0].num_classes, batch_size,
                                torch, channels_last)
            warmed = True
        return _train_step_seconds(model, spec.input_shape, spec.num_classes, batch_size, torch, channels_last,
                                   stop_above)

    out = []
    for spec in specs:
        model = build_student(spec)
        params, macs = count_params(model), count_macs(model, spec.input_shape)
        peak = _peak_activation(model, spec.input_shape)
        if timed is not None and spec.name not in timed:
            step = fwd = 0.0
        elif step_times is None:
            step = measure(model, spec)
            fwd = 0.0 if too_slow(step) else _eval_seconds_per_sample(model, spec.input_shape, torch)
        else:
            key = content_key("train-step-with-data", machine, spec.as_dict(), batch_size, channels_last)
            step = step_times.get(spec.name, key, lambda: measure(model, spec))
            fwd = 0.0 if too_slow(step) else step_times.get(
                spec.name, content_key("eval-sample", machine, spec.as_dict()),
                lambda: _eval_seconds_per_sample(model, spec.input_shape, torch))
        est = epochs * (step * steps_per_epoch + fwd * eval_per_epoch) + fwd * eval_at_end
        out.append(CandidateCost(spec.name, spec.width, spec.depth, params, macs,
                                 (params + INT8_OVERHEAD_BYTES) / 1e6, peak / 1024, step, est))
    if step_times is not None:
        step_times.save()
    return out


def _peak_activation(model: Any, input_shape: tuple[int, ...]) -> int:
    """Largest input + output element count of one leaf module for a batch of 1 (int8: bytes)."""
    import torch

    peak = 0

    def hook(_m, inp, out):
        nonlocal peak
        n_in = sum(t.numel() for t in inp if isinstance(t, torch.Tensor))
        n_out = out.numel() if isinstance(out, torch.Tensor) else 0
        peak = max(peak, n_in + n_out)

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    finally:
        for h in handles:
            h.remove()
    return peak


def _train_step_seconds(model: Any, input_shape: tuple[int, ...], classes: int, batch: int, torch: Any,
                        channels_last: bool = False, stop_above: float | None = None) -> float:
    """One training step as the trainer takes it (AdamW, a distillation loss on softened logits plus
    cross-entropy, gradient clipping, each batch gathered from a pool of rows), wall time at the build's torch
    threads: the mean of ``TIMED_STEPS`` steps after 2 warm-up steps (of 3 when their median is already over
    ``stop_above`` seconds: a candidate too slow to train). The mean, not the median: an epoch lasts its steps'
    sum, and on a shared machine the occasional slow step is part of it (the median of 8 steps under-estimated
    real epochs by 12-20% here).

    Wall time is what training will take on this machine when it is not loaded; the figure is measured once per
    machine and architecture and kept (``step_times``), and ``--retime`` measures it again (e.g. when the first
    measurement ran beside another heavy job). A single-thread CPU-time figure divided by the threads, used
    before, under-estimated the default build's training by up to 1.9x (it assumed perfect thread scaling and
    left out the optimiser, the loss and the clipping)."""
    import statistics

    model.train()
    # a pool of training rows the steps gather their batches from at random, as the trainer does from the split
    # (then converts each batch to channels-last): data handling is part of what a step costs
    gen = torch.Generator().manual_seed(0)
    row_bytes = 4 * int(np.prod(input_shape))
    pool = torch.randn((max(batch, min(POOL_BATCHES * batch, POOL_BYTES // row_bytes)), *input_shape), generator=gen)
    nhwc = channels_last and pool.dim() == 4
    if nhwc:  # as the trainer does for images
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    labels = torch.randint(0, classes, (len(pool),), generator=gen)
    targets = torch.randn((len(pool), classes), generator=gen)
    times = []
    for _ in range(TIMED_STEPS + 2):
        t0 = time.perf_counter()
        idx = torch.randint(0, len(pool), (batch,), generator=gen)
        x, y, t = pool[idx], labels[idx], targets[idx]
        out = model(x.contiguous(memory_format=torch.channels_last) if nhwc else x)
        soft = torch.nn.functional.kl_div(torch.log_softmax(out / 2, 1), torch.softmax(t / 2, 1), reduction="batchmean")
        loss = 0.7 * 4 * soft + 0.3 * torch.nn.functional.cross_entropy(out, y)
        bool(torch.isfinite(loss))  # the trainer checks every step
        opt.zero_grad(set_to_none=True)
        loss.backward()
        float(torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0))
        opt.step()
        sched.step()
        float(loss.detach())
        times.append(time.perf_counter() - t0)
        if stop_above is not None and len(times) == 5 and statistics.median(times[2:]) > stop_above:
            break
    return float(statistics.fmean(times[2:]))  # the first steps pay allocation and kernel selection


TIMED_STEPS = 16  # the mean of these (after 2 warm-up steps): an epoch's time is its steps' sum, hiccups included
POOL_BATCHES = 16  # batches' worth of rows the timed steps gather from (more than the CPU's caches hold) ...
POOL_BYTES = 64 << 20  # ... within this much memory (large images: a batch's worth)


def _eval_seconds_per_sample(model: Any, input_shape: tuple[int, ...], torch: Any, batch: int = 512) -> float:
    """A forward pass's wall time per sample in evaluation (no gradients, the trainer's evaluation batch)."""
    model.eval()
    x = torch.randn((batch, *input_shape))
    times = []
    with torch.no_grad():
        for _ in range(4):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    model.train()
    return float(min(times[1:])) / batch


def interpolate(costs: list[CandidateCost], probes: dict[str, dict[str, tuple[float, float]]]) -> list[CandidateCost]:
    """Latency per candidate from probe figures ``{runtime: {probe name: (ms, low_ms)}}``: linear in MACs."""
    by_name = {c.name: c for c in costs}
    out = []
    for c in costs:
        best = None
        for runtime, figs in probes.items():
            pts = sorted((by_name[n].macs, ms, low) for n, (ms, low) in figs.items())
            ms, low = _linear(pts, c.macs)
            if best is None or ms < best[0]:
                best = (ms, low, runtime)
        out.append(c if best is None else _replace(c, latency_ms=best[0], latency_low_ms=best[1],
                                                    latency_runtime=best[2]))
    return out


def _linear(points: list[tuple[int, float, float]], macs: int) -> tuple[float, float]:
    if len(points) == 1 or points[-1][0] == points[0][0]:
        m0, ms0, low0 = points[0]
        scale = macs / m0 if m0 else 1.0
        return ms0 * scale, low0 * scale
    (m0, a0, l0), (m1, a1, l1) = points[0], points[-1]
    f = (macs - m0) / (m1 - m0)
    return max(a0 + f * (a1 - a0), 1e-6), max(l0 + f * (l1 - l0), 1e-6)


def decide(costs: list[CandidateCost], budget: "Budget", sram_kib: float | None, max_candidates: int,
           time_budget_s: float | None) -> list[CandidateCost]:
    """Mark each candidate train/skip with reasons (see the module docstring)."""
    out = []
    for c in costs:
        reasons = []
        if budget.model_size_mb is not None and c.int8_size_mb > budget.model_size_mb:
            reasons.append(f"int8 size ~{c.int8_size_mb:.2f} MB > budget {budget.model_size_mb:g} MB")
        flash = budget.flash_kib
        if flash is not None and c.int8_size_mb * 1e6 / 1024 > flash:
            reasons.append(f"int8 weights ~{c.int8_size_mb * 1e6 / 1024:.0f} KiB > flash {flash:g} KiB")
        if sram_kib is not None and c.peak_activation_kib > sram_kib:
            reasons.append(f"activations ~{c.peak_activation_kib:.0f} KiB > SRAM {sram_kib:g} KiB")
        if budget.p90_latency_ms is not None and c.latency_low_ms is not None and \
                c.latency_low_ms > budget.p90_latency_ms:
            reasons.append(f"estimated {c.latency_ms:.3g} ms (at best {c.latency_low_ms:.3g} ms) > budget "
                           f"{budget.p90_latency_ms:g} ms")
        out.append(_replace(c, decision="skip" if reasons else "train", reasons=tuple(reasons)))
    survivors = sorted((c for c in out if c.decision == "train"), key=lambda c: c.macs)
    dropped: dict[str, str] = {}
    if time_budget_s is None:
        keep = _spread(survivors, max_candidates)
    else:  # the largest candidates that fit the time budget together (larger students are the accurate ones),
        # students seeded from the teacher first (they reach the teacher's accuracy in a fraction of the epochs)
        keep, total = set(), 0.0
        for c in sorted(survivors, key=lambda c: (not c.seeded, -c.macs)):
            if len(keep) < max_candidates and total + c.est_train_s <= time_budget_s:
                keep.add(c.name)
                total += c.est_train_s
            elif len(keep) < max_candidates:
                dropped[c.name] = (f"training would take ~{c.est_train_s:.0f} s; with it the candidates exceed "
                                   f"--time-budget {time_budget_s:g} s")
        if not keep and survivors:  # train at least the cheapest one, even over the budget
            keep.add(survivors[0].name)
            dropped.pop(survivors[0].name, None)
    for c in survivors:
        if c.name not in keep and c.name not in dropped:
            dropped[c.name] = f"beyond --max-candidates {max_candidates}"
    return [_replace(c, decision="skip", reasons=(dropped[c.name],)) if c.name in dropped else c for c in out]


def _spread(survivors: list[CandidateCost], n: int) -> set[str]:
    if len(survivors) <= n:
        return {c.name for c in survivors}
    idx = {round(i * (len(survivors) - 1) / (n - 1)) for i in range(n)} if n > 1 else {len(survivors) - 1}
    return {survivors[i].name for i in idx}


def _replace(c: CandidateCost, **kw: Any) -> CandidateCost:
    from dataclasses import replace

    return replace(c, **kw)


def probe_latency(probe_specs: list[StudentSpec], target: "TargetProfile", data: "Dataset", work: Path,
                  say: Progress) -> dict[str, dict[str, tuple[float, float]]]:
    """Export each probe with random weights to every deployable int8 artifact of the target and run it in the
    target's backend; ``{runtime: {name: (ms, low_ms)}}``. Host targets: measured p90 (low = the same)."""
    from .export.onnx import export_onnx
    from .export.tflite import export_tflite
    from .models.students import build_student
    from .quantize.ort_int8 import OrtInt8Config, quantize_onnx_int8

    rng = np.random.default_rng(0)
    loose = {"atol": None, "rtol": None, "min_agreement": None}
    items = []
    for spec in probe_specs:
        model = build_student(spec).eval()
        x = rng.standard_normal((8, *spec.input_shape)).astype(np.float32)
        calib = data.for_shape(spec.input_shape).x_train[:64].astype(np.float32)
        d = work / spec.name
        d.mkdir(parents=True, exist_ok=True)
        if "onnxruntime" in target.runtimes:
            export_onnx(model, x, d / "fp32.onnx", atol=None, rtol=None, min_agreement=None)
            quantize_onnx_int8(d / "fp32.onnx", calib, d / "int8.onnx", OrtInt8Config(calibration_samples=64),
                               min_agreement=None)
            items.append(("onnxruntime", spec.name, d / "int8.onnx"))
        if "litert" in target.runtimes:
            export_tflite(model, x, d / "int8.tflite", precision="int8", calibration=calib, tolerances=loose)
            items.append(("litert", spec.name, d / "int8.tflite"))
    say(f"search: probing {len(items)} random-weight int8 artifact(s) on {target.name}")
    from .backends import Job, Settings, backend_for

    by_name = {s.name: data.for_shape(s.input_shape) for s in probe_specs}
    jobs = [Job(str(p), "int8", tuple(by_name[n].input_shape), by_name[n].x_test[:2]) for _r, n, p in items]
    figures = backend_for(target).figures(jobs, target, Settings(runs=50, warmup=5, emulated_runs=2))
    probes: dict[str, dict[str, tuple[float, float]]] = {}
    for (runtime, name, _p), fig in zip(items, figures):
        low = fig.band_ms[0] if fig.band_ms is not None else fig.judged_ms
        probes.setdefault(runtime, {})[name] = (fig.judged_ms, low)
    return probes
