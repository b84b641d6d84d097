"""Students pruned from the teacher vs from random weights, on the built-in Fashion-MNIST teacher.

    .venv/bin/python benchmarks/seeded_students.py [--seeds 3] [--epochs 2] [--random-epochs 2 4]

The real distillation (``edgekd.stages.distill_student``, the default build's KD settings and the built-in teacher's
outputs) of convnet_w1_d2 -- the default ladder's student of the teacher's depth -- seeded from the teacher
(``--init teacher``, ``edgekd.distill.seeding``) for ``--epochs`` epochs, and from random weights for each of
``--random-epochs`` (4 was the default build's before seeding), ``--seeds`` seeds each (the seed orders the batches;
the pruning itself draws nothing). Per run: fp32 test accuracy, the int8 accuracy of onnxruntime's MinMax
per-channel model (the build's first int8 scheme), and the epoch times. Also the accuracy of the pruned student
before any training. One run, one machine: the wall times compare within it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402


def _int8_accuracy(ckpt, data) -> float:
    from edgekd.export.onnx import export_onnx
    from edgekd.export.parity import run_onnx
    from edgekd.quantize.ort_int8 import OrtInt8Config, quantize_onnx_int8
    from edgekd.stages import load_checkpoint

    model, _ = load_checkpoint(Path(ckpt.path).parent / "student.json")
    with tempfile.TemporaryDirectory() as d:
        fp32 = export_onnx(model.eval(), data.x_val[:8], Path(d) / "fp32.onnx")
        calib = data.calibration_samples(256, seed=0)
        quantize_onnx_int8(fp32, calib, Path(d) / "int8.onnx", OrtInt8Config(method="minmax", per_channel=True))
        return float((run_onnx(Path(d) / "int8.onnx", data.x_test).argmax(1) == data.y_test).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--random-epochs", type=int, nargs="+", default=[2, 4])
    args = ap.parse_args()
    import torch

    from edgekd.build_config import BuildConfig
    from edgekd.cache import default_cache_dir
    from edgekd.distill.seeding import seed_from_teacher
    from edgekd.distill.trainer import evaluate
    from edgekd.models.students import StudentSpec, build_student
    from edgekd.prepare import build_inputs
    from edgekd.stages import distill_student

    config = BuildConfig()
    data, loaded, info, logits = build_inputs(config, default_cache_dir(), lambda _m: None)
    spec = StudentSpec("convnet", 1.0, 2, data.input_shape, data.num_classes)
    pruned = build_student(spec)
    seeding = seed_from_teacher(pruned, loaded.teacher.module, data.x_train)
    untrained = evaluate(pruned.eval(), data.x_test, data.y_test)
    print(f"teacher {info.accuracy:.4f}; pruned, untrained: {untrained:.4f} ({seeding.detail})", flush=True)
    runs = [("seeded", "teacher", args.epochs)] + [("random", "random", e) for e in args.random_epochs]
    out = {}
    for label, init, epochs in runs:
        rows = []
        for seed in range(args.seeds):
            dc = replace(config.distill, seed=seed, epochs=epochs, patience=epochs, init=init)
            with tempfile.TemporaryDirectory() as d:
                ckpt = distill_student(data, spec, dc, d, teacher=loaded.teacher, teacher_logits=logits)
                int8 = _int8_accuracy(ckpt, data)
            secs = [h["seconds"] for h in ckpt.config["history"]]
            rows.append({"seed": seed, "fp32": ckpt.accuracy_fp32, "int8": int8, "epoch_seconds": secs,
                         "init": ckpt.init})
            print(f"  {label} {epochs} epochs seed {seed}: fp32 {ckpt.accuracy_fp32:.4f} int8 {int8:.4f} "
                  f"epochs {[round(s, 1) for s in secs]}", flush=True)
        key = f"{label}, {epochs} epochs"
        out[key] = {"runs": rows, "fp32_mean": statistics.mean(r["fp32"] for r in rows),
                    "int8_mean": statistics.mean(r["int8"] for r in rows),
                    "int8_min": min(r["int8"] for r in rows),
                    "int8_spread": max(r["int8"] for r in rows) - min(r["int8"] for r in rows),
                    "train_seconds_mean": statistics.mean(sum(r["epoch_seconds"]) for r in rows)}
    summary = (f"convnet_w1_d2 distilled from the built-in teacher ({info.accuracy:.4f}), seeds 0-{args.seeds - 1}, "
               f"{torch.get_num_threads()} threads: pruned from the teacher before training {untrained:.4f}; "
               + "; ".join(f"{k}: fp32 {v['fp32_mean']:.4f}, int8 {v['int8_mean']:.4f} (min {v['int8_min']:.4f}, "
                           f"spread {v['int8_spread']:.4f}), training {v['train_seconds_mean']:.0f} s"
                           for k, v in out.items()))
    record("seeded_students", {"teacher_accuracy": info.accuracy, "pruned_untrained_accuracy": untrained,
                               "seeding": seeding.detail, "threads": torch.get_num_threads(), "results": out}, summary,
           f"python benchmarks/seeded_students.py --seeds {args.seeds} --epochs {args.epochs} --random-epochs "
           + " ".join(str(e) for e in args.random_epochs))
    print(summary)


if __name__ == "__main__":
    main()
