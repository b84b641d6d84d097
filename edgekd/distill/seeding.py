"""Students seeded with the teacher's own weights: structured pruning of the teacher down to the student's width.

A student of the teacher's family and depth, only narrower, starts as the teacher with its least active channels
removed -- per layer, the channels whose outputs (after BatchNorm) are largest in mean magnitude on a calibration
batch are kept, the next layer keeps the matching input channels -- and its BatchNorm statistics are re-estimated
on the pruned network. Distillation then recovers what pruning lost, in far fewer epochs than from random weights
(measured on the built-in Fashion-MNIST teacher: benchmarks/seeded_students.py). The activation-based importance is
Minitron's (S. Muralidharan et al., "Compact Language Models via Pruning and Knowledge Distillation",
arXiv:2407.14679, 2024); channel pruning then fine-tuning is Network Slimming's (Z. Liu et al., ICCV 2017).

It applies where the data flow is the modules' order: both models are nested ``nn.Sequential`` chains of standard
layers (conv, linear, BatchNorm, activations, pooling), with the same parametric layers by name, kind, kernel and
stride, each of the student's at most as wide as the teacher's. A student of another depth is not seeded: its
layers would read features the teacher's counterparts never saw (measured: worse than random weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..data import Dataset
    from ..models.teachers import Teacher
    from .config import DistillConfig

SEEDED_METHODS = ("kd", "feature", "qat")  # methods whose student learns from the one teacher on the same inputs
CALIBRATION_SAMPLES = 1024  # teacher activations that rank the channels
BN_SAMPLES = 4096  # training samples that re-estimate the pruned student's BatchNorm statistics
_BATCH = 512


@dataclass(frozen=True)
class Seeding:
    """Whether a student was (or can be) seeded from the teacher, and what was done or why not."""

    seeded: bool
    detail: str  # e.g. "pruned from the teacher: 7 layers, 224 of 448 channels kept" or why it could not be

    def describe(self) -> str:
        return self.detail if self.seeded else f"random weights ({self.detail})"


def not_applicable(config: "DistillConfig", teacher: "Teacher | None", data: "Dataset") -> str:
    """Why no student of this build can be seeded from ``teacher`` ("" when some may be): the config's ``init``,
    the method, the teacher's kind or inputs of its own."""
    if config.init == "random":
        return "--init random"
    if config.method not in SEEDED_METHODS:
        return f"method {config.method} starts from random weights"
    if teacher is None or teacher.module is None:
        return "the teacher is not a PyTorch module"
    if data.teacher_view is not None or data.is_lazy:
        return "the teacher takes inputs of its own"
    return ""


def _leaves(model: Any) -> "tuple[list[tuple[str, Any]], str]":
    """The model's leaf modules in data-flow order, or a reason why its order is not its data flow."""
    import torch.nn as nn

    plain = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh,
             nn.Identity, nn.Flatten, nn.Dropout, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AvgPool1d,
             nn.AvgPool2d, nn.MaxPool1d, nn.MaxPool2d, nn.Conv1d, nn.Conv2d, nn.Linear, nn.BatchNorm1d,
             nn.BatchNorm2d)
    out = []
    for name, m in model.named_modules():
        if any(True for _ in m.children()):
            if type(m) is not nn.Sequential:
                return [], f"{name or 'the model'} is a {type(m).__name__}, not a plain Sequential chain"
            continue
        if not isinstance(m, plain):
            return [], f"layer {name} is a {type(m).__name__}"
        out.append((name, m))
    return out, ""


def _parametric(leaves: "list[tuple[str, Any]]") -> "list[tuple[str, Any]]":
    return [(n, m) for n, m in leaves if any(True for _ in m.parameters(recurse=False))
            or getattr(m, "running_mean", None) is not None]


def check(student: Any, teacher: Any) -> Seeding:
    """Whether ``student`` can be pruned from ``teacher`` (a structural check; runs nothing)."""
    import torch.nn as nn

    pairs, why = _pairs(student, teacher)
    layers = sum(1 for _n, s, _t in pairs if not isinstance(s, (nn.BatchNorm1d, nn.BatchNorm2d)))
    return Seeding(bool(pairs), why or f"can be pruned from the teacher ({layers} layers)")


