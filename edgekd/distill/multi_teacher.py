"""Several teachers, one student: soft targets combined by fixed weights or per-sample confidence.

Teachers may be any mix of kinds edgekd loads (torch, ONNX, TFLite): only their logits are used,
computed once on the training set. The combined target at temperature T is the mixture

    p(x) = Σ_i w_i(x) · softmax(z_i(x) / T),   Σ_i w_i(x) = 1

and it is handed to the loss as the logits z(x) = T · log p(x) (softmax(z/T) = p exactly), so every logit
loss (hinton, dkd, lskd) works unchanged. Weights: ``fixed`` (given, or equal), or ``confidence``:
w_i(x) ∝ p_i(y | x) at T = 1, the probability teacher i gives the true label (a teacher that is wrong on a
sample counts less on it; after CA-MKD, C. Zhang et al., "Confidence-Aware Multi-Teacher Knowledge
Distillation", ICASSP 2022, arXiv:2201.00007, which weighs teachers by their cross-entropy with the label).
Paper for averaging teachers' soft targets: S. You, C. Xu, C. Xu, D. Tao, "Learning from Multiple Teacher
Networks", KDD 2017.

Class order: every teacher must score the data's classes in the data's order. Each teacher's validation
predictions are checked: if its outputs line up with the classes only after a permutation, it is refused
(naming the permutation), unless a ``class_map`` says which teacher output holds each data class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import TeacherError

if TYPE_CHECKING:
    from ..data import Dataset
    from .config import DistillConfig


def apply_class_map(z: np.ndarray, class_map: Sequence[int] | None, name: str, num_classes: int) -> np.ndarray:
    """``z[:, class_map]``: column k becomes the teacher output that holds data class k."""
    if class_map is None:
        return z
    m = list(class_map)
    if len(m) != num_classes or len(set(m)) != len(m) or not all(0 <= j < z.shape[1] for j in m):
        raise TeacherError(f"class map for teacher {name} must list each of its {z.shape[1]} outputs once for the "
                           f"{num_classes} data classes, got {m}", "write e.g. --teacher-map 2=1,0,2,...")
    return z[:, m]


def check_class_order(z_val: np.ndarray, y_val: np.ndarray, name: str, min_gain: float = 0.2) -> None:
    """Refuse a teacher whose outputs match the labels much better after a permutation of its classes."""
    k = z_val.shape[1]
    pred = z_val.argmax(1)
    plain = float((pred == y_val).mean())
    best = []  # for each data class, the teacher output predicted most often on it
    for c in range(k):
        rows = pred[y_val == c]
        best.append(int(np.bincount(rows, minlength=k).argmax()) if len(rows) else c)
    if sorted(best) != list(range(k)) or best == list(range(k)):
        return
    permuted = float((np.asarray(best)[y_val] == pred).mean())
    if permuted - plain >= min_gain:
        raise TeacherError(
            f"teacher {name} scores the classes in another order: validation accuracy {plain:.2f} as given, "
            f"{permuted:.2f} with its outputs {','.join(map(str, best))} taken as classes 0..{k - 1}",
            f"map its classes explicitly, e.g. --teacher-map N={','.join(map(str, best))} (N = its position)")


def combine(logits: Sequence[np.ndarray], labels: np.ndarray, temperature: float, weighting: str = "fixed",
            weights: Sequence[float] = ()) -> np.ndarray:
    """Teachers' logits -> one set of logits whose tempered softmax is the weighted mixture."""
    n = len(logits)
    z = np.stack([np.asarray(l, dtype=np.float64) for l in logits])  # (teachers, samples, classes)

    def softmax(a: np.ndarray) -> np.ndarray:
        e = np.exp(a - a.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    if weighting == "confidence":
        probs = softmax(z)
        labels = np.asarray(labels)  # an unlabelled sample (-1, --unlabeled): each teacher's own confidence
        p_true = np.where(labels >= 0, probs[:, np.arange(z.shape[1]), np.maximum(labels, 0)], probs.max(-1))
        w = (p_true + 1e-8) / (p_true + 1e-8).sum(0, keepdims=True)
    else:
        fixed = np.asarray(weights if weights else [1.0] * n, dtype=np.float64)
        if len(fixed) != n:
            raise TeacherError(f"{len(fixed)} teacher weights for {n} teachers", "give one --teacher-weight each")
        w = np.repeat((fixed / fixed.sum())[:, None], z.shape[1], axis=1)
    mix = (w[..., None] * softmax(z / temperature)).sum(0)
    return (temperature * np.log(np.clip(mix, 1e-30, None))).astype(np.float32)


def teacher_logits_for(teachers: Sequence[Any], data: "Dataset", config: "DistillConfig", class_maps: dict[int, Sequence[int]],
                       say: Any) -> np.ndarray:
    """Check every teacher's class order on validation data, then combine their training-set logits."""
    train_z = []
    for i, t in enumerate(teachers, start=1):
        cmap = class_maps.get(i)
        z_val = apply_class_map(t.logits(data.x_val), cmap, t.name, data.num_classes)
        if cmap is None:
            check_class_order(z_val, data.y_val, t.name)
        acc = float((z_val.argmax(1) == data.y_val).mean())
        say(f"teacher {i} ({t.name}, {t.kind}): validation accuracy {acc:.4f}")
        train_z.append(apply_class_map(t.logits(data.x_train), cmap, t.name, data.num_classes))
    return combine(train_z, data.y_train, config.temperature, config.teacher_weighting, config.teacher_weights)
