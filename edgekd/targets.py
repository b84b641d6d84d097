"""Device profiles: TOML data files loaded into frozen, validated dataclasses.

Built-in profiles live in ``edgekd/profiles/*.toml`` (shipped inside the package); users add their own
with ``--targets-dir DIR``. A profile file is parsed as data only (``tomllib``); nothing in it executes.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import TargetError
from .backends.npu_config import NpuConfig, parse_npu

KNOWN_ARCHES = ("x86_64", "aarch64", "armv7", "ethos-u")
KNOWN_RUNTIMES = ("onnxruntime", "litert")
KNOWN_PRECISIONS = ("fp32", "fp16", "int8")
KNOWN_EMULATION = ("none", "qemu-user", "vela")
# how edgekd runs code for a target here -> the device backend that gives its figures (edgekd.backends)
BACKEND_OF_EMULATION = {"none": "host", "qemu-user": "arm-emu", "vela": "npu-emu"}


@dataclass(frozen=True)
class Budget:
    """What the chosen student must meet on the device. ``None`` means 'no limit'."""

    p90_latency_ms: float | None = None  # 90th-percentile latency of one inference at batch 1
    peak_memory_mb: float | None = None  # peak resident memory the model adds to the process
    model_size_mb: float | None = None  # size of the deployed model file
    min_accuracy: float | None = None  # least top-1 accuracy (0..1) of the deployed (quantized) model
    max_accuracy_drop: float | None = None  # most accuracy (0..1) quantization may cost against fp32
    sram_kib: float | None = None  # NPU targets: SRAM the tensor arena may use (Vela's "Total SRAM used")
    flash_kib: float | None = None  # NPU targets: flash the model may use (Vela's flash figure)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise TargetError(f"budget {f.name} must be a finite number, got {v!r}",
                                  "write a number, or leave the key out for no limit")
            if v <= 0 and f.name not in ("min_accuracy", "max_accuracy_drop") or v < 0:
                raise TargetError(f"budget {f.name} must be positive, got {v}",
                                  "write a positive number, or leave the key out for no limit")
        for key in ("min_accuracy", "max_accuracy_drop"):
            v = getattr(self, key)
            if v is not None and v > 1:
                raise TargetError(f"budget {key} is a fraction in 0..1, got {v}", "write e.g. 0.85 for 85%")

    def as_dict(self) -> dict[str, float | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class TargetProfile:
    """One device the student must fit."""

    name: str  # identifier used on the command line (file stem)
    description: str  # one human sentence: which board
    arch: str  # instruction set: x86_64, aarch64, armv7, ethos-u
    core: str  # CPU core, e.g. cortex-a72; "host" for this machine
    clock_ghz: float  # nominal core clock
    cores: int  # number of cores the runtime may use
    memory_mb: float  # RAM on the board (a microcontroller's on-chip SRAM may be a fraction of a MB)
    threads: int  # inference threads used for benchmarks
    runtimes: tuple[str, ...]  # runtimes available on the device, preferred first
    precisions: tuple[str, ...]  # precisions worth deploying, preferred first
    emulation: str  # how edgekd runs code for this target here: none (host), qemu-user, vela
    budget: Budget  # what the chosen student must meet
    source: str = ""  # where the hardware figures come from
    npu: NpuConfig | None = None  # the Ethos-U NPU and its memories (emulation = "vela" targets only)
    path: str = field(default="", compare=False)  # file the profile was read from

    def __post_init__(self) -> None:
        def bad(what: str, fix: str) -> TargetError:
            return TargetError(f"target {self.name!r}: {what}", fix)

        if self.arch not in KNOWN_ARCHES:
            raise bad(f"unknown arch {self.arch!r}", f"use one of {', '.join(KNOWN_ARCHES)}")
        if self.emulation not in KNOWN_EMULATION:
            raise bad(f"unknown emulation {self.emulation!r}", f"use one of {', '.join(KNOWN_EMULATION)}")
        for r in self.runtimes:
            if r not in KNOWN_RUNTIMES:
                raise bad(f"unknown runtime {r!r}", f"use some of {', '.join(KNOWN_RUNTIMES)}")
        for p in self.precisions:
            if p not in KNOWN_PRECISIONS:
                raise bad(f"unknown precision {p!r}", f"use some of {', '.join(KNOWN_PRECISIONS)}")
        if not self.runtimes or not self.precisions:
            raise bad("runtimes and precisions must not be empty", "list at least one of each")
        if self.cores < 1 or self.threads < 1 or self.threads > self.cores:
            raise bad(f"threads ({self.threads}) must be between 1 and cores ({self.cores})",
                      "set threads to at most the number of cores")
        if not (0 < self.clock_ghz < math.inf and 0 < self.memory_mb < math.inf):
            raise bad("clock_ghz and memory_mb must be positive finite numbers", "fix the numbers in the profile")
        self._check_npu(bad)
        self._check_core(bad)

    @property
    def backend(self) -> str:
        """The device backend that serves this target: ``host``, ``arm-emu`` or ``npu-emu`` (named once, here,
        from the profile's ``emulation``; :func:`edgekd.backends.backend_for` gives its code)."""
        return BACKEND_OF_EMULATION[self.emulation]

    def _check_core(self, bad) -> None:
        """An emulated ARM target must name a core edgekd can emulate (its cpuinfo and QEMU model)."""
        if self.backend != "arm-emu":
            return
        from .emu.cores import CORES

        if self.arch != "aarch64":
            raise bad(f"emulation = \"qemu-user\" runs aarch64 code, but arch is {self.arch!r}",
                      "set arch = \"aarch64\" or another emulation")
        if self.core not in CORES:
            raise bad(f"unknown core {self.core!r} for ARM emulation",
                      f"use one of {', '.join(CORES.names())} (the cores edgekd emulates)")

    def _check_npu(self, bad) -> None:
        """An [npu] table goes with emulation = "vela", full-int8 TFLite, and the SRAM/flash budgets."""
        b, npu = self.budget, self.npu
        if (self.backend == "npu-emu") != (npu is not None):
            raise bad("emulation = \"vela\" and an [npu] table go together",
                      "an Ethos-U target needs both; other targets neither")
        if npu is None:
            if b.sram_kib is not None or b.flash_kib is not None:
                raise bad("budget sram_kib / flash_kib apply to NPU targets only",
                          "drop them, or describe the NPU in an [npu] table with emulation = \"vela\"")
            return
        if "litert" not in self.runtimes or "int8" not in self.precisions:
            raise bad("an Ethos-U NPU runs full-int8 TFLite models only",
                      'list runtimes = ["litert"] and precisions = ["int8"]')
        for key, size in (("sram_kib", npu.sram_kib), ("flash_kib", npu.flash_kib)):
            limit = getattr(b, key)
            if limit is not None and limit > size:
                raise bad(f"budget {key} = {limit:g} is more than the board's {size:g} KiB ([npu] {key})",
                          f"set the budget to at most {size:g}")


_TOP_KEYS = {"name", "description", "arch", "core", "clock_ghz", "cores", "memory_mb", "threads",
             "runtimes", "precisions", "emulation", "source", "budget", "npu"}
_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str, "description": str, "arch": str, "core": str, "clock_ghz": (int, float), "cores": int,
    "memory_mb": (int, float), "threads": int, "runtimes": list, "precisions": list, "emulation": str,
    "source": str, "budget": dict, "npu": dict,
}


