"""Every registered student family builds, runs and counts; the default ladders span >= 20x in MACs."""

from __future__ import annotations

import pytest
import torch

from edgekd.errors import ConfigError
from edgekd.models.count import count_macs, count_params
from edgekd.models.students import SIZE_LADDERS, STUDENTS, StudentSpec, build_student, ladder

SHAPES = {"convnet": (1, 28, 28), "mobilenet": (1, 28, 28), "test_convnet": (1, 8, 8), "conv1d": (6, 64), "mlp": (20,),
          "test_mlp": (20,), "mobilenetv2": (3, 96, 96), "mobilenetv3": (3, 96, 96)}


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
    assert set(SIZE_LADDERS) == {"image", "sequence", "features", "image-mobile"}


@pytest.mark.parametrize("family", ["mobilenetv2", "mobilenetv3"])
def test_inverted_residual_ladder_is_sensible_from_96_to_224_px(family):
    """Every rung runs at 96, 128, 160 and 224 px; MACs grow along the ladder and with the resolution (about
    as the pixel count: the network is fully convolutional), and the feature map never falls under 3 px."""
    macs = {}
    for side in (96, 128, 160, 224):
        specs = ladder((3, side, side), 10, family)
        assert [s.family for s in specs] == [family] * len(specs)
        macs[side] = [count_macs(build_student(s), s.input_shape) for s in specs]
        assert macs[side] == sorted(macs[side]) and macs[side][-1] > 10 * macs[side][0]
    for a, b in zip(macs[96], macs[224]):
        assert 3.0 < b / a < (224 / 96) ** 2 * 1.2
    model = build_student(StudentSpec(family, 1.0, 1, (3, 96, 96), 10))
    feats = model[:-2](torch.zeros(1, 3, 96, 96))  # up to the head conv
    assert feats.shape[-1] >= 3
    dw = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups == m.in_channels > 1]
    assert len(dw) >= 6
    acts = {type(m).__name__ for m in model.modules()}
    assert ("Hardswish" in acts and "Hardsigmoid" in acts) == (family == "mobilenetv3")
    assert "ReLU6" in acts or family == "mobilenetv3"


def test_default_family_is_the_inverted_residual_one_at_real_resolution():
    assert ladder((3, 96, 96), 5)[0].family == "mobilenetv2"
    assert ladder((1, 28, 28), 5)[0].family == "convnet"  # Fashion-MNIST-sized images keep the plain conv net


def test_resolution_ladder_crosses_sizes_and_input_sizes():
    specs = ladder((3, 128, 128), 4, "mobilenetv2", ((0.5, 1), (1.0, 1)), resolutions=(128, 96))
    assert [(s.name, s.input_shape) for s in specs] == [
        ("mobilenetv2_w0.5_d1_r96", (3, 96, 96)), ("mobilenetv2_w1_d1_r96", (3, 96, 96)),
        ("mobilenetv2_w0.5_d1_r128", (3, 128, 128)), ("mobilenetv2_w1_d1_r128", (3, 128, 128))]
    with pytest.raises(ConfigError, match="--resolution"):
        ladder((6, 64), 4, resolutions=(32,))


def test_student_arch_factory_is_built_with_its_four_arguments(tmp_path, monkeypatch):
    (tmp_path / "team_nets.py").write_text(
        "import torch.nn as nn\n"
        "calls = []\n"
        "def make(num_classes, width, depth, in_channels):\n"
        "    calls.append((num_classes, width, depth, in_channels))\n"
        "    c = int(8 * width)\n"
        "    return nn.Sequential(nn.Conv2d(in_channels, c, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),\n"
        "                         nn.Flatten(), nn.Linear(c, num_classes))\n"
        "def not_a_model(num_classes, width, depth, in_channels):\n"
        "    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = StudentSpec("team_nets:make", 2.0, 3, (3, 32, 32), 6)
    assert spec.name == "make_w2_d3"
    model = build_student(spec)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 6)
    import team_nets
    assert team_nets.calls == [(6, 2.0, 3, 3)]
    with pytest.raises(ConfigError, match="returned a int, not a torch.nn.Module"):
        build_student(StudentSpec("team_nets:not_a_model", 1.0, 1, (3, 32, 32), 6))
    with pytest.raises(ConfigError, match="--student-arch team_nets:nope cannot be imported"):
        build_student(StudentSpec("team_nets:nope", 1.0, 1, (3, 32, 32), 6))
