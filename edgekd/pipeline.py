"""``edgekd build``, top to bottom in data-flow order:

data -> teacher -> plan -> per candidate (distill -> export -> quantize) -> figures (host + the target's
backend) -> select -> report -> smoke bundle -> manifest.

Each step is a call whose inputs and outputs are typed records (``records``, ``build_result``); the stage
functions live in ``prepare``, ``search``, ``candidate_stages``, ``judge``, ``report`` and ``smoke``; this module
only wires them, times them and writes the run's records.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from . import __version__
from .build_config import DEFAULT_MAX_CANDIDATES, BuildConfig
from .errors import BudgetError
from .fsio import ensure_dir, sha256_file, write_json_atomic

if TYPE_CHECKING:
    from .candidate_stages import BuildContext
    from .data import Dataset
    from .models.students import StudentSpec
    from .records import Candidate
    from .search import CandidateCost
    from .stage_cache import StageCache
    from .targets import TargetProfile

__all__ = ["BuildConfig", "build", "DEFAULT_MAX_CANDIDATES"]
Progress = Callable[[str], None]


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
    from .backends import backend_for
    from .backends.board import with_board
    from .build_result import BuildResult, DataSummary
    from .memory import release_free_memory
    from .cache import default_cache_dir
    from .candidate_stages import BuildContext, distill_candidate, export_candidate
    from .environment import environment
    from .judge import decide, judge
    from .models.students import ladder
    from .prepare import build_inputs
    from .report.build_report import build_report_dict
    from .report.writer import write_reports
    from .stage_cache import StageCache
    from .targets import load_target

    say = progress or (lambda _m: None)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    target = load_target(config.target, config.targets_dir)
    if config.ray:
        from .parallel_train import check_ray

        check_ray(config.ray)  # before any work: a wrong address fails in seconds
    out = ensure_dir(config.out_dir or Path("runs") / target.name)
    cache_dir = Path(config.cache_dir) if config.cache_dir else default_cache_dir()

    # data -> teacher
    data, loaded, teacher_info, teacher_logits = build_inputs(
        config, cache_dir, say, lambda stage, message: _timed(timings, stage, say, message))

    # plan: which students are worth training
    cache = StageCache(fresh=config.fresh)
    specs = ladder(data.input_shape, data.num_classes, config.family, config.sizes, config.resolutions)
    with _timed(timings, "search", say):
        plan = _plan(config, target, data, specs, out, cache, cache_dir, say, loaded.teacher, teacher_info.id)
    release_free_memory()  # the probes' conversion graphs: freed, handed back before training needs the room
    chosen = [s for s in specs if any(c.name == s.name and c.decision == "train" for c in plan)]
    if not chosen:
        raise _nothing_can_fit(target, plan, out)

    # per candidate: distill -> export -> quantize; then the figures selection judges
    ctx = BuildContext(config, target, data, loaded.teacher, teacher_logits, teacher_info.id, cache)
    timed = _stage_timer(timings, say)
    deployables, failures = [], []
    cdirs = {s.name: ensure_dir(out / "candidates" / s.name) for s in chosen}
    elsewhere = {}
    if config.jobs > 1 or config.ray:  # the trainings as parallel jobs, adopted below
        from .parallel_train import adopter, train_in_parallel

        with timed("distill"):
            elsewhere = {n: adopter(t) for n, t in train_in_parallel(ctx, [(s, cdirs[s.name]) for s in chosen],
                                                                     say).items()}
    for i, spec in enumerate(chosen, 1):
        cdir = cdirs[spec.name]
        say(f"[{i}/{len(chosen)}] {spec.name}: " + ("adopting the worker's student" if spec.name in elsewhere
                                                     else "distilling"))
        ckpt = distill_candidate(ctx, spec, cdir, timed, say, elsewhere.get(spec.name))
        release_free_memory()  # training batches and activations
        deployables += export_candidate(ctx, ckpt, cdir, timed, say, failures)
        release_free_memory()  # conversion graphs
    _say_converter_logs(out, say)
    if not deployables:  # every runtime of every candidate failed: nothing to judge
        raise _nothing_exported(failures)
    candidates = judge(ctx, deployables, out, timed, say)
    say(f"stages: {len(cache.ran)} ran, {len(cache.reused)} reused from an earlier build"
        + (f", {len(cache.shared)} copied from the shared store" if cache.shared else "")
        + (" (--fresh)" if config.fresh else ""))
    candidates = _with_ops_profiles(candidates, ctx, config, timings, say)

    # select -> report -> smoke bundle -> manifest
    selection, findings = decide(candidates, ctx)
    threads = candidates[0].deployable.threads if candidates else 1
    result = BuildResult(config, target, DataSummary.of(data), teacher_info, tuple(candidates), selection,
                         tuple(findings), tuple(plan), cache.summary(),
                         with_board(backend_for(target), config.board).note(target, threads, config.bench_runs),
                         threads, timings,
                         time.perf_counter() - t_start, environment(), tuple(failures))
    report = build_report_dict(result)
    if selection.selected is not None:
        pick = next(c for c in candidates if c.name == selection.selected)
        report["smoke_bundle"] = _smoke_bundle(pick, target, ctx.data_for(pick.deployable.checkpoint.input_shape),
                                               out, cache, say)
    paths = write_reports(report, out)
    write_manifest(out, config, timings)
    say(f"report: {paths['md']}")
    for finding in findings:
        say(f"warning: {finding.message}")
    if selection.selected is None:
        broken = "; ".join(f"{v.budget} {v.value:.4g} vs {v.limit:.4g} ({v.excess})"
                           for v in selection.violations.get(selection.closest or "", []))
        raise BudgetError(f"no student meets the {target.name} budget; closest is {selection.closest}: {broken}",
                          f"relax the budget in a profile under --targets-dir, or try other sizes (report: {paths['md']})")
    if config.strict:
        from .quant_guard import enforce

        enforce(findings, selection.selected)
    return report


def _say_converter_logs(out: Path, say: Progress) -> None:
    """One line for what the converters printed (their child processes wrote it to each candidate's log)."""
    logs = sorted((out / "candidates").glob("*/converters.log"))
    if logs:
        steps = sum(p.read_text(errors="replace").count("\n==== ") + 1 for p in logs)
        say(f"converters: {steps} conversion step(s) ran in child processes; their output is in "
            f"{out / 'candidates'}/*/converters.log")


def _nothing_exported(failures: list) -> "Exception":
    from .errors import ExportError

    return ExportError(f"no artifact could be made for any candidate in any runtime ({len(failures)} failed)",
                       "see each reason below; try another --family or sizes",
                       tuple(f"{f.candidate}@{f.runtime}: {f.reason}" for f in failures))


def _nothing_can_fit(target: "TargetProfile", plan: "list[CandidateCost]", out: Path) -> BudgetError:
    closest = min(plan, key=lambda c: (len(c.reasons), c.macs))
    return BudgetError(f"no candidate can meet the {target.name} budget (estimated before training, none "
                       f"trained); closest is {closest.name}: {'; '.join(closest.reasons)}",
                       f"relax the budget in a profile under --targets-dir, or try smaller --size values "
                       f"(every candidate's estimate: {out / 'search' / 'plan.json'})")


def _with_ops_profiles(candidates: "list[Candidate]", ctx: "BuildContext", config: BuildConfig,
                       timings: dict[str, float], say: Progress) -> "list[Candidate]":
    """Each candidate with onnxruntime's per-operator profile on this host (it explains, it does not judge)."""
    from dataclasses import replace

    from .bench.profile_ops import profile_candidates

    out = []
    for c in candidates:  # each on test samples at its own input resolution
        samples = ctx.data_for(c.deployable.checkpoint.input_shape).x_test[:PROFILE_SAMPLES]
        [p] = profile_candidates([c.deployable], samples, runs=min(config.bench_runs, 100), fresh=config.fresh,
                                 timings=timings, say=say)
        out.append(replace(c, ops_profile=p))
    return out


PROFILE_SAMPLES = 256  # test samples the per-operator profile cycles through
SMOKE_SAMPLES = 8  # test samples (with their raw images, for image folders) in the smoke bundle


def _seedable(specs: "list[StudentSpec]", teacher: Any, config: BuildConfig, data: "Dataset") -> "set[str]":
    """The candidates whose weights will start pruned from the teacher (``distill.seeding``)."""
    from .distill.seeding import check, not_applicable
    from .models.students import build_student

    if not_applicable(config.distill, teacher, data):
        return set()
    return {s.name for s in specs if check(build_student(s), teacher.module).seeded}


def _plan(config: BuildConfig, target: "TargetProfile", data: "Dataset", specs: "list[StudentSpec]", out: Path,
          cache: "StageCache", cache_dir: Path, say: Progress, teacher: Any = None,
          teacher_id: str = "") -> "list[CandidateCost]":
    """Every candidate's estimated cost and whether it is trained (cached: probes are not re-run)."""
    import math
    from dataclasses import replace

    from .search import CandidateCost, decide, interpolate, probe_latency, size_candidates
    from .step_times import StepTimes

    steps = math.ceil(len(data.x_train) / config.distill.batch_size)
    step_times = StepTimes(cache_dir, retime=config.retime)
    seedable = _seedable(specs, teacher, config, data)
    if seedable:
        say(f"search: {len(seedable)} candidate(s) start pruned from the teacher ({', '.join(sorted(seedable))}); "
            "the plan trains them first")

    def sized(timed: "set[str] | None" = None) -> list:
        costs = size_candidates(specs, config.distill.batch_size, steps, config.distill.epochs, step_times,
                                eval_per_epoch=len(data.x_val), eval_at_end=len(data.x_test), timed=timed,
                                channels_last=config.distill.channels_last, time_budget_s=config.time_budget_s)
        costs = [replace(c, seeded=c.name in seedable) for c in costs]
        if step_times.measured:
            say(f"search: training step timed for {len(step_times.measured)} candidate(s), kept in "
                f"{step_times.path} for later builds on this machine")
            step_times.measured.clear()
        if step_times.reused:
            say(f"search: training step times of {len(step_times.reused)} candidate(s) read back from "
                f"{step_times.path} (measured earlier on this machine; --retime measures again)")
            step_times.reused.clear()
        return costs

    if not config.search:
        return sized()
    where = ensure_dir(out / "search")
    key = cache.key("search", [s.as_dict() for s in specs], target.name, target.budget.as_dict(), target.runtimes,
                    target.core, target.clock_ghz, target.threads, data.fingerprint(), config.distill.as_dict(),
                    teacher_id,
                    config.max_candidates, config.time_budget_s, time.time() if config.retime else None)

    def work() -> list:
        from .fsio import write_json_atomic

        from .backends import backend_for

        costs = sized(timed=set())  # sizes first: only the candidates that can fit are timed
        sram = target.budget.sram_kib
        fits = {c.name for c in decide(costs, target.budget, sram, len(costs), None) if c.decision == "train"}
        costs = sized(timed=fits)  # (a candidate far over --time-budget stops after a few steps)
        probes = {}
        if target.budget.p90_latency_ms is not None and backend_for(target).probes_latency and fits:
            by_name = {s.name: s for s in specs}
            fitting = sorted((c for c in costs if c.name in fits), key=lambda c: c.macs)
            # the probes span what could be trained: a candidate whose training alone exceeds --time-budget is
            # not (its latency is extrapolated), so no time goes to emulating the largest models
            trainable = [c for c in fitting if config.time_budget_s is None
                         or c.est_train_s <= config.time_budget_s] or fitting[:1]
            ends = [trainable[0].name] + ([trainable[-1].name] if len(trainable) > 1 else [])
            probes = probe_latency([by_name[n] for n in ends], target, data, where / "probes", say)
            costs = interpolate(costs, probes)
        limit = config.max_candidates or (len(specs) if config.sizes else DEFAULT_MAX_CANDIDATES)
        plan = decide(costs, target.budget, sram, limit, config.time_budget_s)
        write_json_atomic(where / "plan.json", [c.as_dict() for c in plan])
        return plan

    plan = cache.run("plan", where, key, [where / "plan.json"], work, lambda p: [c.as_dict() for c in p],
                     lambda d: [CandidateCost(**{**c, "reasons": tuple(c["reasons"])}) for c in d])
    for c in plan:
        est = "" if c.latency_ms is None else f", est. {c.latency_ms:.3g} ms ({c.latency_runtime})"
        why = "" if c.decision == "train" else ": " + "; ".join(c.reasons)
        train = f", ~{c.est_train_s:.0f} s to train" if c.est_train_s else ""  # untimed: it cannot fit anyway
        say(f"search: {c.name}: {c.params:,} params, {c.macs / 1e6:.2f} M MACs{est}{train} -> {c.decision}{why}")
    return plan


def _smoke_bundle(chosen: "Candidate", target: "TargetProfile", data: "Dataset", out: Path, cache: "StageCache",
                  say: Progress) -> str:
    """The chosen student's on-device smoke-test bundle (``smoke/NAME`` and ``smoke/NAME.tar.gz``)."""
    from .smoke.bundle import IMAGE_IO, RUNNER, RawImages, make_bundle

    name = chosen.name.replace("@", "_")
    int8 = chosen.deployable.int8
    where = ensure_dir(out / "smoke")
    n = min(SMOKE_SAMPLES, len(data.x_test))
    images = RawImages(tuple(data.x_test.paths(slice(0, n))), data.preprocess) \
        if data.is_lazy and data.preprocess is not None else None
    key = cache.key("smoke", int8.sha256, target.name, target.threads, target.budget.as_dict(),
                    sha256_file(RUNNER), sha256_file(IMAGE_IO), data.fingerprint())
    cache.run(f"smoke_{name}", where, key, [where / name / "manifest.json", where / f"{name}.tar.gz"],
              lambda: make_bundle(int8.path, target, where / name, data.x_test[:n], data.y_test[:n], images=images),
              str, lambda d: d)
    say(f"smoke bundle: {where / name} (copy {where / name}.tar.gz to the board; python3 {name}/run_smoke.py)")
    return str(where / name)


def write_manifest(out: Path, config: BuildConfig, timings: dict[str, float]) -> None:
    """sha256 of every artifact the build left in ``out``; what a board run writes later into a smoke bundle
    (its ``result.json``) is not an artifact, so running a bundle in place never breaks ``edgekd verify``."""
    from .smoke.bundle import is_run_output

    artifacts = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out)
        if p.is_file() and rel != Path("manifest.json") and not any(s.startswith(".tmp-") for s in rel.parts) \
                and not is_run_output(rel):
            artifacts[rel.as_posix()] = sha256_file(p)  # smoke/*/manifest.json included
    write_json_atomic(out / "manifest.json", {"edgekd": __version__, "stage_seconds": timings,
                                              "config": asdict(config), "artifacts": artifacts})


def _stage_timer(timings: dict[str, float], say: Progress) -> Callable[[str], "_timed"]:
    """A candidate stage's timer: adds to ``timings[stage]`` and says that it started (distill has its own line)."""
    return lambda stage: _timed(timings, stage, say, None if stage == "distill" else f"    {stage}: started")


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
        took = time.perf_counter() - self.t0
        self.timings[self.stage] = self.timings.get(self.stage, 0.0) + took
        if self.message and exc[0] is None:  # each announced stage ends with how long it took
            self.say(f"    {self.stage}: done in {took:.1f} s")
        return False
