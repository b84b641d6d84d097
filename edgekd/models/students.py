"""Student families: registered builders with width and depth multipliers.

Every family is registered in ``STUDENTS`` (``@STUDENTS.register(name)``), like timm's
``register_model``. A ``StudentSpec`` names the family, its width/depth multipliers and the data it is
shaped for; ``build_student(spec)`` returns a ``torch.nn.Module``. Families are chosen by data kind:
2-D conv nets for images (N×C×H×W), 1-D conv nets for sequences (N×C×L), MLPs for feature vectors (N×F).
The ``test_*`` entries are tiny and train in well under a second, for tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

from ..errors import ConfigError
from ..registry import Registry

STUDENTS: Registry[Callable[["StudentSpec"], Any]] = Registry("student family")

# Default size ladders per data kind: (width, depth). MACs span well over 20x from first to last.
SIZE_LADDERS: dict[str, tuple[tuple[float, int], ...]] = {
    # width x depth; the largest are there for the budget to rule out (edgekd.search skips them untrained)
    "image": ((0.25, 1), (0.5, 1), (1.0, 1), (1.0, 2), (2.0, 1), (2.0, 2), (4.0, 1), (4.0, 2), (8.0, 2)),
    "sequence": ((0.25, 1), (0.5, 1), (1.0, 1), (2.0, 1)),
    "features": ((0.25, 1), (0.5, 1), (1.0, 2), (2.0, 2)),
    # inverted-residual families at 64-224 px: MobileNet's width multipliers, then deeper
    "image-mobile": ((0.35, 1), (0.5, 1), (0.75, 1), (1.0, 1), (1.0, 2), (1.4, 2)),
}
FAMILY_FOR_KIND = {"image": "convnet", "sequence": "conv1d", "features": "mlp"}
REAL_RESOLUTION = 64  # images at least this large get the inverted-residual family by default
MOBILE_FAMILIES = ("mobilenetv2", "mobilenetv3")


@dataclass(frozen=True)
class StudentSpec:
    """What to build: a family from ``STUDENTS`` at a width and depth, for one input shape."""

    family: str
    width: float  # channel / unit multiplier (1.0 = the family's base width)
    depth: int  # blocks per stage (or hidden layers for an MLP)
    input_shape: tuple[int, ...]  # one sample, without the batch dimension
    num_classes: int
    show_resolution: bool = False  # the name carries the input size (ladders that vary it: --resolution)

    def __post_init__(self) -> None:
        if not (0 < self.width <= 16):
            raise ConfigError(f"student width must be in (0, 16], got {self.width}", "pick e.g. 0.25, 0.5, 1, 2")
        if not (1 <= self.depth <= 8):
            raise ConfigError(f"student depth must be in 1..8, got {self.depth}", "pick e.g. 1 or 2")
        if self.num_classes < 2:
            raise ConfigError(f"a classifier needs at least 2 classes, got {self.num_classes}",
                              "check the data's labels")

    @property
    def name(self) -> str:
        family = self.family.rpartition(":")[2] if is_custom(self.family) else self.family
        res = f"_r{self.input_shape[1]}" if self.show_resolution and len(self.input_shape) == 3 else ""
        return f"{family}_w{self.width:g}_d{self.depth}{res}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        if not self.show_resolution:  # records and cache keys of specs without it stay as they were
            del d["show_resolution"]
        return d


def data_kind(input_shape: tuple[int, ...]) -> str:
    """'image' for C×H×W, 'sequence' for C×L, 'features' for F."""
    return {3: "image", 2: "sequence", 1: "features"}.get(len(input_shape), "unknown")


def default_family(input_shape: tuple[int, ...]) -> str:
    """convnet / conv1d / mlp by data kind; mobilenetv2 for images of REAL_RESOLUTION px and more."""
    kind = data_kind(input_shape)
    if kind not in FAMILY_FOR_KIND:
        raise ConfigError(f"no student family for inputs of shape {input_shape}",
                          "use images N×C×H×W, sequences N×C×L or feature vectors N×F")
    if kind == "image" and min(input_shape[1:]) >= REAL_RESOLUTION:
        return "mobilenetv2"
    return FAMILY_FOR_KIND[kind]


def is_custom(family: str) -> bool:
    """A team's own architecture, ``module:factory`` (``--student-arch``)."""
    return ":" in family


