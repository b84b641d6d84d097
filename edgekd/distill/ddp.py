"""Distillation on several processes: ``torchrun --nproc_per_node N -m edgekd distill ...``.

torchrun starts N processes and tells each its rank through the environment (RANK, WORLD_SIZE, MASTER_ADDR,
...); ``edgekd distill`` reads them (only there) and joins a gloo process group (edgekd trains on the CPU;
NCCL/GPU training is not wired). The student is wrapped in DistributedDataParallel, so gradients are averaged across ranks in
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

    def wrap(self, model: Any) -> Any:
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def from_env(env: Mapping[str, str]) -> Dist | None:
    """Join the process group torchrun set up (``env`` is torchrun's environment); None for one process."""
    world = int(env.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    import torch.distributed as dist

    backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(dist.get_rank(), dist.get_world_size(), backend)


def weights_digest(model: Any) -> str:
    """sha256 of a model's parameters and buffers (to check that ranks hold identical weights)."""
    from ..models.default_teacher import state_dict_sha256

    return state_dict_sha256(getattr(model, "module", model))
