"""One candidate through the build's stages, each cached and resumable (see ``stage_cache``).

distill -> ONNX fp32 -> (onnxruntime) int8 -> host bench; (litert) TFLite fp32 + int8 -> host bench;
(Ethos-U) Vela on the int8 TFLite; (ARM) the emulated estimates of every candidate, in one emulated process.
Each stage's key is the hash of what determines its output: the data's fingerprint, the teacher, the student
spec, the distillation config, the upstream artifacts' sha256, the benchmark settings, and tool versions.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from .records import BenchResult, Checkpoint, ExportedModel
from .stage_cache import StageCache

Progress = Callable[[str], None]


def _exported(d: dict) -> ExportedModel:
    return ExportedModel(**{**d, "input_shape": tuple(d["input_shape"])})


def _encode(r: Any) -> dict:
    return asdict(r)


def candidate(ctx: dict[str, Any], spec: Any, cdir: Path, timed: Callable, say: Progress) -> list[dict[str, Any]]:
    """Distil one student, then one deployable int8 artifact per runtime the target lists (ORT, LiteRT).

    ``ctx``: config, target, data, teacher, teacher_logits, teacher_id, cache (StageCache).
    """
    from .stages import distill_student, export_student, export_student_tflite, load_checkpoint

    config, target, data, cache = ctx["config"], ctx["target"], ctx["data"], ctx["cache"]
    k_distill = cache.key("distill", data.fingerprint(), ctx["teacher_id"], spec.as_dict(), config.distill.as_dict())
    with timed("distill"):
        ckpt = cache.run("distill", cdir, k_distill, [cdir / "student.pt", cdir / "student.json"],
                         lambda: distill_student(data, spec, config.distill, cdir, teacher=ctx["teacher"],
                                                 teacher_logits=ctx["teacher_logits"],
                                                 progress=lambda m: say(f"    {m}")),
                         _encode, lambda d: Checkpoint(**d))
    say(f"    fp32 test accuracy {ckpt.accuracy_fp32:.4f}, {ckpt.params} params, {ckpt.macs / 1e6:.2f} M MACs")
    model = None

    def student():
        nonlocal model
        if model is None:
            model = load_checkpoint(cdir / "student.json")[0]
        return model

    k_src = cache.key(k_distill, ckpt.sha256)
    with timed("export"):
        fp32 = cache.run("onnx_fp32", cdir, cache.key("onnx", k_src), [cdir / "model_fp32.onnx"],
                         lambda: export_student(student(), data, cdir / "model_fp32.onnx"), _encode, _exported)
    artifacts = []
    if "onnxruntime" in target.runtimes:
        with timed("quantize"):
            int8 = cache.run("onnx_int8", cdir, cache.key("ort-int8", fp32.sha256, config.int8_search,
                                                          data.fingerprint()), [cdir / "model_int8.onnx"],
                             lambda: _quantize(config, fp32, data, cdir / "model_int8.onnx"), _encode, _exported)
        say(f"    onnxruntime: fp32 acc {fp32.accuracy:.4f}, int8 acc {int8.accuracy:.4f} "
            f"({int8.config.get('scheme', 'minmax')}, argmax agreement {int8.parity.get('argmax_agreement'):.4f})")
        artifacts.append(_benched("onnxruntime", ckpt, fp32, int8, ctx, cdir, timed, say))
    if "litert" in target.runtimes:
        with timed("tflite"):
            t32, t8 = (cache.run(f"tflite_{p}", cdir, cache.key("tflite", p, k_src, fp32.sha256),
                                 [cdir / f"model_{p}.tflite"],
                                 lambda p=p: export_student_tflite(student(), data, cdir / f"model_{p}.tflite", p,
                                                                   onnx_path=fp32.path), _encode, _exported)
                       for p in ("fp32", "int8"))
        say(f"    litert: fp32 acc {t32.accuracy:.4f}, int8 acc {t8.accuracy:.4f} (route {t8.config.get('route')}, "
            f"int8 I/O, argmax agreement {t8.parity.get('argmax_agreement'):.4f})")
        artifacts.append(_benched("litert", ckpt, t32, t8, ctx, cdir, timed, say))
        if target.npu is not None:  # Ethos-U: judged on Vela's estimate of the int8 file; host figures kept
            with timed("npu"):
                artifacts[-1]["npu"] = _npu_estimate(t8, target, cdir, cache, say)
    return artifacts


def _quantize(config: Any, fp32: ExportedModel, data: Any, out: Path) -> ExportedModel:
    """int8 by the best scheme on validation data (or MinMax per-channel), scored on the test split."""
    from .stages import quantize_student

    return quantize_student(fp32, data, out, "search" if config.int8_search else None)


def _benched(runtime: str, ckpt, fp32, int8, ctx: dict[str, Any], cdir: Path, timed, say) -> dict[str, Any]:
    """Measure the fp32 and int8 artifacts of one runtime on the host, each in a fresh process (cached per
    artifact, settings and host CPU)."""
    from .bench.host import bench_host
    from .bench.measure import cpu_model

    config, target, data, cache = ctx["config"], ctx["target"], ctx["data"], ctx["cache"]
    threads = min(target.threads, os.cpu_count() or 1)
    benches = {}
    with timed("bench"):
        for prec, m in (("fp32", fp32), ("int8", int8)):
            stage = "bench_" + Path(m.path).name.replace(".", "_")  # e.g. bench_model_int8_tflite
            out = cdir / f"{stage}.json"
            key = cache.key("bench", m.sha256, threads, config.bench_runs, config.bench_warmup, cpu_model())

            def work(m=m, out=out):
                b = bench_host(m.path, data.input_shape, threads=threads, runs=config.bench_runs,
                               warmup=config.bench_warmup)
                from .fsio import write_json_atomic

                write_json_atomic(out, asdict(b))
                return b

            benches[prec] = cache.run(stage, cdir, key, [out], work, _encode,
                                      lambda d: BenchResult(**d))
    b = benches["int8"]
    say(f"    {runtime}: host int8 p50 {b.p50_ms:.3f} ms, p90 {b.p90_ms:.3f} ms "
        f"(fp32 p90 {benches['fp32'].p90_ms:.3f} ms)")
    return {"runtime": runtime, "checkpoint": ckpt, "fp32": fp32, "int8": int8, "bench": benches, "threads": threads}


def _npu_estimate(int8: ExportedModel, target: Any, cdir: Path, cache: StageCache, say: Progress) -> Any:
    from .bench.npu_emu import bench_npu
    from .records import NpuEstimate, NpuLayer

    def decode(d: dict) -> NpuEstimate:
        return NpuEstimate(**{**d, "cpu_fallback": tuple(d["cpu_fallback"]),
                              "layers": tuple(NpuLayer(**layer) for layer in d["layers"])})

    key = cache.key("npu", int8.sha256, asdict(target.npu), target.budget.as_dict())
    est = cache.run("npu", cdir, key, [cdir / "npu" / "npu_estimate.json"],
                    lambda: bench_npu(int8.path, target, out_dir=cdir / "npu"), _encode, decode)
    fallback = f", CPU fallback {', '.join(est.cpu_fallback)} (time unknown)" if est.cpu_ops else ""
    say(f"    npu-emu {target.npu.accelerator}: {est.inference_time_ms:.4f} ms, {est.cycles_total:,} cycles, "
        f"SRAM {est.sram_kib:.1f} KiB, flash {est.flash_kib:.1f} KiB, {est.npu_ops}/{est.npu_ops + est.cpu_ops} "
        f"ops on the NPU{fallback}")
    return est


def arm_estimates(ctx: dict[str, Any], candidates: list[dict[str, Any]], out: Path, timed, say) -> None:
    """Estimate every candidate's fp32 and int8 artifacts on the ARM target; the ones not cached run in one
    emulated process. The int8 estimate is what selection judges (host measurements stay beside it)."""
    from .bench.arm_emu import ArmEstimate, bench_arm_many
    from .emu.env import find_env
    from .emu.estimator import CALIBRATION
    from .fsio import sha256_file

    target, data, cache = ctx["target"], ctx["data"], ctx["cache"]
    env = find_env()
    base = (target.core, target.clock_ghz, target.threads, target.cores, sha256_file(CALIBRATION), env.wheels,
            env.qemu_version)
    todo = []
    for c in candidates:
        cdir = out / "candidates" / c["checkpoint"].name
        stamp = f"arm_{c['runtime']}"
        key = cache.key("arm", c["fp32"].sha256, c["int8"].sha256, *base)
        found = _cached(cache, stamp, cdir, key)
        if found is not None:
            c["arm"] = {p: ArmEstimate(**found[p]) for p in ("fp32", "int8")}
        else:
            todo.append((c, cdir, stamp, key))
    if todo:
        items = [(c[p].path, data.x_test[:4], p) for c, *_ in todo for p in ("fp32", "int8")]
        say(f"arm-emu: running {len(items)} models in the aarch64 runtimes under emulated {target.core} "
            f"({target.threads} thread(s)); latency is estimated from their instruction counts")
        with timed("arm_emu"):
            ests = bench_arm_many(items, target, env=env)
        for i, (c, cdir, stamp, key) in enumerate(todo):
            pair = {"fp32": ests[2 * i], "int8": ests[2 * i + 1]}
            path = cdir / f"{stamp}.json"
            cache.run(stamp, cdir, key, [path], lambda pair=pair, path=path: _write_arm(path, pair),
                      lambda p: {k: v.as_dict() for k, v in p.items()}, lambda d: d)
            c["arm"] = pair
    for c in candidates:
        e = c["arm"]["int8"]
        say(f"    {c['checkpoint'].name}@{c['runtime']}: estimated {e.ms:.3f} ms on {target.core} "
            f"[{e.low_ms:.3f}-{e.high_ms:.3f}] ({e.instructions / 1e6:.2f} M instructions; fp32 "
            f"{c['arm']['fp32'].ms:.3f} ms)")


def _write_arm(path: Path, pair: dict[str, Any]) -> dict[str, Any]:
    from .fsio import write_json_atomic

    write_json_atomic(path, {k: v.as_dict() for k, v in pair.items()})
    return pair


def _cached(cache: StageCache, stage: str, where: Path, key: str) -> Any:
    """A stage's stored record without running anything (None when absent or stale)."""
    from .stage_cache import _valid

    if cache.fresh:
        return None
    record = _valid(where / ".stages" / f"{stage}.json", key, where)
    if record is not None:
        cache.reused.append(f"{where.name}/{stage}")
    return record

