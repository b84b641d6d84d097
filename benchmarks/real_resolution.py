"""Real-resolution photos: the inverted-residual ladder at two input resolutions, and a 50,000-image folder's memory.

    .venv/bin/python benchmarks/real_resolution.py [--part ladder|memory|both] [--work DIR]

Part ``ladder`` (a 96x96 RGB scenario): a made-up photo folder (``edgekd.data.synthetic_images``: 10 classes,
one shape or texture each, random colours on noise, JPEG/PNG/BMP/WebP of 96..200 px, grey and RGBA files among
them; 240 train + 60 test photos per class) is built for the Raspberry Pi 4 with
``--image-size 96 --family mobilenetv2 --resolution 64 --resolution 96`` and three widths, the teacher being
edgekd's built-in one trained on first use. Per candidate: int8 accuracy, MACs, int8 size, estimated Pi 4
latency (emulated instruction counts), epoch time.

Part ``memory``: a 50,000-photo folder (5,000 per class, 96..128 px JPEGs) built at ``--image-size 96`` with one
mobilenetv2 candidate for one epoch, a small ONNX teacher (trained here in plain PyTorch on 2,000 of the photos,
ImageNet-normalised at 96 px: ``--teacher-input imagenet,size=96``). Recorded: the build process's peak RSS
(its ``VmHWM``, sampled until it exits; ``wait4``'s ``ru_maxrss`` beside it, which also counts what the process
inherited at fork+exec and its children), the decode time, the epoch time, the decode-cache size, and a second
build's data time (decode cache read back). Goal: under 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EDGEKD = str(ROOT / ".venv" / "bin" / "edgekd")


def _run(args: list[str], log: Path) -> tuple[int, float, int, int]:
    """(exit code, wall seconds, the build process's peak RSS, the largest peak RSS in its process tree), bytes.

    The build's own peak is its ``VmHWM``, read every 50 ms until it exits (``ru_maxrss`` would also count what
    it inherited from this script at fork+exec, and its children); the tree's comes from ``wait4``."""
    import threading

    t0 = time.perf_counter()
    peak = [0]
    with open(log, "w") as f:
        proc = subprocess.Popen([EDGEKD, *args], stdout=f, stderr=subprocess.STDOUT)

        def watch() -> None:
            while True:
                try:
                    with open(f"/proc/{proc.pid}/status") as st:
                        for line in st:
                            if line.startswith("VmHWM:"):
                                peak[0] = max(peak[0], int(line.split()[1]) * 1024)
                except OSError:
                    return
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    return os.waitstatus_to_exitcode(status), wall, peak[0], usage.ru_maxrss * 1024


def _make(root: Path, **kw) -> float:
    from edgekd.data.synthetic_images import make_image_folder

    t0 = time.perf_counter()
    if not root.exists():
        make_image_folder(root, **kw)
    return time.perf_counter() - t0


def ladder(work: Path) -> dict:
    root = work / "photos96"
    made = _make(root, classes=10, split={"train": 240, "test": 60}, min_side=96, max_side=200, seed=1)
    out, cache = work / "run-ladder", work / "cache-ladder"
    shutil.rmtree(out, ignore_errors=True)
    args = ["build", "--target", "raspberrypi", "--data", f"folder:{root}", "--image-size", "96",
            "--family", "mobilenetv2", "--resolution", "64", "--resolution", "96", "--size", "0.35x1",
            "--size", "0.5x1", "--size", "1x1", "--max-candidates", "6", "--time-budget", "3600", "--epochs", "8",
            "--out", str(out), "--cache-dir", str(cache)]
    code, wall, rss, _tree = _run(args, work / "ladder.log")
    if code not in (0, 3):
        sys.exit(f"ladder build failed ({code}); see {work / 'ladder.log'}")
    report = json.loads((out / "report.json").read_text())
    rows = []
    for c in report["candidates"]:
        ckpt = json.loads((out / "candidates" / c["name"].split("@")[0] / "student.json").read_text())
        hist = ckpt["config"]["history"]
        rows.append({"name": c["name"], "resolution": ckpt["config"]["student"]["input_shape"][1],
                     "accuracy_fp32": c["accuracy_fp32"], "accuracy_int8": c["accuracy_int8"], "macs": c["macs"],
                     "int8_size_mb": c["model_size_mb"], "pi4_estimate_ms": c["latency"]["judged_ms"],
                     "pi4_band_ms": c["latency"].get("band_ms"), "latency_kind": c["latency"]["kind"],
                     "epochs": len(hist), "epoch_s": [round(h["seconds"], 1) for h in hist]})
    plan = report.get("search", {}).get("considered", [])
    return {"photos": 3000, "generate_s": made, "build_exit": code, "build_s": wall, "build_peak_rss_mb": rss / 2**20,
            "teacher_accuracy": report["teacher"]["accuracy"], "selected": report.get("selected"),
            "stage_seconds": json.loads((out / "manifest.json").read_text())["stage_seconds"],
            "candidates": rows, "plan": plan}


