"""Typed, frozen configuration of one distillation run, validated on construction."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError

OPTIMIZERS = ("adamw", "sgd")


@dataclass(frozen=True)
class DistillConfig:
    """How a student is trained against a teacher."""

    loss: str = "hinton"  # a name in distill.losses.LOSSES ("hinton", or "ce" for the student alone)
    # T and alpha defaults: measured on Fashion-MNIST students (benchmarks/distill_quality.py): T = 4, alpha = 0.9
    # (the classic CIFAR setting) trailed the student trained alone in short budgets; T = 2, alpha = 0.7 did not.
    temperature: float = 2.0  # T: softens teacher and student distributions
    alpha: float = 0.7  # weight of the soft (KD) term; 1 − alpha weighs hard-label CE
    hints: tuple[tuple[str, str], ...] = ()  # (teacher_layer, student_layer) pairs for FitNets hints
    hint_weight: float = 1.0  # β: weight of the summed hint losses
    epochs: int = 5
    batch_size: int = 128
    optimizer: str = "adamw"  # "adamw" or "sgd" (momentum 0.9, nesterov)
    lr: float = 3e-3  # peak learning rate; cosine-decayed to 0 over all steps
    weight_decay: float = 5e-4
    patience: int = 3  # early stop after this many epochs without a better validation accuracy
    max_grad_norm: float = 5.0  # gradient clipping; 0 disables
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 = torch's default

    def __post_init__(self) -> None:
        def bad(what: str, fix: str) -> ConfigError:
            return ConfigError(what, fix)

        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise bad(f"temperature must be > 0, got {self.temperature}", "use e.g. --temperature 4")
        if not (0.0 <= self.alpha <= 1.0):
            raise bad(f"alpha must be in [0, 1], got {self.alpha}", "use e.g. --alpha 0.9")
        if self.hint_weight < 0 or not math.isfinite(self.hint_weight):
            raise bad(f"hint weight must be >= 0, got {self.hint_weight}", "use e.g. --hint-weight 1")
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise bad("epochs, batch size and patience must be >= 1", "pass positive integers")
        if self.optimizer not in OPTIMIZERS:
            raise bad(f"unknown optimizer {self.optimizer!r}", f"use one of {', '.join(OPTIMIZERS)}")
        if not (self.lr > 0 and math.isfinite(self.lr)) or self.weight_decay < 0:
            raise bad(f"lr must be > 0 and weight decay >= 0 (got {self.lr}, {self.weight_decay})",
                      "use e.g. --lr 3e-3")
        for pair in self.hints:
            if len(pair) != 2 or not all(isinstance(s, str) and s for s in pair):
                raise bad(f"a hint is a pair of layer names, got {pair!r}", "write --hint teacher_layer:student_layer")
        from .losses import LOSSES

        LOSSES.get(self.loss)  # unknown loss -> ConfigError listing the known ones

    @property
    def uses_teacher(self) -> bool:
        return self.loss != "ce" or bool(self.hints)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hints"] = [list(p) for p in self.hints]
        return d


def parse_hint(text: str) -> tuple[str, str]:
    """'teacher_layer:student_layer' -> ("teacher_layer", "student_layer")."""
    parts = text.split(":")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"bad hint {text!r}", "write --hint teacher_layer:student_layer, e.g. stage2:stage2")
    return parts[0], parts[1]
