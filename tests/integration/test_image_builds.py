"""`edgekd build` on a product team's inputs: a folder of photos, a teacher with its own preprocessing, the team's
own student architecture; through the real console script, onnxruntime, LiteRT and the smoke runner."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgekd.data.synthetic_images import make_image_folder, truncate
from tests.conftest import EDGEKD

BOARD = """
description = "Test board (Cortex-A72 class) for CI"
arch = "aarch64"
core = "cortex-a72"
clock_ghz = 1.5
cores = 4
threads = 1
memory_mb = 1024
runtimes = {runtimes}
precisions = ["int8", "fp32"]
emulation = "none"
[budget]
p90_latency_ms = 100
peak_memory_mb = 512
model_size_mb = 5.0
min_accuracy = 0.0
"""

TEAM_NETS = '''
import torch.nn as nn


def make_student(num_classes, width, depth, in_channels):
    """The team's own net: conv stages (depth of them), global pooling, linear."""
    c = max(4, int(8 * width))
    layers = [nn.Conv2d(in_channels, c, 3, 2, 1), nn.BatchNorm2d(c), nn.ReLU()]
    for _ in range(depth):
        layers += [nn.Conv2d(c, c, 3, 2, 1), nn.BatchNorm2d(c), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))
'''


def _run(args: list[str], env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*EDGEKD, *args], capture_output=True, text=True, timeout=timeout, env=env)


def _target(tmp_path: Path, runtimes: str) -> Path:
    tdir = tmp_path / "targets"
    tdir.mkdir(exist_ok=True)
    (tdir / "hostboard.toml").write_text(BOARD.format(runtimes=runtimes))
    return tdir


@pytest.mark.slow
def test_build_on_a_photo_folder_with_the_teams_student_to_a_smoke_bundle(tmp_path):
    """Mixed sizes, RGB and grey, PNG with alpha, BMP, WebP and a truncated JPEG, at --image-size 64, with a
    --student-arch factory at two input resolutions: the bad file is named, the build goes end to end to a smoke
    bundle whose runner makes its inputs from the raw photos, and a second build reads the decode cache."""
    root = make_image_folder(tmp_path / "photos", classes=3, per_class=14, min_side=50, max_side=140)
    bad = sorted((root / "square").glob("*.jpg"))[1]
    truncate(bad)
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "team_nets.py").write_text(TEAM_NETS)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "team")}
    tdir = _target(tmp_path, '["litert"]')
    common = ["build", "--target", "hostboard", "--targets-dir", str(tdir), "--data", f"folder:{root}",
              "--image-size", "64", "--cache-dir", str(tmp_path / "cache"), "--epochs", "2", "--bench-runs", "10",
              "--student-arch", "team_nets:make_student", "--size", "1x1"]

    r = _run([*common, "--out", str(tmp_path / "refused")], env)
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert str(bad) in last and "--skip-bad-images" in last
    assert not (tmp_path / "refused" / "report.json").exists()

    out = tmp_path / "run"
    r = _run([*common, "--skip-bad-images", "--resolution", "48", "--resolution", "64", "--out", str(out)], env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"skipped 1 unreadable image(s) (--skip-bad-images): {bad}" in r.stderr
    report = json.loads((out / "report.json").read_text())
    names = sorted(c["name"] for c in report["candidates"])
    assert names == ["make_student_w1_d1_r48@litert", "make_student_w1_d1_r64@litert"]
    assert report["data"]["preprocess"]["size"] == 64 and report["data"]["bad_images"] == 1
    assert "Input contract" in (out / "report.md").read_text()

    pick = report["selected"].split("@")[0]
    side = int(pick.rsplit("_r", 1)[1])
    student = json.loads((out / "candidates" / pick / "student.json").read_text())
    assert student["config"]["preprocess"]["size"] == side
    assert student["config"]["student"]["family"] == "team_nets:make_student"
    import onnx

    props = {p.key: p.value for p in onnx.load(str(out / "candidates" / pick / "model_fp32.onnx")).metadata_props}
    assert json.loads(props["edgekd.preprocess"])["size"] == side
    from edgekd.export.tflite_metadata import read_metadata

    tfl = read_metadata(out / "candidates" / pick / "model_int8.tflite")
    assert json.loads(tfl["edgekd.preprocess"]) == student["config"]["preprocess"]

    bundle = Path(report["smoke_bundle"])
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["preprocess"]["size"] == side and len(manifest["images"]) == 8
    assert (bundle / "image_io.py").is_file() and all((bundle / n).is_file() for n in manifest["images"])
    run = _run(["smoke", "run", str(bundle)], env)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads((bundle / "result.json").read_text())
    assert result["status"] == "PASS" and result["inputs"].startswith("made on this device from 8 raw images")
    assert result["input_max_difference"] == 0.0  # the board's decode gives the very bytes the host fed

    r2 = _run([*common, "--skip-bad-images", "--size", "0.5x1", "--out", str(tmp_path / "second")], env)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert "read from the decode cache" in r2.stderr and "decoding" not in r2.stderr


def _plain_inputs(paths: list[Path]) -> np.ndarray:
    """The usual ImageNet evaluation transform, written out with Pillow and numpy: resize the shorter side to 224,
    centre-crop 224, scale to [0, 1], normalise with ImageNet's mean and std; N x 3 x 224 x 224."""
    from PIL import Image

    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    out = []
    for p in paths:
        with Image.open(p) as im:
            im = im.convert("RGB")
            w, h = im.size
            size = (224, int(224 * h / w)) if w <= h else (int(224 * w / h), 224)
            im = im.resize(size, Image.BILINEAR)
            left, top = int(round((size[0] - 224) / 2.0)), int(round((size[1] - 224) / 2.0))
            arr = np.asarray(im.crop((left, top, left + 224, top + 224)), np.float32) / 255.0
        out.append(((arr - mean) / std).transpose(2, 0, 1))
    return np.stack(out)


@pytest.mark.slow
def test_a_teacher_with_imagenet_normalisation_outside_the_model_keeps_its_accuracy(tmp_path):
    """An ONNX teacher trained (here, in plain PyTorch) on ImageNet-normalised 224 px inputs: through edgekd with
    --teacher-input imagenet its test accuracy is exactly what plain PyTorch measures on the same files, while the
    students train at 64 px (with crop-flip: the teacher runs on the same crop of its own view)."""
    import torch

    root = make_image_folder(tmp_path / "photos", split={"train": 12, "test": 8}, mixed=False, min_side=120,
                             max_side=260, shapes=("hstripes", "vstripes", "checker"))
    classes = sorted(p.name for p in (root / "train").iterdir())
    files = {part: [(p, k) for k, c in enumerate(classes) for p in sorted((root / part / c).iterdir())]
             for part in ("train", "test")}
    x_tr = torch.from_numpy(_plain_inputs([p for p, _ in files["train"]]))
    y_tr = torch.tensor([k for _, k in files["train"]])
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Conv2d(3, 12, 5, 4, 2), torch.nn.ReLU(), torch.nn.Conv2d(12, 24, 3, 2, 1),
                                  torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                  torch.nn.Linear(24, 3))
    opt = torch.optim.Adam(teacher.parameters(), 1e-2)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(teacher(x_tr), y_tr).backward()
        opt.step()
    teacher.eval()
    with torch.no_grad():
        z = teacher(torch.from_numpy(_plain_inputs([p for p, _ in files["test"]])))
    plain = float((z.argmax(1).numpy() == np.array([k for _, k in files["test"]])).mean())
    assert plain >= 0.6  # a teacher worth distilling from (3 classes: chance is 1/3)
    onnx_path = tmp_path / "teacher.onnx"
    torch.onnx.export(teacher, torch.zeros(1, 3, 224, 224), str(onnx_path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)

    env = {**os.environ}
    tdir = _target(tmp_path, '["onnxruntime"]')
    common = ["build", "--target", "hostboard", "--targets-dir", str(tdir), "--data", f"folder:{root}",
              "--image-size", "64", "--cache-dir", str(tmp_path / "cache"), "--epochs", "2", "--bench-runs", "10",
              "--family", "test_convnet", "--size", "1x1", "--teacher", str(onnx_path)]
    r = _run([*common, "--out", str(tmp_path / "no-contract")], env)
    assert r.returncode == 2 and "(3, 224, 224)" in r.stderr and "(3, 64, 64)" in r.stderr, r.stderr[-2000:]
    assert "Fix: declare the teacher's input with --teacher-input" in r.stderr

    out = tmp_path / "run"
    r = _run([*common, "--teacher-input", "imagenet", "--augment", "crop-flip", "--out", str(out)], env)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["teacher"]["accuracy"] == plain
    assert report["data"]["teacher_input"]["size"] == 224
    assert report["data"]["teacher_input"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert report["data"]["preprocess"]["size"] == 64 and report["data"]["test"] == 24
    assert "teacher input: 224x224 RGB" in r.stderr
