"""Golden values for DKD, logit standardisation and the feature losses (cosine, attention transfer).

Hand-written numbers come from the formulas worked out with numpy (shown beside them), not from the code
under test; the parametrised checks compare against an independent numpy implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edgekd.distill.losses import (FEATURE_LOSSES, LOSSES, attention_transfer, decoupled_kd,
                                   decoupled_kd_standardized, dkd_parts, hint_cosine, hinton_kd,
                                   logit_standardized_kd, standardize)


def _sm(z, t=1.0):
    z = np.asarray(z, dtype=np.float64) / t
    e = np.exp(z - z.max())
    return e / e.sum()


def _kl(p, q):
    return float(np.sum(p * np.log(p / q)))


def _np_dkd_parts(zs, zt, y, t):
    ps, pt = _sm(zs, t), _sm(zt, t)
    b = lambda p: np.array([p[y], 1 - p[y]])  # noqa: E731
    rest = [k for k in range(len(zs)) if k != y]
    return (_kl(b(pt), b(ps)) * t * t,
            _kl(_sm(np.asarray(zt)[rest], t), _sm(np.asarray(zs)[rest], t)) * t * t)


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_dkd_single_row_golden_number():
    # z_s=[1,2,3], z_t=[3,2,1], y=2, T=2: b_s=[.506480,.493520] b_t=[.186324,.813676] -> TCKD = 4*KL = 0.882058
    # non-targets {0,1}: softmax([.5,1]) vs softmax([1.5,1]) -> NCKD = 4*KL = 0.489837; CE = 0.407606
    # L = CE + 1*TCKD + 8*NCKD = 5.208362
    zs, zt, y = _t([[1.0, 2.0, 3.0]]), _t([[3.0, 2.0, 1.0]]), torch.tensor([2])
    tckd, nckd = dkd_parts(zs, zt, y, 2.0)
    assert float(tckd) == pytest.approx(0.882058, abs=2e-6)
    assert float(nckd) == pytest.approx(0.489837, abs=2e-6)
    got = decoupled_kd(zs, zt, y, temperature=2.0, dkd_alpha=1.0, dkd_beta=8.0)
    assert float(got) == pytest.approx(5.208362, abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("t", [1.0, 4.0])
def test_dkd_matches_numpy_on_random_rows(seed, t):
    rng = np.random.default_rng(seed)
    zs, zt = rng.normal(0, 3, (5, 7)), rng.normal(0, 3, (5, 7))
    y = rng.integers(0, 7, 5)
    parts = np.array([_np_dkd_parts(a, b, c, t) for a, b, c in zip(zs, zt, y)]).mean(0)
    ce = np.mean([-math.log(_sm(a)[c]) for a, c in zip(zs, y)])
    got = decoupled_kd(_t(zs), _t(zt), torch.tensor(y), temperature=t, dkd_alpha=0.5, dkd_beta=3.0)
    assert float(got) == pytest.approx(ce + 0.5 * parts[0] + 3.0 * parts[1], rel=1e-4)


def test_hinton_kl_decomposes_into_tckd_and_weighted_nckd():
    # the identity DKD rests on: KD = TCKD + (1 - p_t,y) * NCKD (both T^2-scaled, per sample)
    zs, zt, y, t = _t([[0.3, -1.2, 2.0, 0.7]]), _t([[1.5, 0.2, -0.4, 2.2]]), torch.tensor([3]), 3.0
    tckd, nckd = dkd_parts(zs, zt, y, t)
    p_ty = float(torch.softmax(zt / t, -1)[0, 3])
    kd = float(hinton_kd(zs, zt, y, temperature=t, alpha=1.0))
    assert kd == pytest.approx(float(tckd) + (1 - p_ty) * float(nckd), rel=1e-5)


def test_dkd_weights_select_the_parts():
    zs, zt, y = _t([[1.0, 0.0, -1.0]]), _t([[0.0, 2.0, 1.0]]), torch.tensor([0])
    ce = float(torch.nn.functional.cross_entropy(zs, y))
    tckd, nckd = (float(v) for v in dkd_parts(zs, zt, y, 4.0))
    assert float(decoupled_kd(zs, zt, y, 4.0, 0.0, 0.0)) == pytest.approx(ce, rel=1e-6)
    assert float(decoupled_kd(zs, zt, y, 4.0, 1.0, 0.0)) == pytest.approx(ce + tckd, rel=1e-6)
    assert float(decoupled_kd(zs, zt, y, 4.0, 0.0, 1.0)) == pytest.approx(ce + nckd, rel=1e-6)


def test_standardize_is_z_score_with_bessel():
    z = _t([[2.0, 4.0, 6.0], [1.0, 1.0, 4.0]])
    ref = np.array([(r - r.mean()) / r.std(ddof=1) for r in z.numpy().astype(np.float64)])
    assert np.allclose(standardize(z).numpy(), ref, atol=1e-6)


def test_lskd_single_row_golden_number():
    # z_s=[2,4,6] -> Z=[-1,0,1]; z_t=[9,5,1] -> Z=[1,0,-1]; T=2, alpha=.5, y=2
    # soft part = T^2 KL(softmax([.5,0,-.5]) || softmax([-.5,0,.5])) = 4 * .320157 = 1.280627
    # CE on raw z_s = -ln softmax([2,4,6])[2] = 0.142932 ; L = .5*1.280627 + .5*0.142932 = 0.711780
    got = logit_standardized_kd(_t([[2.0, 4.0, 6.0]]), _t([[9.0, 5.0, 1.0]]), torch.tensor([2]),
                                temperature=2.0, alpha=0.5)
    assert float(got) == pytest.approx(0.711780, abs=2e-6)


def test_lskd_ignores_teacher_scale_and_shift_but_hinton_does_not():
    zs, zt, y = _t([[0.2, 1.0, -0.5, 0.3]]), _t([[1.0, 3.0, -2.0, 0.0]]), torch.tensor([1])
    a = float(logit_standardized_kd(zs, zt, y, 2.0, 0.9))
    b = float(logit_standardized_kd(zs, 5.0 * zt + 7.0, y, 2.0, 0.9))
    assert a == pytest.approx(b, rel=1e-5)
    assert abs(float(hinton_kd(zs, zt, y, 2.0, 0.9)) - float(hinton_kd(zs, 5.0 * zt + 7.0, y, 2.0, 0.9))) > 0.1


def test_dkd_ls_is_dkd_on_standardized_logits():
    zs, zt, y = _t([[2.0, 4.0, 6.0]]), _t([[9.0, 5.0, 1.0]]), torch.tensor([2])
    ce = float(torch.nn.functional.cross_entropy(zs, y))
    expected = float(decoupled_kd(standardize(zs), standardize(zt), y, 4.0, 1.0, 8.0)) \
        - float(torch.nn.functional.cross_entropy(standardize(zs), y)) + ce
    assert float(decoupled_kd_standardized(zs, zt, y, 4.0, 1.0, 8.0)) == pytest.approx(expected, rel=1e-5)


def test_cosine_hint_golden_and_scale_free():
    s, t = _t([[1.0, 0.0], [1.0, 1.0]]), _t([[0.0, 1.0], [2.0, 2.0]])
    # row 1: orthogonal -> 1 - 0 = 1; row 2: same direction -> 0; mean 0.5
    assert float(hint_cosine(s, t)) == pytest.approx(0.5, abs=1e-6)
    assert float(hint_cosine(3.0 * s, t)) == pytest.approx(0.5, abs=1e-6)


def test_attention_transfer_golden_number():
    # one sample, 1 channel, 1x2 map: f_s = [1, 0] -> Q_s = normalise([1, 0]) = [1, 0]
    # f_t = [1, 1] -> Q_t = [.707107, .707107]; mean sq diff = ((1-.707107)^2 + .707107^2)/2 = .292893
    # L = (1000/2) * .292893 = 146.4466
    fs = torch.tensor([[[[1.0, 0.0]]]])
    ft = torch.tensor([[[[1.0, 1.0]]]])
    assert float(attention_transfer(fs, ft)) == pytest.approx(146.4466, rel=1e-5)


def test_attention_transfer_ignores_channel_count_and_resizes():
    torch.manual_seed(0)
    ft = torch.rand(2, 16, 4, 4)
    assert float(attention_transfer(ft[:, :3].repeat(1, 2, 1, 1) * 0 + ft.pow(2).mean(1, keepdim=True).sqrt(),
                                    ft)) == pytest.approx(0.0, abs=1e-4)
    assert float(attention_transfer(torch.rand(2, 5, 8, 8), ft)) > 0  # 8x8 student map resized to 4x4


def test_registries_list_the_new_entries():
    assert {"dkd", "lskd", "dkd_ls", "hinton", "ce"} <= set(LOSSES.names())
    assert set(FEATURE_LOSSES.names()) == {"mse", "cosine", "at"}


def test_dkd_warmup_scales_only_the_kd_terms():
    zs, zt, y = _t([[1.0, 0.0, -1.0]]), _t([[0.0, 2.0, 1.0]]), torch.tensor([0])
    ce = float(torch.nn.functional.cross_entropy(zs, y))
    tckd, nckd = (float(v) for v in dkd_parts(zs, zt, y, 4.0))
    for fn in (decoupled_kd, decoupled_kd_standardized):
        full = float(fn(zs, zt, y, 4.0, 1.0, 8.0))
        assert float(fn(zs, zt, y, 4.0, 1.0, 8.0, warmup=0.0)) == pytest.approx(ce, rel=1e-6)
        assert float(fn(zs, zt, y, 4.0, 1.0, 8.0, warmup=0.25)) == pytest.approx(ce + 0.25 * (full - ce), rel=1e-6)
    assert float(decoupled_kd(zs, zt, y, 4.0, 1.0, 8.0)) == pytest.approx(ce + tckd + 8 * nckd, rel=1e-6)


def test_warmup_defaults_to_a_twelfth_of_the_epochs_for_dkd_only():
    from edgekd.distill.config import DistillConfig
    from edgekd.distill.losses import warmup_epochs, warmup_factor

    assert warmup_epochs(decoupled_kd, DistillConfig(loss="dkd", epochs=24)) == 2
    assert warmup_epochs(decoupled_kd, DistillConfig(loss="dkd", epochs=5)) == 1
    assert warmup_epochs(decoupled_kd_standardized, DistillConfig(loss="dkd_ls", epochs=5, kd_warmup_epochs=0)) == 0
    assert warmup_epochs(decoupled_kd, DistillConfig(loss="dkd", epochs=5, kd_warmup_epochs=3)) == 3
    assert warmup_epochs(hinton_kd, DistillConfig(epochs=24)) == 0  # Hinton's loss is not ramped
    assert [warmup_factor(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0


def test_warmup_longer_than_training_is_refused():
    from edgekd.distill.config import DistillConfig
    from edgekd.errors import ConfigError

    with pytest.raises(ConfigError, match="warm-up"):
        DistillConfig(loss="dkd", epochs=2, kd_warmup_epochs=3)
    with pytest.raises(ConfigError, match="warm-up"):
        DistillConfig(loss="dkd", epochs=2, kd_warmup_epochs=-1)


def test_trainer_ramps_dkd_over_the_warmup_steps(monkeypatch):
    """The trainer passes warmup = (step + 1) / warm-up steps to DKD: 4 steps per epoch, 1 warm-up epoch."""
    from edgekd.data import Dataset
    from edgekd.distill import losses, trainer
    from edgekd.distill.config import DistillConfig

    seen = []
    real = losses.LOSSES.get("dkd")

    def spy(s, t, y, temperature, dkd_alpha, dkd_beta, warmup=1.0):
        seen.append(warmup)
        return real(s, t, y, temperature, dkd_alpha, dkd_beta, warmup)

    monkeypatch.setitem(losses.LOSSES._entries, "dkd", spy)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = np.arange(32) % 3
    data = Dataset(spec="test", x_train=x, y_train=y, x_val=x[:8], y_val=y[:8], x_test=x[:8], y_test=y[:8],
                   num_classes=3, class_names=("a", "b", "c"), kind="features")
    net = torch.nn.Linear(4, 3)
    trainer.train(net, data, DistillConfig(loss="dkd", epochs=3, batch_size=8, patience=3, kd_warmup_epochs=1),
                  teacher_logits=rng.standard_normal((32, 3)).astype(np.float32))
    assert seen == pytest.approx([0.25, 0.5, 0.75] + [1.0] * 9)
