"""Where a student trains: ``--device cpu`` (the default), ``cuda`` or ``auto`` (a CUDA GPU when torch sees one).

Training runs on the device; everything around it stays on the CPU: data arrays, cached teacher outputs (moved a
batch at a time), the teacher's precomputed logits, and the student handed back (moved to the CPU before export).
A torch teacher that runs per batch (hints, mixup) is moved to the device for the run and back after it. Under
torchrun with CUDA each rank takes the GPU ``LOCAL_RANK`` names and the process group is NCCL (gloo on the CPU).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from ..errors import ConfigError
from .names import DEVICES



def resolve(name: str, local_rank: int | None = None) -> Any:
    """``name`` (one of DEVICES) as a ``torch.device``; ``local_rank`` picks the rank's GPU under torchrun."""
    import torch

    if name not in DEVICES:
        raise ConfigError(f"unknown device {name!r}", f"use --device {' or '.join(DEVICES)}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        why = ("this torch build has no CUDA support (it is the CPU wheel edgekd installs)"
               if not torch.backends.cuda.is_built() else "torch sees no CUDA GPU")
        raise ConfigError(f"--device cuda, but {why}",
                          "use --device cpu (or auto), or install a CUDA build of torch on a machine with a GPU")
    index = local_rank if local_rank is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise ConfigError(f"rank {index} needs GPU {index}, and torch sees {torch.cuda.device_count()}",
                          "start no more torchrun processes per node than the node has GPUs (--nproc_per_node)")
    return torch.device("cuda", index)


def device_of(model: Any) -> Any:
    """The device a model's parameters are on (the CPU for a model without parameters)."""
    import torch

    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@contextmanager
def moved(module: Any, device: Any) -> Iterator[Any]:
    """``module`` on ``device`` for the block, back where it was after it (a teacher shared with other code)."""
    if module is None:
        yield None
        return
    home = device_of(module)
    module.to(device)
    try:
        yield module
    finally:
        module.to(home)


def freeze(teacher: Any) -> Any:
    """Eval mode and no gradients: the teacher is never updated."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
