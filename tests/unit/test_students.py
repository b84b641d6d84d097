"""Every registered student family builds, runs and counts; the default ladders span >= 20x in MACs."""

from __future__ import annotations

import pytest
import torch

from edgekd.errors import ConfigError
from edgekd.models.count import count_macs, count_params
from edgekd.models.students import SIZE_LADDERS, STUDENTS, StudentSpec, build_student, ladder

SHAPES = {"convnet": (1, 28, 28), "mobilenet": (1, 28, 28), "test_convnet": (1, 8, 8), "conv1d": (6, 64), "mlp": (20,), "test_mlp": (20,)}


def test_every_registered_family_has_a_test_shape():
    assert set(STUDENTS.names()) == set(SHAPES), "a registered student family has no test here"


@pytest.mark.parametrize("family", sorted(SHAPES))
def test_family_builds_runs_and_counts(family):
    shape = SHAPES[family]
    spec = StudentSpec(family, 1.0, 2, shape, 7)
    model = build_student(spec).eval()
    out = model(torch.zeros(3, *shape))
    assert out.shape == (3, 7)
    assert count_params(model) == sum(p.numel() for p in model.parameters()) > 0
    assert count_macs(model, shape) > 0


def test_macs_golden_value():
    # convnet w1 d1 on 1x28x28: conv 1->16 @28x28, 16->32 @14x14, 32->64 @7x7, linear 64->10
    expected = 28 * 28 * 16 * 1 * 9 + 14 * 14 * 32 * 16 * 9 + 7 * 7 * 64 * 32 * 9 + 64 * 10
    assert count_macs(build_student(StudentSpec("convnet", 1.0, 1, (1, 28, 28), 10)), (1, 28, 28)) == expected


def test_mobilenet_is_depthwise_separable_and_macs_golden_value():
    # mobilenet w1 d1 on 1x28x28: stem 1->16 @28x28; then depthwise 3x3 + pointwise 1x1 blocks:
    # 16->16 @28x28, 16->32 @14x14 (stride 2 in the depthwise), 32->64 @7x7; linear 64->10
    expected = (28 * 28 * 16 * 9
                + 28 * 28 * 16 * 9 + 28 * 28 * 16 * 16
                + 14 * 14 * 16 * 9 + 14 * 14 * 16 * 32
                + 7 * 7 * 32 * 9 + 7 * 7 * 32 * 64
                + 64 * 10)
    model = build_student(StudentSpec("mobilenet", 1.0, 1, (1, 28, 28), 10))
    assert count_macs(model, (1, 28, 28)) == expected
    depthwise = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups == m.in_channels > 1]
    assert len(depthwise) == 3
    conv = count_macs(build_student(StudentSpec("convnet", 1.0, 1, (1, 28, 28), 10)), (1, 28, 28))
    assert expected * 2.5 < conv  # the point of the family (2.9x fewer here)


@pytest.mark.parametrize("shape", [(1, 28, 28), (6, 128), (32,)])
def test_default_ladder_spans_20x_in_macs(shape):
    specs = ladder(shape, 10)
    macs = [count_macs(build_student(s), shape) for s in specs]
    assert len(specs) >= 4 and macs == sorted(macs) and macs[-1] >= 20 * macs[0]


def test_wrong_shape_for_family_and_bad_sizes():
    with pytest.raises(ConfigError, match="needs 3-D samples"):
        build_student(StudentSpec("convnet", 1.0, 1, (20,), 3))
    with pytest.raises(ConfigError):
        StudentSpec("convnet", 0.0, 1, (1, 8, 8), 3)
    with pytest.raises(ConfigError):
        StudentSpec("convnet", 1.0, 1, (1, 8, 8), 1)
    with pytest.raises(ConfigError, match="unknown student family 'resnet'.*convnet"):
        build_student(StudentSpec("resnet", 1.0, 1, (1, 8, 8), 3))
    assert set(SIZE_LADDERS) == {"image", "sequence", "features"}
