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
}
FAMILY_FOR_KIND = {"image": "convnet", "sequence": "conv1d", "features": "mlp"}


@dataclass(frozen=True)
class StudentSpec:
    """What to build: a family from ``STUDENTS`` at a width and depth, for one input shape."""

    family: str
    width: float  # channel / unit multiplier (1.0 = the family's base width)
    depth: int  # blocks per stage (or hidden layers for an MLP)
    input_shape: tuple[int, ...]  # one sample, without the batch dimension
    num_classes: int

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
        return f"{self.family}_w{self.width:g}_d{self.depth}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d


def data_kind(input_shape: tuple[int, ...]) -> str:
    """'image' for C×H×W, 'sequence' for C×L, 'features' for F."""
    return {3: "image", 2: "sequence", 1: "features"}.get(len(input_shape), "unknown")


def default_family(input_shape: tuple[int, ...]) -> str:
    kind = data_kind(input_shape)
    if kind not in FAMILY_FOR_KIND:
        raise ConfigError(f"no student family for inputs of shape {input_shape}",
                          "use images N×C×H×W, sequences N×C×L or feature vectors N×F")
    return FAMILY_FOR_KIND[kind]


def ladder(input_shape: tuple[int, ...], num_classes: int, family: str | None = None,
           sizes: tuple[tuple[float, int], ...] | None = None) -> list[StudentSpec]:
    """The candidate students for one data shape, smallest first."""
    family = family or default_family(input_shape)
    sizes = sizes or SIZE_LADDERS[data_kind(input_shape)]
    return [StudentSpec(family, w, d, tuple(input_shape), num_classes) for w, d in sizes]


def build_student(spec: StudentSpec):
    """Instantiate ``spec`` as a torch module (imports torch)."""
    builder = STUDENTS.get(spec.family)
    return builder(spec)


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
