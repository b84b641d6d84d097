"""Typed, frozen configuration of one distillation run, validated on construction."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError
from .names import (AUGMENTS, DEVICES, FEATURE_LOSSES, INITS, LOSSES, METHODS, OPTIMIZERS, QAT_WEIGHT_SCHEMES,
                    WEIGHTINGS, check_name)


@dataclass(frozen=True)
class DistillConfig:
    """How a student is trained against a teacher."""

    method: str = "kd"  # a name in distill.methods.METHODS: how the student is trained (kd, feature, qat, ...)
    loss: str = "hinton"  # a name in distill.losses.LOSSES ("hinton", "dkd", "lskd", "dkd_ls", or "ce" alone)
    # T and alpha defaults: measured on Fashion-MNIST students (benchmarks/distill_quality.py): T = 4, alpha = 0.9
    # (the classic CIFAR setting) trailed the student trained alone in short budgets; T = 2, alpha = 0.7 did not.
    temperature: float = 2.0  # T: softens teacher and student distributions
    alpha: float = 0.7  # weight of the soft (KD) term; 1 − alpha weighs hard-label CE
    hints: tuple[tuple[str, str], ...] = ()  # (teacher_layer, student_layer) pairs for FitNets hints
    hint_weight: float = 1.0  # β: weight of the summed hint losses
    feature_loss: str = "mse"  # a name in distill.losses.FEATURE_LOSSES: mse (FitNets), cosine, at (attention)
    dkd_alpha: float = 1.0  # DKD: weight of the target-class term TCKD
    dkd_beta: float = 8.0  # DKD: weight of the non-target-class term NCKD
    # epochs over which the distillation terms ramp linearly from 0 to full weight (CE is never ramped);
    # None: the loss's own default (DKD and DKD+LS: 1/12 of the epochs, rounded up, as the paper's 20 of 240; others 0)
    kd_warmup_epochs: int | None = None
    peers: int = 2  # mutual: students trained together
    generations: int = 2  # born-again: student generations after the first (each distils the previous)
    teacher_weights: tuple[float, ...] = ()  # multi-teacher: fixed weights (default equal)
    teacher_weighting: str = "fixed"  # multi-teacher: "fixed" or "confidence" (per sample)
    qat_weights: str = "per-channel"  # qat: int8 weight scales "per-channel" or "per-tensor" (as the target's kernels)
    # qat: epochs during which BatchNorm updates its statistics; after them it is frozen (running statistics, as
    # deployed). None: two thirds of the epochs, rounded (benchmarks/methods.py measured 10 of 15 against never
    # freezing; other fractions were not tried)
    qat_bn_epochs: int | None = None
    synthetic_samples: int = 2048  # data-free: inputs synthesised from the teacher
    inversion_steps: int = 200  # data-free: optimisation steps per synthetic batch
    # "mixup": every batch is mixed per sample, x' = λ·x_i + (1 − λ)·x_j, λ ~ U(0, 1), the teacher labels x' as it
    # is trained (function matching) and the hard-label CE uses the mixed labels; "none": the samples as they are
    augment: str = "none"
    epochs: int = 5
    batch_size: int = 128
    optimizer: str = "adamw"  # "adamw" or "sgd" (momentum 0.9, nesterov)
    lr: float = 3e-3  # peak learning rate; cosine-decayed to 0 over all steps
    weight_decay: float = 5e-4
    patience: int = 3  # early stop after this many epochs without a better validation accuracy
    max_grad_norm: float = 5.0  # gradient clipping; 0 disables
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    # 2-D conv students train in channels-last memory (NHWC): the same model, other kernels (float sums in another
    # order); measured 0-31% faster an epoch here, accuracy within the seed spread (benchmarks/train_throughput.py)
    channels_last: bool = True
    # how a student's weights start (distill.seeding): "auto" prunes the teacher down to the student where it can
    # (a PyTorch teacher of the student's family and depth, the same inputs; kd, feature and qat), else random;
    # "teacher" requires it; "random" never does
    init: str = "auto"
    device: str = "cpu"  # where the student trains: "cpu", "cuda" or "auto" (distill.device)

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
        if not (math.isfinite(self.dkd_alpha) and math.isfinite(self.dkd_beta)) or min(self.dkd_alpha,
                                                                                     self.dkd_beta) < 0:
            raise bad(f"DKD weights must be >= 0, got {self.dkd_alpha}, {self.dkd_beta}", "use e.g. --dkd-beta 8")
        if self.kd_warmup_epochs is not None and not (0 <= self.kd_warmup_epochs <= self.epochs):
            raise bad(f"KD warm-up must be 0..epochs ({self.epochs}), got {self.kd_warmup_epochs}",
                      "use e.g. --kd-warmup-epochs 1, or 0 for none")
        if not (2 <= self.peers <= 8) or not (1 <= self.generations <= 8):
            raise bad(f"peers must be in 2..8 and generations in 1..8 (got {self.peers}, {self.generations})",
                      "use e.g. --peers 2 --generations 2")
        if any(not (math.isfinite(w) and w >= 0) for w in self.teacher_weights) or (
                self.teacher_weights and sum(self.teacher_weights) <= 0):
            raise bad(f"teacher weights must be >= 0 and not all 0, got {self.teacher_weights}",
                      "use e.g. --teacher-weight 0.5 --teacher-weight 0.5")
        if self.teacher_weighting not in WEIGHTINGS:
            raise bad(f"unknown teacher weighting {self.teacher_weighting!r}", f"use one of {', '.join(WEIGHTINGS)}")
        if self.augment not in AUGMENTS:
            raise bad(f"unknown augmentation {self.augment!r}", f"use one of {', '.join(AUGMENTS)}")
        check_name("distillation loss", self.loss, LOSSES)
        check_name("feature loss", self.feature_loss, FEATURE_LOSSES)
        check_name("distillation method", self.method, METHODS)
        if self.augment == "mixup" and LOSSES[self.loss].hard_labels:
            raise bad(f"loss {self.loss!r} splits the target class from the others and needs one label per sample, "
                      "which mixup does not give", "use --loss hinton or lskd with --augment mixup, or --augment none")
        if self.qat_weights not in QAT_WEIGHT_SCHEMES:
            raise bad(f"unknown QAT weight scheme {self.qat_weights!r}",
                      f"use --qat-weights {' or '.join(QAT_WEIGHT_SCHEMES)}")
        if self.qat_bn_epochs is not None and self.qat_bn_epochs < 1:
            raise bad(f"--qat-bn-epochs must be >= 1 (BatchNorm needs statistics before it is frozen), got "
                      f"{self.qat_bn_epochs}", f"use e.g. --qat-bn-epochs {self._default_qat_bn_epochs()}, or "
                      f"{self.epochs} to never freeze it")
        if self.init not in INITS:
            raise bad(f"unknown initialisation {self.init!r}", f"use --init {' or '.join(INITS)}")
        if self.device not in DEVICES:
            raise bad(f"unknown device {self.device!r}", f"use --device {' or '.join(DEVICES)}")
        if self.synthetic_samples < 1 or self.inversion_steps < 1:
            raise bad("synthetic samples and inversion steps must be >= 1", "pass positive integers")

    def _default_qat_bn_epochs(self) -> int:
        return max(1, round(2 * self.epochs / 3))

    @property
    def qat_bn_frozen_after(self) -> int:
        """qat: the epoch after which BatchNorm is frozen (>= epochs: never)."""
        return self._default_qat_bn_epochs() if self.qat_bn_epochs is None else self.qat_bn_epochs

    @property
    def uses_teacher(self) -> bool:
        needs = METHODS[self.method].needs_teacher  # "always", "never", or "loss" (a KD loss or hints)
        return needs == "always" or (needs == "loss" and (self.uses_kd_loss or bool(self.hints)))

    @property
    def uses_kd_loss(self) -> bool:
        """The logit loss reads the teacher's outputs (every loss but hard-label CE alone)."""
        return LOSSES[self.loss].kd

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hints"] = [list(p) for p in self.hints]
        d["teacher_weights"] = list(self.teacher_weights)
        return d


def parse_hint(text: str) -> tuple[str, str]:
    """'teacher_layer:student_layer' -> ("teacher_layer", "student_layer"); 'auto' -> ("auto", "auto")."""
    if text.strip() == "auto":
        return "auto", "auto"
    parts = text.split(":")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"bad hint {text!r}", "write --hint teacher_layer:student_layer, e.g. stage2:stage2")
    return parts[0], parts[1]
