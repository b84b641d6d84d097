"""Distillation on several processes: ``torchrun --nproc_per_node N -m edgekd distill ...``.

torchrun starts N processes and tells each its rank through the environment (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, ...); ``edgekd distill`` reads them (only there) and joins a process group: gloo on the CPU
(``--device cpu``), NCCL with ``--device cuda``, where each rank trains on GPU ``LOCAL_RANK`` (one process per
GPU). The student is wrapped in DistributedDataParallel, so gradients are averaged across ranks in
``backward`` and every rank takes the same optimiser step. Semantics match one process: the same shuffled
order (same seed on every rank), the global batch ``--batch-size`` split across ranks (rank r takes rows
r, r+N, ... of each batch), the same epochs, schedule, early stopping (every rank evaluates the same
validation set with the same weights). The teacher-output cache is written once by rank 0 and read by all;
only rank 0 writes the student.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    backend: str
    device: Any = None  # the torch.device this rank trains on (None: the CPU)

    def wrap(self, model: Any) -> Any:
        from torch.nn.parallel import DistributedDataParallel

        if self.device is not None and self.device.type == "cuda":
            return DistributedDataParallel(model.to(self.device), device_ids=[self.device.index])
        return DistributedDataParallel(model)

    def barrier(self) -> None:
        import torch.distributed as dist

        if self.backend == "nccl":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def backend_for(device: Any) -> str:
    """NCCL for CUDA devices, gloo for the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def from_env(env: Mapping[str, str], device: str = "cpu") -> Dist | None:
    """Join the process group torchrun set up (``env`` is torchrun's environment; ``device`` is ``--device``);
    None for one process."""
    world = int(env.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    import torch
    import torch.distributed as dist

    from .device import resolve

    dev = resolve(device, local_rank=int(env.get("LOCAL_RANK", "0") or 0))
    backend = backend_for(dev)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(dist.get_rank(), dist.get_world_size(), backend, dev)


def weights_digest(model: Any) -> str:
    """sha256 of a model's parameters and buffers (to check that ranks hold identical weights)."""
    from ..models.default_teacher import state_dict_sha256

    return state_dict_sha256(getattr(model, "module", model))
