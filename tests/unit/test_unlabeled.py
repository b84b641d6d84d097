"""Unlabelled training inputs (--unlabeled): what is added, what is refused, and how the trainer labels them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekd.data import UNLABELED, load_dataset
from edgekd.distill.config import DistillConfig
from edgekd.distill.multi_teacher import combine
from edgekd.distill.trainer import evaluate, train
from edgekd.errors import ConfigError, DataError
from edgekd.models.students import StudentSpec, build_student


def _rows(x):
    return {r.tobytes() for r in x}


def test_rest_adds_exactly_the_training_samples_the_limit_left_out(blobs_npz):
    spec = f"npz:{blobs_npz}"
    full = load_dataset(spec, seed=0)
    labelled = load_dataset(spec, seed=0, limit=60)
    both = load_dataset(spec, seed=0, limit=60, unlabeled="rest")
    n = len(labelled.x_train)
    assert np.array_equal(both.x_train[:n], labelled.x_train) and np.array_equal(both.y_train[:n], labelled.y_train)
    assert (both.y_train[n:] == UNLABELED).all() and both.n_unlabeled == len(full.x_train) - n
    assert _rows(both.x_train) == _rows(full.x_train)  # labelled + left out = the full training split
    assert not _rows(both.x_train) & (_rows(both.x_val) | _rows(both.x_test))  # nothing held out leaks in
    assert np.array_equal(both.x_val, labelled.x_val) and np.array_equal(both.x_test, labelled.x_test)
    assert both.fingerprint() != labelled.fingerprint()


def test_a_data_spec_adds_its_inputs_less_held_out_and_labelled_ones(blobs_npz, tmp_path):
    spec = f"npz:{blobs_npz}"
    labelled = load_dataset(spec, seed=0, limit=60)
    both = load_dataset(spec, seed=0, limit=60, unlabeled=spec)  # the same file: most of it is taken already
    extra = both.x_train[len(labelled.x_train):]
    assert not _rows(extra) & (_rows(labelled.x_val) | _rows(labelled.x_test) | _rows(labelled.x_train))
    assert both.n_unlabeled == len(extra) > 0


def test_what_cannot_be_added_is_refused_with_the_fix(blobs_npz, tmp_path):
    spec = f"npz:{blobs_npz}"
    with pytest.raises(ConfigError, match="left no training sample out"):
        load_dataset(spec, seed=0, unlabeled="rest")
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros((20, 1, 4, 4), np.float32), y=np.zeros(20, np.int64))
    with pytest.raises(DataError, match=r"shape \(1, 4, 4\).*same shape"):
        load_dataset(spec, seed=0, limit=60, unlabeled=f"npz:{other}")
    with pytest.raises(ConfigError, match="paired data is not supported"):
        load_dataset("paired:lowres:digits", seed=0, limit=100, unlabeled="rest")


def test_the_teachers_top_class_stands_in_for_the_missing_label(blobs_npz, monkeypatch):
    """The loss receives, for each unlabelled sample, the teacher's top class (here always 2) as its label."""
    import edgekd.distill.losses as losses

    data = load_dataset(f"npz:{blobs_npz}", seed=0, limit=15, unlabeled="rest")
    z = np.zeros((len(data.x_train), data.num_classes), np.float32)
    unl = data.y_train < 0
    z[~unl, (data.y_train[~unl] + 1) % data.num_classes] = 5.0  # labelled: the teacher disagrees, labels win
    z[unl, 2] = 5.0
    seen = []
    real = losses.LOSSES.get("hinton")

    def spy(student_logits, teacher_logits, labels, **kw):
        seen.append(labels.clone())
        return real(student_logits, teacher_logits, labels, **kw)

    monkeypatch.setattr(losses.LOSSES, "get", lambda name: spy)
    student = build_student(StudentSpec("test_convnet", 1.0, 1, data.input_shape, data.num_classes))
    train(student, data, DistillConfig(epochs=1, batch_size=32), teacher_logits=z)
    got = torch.cat(seen).numpy()
    assert len(got) == len(data.y_train) and (got >= 0).all()
    expected = np.concatenate([data.y_train[~unl], np.full(int(unl.sum()), 2)])
    assert np.array_equal(np.bincount(got, minlength=3), np.bincount(expected, minlength=3))


