"""Training throughput on this machine: what the platform offers, kept only where it measurably helps.

    .venv/bin/python benchmarks/train_throughput.py [--steps 40] [--seeds 3] [--epochs 2]

1. Epoch time (54,000 Fashion-MNIST samples, batch 128: the default build's) of the trainer's step — AdamW, the KD
   loss on softened logits + cross-entropy, gradient clipping — for the default ladder's students that builds train,
   timed over ``--steps`` steps after 3 warm-up steps, in each variant: the contiguous (NCHW) layout, channels-last
   (NHWC), ``torch.compile`` (its compile time reported separately), and bf16 autocast when the CPU has bf16
   instructions (avx512_bf16 / AMX; this one's flags are recorded). Ratios are within this one run.
2. Accuracy: the real distillation (``edgekd.stages.distill_student``, the built-in teacher's outputs) of
   convnet_w1_d2 — the student channels-last sped up most — for ``--epochs`` epochs, ``--seeds`` seeds, contiguous
   vs channels-last: test accuracy mean and spread, and the measured epoch times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

SIZES = ((1.0, 1), (1.0, 2), (2.0, 1), (2.0, 2), (4.0, 1))
TRAIN, BATCH = 54000, 128


def _cpu_flags() -> set[str]:
    try:
        return set(next(l for l in open("/proc/cpuinfo") if l.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return set()


def _epoch_seconds(w: float, d: int, variant: str, steps: int) -> tuple[float, float]:
    import torch

    from edgekd.models.students import StudentSpec, build_student

    torch.manual_seed(0)
    model = build_student(StudentSpec("convnet", w, d, (1, 28, 28), 10))
    x, y, t = torch.rand(BATCH, 1, 28, 28), torch.randint(0, 10, (BATCH,)), torch.randn(BATCH, 10)
    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    run = torch.compile(model) if variant == "compile" else model
    opt = torch.optim.AdamW(model.parameters(), 3e-3)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16"):
            out = run(x)
            kd = torch.nn.functional.kl_div(out.float().div(2).log_softmax(1), t.div(2).softmax(1),
                                            reduction="batchmean")
            loss = 0.7 * 4 * kd + 0.3 * torch.nn.functional.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()

    t0 = time.perf_counter()
    for _ in range(3):
        step()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps * TRAIN / BATCH, warm


def _accuracy(seeds: int, epochs: int) -> dict:
    from edgekd.build_config import BuildConfig
    from edgekd.cache import default_cache_dir
    from edgekd.distill.config import DistillConfig
    from edgekd.models.students import StudentSpec
    from edgekd.prepare import build_inputs
    from edgekd.stages import distill_student
    import tempfile

    config = BuildConfig(distill=DistillConfig(epochs=epochs))
    data, loaded, _info, logits = build_inputs(config, default_cache_dir(), lambda _m: None)
    spec = StudentSpec("convnet", 1.0, 2, data.input_shape, data.num_classes)
    out = {}
    for layout in ("contiguous", "channels_last"):
        accs, epoch_s = [], []
        for seed in range(seeds):
            dc = replace(config.distill, seed=seed, channels_last=layout == "channels_last", patience=epochs)
            with tempfile.TemporaryDirectory() as d:
                ckpt = distill_student(data, spec, dc, d, teacher=loaded.teacher, teacher_logits=logits)
            accs.append(ckpt.accuracy_fp32)
            epoch_s += [h["seconds"] for h in ckpt.config["history"]]
            print(f"  {layout} seed {seed}: test acc {ckpt.accuracy_fp32:.4f}, epochs "
                  f"{[round(h['seconds'], 1) for h in ckpt.config['history']]}", flush=True)
        out[layout] = {"accuracies": accs, "mean": statistics.mean(accs),
                       "spread": max(accs) - min(accs), "epoch_seconds_median": statistics.median(epoch_s)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    import torch

    flags = _cpu_flags()
    bf16 = bool(flags & {"avx512_bf16", "amx_bf16"})
    variants = ["contiguous", "channels_last", "compile"] + (["bf16"] if bf16 else [])
    throughput = {}
    for w, d in SIZES:
        name = f"convnet_w{w:g}_d{d}"
        throughput[name] = {}
        for v in variants:
            epoch, warm = _epoch_seconds(w, d, v, args.steps)
            throughput[name][v] = {"epoch_s": epoch, "warmup_s": warm}
            print(f"{name} {v}: {epoch:.1f} s/epoch (warm-up {warm:.1f} s)", flush=True)
    acc = _accuracy(args.seeds, args.epochs)
    ratios = {n: {v: t["contiguous"]["epoch_s"] / t[v]["epoch_s"] for v in variants} for n, t in throughput.items()}
    c, l = acc["contiguous"], acc["channels_last"]
    summary = ("epoch-time speed-up over the contiguous layout (same run, trainer's step, batch 128, "
               f"{torch.get_num_threads()} threads): "
               + "; ".join(f"{n} " + ", ".join(f"{v} {r:.2f}x" for v, r in rs.items() if v != "contiguous")
                           for n, rs in ratios.items())
               + f" (compile warm-up {max(t['compile']['warmup_s'] for t in throughput.values()):.0f} s at most)"
               + ("" if bf16 else "; bf16 autocast not measured: this CPU has no avx512_bf16/AMX")
               + f". convnet_w1_d2, {args.epochs} epochs of real distillation, seeds 0-{args.seeds - 1}: contiguous "
               f"{c['mean']:.4f} (spread {c['spread']:.4f}, {c['epoch_seconds_median']:.1f} s/epoch), channels-last "
               f"{l['mean']:.4f} (spread {l['spread']:.4f}, {l['epoch_seconds_median']:.1f} s/epoch)")
    record("train_throughput", {"threads": torch.get_num_threads(), "cpu_bf16": bf16, "throughput": throughput,
                                "ratios": ratios, "accuracy": acc}, summary,
           f"python benchmarks/train_throughput.py --steps {args.steps} --seeds {args.seeds} --epochs {args.epochs}")
    print(summary)


if __name__ == "__main__":
    main()
