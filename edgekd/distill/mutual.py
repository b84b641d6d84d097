"""Online / mutual distillation (deep mutual learning): K students trained together, no teacher.

For student k with logits z_k, at each step:

    L_k = CE(softmax(z_k), y) + (1 / (K − 1)) · Σ_{j≠k} T² · KL(softmax(z_j/T) ‖ softmax(z_k/T))

with the peers' logits z_j detached (each peer is a fixed target within the step; all peers step on the same
batch). The paper uses T = 1; ``config.temperature`` applies here. Peers share the architecture and differ
in their initialisation (seed + k). The peer with the best validation accuracy is returned.
Paper: Y. Zhang, T. Xiang, T. M. Hospedales, H. Lu, "Deep Mutual Learning", CVPR 2018, arXiv:1706.00384.
"""

from __future__ import annotations

import copy
import math
import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import ConfigError, TrainingError
from .trainer import TrainResult, evaluate

if TYPE_CHECKING:
    from ..data import Dataset
    from .config import DistillConfig


def train_mutual(build: Callable[[], Any], data: "Dataset", config: "DistillConfig", progress: Callable[[str], None],
                 device: Any = None) -> TrainResult:
    """``build()`` makes one fresh student; ``config.peers`` of them are trained together on ``device`` (a
    torch.device, default the CPU); the peer returned is on the CPU."""
    if config.augment != "none":  # this loop trains the peers on the samples as they are
        raise ConfigError(f"--augment {config.augment} is not supported by --method mutual", "use --augment none")
    if data.n_unlabeled:  # no teacher to label them; peers labelling each other would train on guesses
        raise ConfigError("--method mutual needs a label on every training sample, and some have none (--unlabeled)",
                          "drop --unlabeled, or distil from a teacher (e.g. --method kd)")
    import torch
    import torch.nn.functional as F

    from .losses import soft_kl

    dev = device if device is not None else torch.device("cpu")
    peers = []
    for k in range(config.peers):
        torch.manual_seed(config.seed + k)
        peers.append(build().to(dev))
    opts = [torch.optim.AdamW(p.parameters(), lr=config.lr, weight_decay=config.weight_decay) if
            config.optimizer == "adamw" else
            torch.optim.SGD(p.parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                            weight_decay=config.weight_decay) for p in peers]
    x = torch.from_numpy(np.asarray(data.x_train))  # image folders: held in memory for this method (noted in README)
    y = torch.from_numpy(data.y_train.astype(np.int64))
    steps = math.ceil(len(x) / config.batch_size)
    total = steps * config.epochs
    scheds = [torch.optim.lr_scheduler.LambdaLR(o, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
              for o in opts]
    gen = torch.Generator().manual_seed(config.seed)
    best = [(-1.0, None)] * len(peers)
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        for p in peers:
            p.train()
        order = torch.randperm(len(x), generator=gen)
        for step in range(steps):
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            xb, yb = x[idx].to(dev), y[idx].to(dev)
            logits = [p(xb) for p in peers]
            for k, (opt, sched) in enumerate(zip(opts, scheds)):
                others = [logits[j].detach() for j in range(len(peers)) if j != k]
                loss = F.cross_entropy(logits[k], yb) + sum(
                    soft_kl(logits[k], o, config.temperature) for o in others) / len(others)
                if not torch.isfinite(loss):
                    raise TrainingError(f"mutual training diverged: peer {k + 1} loss {float(loss)} at epoch {epoch}",
                                        "lower --lr or --temperature")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(peers[k].parameters(), config.max_grad_norm)
                opt.step()
                sched.step()
        accs = [evaluate(p, data.x_val, data.y_val) for p in peers]
        for k, a in enumerate(accs):
            if a > best[k][0]:
                best[k] = (a, copy.deepcopy(peers[k].state_dict()))
        history.append({"epoch": epoch, "val_accuracy": max(accs), "peer_val_accuracy": accs,
                        "seconds": time.perf_counter() - t0})
        progress(f"epoch {epoch}/{config.epochs}  peers' val acc " + " ".join(f"{a:.4f}" for a in accs)
                 + f"  {time.perf_counter() - t0:.1f}s")
    k = int(np.argmax([b[0] for b in best]))
    peers[k].load_state_dict(best[k][1])
    peers[k].cpu().eval()
    progress(f"mutual: keeping peer {k + 1} of {len(peers)} (val acc {best[k][0]:.4f})")
    return TrainResult(peers[k], best[k][0], config.epochs, False, history)
