"""Does distillation help? Teacher, student alone, student + KD, student + KD + hints on Fashion-MNIST.

    .venv/bin/python benchmarks/distill_quality.py [--epochs 5] [--seeds 0 1 2] [--width 1]

Same student architecture, same epochs, same data split (seed 0); the training seed (initialisation and
batch order) varies. Test accuracy mean ± std over the seeds. The teacher is edgekd's built-in one.
"KD" uses edgekd's default T and alpha; "KD (T=4, alpha=0.9)" is the classic setting, for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _results import record  # noqa: E402

from edgekd.cache import default_cache_dir  # noqa: E402
from edgekd.data import load_dataset  # noqa: E402
from edgekd.distill.cache import cached_teacher_logits  # noqa: E402
from edgekd.distill.config import DistillConfig  # noqa: E402
from edgekd.distill.trainer import evaluate, train  # noqa: E402
from edgekd.models.default_teacher import default_teacher  # noqa: E402
from edgekd.models.students import StudentSpec, build_student  # noqa: E402
from edgekd.stages import accuracy_of  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--temperature", type=float, default=DistillConfig().temperature)
    ap.add_argument("--alpha", type=float, default=DistillConfig().alpha)
    ap.add_argument("--hint", default="stage2:stage2")
    ap.add_argument("--hint-weight", type=float, default=1.0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = load_dataset("fashion-mnist", seed=0)
    teacher, info = default_teacher(data, default_cache_dir())
    z = cached_teacher_logits(teacher, "default:" + info.weights_sha256, data, default_cache_dir())
    teacher_acc = accuracy_of(teacher.logits(data.x_test), data.y_test)
    spec = StudentSpec("convnet", args.width, 1, data.input_shape, data.num_classes)
    base = dict(epochs=args.epochs, patience=args.epochs, temperature=args.temperature, alpha=args.alpha)
    methods = {
        "student alone": DistillConfig(loss="ce", alpha=0.0, **{k: v for k, v in base.items() if k != "alpha"}),
        "KD": DistillConfig(loss="hinton", **base),
        "KD (T=4, alpha=0.9)": DistillConfig(loss="hinton", **{**base, "temperature": 4.0, "alpha": 0.9}),
        "KD + hints": DistillConfig(loss="hinton", hints=(tuple(args.hint.split(":")),),
                                    hint_weight=args.hint_weight, **base),
    }
    results: dict[str, dict] = {}
    for name, cfg in methods.items():
        accs, secs = [], []
        for seed in args.seeds:
            from dataclasses import replace

            c = replace(cfg, seed=seed)
            torch.manual_seed(seed)
            t0 = time.perf_counter()
            res = train(build_student(spec), data, c, teacher_logits=z if c.uses_teacher else None,
                        teacher_module=teacher.module if c.hints else None)
            secs.append(time.perf_counter() - t0)
            accs.append(evaluate(res.model, data.x_test, data.y_test))
            print(f"{name:14s} seed {seed}: test acc {accs[-1]:.4f} ({secs[-1]:.0f}s)", flush=True)
        results[name] = {"test_accuracy": accs, "mean": statistics.mean(accs),
                         "std": statistics.stdev(accs) if len(accs) > 1 else 0.0, "train_seconds": secs,
                         "config": cfg.as_dict()}
    alone, kd = results["student alone"]["mean"], results["KD"]["mean"]
    gap = teacher_acc - alone
    for r in results.values():
        r["gap_recovered"] = (r["mean"] - alone) / gap if gap > 0 else None
    summary = (f"{spec.name}, {args.epochs} epochs, seeds {args.seeds}: teacher {teacher_acc:.4f}; "
               + "; ".join(f"{n} {r['mean']:.4f} ± {r['std']:.4f}" for n, r in results.items())
               + f" (KD {'above' if kd > alone else 'NOT above'} student alone by {(kd - alone) * 100:+.2f} pts)")
    cmd = "python benchmarks/distill_quality.py " + " ".join(sys.argv[1:])
    record("distill_quality", {"teacher_accuracy": teacher_acc, "teacher": info.origin, "student": spec.as_dict(),
                               "epochs": args.epochs, "seeds": args.seeds, "results": results}, summary, cmd.strip())
    print(summary)


if __name__ == "__main__":
    main()
