"""``edgekd build``: teacher -> distil candidates -> export -> int8 -> benchmark -> select -> report.

The order of the stages is read top to bottom in ``build``. Each stage is a function in ``stages``;
this module only wires them, times them and writes the run's records.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import __version__
from .distill.config import DistillConfig
from .errors import BudgetError, ConfigError
from .fsio import ensure_dir, sha256_file, write_json_atomic

Progress = Callable[[str], None]
DEFAULT_MAX_CANDIDATES = 4


@dataclass(frozen=True)
class BuildConfig:
    """Everything ``edgekd build`` needs; validated on construction."""

    target: str = "raspberrypi"
    data: str = "fashion-mnist"  # a data spec (see edgekd.data)
    teacher: str | None = None  # teacher file; None = the built-in default teacher
    teacher_arch: str | None = None  # module:factory for a state_dict teacher
    teacher_outputs: str = "auto"  # "auto", "logits" or "probs"
    trust_pickle: bool = False  # DANGEROUS: unpickle a torch teacher in full (runs any code it holds)
    out_dir: str | None = None  # default: runs/<target>
    targets_dir: str | None = None
    cache_dir: str | None = None  # default: ~/.cache/edgekd
    distill: DistillConfig = field(default_factory=lambda: DistillConfig(epochs=4))
    family: str | None = None  # student family; default chosen from the data's shape
    sizes: tuple[tuple[float, int], ...] | None = None  # (width, depth) candidates; default: the family ladder
    data_limit: int | None = None  # keep at most this many training samples (quick runs)
    unlabeled: str | None = None  # unlabelled training inputs: "rest" (what data_limit left out) or a data spec
    bench_runs: int = 200
    bench_warmup: int = 20
    int8_search: bool = True  # try several int8 schemes, keep the best on validation (else MinMax per-channel)
    strict: bool = False  # a quantization-guard finding on the chosen student is an error (exit 3)
    fresh: bool = False  # ignore cached stages of earlier builds (they are resumed / reused otherwise)
    retime: bool = False  # measure the candidates' training steps again (otherwise read back per machine)
    max_candidates: int | None = None  # train at most this many that can fit (None: 4 of the default ladder,
    # every size given with --size)
    time_budget_s: float | None = 360.0  # drop the costliest candidates while their estimated training exceeds it
    search: bool = True  # estimate every candidate's cost before training and skip those that cannot fit
    command: str = ""  # the command line that started the build, for the report

    def __post_init__(self) -> None:
        if self.sizes is not None and len(self.sizes) < 1:
            raise ConfigError("no student sizes given", "pass at least one --size WIDTHxDEPTH")
        if self.bench_runs < 1 or self.bench_warmup < 0:
            raise ConfigError("bench runs must be >= 1 and warm-up >= 0", "use e.g. --bench-runs 200")
        if self.max_candidates is not None and self.max_candidates < 1:
            raise ConfigError(f"--max-candidates {self.max_candidates} is below 1", "train at least one candidate")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ConfigError(f"--time-budget {self.time_budget_s} is not a positive number of seconds",
                              "pass e.g. --time-budget 600, or leave it out")
        if self.data_limit is not None and self.data_limit < 10:
            raise ConfigError(f"--limit {self.data_limit} is too small", "keep at least 10 training samples")


def build(config: BuildConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run the whole chain; returns the report dict. Raises BudgetError (exit 3) when nothing fits.

    Whatever the outcome, memory the build freed is handed back to the OS before returning
    (``edgekd.memory``), so a process that runs many builds does not keep each one's high-water mark.
    """
    from .memory import release_free_memory

    try:
        return _build(config, progress)
    finally:
        release_free_memory()


