"""Standard edge architectures in plain PyTorch (no torchvision), for conversion-coverage benchmarks.

    from architectures import ARCHS, build, select
    arch = ARCHS["mobilenet_v2"]; model = build("mobilenet_v2", small=True)

Weights are random (latency and convertibility do not depend on them). Each entry in ``ARCHS`` has a
factory ``(input_shape, num_classes) -> nn.Module``, the standard input shape (no batch), a ``small`` input
shape for runs on a 2-core machine (224 -> 96 for the ImageNet nets; the others are already small), the
class count, and a one-line note. The layer configurations follow the original papers / torchvision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn


def _div8(v: float) -> int:
    """Round channels to a multiple of 8, not below 90% of ``v`` (the MobileNet rule)."""
    n = max(8, int(v + 4) // 8 * 8)
    return n + 8 if n < 0.9 * v else n


def conv_bn(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: type | None = nn.ReLU) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([act()] if act else []))


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, squeeze: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, squeeze, 1), nn.ReLU(),
                                nn.Conv2d(squeeze, c, 1), nn.Hardsigmoid())

    def forward(self, x):
        return x * self.fc(x)


class InvertedResidual(nn.Module):
    """MobileNetV2 / V3 / EfficientNet-Lite block: 1x1 expand, kxk depthwise, (SE), 1x1 project, skip."""

    def __init__(self, cin: int, cout: int, expand: float, k: int, s: int, act: type = nn.ReLU6,
                 se: bool = False, hidden: int | None = None) -> None:
        super().__init__()
        hid = hidden or int(round(cin * expand))
        layers = [conv_bn(cin, hid, 1, act=act)] if hid != cin else []
        layers += [conv_bn(hid, hid, k, s, groups=hid, act=act)]
        layers += [SqueezeExcite(hid, _div8(hid / 4))] if se else []
        layers += [conv_bn(hid, cout, 1, act=None)]
        self.block, self.skip = nn.Sequential(*layers), s == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.skip else self.block(x)


def _classifier(c: int, num_classes: int, hidden: int | None = None, act: type = nn.ReLU) -> nn.Sequential:
    mid = [nn.Linear(c, hidden), act(), nn.Dropout(0.2)] if hidden else [nn.Dropout(0.2)]
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), *mid, nn.Linear(hidden or c, num_classes))


def mobilenet_v1(shape, n):
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)]
    layers, c = [conv_bn(shape[0], 32, 3, 2)], 32
    for cout, s in cfg:  # depthwise-separable: 3x3 depthwise + 1x1 pointwise
        layers += [conv_bn(c, c, 3, s, groups=c), conv_bn(c, cout, 1)]
        c = cout
    return nn.Sequential(*layers, _classifier(c, n))


def mobilenet_v2(shape, n, width: float = 1.0):
    """MobileNet V2 at a width multiplier (channels rounded to 8; the last conv keeps 1280 below width 1, as in
    the paper's and TF-slim's models)."""
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    c = _div8(32 * width)
    layers = [conv_bn(shape[0], c, 3, 2, act=nn.ReLU6)]
    for t, cout, reps, s in cfg:
        for i in range(reps):
            layers.append(InvertedResidual(c, _div8(cout * width), t, 3, s if i == 0 else 1))
            c = _div8(cout * width)
    last = _div8(1280 * width) if width > 1.0 else 1280
    return nn.Sequential(*layers, conv_bn(c, last, 1, act=nn.ReLU6), _classifier(last, n))


def mobilenet_v3_large(shape, n):
    RE, HS = nn.ReLU, nn.Hardswish  # (kernel, expanded, out, SE, activation, stride), torchvision's table
    cfg = [(3, 16, 16, False, RE, 1), (3, 64, 24, False, RE, 2), (3, 72, 24, False, RE, 1),
           (5, 72, 40, True, RE, 2), (5, 120, 40, True, RE, 1), (5, 120, 40, True, RE, 1),
           (3, 240, 80, False, HS, 2), (3, 200, 80, False, HS, 1), (3, 184, 80, False, HS, 1),
           (3, 184, 80, False, HS, 1), (3, 480, 112, True, HS, 1), (3, 672, 112, True, HS, 1),
           (5, 672, 160, True, HS, 2), (5, 960, 160, True, HS, 1), (5, 960, 160, True, HS, 1)]
    layers, c = [conv_bn(shape[0], 16, 3, 2, act=HS)], 16
    for k, hid, cout, se, act, s in cfg:
        layers.append(InvertedResidual(c, cout, 0, k, s, act, se, hidden=hid))
        c = cout
    return nn.Sequential(*layers, conv_bn(c, 960, 1, act=HS), _classifier(960, n, hidden=1280, act=HS))


def mobilenet_v3_small(shape, n):
    RE, HS = nn.ReLU, nn.Hardswish  # (kernel, expanded, out, SE, activation, stride), torchvision's table
    cfg = [(3, 16, 16, True, RE, 2), (3, 72, 24, False, RE, 2), (3, 88, 24, False, RE, 1),
           (5, 96, 40, True, HS, 2), (5, 240, 40, True, HS, 1), (5, 240, 40, True, HS, 1),
           (5, 120, 48, True, HS, 1), (5, 144, 48, True, HS, 1), (5, 288, 96, True, HS, 2),
           (5, 576, 96, True, HS, 1), (5, 576, 96, True, HS, 1)]
    layers, c = [conv_bn(shape[0], 16, 3, 2, act=HS)], 16
    for k, hid, cout, se, act, s in cfg:
        layers.append(InvertedResidual(c, cout, 0, k, s, act, se, hidden=hid))
        c = cout
    return nn.Sequential(*layers, conv_bn(c, 576, 1, act=HS), _classifier(576, n, hidden=1024, act=HS))


def efficientnet_lite0(shape, n):
    """EfficientNet-B0's MBConv stages without squeeze-excite and with ReLU6 (the 'Lite' changes)."""
    cfg = [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3), (6, 112, 3, 1, 5),
           (6, 192, 4, 2, 5), (6, 320, 1, 1, 3)]
    layers, c = [conv_bn(shape[0], 32, 3, 2, act=nn.ReLU6)], 32
    for t, cout, reps, s, k in cfg:
        for i in range(reps):
            layers.append(InvertedResidual(c, cout, t, k, s if i == 0 else 1))
            c = cout
    return nn.Sequential(*layers, conv_bn(c, 1280, 1, act=nn.ReLU6), _classifier(1280, n))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, s: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, s), conv_bn(cout, cout, 3, act=None))
        self.short = conv_bn(cin, cout, 1, s, act=None) if s != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


