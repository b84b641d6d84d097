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


@dataclass(frozen=True)
class BuildConfig:
    """Everything ``edgekd build`` needs; validated on construction."""

    target: str = "raspberrypi"
    data: str = "fashion-mnist"  # a data spec (see edgekd.data)
    teacher: str | None = None  # teacher file; None = the built-in default teacher
    teacher_arch: str | None = None  # module:factory for a state_dict teacher
    teacher_outputs: str = "auto"  # "auto", "logits" or "probs"
    out_dir: str | None = None  # default: runs/<target>
    targets_dir: str | None = None
    cache_dir: str | None = None  # default: ~/.cache/edgekd
    distill: DistillConfig = field(default_factory=lambda: DistillConfig(epochs=4))
    family: str | None = None  # student family; default chosen from the data's shape
    sizes: tuple[tuple[float, int], ...] | None = None  # (width, depth) candidates; default: the family ladder
    data_limit: int | None = None  # keep at most this many training samples (quick runs)
    bench_runs: int = 200
    bench_warmup: int = 20
    int8_search: bool = True  # try several int8 schemes, keep the best on validation (else MinMax per-channel)
    strict: bool = False  # a quantization-guard finding on the chosen student is an error (exit 3)
    command: str = ""  # the command line that started the build, for the report

    def __post_init__(self) -> None:
        if self.sizes is not None and len(self.sizes) < 1:
            raise ConfigError("no student sizes given", "pass at least one --size WIDTHxDEPTH")
        if self.bench_runs < 1 or self.bench_warmup < 0:
            raise ConfigError("bench runs must be >= 1 and warm-up >= 0", "use e.g. --bench-runs 200")
        if self.data_limit is not None and self.data_limit < 10:
            raise ConfigError(f"--limit {self.data_limit} is too small", "keep at least 10 training samples")


