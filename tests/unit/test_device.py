"""--device: resolving it (our logic, with torch's CUDA queries patched), the process-group backend it implies,
and the one-line refusal of --device cuda where torch has no CUDA. The CUDA training path itself is exercised by
tests/integration/test_gpu.py, which runs only where torch sees a GPU."""

from __future__ import annotations

import subprocess

import pytest
import torch

from edgekd.distill.config import DistillConfig
from edgekd.distill.ddp import backend_for
from edgekd.distill.device import device_of, moved, resolve
from edgekd.errors import ConfigError

from ..conftest import EDGEKD


def _cuda(monkeypatch, available: bool, count: int = 0, built: bool = True) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: built)


def test_resolve_picks_the_device_and_refuses_what_is_not_there(monkeypatch):
    _cuda(monkeypatch, available=False, built=False)
    assert resolve("cpu") == torch.device("cpu")
    assert resolve("auto") == torch.device("cpu")  # no GPU: auto falls back
    with pytest.raises(ConfigError, match="no CUDA support") as e:
        resolve("cuda")
    assert "--device cpu" in e.value.fix
    _cuda(monkeypatch, available=False, built=True)
    with pytest.raises(ConfigError, match="sees no CUDA GPU"):
        resolve("cuda")
    _cuda(monkeypatch, available=True, count=2)
    assert resolve("auto") == torch.device("cuda", 0)
    assert resolve("cuda", local_rank=1) == torch.device("cuda", 1)  # torchrun: the rank's own GPU
    with pytest.raises(ConfigError, match="rank 2 needs GPU 2, and torch sees 2") as e:
        resolve("cuda", local_rank=2)
    assert "--nproc_per_node" in e.value.fix
    with pytest.raises(ConfigError, match="unknown device"):
        resolve("tpu")


def test_backend_follows_the_device():
    assert backend_for(torch.device("cpu")) == "gloo"
    assert backend_for(torch.device("cuda", 1)) == "nccl"


def test_config_refuses_unknown_devices():
    assert DistillConfig(device="auto").device == "auto"
    with pytest.raises(ConfigError, match="unknown device 'gpu'") as e:
        DistillConfig(device="gpu")
    assert "cpu or cuda or auto" in e.value.fix


def test_moved_returns_a_module_where_it_was_even_on_error():
    m = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError):
        with moved(m, torch.device("cpu")) as placed:
            assert placed is m
            raise RuntimeError("boom")
    assert device_of(m) == torch.device("cpu")
    with moved(None, torch.device("cpu")) as nothing:
        assert nothing is None
    assert device_of(torch.nn.ReLU()) == torch.device("cpu")  # no parameters: the CPU


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: --device cuda is valid here")
def test_cli_refuses_cuda_without_it_in_one_line(tmp_path):
    out = subprocess.run([*EDGEKD, "distill", "--data", "digits", "--loss", "ce", "--epochs", "1", "--device", "cuda",
                          "--out", str(tmp_path / "s")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "--device cuda" in lines[0] and "--device cpu" in lines[0], out.stderr
    assert not (tmp_path / "s" / "student.pt").exists()
