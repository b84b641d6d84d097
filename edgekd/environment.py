"""The software and machine a build ran on, for its report."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from . import __version__
from .bench.measure import cpu_model

PACKAGES = ("onnx", "ai-edge-litert", "litert-torch", "tensorflow-cpu", "ethos-u-vela")


def environment() -> dict[str, Any]:
    """edgekd, Python, the CPU, torch/onnxruntime/numpy and the converters' versions."""
    import numpy
    import onnxruntime
    import torch

    return {"edgekd": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "cpu": cpu_model(), "logical_cores": os.cpu_count(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__,
            "torch_threads": torch.get_num_threads(), **package_versions()}


def package_versions() -> dict[str, str]:
    """Installed versions of the converters and runtimes besides those above (metadata only)."""
    from importlib import metadata

    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
