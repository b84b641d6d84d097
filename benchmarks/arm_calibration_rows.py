"""The published calibration rows, the models they name built in PyTorch, exported by edgekd, and counted.

Used by ``arm_estimator.py``. For each row of ../shared/calibration/published.csv: the standard architecture it
names (random weights: latency does not depend on them) at its input size, exported to TFLite by edgekd at its
precision (int8: full integer with int8 I/O, calibrated on random inputs), counted under ``qemu-aarch64`` as the
row's core with the row's threads, with the kernels the row's runtime used:

- XNNPACK's end2end benchmark rows -> LiteRT with its default XNNPACK delegate ("default" kernels);
- TFLite 2.4.1 with ruy (MLPerf, Krai) and the TFLite performance page's CPU figures (2019-2020, before XNNPACK
  was TFLite's default) -> LiteRT's built-in kernels without the default delegate ("builtin": ruy GEMMs).

What is approximated and stays so: the Pi 3 B+ rows are an AArch32 build, we count AArch64; the MLPerf int8
models are the legacy uint8-asymmetric ones, we count today's int8 per-channel export; the A73/A75 are emulated
as the A72/A76 with their own cpuinfo (see edgekd/emu/cores.py). Counts are kept in edgekd's count store, so a
refit never recounts.
"""

from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT.parent / "shared" / "calibration" / "published.csv"


@dataclass(frozen=True)
class Row:
    device: str
    core: str
    clock_ghz: float
    runtime: str
    model: str
    arch: str  # builder in architectures.py
    width: float
    size: int  # input height = width
    precision: str
    threads: int
    latency_ms: float
    kernels: str  # default | builtin (see the module docstring)
    source: str
    instructions: int = 0
    dram_bytes: int = 0
    load_bytes: int = 0
    store_bytes: int = 0
    spread: float = 0.0
    llc_kb: int = 0

    @property
    def export_name(self) -> str:
        return f"{self.arch}_w{self.width:g}_{self.size}_{self.precision}.tflite"


def _arch(model: str) -> tuple[str, float]:
    m = re.match(r"MobileNet V2 (\d+(?:\.\d+)?)", model)
    if m:
        return "mobilenet_v2", float(m.group(1))
    for prefix, arch in (("MobileNet V1 1.0", "mobilenet_v1"), ("MobileNet V3 Large 1.0", "mobilenet_v3_large"),
                         ("MobileNet V3 Small 1.0", "mobilenet_v3_small"), ("ResNet-50", "resnet50")):
        if model.startswith(prefix):
            return arch, 1.0
    raise ValueError(f"no builder for calibration model {model!r}")


def kernels_for(runtime: str) -> str:
    return "default" if "XNNPACK" in runtime else "builtin"


def read_rows(path: Path = CSV) -> list[Row]:
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            arch, width = _arch(r["model"])
            rows.append(Row(r["device"], r["core"].split()[0], float(r["clock_ghz"]), r["runtime"], r["model"],
                            arch, width, int(r["input"].split("x")[0]), r["precision"], int(r["threads"]),
                            float(r["latency_ms"]), kernels_for(r["runtime"]), r["source"]))
    return rows


def build_model(arch: str, width: float, size: int):
    import torch

    import architectures as A

    torch.manual_seed(0)
    factory = getattr(A, arch)
    shape = (3, size, size)
    model = factory(shape, 1000, width=width) if arch == "mobilenet_v2" else factory(shape, 1000)
    return model.eval()


def export(row: Row, work: Path, say=print) -> Path:
    import numpy as np

    from edgekd.export.tflite import export_tflite

    out = work / row.export_name
    if out.is_file():
        return out
    model = build_model(row.arch, row.width, row.size)
    rng = np.random.default_rng(0)
    shape = (3, row.size, row.size)
    sample = rng.standard_normal((2, *shape)).astype(np.float32)
    calib = rng.standard_normal((16, *shape)).astype(np.float32) if row.precision == "int8" else None
    t0 = time.perf_counter()
    export_tflite(model, sample, out, precision=row.precision, calibration=calib,
                  tolerances={"atol": None, "rtol": None, "min_agreement": None})
    say(f"  exported {out.name} ({time.perf_counter() - t0:.0f} s)")
    return out


# Counted on one thread: with several, idle worker threads spin-wait (ruy, pthreadpool) and add instructions that
# depend on the host's scheduling (measured: 16% spread between identical int8 runs with ruy on 4 threads). The
# work is the same; how it divides over a row's threads is the fit's threads term.
COUNT_THREADS = 1


def count_rows(rows: list[Row], work: Path, env, say=print, chunk: int = 4) -> list[Row]:
    """Every row with its counts (from the count store where present)."""
    import numpy as np

    from edgekd.emu.count_store import counted

    paths = {r: export(r, work, say) for r in rows}
    groups: dict[tuple, list[Row]] = {}
    for r in rows:
        groups.setdefault((r.core, r.kernels), []).append(r)
    out: dict[Row, Row] = {}
    for (core, kernels), members in groups.items():
        unique = list(dict.fromkeys(paths[r] for r in members))
        for i in range(0, len(unique), chunk):
            part = unique[i:i + chunk]
            items = []
            for p in part:
                size = int(p.name.split("_")[-2])
                x = np.random.default_rng(1).standard_normal((1, 3, size, size)).astype(np.float32)
                items.append((p, x, None))
            t0 = time.perf_counter()
            counts = counted(items, core, threads=COUNT_THREADS, n_cores=4, kernels=kernels, env=env, say=say)
            say(f"  {core} {kernels}: {', '.join(p.stem for p in part)} "
                f"({time.perf_counter() - t0:.0f} s)")
            by_path = dict(zip(part, counts))
            for r in members:
                if paths[r] in by_path:
                    c = by_path[paths[r]]
                    out[r] = replace(r, instructions=c.instructions, dram_bytes=c.dram_bytes,
                                     load_bytes=c.traffic["load_bytes"], store_bytes=c.traffic["store_bytes"],
                                     spread=c.spread, llc_kb=c.llc_kb)
    return [out[r] for r in rows]
