"""A quiet console: a build for the default target shows edgekd's own lines only; --debug shows the libraries'
logs again (so the first check can fail)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.conftest import EDGEKD

THIRD_PARTY = [re.compile(p) for p in (
    r"^INFO: ", r"^WARNING: ", r"^[IWEF]\d{4} \d\d:\d\d:\d\d",  # LiteRT C++, glog-style (TensorFlow, torch)
    r"Failed to load ", r"oneDNN", r"absl", r"tensorflow/", r"(Deprecation|User|Future|Runtime)Warning",
    r"^Traceback")]


def _noise(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if any(p.search(ln) for p in THIRD_PARTY)]


@pytest.mark.parametrize("debug", [False, True], ids=["default", "debug"])
def test_a_build_for_the_default_target_prints_no_third_party_lines(tmp_path, debug):
    args = [*EDGEKD, *(["--debug"] if debug else []), "build", "--target", "raspberrypi", "--data", "digits",
            "--size", "0.25x1", "--epochs", "1", "--bench-runs", "5", "--no-int8-search", "--out",
            str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")]
    r = subprocess.run(args, capture_output=True, text=True, timeout=1200, env={**os.environ})
    assert r.returncode in (0, 3), r.stderr[-2000:]  # 3: the tiny student misses the Pi's accuracy budget
    assert "[1/1] convnet_w0.25_d1: distilling" in r.stderr  # the build ran: data, teacher, TFLite, emulation
    noise = _noise(r.stdout + r.stderr)
    if debug:
        assert noise, "with --debug the libraries' own log lines are shown"
    else:
        assert noise == [], noise
        logs = list((tmp_path / "run" / "candidates").glob("*/converters.log"))  # the converters' own output
        assert logs and all(p.read_text().startswith("==== ") for p in logs)
        assert "converters.log" in r.stderr
