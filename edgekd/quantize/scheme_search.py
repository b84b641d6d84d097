"""Choose an onnxruntime int8 scheme by measurement: the best int8 accuracy on the validation split.

Calibration method (MinMax clips large activations seen rarely; Entropy and Percentile clip outliers on
purpose) and per-channel vs per-tensor weight scales change int8 accuracy model by model, so edgekd tries
a small menu and keeps the most accurate on held-out validation data (not the test split, which stays
untouched for the report). Ties go to the earlier, simpler scheme.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EdgeKDError, ExportError, OutputError
from ..fsio import atomic_path, sha256_file
from ..records import ExportedModel
from .ort_int8 import OrtInt8Config, quantize_onnx_int8

if TYPE_CHECKING:
    from ..data import Dataset

DEFAULT_SCHEMES = (
    OrtInt8Config(method="minmax", per_channel=True),
    OrtInt8Config(method="entropy", per_channel=True),
    OrtInt8Config(method="percentile", per_channel=True),
    OrtInt8Config(method="minmax", per_channel=False),
)


def scheme_name(config: OrtInt8Config) -> str:
    return f"{config.method}/{'per-channel' if config.per_channel else 'per-tensor'}"


def choose_ort_int8(fp32: ExportedModel, data: "Dataset", out_path: str | Path,
                    schemes: tuple[OrtInt8Config, ...] = DEFAULT_SCHEMES) -> tuple[ExportedModel, list[dict[str, Any]]]:
    """Quantize with each scheme, score on ``data.x_val``; write the best to ``out_path``.

    Returns the chosen model's record (its ``config`` names the scheme) and one row per scheme tried:
    ``{"scheme", "val_accuracy"}`` or ``{"scheme", "error"}`` when a scheme failed (e.g. its parity check).
    """
    from ..export.parity import run_onnx

    tried: list[dict[str, Any]] = []
    best: tuple[float, ExportedModel, Path] | None = None
    with tempfile.TemporaryDirectory(prefix="edgekd-int8-") as tmp:
        for i, cfg in enumerate(schemes):
            cand_path = Path(tmp) / f"scheme{i}.onnx"
            calib = data.calibration_samples(min(cfg.calibration_samples, len(data.x_train)), seed=0)
            try:
                q = quantize_onnx_int8(fp32, calib, cand_path, cfg)
            except OutputError:  # a full disk fails every scheme alike: say so, once
                raise
            except EdgeKDError as e:
                tried.append({"scheme": scheme_name(cfg), "error": str(e)})
                continue
            acc = float((run_onnx(cand_path, data.x_val).argmax(1) == data.y_val).mean())
            tried.append({"scheme": scheme_name(cfg), "val_accuracy": acc})
            if best is None or acc > best[0]:
                best = (acc, q, cand_path)
        if best is None:
            first = tried[0]["error"] if tried else "no scheme given"
            raise ExportError(f"every int8 scheme failed; first: {first}", "check the model and the calibration data")
        with atomic_path(out_path) as tmp_file:
            shutil.copyfile(best[2], tmp_file)
    chosen = best[1]
    scheme = f"{chosen.config['method']}/{'per-channel' if chosen.config['per_channel'] else 'per-tensor'}"
    config = {**chosen.config, "scheme": scheme, "schemes_tried": tried}
    return replace(chosen, path=str(out_path), sha256=sha256_file(out_path), config=config), tried