def _pairs(student: Any, teacher: Any) -> "tuple[list[tuple[str, Any, Any]], str]":
    import torch.nn as nn

    if teacher is None:
        return [], "the teacher is not a PyTorch module"
    s_leaves, why = _leaves(student)
    if why:
        return [], f"student: {why}"
    t_leaves, why = _leaves(teacher)
    if why:
        return [], f"teacher: {why}"
    s_par, t_par = _parametric(s_leaves), _parametric(t_leaves)
    if [n for n, _ in s_par] != [n for n, _ in t_par]:
        def weighted(par: "list[tuple[str, Any]]") -> int:  # conv / linear layers
            return sum(1 for _n, m in par if not isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)))
        return [], (f"its layers differ from the teacher's: {weighted(s_par)} conv/linear layers vs "
                    f"{weighted(t_par)}, another depth or family")
    pairs = []
    for (name, s), (_n, t) in zip(s_par, t_par):
        if type(s) is not type(t):
            return [], f"layer {name} is a {type(s).__name__}, the teacher's a {type(t).__name__}"
        if isinstance(s, (nn.Conv1d, nn.Conv2d)):
            same = (s.kernel_size, s.stride, s.padding, s.dilation) == (t.kernel_size, t.stride, t.padding, t.dilation)
            depthwise = s.groups == s.in_channels == s.out_channels and t.groups == t.in_channels == t.out_channels
            if not same or (s.bias is None) != (t.bias is None) or not (depthwise or s.groups == t.groups == 1):
                return [], f"layer {name} differs from the teacher's in kernel, stride, bias or groups"
            if s.out_channels > t.out_channels or s.in_channels > t.in_channels:
                return [], f"layer {name} is wider than the teacher's"
        elif isinstance(s, nn.Linear):
            if s.out_features > t.out_features or s.in_features > t.in_features or (s.bias is None) != (t.bias is None):
                return [], f"layer {name} is wider than the teacher's"
        elif s.num_features > t.num_features or s.affine != t.affine:
            return [], f"layer {name} is wider than the teacher's"
        pairs.append((name, s, t))
    if all(_width(s) == _width(t) for _n, s, t in pairs):
        return [], "the student is the teacher's own size (nothing to prune)"
    first = pairs[0][1]
    if _in_width(first) != _in_width(pairs[0][2]):
        return [], "the student and teacher take inputs of different channel counts"
    last_s, last_t = pairs[-1][1], pairs[-1][2]
    if _width(last_s) != _width(last_t):
        return [], "the student and teacher have different output widths"
    return pairs, ""


def _width(m: Any) -> int:
    return int(getattr(m, "out_channels", None) or getattr(m, "out_features", None) or m.num_features)


def _in_width(m: Any) -> int:
    return int(getattr(m, "in_channels", None) or getattr(m, "in_features", None) or m.num_features)


def seed_from_teacher(student: Any, teacher: Any, x_train: np.ndarray) -> Seeding:
    """Prune ``teacher`` into ``student`` in place (see the module docstring); a ``Seeding`` says what happened.

    ``x_train``: inputs the teacher and the student both take (the first samples rank the channels and re-estimate
    BatchNorm). Nothing random is drawn: the same teacher and data give the same student."""
    import torch
    import torch.nn as nn

    pairs, why = _pairs(student, teacher)
    if not pairs:
        return Seeding(False, why)
    # rank each layer's output channels by the mean |output| of the layer that follows it when that is its
    # BatchNorm (what the next layer sees, up to the activation), else by its own output
    rank_at: dict[str, str] = {}
    for i, (name, s, _t) in enumerate(pairs):
        if isinstance(s, (nn.BatchNorm1d, nn.BatchNorm2d)):
            continue
        after = pairs[i + 1] if i + 1 < len(pairs) else None
        bn = after is not None and isinstance(after[1], (nn.BatchNorm1d, nn.BatchNorm2d))
        rank_at[name] = after[0] if bn else name
    importance = _mean_abs_outputs(teacher, set(rank_at.values()), x_train[:CALIBRATION_SAMPLES])

    copies, why, (kept, total) = _slices(pairs, importance, rank_at)
    if why:  # found before anything is copied: the student keeps its random weights
        return Seeding(False, why)
    with torch.no_grad():
        for dst, src in copies:
            dst.copy_(src)
    _reestimate_batchnorm(student, x_train[:BN_SAMPLES])
    layers = sum(1 for _n, s, _t in pairs if not isinstance(s, (nn.BatchNorm1d, nn.BatchNorm2d)))
    return Seeding(True, f"pruned from the teacher: {layers} layers, {kept} of {total} channels kept (by "
                         "activation), BatchNorm re-estimated")


