"""Intermediate-feature (hint) matching: capture named layers' outputs and project student features.

A hint pairs a teacher layer with a student layer (``--hint teacher_layer:student_layer``). When their
shapes differ, a learned projection maps the student feature onto the teacher's: a 1×1 convolution for
channel count (then average pooling or interpolation for spatial size) on conv features, a linear layer
on flat ones. Projections are trained with the student and dropped afterwards (FitNets' regressor).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError


class FeatureTap:
    """Records the output of named submodules on every forward pass."""

    def __init__(self, model: Any, names: list[str], whose: str) -> None:
        modules = dict(model.named_modules())
        self.features: dict[str, Any] = {}
        self._handles = []
        for name in names:
            if name not in modules or name == "":
                known = [n for n in modules if n and "." not in n] or [n for n in modules if n]
                raise ConfigError(f"{whose} has no layer named {name!r}",
                                  f"use one of: {', '.join(known[:20])}")
            self._handles.append(modules[name].register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def fn(_mod, _inp, out):
            self.features[name] = out[0] if isinstance(out, (tuple, list)) else out

        return fn

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def make_projection(student_shape: tuple[int, ...], teacher_shape: tuple[int, ...]):
    """A trainable module mapping a student feature (without batch dim) to the teacher's shape."""
    import torch.nn as nn
    import torch.nn.functional as F

    if len(student_shape) != len(teacher_shape):
        raise ConfigError(f"hint layers have different ranks: student {student_shape}, teacher {teacher_shape}",
                          "pair layers of the same kind (conv with conv, flat with flat)")
    if len(student_shape) == 1:
        return nn.Linear(student_shape[0], teacher_shape[0])

    conv = nn.Conv2d if len(student_shape) == 3 else nn.Conv1d

    class ConvProjection(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = conv(student_shape[0], teacher_shape[0], 1, bias=False)
            self.size = tuple(teacher_shape[1:])

        def forward(self, x):
            x = self.proj(x)
            if tuple(x.shape[2:]) != self.size:
                if all(s >= t for s, t in zip(x.shape[2:], self.size)):
                    pool = F.adaptive_avg_pool2d if x.dim() == 4 else F.adaptive_avg_pool1d
                    x = pool(x, self.size)
                else:
                    x = F.interpolate(x, size=self.size, mode="nearest")
            return x

    return ConvProjection()