def _build(config: BuildConfig, progress: Progress | None) -> dict[str, Any]:
    from .cache import default_cache_dir
    from .data import load_dataset
    from .models.students import ladder
    from .report.writer import write_reports
    from .targets import load_target

    say = progress or (lambda _m: None)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    target = load_target(config.target, config.targets_dir)
    out = ensure_dir(config.out_dir or Path("runs") / target.name)
    cache_dir = Path(config.cache_dir) if config.cache_dir else default_cache_dir()

    with _timed(timings, "data", say, f"data: loading {config.data}"):
        data = load_dataset(config.data, seed=config.distill.seed, limit=config.data_limit,
                            unlabeled=config.unlabeled)
    unl = f" ({data.n_unlabeled} of them unlabelled: the teacher labels them)" if data.n_unlabeled else ""
    say(f"data: {len(data.x_train)} train{unl} / {len(data.x_val)} val / {len(data.x_test)} test, "
        f"{data.num_classes} classes, samples {data.input_shape}")

    with _timed(timings, "teacher", say, "teacher: preparing"):
        teacher, teacher_info, teacher_logits = _prepare_teacher(config, data, cache_dir, say)

    from .candidate_stages import arm_estimates, candidate
    from .stage_cache import StageCache

    cache = StageCache(fresh=config.fresh)
    specs = ladder(data.input_shape, data.num_classes, config.family, config.sizes)
    with _timed(timings, "search", say):
        plan = _plan(config, target, data, specs, out, cache, cache_dir, say)
    chosen = [s for s in specs if any(c.name == s.name and c.decision == "train" for c in plan)]
    if not chosen:
        closest = min(plan, key=lambda c: (len(c.reasons), c.macs))
        raise BudgetError(f"no candidate can meet the {target.name} budget (estimated before training, none "
                          f"trained); closest is {closest.name}: {'; '.join(closest.reasons)}",
                          f"relax the budget in a profile under --targets-dir, or try smaller --size values "
                          f"(every candidate's estimate: {out / 'search' / 'plan.json'})")
    ctx = {"config": config, "target": target, "data": data, "teacher": teacher, "teacher_logits": teacher_logits,
           "teacher_id": teacher_info.get("id"), "cache": cache}
    candidates = []
    for i, spec in enumerate(chosen, 1):
        cdir = ensure_dir(out / "candidates" / spec.name)
        say(f"[{i}/{len(chosen)}] {spec.name}: distilling")
        candidates += candidate(ctx, spec, cdir, lambda stage: _timed(timings, stage, say, _started(stage)), say)

    if target.emulation == "qemu-user" and candidates:
        arm_estimates(ctx, candidates, out, lambda stage: _timed(timings, stage, say), say)
    say(f"stages: {len(cache.ran)} ran, {len(cache.reused)} reused from an earlier build"
        + (" (--fresh)" if config.fresh else ""))

    # issue 6, report: per-operator onnxruntime profile of each candidate on this host -> report["slowest_ops"]
    from .bench.profile_ops import profile_candidates
    profile_candidates(candidates, data.x_test, runs=min(config.bench_runs, 100), fresh=config.fresh, timings=timings,
                       say=say)
    report = _report(config, target, data, teacher_info, candidates, timings, t_start)
    report["search"] = {"considered": [c.as_dict() for c in plan], "trained": [s.name for s in chosen],
                        "skipped": [{"name": c.name, "reasons": list(c.reasons)} for c in plan if c.decision == "skip"]}
    report["stages"] = cache.summary()
    if report["selected"] is not None:
        report["smoke_bundle"] = _smoke_bundle(report, target, data, out, cache, say)
    paths = write_reports(report, out)
    _write_manifest(out, config, timings, candidates, paths)
    say(f"report: {paths['md']}")
    for finding in report["quantization_findings"]:
        say(f"warning: {finding['message']}")
    if report["selected"] is None:
        sel = report["selection"]
        broken = "; ".join(v["budget"] + f" {v['value']:.4g} vs {v['limit']:.4g} ({v['excess']})"
                           for v in sel["violations"].get(sel["closest"], []))
        raise BudgetError(f"no student meets the {target.name} budget; closest is {sel['closest']}: {broken}",
                          f"relax the budget in a profile under --targets-dir, or try other sizes (report: {paths['md']})")
    if config.strict:
        from .report.guard import enforce

        enforce(report["quantization_findings"], report["selected"])
    return report


def _prepare_teacher(config: BuildConfig, data: Any, cache_dir: Path, say: Progress):
    from .distill.cache import cached_teacher_logits
    from .models.default_teacher import default_teacher
    from .models.teachers import load_teacher
    from .stages import accuracy_of, check_teacher_fits

    if config.teacher is None:
        teacher, info = default_teacher(data, cache_dir, progress=say)
        teacher_id = "default:" + info["weights_sha256"]
    else:
        teacher = load_teacher(config.teacher, arch=config.teacher_arch, outputs=config.teacher_outputs,
                               trust_pickle=config.trust_pickle)
        info = {"path": str(config.teacher), "kind": teacher.kind, "sha256": sha256_file(config.teacher)}
        teacher_id = info["sha256"]
    info["id"] = teacher_id
    check_teacher_fits(teacher, data)
    logits = cached_teacher_logits(teacher, teacher_id, data, cache_dir, progress=say)
    test_logits = cached_teacher_logits(teacher, teacher_id, data, cache_dir, split="test", progress=say)
    info["accuracy"] = accuracy_of(test_logits, data.y_test)
    info["outputs"] = teacher.outputs
    say(f"teacher: test accuracy {info['accuracy']:.4f} ({info.get('origin', info.get('path'))})")
    return teacher, info, logits


