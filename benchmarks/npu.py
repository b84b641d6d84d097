"""The student family on each Ethos-U target: Vela's cycles, time, SRAM and flash, and the int8 accuracy, with
the ratio of the NPU estimate to the Cortex-A72 estimate (issue 4's arm-emu) for the same int8 model.

    .venv/bin/python benchmarks/npu.py                  # Fashion-MNIST, the default image ladder, 2 epochs each
    .venv/bin/python benchmarks/npu.py --quick          # smoke run: 3000 samples, 2 sizes (not recorded)
    .venv/bin/python benchmarks/npu.py --no-a72         # NPU figures only

Students: edgekd's default ladder for 1x28x28 images (convnet at widths 0.25, 0.5, 1, 2, depth 1), each
distilled here with edgekd's defaults (T 2, alpha 0.7) against the built-in teacher for ``--epochs`` epochs,
then exported full int8 with int8 I/O (``export_student_tflite``: litert-torch, 256 calibration samples).
Accuracy: LiteRT top-1 of that int8 file on the whole Fashion-MNIST test split. NPU figures: ``npu-emu``
(Arm Vela with each target's .ini) on that same file: estimates from Vela's performance model, not device
measurements. Cortex-A72: ``edgekd.backends.arm.bench_arm_many`` on the raspberrypi profile (Cortex-A72 @
1.5 GHz, its 4 threads) for the same file: an estimate from emulated instruction counts with its own error
band. The ratio is NPU time / A72 time; an A72 figure that cannot be obtained is recorded as null with why.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import record  # noqa: E402

from edgekd.backends.npu import bench_npu  # noqa: E402
from edgekd.cache import default_cache_dir  # noqa: E402
from edgekd.data import load_dataset  # noqa: E402
from edgekd.distill.config import DistillConfig  # noqa: E402
from edgekd.errors import EdgeKDError  # noqa: E402
from edgekd.models.students import ladder  # noqa: E402
from edgekd.stages import distill_student, export_student_tflite, load_checkpoint  # noqa: E402
from edgekd.targets import load_target  # noqa: E402

NPU_TARGETS = ("ethos-u55-128", "ethos-u55-256", "ethos-u65-256")
A72_TARGET = "raspberrypi"


def students(args: argparse.Namespace, data: Any, work: Path) -> list[dict[str, Any]]:
    """Distil the ladder and export each student full int8; returns one row per student."""
    from edgekd.distill.cache import cached_teacher_logits
    from edgekd.models.default_teacher import default_teacher

    teacher, info = default_teacher(data, default_cache_dir())
    z = cached_teacher_logits(teacher, "default:" + info.weights_sha256, data, default_cache_dir())
    sizes = ((0.25, 1), (1.0, 1)) if args.quick else None
    rows = []
    for spec in ladder(data.input_shape, data.num_classes, sizes=sizes):
        t0 = time.perf_counter()
        cdir = work / spec.name
        ckpt = distill_student(data, spec, DistillConfig(epochs=args.epochs, patience=args.epochs), cdir,
                               teacher_logits=z)
        model, _ = load_checkpoint(cdir / "student.json")
        t8 = export_student_tflite(model, data, cdir / "model_int8.tflite", "int8")
        rows.append({"student": spec.name, "params": ckpt.params, "macs": ckpt.macs,
                     "accuracy_fp32_torch": ckpt.accuracy_fp32, "accuracy_int8_litert": t8.accuracy,
                     "tflite_route": t8.config.get("route"), "tflite_bytes": t8.size_bytes, "path": t8.path,
                     "prepare_s": round(time.perf_counter() - t0, 1)})
        print(f"{spec.name}: {ckpt.params} params, {ckpt.macs / 1e6:.2f} M MACs, int8 accuracy {t8.accuracy:.4f} "
              f"({rows[-1]['prepare_s']} s)", flush=True)
    return rows


def npu_figures(rows: list[dict[str, Any]]) -> None:
    for name in NPU_TARGETS:
        target = load_target(name)
        for r in rows:
            e = bench_npu(r["path"], target)
            r.setdefault("npu", {})[name] = {
                "cycles_total": e.cycles_total, "cycles_npu": e.cycles_npu, "time_ms": e.inference_time_ms,
                "sram_kib": e.sram_kib, "flash_kib": e.flash_kib, "npu_ops": e.npu_ops, "cpu_ops": e.cpu_ops,
                "cpu_fallback": list(e.cpu_fallback), "fits_budget": _fits(e, target), "how": e.how}
            print(f"  {r['student']} on {name}: {e.inference_time_ms:.4f} ms, {e.cycles_total:,} cycles, SRAM "
                  f"{e.sram_kib:.1f} KiB, flash {e.flash_kib:.1f} KiB, {e.npu_ops}/{e.npu_ops + e.cpu_ops} on NPU",
                  flush=True)


def _fits(e: Any, target: Any) -> bool:
    b = target.budget
    return (not e.cpu_ops and e.inference_time_ms <= (b.p90_latency_ms or float("inf"))
            and e.sram_kib <= (b.sram_kib or float("inf")) and e.flash_kib <= (b.flash_kib or float("inf")))


def a72_figures(rows: list[dict[str, Any]]) -> str | None:
    """Cortex-A72 estimates for the same files; returns why they are missing (None when present)."""
    try:
        from edgekd.backends.arm import bench_arm_many

        target = load_target(A72_TARGET)
        ests = bench_arm_many([(r["path"], None, "int8") for r in rows], target)
    except (ImportError, EdgeKDError) as e:
        return f"{type(e).__name__}: {e}"
    commit = _git("log", "-1", "--format=%h", "--", "edgekd/emu", "edgekd/backends/arm.py")
    dirty = _git("status", "--porcelain", "--", "edgekd/emu", "edgekd/backends/arm.py")
    for r, e in zip(rows, ests):
        r["a72"] = {"estimator_commit": commit + (" + uncommitted changes" if dirty else ""), "ms": e.ms, "low_ms": e.low_ms, "high_ms": e.high_ms, "instructions": e.instructions,
                    "threads": e.threads, "runtime": e.runtime, "how": e.how}
        for n in r["npu"].values():
            n["ratio_to_a72"] = n["time_ms"] / e.ms
        print(f"  {r['student']} on Cortex-A72 (estimated): {e.ms:.4f} ms [{e.low_ms:.4f}-{e.high_ms:.4f}]",
              flush=True)
    return None


def _git(*args: str) -> str:
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def summary(rows: list[dict[str, Any]], missing_a72: str | None, epochs: int) -> str:
    parts = []
    for r in rows:
        npu = "; ".join(f"{t.removeprefix('ethos-')} {n['time_ms']:.3f} ms/{n['cycles_total'] / 1e3:.1f}k cyc/"
                        f"SRAM {n['sram_kib']:.0f} KiB/flash {n['flash_kib']:.0f} KiB"
                        + (f"/{n['ratio_to_a72']:.2f}x A72" if "ratio_to_a72" in n else "")
                        for t, n in r["npu"].items())
        a72 = f", A72 {r['a72']['ms']:.3f} ms" if "a72" in r else ""
        parts.append(f"{r['student']} int8 acc {r['accuracy_int8_litert']:.4f}{a72}: {npu}")
    tail = ("NPU/A72 ratio: NOT MEASURED (" + missing_a72[:160] + ")") if missing_a72 else \
        "ratio = NPU time / Cortex-A72 time (raspberrypi profile, arm-emu estimate)"
    return (f"Fashion-MNIST default ladder, {epochs} epoch(s) KD each, Vela estimates (all operators on the NPU "
            f"unless noted): " + " | ".join(parts) + f". {tail}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="keep at most N training samples")
    ap.add_argument("--quick", action="store_true", help="smoke run, not recorded: --limit 3000, 1 epoch, 2 sizes")
    ap.add_argument("--no-a72", action="store_true", help="skip the Cortex-A72 estimates")
    args = ap.parse_args()
    if args.quick:
        args.limit, args.epochs = args.limit or 3000, 1
    t0 = time.perf_counter()
    data = load_dataset("fashion-mnist", seed=0, limit=args.limit)
    with tempfile.TemporaryDirectory(prefix="edgekd-npu-bench-") as tmp:
        rows = students(args, data, Path(tmp))
        npu_figures(rows)
        missing = "skipped (--no-a72)" if args.no_a72 else a72_figures(rows)
    for r in rows:
        r.pop("path")
    result = {"data": {"spec": data.spec, "train": len(data.x_train), "test": len(data.x_test)},
              "epochs": args.epochs, "targets": {n: load_target(n).source for n in NPU_TARGETS},
              "a72_target": A72_TARGET, "a72_missing": missing, "students": rows,
              "wall_s": round(time.perf_counter() - t0, 1)}
    text = summary(rows, missing, args.epochs)
    print(text)
    if args.quick:
        print("(--quick: not recorded)")
        return
    cmd = "python benchmarks/npu.py" + (f" --epochs {args.epochs}" if args.epochs != 2 else "") + \
        (f" --limit {args.limit}" if args.limit else "") + (" --no-a72" if args.no_a72 else "")
    print(record("npu", result, text, cmd))


if __name__ == "__main__":
    main()