def ladder(input_shape: tuple[int, ...], num_classes: int, family: str | None = None,
           sizes: tuple[tuple[float, int], ...] | None = None,
           resolutions: tuple[int, ...] | None = None) -> list[StudentSpec]:
    """The candidate students for one data shape, smallest first; with ``resolutions`` every size at every input
    resolution (MobileNet's resolution multiplier: images resized to that side), smallest MACs order left to the plan."""
    family = family or default_family(input_shape)
    kind = "image-mobile" if family in MOBILE_FAMILIES else data_kind(input_shape)
    sizes = sizes or SIZE_LADDERS[kind]
    if not resolutions:
        return [StudentSpec(family, w, d, tuple(input_shape), num_classes) for w, d in sizes]
    if data_kind(input_shape) != "image":
        raise ConfigError(f"--resolution varies image sizes, and the data's samples have shape {input_shape}",
                          "drop --resolution for this data")
    c = input_shape[0]
    return [StudentSpec(family, w, d, (c, r, r), num_classes, show_resolution=True)
            for r in sorted(set(resolutions)) for w, d in sizes]


def build_student(spec: StudentSpec):
    """Instantiate ``spec`` as a torch module (imports torch)."""
    if is_custom(spec.family):
        return _custom(spec)
    builder = STUDENTS.get(spec.family)
    return builder(spec)


def _custom(spec: StudentSpec):
    """``--student-arch module:factory``: ``factory(num_classes=, width=, depth=, in_channels=)`` -> nn.Module."""
    import torch

    from ..factory import import_factory

    fn = import_factory(spec.family, "--student-arch", ConfigError)
    try:
        model = fn(num_classes=spec.num_classes, width=spec.width, depth=spec.depth, in_channels=spec.input_shape[0])
    except TypeError as e:
        raise ConfigError(f"--student-arch {spec.family} cannot be called as factory(num_classes, width, depth, "
                          f"in_channels): {e}", "give the factory those four keyword arguments") from None
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"--student-arch {spec.family} returned a {type(model).__name__}, not a torch.nn.Module",
                          "return the model from the factory")
    return model


def _ch(base: int, width: float, minimum: int = 4) -> int:
    """Scale a channel count and round to a multiple of 4 (friendly to int8 kernels)."""
    return max(minimum, int(round(base * width / 4.0)) * 4)


def _check_shape(spec: StudentSpec, ndim: int) -> None:
    if len(spec.input_shape) != ndim:
        raise ConfigError(f"student family {spec.family!r} needs {ndim}-D samples, got shape {spec.input_shape}",
                          f"use family {default_family(spec.input_shape)!r} for this data")


@STUDENTS.register("convnet")
def convnet(spec: StudentSpec, base: tuple[int, ...] = (16, 32, 64)):
    """Plain conv net: three stages of (Conv3×3-BN-ReLU)×depth, stride 2 between stages, then GAP + linear.

    Plain 3×3 convolutions with BN folded at export are what int8 CPU and NPU kernels run best.
    Inputs larger than 32 px get a stride-2 stem so compute stays small.
    """
    _check_shape(spec, 3)
    return _staged_convnet(spec, base, dims=2, stem=spec.input_shape[1] > 32)


@STUDENTS.register("conv1d")
def conv1d(spec: StudentSpec, base: tuple[int, ...] = (16, 32, 64)):
    """1-D conv net for sequences (sensor channels × time): the 1-D twin of ``convnet``."""
    _check_shape(spec, 2)
    return _staged_convnet(spec, base, dims=1, stem=False)


def _staged_convnet(spec: StudentSpec, base: tuple[int, ...], dims: int, stem: bool):
    """Named stages ``stem``?, ``stage1..N``, ``pool``, ``head``: the layer names hints refer to."""
    import torch.nn as nn

    c_in = spec.input_shape[0]
    layers: dict[str, nn.Module] = {}
    if stem:
        layers["stem"] = _conv_bn(nn, c_in, _ch(base[0], spec.width), 2, dims)
        c_in = _ch(base[0], spec.width)
    for i, b in enumerate(base):
        c_out = _ch(b, spec.width)
        blocks = [_conv_bn(nn, c_in, c_out, 1 if i == 0 else 2, dims)]
        blocks += [_conv_bn(nn, c_out, c_out, 1, dims) for _ in range(spec.depth - 1)]
        layers[f"stage{i + 1}"] = nn.Sequential(*blocks)
        c_in = c_out
    pool = nn.AdaptiveAvgPool2d(1) if dims == 2 else nn.AdaptiveAvgPool1d(1)
    layers["pool"] = nn.Sequential(pool, nn.Flatten())
    layers["head"] = nn.Linear(c_in, spec.num_classes)
    return nn.Sequential(_ordered(layers))


