"""Run by test_methods.py under `torchrun --nproc_per_node 2`: train one tiny student on two ranks (gloo on the
CPU; NCCL, one GPU per rank, when the third argument is cuda), record
each rank's weight digest after every epoch, then write the student through `run_distill` (rank 0 only)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from edgekd.data import load_dataset
from edgekd.distill.config import DistillConfig
from edgekd.distill.ddp import from_env, weights_digest
from edgekd.distill.methods import MethodContext
from edgekd.distill.run import DistillJob, run_distill
from edgekd.models.students import StudentSpec
from edgekd.models.teachers import load_teacher


def main() -> None:
    teacher_path, out, device = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    dist = from_env(os.environ, device)
    assert dist is not None and dist.world == 2 and dist.backend == ("nccl" if device == "cuda" else "gloo")
    data = load_dataset("digits", seed=0)
    teacher = load_teacher(teacher_path)
    cfg = DistillConfig(epochs=2, batch_size=32, lr=2e-2, patience=2, device=device)
    spec = StudentSpec("test_convnet", 1.0, 1, data.input_shape, data.num_classes)
    ctx = MethodContext(data, spec, cfg, teacher=teacher, shard=(dist.rank, dist.world), wrap=dist.wrap,
                        device=dist.device)
    digests: list[str] = []
    res = ctx.train(ctx.student(), teacher_logits=teacher.logits(data.x_train),
                    on_epoch_end=lambda _e, m: digests.append(weights_digest(m)))
    (out / f"rank{dist.rank}.json").write_text(json.dumps({
        "digests": digests, "losses": [h["loss"] for h in res.history], "val": res.best_val_accuracy}))
    job = DistillJob(data="digits", out=str(out / "out"), width=1.0, family="test_convnet",
                     teachers=(teacher_path,), cache_dir=str(out / "cache"))
    run_distill(job, DistillConfig(epochs=1, batch_size=32, lr=2e-2, device=device), distributed=dist)
    dist.close()


if __name__ == "__main__":
    main()
