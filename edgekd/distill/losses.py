"""Distillation losses, one registry. Each docstring gives the formula and the paper.

All functions take torch tensors. ``LOSSES`` maps a name to ``fn(student_logits, teacher_logits, labels,
config) -> loss``; feature losses live beside them as plain functions.
"""

from __future__ import annotations

import math

from typing import TYPE_CHECKING, Any, Callable

from ..registry import Registry

if TYPE_CHECKING:
    from .config import DistillConfig

LOSSES: Registry[Callable[..., Any]] = Registry("distillation loss")


def soft_kl(student_logits, teacher_logits, temperature: float):
    """T² · KL(softmax(z_t/T) ‖ softmax(z_s/T)), averaged over the batch.

    KL(p ‖ q) = Σ_k p_k (log p_k − log q_k). The T² factor keeps the gradient magnitude of the soft term
    independent of T (Hinton et al. 2015, §2: the gradients scale as 1/T²).
    Teacher "logits" may be log-probabilities (log p): softmax(log p / T) is exactly the tempered teacher
    distribution, so a teacher that outputs probabilities is handled by passing log(p).
    """
    import torch.nn.functional as F

    t = float(temperature)
    log_q = F.log_softmax(student_logits / t, dim=-1)
    log_p = F.log_softmax(teacher_logits / t, dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()
    return kl * (t * t)


@LOSSES.register("hinton")
def hinton_kd(student_logits, teacher_logits, labels, temperature: float = 4.0, alpha: float = 0.9):
    """Hinton knowledge distillation.

    L = α · T² · KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − α) · CE(softmax(z_s), y)

    z_s, z_t: student and teacher logits; T: temperature; α: weight of the soft term; CE on hard labels
    at T = 1. α = 0 is plain supervised training, α = 1 pure distillation.
    Paper: G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network", NIPS 2014
    Deep Learning Workshop, arXiv:1503.02531.
    """
    import torch.nn.functional as F

    loss = 0.0
    if alpha > 0:
        loss = alpha * soft_kl(student_logits, teacher_logits, temperature)
    if alpha < 1:
        loss = loss + (1.0 - alpha) * F.cross_entropy(student_logits, labels)
    return loss


@LOSSES.register("ce")
def cross_entropy_only(student_logits, teacher_logits, labels, temperature: float = 1.0, alpha: float = 0.0):
    """Student alone: L = CE(softmax(z_s), y). The teacher is ignored (baseline)."""
    import torch.nn.functional as F

    return F.cross_entropy(student_logits, labels)


def hint_mse(projected_student_feature, teacher_feature):
    """FitNets hint loss: L_hint = ½ · mean‖r(f_s) − f_t‖², where r is a learned projection.

    Averaged over batch and elements (PyTorch ``mse_loss`` × ½, as in the paper's ½‖·‖² form).
    Paper: A. Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015, arXiv:1412.6550.
    """
    import torch.nn.functional as F

    return 0.5 * F.mse_loss(projected_student_feature, teacher_feature)


def probs_to_logits(probs, eps: float = 1e-12):
    """log p: turns a teacher's probabilities into logits (up to a per-row constant, which softmax ignores)."""
    import torch

    return torch.log(probs.clamp_min(eps))


def standardize(logits, eps: float = 1e-7):
    """Z-score each row: Z(z) = (z − mean(z)) / (std(z) + ε), std with Bessel's correction (as the paper's code)."""
    mean = logits.mean(dim=-1, keepdim=True)
    std = logits.std(dim=-1, keepdim=True)
    return (logits - mean) / (std + eps)


@LOSSES.register("lskd")
def logit_standardized_kd(student_logits, teacher_logits, labels, temperature: float = 2.0, alpha: float = 0.7):
    """KD on z-scored logits (logit standardisation).

    L = α · T² · KL(softmax(Z(z_t)/T) ‖ softmax(Z(z_s)/T)) + (1 − α) · CE(softmax(z_s), y),
    Z(z) = (z − mean(z)) / std(z) per sample.

    The student no longer has to match the teacher's logit *scale* and *shift*, only their relations;
    Z(·) plays the role of an adaptive, per-sample temperature. CE still uses the raw student logits.
    Paper: S. Sun, W. Ren, J. Li, R. Wang, X. Cao, "Logit Standardization in Knowledge Distillation",
    CVPR 2024, arXiv:2403.01427.
    """
    import torch.nn.functional as F

    loss = 0.0
    if alpha > 0:
        loss = alpha * soft_kl(standardize(student_logits), standardize(teacher_logits), temperature)
    if alpha < 1:
        loss = loss + (1.0 - alpha) * F.cross_entropy(student_logits, labels)
    return loss


def dkd_parts(student_logits, teacher_logits, labels, temperature: float):
    """(TCKD, NCKD) of decoupled KD, each T²-scaled and averaged over the batch (see ``decoupled_kd``)."""
    import torch
    import torch.nn.functional as F

    t = float(temperature)
    gt = F.one_hot(labels, student_logits.shape[-1]).bool()
    p_s = F.softmax(student_logits / t, dim=-1)
    p_t = F.softmax(teacher_logits / t, dim=-1)
    b_s = torch.stack([(p_s * gt).sum(-1), (p_s * ~gt).sum(-1)], dim=-1).clamp_min(1e-12)
    b_t = torch.stack([(p_t * gt).sum(-1), (p_t * ~gt).sum(-1)], dim=-1).clamp_min(1e-12)
    tckd = (b_t * (b_t.log() - b_s.log())).sum(-1).mean() * t * t
    # non-target distributions: softmax over the classes other than y (the target is masked out)
    log_q = F.log_softmax(student_logits / t - 1000.0 * gt, dim=-1)
    log_p = F.log_softmax(teacher_logits / t - 1000.0 * gt, dim=-1)
    nckd = (log_p.exp() * (log_p - log_q)).masked_fill(gt, 0.0).sum(-1).mean() * t * t
    return tckd, nckd


@LOSSES.register("dkd")
def decoupled_kd(student_logits, teacher_logits, labels, temperature: float = 4.0, dkd_alpha: float = 1.0,
                 dkd_beta: float = 8.0, warmup: float = 1.0):
    """Decoupled knowledge distillation (DKD).

    L = CE(softmax(z_s), y) + α · TCKD + β · NCKD
    TCKD = T² · KL(b_t ‖ b_s),   b = [p_y, 1 − p_y]                    (target vs all non-targets)
    NCKD = T² · KL(p̂_t ‖ p̂_s),  p̂_k = exp(z_k/T) / Σ_{j≠y} exp(z_j/T), k ≠ y   (among non-targets)
    with p = softmax(z/T). Classic KD is TCKD + (1 − p_t,y)·NCKD: the NCKD weight shrinks exactly when the
    teacher is confident, which DKD removes by weighing it with a free β. Paper defaults α = 1, β = 8, T = 4
    (``--dkd-alpha``, ``--dkd-beta``; edgekd's ``--alpha`` is not used by this loss). As in the paper (20 of 240
    epochs), the KD terms are ramped in: ``warmup`` in [0, 1] scales α·TCKD + β·NCKD, rising linearly over the
    first ``kd_warmup_epochs`` (default 1/12 of the epochs, rounded up). Without it β = 8 swamps the CE term while
    the student is still random and short runs end far below the student trained alone (benchmarks/methods.py).
    Paper: B. Zhao, Q. Cui, R. Song, Y. Qiu, J. Liang, "Decoupled Knowledge Distillation", CVPR 2022,
    arXiv:2203.08679.
    """
    import torch.nn.functional as F

    tckd, nckd = dkd_parts(student_logits, teacher_logits, labels, temperature)
    return F.cross_entropy(student_logits, labels) + warmup * (dkd_alpha * tckd + dkd_beta * nckd)


@LOSSES.register("dkd_ls")
def decoupled_kd_standardized(student_logits, teacher_logits, labels, temperature: float = 4.0,
                              dkd_alpha: float = 1.0, dkd_beta: float = 8.0, warmup: float = 1.0):
    """DKD on z-scored logits: CE(z_s, y) + α·TCKD(Z(z_s), Z(z_t)) + β·NCKD(Z(z_s), Z(z_t)).

    The combination reported in Sun et al., CVPR 2024 (logit standardisation as a plug-in for DKD);
    see ``decoupled_kd`` and ``logit_standardized_kd`` for the parts (and for the warm-up ramp).
    """
    import torch.nn.functional as F

    tckd, nckd = dkd_parts(standardize(student_logits), standardize(teacher_logits), labels, temperature)
    return F.cross_entropy(student_logits, labels) + warmup * (dkd_alpha * tckd + dkd_beta * nckd)


def loss_kwargs(fn: Callable[..., Any], config: "DistillConfig") -> dict[str, Any]:
    """The hyper-parameters ``fn`` takes (temperature, alpha, dkd_alpha, dkd_beta), read from ``config``."""
    import inspect

    params = inspect.signature(fn).parameters
    return {k: getattr(config, k) for k in ("temperature", "alpha", "dkd_alpha", "dkd_beta") if k in params}


def warmup_epochs(fn: Callable[..., Any], config: "DistillConfig") -> int:
    """Epochs over which ``fn``'s distillation terms ramp in: the configured value, else the loss's default
    (1/12 of the epochs, rounded up, for losses with a ``warmup`` parameter; 0 for the others)."""
    import inspect

    if "warmup" not in inspect.signature(fn).parameters:
        return 0
    if config.kd_warmup_epochs is not None:
        return config.kd_warmup_epochs
    return math.ceil(config.epochs / 12)


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear ramp: (step + 1) / warmup_steps, 1 after the warm-up (step counts from 0)."""
    return 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)


FEATURE_LOSSES: Registry[Callable[..., Any]] = Registry("feature loss")
FEATURE_LOSSES.add("mse", hint_mse)


@FEATURE_LOSSES.register("cosine")
def hint_cosine(projected_student_feature, teacher_feature):
    """Cosine hint loss: L = mean_i (1 − cos(vec r(f_s)_i, vec f_t_i)), one vector per sample i.

    Matches the direction of the (projected) student feature to the teacher's, ignoring its scale, which
    MSE must also learn. Used for features e.g. in CRD's and SimKD's follow-ups; here as FitNets with a
    scale-free distance (Romero et al., ICLR 2015, arXiv:1412.6550, for the hint/regressor scheme).
    """
    import torch.nn.functional as F

    s = projected_student_feature.flatten(1)
    t = teacher_feature.flatten(1)
    return (1.0 - F.cosine_similarity(s, t, dim=1, eps=1e-8)).mean()


def attention_map(feature, p: int = 2):
    """Q = vec(Σ_c |F_c|^p / C), L2-normalised per sample (spatial attention of a conv feature map)."""
    import torch.nn.functional as F

    return F.normalize(feature.abs().pow(p).mean(dim=1).flatten(1), dim=1)


AT_BETA = 1000.0  # the paper's β for this mean-over-positions form


@FEATURE_LOSSES.register("at")
def attention_transfer(student_feature, teacher_feature):
    """Attention transfer: L_AT = (β/2) · mean_{i,j} (Q_s,ij − Q_t,ij)²,  Q = attention_map(F), β = 1000.

    Q is the channel-mean of the squared activations, flattened and L2-normalised per sample i; j runs
    over spatial positions. No projection is needed (channels are pooled away); a student map of another
    spatial size is resized to the teacher's (bilinear). β = 1000 with the mean over positions follows the
    authors' code, so ``--hint-weight 1`` is the paper's setting.
    Paper: S. Zagoruyko, N. Komodakis, "Paying More Attention to Attention: Improving the Performance of
    Convolutional Neural Networks via Attention Transfer", ICLR 2017, arXiv:1612.03928.
    """
    import torch.nn.functional as F

    if student_feature.shape[2:] != teacher_feature.shape[2:]:
        mode = "bilinear" if student_feature.dim() == 4 else "linear"
        student_feature = F.interpolate(student_feature, size=teacher_feature.shape[2:], mode=mode,
                                        align_corners=False)
    d = attention_map(student_feature) - attention_map(teacher_feature)
    return 0.5 * AT_BETA * d.pow(2).mean()