def _teacher(root: Path, path: Path, n: int = 2000) -> float:
    """A small CNN trained in plain PyTorch on ``n`` of the photos at 96 px (ImageNet-normalised), as ONNX."""
    import numpy as np
    import torch

    from edgekd.preprocess import IMAGENET_MEAN, IMAGENET_STD
    from edgekd.smoke.image_io import decode, to_input

    classes = sorted(p.name for p in root.iterdir())
    files = [(f, k) for k, c in enumerate(classes) for f in sorted((root / c).iterdir())[: n // len(classes)]]
    x = to_input(np.stack([decode(f, 96, 3) for f, _ in files]), IMAGENET_MEAN, IMAGENET_STD)
    y = torch.tensor([k for _, k in files])
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, 2, 1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
                              torch.nn.Conv2d(16, 32, 3, 2, 1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
                              torch.nn.Conv2d(32, 64, 3, 2, 1), torch.nn.BatchNorm2d(64), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, len(classes)))
    opt = torch.optim.AdamW(net.parameters(), 3e-3)
    xt = torch.from_numpy(x)
    for _epoch in range(8):
        for idx in torch.randperm(len(xt)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), y[idx]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = float((net(xt).argmax(1) == y).float().mean())
    torch.onnx.export(net, torch.zeros(1, 3, 96, 96), str(path), input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, dynamo=False)
    return acc


def memory(work: Path) -> dict:
    root = work / "photos50k"
    made = _make(root, classes=10, per_class=5000, min_side=96, max_side=128, mixed=False, seed=2)
    teacher = work / "teacher96.onnx"
    train_acc = _teacher(root, teacher) if not teacher.exists() else None
    out, cache = work / "run-50k", work / "cache-50k"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    args = ["build", "--target", "raspberrypi", "--data", f"folder:{root}", "--image-size", "96",
            "--family", "mobilenetv2", "--size", "0.35x1", "--epochs", "1", "--time-budget", "36000",
            "--teacher", str(teacher), "--teacher-input", "imagenet,size=96", "--out", str(out),
            "--cache-dir", str(cache)]
    code, wall, rss, tree = _run(args, work / "memory.log")
    if code not in (0, 3):
        sys.exit(f"50k build failed ({code}); see {work / 'memory.log'}")
    manifest = json.loads((out / "manifest.json").read_text())
    report = json.loads((out / "report.json").read_text())
    name = report["candidates"][0]["name"].split("@")[0]
    hist = json.loads((out / "candidates" / name / "student.json").read_text())["config"]["history"]
    log = (work / "memory.log").read_text()
    decode_line = next((ln for ln in log.splitlines() if "decoded 50000 images in" in ln), "")
    cache_bytes = sum(p.stat().st_size for p in (cache / "images").rglob("*") if p.is_file())
    code2, wall2, rss2, _ = _run(args, work / "memory2.log")  # everything reused: data read back from the cache
    manifest2 = json.loads((out / "manifest.json").read_text())
    return {"photos": 50000, "generate_s": made, "teacher_train_accuracy": train_acc, "build_exit": code,
            "build_s": wall, "peak_rss_mb": rss / 2**20, "goal_mb": 2048, "under_goal": rss < 2 * 2**30,
            "largest_process_in_tree_peak_rss_mb": tree / 2**20,
            "decode": decode_line.strip(), "decode_cache_mb": cache_bytes / 2**20,
            "train_samples": report["data"]["train"], "epoch_s": [round(h["seconds"], 1) for h in hist],
            "stage_seconds": manifest["stage_seconds"], "accuracy_int8": report["candidates"][0]["accuracy_int8"],
            "teacher_accuracy": report["teacher"]["accuracy"],
            "second_build": {"exit": code2, "wall_s": wall2, "peak_rss_mb": rss2 / 2**20,
                             "data_s": manifest2["stage_seconds"].get("data")}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["ladder", "memory", "both"], default="both")
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgekd-real-resolution"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    cmd = f".venv/bin/python benchmarks/real_resolution.py --part {args.part}"
    if args.part in ("memory", "both"):
        m = memory(args.work)
        record("real_resolution_memory", m,
               f"a build on a 50,000-photo folder at 96 px (one mobilenetv2_w0.35 candidate, 1 epoch, ONNX teacher "
               f"with ImageNet normalisation): peak RSS {m['peak_rss_mb']:.0f} MB (goal < 2048), epoch "
               f"{m['epoch_s']} s on {m['train_samples']} photos, {m['decode']}; decode cache "
               f"{m['decode_cache_mb']:.0f} MB; a second build read it back (data stage "
               f"{m['second_build']['data_s']:.1f} s)", cmd.replace(args.part, "memory"))
        print(json.dumps(m, indent=2))
    if args.part in ("ladder", "both"):
        r = ladder(args.work)
        rows = "; ".join(f"{c['name']} r{c['resolution']} int8 {c['accuracy_int8']:.3f} {c['macs'] / 1e6:.1f} M MACs "
                         f"{c['int8_size_mb']:.2f} MB Pi 4 ~{c['pi4_estimate_ms']:.2f} ms" for c in r["candidates"])
        record("real_resolution_ladder", r,
               f"96x96 RGB photos (10 classes, 2400 train), mobilenetv2 at 64 and 96 px, teacher "
               f"{r['teacher_accuracy']:.3f}: {rows}; chosen {r['selected']}", cmd.replace(args.part, "ladder"))
        print(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