def test_unlabelled_samples_need_a_teacher_and_no_label_mixing(blobs_npz):
    data = load_dataset(f"npz:{blobs_npz}", seed=0, limit=30, unlabeled="rest")
    student = build_student(StudentSpec("test_convnet", 1.0, 1, data.input_shape, data.num_classes))
    with pytest.raises(ConfigError, match="unlabelled.*no teacher outputs to label them"):
        train(student, data, DistillConfig(epochs=1, loss="ce", alpha=0.0))
    z = np.zeros((len(data.x_train), data.num_classes), np.float32)
    with pytest.raises(ConfigError, match="mixup mixes labels"):
        train(student, data, DistillConfig(epochs=1, augment="mixup"), teacher_logits=z, teacher_module=student)


def test_mutual_refuses_unlabelled_samples(blobs_npz):
    from edgekd.distill.mutual import train_mutual

    data = load_dataset(f"npz:{blobs_npz}", seed=0, limit=30, unlabeled="rest")
    spec = StudentSpec("test_convnet", 1.0, 1, data.input_shape, data.num_classes)
    with pytest.raises(ConfigError, match="needs a label on every training sample"):
        train_mutual(lambda: build_student(spec), data, DistillConfig(method="mutual", epochs=1), lambda m: None)


def test_confidence_weighting_uses_each_teachers_own_confidence_without_a_label():
    a = np.array([[4.0, 0.0], [4.0, 0.0]], np.float32)  # sure of class 0
    b = np.array([[0.0, 0.1], [0.0, 0.1]], np.float32)  # unsure
    mixed = combine([a, b], np.array([1, UNLABELED]), 1.0, "confidence")
    p = np.exp(mixed) / np.exp(mixed).sum(1, keepdims=True)
    assert p[0, 1] > 0.4  # labelled 1: teacher b (which puts more mass on 1) weighs in
    fixed = combine([a, b], np.array([1, UNLABELED]), 1.0, "fixed")
    q = np.exp(fixed) / np.exp(fixed).sum(1, keepdims=True)
    assert p[1, 0] > q[1, 0] + 0.05  # unlabelled: the confident teacher a weighs more than under equal weights


def test_a_distilled_student_learns_from_unlabelled_inputs(blobs_npz):
    """6 labels and a teacher: adding the unlabelled rest makes a clearly better student than the labels alone."""
    data = load_dataset(f"npz:{blobs_npz}", seed=0, limit=6)
    more = load_dataset(f"npz:{blobs_npz}", seed=0, limit=6, unlabeled="rest")
    full = load_dataset(f"npz:{blobs_npz}", seed=0)
    torch.manual_seed(1)
    teacher = build_student(StudentSpec("convnet", 0.5, 1, full.input_shape, full.num_classes))
    train(teacher, full, DistillConfig(loss="ce", alpha=0.0, epochs=5, batch_size=32, lr=1e-2))
    accs = []
    for d in (data, more):
        with torch.no_grad():
            z = teacher(torch.from_numpy(d.x_train)).numpy()
        torch.manual_seed(0)
        s = build_student(StudentSpec("test_convnet", 1.0, 1, d.input_shape, d.num_classes))
        train(s, d, DistillConfig(epochs=4, batch_size=8, lr=1e-2, patience=4), teacher_logits=z)
        accs.append(evaluate(s, full.x_test, full.y_test))  # the limit shrank d's own test set to a few samples
    assert evaluate(teacher, full.x_test, full.y_test) > 0.9
    assert accs[1] > accs[0] + 0.2  # measured: 0.32 (6 labels) vs 0.75 (6 labels + 204 unlabelled); chance 0.33