def _plan(config: BuildConfig, target: Any, data: Any, specs: list, out: Path, cache: Any, cache_dir: Path,
          say: Progress) -> list:
    """Every candidate's estimated cost and whether it is trained (cached: probes are not re-run)."""
    import math

    from .search import CandidateCost, decide, interpolate, probe_latency, size_candidates
    from .step_times import StepTimes

    steps = math.ceil(len(data.x_train) / config.distill.batch_size)
    step_times = StepTimes(cache_dir, retime=config.retime)

    def sized() -> list:
        costs = size_candidates(specs, config.distill.batch_size, steps, config.distill.epochs, step_times)
        if step_times.measured:
            say(f"search: training step timed for {len(step_times.measured)} candidate(s), kept in "
                f"{step_times.path} for later builds on this machine")
        if step_times.reused:
            say(f"search: training step times of {len(step_times.reused)} candidate(s) read back from "
                f"{step_times.path} (measured earlier on this machine; --retime measures again)")
        return costs

    if not config.search:
        return sized()
    where = ensure_dir(out / "search")
    key = cache.key("search", [s.as_dict() for s in specs], target.name, target.budget.as_dict(), target.runtimes,
                    target.core, target.clock_ghz, target.threads, data.fingerprint(), config.distill.as_dict(),
                    config.max_candidates, config.time_budget_s, time.time() if config.retime else None)

    def work() -> list:
        from .fsio import write_json_atomic

        costs = sized()
        sram = getattr(getattr(target, "budget", None), "sram_kib", None)
        fits_size = [c for c in costs if target.budget.model_size_mb is None
                     or c.int8_size_mb <= target.budget.model_size_mb]
        if target.budget.p90_latency_ms is not None and target.npu is None and fits_size:
            by_name = {s.name: s for s in specs}
            fits = sorted(fits_size, key=lambda c: c.macs)
            ends = [fits[0].name] + ([fits[-1].name] if len(fits) > 1 else [])
            costs = interpolate(costs, probe_latency([by_name[n] for n in ends], target, data, where / "probes", say))
        limit = config.max_candidates or (len(specs) if config.sizes else DEFAULT_MAX_CANDIDATES)
        plan = decide(costs, target.budget, sram, limit, config.time_budget_s)
        write_json_atomic(where / "plan.json", [c.as_dict() for c in plan])
        return plan

    plan = cache.run("plan", where, key, [where / "plan.json"], work, lambda p: [c.as_dict() for c in p],
                     lambda d: [CandidateCost(**{**c, "reasons": tuple(c["reasons"])}) for c in d])
    for c in plan:
        est = "" if c.latency_ms is None else f", est. {c.latency_ms:.3g} ms ({c.latency_runtime})"
        why = "" if c.decision == "train" else ": " + "; ".join(c.reasons)
        say(f"search: {c.name}: {c.params:,} params, {c.macs / 1e6:.2f} M MACs{est}, ~{c.est_train_s:.0f} s to "
            f"train -> {c.decision}{why}")
    return plan


def _smoke_bundle(report: dict[str, Any], target: Any, data: Any, out: Path, cache: Any, say: Progress) -> str:
    """The chosen student's on-device smoke-test bundle (``smoke/NAME`` and ``smoke/NAME.tar.gz``)."""
    from .smoke.bundle import RUNNER, make_bundle

    row = next(c for c in report["candidates"] if c["name"] == report["selected"])
    name = row["name"].replace("@", "_")
    where = ensure_dir(out / "smoke")
    key = cache.key("smoke", row["artifact_sha256"], target.name, target.threads, target.budget.as_dict(),
                    sha256_file(RUNNER), data.fingerprint())
    cache.run(f"smoke_{name}", where, key, [where / name / "manifest.json", where / f"{name}.tar.gz"],
              lambda: make_bundle(row["artifact"], target, where / name, data.x_test[:8], data.y_test[:8]),
              str, lambda d: d)
    say(f"smoke bundle: {where / name} (copy {where / name}.tar.gz to the board; python3 {name}/run_smoke.py)")
    return str(where / name)


def _report(config, target, data, teacher_info, candidates, timings, t_start) -> dict[str, Any]:
    from .report.build_report import build_report_dict

    return build_report_dict(config=config, target=target, data=data, teacher=teacher_info,
                             candidates=candidates, timings=timings,
                             wall_s=time.perf_counter() - t_start, environment=environment())


def environment() -> dict[str, Any]:
    import numpy
    import onnxruntime
    import torch

    cpu = ""
    try:
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
    except OSError:
        pass
    return {"edgekd": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "cpu": cpu or platform.processor(), "logical_cores": os.cpu_count(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__,
            "torch_threads": torch.get_num_threads()}


def _write_manifest(out: Path, config: BuildConfig, timings, candidates, paths) -> None:
    artifacts = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out)
        if p.is_file() and rel != Path("manifest.json") and not any(s.startswith(".tmp-") for s in rel.parts):
            artifacts[rel.as_posix()] = sha256_file(p)  # smoke/*/manifest.json included
    cfg = asdict(config)
    write_json_atomic(out / "manifest.json", {"edgekd": __version__, "stage_seconds": timings,
                                              "config": cfg, "artifacts": artifacts})


def _started(stage: str) -> str | None:
    """The progress line a candidate stage prints as it starts (distill has its own: "NAME: distilling")."""
    return None if stage == "distill" else f"    {stage}: started"


class _timed:
    """Adds the block's wall time to ``timings[stage]``; optionally announces the stage."""

    def __init__(self, timings: dict[str, float], stage: str, say: Progress, message: str | None = None) -> None:
        self.timings, self.stage, self.say, self.message = timings, stage, say, message

    def __enter__(self):
        if self.message:
            self.say(self.message)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.timings[self.stage] = self.timings.get(self.stage, 0.0) + time.perf_counter() - self.t0
        return False
