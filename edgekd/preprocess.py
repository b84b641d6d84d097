"""The input contract: how a raw image becomes a model's input (torch-free).

A :class:`Preprocess` says it all: decode, convert to ``channels`` (RGB or grey), resize the shorter side to
``size`` and centre-crop ``size`` x ``size`` (Pillow, bilinear with antialiasing), scale to [0, 1], subtract
``mean`` and divide by ``std`` per channel (in the model's channel ``order``), lay out as ``layout``.
The student's contract is written into student.json, the exported models' metadata (``edgekd.preprocess``), the
report and the smoke bundle (whose runner applies it to raw images); the teacher's is declared with
``--teacher-input`` (or read from a model that carries ``edgekd.preprocess``).

``--teacher-input`` text: comma-separated ``key=value`` items, optionally led by a preset name::

    imagenet                          # size 224, ImageNet mean/std, RGB, NCHW
    imagenet,size=192,layout=nhwc
    size=160,mean=0.5,std=0.5,order=bgr
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from .errors import ConfigError

META_KEY = "edgekd.preprocess"  # ONNX metadata_props key (JSON of Preprocess.as_dict())
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ORDERS = ("RGB", "BGR")
LAYOUTS = ("NCHW", "NHWC")
_FIX = "write e.g. --teacher-input imagenet or --teacher-input size=224,mean=0.485/0.456/0.406,std=0.229/0.224/0.225"


@dataclass(frozen=True)
class Preprocess:
    """How raw images become this model's input (see the module's doc)."""

    size: int | None  # square side after resize + centre crop; None: images kept at the data's own size
    channels: int = 3  # 1 (grey) or 3
    mean: tuple[float, ...] = (0.0,)  # per channel (or one for all), on [0, 1]-scaled pixels
    std: tuple[float, ...] = (1.0,)
    order: str = "RGB"  # channel order the model takes (grey: RGB)
    layout: str = "NCHW"
    resize: str = "shorter-side bilinear, centre crop"

    def __post_init__(self) -> None:
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int)
                                      or not 8 <= self.size <= 4096):
            raise ConfigError(f"image size {self.size!r} is not a whole number of pixels in 8..4096",
                              "pass e.g. --image-size 96")
        if self.channels not in (1, 3):
            raise ConfigError(f"images need 1 or 3 channels, got {self.channels}", "pass --channels rgb or grey")
        for name, vals in (("mean", self.mean), ("std", self.std)):
            if len(vals) not in (1, self.channels):
                raise ConfigError(f"{name} has {len(vals)} values for {self.channels} channel(s)", _FIX)
        if any(not s > 0 for s in self.std):
            raise ConfigError(f"std values must be positive, got {self.std}", _FIX)
        if self.order not in ORDERS or self.layout not in LAYOUTS:
            raise ConfigError(f"unknown channel order {self.order!r} or layout {self.layout!r}",
                              f"use order {'/'.join(ORDERS)} and layout {'/'.join(LAYOUTS)}")

    def apply(self, u8: np.ndarray) -> np.ndarray:
        """uint8 N x C x H x W (already at ``size``) -> the model's float32 input."""
        from .smoke.image_io import to_input

        return to_input(u8, self.mean, self.std, self.order, self.layout)

    def at_size(self, size: int) -> "Preprocess":
        return replace(self, size=int(size))

    def describe(self) -> str:
        """One line for the console and the report."""
        grey = "grey" if self.channels == 1 else self.order
        where = f"{self.size}x{self.size}" if self.size else "as stored"
        norm = "/255" if self.is_unit_scale else f"/255, mean {_fmt(self.mean)}, std {_fmt(self.std)}"
        return f"{where} {grey} ({self.resize}), {norm}, {self.layout}"

    @property
    def is_unit_scale(self) -> bool:
        return all(m == 0 for m in self.mean) and all(s == 1 for s in self.std)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocess":
        try:
            return cls(**{**d, "mean": tuple(float(v) for v in d.get("mean", (0.0,))),
                          "std": tuple(float(v) for v in d.get("std", (1.0,)))})
        except TypeError as e:
            raise ConfigError(f"a preprocessing record is malformed ({e})", "re-export the model") from None

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)


def _fmt(vals: tuple[float, ...]) -> str:
    return "/".join(f"{v:g}" for v in vals)


def parse_teacher_input(text: str, channels: int) -> Preprocess:
    """``--teacher-input`` text (see the module's doc) -> a Preprocess for ``channels``-channel images."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ConfigError("--teacher-input is empty", _FIX)
    fields: dict[str, Any] = {"channels": channels}
    if "=" not in items[0]:
        preset = items.pop(0).lower()
        if preset != "imagenet":
            raise ConfigError(f"unknown --teacher-input preset {preset!r}", _FIX)
        fields.update(size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or not value.strip():
            raise ConfigError(f"--teacher-input item {item!r} is not key=value", _FIX)
        try:
            if key == "size":
                fields["size"] = int(value)
            elif key in ("mean", "std"):
                fields[key] = tuple(float(v) for v in value.replace(" ", "").split("/"))
            elif key == "order":
                fields["order"] = value.strip().upper()
            elif key == "layout":
                fields["layout"] = value.strip().upper()
            else:
                raise ConfigError(f"unknown --teacher-input key {key!r}", "use size, mean, std, order, layout")
        except ValueError:
            raise ConfigError(f"--teacher-input {key}={value!r} is not a number", _FIX) from None
    if "size" not in fields:
        raise ConfigError("--teacher-input does not say the teacher's input size", "add size=N (e.g. size=224)")
    if channels == 1:  # a grey teacher takes one mean/std; a 3-value one is refused by Preprocess
        fields["order"] = "RGB"
    return Preprocess(**fields)


def student_preprocess(size: int, channels: int) -> Preprocess:
    """The contract edgekd's students are trained with on image folders: [0, 1] pixels, NCHW."""
    return Preprocess(size=size, channels=channels)