def resnet18(shape, n):
    layers, c = [conv_bn(shape[0], 64, 7, 2), nn.MaxPool2d(3, 2, 1)], 64
    for cout, s in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        layers += [BasicBlock(c, cout, s), BasicBlock(cout, cout, 1)]
        c = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, n))


class Bottleneck(nn.Module):
    """ResNet-50's block: 1x1 reduce, 3x3 (stride here, as torchvision's V1.5), 1x1 expand x4, skip."""

    def __init__(self, cin: int, mid: int, s: int) -> None:
        super().__init__()
        self.block = nn.Sequential(conv_bn(cin, mid, 1), conv_bn(mid, mid, 3, s), conv_bn(mid, 4 * mid, 1, act=None))
        self.down = (nn.Sequential(nn.Conv2d(cin, 4 * mid, 1, s, bias=False), nn.BatchNorm2d(4 * mid))
                     if s != 1 or cin != 4 * mid else nn.Identity())
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.block(x) + self.down(x))


def resnet50(shape, n):
    layers, c = [conv_bn(shape[0], 64, 7, 2), nn.MaxPool2d(3, 2, 1)], 64
    for mid, reps, s in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for i in range(reps):
            layers.append(Bottleneck(c, mid, s if i == 0 else 1))
            c = 4 * mid
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, n))


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, e1: int, e3: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU())
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, e1, 1), nn.ReLU())
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, e3, 3, padding=1), nn.ReLU())

    def forward(self, x):
        x = self.squeeze(x)
        return torch.cat([self.e1(x), self.e3(x)], 1)