def build(config: BuildConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run the whole chain; returns the report dict. Raises BudgetError (exit 3) when nothing fits."""
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
        data = load_dataset(config.data, seed=config.distill.seed, limit=config.data_limit)
    say(f"data: {len(data.x_train)} train / {len(data.x_val)} val / {len(data.x_test)} test, "
        f"{data.num_classes} classes, samples {data.input_shape}")

    with _timed(timings, "teacher", say, "teacher: preparing"):
        teacher, teacher_info, teacher_logits = _prepare_teacher(config, data, cache_dir, say)

    specs = ladder(data.input_shape, data.num_classes, config.family, config.sizes)
    candidates = []
    for i, spec in enumerate(specs, 1):
        cdir = ensure_dir(out / "candidates" / spec.name)
        say(f"[{i}/{len(specs)}] {spec.name}: distilling")
        candidates += _candidate(config, target, data, spec, cdir, teacher, teacher_logits, timings, say)

    if target.emulation == "qemu-user" and candidates:
        _arm_estimates(target, candidates, data, out, timings, say)

    report = _report(config, target, data, teacher_info, candidates, timings, t_start)
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
        teacher = load_teacher(config.teacher, arch=config.teacher_arch, outputs=config.teacher_outputs)
        info = {"path": str(config.teacher), "kind": teacher.kind, "sha256": sha256_file(config.teacher)}
        teacher_id = info["sha256"]
    check_teacher_fits(teacher, data)
    logits = cached_teacher_logits(teacher, teacher_id, data, cache_dir, progress=say)
    test_logits = cached_teacher_logits(teacher, teacher_id, data, cache_dir, split="test", progress=say)
    info["accuracy"] = accuracy_of(test_logits, data.y_test)
    info["outputs"] = teacher.outputs
    say(f"teacher: test accuracy {info['accuracy']:.4f} ({info.get('origin', info.get('path'))})")
    return teacher, info, logits


def _candidate(config, target, data, spec, cdir: Path, teacher, teacher_logits, timings, say) -> list[dict[str, Any]]:
    """Distil one student, then one deployable int8 artifact per runtime the target lists (ORT, LiteRT)."""
    from .stages import distill_student, export_student, export_student_tflite, load_checkpoint

    with _timed(timings, "distill", say):
        ckpt = distill_student(data, spec, config.distill, cdir, teacher=teacher, teacher_logits=teacher_logits,
                               progress=lambda m: say(f"    {m}"))
    say(f"    fp32 test accuracy {ckpt.accuracy_fp32:.4f}, {ckpt.params} params, {ckpt.macs / 1e6:.2f} M MACs")
    with _timed(timings, "export", say):
        model, _ = load_checkpoint(cdir / "student.json")
        fp32 = export_student(model, data, cdir / "model_fp32.onnx")  # also the onnx2tf route's source
    artifacts = []
    if "onnxruntime" in target.runtimes:
        with _timed(timings, "quantize", say):
            int8 = _quantize(config, fp32, data, cdir / "model_int8.onnx")
        say(f"    onnxruntime: fp32 acc {fp32.accuracy:.4f}, int8 acc {int8.accuracy:.4f} "
            f"({int8.config.get('scheme', 'minmax')}, argmax agreement {int8.parity.get('argmax_agreement'):.4f})")
        artifacts.append(_benched("onnxruntime", ckpt, fp32, int8, config, target, data, cdir, timings, say))
    if "litert" in target.runtimes:
        with _timed(timings, "tflite", say):
            t32 = export_student_tflite(model, data, cdir / "model_fp32.tflite", "fp32", onnx_path=fp32.path)
            t8 = export_student_tflite(model, data, cdir / "model_int8.tflite", "int8", onnx_path=fp32.path)
        say(f"    litert: fp32 acc {t32.accuracy:.4f}, int8 acc {t8.accuracy:.4f} (route {t8.config.get('route')}, "
            f"int8 I/O, argmax agreement {t8.parity.get('argmax_agreement'):.4f})")
        artifacts.append(_benched("litert", ckpt, t32, t8, config, target, data, cdir, timings, say))
        if target.npu is not None:  # Ethos-U: judged on Vela's estimate of the int8 file; host figures kept
            artifacts[-1]["npu"] = _npu_estimate(t8, target, cdir, timings, say)
    return artifacts


def _npu_estimate(int8: Any, target: Any, cdir: Path, timings, say) -> Any:
    from .bench.npu_emu import bench_npu

    with _timed(timings, "npu", say):
        est = bench_npu(int8.path, target, out_dir=cdir / "npu")
    fallback = f", CPU fallback {', '.join(est.cpu_fallback)} (time unknown)" if est.cpu_ops else ""
    say(f"    npu-emu {target.npu.accelerator}: {est.inference_time_ms:.4f} ms, {est.cycles_total:,} cycles, "
        f"SRAM {est.sram_kib:.1f} KiB, flash {est.flash_kib:.1f} KiB, {est.npu_ops}/{est.npu_ops + est.cpu_ops} "
        f"ops on the NPU{fallback}")
    return est


def _arm_estimates(target: Any, candidates: list[dict[str, Any]], data: Any, out: Path, timings, say) -> None:
    """Estimate every candidate's fp32 and int8 artifacts on the ARM target, in one emulated process; the
    int8 estimate is what selection judges (host measurements stay in the report beside it)."""
    from .bench.arm_emu import bench_arm_many

    x = data.x_test[:4]
    items = [(c[prec].path, x, prec) for c in candidates for prec in ("fp32", "int8")]
    say(f"arm-emu: running {len(items)} models in the aarch64 runtimes under emulated {target.core} "
        f"({target.threads} thread(s)); latency is estimated from their instruction counts")
    with _timed(timings, "arm_emu", say):
        estimates = bench_arm_many(items, target)
    for i, c in enumerate(candidates):
        c["arm"] = {"fp32": estimates[2 * i], "int8": estimates[2 * i + 1]}
        write_json_atomic(out / "candidates" / c["checkpoint"].name / f"arm_{c['runtime']}.json",
                          {k: v.as_dict() for k, v in c["arm"].items()})
        e = c["arm"]["int8"]
        say(f"    {c['checkpoint'].name}@{c['runtime']}: estimated {e.ms:.3f} ms on {target.core} "
            f"[{e.low_ms:.3f}-{e.high_ms:.3f}] ({e.instructions / 1e6:.2f} M instructions; fp32 "
            f"{c['arm']['fp32'].ms:.3f} ms)")


def _benched(runtime, ckpt, fp32, int8, config, target, data, cdir: Path, timings, say) -> dict[str, Any]:
    """Measure the fp32 and int8 artifacts of one runtime on the host, each in a fresh process."""
    from .bench.host import bench_host

    threads = min(target.threads, os.cpu_count() or 1)
    benches = {}
    with _timed(timings, "bench", say):
        for prec, m in (("fp32", fp32), ("int8", int8)):
            benches[prec] = bench_host(m.path, data.input_shape, threads=threads, runs=config.bench_runs,
                                       warmup=config.bench_warmup)
            write_json_atomic(cdir / f"bench_{Path(m.path).stem}.json", asdict(benches[prec]))
    b = benches["int8"]
    say(f"    {runtime}: int8 p50 {b.p50_ms:.3f} ms, p90 {b.p90_ms:.3f} ms (fp32 p90 {benches['fp32'].p90_ms:.3f} ms)")
    return {"runtime": runtime, "checkpoint": ckpt, "fp32": fp32, "int8": int8, "bench": benches, "threads": threads}


def _quantize(config: BuildConfig, fp32: Any, data: Any, out: Path) -> Any:
    """int8 by the best scheme on validation data (or MinMax per-channel), scored on the test split."""
    from .stages import quantize_student

    return quantize_student(fp32, data, out, "search" if config.int8_search else None)


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
        if p.is_file() and not p.name.startswith(".tmp-") and p.name != "manifest.json":
            artifacts[str(p.relative_to(out))] = sha256_file(p)
    cfg = asdict(config)
    write_json_atomic(out / "manifest.json", {"edgekd": __version__, "stage_seconds": timings,
                                              "config": cfg, "artifacts": artifacts})


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