@STUDENTS.register("mobilenet")
def mobilenet(spec: StudentSpec, base: tuple[int, ...] = (16, 32, 64)):
    """Depthwise-separable conv net (MobileNetV1's block): a 3×3 conv stem, then three stages of ``depth`` blocks
    of depthwise 3×3-BN-ReLU6 + pointwise 1×1-BN-ReLU6 (stride 2 at the first block of stages 2 and 3), GAP +
    linear. At the same width and depth, fewer MACs than ``convnet``, the more so the wider and deeper (on 28×28: 1.5x
    at w0.25 d1, 2.9x at w1 d1, 3.5x at w2 d1, 5.9x at w2 d2); the usual phone/MCU student.
    Depthwise layers are the int8-sensitive ones (one small filter per channel); see ``--method qat``.
    A. Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
    arXiv:1704.04861, 2017.
    """
    import torch.nn as nn

    _check_shape(spec, 3)
    c_in, c0 = spec.input_shape[0], _ch(base[0], spec.width)
    stride0 = 2 if spec.input_shape[1] > 32 else 1
    layers: dict[str, nn.Module] = {"stem": nn.Sequential(nn.Conv2d(c_in, c0, 3, stride0, 1, bias=False),
                                                          nn.BatchNorm2d(c0), nn.ReLU6(inplace=True))}
    c_in = c0
    for i, b in enumerate(base):
        c_out = _ch(b, spec.width)
        blocks = [_separable(nn, c_in if j == 0 else c_out, c_out, 2 if i > 0 and j == 0 else 1)
                  for j in range(spec.depth)]
        layers[f"stage{i + 1}"] = nn.Sequential(*blocks)
        c_in = c_out
    layers["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    layers["head"] = nn.Linear(c_in, spec.num_classes)
    return nn.Sequential(_ordered(layers))


def _separable(nn, c_in: int, c_out: int, stride: int):
    return nn.Sequential(nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False), nn.BatchNorm2d(c_in),
                         nn.ReLU6(inplace=True),
                         nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False), nn.BatchNorm2d(c_out), nn.ReLU6(inplace=True))


# MobileNetV2's stage table (expansion t, channels c, blocks n, stride s) with the 320-channel stage left out:
# a student needs less. Blocks per stage are n * depth / 2 (at least 1); depth 2 is MobileNetV2's count.
_IR_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2))


@STUDENTS.register("mobilenetv2")
def mobilenetv2(spec: StudentSpec):
    """Inverted residuals (MobileNetV2): 1x1 expand (t=6) - depthwise 3x3 - 1x1 linear projection, a residual
    when shapes allow, ReLU6; stem 3x3 stride 2 (above 32 px), the stage table above at ``width``, a 1x1 head conv,
    GAP + linear. Strides stop once the feature map is 4 px, so one ladder serves 32 to 224 px. M. Sandler et al.,
    "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018 (arXiv:1801.04381)."""
    return _inverted_residual(spec, hard_swish=False, se=False)


@STUDENTS.register("mobilenetv3")
def mobilenetv3(spec: StudentSpec):
    """MobileNetV3-style: the same inverted residuals with hard-swish after the second stage and squeeze-excite
    (reduction 4, hard-sigmoid gate) in the last three stages. A. Howard et al., "Searching for MobileNetV3",
    ICCV 2019 (arXiv:1905.02244)."""
    return _inverted_residual(spec, hard_swish=True, se=True)


