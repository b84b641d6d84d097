"""Data-free distillation: synthesise training inputs from the teacher alone (DeepInversion), then distil.

Each synthetic batch x (labels y drawn evenly over the classes) starts as noise and is optimised, with the
teacher frozen, to minimise

    L(x) = CE(f_t(x), y) + a_bn · Σ_l ( ‖μ_l(x) − μ̂_l‖₂ + ‖σ²_l(x) − σ̂²_l‖₂ ) + a_tv · TV(x) + a_l2 · ‖x‖²

where μ_l, σ²_l are the batch statistics of the input of the teacher's l-th BatchNorm layer and μ̂_l, σ̂²_l its
running statistics (what real data looked like to it), and TV is the mean absolute difference between
neighbouring pixels/time steps. x is kept in the data range (``input_range``). The student is then
trained on the synthetic set against the teacher's logits on it, with the run's loss; no real sample is
used for training or early stopping (validation is a held-out synthetic share).
Paper: H. Yin, P. Molchanov, Z. Li, J. M. Alvarez, A. Mallya, D. Hoiem, N. K. Jha, J. Kautz, "Dreaming to
Distill: Data-free Knowledge Transfer via DeepInversion", CVPR 2020, arXiv:1912.08086.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import TeacherError
from .device import moved

if TYPE_CHECKING:
    from .config import DistillConfig

A_BN, A_TV, A_L2 = 1.0, 1e-4, 1e-5  # a_tv, a_l2 are the paper's small priors; a_bn scaled for tiny nets


def bn_layers(teacher: Any) -> list[Any]:
    import torch.nn as nn

    return [m for m in teacher.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def invert(teacher: Any, input_shape: tuple[int, ...], num_classes: int, n: int, steps: int, *, seed: int = 0,
           batch_size: int = 256, lr: float = 0.1, input_range: tuple[float, float] = (0.0, 1.0),
           progress: Callable[[str], None] | None = None, device: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic inputs and their intended labels, optimised against ``teacher``'s BN statistics (on
    ``device``, a torch.device, default the CPU; the teacher is moved there and back)."""
    import torch
    import torch.nn.functional as F

    say = progress or (lambda _m: None)
    bns = bn_layers(teacher)
    if not bns:
        raise TeacherError("data-free distillation needs a teacher with BatchNorm layers (their statistics are "
                           "what the synthetic inputs are fitted to)", "use edgekd's built-in teacher or a torch "
                           "teacher with BatchNorm, or pass real --data")
    teacher.eval()
    stats: list[Any] = []

    def hook(mod, inp, _out):
        x = inp[0]
        dims = [0] + list(range(2, x.dim()))
        stats.append(torch.norm(x.mean(dims) - mod.running_mean, 2)
                     + torch.norm(x.var(dims, unbiased=False) - mod.running_var, 2))

    dev = device if device is not None else torch.device("cpu")
    gen = torch.Generator().manual_seed(seed)
    lo, hi = input_range
    xs, ys = [], []
    with moved(teacher, dev):
        handles = [m.register_forward_hook(hook) for m in bns]
        try:
            for start in range(0, n, batch_size):
                b = min(batch_size, n - start)
                y = ((torch.arange(b) + start) % num_classes).to(dev)
                noise = torch.randn((b, *input_shape), generator=gen)  # drawn on the CPU: the same on any device
                x = (lo + (hi - lo) * (0.5 + 0.2 * noise)).to(dev).requires_grad_(True)
                opt = torch.optim.Adam([x], lr=lr)
                for _step in range(steps):
                    stats.clear()
                    out = teacher(x)
                    loss = F.cross_entropy(out, y) + A_BN * sum(stats) + A_TV * _tv(x) + A_L2 * x.pow(2).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    with torch.no_grad():
                        x.clamp_(lo, hi)
                with torch.no_grad():
                    hit = float((teacher(x).argmax(1) == y).float().mean())
                say(f"data-free: synthetic batch {start // batch_size + 1}/{-(-n // batch_size)} ({b} inputs, "
                    f"{steps} steps): teacher agrees with the intended class on {hit:.0%}")
                xs.append(x.detach().cpu().numpy().astype(np.float32))
                ys.append(y.cpu().numpy())
        finally:
            for h in handles:
                h.remove()
    teacher.zero_grad(set_to_none=True)
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)


def _tv(x: Any) -> Any:
    tv = (x[..., 1:] - x[..., :-1]).abs().mean()
    if x.dim() == 4:
        tv = tv + (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    return tv


def synthetic_dataset(teacher: Any, input_shape: tuple[int, ...], num_classes: int, config: "DistillConfig", *,
                      test: Any = None, progress: Callable[[str], None] | None = None, device: Any = None) -> Any:
    """A ``Dataset`` of synthetic inputs (90% train, 10% val); ``test`` (a real Dataset) only lends its test split
    for reporting accuracy, otherwise the test split is synthetic too."""
    from ..data import Dataset
    from .device import freeze

    teacher = freeze(teacher)
    x, y = invert(teacher, tuple(input_shape), num_classes, config.synthetic_samples, config.inversion_steps,
                  seed=config.seed, progress=progress, device=device)
    n_val = max(num_classes, len(x) // 10)
    classes = test.class_names if test is not None else tuple(str(i) for i in range(num_classes))
    x_test, y_test = (test.x_test, test.y_test) if test is not None else (x[:n_val], y[:n_val])
    return Dataset(spec="none (synthetic, data-free)", x_train=x[n_val:], y_train=y[n_val:], x_val=x[:n_val],
                   y_val=y[:n_val], x_test=x_test, y_test=y_test, num_classes=num_classes, class_names=classes,
                   kind={4: "image", 3: "sequence"}.get(x.ndim, "features"))