def _slices(pairs: "list[tuple[str, Any, Any]]", importance: "dict[str, Any]", rank_at: "dict[str, str]"
            ) -> "tuple[list[tuple[Any, Any]], str, tuple[int, int]]":
    """(student tensor, the teacher's slice for it) for every parameter and BatchNorm statistic, or why the layers
    do not line up; and (output channels kept, the teacher's output channels)."""
    import torch
    import torch.nn as nn

    copies: list[tuple[Any, Any]] = []
    prev = None
    kept = total = 0
    for name, s, t in pairs:
        if isinstance(s, (nn.BatchNorm1d, nn.BatchNorm2d)):
            idx = prev if prev is not None else torch.arange(t.num_features)  # a BatchNorm on the inputs
            if len(idx) != s.num_features:
                return [], f"layer {name} normalises {s.num_features} channels, the previous layer gives {len(idx)}", \
                    (0, 0)
            copies += [(getattr(s, a), getattr(t, a)[idx]) for a in ("weight", "bias", "running_mean", "running_var")
                       if getattr(t, a) is not None and getattr(s, a) is not None]
            continue
        depthwise = isinstance(s, (nn.Conv1d, nn.Conv2d)) and s.groups > 1
        in_idx = prev if prev is not None else torch.arange(_in_width(t))
        if len(in_idx) != _in_width(s):  # e.g. a Linear reading a flattened feature map
            return [], f"layer {name} reads {_in_width(s)} inputs, the previous layer gives {len(in_idx)}", (0, 0)
        if depthwise:
            out_idx = in_idx
        elif _width(s) == _width(t):
            out_idx = torch.arange(_width(t))
        else:
            order = torch.argsort(importance[rank_at[name]], descending=True, stable=True)
            out_idx = order[:_width(s)].sort().values
        w = t.weight.detach()[out_idx]
        copies.append((s.weight, w if depthwise else w[:, in_idx]))
        if s.bias is not None:
            copies.append((s.bias, t.bias.detach()[out_idx]))
        kept, total = kept + len(out_idx), total + _width(t)
        prev = out_idx
    return copies, "", (kept, total)


def _mean_abs_outputs(model: Any, names: "set[str]", x: np.ndarray) -> "dict[str, Any]":
    """Per channel (dim 1), the |output| of each named module of ``model`` summed over ``x`` (ranks as the mean)."""
    sums: dict[str, Any] = {}
    hooks = []
    for name, m in model.named_modules():
        if name in names:
            def hook(_m: Any, _i: Any, out: Any, n: str = name) -> None:
                dims = [d for d in range(out.dim()) if d != 1]
                v = out.detach().abs().float().sum(dim=dims)
                sums[n] = v if n not in sums else sums[n] + v
            hooks.append(m.register_forward_hook(hook))
    try:
        _forward(model, x, train=False)
    finally:
        for h in hooks:
            h.remove()
    return sums


def _reestimate_batchnorm(model: Any, x: np.ndarray) -> None:
    """BatchNorm running statistics as the pruned network's own (a cumulative average over ``x``)."""
    import torch.nn as nn

    bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    if not bns:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    try:
        _forward(model, x, train=True)
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom


def _forward(model: Any, x: np.ndarray, train: bool) -> None:
    """``model`` over ``x`` in batches, without gradients, in train or eval mode; its own mode restored after."""
    import torch

    was_training = model.training
    model.train(train)
    try:
        with torch.no_grad():
            for i in range(0, len(x), _BATCH):
                model(torch.from_numpy(np.ascontiguousarray(x[i:i + _BATCH], dtype=np.float32)))
    finally:
        model.train(was_training)