def _inverted_residual(spec: StudentSpec, hard_swish: bool, se: bool):
    import math

    import torch.nn as nn

    _check_shape(spec, 3)
    side = min(spec.input_shape[1:])
    c_in = spec.input_shape[0]
    c0 = _ch(32, spec.width, minimum=8)
    stride0 = 2 if side > 32 else 1
    side = math.ceil(side / stride0)
    layers: dict[str, nn.Module] = {"stem": nn.Sequential(nn.Conv2d(c_in, c0, 3, stride0, 1, bias=False),
                                                          nn.BatchNorm2d(c0), _act(nn, hard_swish))}
    c_in = c0
    for i, (t, c, n, s) in enumerate(_IR_STAGES):
        c_out = _ch(c, spec.width, minimum=8)
        blocks = []
        for j in range(max(1, math.ceil(n * spec.depth / 2))):
            stride = 2 if j == 0 and s == 2 and side >= 8 else 1
            side = math.ceil(side / stride)
            blocks.append(_inverted_block(nn, c_in, c_out, t, stride, hard_swish and i >= 2, se and i >= 3))
            c_in = c_out
        layers[f"stage{i + 1}"] = nn.Sequential(*blocks)
    c_head = _ch(640, spec.width, minimum=32)
    layers["head_conv"] = nn.Sequential(nn.Conv2d(c_in, c_head, 1, bias=False), nn.BatchNorm2d(c_head),
                                        _act(nn, hard_swish))
    layers["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    layers["head"] = nn.Linear(c_head, spec.num_classes)
    return nn.Sequential(_ordered(layers))


def _act(nn, hard_swish: bool):
    return nn.Hardswish() if hard_swish else nn.ReLU6()


def _inverted_block(nn, c_in: int, c_out: int, t: int, stride: int, hard_swish: bool, se: bool):
    """expand 1x1 (t > 1) -> depthwise 3x3 -> [squeeze-excite] -> project 1x1 (linear), + input when it fits."""
    c_mid = c_in * t

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers = []
            if t != 1:
                layers += [nn.Conv2d(c_in, c_mid, 1, bias=False), nn.BatchNorm2d(c_mid), _act(nn, hard_swish)]
            layers += [nn.Conv2d(c_mid, c_mid, 3, stride, 1, groups=c_mid, bias=False), nn.BatchNorm2d(c_mid),
                       _act(nn, hard_swish)]
            if se:
                layers.append(_squeeze_excite(nn, c_mid))
            layers += [nn.Conv2d(c_mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
            self.body = nn.Sequential(*layers)
            self.residual = stride == 1 and c_in == c_out

        def forward(self, x):
            y = self.body(x)
            return x + y if self.residual else y

    return Block()


def _squeeze_excite(nn, c: int):
    c_sq = _ch(c / 4, 1.0, minimum=8)

    class SE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c_sq, 1), nn.ReLU(),
                                      nn.Conv2d(c_sq, c, 1), nn.Hardsigmoid())

        def forward(self, x):
            return x * self.gate(x)

    return SE()


@STUDENTS.register("mlp")
def mlp(spec: StudentSpec, base: int = 128):
    """MLP for feature vectors: ``depth`` hidden layers of ``128 × width`` units with ReLU."""
    import torch.nn as nn

    _check_shape(spec, 1)
    units = _ch(base, spec.width, minimum=8)
    layers: dict[str, nn.Module] = {}
    f_in = spec.input_shape[0]
    for i in range(spec.depth):
        layers[f"hidden{i + 1}"] = nn.Sequential(nn.Linear(f_in, units), nn.ReLU())
        f_in = units
    layers["head"] = nn.Linear(f_in, spec.num_classes)
    return nn.Sequential(_ordered(layers))


@STUDENTS.register("test_convnet")
def test_convnet(spec: StudentSpec):
    """Tiny conv net for tests (a few hundred parameters)."""
    return convnet(spec, base=(4, 8))


@STUDENTS.register("test_mlp")
def test_mlp(spec: StudentSpec):
    """Tiny MLP for tests."""
    return mlp(spec, base=16)


def _conv_bn(nn, c_in: int, c_out: int, stride: int, dims: int):
    conv = nn.Conv2d if dims == 2 else nn.Conv1d
    bn = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    return nn.Sequential(conv(c_in, c_out, 3, stride, 1, bias=False), bn(c_out), nn.ReLU(inplace=True))


def _ordered(layers: dict):
    from collections import OrderedDict

    return OrderedDict(layers)
