"""Real bad inputs for the catalogue (test_bad_inputs.py): broken model files of every format, bad data sets,
bad target profiles, a finished tiny run and an older edgekd's run directory. Built once per test module."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tests.conftest import EDGEKD

BOX = """
description = "host-class board for the bad-input catalogue (onnxruntime only)"
arch = "x86_64"
core = "host"
clock_ghz = 2.0
cores = 2
threads = 1
memory_mb = 1024
runtimes = ["onnxruntime"]
precisions = ["int8", "fp32"]
emulation = "none"
[budget]
p90_latency_ms = 50
model_size_mb = 4.0
min_accuracy = 0.05
"""

# one bad profile per directory (each named box.toml): what is wrong -> TOML text
BAD_TARGETS = {
    "syntax": BOX.replace('arch = "x86_64"', 'arch = "x86_64'),
    "threads_over_cores": BOX.replace("threads = 1", "threads = 8"),
    "vela_without_npu": BOX.replace('emulation = "none"', 'emulation = "vela"'),
    "wrong_type": BOX.replace("cores = 2", 'cores = "two"'),
    "unknown_key": BOX.replace("[budget]", 'turbo = true\n[budget]'),
    "negative_budget": BOX.replace("p90_latency_ms = 50", "p90_latency_ms = -5"),
    "accuracy_over_1": BOX.replace("min_accuracy = 0.05", "min_accuracy = 85"),
    "impossible_latency": BOX.replace("p90_latency_ms = 50", "p90_latency_ms = 0.000001"),
    "impossible_accuracy": BOX.replace("min_accuracy = 0.05", "min_accuracy = 0.9999"),
}


class Net(torch.nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, classes)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


@dataclass
class Bad:
    root: Path
    cache: Path  # shared edgekd cache (teacher trained once)
    targets: Path  # box.toml
    run: Path  # a finished tiny build into targets/box
    old_run: Path  # the same run as an older edgekd would have left it

    def f(self, name: str) -> Path:
        return self.root / "files" / name

    def target_dir(self, kind: str) -> Path:
        return self.root / "targets_bad" / kind


def _cut(src: Path, dst: Path, keep: float = 0.5) -> Path:
    dst.write_bytes(src.read_bytes()[: int(src.stat().st_size * keep)])
    return dst


def _flip(src: Path, dst: Path, start: int, n: int = 100) -> Path:
    b = bytearray(src.read_bytes())
    for i in range(start, min(start + n, len(b))):
        b[i] ^= 0xFF
    dst.write_bytes(bytes(b))
    return dst


def _model_files(d: Path) -> None:
    torch.manual_seed(0)
    net, x = Net().eval(), torch.zeros(2, 1, 8, 8)
    torch.jit.save(torch.jit.trace(net, x), d / "ts.pt")
    torch.jit.save(torch.jit.trace(Net(3).eval(), x), d / "three_classes.pt")
    torch.export.save(torch.export.export(net, (x,)), d / "t.pt2")
    for name, model, shape, axes in (("t.onnx", net, (1, 1, 8, 8), {0: "n"}),
                                     ("dyn.onnx", net, (1, 1, 8, 8), {0: "n", 2: "h", 3: "w"}),
                                     ("t28.onnx", torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)),
                                      (1, 1, 28, 28), {0: "n"})):
        torch.onnx.export(model.eval(), torch.zeros(shape), d / name, dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": axes})
    from edgekd.export.tflite import export_tflite

    export_tflite(net, np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32), d / "t.tflite",
                  converter="litert-torch")
    torch.save(net, d / "whole_module.pt")  # a fully pickled nn.Module
    for name in ("ts.pt", "t.pt2", "t.onnx", "t.tflite"):
        stem, suffix = name.rsplit(".", 1)
        _cut(d / name, d / f"cut_{stem}.{suffix}")
    _flip(d / "ts.pt", d / "flipped_ts.pt", 1500)
    shutil.copy(d / "t.onnx", d / "onnx_named.pt")
    shutil.copy(d / "ts.pt", d / "torchscript_named.pt2")
    shutil.copy(d / "t.tflite", d / "tflite_named.onnx")
    shutil.copy(d / "t.onnx", d / "onnx_named.tflite")
    (d / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(64))


def _data_files(d: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    x = rng.random((90, 1, 8, 8)).astype(np.float32)
    y = np.arange(90) % 3
    np.savez(d / "empty.npz", x=np.zeros((0, 1, 8, 8), np.float32), y=np.zeros(0, np.int64))
    np.savez(d / "single_class.npz", x=x, y=np.zeros(90, np.int64))
    nan = x.copy()
    nan[5, 0, 2, 2] = np.nan
    np.savez(d / "nan.npz", x=nan, y=y)
    np.savez(d / "inf_test.npz", x=x, y=y, x_test=np.full((9, 1, 8, 8), np.inf, np.float32), y_test=np.arange(9) % 3)
    np.savez(d / "label_out_of_range.npz", x=x, y=np.where(np.arange(90) == 7, 9, y),
             class_names=np.array(["a", "b", "c"]))
    np.savez(d / "label_negative.npz", x=x, y=np.where(np.arange(90) == 7, -1, y))
    np.savez(d / "label_huge.npz", x=x, y=np.where(np.arange(90) == 7, 10 ** 9, y))  # a raw id, not an index
    np.savez(d / "images16.npz", x=rng.random((90, 1, 16, 16)).astype(np.float32), y=y)
    for k in range(2):
        for i in range(6):
            p = d / "mixed_sizes" / f"c{k}" / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            s = 12 if (k, i) == (1, 3) else 8
            Image.fromarray((rng.random((s, s)) * 255).astype(np.uint8)).save(p)
    for k in range(2):  # a download cut short: c1/2.jpg
        for i in range(4):
            p = d / "truncated" / f"c{k}" / f"{i}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray((rng.random((12, 16, 3)) * 255).astype(np.uint8)).save(p, quality=90)
    cut = d / "truncated" / "c1" / "2.jpg"
    cut.write_bytes(cut.read_bytes()[: len(cut.read_bytes()) // 2])
    for k, payload in enumerate((b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 20)):
        p = d / "not_images" / f"c{k}" / "a.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(payload)


def _older(run: Path, old: Path) -> None:
    """What an older edgekd left: report_version 0, a manifest without artifact hashes, stamps of format 0."""
    shutil.copytree(run, old)
    rep = json.loads((old / "report.json").read_text())
    rep["report_version"] = 0
    (old / "report.json").write_text(json.dumps(rep))
    (old / "manifest.json").write_text(json.dumps({"edgekd": "0.0.9", "stage_seconds": {}, "config": {}}))
    for stamp in old.rglob(".stages/*.json"):
        s = json.loads(stamp.read_text())
        s["format"] = 0
        stamp.write_text(json.dumps(s))


def build_bad(root: Path) -> Bad:
    files = root / "files"
    files.mkdir(parents=True)
    _model_files(files)
    _data_files(files)
    targets = root / "targets"
    targets.mkdir()
    (targets / "box.toml").write_text(BOX)
    for kind, text in BAD_TARGETS.items():
        (root / "targets_bad" / kind).mkdir(parents=True)
        (root / "targets_bad" / kind / "box.toml").write_text(text)
    cache, run = root / "cache", root / "run"
    r = subprocess.run([*EDGEKD, "build", "--target", "box", "--targets-dir", str(targets), "--data", "digits",
                        "--size", "0.25x1", "--epochs", "1", "--bench-runs", "5", "--no-search", "--no-int8-search",
                        "--cache-dir", str(cache), "--out", str(run)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    student = run / "candidates" / "convnet_w0.25_d1"
    record = json.loads((student / "student.json").read_text())
    for name, weights in (("student", (student / "student.pt").read_bytes()),
                          ("student_junk", b"PK\x03\x04" + os.urandom(300))):
        (files / name).mkdir()
        (files / name / "student.pt").write_bytes(weights)
        (files / name / "student.json").write_text(json.dumps({**record, "path": "student.pt"}))
    _older(run, root / "old_run")
    return Bad(root, cache, targets, run, root / "old_run")
