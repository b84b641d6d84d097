"""The names of distillation's pluggable pieces and what each implies, as torch-free data.

Config validation (``DistillConfig``), the CLI's choices and the orchestrators read these tables; the
implementations register under the same names in ``methods.py`` and ``losses.py`` (which import torch), and a
test checks the two agree. Rules such as "this loss needs a teacher" are fields here, not string comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodInfo:
    needs_teacher: str  # "always", "never", or "loss" (when the loss is a KD loss or hints are set)
    summary: str
    precomputes_teacher: bool = False  # the teacher's training-set outputs are computed once and cached
    real_data: bool = True  # trains on real data (False: data-free, which needs none)
    several_teachers: bool = False  # takes more than one --teacher


@dataclass(frozen=True)
class LossInfo:
    kd: bool  # uses the teacher's outputs (False: hard-label CE alone)
    warmup: bool = False  # its distillation terms ramp in over --kd-warmup-epochs (default 1/12 of the epochs)
    hard_labels: bool = False  # splits the target class from the others: needs one class per sample (no mixup)


METHODS: dict[str, MethodInfo] = {
    "kd": MethodInfo("loss", "one logit loss (--loss) against the teacher, optional feature hints",
                     precomputes_teacher=True),
    "feature": MethodInfo("always", "KD + feature distillation: pairs by name or auto, projections, mse/cosine/at"),
    "qat": MethodInfo("loss", "quantization-aware distillation: the student trains through simulated int8"),
    "multi-teacher": MethodInfo("always", "several teachers of any kind; fixed or per-sample confidence weights",
                                several_teachers=True),
    "mutual": MethodInfo("never", "deep mutual learning: --peers students teach each other, no teacher"),
    "born-again": MethodInfo("never", "born-again networks: each generation distils the previous one"),
    "self-ckpt": MethodInfo("always", "continue from an earlier checkpoint of this student, distilled from it"),
    "data-free": MethodInfo("always", "DeepInversion: inputs synthesised from the teacher's BatchNorm statistics",
                            real_data=False),
    "cross-modal": MethodInfo("always", "paired data: the teacher sees its own view of each sample",
                              precomputes_teacher=True),
}
LOSSES: dict[str, LossInfo] = {
    "hinton": LossInfo(kd=True),
    "ce": LossInfo(kd=False),
    "lskd": LossInfo(kd=True),
    "dkd": LossInfo(kd=True, warmup=True, hard_labels=True),
    "dkd_ls": LossInfo(kd=True, warmup=True, hard_labels=True),
}
DEFAULT_KD_LOSS = "hinton"  # what methods that always distil use when --loss ce is given
FEATURE_LOSSES = ("mse", "cosine", "at")
QAT_WEIGHT_SCHEMES = ("per-channel", "per-tensor")
DEVICES = ("cpu", "cuda", "auto")
OPTIMIZERS = ("adamw", "sgd")
WEIGHTINGS = ("fixed", "confidence")
AUGMENTS = ("none", "mixup", "crop-flip")
INITS = ("auto", "teacher", "random")  # how a student's weights start (distill.seeding)


def check_name(kind: str, name: str, known: "dict[str, object] | tuple[str, ...]") -> None:
    """A ConfigError listing the known names when ``name`` is not one of them."""
    from ..errors import ConfigError

    if name not in known:
        raise ConfigError(f"unknown {kind} {name!r}", f"use one of: {', '.join(sorted(known))}")


def kd_loss(loss: str) -> str:
    """``loss`` when it distils, else the default KD loss (methods that always distil)."""
    return loss if LOSSES[loss].kd else DEFAULT_KD_LOSS