def squeezenet1_1(shape, n):
    pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731 (as torchvision: ceil_mode pooling)
    return nn.Sequential(
        nn.Conv2d(shape[0], 64, 3, 2), nn.ReLU(), pool(), Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), pool(),
        Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), pool(), Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
        Fire(384, 64, 256, 256), Fire(512, 64, 256, 256),
        nn.Dropout(0.5), nn.Conv2d(512, n, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class ShuffleUnit(nn.Module):
    """ShuffleNet V2 unit: split (stride 1) or two branches (stride 2), concat, channel shuffle of 2 groups."""

    def __init__(self, cin: int, cout: int, s: int) -> None:
        super().__init__()
        b = cout // 2
        self.s = s
        self.branch1 = nn.Sequential(conv_bn(cin, cin, 3, s, groups=cin, act=None), conv_bn(cin, b, 1)) if s > 1 else None
        c2 = cin if s > 1 else b
        self.branch2 = nn.Sequential(conv_bn(c2, b, 1), conv_bn(b, b, 3, s, groups=b, act=None), conv_bn(b, b, 1))

    def forward(self, x):
        if self.branch1 is None:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat([x1, self.branch2(x2)], 1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], 1)
        return out.unflatten(1, (2, -1)).transpose(1, 2).flatten(1, 2)  # channel shuffle, no batch size used


def shufflenet_v2_x0_5(shape, n):
    layers, c = [conv_bn(shape[0], 24, 3, 2), nn.MaxPool2d(3, 2, 1)], 24
    for reps, cout in [(4, 48), (8, 96), (4, 192)]:
        layers += [ShuffleUnit(c if i == 0 else cout, cout, 2 if i == 0 else 1) for i in range(reps)]
        c = cout
    return nn.Sequential(*layers, conv_bn(c, 1024, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, n))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block with hand-written multi-head attention (fused qkv, like timm's ViT)."""

    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.qkv, self.proj = nn.LayerNorm(dim), nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x):
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in self.qkv(self.norm1(x)).chunk(3, -1))
        att = torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).flatten(2))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, shape, n: int, patch: int = 4, dim: int = 64, depth: int = 4, heads: int = 4) -> None:
        super().__init__()
        tokens = (shape[1] // patch) * (shape[2] // patch)
        self.embed = nn.Conv2d(shape[0], dim, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads, 2 * dim) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, n)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


def mlp(shape, n):
    return nn.Sequential(nn.Linear(shape[0], 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, n))


def conv1d_sensor(shape, n):
    """Human-activity style 1-D conv net on (channels x time): three conv-BN-ReLU-pool blocks, GAP, linear."""
    def block(cin, cout):
        return nn.Sequential(nn.Conv1d(cin, cout, 5, padding=2, bias=False), nn.BatchNorm1d(cout), nn.ReLU(),
                             nn.MaxPool1d(2))
    return nn.Sequential(block(shape[0], 32), block(32, 64), block(64, 64), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                         nn.Linear(64, n))


class GRUKeywordSpotter(nn.Module):
    """Keyword spotting on (MFCC x frames): GRU(64) over the frames, last hidden state -> linear."""

    def __init__(self, shape, n: int, hidden: int = 64) -> None:
        super().__init__()
        self.gru, self.head = nn.GRU(shape[0], hidden, batch_first=True), nn.Linear(hidden, n)

    def forward(self, x):  # x: (N, mfcc, frames), edgekd's channels-first sequence layout
        out, _ = self.gru(x.transpose(1, 2))
        return self.head(out[:, -1])


def edgekd_convnet(width: float) -> Callable:
    def factory(shape, n):
        from edgekd.models.students import StudentSpec, build_student

        return build_student(StudentSpec("convnet", width, 1, tuple(shape), n))
    return factory


@dataclass(frozen=True)
class Arch:
    factory: Callable[[tuple[int, ...], int], nn.Module]
    shape: tuple[int, ...]  # standard input shape, without the batch
    small: tuple[int, ...]  # the input shape used with --small / --quick
    num_classes: int
    note: str


