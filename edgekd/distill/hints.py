"""Intermediate-feature (hint) matching: capture named layers' outputs and project student features.

A hint pairs a teacher layer with a student layer (``--hint teacher_layer:student_layer``). When their
shapes differ, a learned projection maps the student feature onto the teacher's: a 1×1 convolution for
channel count (then average pooling or interpolation for spatial size) on conv features, a linear layer
on flat ones. Projections are trained with the student and dropped afterwards (FitNets' regressor).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .device import device_of


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


# Teacher features for every training sample are precomputed once when they fit in this much memory
# (inputs are static: no augmentation), so a hint run costs one teacher pass, not one per batch.
MAX_CACHED_FEATURE_BYTES = 3 * 1024**3


def auto_pairs(student: Any, teacher: Any, x: Any) -> tuple[tuple[str, str], ...]:
    """Pair top-level layers by spatial size: for every size both models produce (conv features only),
    the *last* teacher layer of that size with the *last* student layer of that size."""
    import torch

    def last_by_size(model: Any) -> dict[tuple[int, ...], str]:
        names = [n for n, _ in model.named_children()]
        tap = FeatureTap(model, names, "the model")
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(x.to(device_of(model)))
        finally:
            tap.close()
            model.train(was)
        out: dict[tuple[int, ...], str] = {}
        for n in names:  # later layers overwrite earlier ones of the same size
            f = tap.features.get(n)
            if f is not None and hasattr(f, "dim") and f.dim() >= 3:
                out[tuple(f.shape[2:])] = n
        return out

    t_sizes, s_sizes = last_by_size(teacher), last_by_size(student)
    pairs = tuple((t_sizes[k], s_sizes[k]) for k in t_sizes if k in s_sizes)
    if not pairs:
        raise ConfigError("automatic feature pairing found no teacher and student layers of the same spatial size",
                          "name the pairs with --hint teacher_layer:student_layer")
    return pairs


class HintMatcher:
    """Owns everything about hints in one training run: taps, projections, and cached teacher features."""

    def __init__(self, pairs: tuple[tuple[str, str], ...], student: Any, teacher: Any, x_train: Any,
                 weight: float, precompute: bool, say: Any, feature_loss: str = "mse") -> None:
        import torch

        from .losses import FEATURE_LOSSES
        from .device import freeze

        self.loss_fn, self.feature_loss = FEATURE_LOSSES.get(feature_loss), feature_loss
        if ("auto", "auto") in pairs:
            pairs = auto_pairs(student, teacher, x_train[:2])
            say("feature pairs (auto, by spatial size): " + ", ".join(f"{t}:{s}" for t, s in pairs))
        self.pairs, self.weight, self.teacher = pairs, weight, freeze(teacher)
        self.t_tap = FeatureTap(teacher, [t for t, _ in pairs], "the teacher")
        self.s_tap = FeatureTap(student, [s for _, s in pairs], "the student")
        was_training = student.training
        student.eval()
        with torch.no_grad():
            teacher(x_train[:2].to(device_of(teacher)))
            student(x_train[:2].to(device_of(student)))
        student.train(was_training)
        self.projections = torch.nn.ModuleList(
            torch.nn.Identity() if feature_loss == "at" else  # attention maps pool the channels away
            make_projection(tuple(self.s_tap.features[s].shape[1:]), tuple(self.t_tap.features[t].shape[1:]))
            for t, s in pairs)
        self.cached = self._precompute(x_train, say) if precompute else None

    def _precompute(self, x_train: Any, say: Any) -> dict[str, Any] | None:
        import torch

        names = [t for t, _ in self.pairs]
        per_sample = sum(self.t_tap.features[n][0].numel() for n in names) * 4
        if per_sample * len(x_train) > MAX_CACHED_FEATURE_BYTES:
            say(f"hints: teacher features need {per_sample * len(x_train) / 2**30:.1f} GiB; running the teacher "
                "on every batch instead")
            return None
        out = {n: torch.empty((len(x_train), *self.t_tap.features[n].shape[1:])) for n in names}
        with torch.no_grad():
            for i in range(0, len(x_train), 512):
                self.teacher(x_train[i:i + 512].to(device_of(self.teacher)))
                for n in names:
                    out[n][i:i + 512] = self.t_tap.features[n].cpu()
        say(f"hints: teacher features computed once ({per_sample * len(x_train) / 2**20:.0f} MiB)")
        return out

    def loss(self, idx: Any, xb: Any, teacher_ran: bool) -> Any:
        """β · Σ feature loss (mse, cosine or at) over the pairs, for the batch ``xb`` (training rows ``idx``)."""
        import torch

        if self.cached is not None:
            t_feats = {t: self.cached[t][idx].to(xb.device) for t, _ in self.pairs}
        else:
            if not teacher_ran:
                with torch.no_grad():
                    self.teacher(xb)  # fills the teacher's taps
            t_feats = self.t_tap.features
        total = 0.0
        for proj, (t, s) in zip(self.projections, self.pairs):
            total = total + self.loss_fn(proj(self.s_tap.features[s]), t_feats[t])
        return self.weight * total

    def close(self) -> None:
        self.t_tap.close()
        self.s_tap.close()
