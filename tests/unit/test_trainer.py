"""The training loop: frozen teacher, hints, early stopping, divergence guard, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekd.data import load_dataset
from edgekd.distill.config import DistillConfig, parse_hint
from edgekd.distill.trainer import evaluate, train
from edgekd.errors import ConfigError, TrainingError
from edgekd.models.students import StudentSpec, build_student


@pytest.fixture(scope="module")
def blobs(blobs_npz):
    return load_dataset(f"npz:{blobs_npz}", seed=0)


def _teacher(data):
    torch.manual_seed(1)
    t = build_student(StudentSpec("convnet", 0.5, 1, data.input_shape, data.num_classes))
    train(t, data, DistillConfig(loss="ce", epochs=5, batch_size=32, lr=1e-2))
    return t


def test_teacher_weights_unchanged_and_get_no_gradient(blobs):
    teacher = _teacher(blobs)
    with torch.no_grad():
        z = teacher(torch.from_numpy(blobs.x_train)).numpy()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = build_student(StudentSpec("test_convnet", 1.0, 1, blobs.input_shape, blobs.num_classes))
    cfg = DistillConfig(epochs=2, hints=(("stage2", "stage2"),), hint_weight=1.0)
    teacher.train()  # the trainer must put it in eval mode itself (BN statistics must not move)
    train(student, blobs, cfg, teacher_logits=z, teacher_module=teacher)
    assert not teacher.training
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), f"teacher tensor {k} changed"
    for name, p in teacher.named_parameters():
        assert p.grad is None, f"teacher parameter {name} received a gradient"
        assert not p.requires_grad


def test_hints_with_different_shapes_get_a_projection_and_train(blobs):
    teacher = _teacher(blobs)
    student = build_student(StudentSpec("test_convnet", 1.0, 1, blobs.input_shape, blobs.num_classes))
    # teacher stage1 has 8 channels at 8x8, student stage2 has 8 channels at 4x4: channels and size differ
    cfg = DistillConfig(epochs=8, batch_size=32, hints=(("stage1", "stage1"), ("stage3", "stage2")),
                        hint_weight=0.5, lr=1e-2, patience=8)  # hints slow the start: no early stop here
    result = train(student, blobs, cfg, teacher_module=teacher)
    assert result.best_val_accuracy > 0.6


def test_unknown_hint_layer_lists_the_known_ones(blobs):
    teacher = _teacher(blobs)
    student = build_student(StudentSpec("test_convnet", 1.0, 1, blobs.input_shape, blobs.num_classes))
    with pytest.raises(ConfigError, match=r"no layer named 'nope'.*stage1"):
        train(student, blobs, DistillConfig(epochs=1, hints=(("nope", "stage1"),)), teacher_module=teacher)


def test_parse_hint():
    assert parse_hint("stage2:stage1") == ("stage2", "stage1")
    for bad in ("stage2", "a:b:c", ":x"):
        with pytest.raises(ConfigError):
            parse_hint(bad)


def test_divergence_stops_with_epoch_and_step(blobs):
    student = build_student(StudentSpec("test_convnet", 1.0, 1, blobs.input_shape, blobs.num_classes))
    z = np.zeros((len(blobs.x_train), blobs.num_classes), np.float32)
    cfg = DistillConfig(epochs=2, optimizer="sgd", lr=1e36, max_grad_norm=0)  # the first update explodes
    with pytest.raises(TrainingError, match=r"diverged: loss is (nan|inf) at epoch 1, step 2 \(batch"):
        train(student, blobs, cfg, teacher_logits=z)


def test_same_seed_same_weights_and_early_stopping_restores_best(blobs):
    def run(seed):
        torch.manual_seed(123)  # the trainer must not depend on global state
        s = build_student(StudentSpec("test_convnet", 1.0, 1, blobs.input_shape, blobs.num_classes))
        torch.manual_seed(seed)
        s = build_student(StudentSpec("test_convnet", 1.0, 1, blobs.input_shape, blobs.num_classes))
        return train(s, blobs, DistillConfig(loss="ce", epochs=3, seed=seed, patience=1))

    a, b = run(0), run(0)
    for (k, v), (_, w) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(v, w), k
    assert evaluate(a.model, blobs.x_val, blobs.y_val) == pytest.approx(a.best_val_accuracy)
    assert a.best_val_accuracy == max(h["val_accuracy"] for h in a.history)


def test_kd_needs_a_teacher(blobs):
    student = build_student(StudentSpec("test_convnet", 1.0, 1, blobs.input_shape, blobs.num_classes))
    with pytest.raises(ConfigError, match="needs a teacher"):
        train(student, blobs, DistillConfig(epochs=1))


@pytest.mark.parametrize("kwargs", [dict(temperature=0), dict(alpha=1.5), dict(alpha=-0.1), dict(epochs=0),
                                    dict(optimizer="lion"), dict(lr=-1.0), dict(loss="nope")])
def test_config_validation(kwargs):
    with pytest.raises(ConfigError):
        DistillConfig(**kwargs)


def test_hint_teacher_features_are_cached_once_with_static_inputs(blobs):
    """With cached teacher logits (static inputs) the teacher runs once over the data, not once per batch."""
    teacher = _teacher(blobs)
    calls = {"n": 0}
    teacher.register_forward_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    with torch.no_grad():
        z = teacher(torch.from_numpy(blobs.x_train)).numpy()
    calls["n"] = 0
    student = build_student(StudentSpec("test_convnet", 1.0, 1, blobs.input_shape, blobs.num_classes))
    cfg = DistillConfig(epochs=3, batch_size=32, hints=(("stage2", "stage2"),))
    train(student, blobs, cfg, teacher_logits=z, teacher_module=teacher)
    # one probe + ceil(N/512) precompute batches; a per-batch teacher would add 3 epochs x N/32 calls
    assert calls["n"] == 1 + -(-len(blobs.x_train) // 512)


def test_mixup_mixes_samples_and_labels_per_sample():
    from edgekd.distill.trainer import _mixup

    x = torch.arange(8, dtype=torch.float32).view(4, 1, 1, 2)
    y = torch.tensor([0, 1, 2, 0])
    gen = torch.Generator().manual_seed(0)
    xm, ym = _mixup(x, y, 3, gen)
    gen = torch.Generator().manual_seed(0)
    lam, perm = torch.rand(4, generator=gen), torch.randperm(4, generator=gen)
    assert not torch.equal(perm, torch.arange(4))  # this seed pairs different rows
    for i in range(4):
        assert torch.allclose(xm[i], lam[i] * x[i] + (1 - lam[i]) * x[perm[i]])
        want = torch.zeros(3)
        want[y[i]] += lam[i]
        want[y[perm[i]]] += 1 - lam[i]
        assert torch.allclose(ym[i], want)
    assert torch.allclose(ym.sum(1), torch.ones(4))


def test_mixup_runs_the_teacher_on_the_mixed_batch_and_learns(blobs):
    """Function matching: the teacher labels the inputs the student sees (mixed ones, not the stored samples)."""
    teacher = _teacher(blobs)
    seen = []
    handle = teacher.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()))
    student = build_student(StudentSpec("test_convnet", 1.0, 1, blobs.input_shape, blobs.num_classes))
    with torch.no_grad():
        z = teacher(torch.from_numpy(blobs.x_train)).numpy()
    seen.clear()
    res = train(student, blobs, DistillConfig(epochs=3, batch_size=32, augment="mixup", lr=1e-2),
                teacher_logits=z, teacher_module=teacher)
    handle.remove()
    steps = 3 * int(np.ceil(len(blobs.x_train) / 32))
    assert len(seen) == steps  # the teacher ran once per step (its stored outputs do not apply to mixed inputs)
    rows = torch.from_numpy(blobs.x_train).flatten(1)
    first = seen[0].flatten(1)
    exact = (torch.cdist(first, rows).min(dim=1).values < 1e-6).float().mean()
    assert exact < 0.5  # most inputs the teacher saw are mixtures, not training rows
    assert res.best_val_accuracy > 1.5 / blobs.num_classes


def test_mixup_refuses_what_it_cannot_do(blobs):
    with pytest.raises(ConfigError, match="needs one label per sample"):
        DistillConfig(loss="dkd", augment="mixup")
    with pytest.raises(ConfigError, match="unknown augmentation"):
        DistillConfig(augment="cutout")
    student = build_student(StudentSpec("test_convnet", 1.0, 1, blobs.input_shape, blobs.num_classes))
    z = np.zeros((len(blobs.x_train), blobs.num_classes), np.float32)
    with pytest.raises(ConfigError, match="needs a PyTorch teacher"):  # stored outputs only (an ONNX teacher)
        train(student, blobs, DistillConfig(epochs=1, augment="mixup"), teacher_logits=z)


@pytest.mark.parametrize("channels_last", [True, False])
def test_either_memory_layout_learns_and_returns_an_ordinary_model(blobs, channels_last):
    torch.manual_seed(0)
    s = build_student(StudentSpec("convnet", 0.5, 1, blobs.input_shape, blobs.num_classes))
    r = train(s, blobs, DistillConfig(loss="ce", epochs=4, batch_size=32, lr=1e-2, channels_last=channels_last))
    assert r.best_val_accuracy > 0.9
    conv = next(m for m in r.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()  # saved and exported in the default layout, whatever it trained in
    assert DistillConfig(channels_last=True).as_dict() != DistillConfig(channels_last=False).as_dict()  # its own key
