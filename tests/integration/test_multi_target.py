"""Several targets in one build: each student trained once, judged on every device, a choice per device equal to
what a single-target build picks, and one comparison report beside the per-target run directories."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import EDGEKD

TARGETS = ("raspberrypi", "android-arm64", "ethos-u55-128")


def _build(tmp: Path, targets: tuple[str, ...], out: str) -> subprocess.CompletedProcess:
    args = [*EDGEKD, "build", *[a for t in targets for a in ("--target", t)], "--data", "digits", "--size", "0.5x1",
            "--size", "1x1", "--epochs", "3", "--bench-runs", "5", "--no-int8-search", "--out", str(tmp / out),
            "--cache-dir", str(tmp / "cache")]
    return subprocess.run(args, capture_output=True, text=True, timeout=1500, env={**os.environ})


def test_three_devices_train_each_student_once_and_choose_as_single_builds_do(tmp_path):
    r = _build(tmp_path, TARGETS, "multi")
    assert r.returncode in (0, 3), r.stderr[-3000:]
    out = tmp_path / "multi"
    cmp = json.loads((out / "comparison.json").read_text())
    assert [t["target"] for t in cmp["targets"]] == list(TARGETS)
    reports = {t: json.loads((out / t / "report.json").read_text()) for t in TARGETS}
    # each student trained once: distill ran in one target's build, was copied in the others
    trained = [s for t in TARGETS for s in reports[t]["stages"]["ran"] if s.endswith("/distill")]
    students = {c["student"] for t in TARGETS for c in reports[t]["candidates"]}
    assert sorted(trained) == sorted(f"{s}/distill" for s in students), trained
    assert r.stderr.count("epoch 1/3") == len(students)
    assert len(cmp["students_trained"]) == len(students)
    # every device judged every candidate built for it; the choice per device is in the comparison
    for t in TARGETS:
        assert cmp["targets"][TARGETS.index(t)]["selected"] == reports[t]["selected"]
        for c in reports[t]["candidates"]:
            row = next(x for x in cmp["candidates"] if x["name"] == c["name"])
            assert row["on"][t]["judged_ms"] == c["latency"]["judged_ms"] and row["on"][t]["source"]
    md = (out / "comparison.md").read_text()
    assert all(t in md for t in TARGETS) and "how it was obtained" in md.lower()
    assert (out / "comparison.html").read_text().startswith("<!doctype html>")
    # the same choices as three single-target builds
    for t in TARGETS:
        single = _build(tmp_path, (t,), f"single-{t}")
        assert single.returncode in (0, 3), single.stderr[-3000:]
        assert "epoch 1/3" not in single.stderr  # the students come from the shared store
        assert json.loads((tmp_path / f"single-{t}" / "report.json").read_text())["selected"] == reports[t]["selected"]


def test_a_board_with_several_targets_is_refused_before_any_work(tmp_path):
    r = subprocess.run([*EDGEKD, "build", "--target", "raspberrypi", "--target", "android-arm64", "--device",
                        "ssh://pi@127.0.0.1", "--out", str(tmp_path / "o")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "one board" in r.stderr
    assert not (tmp_path / "o").exists()


def test_an_unknown_second_target_is_refused_before_any_work(tmp_path):
    r = subprocess.run([*EDGEKD, "build", "--target", "raspberrypi", "--target", "raspberry-pie", "--out",
                        str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "raspberry-pie" in r.stderr and not (tmp_path / "o").exists()
