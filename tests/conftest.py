"""Shared fixtures: tiny data and models so every stage runs on CPU in seconds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
EDGEKD = [str(REPO / ".venv" / "bin" / "edgekd")] if (REPO / ".venv/bin/edgekd").exists() else [
    sys.executable, "-m", "edgekd"]


@pytest.fixture(autouse=True)
def _environment_restored():
    """A test that runs the CLI in-process (``main([...])``) changes os.environ (``--debug`` sets EDGEKD_DEBUG,
    the quiet console sets TF_CPP_MIN_LOG_LEVEL); later tests' subprocesses must not inherit that."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def digits():
    from edgekd.data import load_dataset

    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def blobs_npz(tmp_path_factory) -> Path:
    """A small, learnable 3-class image set (1×8×8) saved as npz."""
    rng = np.random.default_rng(0)
    n, classes = 300, 3
    y = rng.integers(0, classes, n)
    x = rng.normal(0.2, 0.05, (n, 1, 8, 8)).astype(np.float32)
    for k in range(classes):
        x[y == k, 0, k * 2:k * 2 + 3, :] += 0.6
    path = tmp_path_factory.mktemp("npz") / "blobs.npz"
    np.savez(path, x=np.clip(x, 0, 1), y=y)
    return path


@pytest.fixture
def cli_env(tmp_path) -> dict[str, str]:
    """Environment for CLI subprocesses: a private cache dir."""
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg-cache")
    return env


@pytest.fixture(scope="session")
def tiny_student(digits):
    """convnet w0.5 d1 trained for 30 Adam steps on 512 digits: real, confident logits in seconds."""
    import torch

    from edgekd.models.students import StudentSpec, build_student

    torch.manual_seed(0)
    model = build_student(StudentSpec("convnet", 0.5, 1, digits.input_shape, digits.num_classes))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    xt, yt = torch.from_numpy(digits.x_train[:512]), torch.from_numpy(digits.y_train[:512]).long()
    for _ in range(30):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    return model.eval()
