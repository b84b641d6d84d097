"""Numerical guards (issue 9): divergence stops training naming the epoch, the step and the batch; the same seed
gives the same student, bit for bit, on the same machine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekd.data import load_dataset
from edgekd.distill.config import DistillConfig
from edgekd.distill.trainer import EXPLODING_GRAD_NORM, train
from edgekd.errors import TrainingError
from edgekd.models.students import StudentSpec, build_student


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    d = tmp_path_factory.mktemp("feat")
    np.savez(d / "ok.npz", x=x, y=y)
    np.savez(d / "huge.npz", x=x * 1e9, y=y)  # finite, but gradients explode on the first step
    return d


def _mlp(ds):
    torch.manual_seed(0)
    return build_student(StudentSpec("mlp", 1.0, 1, ds.input_shape, ds.num_classes))


def test_exploding_gradients_stop_the_run_naming_epoch_step_and_batch(features):
    ds = load_dataset(f"npz:{features / 'huge.npz'}")
    with pytest.raises(TrainingError) as e:
        train(_mlp(ds), ds, DistillConfig(loss="ce", epochs=2))
    msg = str(e.value)
    assert "gradient norm is" in msg and f"limit {EXPLODING_GRAD_NORM:g}" in msg
    assert "at epoch 1, step 1 (batch of 128 training samples: rows " in msg and "Fix: lower --lr" in msg
    rows = [int(r) for r in msg.split("rows ")[1].split(", ...")[0].split(", ")]
    assert len(rows) == 6 and all(0 <= r < len(ds.x_train) for r in rows)


def test_gradient_guard_holds_with_clipping_disabled_and_ordinary_data_trains(features):
    huge = load_dataset(f"npz:{features / 'huge.npz'}")
    with pytest.raises(TrainingError, match="gradient norm"):
        train(_mlp(huge), huge, DistillConfig(loss="ce", epochs=1, max_grad_norm=0))
    ok = load_dataset(f"npz:{features / 'ok.npz'}")
    result = train(_mlp(ok), ok, DistillConfig(loss="ce", epochs=10, patience=10))
    assert result.best_val_accuracy > 0.8


def test_nan_loss_names_the_step_and_batch(features):
    ok = load_dataset(f"npz:{features / 'ok.npz'}")
    z = np.zeros((len(ok.x_train), ok.num_classes), np.float32)
    cfg = DistillConfig(epochs=2, optimizer="sgd", lr=1e36, max_grad_norm=0)  # the first update blows up
    with pytest.raises(TrainingError, match=r"diverged: (loss is (nan|inf)|gradient norm is \S+) at epoch 1, "
                                             r"step \d+ \(batch of \d+ training samples: rows \d+"):
        train(_mlp(ok), ok, cfg, teacher_logits=z)


def test_same_seed_same_student_bit_for_bit_through_the_distill_stage(tmp_path, digits):
    """The whole distill stage (teacher logits, seeded shuffling, AdamW, early stopping, saving) twice."""
    from edgekd.fsio import sha256_file
    from edgekd.stages import distill_student

    spec = StudentSpec("convnet", 0.25, 1, digits.input_shape, digits.num_classes)
    logits = np.random.default_rng(1).normal(size=(len(digits.x_train), digits.num_classes)).astype(np.float32)

    def once(seed, where):
        ckpt = distill_student(digits, spec, DistillConfig(epochs=2, seed=seed), tmp_path / where,
                               teacher_logits=logits)
        state = torch.load(ckpt.path, weights_only=True)
        return ckpt, state

    (a, sa), (b, sb), (c, sc) = once(0, "a"), once(0, "b"), once(1, "c")
    assert a.accuracy_fp32 == b.accuracy_fp32 and a.config["history"][-1]["loss"] == b.config["history"][-1]["loss"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert sha256_file(tmp_path / "a/student.pt") == sha256_file(tmp_path / "b/student.pt")
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())  # the seed matters
