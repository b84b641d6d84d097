"""Bad input through the CLI: one clear line on stderr, exit code 2, no traceback, nothing half-written."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch

from edgekd.cli import main
from tests.conftest import EDGEKD


def _run(capsys, args):
    rc = main(args)
    err = capsys.readouterr().err
    return rc, err


def _one_clear_line(err: str) -> str:
    lines = [l for l in err.strip().splitlines() if l.startswith("edgekd: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert "Fix:" in lines[0]
    return lines[0]


def _files(d):
    return sorted(p.name for p in d.rglob("*") if p.is_file()) if d.exists() else []


def test_unknown_target_lists_known_ones(capsys, tmp_path):
    rc, err = _run(capsys, ["build", "--target", "pi9000", "--out", str(tmp_path / "run")])
    assert rc == 2
    line = _one_clear_line(err)
    assert "unknown target 'pi9000'" in line and "raspberrypi" in line and "host" in line
    assert _files(tmp_path / "run") == []


@pytest.mark.parametrize("spec, match", [
    ("npz:/no/such/file.npz", "does not exist|not found|no such"),
    ("idx:/no/such/dir", "does not exist|not found|no such"),
    ("folder:/no/such/dir", "does not exist|not found|no such"),
    ("csv:/tmp/x.csv", "unknown data spec|valid"),
])
def test_missing_data_path(capsys, tmp_path, spec, match):
    rc, err = _run(capsys, ["distill", "--data", spec, "--loss", "ce", "--out", str(tmp_path / "o")])
    assert rc == 2
    import re

    assert re.search(match, _one_clear_line(err), re.I)
    assert _files(tmp_path / "o") == []


def test_malformed_data(capsys, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 definitely not an npz")
    rc, err = _run(capsys, ["distill", "--data", f"npz:{bad}", "--loss", "ce", "--out", str(tmp_path / "o")])
    assert rc == 2 and "bad.npz" in _one_clear_line(err)
    nan = tmp_path / "nan.npz"
    x = np.zeros((20, 4), np.float32)
    x[3, 1] = np.nan
    np.savez(nan, x=x, y=np.arange(20) % 2)
    rc, err = _run(capsys, ["distill", "--data", f"npz:{nan}", "--loss", "ce", "--out", str(tmp_path / "o")])
    assert rc == 2 and "NaN" in _one_clear_line(err)


def test_corrupt_and_truncated_teacher(capsys, tmp_path):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    good = tmp_path / "t.pt"
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 1, 8, 8)), good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:300])
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage" * 50)
    for teacher in (cut, junk):
        out = tmp_path / f"o-{teacher.stem}"
        rc, err = _run(capsys, ["distill", "--data", "digits", "--teacher", str(teacher), "--out", str(out),
                                "--epochs", "1"])
        assert rc == 2
        assert teacher.name in _one_clear_line(err)
        assert _files(out) == []


def test_teacher_student_class_mismatch(capsys, tmp_path):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    t = tmp_path / "three.pt"
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 1, 8, 8)), t)
    out = tmp_path / "o"
    rc, err = _run(capsys, ["distill", "--data", "digits", "--teacher", str(t), "--out", str(out)])
    assert rc == 2 and "outputs 3 classes but the data has 10" in _one_clear_line(err)
    assert _files(out) == []


def test_nan_loss_stops_cleanly(capsys, tmp_path):
    out = tmp_path / "o"
    rc, err = _run(capsys, ["distill", "--data", "digits", "--loss", "ce", "--optimizer", "sgd", "--lr", "1e36",
                            "--epochs", "2", "--out", str(out)])
    assert rc == 2
    line = _one_clear_line(err)
    assert "diverged" in line and "epoch 1" in line and "--lr" in line
    assert _files(out) == []


def test_unwritable_output_directory(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    rc, err = _run(capsys, ["build", "--target", "host", "--data", "digits", "--out", str(blocker / "run")])
    assert rc == 2 and "cannot create output directory" in _one_clear_line(err)
    rc, err = _run(capsys, ["distill", "--data", "digits", "--loss", "ce", "--epochs", "1",
                            "--out", str(blocker / "d")])
    assert rc == 2 and "output directory" in _one_clear_line(err)


def test_bad_option_values(capsys, tmp_path):
    rc, err = _run(capsys, ["distill", "--data", "digits", "--alpha", "1.5", "--out", str(tmp_path / "o")])
    assert rc == 2 and "alpha must be in [0, 1]" in _one_clear_line(err)
    rc, err = _run(capsys, ["distill", "--data", "digits", "--hint", "nocolon", "--out", str(tmp_path / "o")])
    assert rc == 2 and "bad hint" in _one_clear_line(err)


def test_real_console_script_exit_code_and_stderr(tmp_path):
    r = subprocess.run([*EDGEKD, "targets", "show", "atari2600"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("edgekd: error: unknown target 'atari2600'")
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
