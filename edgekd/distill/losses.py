"""Distillation losses, one registry. Each docstring gives the formula and the paper.

All functions take torch tensors. ``LOSSES`` maps a name to ``fn(student_logits, teacher_logits, labels,
config) -> loss``; feature losses live beside them as plain functions.
"""

from __future__ import annotations

from typing import Any, Callable

from ..registry import Registry

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