_IMG, _IMG_SMALL = (3, 224, 224), (3, 96, 96)
ARCHS: dict[str, Arch] = {
    "mobilenet_v1": Arch(mobilenet_v1, _IMG, _IMG_SMALL, 1000, "width 1.0, ReLU"),
    "mobilenet_v2": Arch(mobilenet_v2, _IMG, _IMG_SMALL, 1000, "width 1.0, ReLU6"),
    "mobilenet_v3_large": Arch(mobilenet_v3_large, _IMG, _IMG_SMALL, 1000, "hardswish, SE with hardsigmoid"),
    "mobilenet_v3_small": Arch(mobilenet_v3_small, _IMG, _IMG_SMALL, 1000, "hardswish, SE with hardsigmoid"),
    "efficientnet_lite0": Arch(efficientnet_lite0, _IMG, _IMG_SMALL, 1000, "MBConv, no SE, ReLU6"),
    "resnet50": Arch(resnet50, _IMG, _IMG_SMALL, 1000, "Bottleneck x [3,4,6,3] (V1.5)"),
    "resnet18": Arch(resnet18, _IMG, _IMG_SMALL, 1000, "BasicBlock x [2,2,2,2]"),
    "squeezenet1_1": Arch(squeezenet1_1, _IMG, _IMG_SMALL, 1000, "Fire modules, ceil_mode max-pool"),
    "shufflenet_v2_x0_5": Arch(shufflenet_v2_x0_5, _IMG, _IMG_SMALL, 1000, "split/concat + channel shuffle"),
    "vit_tiny_p4": Arch(ViT, (3, 32, 32), (3, 32, 32), 10, "patch 4, 4 layers, dim 64, 4 heads, GELU, LayerNorm"),
    "mlp": Arch(mlp, (784,), (784,), 10, "784-256-256-10, ReLU"),
    "conv1d_sensor": Arch(conv1d_sensor, (6, 128), (6, 128), 6, "6-axis IMU x 128 steps, 3 conv blocks"),
    "gru_kws": Arch(GRUKeywordSpotter, (40, 49), (40, 49), 12, "40 MFCC x 49 frames, GRU(64), last step"),
    "convnet_student_w0.5": Arch(edgekd_convnet(0.5), (1, 28, 28), (1, 28, 28), 10, "edgekd convnet w0.5 d1"),
    "convnet_student_w2": Arch(edgekd_convnet(2.0), (1, 28, 28), (1, 28, 28), 10, "edgekd convnet w2 d1 (default)"),
}


def input_shape(name: str, small: bool = False) -> tuple[int, ...]:
    arch = ARCHS[name]
    return arch.small if small else arch.shape


def build(name: str, small: bool = False, seed: int = 0, bn_batches: int = 4) -> nn.Module:
    """Instantiate ``name`` with random weights (seeded), eval mode.

    BatchNorm running statistics are re-estimated on a few batches of random N(0, 1) inputs so that
    activations stay O(1) through deep random-weight nets, as they would in a trained one (with the default
    running stats, logits of a random deep net can be tiny or huge, which makes parity numbers meaningless).
    """
    arch = ARCHS[name]
    shape = input_shape(name, small)
    torch.manual_seed(seed)
    model = arch.factory(shape, arch.num_classes)
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the batches below
        model.train()
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for _ in range(bn_batches):
                model(torch.randn(8, *shape, generator=gen))
    return model.eval()


def select(spec: str) -> list[str]:
    """``all`` or comma-separated names; a name that is not an entry selects every entry it prefixes."""
    if spec.strip() in ("", "all"):
        return list(ARCHS)
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        hits = [part] if part in ARCHS else [a for a in ARCHS if a.startswith(part)]
        if not hits:
            raise SystemExit(f"unknown architecture '{part}'; known: {', '.join(ARCHS)}")
        names += [h for h in hits if h not in names]
    return names


if __name__ == "__main__":  # list the registry with parameter counts
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--archs", default="all")
    a = ap.parse_args()
    torch.set_num_threads(1)
    for name in select(a.archs):
        m = build(name, a.small)
        shape = input_shape(name, a.small)
        y = m(torch.randn(2, *shape))
        print(f"{name:22s} input {str(shape):15s} params {sum(p.numel() for p in m.parameters()) / 1e6:6.2f} M  "
              f"out {tuple(y.shape)}  ({ARCHS[name].note})")