def parse_target(data: dict[str, Any], name: str, path: str = "") -> TargetProfile:
    """Build a profile from parsed TOML, with one clear error for each kind of mistake."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise TargetError(f"target {name!r} ({path}): unknown key(s) {', '.join(unknown)}",
                          f"use only {', '.join(sorted(_TOP_KEYS))}")
    required = _TOP_KEYS - {"name", "source", "threads", "npu"}
    missing = sorted(required - set(data))
    if missing:
        raise TargetError(f"target {name!r} ({path}): missing key(s) {', '.join(missing)}",
                          "add them; see `edgekd targets show raspberrypi` for a complete profile")
    for key, typ in _TYPES.items():
        if key in data and (not isinstance(data[key], typ) or isinstance(data[key], bool)):
            raise TargetError(f"target {name!r} ({path}): {key} has the wrong type ({type(data[key]).__name__})",
                              "see `edgekd targets show raspberrypi` for the expected types")
    if data.get("name", name) != name:
        raise TargetError(f"target file {path} says name = {data['name']!r} but is named {name!r}",
                          "make the name key match the file name, or drop it")
    budget_keys = {f.name for f in fields(Budget)}
    extra = sorted(set(data["budget"]) - budget_keys)
    if extra:
        raise TargetError(f"target {name!r} ({path}): unknown budget key(s) {', '.join(extra)}",
                          f"use only {', '.join(sorted(budget_keys))}")
    try:
        budget = Budget(**{k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                           for k, v in data["budget"].items()})
    except TargetError as e:  # name the file the bad budget is in
        raise TargetError(f"target {name!r} ({path}): {e.cause}", e.fix) from None
    return TargetProfile(
        name=name, description=data["description"], arch=data["arch"], core=data["core"],
        clock_ghz=float(data["clock_ghz"]), cores=data["cores"], memory_mb=data["memory_mb"],
        threads=data.get("threads", data["cores"]), runtimes=tuple(data["runtimes"]),
        precisions=tuple(data["precisions"]), emulation=data["emulation"], budget=budget,
        source=data.get("source", ""), path=path,
        npu=parse_npu(data["npu"], f"target {name!r} ({path})") if "npu" in data else None,
    )


def _profile_files(targets_dir: str | Path | None) -> dict[str, Path | Any]:
    files: dict[str, Any] = {}
    for entry in resources.files("edgekd.profiles").iterdir():
        if entry.name.endswith(".toml"):
            files[entry.name[:-5]] = entry
    if targets_dir is not None:
        d = Path(targets_dir)
        if not d.is_dir():
            raise TargetError(f"--targets-dir {d} is not a directory", "pass a directory of *.toml profiles")
        for p in sorted(d.glob("*.toml")):
            files[p.stem] = p  # user profiles override built-ins of the same name
    return files


def list_targets(targets_dir: str | Path | None = None) -> list[str]:
    """Names of every known target (built-in and from ``targets_dir``)."""
    return sorted(_profile_files(targets_dir))


def load_target(name: str, targets_dir: str | Path | None = None) -> TargetProfile:
    """Load a target by name; an unknown name lists the known ones."""
    files = _profile_files(targets_dir)
    if name not in files:
        raise TargetError(f"unknown target {name!r}",
                          f"use one of: {', '.join(sorted(files))} (or add NAME.toml under --targets-dir)")
    entry = files[name]
    try:
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise TargetError(f"target file {entry} is not valid TOML ({e})", "fix the syntax at that line") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TargetError(f"target file {entry} cannot be read ({e})", "check the file") from None
    return parse_target(data, name, str(entry))
