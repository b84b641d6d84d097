"""Golden values for the distillation losses, computed by hand from the formulas (numpy, not torch)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES, hint_mse, hinton_kd, probs_to_logits, soft_kl


def _softmax(z, t=1.0):
    e = np.exp((np.asarray(z, dtype=np.float64) - np.max(z)) / t)
    return e / e.sum()


def _hand_kd(zs, zt, y, t, alpha):
    p = _softmax(zt, t)
    q = _softmax(zs, t)
    kl = float(np.sum(p * (np.log(p) - np.log(q))))
    ce = -math.log(_softmax(zs)[y])
    return alpha * t * t * kl + (1 - alpha) * ce


ZS = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
ZT = [[3.0, 2.0, 1.0], [0.0, 0.0, 4.0]]
Y = [2, 0]


def _kd(zs=ZS, zt=ZT, y=Y, t=4.0, alpha=0.9):
    return float(hinton_kd(torch.tensor(zs), torch.tensor(zt), torch.tensor(y), temperature=t, alpha=alpha))


def test_hinton_matches_hand_computed_value():
    expected = np.mean([_hand_kd(a, b, c, 2.0, 0.7) for a, b, c in zip(ZS, ZT, Y)])
    assert _kd(t=2.0, alpha=0.7) == pytest.approx(expected, rel=1e-6)


def test_single_row_golden_number():
    # z_s = [1,2,3], z_t = [3,2,1], T = 2, alpha = 0.5, y = 2, worked out by hand:
    # p = softmax([1.5,1,.5]) = [.506480, .307196, .186324]; q = reversed(p)
    # KL(p||q) = .506480*ln(.506480/.186324) + .307196*0 + .186324*ln(.186324/.506480) = .320157
    # CE = -ln softmax([1,2,3])[2] = .407606 ; L = .5*4*.320157 + .5*.407606 = 0.844116
    got = _kd([[1.0, 2.0, 3.0]], [[3.0, 2.0, 1.0]], [2], t=2.0, alpha=0.5)
    assert got == pytest.approx(0.844116, abs=2e-6)


def test_alpha_zero_is_plain_cross_entropy():
    ce = float(torch.nn.functional.cross_entropy(torch.tensor(ZS), torch.tensor(Y)))
    assert _kd(alpha=0.0) == pytest.approx(ce, rel=1e-7)
    # and the teacher is irrelevant then
    assert _kd(alpha=0.0, zt=[[9.0, -9.0, 0.0], [1.0, 1.0, 1.0]]) == pytest.approx(ce, rel=1e-7)


def test_alpha_one_ignores_labels():
    assert _kd(alpha=1.0, y=[0, 1]) == pytest.approx(_kd(alpha=1.0, y=[2, 2]), rel=1e-7)


@pytest.mark.parametrize("t", [1.0, 2.0, 4.0, 8.0])
def test_soft_term_is_scaled_by_t_squared(t):
    zs, zt = torch.tensor(ZS), torch.tensor(ZT)
    p = torch.softmax(zt / t, -1)
    kl = (p * (torch.log(p) - torch.log_softmax(zs / t, -1))).sum(-1).mean()
    assert float(soft_kl(zs, zt, t)) == pytest.approx(float(kl) * t * t, rel=2e-5)  # float32


def test_identical_logits_give_zero_soft_loss():
    z = torch.tensor(ZS)
    assert float(soft_kl(z, z.clone(), 3.0)) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("t", [1.0, 4.0])
def test_probability_teacher_gives_same_loss_as_logit_teacher(t):
    zt = torch.tensor(ZT)
    probs = torch.softmax(zt, -1)
    from_logits = _kd(zt=ZT, t=t)
    from_probs = float(hinton_kd(torch.tensor(ZS), probs_to_logits(probs), torch.tensor(Y), temperature=t, alpha=0.9))
    assert from_probs == pytest.approx(from_logits, rel=1e-5)
    # feeding the probabilities themselves as if they were logits is wrong, and gives a different loss
    wrong = float(hinton_kd(torch.tensor(ZS), probs, torch.tensor(Y), temperature=t, alpha=0.9))
    assert abs(wrong - from_logits) > 1e-3


def test_teacher_probabilities_detected():
    from edgekd.models.teachers import looks_like_probabilities

    z = np.array(ZT, dtype=np.float32)
    assert not looks_like_probabilities(z)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert looks_like_probabilities(p)


def test_gradient_flows_only_to_student():
    zs = torch.tensor(ZS, requires_grad=True)
    zt = torch.tensor(ZT, requires_grad=True)
    hinton_kd(zs, zt.detach(), torch.tensor(Y)).backward()
    assert zs.grad is not None and zs.grad.abs().sum() > 0
    assert zt.grad is None


def test_hint_mse_is_half_mean_squared_error():
    a, b = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 2.0], [3.0, 2.0]])
    assert float(hint_mse(a, b)) == pytest.approx(0.5 * (1 + 0 + 0 + 4) / 4)


def test_loss_registry_lists_known_names_on_error():
    from edgekd.errors import ConfigError

    assert {"hinton", "ce"} <= set(LOSSES.names())
    with pytest.raises(ConfigError, match="hinton"):
        LOSSES.get("nope")
